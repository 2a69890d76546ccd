"""The settings and states of H.225.0 call signalling (shared by the session, the caller and the listener)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .fast_connect import MediaPolicy
from .h245.timers import H245Timers
from .messages import DEFAULT_FORMATS

__all__ = ["H225_PORT", "H225_TLS_PORT", "CallState", "SignallingConfig"]

H225_PORT = 1720  # H.225.0 §7.1 call signalling
H225_TLS_PORT = 1300  # H.235.0 §10.1 / H.323 Annex: TLS-protected call signalling


class CallState(enum.Enum):
    """Q.931 call states (Q.931 §2.1) a vcore session goes through."""

    CALL_INITIATED = 1
    OUTGOING_PROCEEDING = 3
    CALL_DELIVERED = 4
    CALL_PRESENT = 6
    CALL_RECEIVED = 7
    INCOMING_PROCEEDING = 9
    ACTIVE = 10
    RELEASED = 0


@dataclass(frozen=True)
class SignallingConfig:
    """A terminal's signalling settings.

    ``alias``: this terminal's H.323 alias (h323-ID, or dialledDigits when
    numeric). ``policy``: codecs and SRTP suites. ``allow_list``: caller names
    (TLS certificate CN) a callee accepts; None accepts every certificate that
    chains to the trust anchors. ``allow_plaintext_signalling``: permit TCP
    without TLS (never implied). ``fast_connect``: offer/accept Fast Connect.
    ``h245_tunnelling``: tunnel H.245 in H.225.0 (the default; vcore follows a
    peer that refuses it onto a separate H.245 connection either way).
    Timeouts in seconds: ``setup_timeout`` for the first answer to Setup (and
    for the Setup itself on an accepted connection), ``answer_timeout`` from
    Alerting/CallProceeding to Connect, ``tls_timeout`` for the handshake;
    ``h245_timers``: the H.245 procedure timers (T101, T103, T106, N100).
    Over TLS a caller's certificate must hold (``h323:`` subjectAltName) every
    alias its Setup claims, and without an allow-list its role (subject OU)
    must be in ``accept_roles`` (None: any role). ``legacy_certificates``:
    accept certificates issued before aliases (no ``h323:`` name; logged).
    """

    alias: str
    policy: MediaPolicy = field(default_factory=lambda: MediaPolicy(DEFAULT_FORMATS))
    allow_list: frozenset[str] | None = None
    allow_plaintext_signalling: bool = False
    fast_connect: bool = True
    setup_timeout: float = 10.0
    answer_timeout: float = 180.0
    tls_timeout: float = 10.0
    display_name: str | None = None
    accept_roles: frozenset[str] | None = None
    legacy_certificates: bool = False
    h245_tunnelling: bool = True
    h245_timers: H245Timers = field(default_factory=H245Timers)
