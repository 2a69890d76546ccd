"""H.323 signalling: TPKT, Q.931, H.225.0 and H.245 (PER through pycrate), Fast Connect, the call state machine.

Layers, bottom up: :mod:`.tpkt` (RFC 1006 framing), :mod:`.q931` (Q.931 as
profiled by H.225.0), :mod:`.asn1` (pycrate's compiled H.225.0/H.245/H.235),
:mod:`.ras` (gatekeeper RAS), :mod:`.keys` (SRTP keys in H.245, H.235.8 style), :mod:`.messages` (UUIE and
H.245 builders/readers), :mod:`.fast_connect` (offer/answer), :mod:`.h245` (one state machine per H.245
procedure, the separate H.245 connection), :mod:`.signalling` (asyncio sessions over TCP or mutual TLS:
:mod:`.connection`, :mod:`.session`, :mod:`.h245_path`, :mod:`.caller`, :mod:`.listener`). No media here: sessions hand
:class:`MediaChannel` values to the call layer. See ``docs/h323.md``.
"""

from __future__ import annotations

from .errors import CallRefused, PeerClosed, SecurityError, SignallingError, SignallingParseError, SignallingTimeout
from .fast_connect import MediaChannel, MediaEndpoints, MediaPolicy
from .keys import DEFAULT_SUITES, SUITES, SrtpKeyMaterial
from .messages import DEFAULT_FORMATS, G722, H264_MODE0, H264_MODE1, PCMA, PCMU, Address, MediaFormat
from .q931 import Cause, MessageType, Q931Message
from .ras import RasClient, RasRejected, Registration
from .signalling import (
    H225_PORT,
    H225_TLS_PORT,
    Alerting,
    BitrateLimited,
    CallEvent,
    CallSession,
    CallState,
    ChannelClosed,
    ChannelOpened,
    Connected,
    KeyframeRequested,
    Proceeding,
    ProtocolWarning,
    RefusedCall,
    UserInput,
    Released,
    H245Timers,
    SignallingConfig,
    SignallingListener,
    place_call,
)
from .tpkt import TpktDecoder, encode_tpkt

__all__ = [
    "SignallingError",
    "SignallingParseError",
    "SignallingTimeout",
    "CallRefused",
    "PeerClosed",
    "SecurityError",
    "MediaChannel",
    "MediaEndpoints",
    "MediaPolicy",
    "SrtpKeyMaterial",
    "SUITES",
    "DEFAULT_SUITES",
    "Address",
    "MediaFormat",
    "PCMU",
    "PCMA",
    "G722",
    "H264_MODE0",
    "H264_MODE1",
    "DEFAULT_FORMATS",
    "Cause",
    "MessageType",
    "Q931Message",
    "RasClient",
    "RasRejected",
    "Registration",
    "TpktDecoder",
    "encode_tpkt",
    "H225_PORT",
    "H225_TLS_PORT",
    "CallState",
    "SignallingConfig",
    "H245Timers",
    "CallEvent",
    "Proceeding",
    "Alerting",
    "Connected",
    "ChannelOpened",
    "ChannelClosed",
    "KeyframeRequested",
    "BitrateLimited",
    "ProtocolWarning",
    "UserInput",
    "Released",
    "RefusedCall",
    "CallSession",
    "SignallingListener",
    "place_call",
]
