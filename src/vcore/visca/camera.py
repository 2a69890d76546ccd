"""ViscaCamera: asyncio control of one VISCA camera over a serial line or IP.

Every command is sent, acknowledged (``z0 4y``: it runs in socket ``y``) and awaited to
completion (``z0 5y``) with timeouts. The send-until-first-reply phase is serialised per
camera (a reply names a socket, not a command), so at most one message awaits its first
reply; after the acknowledge the camera holds the command in one of its two sockets and
the next message may go. Commands are therefore serialised per socket and at most two
run at once (more would get "buffer full"); inquiries are answered at once, even while
both sockets are busy.

Retries: a message without a first reply is sent again only when repeating it is safe
(inquiries and idempotent commands: absolute moves, presets, modes; not relative moves
or toggles). Over IP the retransmission keeps its sequence number. A command whose
completion does not come in time, or whose awaiting task is cancelled, is cancelled on the
camera (``8x 2y``). Every error is a :class:`~vcore.visca.CameraError`; the camera object
stays usable after all of them except a lost link (:class:`CameraConnectionError`).

Thread-safety: a ViscaCamera belongs to the event loop that opened it; it is not
thread-safe, but any number of tasks of that loop may use it concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from . import protocol as p
from .errors import (
    CameraConnectionError,
    CameraError,
    CameraProtocolError,
    CameraTimeout,
    CameraValueError,
    error_for_code,
)
from .transport import VISCA_IP_PORT, SerialTransport, UdpTransport, ViscaTransport

__all__ = ["ViscaCamera", "CameraVersion"]

_log = logging.getLogger(__name__)

DEFAULT_REPLY_TIMEOUT = 1.0  # first reply (ack, answer, error); a 16-byte message takes 17 ms at 9600 baud
DEFAULT_COMPLETION_TIMEOUT = 30.0  # a full pan at low speed or a power-on can take many seconds


@dataclass(frozen=True)
class CameraVersion:
    """Answer to CAM_VersionInq: vendor (0x0001 Sony), model, ROM version, sockets."""

    vendor: int
    model: int
    rom: int
    max_socket: int


@dataclass
class _Pending:
    kind: str  # "command" | "inquiry" | "cancel"
    future: asyncio.Future[tuple[str, Any]]
    seq: int | None = None
    socket: int = 0


class _Bus:
    """One transport and the cameras behind it (a daisy chain shares a serial line)."""

    def __init__(self, transport: ViscaTransport) -> None:
        self.transport = transport
        self.cameras: dict[int, ViscaCamera] = {}
        self.lock = asyncio.Lock()  # broadcasts
        self.waiter: asyncio.Future[p.Reply] | None = None
        self.bad_replies = 0
        transport.attach(self._on_message, self._on_lost)

    def _on_message(self, msg: bytes, seq: int | None) -> None:
        try:
            reply = p.parse_reply(msg)
        except CameraProtocolError as exc:
            self.bad_replies += 1
            _log.debug("ignoring %s", exc)
            return
        if reply.kind in (p.ReplyKind.ADDRESS_SET, p.ReplyKind.IF_CLEAR):
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(reply)
            return
        cam = self.cameras.get(reply.address)
        if cam is None:
            _log.debug("reply from camera %d, which nobody controls: %s", reply.address, msg.hex(" "))
            return
        cam._on_reply(reply, seq)

    def _on_lost(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(CameraConnectionError(str(exc)))
        for cam in list(self.cameras.values()):
            cam._on_lost(exc)

    async def broadcast(self, message: bytes, timeout: float) -> p.Reply:
        async with self.lock:
            fut: asyncio.Future[p.Reply] = asyncio.get_running_loop().create_future()
            self.waiter = fut
            try:
                self.transport.send(message)
                return await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                raise CameraTimeout(f"no reply to broadcast {message.hex(' ')} within {timeout}s") from None
            finally:
                self.waiter = None

    async def release(self, cam: ViscaCamera) -> None:
        if self.cameras.get(cam.address) is cam:
            del self.cameras[cam.address]
        if not self.cameras:
            await self.transport.close()


class ViscaCamera:
    """One camera: ``await ViscaCamera.open_serial(path)`` or ``await ViscaCamera.open_ip(host)``.

    ``reply_timeout``: seconds to wait for the first reply; ``completion_timeout``: for the
    end of a command (override per call with ``timeout=``); ``retries``: extra sends of a
    message that got no first reply, when repeating it is safe. ``table``: the command
    set (:data:`~vcore.visca.protocol.SONY_TABLE` or an extended copy).
    """

    def __init__(
        self,
        transport: ViscaTransport | _Bus,
        *,
        address: int = 1,
        table: p.CommandTable = p.SONY_TABLE,
        reply_timeout: float = DEFAULT_REPLY_TIMEOUT,
        completion_timeout: float = DEFAULT_COMPLETION_TIMEOUT,
        retries: int = 2,
        on_network_change: Callable[[int], None] | None = None,
    ) -> None:
        if not 1 <= address <= 7:
            raise CameraValueError(f"camera address must be in [1, 7], got {address}")
        self._bus = transport if isinstance(transport, _Bus) else _Bus(transport)
        if address in self._bus.cameras:
            raise CameraValueError(f"camera {address} already has a controller on this link")
        self._bus.cameras[address] = self
        self.address = address
        self.table = table
        self.reply_timeout = reply_timeout
        self.completion_timeout = completion_timeout
        self.retries = retries
        self.on_network_change = on_network_change
        self.network_changes = 0
        self._issue_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(2)
        self._pending: _Pending | None = None
        self._sockets: dict[int, asyncio.Future[bytes]] = {}
        self._abandoned: set[int] = set()
        self._cancel_sent: dict[int, int] = {}
        self._lost: Exception | None = None
        self._closed = False

    # ------------------------------------------------------------------ opening

    @classmethod
    async def open_serial(
        cls, path: str, baudrate: int = 9600, address: int = 1, *, clear: bool = True, **options: Any
    ) -> ViscaCamera:
        """Open a serial port (pyserial; 8N1) and the camera at ``address`` on it.

        ``clear``: send a broadcast IF_Clear first (fails with CameraTimeout when nothing
        answers). Raises CameraConnectionError when the port cannot be opened.
        """
        transport = await SerialTransport.open(path, baudrate)
        try:
            cam = cls(transport, address=address, **options)
        except BaseException:
            await transport.close()
            raise
        if clear:
            try:
                await cam.if_clear()
            except BaseException:
                await cam.close()
                raise
        return cam

    @classmethod
    async def open_ip(
        cls,
        host: str,
        port: int = VISCA_IP_PORT,
        *,
        address: int = 1,
        local_addr: tuple[str, int] | None = None,
        reset: bool = True,
        clear: bool = True,
        **options: Any,
    ) -> ViscaCamera:
        """Open a VISCA-over-IP camera (Sony UDP encapsulation, port 52381).

        ``reset`` sends the RESET control message (sequence numbers from 0), ``clear`` an
        IF_Clear; either raises CameraTimeout when the camera does not answer.
        """
        transport = await UdpTransport.open(host, port, local_addr=local_addr)
        try:
            cam = cls(transport, address=address, **options)
        except BaseException:
            await transport.close()
            raise
        try:
            if reset:
                await transport.reset(timeout=cam.reply_timeout, attempts=1 + cam.retries)
            if clear:
                await cam.if_clear()
        except BaseException:
            await cam.close()
            raise
        return cam

    def chained(self, address: int, **options: Any) -> ViscaCamera:
        """Another camera of the same daisy chain (same serial line), at ``address``."""
        self._check_usable()
        opts: dict[str, Any] = dict(
            table=self.table,
            reply_timeout=self.reply_timeout,
            completion_timeout=self.completion_timeout,
            retries=self.retries,
        )
        opts.update(options)
        return ViscaCamera(self._bus, address=address, **opts)

    async def close(self) -> None:
        """Stop using the camera; the link closes with its last camera. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._fail_all(CameraConnectionError("camera closed"))
        await self._bus.release(self)

    async def __aenter__(self) -> ViscaCamera:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def transport(self) -> ViscaTransport:
        return self._bus.transport

    @property
    def busy_sockets(self) -> tuple[int, ...]:
        """Sockets whose command we are waiting to complete."""
        return tuple(sorted(self._sockets))

    # ------------------------------------------------------------------ replies

    def _on_reply(self, reply: p.Reply, seq: int | None) -> None:
        kind, s = reply.kind, reply.socket
        pending = self._pending
        if pending is not None and pending.future.done():
            pending = None
        late = pending is not None and seq is not None and pending.seq is not None and seq != pending.seq
        if kind is p.ReplyKind.NETWORK_CHANGE:
            self.network_changes += 1
            _log.info("camera %d reports a network change", self.address)
            if self.on_network_change is not None:
                self.on_network_change(self.address)
            return
        if kind is p.ReplyKind.UNDELIVERED:
            if pending is not None:
                pending.future.set_exception(
                    CameraConnectionError(f"no camera at address {self.address}: the message came back round the chain")
                )
            return
        if kind is p.ReplyKind.ACK:
            if pending is not None and pending.kind == "command" and not late:
                fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
                old = self._sockets.get(s)
                if old is not None and not old.done():  # the camera reused the socket: its end was lost
                    old.set_exception(CameraProtocolError(f"the reply ending the command in socket {s} was lost"))
                self._sockets[s] = fut
                pending.future.set_result(("ack", (s, fut)))
            else:  # a command we gave up on was accepted after all: ignore its completion
                _log.debug("late acknowledge for socket %d", s)
                self._abandoned.add(s)
            return
        if kind is p.ReplyKind.COMPLETION:
            if s and s in self._sockets:
                sock_fut = self._sockets.pop(s)
                if not sock_fut.done():
                    sock_fut.set_result(reply.data)
            elif s and s in self._abandoned:
                self._abandoned.discard(s)
            elif pending is not None and not late and (
                pending.kind == "command" or (pending.kind == "inquiry" and s == 0)
            ):  # an inquiry answer, or a completion whose acknowledge was lost
                pending.future.set_result(("done", reply.data))
            else:
                _log.debug("unexpected completion %r", reply)
            return
        # error reply
        code = reply.code
        if s and s in self._cancel_sent and code in (p.ERROR_CANCELLED, p.ERROR_NO_SOCKET):
            self._cancel_sent[s] -= 1
            if not self._cancel_sent[s]:
                del self._cancel_sent[s]
            self._abandoned.discard(s)
            return
        if pending is not None and pending.kind == "cancel" and s == pending.socket and code in (
            p.ERROR_CANCELLED, p.ERROR_NO_SOCKET
        ):
            pending.future.set_result(("cancel", code == p.ERROR_CANCELLED))
        if s and s in self._sockets:
            sock_fut = self._sockets.pop(s)
            if not sock_fut.done():
                sock_fut.set_exception(error_for_code(code, s))
        elif s and s in self._abandoned:
            self._abandoned.discard(s)
        elif pending is not None and not pending.future.done() and not late:
            pending.future.set_exception(error_for_code(code, s))
        else:
            _log.debug("unexpected error reply %r", reply)

    def _on_lost(self, exc: Exception) -> None:
        self._lost = exc
        self._fail_all(CameraConnectionError(f"camera {self.address} lost: {exc}"))

    def _fail_all(self, exc: CameraError) -> None:
        if self._pending is not None and not self._pending.future.done():
            self._pending.future.set_exception(exc)
        for fut in self._sockets.values():
            if not fut.done():
                fut.set_exception(exc)
        self._sockets.clear()

    def _check_usable(self) -> None:
        if self._closed:
            raise CameraConnectionError("camera closed")
        if self._lost is not None:
            raise CameraConnectionError(f"camera {self.address} lost: {self._lost}")

    # ------------------------------------------------------------------ engine

    async def _first_reply(self, kind: str, message: bytes, *, inquiry: bool, safe: bool, what: str,
                           socket: int = 0) -> tuple[str, Any]:
        """Send under the issue lock and wait for the first reply, resending when safe."""
        attempts = 1 + (self.retries if safe else 0)
        loop = asyncio.get_running_loop()
        async with self._issue_lock:
            for attempt in range(attempts):
                self._check_usable()
                fut: asyncio.Future[tuple[str, Any]] = loop.create_future()
                pending = _Pending(kind, fut, socket=socket)
                self._pending = pending
                try:
                    pending.seq = self._bus.transport.send(message, inquiry=inquiry, retransmit=attempt > 0)
                    return await asyncio.wait_for(fut, self.reply_timeout)
                except asyncio.TimeoutError:
                    _log.debug("no reply to %s (attempt %d/%d)", what, attempt + 1, attempts)
                finally:
                    self._pending = None
                    if fut.done() and not fut.cancelled():
                        fut.exception()  # consumed: never "exception was never retrieved"
        raise CameraTimeout(
            f"camera {self.address}: no reply to {what} after {attempts} attempt(s) of {self.reply_timeout}s"
        )

    async def execute(self, message: bytes, *, safe: bool = False, timeout: float | None = None,
                      what: str | None = None) -> bytes:
        """Send one command message and wait for its completion; returns completion data.

        Raises CameraTimeout, CameraConnectionError or a CameraReplyError subclass.
        """
        what = what or message.hex(" ")
        wait = self.completion_timeout if timeout is None else timeout
        self._check_usable()
        async with self._slots:
            kind, value = await self._first_reply("command", message, inquiry=False, safe=safe, what=what)
            if kind == "done":  # completed without an acknowledge (socket 0)
                return bytes(value)
            sock, fut = value
            try:
                return bytes(await asyncio.wait_for(asyncio.shield(fut), wait))
            except asyncio.TimeoutError:
                self._abandon(sock, fut)
                raise CameraTimeout(f"camera {self.address}: {what} did not complete within {wait}s") from None
            except asyncio.CancelledError:
                self._abandon(sock, fut)
                raise

    def _abandon(self, sock: int, fut: asyncio.Future[bytes]) -> None:
        """Stop waiting for socket ``sock``: cancel it on the camera, swallow its last reply."""
        if self._sockets.get(sock) is fut:
            del self._sockets[sock]
            self._abandoned.add(sock)
            if self._lost is None and not self._closed:
                try:
                    self._bus.transport.send(p.encode_cancel(self.address, sock))
                    self._cancel_sent[sock] = self._cancel_sent.get(sock, 0) + 1
                except CameraError as exc:
                    _log.debug("could not cancel socket %d: %s", sock, exc)
        if not fut.done():
            fut.cancel()
        elif not fut.cancelled():
            fut.exception()

    async def command(self, name: str, *, timeout: float | None = None, **params: int) -> None:
        """Run command ``name`` of the table with ``params`` and wait for its completion."""
        spec = self.table.get(name)
        if spec.inquiry:
            raise CameraValueError(f"{name} is an inquiry: use inquire()")
        message = p.encode_message(self.address, spec.encode_body(params))
        await self.execute(message, safe=spec.idempotent, timeout=timeout, what=name)

    async def inquire(self, name: str, **params: int) -> dict[str, int]:
        """Ask inquiry ``name``; returns the decoded fields of the answer."""
        spec = self.table.get(name)
        if not spec.inquiry:
            raise CameraValueError(f"{name} is a command: use command()")
        message = p.encode_message(self.address, spec.encode_body(params))
        self._check_usable()
        kind, data = await self._first_reply("inquiry", message, inquiry=True, safe=True, what=name)
        if kind != "done":
            raise CameraProtocolError(f"{name}: acknowledge instead of an answer")
        return spec.decode_reply(bytes(data))

    async def cancel(self, socket: int) -> bool:
        """Command cancel of ``socket``: True when a command was cancelled, False when the
        socket was empty (error 05). The cancelled command raises CameraCancelled."""
        message = p.encode_cancel(self.address, socket)
        kind, value = await self._first_reply("cancel", message, inquiry=False, safe=True,
                                              what=f"cancel {socket}", socket=socket)
        return bool(value)

    async def if_clear(self) -> None:
        """IF_Clear: the camera empties its command buffers (broadcast on a serial line)."""
        self._check_usable()
        if self._bus.transport.kind == "serial":
            await self._bus.broadcast(p.encode_if_clear_broadcast(), self.reply_timeout * (1 + self.retries))
        else:
            await self.command("if_clear")

    async def address_set(self) -> int:
        """Address set (broadcast): cameras of the chain number themselves 1, 2, ...;
        returns how many cameras answered."""
        self._check_usable()
        reply = await self._bus.broadcast(p.encode_address_set(1), self.reply_timeout * (1 + self.retries))
        return reply.address - 1

    # ------------------------------------------------------------------ commands

    async def power(self, on: bool, *, timeout: float | None = None) -> None:
        await self.command("power_on" if on else "power_off", timeout=timeout)

    async def power_state(self) -> bool:
        return (await self.inquire("power_inq"))["state"] == 2

    async def zoom_stop(self) -> None:
        await self.command("zoom_stop")

    async def zoom_tele(self, speed: int | None = None) -> None:
        """Start zooming in (standard speed, or variable 0-7); stop with zoom_stop()."""
        await (self.command("zoom_tele") if speed is None else self.command("zoom_tele_var", speed=speed))

    async def zoom_wide(self, speed: int | None = None) -> None:
        await (self.command("zoom_wide") if speed is None else self.command("zoom_wide_var", speed=speed))

    async def zoom_to(self, position: int, *, timeout: float | None = None) -> None:
        """Zoom to ``position`` (0 wide .. 0x4000 optical tele) and wait until there."""
        await self.command("zoom_direct", position=position, timeout=timeout)

    async def zoom_position(self) -> int:
        return (await self.inquire("zoom_position_inq"))["position"]

    async def focus_auto(self) -> None:
        await self.command("focus_auto")

    async def focus_manual(self) -> None:
        await self.command("focus_manual")

    async def focus_one_push(self) -> None:
        """One-push autofocus (manual focus mode)."""
        await self.command("focus_one_push")

    async def focus_near(self, speed: int | None = None) -> None:
        await (self.command("focus_near") if speed is None else self.command("focus_near_var", speed=speed))

    async def focus_far(self, speed: int | None = None) -> None:
        await (self.command("focus_far") if speed is None else self.command("focus_far_var", speed=speed))

    async def focus_stop(self) -> None:
        await self.command("focus_stop")

    async def focus_to(self, position: int, *, timeout: float | None = None) -> None:
        """Focus at ``position`` (0x1000 far .. 0xF000 near; manual focus mode)."""
        await self.command("focus_direct", position=position, timeout=timeout)

    async def focus_position(self) -> int:
        return (await self.inquire("focus_position_inq"))["position"]

    async def focus_mode(self) -> str:
        """"auto" or "manual"."""
        return "auto" if (await self.inquire("focus_mode_inq"))["mode"] == 2 else "manual"

    async def pan_tilt(self, direction: str, pan_speed: int = 0x0C, tilt_speed: int = 0x0C) -> None:
        """Start moving: up, down, left, right, up_left, up_right, down_left, down_right, stop."""
        if direction not in p.DIRECTIONS:
            raise CameraValueError(f"direction must be one of {sorted(p.DIRECTIONS)}, got {direction!r}")
        await self.command(f"pan_tilt_{direction}", pan_speed=pan_speed, tilt_speed=tilt_speed)

    async def pan_tilt_stop(self) -> None:
        await self.pan_tilt("stop")

    async def pan_tilt_to(self, pan: int, tilt: int, pan_speed: int = 0x10, tilt_speed: int = 0x10,
                          *, timeout: float | None = None) -> None:
        """Absolute move (signed 16-bit positions) and wait until there."""
        await self.command("pan_tilt_absolute", pan=pan, tilt=tilt, pan_speed=pan_speed,
                           tilt_speed=tilt_speed, timeout=timeout)

    async def pan_tilt_by(self, pan: int, tilt: int, pan_speed: int = 0x10, tilt_speed: int = 0x10,
                          *, timeout: float | None = None) -> None:
        """Relative move; never resent (not safe to repeat)."""
        await self.command("pan_tilt_relative", pan=pan, tilt=tilt, pan_speed=pan_speed,
                           tilt_speed=tilt_speed, timeout=timeout)

    async def home(self, *, timeout: float | None = None) -> None:
        await self.command("pan_tilt_home", timeout=timeout)

    async def pan_tilt_reset(self, *, timeout: float | None = None) -> None:
        """Mechanical reset (moves to both ends, then home)."""
        await self.command("pan_tilt_reset", timeout=timeout)

    async def pan_tilt_limit_set(self, corner: str, pan: int, tilt: int) -> None:
        """Limit the travel: ``corner`` "up_right" or "down_left"."""
        await self.command("pan_tilt_limit_set", corner=_corner(corner), pan=pan, tilt=tilt)

    async def pan_tilt_limit_clear(self, corner: str) -> None:
        await self.command("pan_tilt_limit_clear", corner=_corner(corner))

    async def pan_tilt_position(self) -> tuple[int, int]:
        v = await self.inquire("pan_tilt_position_inq")
        return v["pan"], v["tilt"]

    async def preset_set(self, preset: int) -> None:
        await self.command("memory_set", preset=preset)

    async def preset_recall(self, preset: int, *, timeout: float | None = None) -> None:
        await self.command("memory_recall", preset=preset, timeout=timeout)

    async def preset_reset(self, preset: int) -> None:
        await self.command("memory_reset", preset=preset)

    async def white_balance(self, mode: str) -> None:
        """auto, indoor, outdoor, one_push, atw, manual."""
        if mode not in p.WB_MODES:
            raise CameraValueError(f"white balance mode must be one of {sorted(p.WB_MODES)}, got {mode!r}")
        await self.command("white_balance", mode=p.WB_MODES[mode])

    async def white_balance_trigger(self) -> None:
        await self.command("white_balance_trigger")

    async def white_balance_mode(self) -> str:
        mode = (await self.inquire("white_balance_inq"))["mode"]
        return next((k for k, v in p.WB_MODES.items() if v == mode), f"0x{mode:02x}")

    async def exposure_mode(self, mode: str) -> None:
        """auto, manual, shutter (priority), iris (priority), bright."""
        if mode not in p.AE_MODES:
            raise CameraValueError(f"exposure mode must be one of {sorted(p.AE_MODES)}, got {mode!r}")
        await self.command("exposure_mode", mode=p.AE_MODES[mode])

    async def exposure_mode_state(self) -> str:
        mode = (await self.inquire("exposure_mode_inq"))["mode"]
        return next((k for k, v in p.AE_MODES.items() if v == mode), f"0x{mode:02x}")

    async def backlight(self, on: bool) -> None:
        await self.command("backlight", state=2 if on else 3)

    async def backlight_state(self) -> bool:
        return (await self.inquire("backlight_inq"))["state"] == 2

    async def version(self) -> CameraVersion:
        v = await self.inquire("version_inq")
        return CameraVersion(v["vendor"], v["model"], v["rom"], v["max_socket"])

    async def status(self) -> dict[str, Any]:
        """Power, pan, tilt, zoom, focus position and mode in one dict (for displays)."""
        pan, tilt = await self.pan_tilt_position()
        return {
            "power": await self.power_state(),
            "pan": pan,
            "tilt": tilt,
            "zoom": await self.zoom_position(),
            "focus": await self.focus_position(),
            "focus_mode": await self.focus_mode(),
        }


def _corner(corner: str) -> int:
    if corner == "up_right":
        return 1
    if corner == "down_left":
        return 0
    raise CameraValueError(f'corner must be "up_right" or "down_left", got {corner!r}')
