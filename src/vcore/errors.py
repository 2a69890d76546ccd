"""The vcore exception family.

Every error vcore raises on purpose derives from :class:`VcoreError`, so an
application can catch the whole family in one place. Kernels (compiled and
pure-Python twins alike) raise these very classes.
"""

from __future__ import annotations

__all__ = [
    "VcoreError",
    "ParseError",
    "SrtpError",
    "SrtpAuthError",
    "SrtpReplayError",
    "SrtpLimitError",
    "MediaError",
    "CallError",
    "TransportError",
]


class VcoreError(Exception):
    """Base class of every vcore error."""


class ParseError(VcoreError, ValueError):
    """Malformed, truncated or inconsistent input (a packet, a header, a frame)."""


class SrtpError(VcoreError):
    """Base class of SRTP/SRTCP protection errors."""


class SrtpAuthError(SrtpError):
    """The authentication tag of an SRTP/SRTCP packet did not verify."""


class SrtpReplayError(SrtpError):
    """The packet was already received, or is older than the replay window."""


class SrtpLimitError(SrtpError):
    """The master key reached its packet limit (2^48 SRTP / 2^31 SRTCP)."""


class MediaError(VcoreError):
    """Capture, encode, decode or device failure in the media engine."""


class CallError(VcoreError):
    """Signalling or call-control failure."""


class TransportError(VcoreError):
    """Media transport failure: no free port in the configured range, a bad address, a closed socket."""
