"""TPKT-framed streams of the H.323 signalling: the H.225.0 call signalling connection and a separate H.245 one.

Both are TCP (the call signalling optionally mutual TLS) carrying TPKT
(RFC 1006) frames: Q.931 messages on the call signalling channel (H.225.0
§7.1), one ``MultimediaSystemControlMessage`` per TPKT on a separate H.245
channel (H.245 §9, H.323 §8.2). An empty TPKT is a keep-alive and is skipped
by :class:`~vcore.h323.tpkt.TpktDecoder`. asyncio objects, one event loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import deque
from typing import Any

from .. import pki
from ..transport.addresses import unmap
from .errors import PeerClosed
from .q931 import Q931Message
from .tpkt import TpktDecoder, encode_tpkt

__all__ = ["CLOSE_TIMEOUT", "TpktStream", "SignallingConnection", "H245Connection", "keepalive"]

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0  # s: the most a hang-up waits for the peer's side (ReleaseComplete, FIN, TLS close_notify)
_READ_SIZE = 65536


class TpktStream:
    """One TCP (or TLS) stream of TPKT frames."""

    what = "TPKT stream"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._decoder = TpktDecoder()
        self._pending: deque[bytes] = deque()
        self.closed = False
        keepalive(writer.get_extra_info("socket"))

    @property
    def peer(self) -> str:
        info = self.writer.get_extra_info("peername")
        return f"{info[0]}:{info[1]}" if info else "?"

    @property
    def tls(self) -> bool:
        return self.writer.get_extra_info("ssl_object") is not None

    @property
    def local_host(self) -> str:
        """This end's IP address on the connection (the address the peer reaches us at)."""
        info = self.writer.get_extra_info("sockname")
        return unmap(str(info[0])) if info else ""

    @property
    def peer_host(self) -> str:
        """The peer's IP address on the connection."""
        info = self.writer.get_extra_info("peername")
        return unmap(str(info[0])) if info else ""

    @property
    def peer_name(self) -> str | None:
        return pki.peer_common_name(self.writer.get_extra_info("ssl_object"))

    async def send_frames(self, payloads: list[bytes]) -> None:
        """Send each payload in its own TPKT; :class:`PeerClosed` when the connection is gone."""
        if self.closed:
            raise PeerClosed(f"the {self.what} is closed")
        try:
            self.writer.write(b"".join(encode_tpkt(p) for p in payloads))
            await self.writer.drain()
        except (OSError, ssl.SSLError, RuntimeError) as exc:  # RuntimeError: writing to a closing transport
            raise PeerClosed(f"cannot send on the {self.what}: {exc}") from None

    async def receive_frame(self) -> bytes:
        """The next TPKT payload; :class:`PeerClosed` at end of stream."""
        while not self._pending:
            data = await self.reader.read(_READ_SIZE)
            if not data:
                raise PeerClosed(f"the peer closed the {self.what}")
            self._pending.extend(self._decoder.feed(data))
        return self._pending.popleft()

    async def wait_eof(self, timeout: float) -> None:
        """Half-close our side and wait (at most ``timeout`` s) for the peer to close its own (orderly release).

        Whatever the peer still sends is read and dropped, so that the kernel never answers it with a RST.
        """
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        try:
            if not self.tls and self.writer.can_write_eof():
                self.writer.write_eof()
            while loop.time() < end:
                data = await asyncio.wait_for(self.reader.read(_READ_SIZE), max(end - loop.time(), 0.0))
                if not data:
                    return
        except (asyncio.TimeoutError, OSError, ssl.SSLError, RuntimeError):
            return

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.writer.close()
        try:
            # a frozen peer never answers TLS close_notify: asyncio would wait 30 s for it, holding the station
            await asyncio.wait_for(self.writer.wait_closed(), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            self.writer.transport.abort()
        except (OSError, ssl.SSLError):
            pass


class SignallingConnection(TpktStream):
    """TPKT-framed Q.931 (H.225.0 call signalling) over an asyncio stream pair."""

    what = "signalling connection"

    async def send(self, message: Q931Message) -> None:
        await self.send_frames([message.encode()])

    async def receive(self) -> Q931Message:
        return Q931Message.parse(await self.receive_frame())


class H245Connection(TpktStream):
    """A separate H.245 channel (H.323 §8.2): one PER-encoded H.245 message per TPKT, plain TCP."""

    what = "H.245 connection"


def keepalive(sock: Any) -> None:
    """TCP keep-alive so a peer that vanished mid-call (no FIN, no RST) is noticed within about a minute."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError as exc:  # pragma: no cover - exotic platforms
        log.debug("cannot enable TCP keep-alive: %s", exc)
