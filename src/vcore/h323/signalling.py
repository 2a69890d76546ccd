"""H.225.0 call signalling over TCP or mutual TLS, with H.245 tunnelled or on its own connection (asyncio).

The public face of the signalling modules, split along the flow:
:mod:`.connection` (TPKT streams), :mod:`.config` (settings, call states),
:mod:`.session` (one call: the Q.931 state machine, Fast Connect, the path
of H.245), :mod:`.h245` (one state machine per H.245 procedure, the separate
H.245 channel), :mod:`.caller` (:func:`place_call`) and :mod:`.listener`
(:class:`SignallingListener`). The call events live in
:mod:`vcore.callcontrol` and are re-exported here.
"""

from __future__ import annotations

from ..callcontrol import (
    Alerting,
    BitrateLimited,
    CallEvent,
    ChannelClosed,
    ChannelOpened,
    Connected,
    KeyframeRequested,
    Proceeding,
    ProtocolWarning,
    RefusedCall,
    Released,
    UserInput,
)
from .caller import EndpointsFactory, is_ip, place_call
from .config import H225_PORT, H225_TLS_PORT, CallState, SignallingConfig
from .h245 import H245Timers
from .listener import SignallingListener
from .session import CallSession

_is_ip = is_ip  # vcore.call.addresses: one definition of "an IP literal" for dial strings

__all__ = [
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
    "EndpointsFactory",
    "place_call",
]
