"""SIP final responses and Q.850 causes (RFC 3398), both ways, and the text of a ``Warning`` header.

The call layer speaks H.225.0 reason names and Q.850 causes; a SIP session maps them to and from status codes
here. The numbers are those :class:`vcore.h323.q931.Cause` names (SIP does not import H.323).
"""

from __future__ import annotations

from ..callcontrol import NORMAL_CALL_CLEARING

__all__ = ["STATUS_TO_RELEASE", "release_to_status", "warning_text"]

# Q.850 causes (the numbers vcore.h323.q931.Cause names; SIP must not import H.323)
USER_BUSY = 17
CALL_REJECTED = 21
NO_ROUTE = 3
NO_USER_RESPONDING = 18
TEMPORARY_FAILURE = 41
INCOMPATIBLE_DESTINATION = 88
RECOVERY_ON_TIMER_EXPIRY = 102
NORMAL_UNSPECIFIED = 31

STATUS_TO_RELEASE: dict[int, tuple[str, int]] = {  # RFC 3398 §8.2.6.1 (SIP -> ISUP cause), vcore's reason names
    486: ("userBusy", USER_BUSY), 600: ("userBusy", USER_BUSY),
    603: ("destinationRejection", CALL_REJECTED), 403: ("destinationRejection", CALL_REJECTED),
    401: ("securityDenied", CALL_REJECTED), 407: ("securityDenied", CALL_REJECTED),
    404: ("unreachableDestination", NO_ROUTE), 604: ("unreachableDestination", NO_ROUTE),
    480: ("destinationRejection", NO_USER_RESPONDING), 408: ("timeout", RECOVERY_ON_TIMER_EXPIRY),
    488: ("undefinedReason", INCOMPATIBLE_DESTINATION), 606: ("undefinedReason", INCOMPATIBLE_DESTINATION),
    415: ("undefinedReason", INCOMPATIBLE_DESTINATION), 487: ("undefinedReason", NORMAL_CALL_CLEARING),
    503: ("connectionFailed", TEMPORARY_FAILURE),
}


def warning_text(text: str) -> str:
    """``text`` as a Warning header's quoted-string (RFC 3261 §25.1: no quotes or backslashes, one line)."""
    return "".join(c if c.isprintable() and c not in '"\\' else " " for c in text)[:200]


def release_to_status(reason: str, cause: int) -> tuple[int, str]:
    """The final response a callee sends for a refusal (reason, Q.850 cause) (RFC 3398 §7.2.4.1)."""
    if cause == USER_BUSY:
        return 486, "Busy Here"
    if reason == "securityDenied":
        return 403, "Forbidden"
    if cause == INCOMPATIBLE_DESTINATION:
        return 488, "Not Acceptable Here"
    if cause == CALL_REJECTED or reason == "destinationRejection":
        return 603, "Decline"
    return 480, "Temporarily Unavailable"
