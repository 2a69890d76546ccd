"""The media transport: sockets, addresses, port ranges and symmetric RTP for each media session of a call.

Between SRTP and the media stages: the call layer opens one
:class:`RtpTransport` per media session (audio, video); that session's sender
and receiver both use it. See ``docs/network.md``.
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
from .rtp import RtcpListener, RtpTransport, bind_pair

__all__ = [
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
