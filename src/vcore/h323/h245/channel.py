"""A separate H.245 TCP channel (H.323 §8.2, H.225.0 ``h245Address``): listen for it or connect to it.

Whichever connection is established first is the call's H.245 channel; the
listener closes then and accepts nothing more. The listener binds the call's
local signalling address and accepts only the signalling peer's address.
PDUs arrive through ``on_pdu``; ``on_closed`` says the channel ended (the
peer closed it, or it could not be established). The channel is plain TCP
(H.245 §9 over TPKT): H.235 would secure it separately, which vcore does not
do, so the session sends no SRTP key on it beside TLS signalling.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Awaitable, Callable

from ...supervisor import Supervisor
from ..connection import CLOSE_TIMEOUT, H245Connection
from ..errors import PeerClosed, SignallingError, SignallingParseError
from ..messages import Address

__all__ = ["H245Channel", "usable_h245_address"]

log = logging.getLogger(__name__)


def usable_h245_address(address: Address) -> bool:
    """An ``h245Address`` worth connecting to: a unicast IP, not unspecified, multicast or broadcast."""
    try:
        ip = ipaddress.ip_address(address.host)
    except ValueError:
        return False
    return not (ip.is_unspecified or ip.is_multicast or str(ip) == "255.255.255.255") and 0 < address.port < 65536


class H245Channel:
    """The separate H.245 connection of one call: its listener, its connection and its reader task."""

    def __init__(self, owner: str, peer_host: str, *, connect_timeout: float,
                 on_pdu: Callable[[bytes], Awaitable[None]], on_established: Callable[[], Awaitable[None]],
                 on_closed: Callable[[str], Awaitable[None]]) -> None:
        self._peer_host = peer_host
        self._connect_timeout = connect_timeout
        self._on_pdu = on_pdu
        self._on_established = on_established
        self._on_closed = on_closed
        self._tasks = Supervisor(f"H.245 {owner}")
        self._server: asyncio.Server | None = None
        self.conn: H245Connection | None = None
        self.local: Address | None = None  # where we listen, announced as our h245Address
        self._dialling = False

    @property
    def established(self) -> bool:
        return self.conn is not None and not self.conn.closed

    async def listen(self, host: str) -> Address:
        """Listen on ``host`` (the call's local signalling address), any port; returns the address to announce."""
        if self.local is not None:
            return self.local
        try:
            self._server = await asyncio.start_server(self._accepted, host, 0)
        except OSError as exc:
            raise SignallingError(f"cannot listen for H.245 on {host}: {exc.strerror or exc}") from None
        port = int(self._server.sockets[0].getsockname()[1])
        self.local = Address(host, port)
        log.debug("H.245 listener on %s:%d", host, port)
        return self.local

    def connect(self, address: Address) -> None:
        """Connect to the peer's ``h245Address`` (in a task); ignored once a channel exists or is being dialled."""
        if self.conn is not None or self._dialling or self._tasks.closed:
            return
        self._dialling = True
        self._tasks.spawn(self._dial(address), f"connect to {address.host}:{address.port}")

    async def send(self, pdus: list[bytes]) -> None:
        if self.conn is None:
            raise PeerClosed("no H.245 connection")
        await self.conn.send_frames(pdus)

    async def close(self) -> None:
        """Stop listening, stop the reader, close the connection."""
        self._stop_listening()
        await self._tasks.aclose()
        if self.conn is not None:
            await self.conn.close()

    # ---------------------------------------------------------------- internals

    def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = H245Connection(reader, writer)
        if self.conn is not None or self._tasks.closed:
            await conn.close()
            return
        if conn.peer_host != self._peer_host:
            log.warning("H.245 connection from %s refused: the call's peer is %s", conn.peer, self._peer_host)
            await conn.close()
            return
        await self._adopt(conn)

    async def _dial(self, address: Address) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(address.host, address.port),
                                                    self._connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            self._dialling = False
            if self.conn is None:
                log.warning("cannot connect to the peer's H.245 address %s:%d: %s", address.host, address.port,
                            exc or "timeout")
                if self._server is None:
                    await self._on_closed(f"cannot connect to the peer's H.245 address {address.host}:"
                                          f"{address.port}: {exc or 'timeout'}")
            return
        conn = H245Connection(reader, writer)
        if self.conn is not None:
            await conn.close()
            return
        await self._adopt(conn)

    async def _adopt(self, conn: H245Connection) -> None:
        self.conn = conn
        self._stop_listening()
        log.info("separate H.245 channel with %s", conn.peer)
        self._tasks.spawn(self._read(conn), "reader")
        await self._on_established()

    async def _read(self, conn: H245Connection) -> None:
        try:
            while True:
                await self._on_pdu(await conn.receive_frame())
        except SignallingParseError as exc:  # broken TPKT framing: the stream cannot be resynchronised
            why = f"malformed H.245 channel: {exc}"
        except (PeerClosed, OSError) as exc:
            why = str(exc)
        if self._tasks.closed or conn.closed:  # we closed it (the call ended while this task handled a PDU)
            return
        await asyncio.sleep(CLOSE_TIMEOUT / 2)  # the peer's ReleaseComplete usually follows its H.245 close
        await self._on_closed(why)
