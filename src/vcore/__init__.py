"""vcore: real-time H.264 video conferencing in the H.323 tradition.

Flat public API; see the README and ``docs/architecture.md`` for how data flows.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._speedups import fastpath_enabled
from ._version import __version__
from .payload import g711
from .payload.h264 import AccessUnit, H264Depacketizer, H264Packetizer, split_annexb
from .rtp import (
    ReceiverStats,
    RtcpBye,
    RtcpFir,
    RtcpCcfb,
    CcfbBlock,
    RtcpNack,
    RtcpPli,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpSenderReport,
    RtpPacket,
    parse_rtcp,
    serialize_rtcp,
)
from .jitter import AudioJitterBuffer, VideoJitterBuffer
from .errors import (
    CallError,
    TransportError,
    MediaError,
    ParseError,
    SrtpAuthError,
    SrtpError,
    SrtpLimitError,
    SrtpReplayError,
    VcoreError,
)
from .srtp import SrtpSession

logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from .call import Call, CallFailed, IncomingCall, Terminal
    from .camera_control import Focus, Pan, Tilt, Zoom
    from .directory import Directory
    from .pki import Identity
    from .sip import SipSettings

_LAZY = {  # the call layer pulls in pycrate and (when a call starts) PyAV: load it on first use
    "Terminal": "vcore.call",
    "Call": "vcore.call",
    "IncomingCall": "vcore.call",
    "CallFailed": "vcore.call",
    "Identity": "vcore.pki",
    "Directory": "vcore.directory",
    "SipSettings": "vcore.sip",  # Terminal(sip=SipSettings(...)): the SIP listener, registration, DTLS-SRTP policy
    "Pan": "vcore.camera_control",  # Call.remote_camera_move(pan=..., tilt=..., zoom=..., focus=...) (H.281)
    "Tilt": "vcore.camera_control",
    "Zoom": "vcore.camera_control",
    "Focus": "vcore.camera_control",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vcore' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

__all__ = [
    "__version__",
    "fastpath_enabled",
    "g711",
    "AccessUnit",
    "H264Depacketizer",
    "H264Packetizer",
    "split_annexb",
    "RtpPacket",
    "VideoJitterBuffer",
    "AudioJitterBuffer",
    "ReceiverStats",
    "RtcpBye",
    "RtcpFir",
    "RtcpCcfb",
    "CcfbBlock",
    "RtcpNack",
    "RtcpPli",
    "RtcpReceiverReport",
    "RtcpSdes",
    "RtcpSenderReport",
    "parse_rtcp",
    "serialize_rtcp",
    "VcoreError",
    "ParseError",
    "SrtpError",
    "SrtpAuthError",
    "SrtpReplayError",
    "SrtpLimitError",
    "MediaError",
    "CallError",
    "TransportError",
    "SrtpSession",
    "Terminal",
    "Call",
    "IncomingCall",
    "CallFailed",
    "Identity",
    "Directory",
    "SipSettings",
    "Pan",
    "Tilt",
    "Zoom",
    "Focus",
]
