"""Exceptions of the SIP user agent.

All derive from :class:`vcore.errors.CallError`; the one about malformed bytes
also derives from :class:`vcore.errors.ParseError` so a caller may catch either.
"""

from __future__ import annotations

from ..errors import CallError, ParseError

__all__ = ["SipError", "SipParseError", "SipRefused", "SipSecurityError", "SipTimeout"]


class SipError(CallError):
    """Base class of SIP signalling failures."""


class SipParseError(SipError, ParseError):
    """A malformed SIP message, URI or header (RFC 3261 §25)."""


class SipTimeout(SipError):
    """A transaction or the call set-up timed out (RFC 3261 §17 timers B, F, H)."""


class SipSecurityError(SipError):
    """TLS refused, a peer certificate that does not match the URI, or a request the policy refuses."""


class SipRefused(SipError):
    """A request got a final error response: ``status`` (e.g. 401, 403, 486) and ``reason``."""

    def __init__(self, message: str, status: int, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
