"""UDP sockets read with the kernel's receive time of every datagram (``SO_TIMESTAMPNS``, Linux).

asyncio's datagram transport reads one datagram per event-loop iteration and a
datagram can only be stamped when its callback runs: on a busy machine (or after
the process was not scheduled for a while) datagrams queue in the socket and each
is stamped later than it arrived, by a varying amount that reads as jitter.
:class:`StampedSocket` reads everything queued when the socket is readable and
hands each datagram over with the time the kernel received it, moved onto the
monotonic clock. Used by the line test and by the network emulator's relay, where
the arrival time is the measurement.

``SO_TIMESTAMPNS`` is not in Python's :mod:`socket` module: 35 on the asm-generic
ABI; other ABIs (alpha, parisc, sparc, some mips) are left to the user-space time
(:data:`KERNEL_TIMESTAMPS` is False there) rather than risk setting another option.
Use a :class:`StampedSocket` from its event loop only.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["KERNEL_TIMESTAMPS", "kernel_arrival", "StampedSocket", "open_stamped"]

log = logging.getLogger(__name__)

SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>
_TIMESPEC = struct.Struct("@ll")
KERNEL_TIMESTAMPS = sys.platform.startswith("linux") and platform.machine().lower() in {
    "x86_64", "amd64", "i386", "i486", "i586", "i686", "aarch64", "arm64", "armv7l", "armv8l", "riscv64",
    "ppc64le", "s390x"}
"""Whether this platform's sockets are read with kernel receive timestamps."""
_BATCH = 256  # datagrams read per readable callback (the loop calls again while the socket is readable)


def kernel_arrival(ancdata: list[tuple[int, int, bytes]], mono: float, wall: float) -> float:
    """A datagram's kernel receive time on the monotonic clock; ``mono`` (the read time) without one.

    ``mono`` and ``wall`` are the monotonic and real-time clocks read together just after the
    datagram was read: the real-time stamp is moved onto the monotonic clock by their difference.
    A stamp after ``mono`` or more than ten seconds before it (the real-time clock stepped) is not
    believed.
    """
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) == _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack(data)
            t: float = sec + nsec * 1e-9 - (wall - mono)
            if mono - 10.0 <= t <= mono:
                return t
    return mono


class StampedSocket:
    """A non-blocking UDP socket on an event loop: ``on_datagram(data, addr, arrival)`` per datagram.

    ``arrival`` is on ``clock`` (default the loop's, i.e. monotonic). ``on_error(exc)`` gets the
    socket errors (an ICMP port unreachable, as a transport's ``error_received``). Sends that do
    not fit the socket buffer are dropped and logged, as on a line.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 on_datagram: Callable[[bytes, Any, float], None], *,
                 on_error: Callable[[OSError], None] | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._on_datagram = on_datagram
        self._on_error = on_error
        self._clock = clock or loop.time
        loop.add_reader(sock.fileno(), self._readable)

    def _error(self, exc: OSError) -> None:
        if self._on_error is not None:
            self._on_error(exc)
        else:
            log.debug("socket error: %s", exc)

    def _readable(self) -> None:
        for _ in range(_BATCH):
            sock = self._sock  # the callback may have closed it
            if sock is None:
                return
            try:
                data, ancdata, _flags, addr = sock.recvmsg(65536, socket.CMSG_SPACE(_TIMESPEC.size))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._error(exc)
                return
            mono = self._clock()
            self._on_datagram(data, addr, kernel_arrival(ancdata, mono, time.time()))

    def sendto(self, data: bytes, addr: Any = None) -> None:
        """Send ``data`` (to ``addr``, or to the connected peer)."""
        if self._sock is None:
            return
        try:
            if addr is None:
                self._sock.send(data)
            else:
                self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            log.debug("socket buffer full: a datagram dropped")
        except OSError as exc:
            self._error(exc)

    def get_extra_info(self, name: str) -> Any:
        return self._sock.getsockname() if name == "sockname" and self._sock is not None else None

    def is_closing(self) -> bool:
        return self._sock is None

    def close(self) -> None:
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None


async def open_stamped(on_datagram: Callable[[bytes, Any, float], None], *, local: tuple[str, int] | None = None,
                       remote: tuple[str, int] | None = None, on_error: Callable[[OSError], None] | None = None,
                       clock: Callable[[], float] | None = None) -> StampedSocket | None:
    """A :class:`StampedSocket` bound to ``local`` and/or connected to ``remote``.

    None where kernel timestamps or ``add_reader`` are not available (the caller falls back to an
    asyncio datagram transport); :class:`OSError` when no socket can be made.
    """
    if not KERNEL_TIMESTAMPS:
        return None
    loop = asyncio.get_running_loop()
    host, port = remote if remote is not None else local if local is not None else ("0.0.0.0", 0)
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    error: OSError = OSError(f"no address for {host}")
    for family, type_, proto, _name, addr in infos:
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if remote is not None:
                if local is not None:
                    sock.bind(local)
                sock.connect(addr)
            else:
                sock.bind(addr)
            return StampedSocket(loop, sock, on_datagram, on_error=on_error, clock=clock)
        except NotImplementedError:  # a loop without add_reader (Windows' proactor)
            sock.close()
            return None
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error
