"""SIP over UDP, TCP and TLS (RFC 3261 §18) with ``rport`` (RFC 3581).

One :class:`SipTransport` listens on one transport and address and sends on
it. A received message comes up with its :class:`Flow` (transport, source,
connection) so responses go back the way the request came: on the same
connection for TCP/TLS, to the source address and port for UDP (which is what
``received``/``rport`` make a NAT-ed client expect). Outgoing requests over
TCP/TLS reuse an open connection to the same address or open one (TLS with the
station's client context: mutual authentication, the caller checks the
certificate against the URI).

A message that does not parse is answered ``400`` when enough of it is
readable to address a response (RFC 3261 §8.2 asks nothing less), otherwise
dropped; either way it is logged and never raises out of the transport.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import pki
from ..supervisor import Supervisor
from ..transport.accept import PausedAccept
from .errors import SipError, SipParseError, SipSecurityError
from .message import MAX_MESSAGE, SipMessage, StreamFramer, Via, parse_message

__all__ = ["DEFAULT_PORTS", "TRANSPORTS", "Flow", "SipTransport"]

log = logging.getLogger(__name__)

TRANSPORTS = ("udp", "tcp", "tls")
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}  # RFC 3261 §19.1.2
_CONNECT_TIMEOUT = 10.0
_IDLE_READ = 65536


def _unmap(host: str) -> str:
    return host[7:] if host.startswith("::ffff:") and "." in host else host


@dataclass(frozen=True)
class Flow:
    """Where a message came from, or goes to: transport (``UDP``/``TCP``/``TLS``), remote (host, port), connection."""

    transport: str
    remote: tuple[str, int]
    connection: _Connection | None = field(default=None, compare=False, repr=False)

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"

    @property
    def open(self) -> bool:
        return self.connection is None or not self.connection.closed


class _Connection:
    """One TCP or TLS connection: a reader task that frames messages, a writer."""

    def __init__(self, owner: SipTransport, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.owner = owner
        self.reader = reader
        self.writer = writer
        self.closed = False
        info = writer.get_extra_info("peername")
        self.remote = (_unmap(str(info[0])), int(info[1])) if info else ("", 0)
        local = writer.get_extra_info("sockname")
        self.local = (_unmap(str(local[0])), int(local[1])) if local else ("", 0)

    @property
    def ssl_object(self) -> Any:
        return self.writer.get_extra_info("ssl_object")

    async def run(self, flow: Flow) -> None:
        framer = StreamFramer()
        try:
            while True:
                try:
                    data = await self.reader.read(_IDLE_READ)
                except (OSError, ssl.SSLError) as exc:
                    log.debug("SIP connection %s: %s", flow.remote, exc)
                    return
                if not data:
                    return
                try:
                    messages = framer.feed(data)
                except SipParseError as exc:
                    log.warning("SIP %s from %s:%d: unusable stream, closing: %s", flow.transport, *flow.remote, exc)
                    return
                for message in messages:
                    self.owner._received(message, flow)
        finally:
            await self.close()

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise SipError("the SIP connection is closed")
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (OSError, ssl.SSLError, RuntimeError) as exc:
            raise SipError(f"cannot send on the SIP connection: {exc}") from None

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.owner._forget(self)
        if self.owner.on_connection_lost is not None:
            self.owner.on_connection_lost(self)
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)
        except TimeoutError:
            self.writer.transport.abort()
        except (OSError, ssl.SSLError):
            pass


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.owner._datagram(data, (_unmap(str(addr[0])), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP UDP: %s", exc)


class SipTransport:
    """One listening SIP transport (``udp``, ``tcp`` or ``tls``) and the connections it uses.

    ``on_message(message, flow)`` is called for each well-formed message (on
    the event loop, must not block). TLS needs ``server_context`` and
    ``client_context`` (:func:`vcore.pki.server_context` and ``client_context``).
    """

    def __init__(self, kind: str, on_message: Callable[[SipMessage, Flow], None], *,
                 server_context: ssl.SSLContext | None = None, client_context: ssl.SSLContext | None = None) -> None:
        if kind not in TRANSPORTS:
            raise SipError(f"unknown SIP transport {kind!r} (udp, tcp or tls)")
        if kind == "tls" and (server_context is None or client_context is None):
            raise SipSecurityError("SIP over TLS needs the station's identity (server and client TLS contexts)")
        self.kind = kind
        self.name = kind.upper()
        self.on_message = on_message
        self.server_context = server_context
        self.client_context = client_context
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._connections: dict[tuple[str, int], _Connection] = {}
        self._tasks = Supervisor(f"SIP {kind} transport")
        self.host = ""
        self.port = 0
        self.malformed = 0  # messages refused as malformed (counted for tests and statistics)
        self.on_tls_failure: Callable[[str, str], None] | None = None  # (peer, detail) of a refused handshake
        self.on_connection_lost: Callable[[_Connection], None] | None = None  # fails its pending transactions

    @property
    def reliable(self) -> bool:
        return self.kind != "udp"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (port 0: any free port; host ``""``: every address)."""
        loop = asyncio.get_running_loop()
        try:
            if self.kind == "udp":
                transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self),
                                                                   local_addr=(host or "0.0.0.0", port))
                self._udp = transport  # an asyncio.DatagramTransport (the selector loop's class is private)
                sockname = transport.get_extra_info("sockname")
            else:
                # TLS starts per connection (below) so that a new context (a new CRL) applies to the next caller
                self._server = await loop.create_server(lambda: PausedAccept(self._accepted), host or None, port)
                sockname = self._server.sockets[0].getsockname()
        except OSError as exc:
            raise SipError(f"cannot listen for SIP/{self.name} on {host or '*'}:{port}: {exc.strerror or exc}") \
                from None
        self.host = host
        self.port = int(sockname[1])
        log.info("SIP/%s listening on %s:%d", self.name, host or "*", self.port)

    def local_address(self, flow: Flow) -> tuple[str, int]:
        """(host, port) to put in Via and Contact toward ``flow``'s peer: our listening address on its route."""
        host = self.host
        if flow.connection is not None and flow.connection.local[0] and (not host or host in ("0.0.0.0", "::")):
            host = flow.connection.local[0]
        if not host or host in ("0.0.0.0", "::"):
            host = _route_to(flow.remote[0])
        return host, self.port

    async def connect(self, host: str, port: int) -> Flow:
        """A flow to ``host:port``: the UDP socket, or an open (or new) TCP/TLS connection."""
        if self.kind == "udp":
            try:  # a name is resolved here, off the loop (sendto would block on DNS); no SRV/NAPTR (RFC 3263)
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            except OSError as exc:
                raise SipError(f"cannot resolve {host}: {exc.strerror or exc}") from None
            family = socket.AF_INET6 if self._udp is not None and \
                self._udp.get_extra_info("socket").family == socket.AF_INET6 else socket.AF_INET
            addresses = [i[4] for i in infos if i[0] == family]
            if not addresses:
                raise SipError(f"{host} has no address of this SIP socket's family")
            return Flow("UDP", (_unmap(str(addresses[0][0])), port))
        conn = self._connections.get((host, port))
        if conn is None or conn.closed:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    host, port, ssl=self.client_context if self.kind == "tls" else None,
                    server_hostname=host if self.kind == "tls" else None), _CONNECT_TIMEOUT)
            except TimeoutError:
                raise SipError(f"no SIP/{self.name} connection to {host}:{port} within {_CONNECT_TIMEOUT:g} s") \
                    from None
            except ssl.SSLError as exc:
                raise SipSecurityError(f"TLS handshake with {host}:{port} failed: {exc.reason or exc}") from None
            except OSError as exc:
                raise SipError(f"cannot connect to {host}:{port} (SIP/{self.name}): {exc.strerror or exc}") \
                    from None
            conn = self._adopt(reader, writer)
        return Flow(self.name, conn.remote, conn)

    def peer_certificate(self, flow: Flow) -> Any:
        """The peer's verified certificate on a TLS flow (a ``cryptography`` certificate), else None."""
        if flow.connection is None or flow.connection.ssl_object is None:
            return None
        return pki.peer_certificate(flow.connection.ssl_object)

    async def send(self, message: SipMessage, flow: Flow) -> None:
        """Send ``message`` on ``flow``; raises :class:`SipError` when the connection is gone."""
        data = message.serialize()
        if len(data) > MAX_MESSAGE:
            raise SipError(f"SIP message of {len(data)} bytes is too large")
        log.debug("SIP/%s -> %s:%d %s", self.name, *flow.remote, message.summary())
        if self.kind == "udp":
            if self._udp is None:
                raise SipError("the SIP UDP transport is closed")
            self._udp.sendto(data, flow.remote)
            return
        conn = flow.connection
        if conn is None or conn.closed:
            flow = await self.connect(*flow.remote)
            conn = flow.connection
            assert conn is not None
        await conn.send(data)

    def send_nowait(self, message: SipMessage, flow: Flow) -> None:
        """Send without waiting (UDP, or an open connection's buffer); raises :class:`SipError` if it cannot."""
        data = message.serialize()
        log.debug("SIP/%s -> %s:%d %s", self.name, *flow.remote, message.summary())
        if self.kind == "udp":
            if self._udp is None:
                raise SipError("the SIP UDP transport is closed")
            self._udp.sendto(data, flow.remote)
            return
        conn = flow.connection
        if conn is None or conn.closed:
            raise SipError(f"the SIP connection to {flow.remote[0]}:{flow.remote[1]} is closed")
        conn.writer.write(data)

    async def close(self) -> None:
        """Stop listening and close every connection (idempotent)."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self._connections.values()):
            await conn.close()
        await self._tasks.aclose()

    # ------------------------------------------------------------ internals

    def _adopt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> _Connection:
        conn = _Connection(self, reader, writer)
        self._connections[conn.remote] = conn
        flow = Flow(self.name, conn.remote, conn)
        self._tasks.spawn(conn.run(flow), f"connection {conn.remote[0]}:{conn.remote[1]}")
        return conn

    def _accepted(self, transport: asyncio.BaseTransport) -> None:
        if self._tasks.closed:
            transport.close()
            return
        self._tasks.spawn(self._handshake(transport), "accepted connection")

    async def _handshake(self, transport: asyncio.BaseTransport) -> None:
        # reading stays paused until TLS owns the transport, so no ClientHello byte is lost to a plain reader
        assert isinstance(transport, asyncio.Transport)
        loop = asyncio.get_running_loop()
        info = transport.get_extra_info("peername")
        peer = f"{_unmap(str(info[0]))}:{info[1]}" if info else "?"
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        if self.kind == "tls":
            assert self.server_context is not None
            try:
                tls = await asyncio.wait_for(loop.start_tls(transport, protocol, self.server_context, server_side=True,
                                                            ssl_handshake_timeout=_CONNECT_TIMEOUT),
                                             _CONNECT_TIMEOUT + 1.0)
            except asyncio.CancelledError:
                transport.abort()
                raise
            except (TimeoutError, ConnectionError, ssl.SSLError, OSError) as exc:
                transport.abort()
                if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
                    detail = f"TLS handshake failed: {exc.verify_message}"
                elif isinstance(exc, ssl.SSLError):
                    detail = f"TLS handshake failed: {exc.reason or exc}"
                else:
                    detail = f"TLS handshake failed: {exc or 'timed out'}"
                log.warning("SIP/TLS from %s refused: %s", peer, detail)
                if self.on_tls_failure is not None:
                    self.on_tls_failure(peer, detail)
                return
            if tls is None:  # pragma: no cover - the loop closed the transport
                return
            transport = tls
        else:
            transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self.kind != "tls":
            transport.resume_reading()
        self._adopt(reader, asyncio.StreamWriter(transport, protocol, reader, loop))

    def _forget(self, conn: _Connection) -> None:
        if self._connections.get(conn.remote) is conn:
            del self._connections[conn.remote]

    def _datagram(self, data: bytes, source: tuple[str, int]) -> None:
        if data.strip(b"\r\n") == b"":
            return  # RFC 5626 §4.4.1 keep-alive
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self._malformed(data, Flow("UDP", source), exc)
            return
        self._received(message, Flow("UDP", source))

    def _received(self, message: SipMessage, flow: Flow) -> None:
        if message.is_request:
            via = message.top_via
            params = dict(via.params)
            if via.host != flow.remote[0]:
                params["received"] = flow.remote[0]  # RFC 3261 §18.2.1
            if "rport" in params:
                params["rport"] = str(flow.remote[1])  # RFC 3581 §4
                params["received"] = flow.remote[0]
            if params != via.params:
                message.replace_top_via(Via(via.transport, via.host, via.port, params))
        log.debug("SIP/%s <- %s:%d %s", self.name, *flow.remote, message.summary())
        try:
            self.on_message(message, flow)
        except SipParseError as exc:  # a header the UA needed did not parse
            self._malformed(message.serialize(), flow, exc)
        except Exception:  # a UA bug must not stop the transport
            log.exception("SIP: handling %s failed", message.summary())

    def _malformed(self, data: bytes, flow: Flow, error: SipParseError) -> None:
        self.malformed += 1
        log.warning("SIP/%s from %s:%d: malformed message refused: %s", self.name, *flow.remote, error)
        response = _bad_request(data, str(error))
        if response is not None:
            self._tasks.spawn(self._send_quietly(response, flow), "400 Bad Request")

    async def _send_quietly(self, message: SipMessage, flow: Flow) -> None:
        try:
            await self.send(message, flow)
        except SipError as exc:
            log.debug("SIP: cannot answer a malformed message: %s", exc)


def _bad_request(data: bytes, why: str) -> SipMessage | None:
    """A 400 for a malformed request whose Via, From, To, Call-ID and CSeq can still be copied, else None."""
    text = data[:8192].decode("utf-8", "replace")
    lines = re.split(r"\r?\n", text)
    if not lines or lines[0].startswith("SIP/") or not re.match(r"^[A-Z]+ \S+ SIP/2\.0$", lines[0]):
        return None
    if lines[0].startswith("ACK "):
        return None  # never answer an ACK
    wanted = {"via": "Via", "v": "Via", "from": "From", "f": "From", "to": "To", "t": "To", "call-id": "Call-ID",
              "i": "Call-ID", "cseq": "CSeq"}
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            break
        name, colon, value = line.partition(":")
        key = wanted.get(name.strip().lower())
        if colon and key and value.strip() and all(c >= " " for c in value.strip()):
            headers.append((key, value.strip()))
    if {n for n, _ in headers} != {"Via", "From", "To", "Call-ID", "CSeq"}:
        return None
    reason = "Bad Request - " + re.sub(r"[^ -~]", "?", why)[:120]
    response = SipMessage.response(400, reason, headers)
    try:
        parse_message(response.serialize())  # the copied headers must make a readable response
    except SipParseError:
        return None
    return response


def _route_to(host: str) -> str:
    """This machine's address on the route to ``host`` (a connected UDP socket sends nothing)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, 9))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1" if family == socket.AF_INET else "::1"
