"""One media session's leg of a call: its RTP and RTCP sockets, where to send, and symmetric RTP.

:class:`RtpTransport` is what the senders and receivers of one media session
(audio, or video) share, the way aiortc's ``RTCDtlsTransport`` or GStreamer's
``rtpbin`` sit under their senders and receivers:

- one RTP socket and one RTCP socket (RFC 3550 §11: RTP on an even port, RTCP
  on the next odd one, from a configured :class:`~vcore.transport.PortRange`),
  or a single socket carrying both (``rtcp_mux``, RFC 5761);
- RTP is *sent from the socket it is received on* (symmetric RTP, RFC 4961),
  so a NAT that maps our outgoing flow also lets the peer's flow back in;
- latching (RFC 7362 §4): once a packet from the peer is accepted — it passed
  SRTP authentication, or, on a plaintext stream, came from one of the
  signalled peer's hosts — media of that kind (RTP or RTCP) goes back to the
  address and port it came from. A packet that fails authentication never
  moves the target, so a forged source cannot hijack the stream;
- RTCP in both directions of the session goes through :meth:`send_rtcp` and
  arrives, unprotected once and parsed, at every listener (the session's
  receiver and sender both see each compound packet).

The transport does no RTP unprotect itself: the receiver does (it counts what
fails) and then calls :meth:`latch_rtp`. Thread-safety: everything belongs to
the event loop's thread except :meth:`send_rtp_threadsafe`, which worker
threads call (it sends on a duplicate of the RTP socket).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import TransportError, VcoreError
from ..rtp.rtcp import is_rtcp, parse_rtcp, serialize_rtcp
from .addresses import PortRange, check_host, unmap

__all__ = ["RtpTransport", "Protect", "RtcpListener"]

_log = logging.getLogger(__name__)

Protect = Callable[[bytes], bytes]
"""A packet transform: SRTP protect or unprotect (raise a ``VcoreError`` to drop the packet)."""
RtcpListener = Callable[[list[Any], tuple[str, int]], None]
"""Called with the parsed packets of one incoming RTCP compound packet and its source address."""


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Any], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        _log.debug("UDP error: %s", exc)  # ICMP port unreachable before the peer is up


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_DGRAM)
    try:
        if sock.family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4-mapped peers too
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_pair(host: str, ports: PortRange | None, *, rtcp_mux: bool = False,
              port: int = 0) -> tuple[socket.socket, socket.socket | None]:
    """Bind the RTP socket (and the RTCP one unless ``rtcp_mux``) on ``host``.

    With ``ports`` the first free even/odd pair of the range is taken; a
    :class:`TransportError` says when the range is exhausted. Without it the RTP
    socket takes ``port`` (0: the system picks) and RTCP any free port.
    """
    host = check_host(host) if host else "0.0.0.0"
    if ports is None and port == 0 and not rtcp_mux:
        pair = _ephemeral_pair(host)
        if pair is not None:
            return pair
    if ports is None:
        try:
            rtp = _bind(host, port)
        except OSError as exc:
            raise TransportError(f"cannot bind a UDP socket on {host}: {exc.strerror or exc}") from None
        if rtcp_mux:
            return rtp, None
        try:
            return rtp, _bind(host, 0)
        except OSError as exc:
            rtp.close()
            raise TransportError(f"cannot bind a UDP socket on {host}: {exc.strerror or exc}") from None
    for port in ports.pairs:
        try:
            rtp = _bind(host, port)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise TransportError(f"cannot bind UDP {host}:{port}: {exc.strerror or exc}") from None
        if rtcp_mux:
            return rtp, None
        try:
            return rtp, _bind(host, port + 1)
        except OSError as exc:
            rtp.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise TransportError(f"cannot bind UDP {host}:{port + 1}: {exc.strerror or exc}") from None
    raise TransportError(f"no free RTP/RTCP port pair left in {ports} on {host} "
                         f"({len(ports.pairs)} pairs; each call uses 2): widen the range")


def _ephemeral_pair(host: str, attempts: int = 32) -> tuple[socket.socket, socket.socket] | None:
    """An even RTP port the system picked and RTCP on the next one (RFC 3550 §11), or None after some tries.

    Some peers send RTCP to RTP + 1 whatever was signalled; the pair keeps them working without a range.
    """
    for _ in range(attempts):
        try:
            rtp = _bind(host, 0)
        except OSError as exc:
            raise TransportError(f"cannot bind a UDP socket on {host}: {exc.strerror or exc}") from None
        port = int(rtp.getsockname()[1])
        if port % 2 == 0 and port < 65535:
            try:
                return rtp, _bind(host, port + 1)
            except OSError:
                pass
        rtp.close()
    return None


def _same_host(a: str, b: str) -> bool:
    return unmap(a) == unmap(b)


class RtpTransport:
    """The sockets of one media session and where its packets go (see the module docs).

    ``bind_host``: the local address (``0.0.0.0``/``::`` for all of this host's
    addresses); ``ports``: the range to take the RTP/RTCP pair from (None: any
    free ports, RTP on ``port`` if not 0); ``rtcp_mux``: RTP and RTCP on one socket. ``remote_rtp`` /
    ``remote_rtcp``: the signalled peer addresses (settable later with
    :meth:`set_remote`). ``latch``: follow the peer's real source addresses
    (symmetric RTP). ``peer_hosts``: on a plaintext stream, the only hosts
    whose packets may move the target (None: any source, for a bare receiver
    that answers whoever sends). ``encrypted``: packets handed to
    :meth:`latch_rtp` passed SRTP authentication. ``protect_rtcp`` /
    ``unprotect_rtcp``: SRTCP for everything sent / received on this session.
    """

    def __init__(
        self,
        bind_host: str = "127.0.0.1",
        *,
        ports: PortRange | None = None,
        port: int = 0,
        rtcp_mux: bool = False,
        remote_rtp: tuple[str, int] | None = None,
        remote_rtcp: tuple[str, int] | None = None,
        latch: bool = True,
        peer_hosts: Iterable[str] | None = None,
        encrypted: bool = False,
        protect_rtcp: Protect | None = None,
        unprotect_rtcp: Protect | None = None,
        name: str = "rtp",
    ) -> None:
        self.bind_host = bind_host
        self.ports = ports
        self.port = port
        self.rtcp_mux = rtcp_mux
        self.latch = latch
        self.peer_hosts = frozenset(peer_hosts) if peer_hosts is not None else None
        self.encrypted = encrypted
        self.protect_rtcp = protect_rtcp
        self.unprotect_rtcp = unprotect_rtcp
        self.name = name
        self._signalled_rtp = remote_rtp
        self._signalled_rtcp = remote_rtcp
        self._latched_rtp: tuple[str, int] | None = None
        self._latched_rtcp: tuple[str, int] | None = None
        self._rtp_handler: Callable[[bytes, Any], None] | None = None
        self._dtls_handlers: dict[bool, Callable[[bytes, Any], None]] = {}  # by socket (RTCP?): RFC 7983 demux
        self._held: deque[tuple[bool, bytes, Any]] | None = None
        self._rtcp_listeners: list[RtcpListener] = []
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._dup: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self.rtcp_received = 0  # compound RTCP packets accepted
        self.rtcp_dropped = 0  # RTCP that failed SRTCP, parsing, or came on the RTCP port and was not RTCP
        self.rtcp_sent = 0
        self.sending = True  # False while the call is on hold (RFC 3264 §8.4): RTP is dropped, RTCP goes on

    def __repr__(self) -> str:
        local = self.local_rtp if self._rtp is not None else None
        return f"<RtpTransport {self.name} {local} -> {self.remote_rtp}>"

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Bind the sockets (a :class:`TransportError` if no port is free)."""
        if self._rtp is not None:
            return
        if self.closed:
            raise TransportError("the transport is closed")
        self._loop = loop = asyncio.get_running_loop()
        rtp_sock, rtcp_sock = bind_pair(self.bind_host, self.ports, rtcp_mux=self.rtcp_mux, port=self.port)
        try:
            self._rtp, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self._on_rtp_socket),
                                                               sock=rtp_sock)
            if rtcp_sock is not None:
                self._rtcp, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self._on_rtcp_socket),
                                                                    sock=rtcp_sock)
            self._dup = socket.socket(rtp_sock.family, rtp_sock.type, fileno=os.dup(rtp_sock.fileno()))
        except BaseException:
            rtp_sock.close()
            if rtcp_sock is not None:
                rtcp_sock.close()
            await self.close()
            raise

    async def close(self) -> None:
        """Close the sockets (idempotent)."""
        self.closed = True
        if self._dup is not None:
            self._dup.close()
            self._dup = None
        for t in (self._rtp, self._rtcp):
            if t is not None:
                t.close()
        self._rtp_handler = None
        self._dtls_handlers.clear()
        self._held = None
        self._rtcp_listeners.clear()

    async def __aenter__(self) -> RtpTransport:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ addresses

    @property
    def local_rtp(self) -> tuple[str, int]:
        """The local (host, port) of the RTP socket."""
        if self._rtp is None:
            raise TransportError("the transport is not open")
        return self._rtp.get_extra_info("sockname")[:2]  # type: ignore[no-any-return]

    @property
    def local_rtcp(self) -> tuple[str, int]:
        """The local (host, port) of the RTCP socket (the RTP one with ``rtcp_mux``)."""
        if self._rtcp is None:
            return self.local_rtp
        return self._rtcp.get_extra_info("sockname")[:2]  # type: ignore[no-any-return]

    def set_remote(self, rtp: tuple[str, int] | None = None, rtcp: tuple[str, int] | None = None) -> None:
        """The peer's signalled RTP and/or RTCP addresses (a latched address still wins)."""
        if rtp is not None:
            self._signalled_rtp = rtp
        if rtcp is not None:
            self._signalled_rtcp = rtcp

    def relocate(self, rtp: tuple[str, int], rtcp: tuple[str, int] | None) -> None:
        """The peer moved its media (re-signalled, e.g. a SIP re-INVITE): send to the new addresses; the
        latched ones are forgotten (latching starts over from the peer's next packets)."""
        if rtp != self._signalled_rtp or rtcp != self._signalled_rtcp:
            _log.info("%s: peer media moved to %s:%d (was %s, latched %s)", self.name, rtp[0], rtp[1],
                      self._signalled_rtp, self._latched_rtp)
            self._signalled_rtp, self._signalled_rtcp = rtp, rtcp
            self._latched_rtp = self._latched_rtcp = None
        self.add_peer_host(rtp[0])

    def add_peer_host(self, host: str) -> None:
        """Let plaintext packets from ``host`` move the target too (a signalled media address)."""
        self.peer_hosts = (self.peer_hosts or frozenset()) | {host}

    @property
    def remote_rtp(self) -> tuple[str, int] | None:
        """Where RTP goes: the latched source of the peer's RTP, else the signalled address."""
        return self._latched_rtp or self._signalled_rtp

    @property
    def remote_rtcp(self) -> tuple[str, int] | None:
        """Where RTCP goes: latched, else signalled; with ``rtcp_mux`` (or nothing signalled) the RTP target."""
        if self._latched_rtcp is not None:
            return self._latched_rtcp
        if self._signalled_rtcp is not None and not self.rtcp_mux:
            return self._signalled_rtcp
        return self.remote_rtp or self._signalled_rtcp

    @property
    def latched(self) -> bool:
        """True once the peer's RTP came from an accepted source (the RTP target follows it)."""
        return self._latched_rtp is not None

    def _trusted(self, addr: tuple[str, int]) -> bool:
        if not self.latch:
            return False
        if self.encrypted or self.peer_hosts is None:
            return True
        return any(_same_host(addr[0], h) for h in self.peer_hosts)

    def latch_rtp(self, addr: tuple[str, int]) -> None:
        """An accepted RTP packet came from ``addr``: send RTP there from now on (if trusted)."""
        addr = (addr[0], addr[1])
        if addr != self._latched_rtp and self._trusted(addr):
            if addr != self._signalled_rtp:
                _log.info("%s: RTP latched to %s:%d (signalled %s)", self.name, addr[0], addr[1],
                          self._signalled_rtp)
            self._latched_rtp = addr

    def _latch_rtcp(self, addr: tuple[str, int]) -> None:
        addr = (addr[0], addr[1])
        if addr != self._latched_rtcp and self._trusted(addr):
            if addr != self._signalled_rtcp:
                _log.info("%s: RTCP latched to %s:%d (signalled %s)", self.name, addr[0], addr[1],
                          self._signalled_rtcp)
            self._latched_rtcp = addr

    # ------------------------------------------------------------ receiving

    def set_rtp_handler(self, handler: Callable[[bytes, Any], None] | None) -> None:
        """The receiver of this session's RTP datagrams (one; None detaches)."""
        self._rtp_handler = handler

    def set_dtls_handler(self, handler: Callable[[bytes, Any], None] | None, *, rtcp_socket: bool = False) -> None:
        """Where DTLS datagrams (RFC 7983: first byte 20..63) arriving on the RTP (or RTCP) socket go.

        They bypass :meth:`hold` (the handshake is what brings the keys); without a handler they are dropped.
        """
        if handler is None:
            self._dtls_handlers.pop(rtcp_socket, None)
        else:
            self._dtls_handlers[rtcp_socket] = handler

    def send_datagram(self, data: bytes, addr: tuple[str, int], *, rtcp_socket: bool = False) -> bool:
        """From the event loop: send one raw datagram (a DTLS record) from the RTP or RTCP socket; False if closed."""
        transport = (self._rtcp or self._rtp) if rtcp_socket else self._rtp
        if transport is None or transport.is_closing():
            return False
        transport.sendto(data, addr)
        return True

    def add_rtcp_listener(self, listener: RtcpListener) -> None:
        """Also hand every accepted incoming RTCP compound packet (parsed) to ``listener``."""
        self._rtcp_listeners.append(listener)

    def remove_rtcp_listener(self, listener: RtcpListener) -> None:
        if listener in self._rtcp_listeners:
            self._rtcp_listeners.remove(listener)

    def hold(self, limit: int = 256) -> None:
        """Keep incoming datagrams (at most ``limit``, the newest) until :meth:`release`.

        For the time between opening the sockets and knowing the keys: a peer that
        starts sending at once (its first keyframe, its first RTCP) is not lost.
        """
        self._held = deque(maxlen=limit)

    def release(self) -> None:
        """Stop holding; hand what was held to the receiver and listeners, in arrival order (idempotent)."""
        held, self._held = self._held, None
        for on_rtcp_socket, data, addr in held or ():
            (self._on_rtcp_socket if on_rtcp_socket else self._on_rtp_socket)(data, addr)

    @property
    def holding(self) -> bool:
        return self._held is not None

    def _on_rtp_socket(self, data: bytes, addr: Any) -> None:
        if data and 20 <= data[0] <= 63:  # DTLS (RFC 7983 §7): never RTP, never held
            dtls = self._dtls_handlers.get(False)
            if dtls is not None:
                dtls(data, addr)
            return
        if self._held is not None:
            self._held.append((False, data, addr))
            return
        if is_rtcp(data):
            self._on_rtcp(data, addr)  # RTCP multiplexed (or a peer that sends it to the RTP port)
        elif self._rtp_handler is not None:
            self._rtp_handler(data, addr)

    def _on_rtcp_socket(self, data: bytes, addr: Any) -> None:
        if data and 20 <= data[0] <= 63:  # DTLS on the RTCP component (RFC 5764 §4.1 without rtcp-mux)
            dtls = self._dtls_handlers.get(True)
            if dtls is not None:
                dtls(data, addr)
            else:
                self.rtcp_dropped += 1
            return
        if self._held is not None:
            self._held.append((True, data, addr))
            return
        if not is_rtcp(data):
            self.rtcp_dropped += 1
            return
        self._on_rtcp(data, addr)

    def _on_rtcp(self, data: bytes, addr: Any) -> None:
        try:
            if self.unprotect_rtcp is not None:
                data = self.unprotect_rtcp(data)
            packets = parse_rtcp(data)
        except VcoreError as exc:
            self.rtcp_dropped += 1
            _log.debug("%s: dropping RTCP from %s: %s", self.name, addr, exc)
            return
        self.rtcp_received += 1
        self._latch_rtcp(addr)
        for listener in list(self._rtcp_listeners):
            listener(packets, addr)

    # ------------------------------------------------------------ sending

    def send_rtp(self, datagrams: Sequence[bytes]) -> None:
        """From the event loop: send (already protected) RTP datagrams to :attr:`remote_rtp`."""
        transport, remote = self._rtp, self.remote_rtp
        if transport is None or transport.is_closing() or remote is None or not self.sending:
            return
        for d in datagrams:
            transport.sendto(d, remote)

    def send_rtp_threadsafe(self, datagrams: Sequence[bytes]) -> bool:
        """From a worker thread: send RTP datagrams; False once the transport is closed.

        Sends straight on a duplicate of the RTP socket (one UDP socket is safe to
        send on from two threads), which spares the event loop a wake-up per frame;
        if the socket buffer is full the rest goes through the event loop.
        """
        sock, remote = self._dup, self.remote_rtp
        if sock is None or self.closed:
            return False
        if remote is None or not self.sending:
            return True  # nowhere to send yet (a peer that announced no address), or on hold: keep encoding
        for i, d in enumerate(datagrams):
            try:
                sock.sendto(d, remote)
            except BlockingIOError:
                loop = self._loop
                assert loop is not None
                try:
                    loop.call_soon_threadsafe(self.send_rtp, list(datagrams[i:]))
                except RuntimeError:
                    return False
                return True
            except OSError as exc:  # closed under us, an unreachable network, ICMP errors reported late
                if self.closed:
                    return False
                _log.debug("%s: RTP send to %s failed: %s", self.name, remote, exc)
        return True

    def send_rtcp(self, packets: Sequence[Any]) -> bool:
        """From the event loop: serialize, protect and send RTCP packets as one compound packet.

        False when it could not go (closed, no address yet, no key yet).
        """
        transport = self._rtcp or self._rtp
        remote = self.remote_rtcp
        if transport is None or transport.is_closing() or remote is None:
            return False
        data = serialize_rtcp(list(packets))
        if self.protect_rtcp is not None:
            try:
                data = self.protect_rtcp(data)
            except VcoreError as exc:  # e.g. no key yet
                _log.debug("%s: cannot protect RTCP: %s", self.name, exc)
                return False
        try:
            transport.sendto(data, remote)
        except OSError as exc:  # pragma: no cover - asyncio reports send errors through error_received
            _log.debug("%s: RTCP send to %s failed: %s", self.name, remote, exc)
            return False
        self.rtcp_sent += 1
        return True
