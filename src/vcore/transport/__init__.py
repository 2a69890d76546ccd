"""The media transport: sockets, symmetric RTP, feedback, pacing and congestion control.

Between SRTP and the media stages: the call layer opens one
:class:`RtpTransport` per media session (audio, video); that session's sender
and receiver both use it. On the video session the receiver sends RFC 8888
feedback (:class:`FeedbackRecorder`), and the sender's
:class:`CongestionController` turns it into a target bitrate that drives the
:class:`PacedSender` and the encoder; after a large drop it asks for probe
clusters and judges them (:class:`ProbeCluster`). See ``docs/network.md`` and
``docs/congestion.md``. DTLS-SRTP (RFC 5764) keys a session on its own sockets:
:class:`DtlsSrtpTransport` (see ``docs/sip.md``).
"""

from __future__ import annotations

from .addresses import (
    PortRange,
    announced_host,
    check_host,
    is_loopback,
    is_wildcard,
    parse_port_range,
    unmap,
    wildcard_for,
)
from .congestion import CongestionController
from .dtls import DtlsCertificate, DtlsError, DtlsFingerprintError, DtlsSrtpTransport, DtlsTimeout
from .feedback import FEEDBACK_INTERVAL, FeedbackRecorder, PacketResult, SendLog
from .pacer import PACING_FACTOR, PacedSender, Pacer
from .probe import ProbeCluster, ProbeVerdict
from .rtp import RtcpListener, RtpTransport, bind_pair

__all__ = [
    "CongestionController",
    "DtlsCertificate",
    "DtlsError",
    "DtlsFingerprintError",
    "DtlsSrtpTransport",
    "DtlsTimeout",
    "FeedbackRecorder",
    "SendLog",
    "PacketResult",
    "FEEDBACK_INTERVAL",
    "Pacer",
    "PacedSender",
    "PACING_FACTOR",
    "ProbeCluster",
    "ProbeVerdict",
    "RtpTransport",
    "RtcpListener",
    "PortRange",
    "parse_port_range",
    "bind_pair",
    "announced_host",
    "check_host",
    "is_loopback",
    "is_wildcard",
    "wildcard_for",
    "unmap",
]
