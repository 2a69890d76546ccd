"""Which address to bind, which to announce, and port ranges for RTP/RTCP (pure functions, no I/O).

A station binds its media sockets to the wildcard address of the peer's
address family (or to a configured address) and announces, in Fast Connect or
H.245 ``OpenLogicalChannel``, the address it *uses toward the peer*: the local
address of the call's signalling connection. Behind a port-forwarding router
(static NAT) it announces the router's public address instead
(``public_address``). A wildcard or loopback address is never announced to a
peer that is not itself on loopback.

RTP goes on an even port and RTCP on the next odd one (RFC 3550 §11), taken
from a configured range (what a firewall opens); see :class:`PortRange`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import TransportError

__all__ = [
    "PortRange",
    "parse_port_range",
    "wildcard_for",
    "is_wildcard",
    "is_loopback",
    "announced_host",
    "check_host",
    "unmap",
]


@dataclass(frozen=True)
class PortRange:
    """UDP ports ``low``..``high`` (inclusive) for media: RTP on an even port, RTCP on the next odd one.

    ``low`` is rounded up to even; the range must hold at least one pair. An H.323 call
    uses three pairs (audio, video, the H.224 camera-control channel), a SIP call two.
    """

    low: int
    high: int

    def __post_init__(self) -> None:
        if not (1024 <= self.low <= 65535 and 1024 <= self.high <= 65535):
            raise TransportError(f"RTP port range {self.low}-{self.high}: ports must be within 1024..65535")
        if self.high < self.low + (self.low % 2) + 1:
            raise TransportError(f"RTP port range {self.low}-{self.high} holds no even/odd port pair")

    @property
    def pairs(self) -> range:
        """The RTP (even) ports of the range; RTCP is each one plus one."""
        first = self.low + (self.low % 2)
        return range(first, self.high, 2)

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


def parse_port_range(text: str | tuple[int, int] | PortRange) -> PortRange:
    """``"16384-16483"`` or ``(16384, 16483)`` -> :class:`PortRange` (a :class:`TransportError` if malformed)."""
    if isinstance(text, PortRange):
        return text
    if isinstance(text, tuple):
        if len(text) != 2 or not all(isinstance(v, int) for v in text):
            raise TransportError(f"RTP port range {text!r}: expected (low, high)")
        return PortRange(text[0], text[1])
    low, sep, high = str(text).strip().partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise TransportError(f"RTP port range {text!r}: expected LOW-HIGH, e.g. 16384-16483")
    return PortRange(int(low), int(high))


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        raise TransportError(f"{host!r} is not an IP address") from None


def check_host(host: str) -> str:
    """``host`` if it is an IPv4 or IPv6 address (brackets removed), else a :class:`TransportError`."""
    _ip(host)
    return host.strip("[]")


def unmap(host: str) -> str:
    """``::ffff:192.0.2.1`` (an IPv4 peer seen by a dual-stack socket) -> ``192.0.2.1``; a zone index dropped.

    Anything that is not an IP address comes back unchanged.
    """
    bare = host.strip("[]").split("%")[0]
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return bare


def wildcard_for(peer_host: str) -> str:
    """The wildcard bind address of ``peer_host``'s family: ``0.0.0.0`` or ``::``."""
    return "::" if _ip(peer_host).version == 6 else "0.0.0.0"


def is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::", "[::]")


def is_loopback(host: str) -> bool:
    try:
        ip = _ip(host)
    except TransportError:
        return host == "localhost"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def announced_host(*, bind_host: str, signalling_local: str, peer_host: str,
                   public_address: str | None = None) -> str:
    """The media address to announce to ``peer_host``.

    ``public_address`` (static NAT) wins; else a specific ``bind_host``; else
    the local address of the signalling connection toward the peer. A loopback
    or wildcard result for a peer that is not on loopback is refused: the peer
    could never reach it.
    """
    if public_address:
        host = check_host(public_address)
    elif not is_wildcard(bind_host):
        host = check_host(bind_host)
    else:
        host = check_host(signalling_local)
    host = unmap(host)  # a dual-stack listener sees IPv4 callers as ::ffff:a.b.c.d
    if is_wildcard(host) or (is_loopback(host) and not is_loopback(peer_host)):
        raise TransportError(f"media address {host} cannot be reached from {peer_host}: bind the media to an "
                             "address of this host (media_host=) or leave it unset")
    return host
