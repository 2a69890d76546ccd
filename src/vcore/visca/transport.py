"""Transports that move VISCA messages: a serial line (RS-232/422) and Sony's VISCA over IP.

Both deliver complete, framed messages to a sink (``on_message``) and report a lost
link once (``on_lost``). Neither blocks the event loop: the serial port is opened by
pyserial (configuration only) in a worker thread, then read with ``loop.add_reader`` on
its non-blocking file descriptor; UDP uses an asyncio datagram endpoint.

Thread-safety: a transport belongs to the event loop that opened it; call it from there.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable

from .._speedups import fastpath_visca as _k
from ..errors import ParseError
from .errors import CameraConnectionError, CameraTimeout, CameraValueError

__all__ = [
    "ViscaTransport",
    "SerialTransport",
    "UdpTransport",
    "VISCA_IP_PORT",
    "PT_COMMAND",
    "PT_INQUIRY",
    "PT_REPLY",
    "PT_DEVICE_SETTING",
    "PT_CONTROL",
    "PT_CONTROL_REPLY",
    "CONTROL_RESET",
    "CONTROL_ERROR_SEQUENCE",
    "CONTROL_ERROR_MESSAGE",
    "wire_time",
]

_log = logging.getLogger(__name__)

VISCA_IP_PORT = 52381  # Sony VISCA over IP, UDP
# Sony VISCA-over-IP payload types (first two bytes of the 8-byte header)
PT_COMMAND = 0x0100
PT_INQUIRY = 0x0110
PT_REPLY = 0x0111
PT_DEVICE_SETTING = 0x0120
PT_CONTROL = 0x0200
PT_CONTROL_REPLY = 0x0201
# control payloads
CONTROL_RESET = b"\x01"  # reset the sequence number (reply: 0x01)
CONTROL_ERROR_SEQUENCE = b"\x0f\x01"  # the camera got an unexpected sequence number
CONTROL_ERROR_MESSAGE = b"\x0f\x02"  # the camera got an abnormal message (type, length)

MessageSink = Callable[[bytes, "int | None"], None]
LostSink = Callable[[Exception], None]


def wire_time(nbytes: int, baudrate: int) -> float:
    """Seconds ``nbytes`` take on an 8N1 line: 10 bits a byte (start, 8 data, stop)."""
    return nbytes * 10 / baudrate


class ViscaTransport(ABC):
    """A link to one camera or one daisy chain."""

    def __init__(self) -> None:
        self._on_message: MessageSink | None = None
        self._on_lost: LostSink | None = None
        self._lost: Exception | None = None
        self._closed = False

    #: "serial" or "ip"
    kind: str = ""

    def attach(self, on_message: MessageSink, on_lost: LostSink) -> None:
        """Where received messages and the loss of the link are reported."""
        self._on_message = on_message
        self._on_lost = on_lost

    @property
    def is_open(self) -> bool:
        return not self._closed and self._lost is None

    def _check_open(self) -> None:
        if self._lost is not None:
            raise CameraConnectionError(f"link lost: {self._lost}")
        if self._closed:
            raise CameraConnectionError("transport closed")

    def _deliver(self, message: bytes, seq: int | None = None) -> None:
        if self._on_message is not None:
            self._on_message(message, seq)

    def _report_lost(self, exc: Exception) -> None:
        if self._lost is not None or self._closed:
            return
        self._lost = exc
        _log.warning("VISCA link lost: %s", exc)
        self._teardown()
        if self._on_lost is not None:
            self._on_lost(exc)

    @abstractmethod
    def send(self, message: bytes, *, inquiry: bool = False, retransmit: bool = False) -> int | None:
        """Queue one complete VISCA message. ``retransmit``: the same message again
        (over IP with the same sequence number, so the camera can tell). Returns the
        VISCA-over-IP sequence number used (None on a serial line)."""

    @abstractmethod
    def _teardown(self) -> None: ...

    async def close(self) -> None:
        """Release the port or socket. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._teardown()


class SerialTransport(ViscaTransport):
    """VISCA over a serial line, 8N1 (Sony cameras: 9600 or 38400 baud)."""

    kind = "serial"

    def __init__(self, port: object, fd: int, path: str, baudrate: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._port = port  # serial.Serial, kept open for its configuration
        self._fd = fd
        self.path = path
        self.baudrate = baudrate
        self._loop = loop
        self._framer = _k.ViscaFramer()
        self._out = bytearray()
        self._writing = False
        loop.add_reader(fd, self._on_readable)

    @classmethod
    async def open(cls, path: str, baudrate: int = 9600) -> SerialTransport:
        """Open and configure ``path`` (8N1, no flow control) without blocking the loop."""
        if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
            raise CameraValueError(f"bad baud rate {baudrate!r}")
        import serial  # pyserial

        def _open() -> serial.Serial:
            return serial.Serial(
                path, baudrate=baudrate, bytesize=8, parity="N", stopbits=1,
                timeout=0, write_timeout=0, xonxoff=False, rtscts=False, exclusive=True,
            )

        try:
            port = await asyncio.to_thread(_open)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise CameraConnectionError(f"cannot open serial port {path}: {exc}") from exc
        fd = port.fileno()
        os.set_blocking(fd, False)
        return cls(port, fd, path, baudrate, asyncio.get_running_loop())

    @property
    def garbage_bytes(self) -> int:
        """Bytes the framer discarded (line noise, partial messages)."""
        return int(self._framer.garbage_bytes)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._report_lost(CameraConnectionError(f"serial port {self.path} lost: {exc}"))
            return
        if not data:
            self._report_lost(CameraConnectionError(f"serial port {self.path} closed (end of file)"))
            return
        for msg in self._framer.feed(data):
            self._deliver(msg)

    def send(self, message: bytes, *, inquiry: bool = False, retransmit: bool = False) -> int | None:
        self._check_open()
        self._out += message
        if not self._writing:
            self._flush()
        return None

    def _flush(self) -> None:
        while self._out:
            try:
                n = os.write(self._fd, self._out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._report_lost(CameraConnectionError(f"serial port {self.path} lost: {exc}"))
                return
            del self._out[:n]
        if self._out and not self._writing:
            self._writing = True
            self._loop.add_writer(self._fd, self._on_writable)
        elif not self._out and self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)

    def _on_writable(self) -> None:
        self._flush()

    def _teardown(self) -> None:
        if self._fd < 0:
            return
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        self._fd = -1
        try:
            self._port.close()  # type: ignore[attr-defined]
        except OSError as exc:  # pragma: no cover - device already gone
            _log.debug("closing %s: %s", self.path, exc)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self._owner = owner
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._owner._datagram(data)

    def error_received(self, exc: Exception) -> None:
        self._owner._error(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class UdpTransport(ViscaTransport):
    """Sony VISCA over IP: each message in a UDP datagram behind an 8-byte header
    (payload type, payload length, sequence number), replies come to the sender.

    The sequence number grows by one per new message; a retransmission reuses it.
    ``reset()`` sends the RESET control message (sequence number back to 0).
    """

    kind = "ip"

    def __init__(self) -> None:
        super().__init__()
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _UdpProtocol | None = None
        self._seq = 0
        self._last: bytes | None = None
        self._framer = _k.ViscaFramer()
        self._control_waiter: asyncio.Future[bytes] | None = None
        self._refused: Exception | None = None
        self.address: tuple[str, int] = ("", 0)
        self.malformed = 0
        self.sequence_errors = 0

    @classmethod
    async def open(cls, host: str, port: int = VISCA_IP_PORT, *, local_addr: tuple[str, int] | None = None) -> UdpTransport:
        self = cls()
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), remote_addr=(host, port), local_addr=local_addr
            )
        except (OSError, socket.gaierror) as exc:
            raise CameraConnectionError(f"cannot reach {host}:{port}: {exc}") from exc
        self._transport = transport
        self._protocol = protocol
        self.address = (host, port)
        return self

    @property
    def sequence(self) -> int:
        """Sequence number of the last message sent."""
        return self._seq

    def send(self, message: bytes, *, inquiry: bool = False, retransmit: bool = False) -> int | None:
        self._check_open()
        if self._refused is not None:
            exc, self._refused = self._refused, None
            raise CameraConnectionError(f"camera at {self.address[0]}:{self.address[1]} refused: {exc}")
        if retransmit and self._last is not None:
            datagram = self._last
        else:
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            ptype = PT_INQUIRY if inquiry else PT_COMMAND
            datagram = _k.pack_ip_header(ptype, len(message), self._seq) + message
            self._last = datagram
        assert self._transport is not None
        self._transport.sendto(datagram)
        return self._seq

    async def reset(self, timeout: float = 1.0, attempts: int = 3) -> None:
        """RESET control message: the camera and we both restart sequence numbers at 0."""
        self._check_open()
        loop = asyncio.get_running_loop()
        assert self._transport is not None
        for _ in range(attempts):
            fut: asyncio.Future[bytes] = loop.create_future()
            self._control_waiter = fut
            self._transport.sendto(_k.pack_ip_header(PT_CONTROL, 1, 0) + CONTROL_RESET)
            try:
                await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                continue
            finally:
                self._control_waiter = None
            self._seq = 0
            self._last = None
            return
        raise CameraTimeout(f"no reply to RESET from {self.address[0]}:{self.address[1]}")

    def _datagram(self, data: bytes) -> None:
        self._refused = None
        try:
            ptype, _, seq = _k.parse_ip_header(data)
        except ParseError as exc:
            self.malformed += 1
            _log.debug("dropping datagram: %s", exc)
            return
        payload = data[_k.IP_HEADER_LEN :]
        if ptype == PT_REPLY:
            msgs = self._framer.feed(payload)
            self._framer.reset()
            if not msgs:
                self.malformed += 1
            for msg in msgs:
                self._deliver(msg, seq)
        elif ptype == PT_CONTROL_REPLY:
            if payload == CONTROL_RESET:
                if self._control_waiter is not None and not self._control_waiter.done():
                    self._control_waiter.set_result(payload)
            elif payload == CONTROL_ERROR_SEQUENCE:
                # the camera lost track of our numbering: restart it, the caller's
                # retry (same message, next number) then goes through
                self.sequence_errors += 1
                _log.info("VISCA-over-IP sequence error reported by %s (seq %d)", self.address, seq)
                self._last = None
                self._seq = 0
                if self._transport is not None:
                    self._transport.sendto(_k.pack_ip_header(PT_CONTROL, 1, 0) + CONTROL_RESET)
            else:
                _log.info("VISCA-over-IP control reply %s from %s", payload.hex(" "), self.address)
        else:
            self.malformed += 1
            _log.debug("ignoring datagram of payload type 0x%04x", ptype)

    def _error(self, exc: Exception) -> None:
        # ICMP port unreachable on a connected socket: nobody listens (yet)
        if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
            self._refused = exc
            if self._control_waiter is not None and not self._control_waiter.done():
                self._control_waiter.set_exception(
                    CameraConnectionError(f"camera at {self.address[0]}:{self.address[1]} refused: {exc}")
                )
            _log.debug("VISCA-over-IP: %s", exc)
            return
        _log.warning("VISCA-over-IP socket error: %s", exc)

    async def close(self) -> None:
        """Close the socket and wait until it is released. Idempotent."""
        await super().close()
        if self._protocol is not None:
            await self._protocol.closed

    def _teardown(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._control_waiter is not None and not self._control_waiter.done():
            self._control_waiter.cancel()
