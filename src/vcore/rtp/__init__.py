"""RTP and RTCP: packets, sequence arithmetic, compound RTCP, receiver statistics."""

from __future__ import annotations

from .packet import RtpPacket, build_header_extensions, parse_header_extensions
from .rtcp import (
    ReportBlock,
    RtcpApp,
    RtcpBye,
    RtcpFir,
    RtcpCcfb,
    CcfbBlock,
    RtcpNack,
    RtcpPli,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpSenderReport,
    RtcpTmmbn,
    RtcpTmmbr,
    RtcpUnknown,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)
from .seq import extend_seq, seq_diff, seq_gt, ts_diff
from .stats import ReceiverStats, SenderStats, ntp_from_unix, rtt_from_report

__all__ = [
    "RtpPacket",
    "build_header_extensions",
    "parse_header_extensions",
    "ReportBlock",
    "RtcpApp",
    "RtcpBye",
    "RtcpFir",
    "RtcpCcfb",
    "CcfbBlock",
    "RtcpNack",
    "RtcpPli",
    "RtcpReceiverReport",
    "RtcpSdes",
    "RtcpSenderReport",
    "RtcpTmmbn",
    "RtcpTmmbr",
    "RtcpUnknown",
    "is_rtcp",
    "parse_rtcp",
    "serialize_rtcp",
    "extend_seq",
    "seq_diff",
    "seq_gt",
    "ts_diff",
    "ReceiverStats",
    "SenderStats",
    "ntp_from_unix",
    "rtt_from_report",
]
