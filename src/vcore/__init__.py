"""vcore: real-time H.264 video conferencing in the H.323 tradition.

Flat public API; see the README and ``docs/architecture.md`` for how data flows.
"""

from __future__ import annotations

import logging

from ._speedups import fastpath_enabled
from ._version import __version__
from .payload import g711
from .payload.h264 import AccessUnit, H264Depacketizer, H264Packetizer, split_annexb
from .rtp import (
    ReceiverStats,
    RtcpBye,
    RtcpFir,
    RtcpNack,
    RtcpPli,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpSenderReport,
    RtpPacket,
    parse_rtcp,
    serialize_rtcp,
)
from .errors import (
    CallError,
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

__all__ = [
    "__version__",
    "fastpath_enabled",
    "g711",
    "AccessUnit",
    "H264Depacketizer",
    "H264Packetizer",
    "split_annexb",
    "RtpPacket",
    "ReceiverStats",
    "RtcpBye",
    "RtcpFir",
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
    "SrtpSession",
]
