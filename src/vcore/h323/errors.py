"""Errors of the H.323 signalling layer.

All derive from :class:`vcore.errors.CallError`; the ones about malformed bytes
also derive from :class:`vcore.errors.ParseError` so a caller may catch either.
"""

from __future__ import annotations

from ..errors import CallError, ParseError

__all__ = [
    "SignallingError",
    "SignallingParseError",
    "SignallingTimeout",
    "CallRefused",
    "PeerClosed",
    "SecurityError",
]


class SignallingError(CallError):
    """Base class of H.225.0/H.245 signalling failures."""


class SignallingParseError(SignallingError, ParseError):
    """Malformed TPKT, Q.931, H.225.0 or H.245 bytes."""


class SignallingTimeout(SignallingError):
    """The peer did not answer within the configured time."""


class CallRefused(SignallingError):
    """The peer released the call (``reason`` is the H.225.0 release reason name, ``cause`` the Q.931 cause)."""

    def __init__(self, message: str, reason: str | None = None, cause: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.cause = cause


class PeerClosed(SignallingError):
    """The peer closed the signalling connection."""


class SecurityError(SignallingError):
    """TLS handshake failed, certificate not trusted, or name not on the allow-list."""
