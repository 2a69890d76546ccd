"""CameraEmulator: a simulated Sony VISCA camera (or daisy chain) on a pseudo-terminal and UDP.

What it simulates, as a Sony EVI/BRC camera does:

- two command sockets: a command is acknowledged (``z0 4y``) in a free socket, runs, and
  completes (``z0 5y``); a command when both are busy gets "buffer full" (``z0 60 03``);
  inquiries are answered at once (``z0 50 ..``) whatever the sockets hold;
- errors: message longer than 16 bytes (01), unknown command or parameter out of range
  (02), buffer full (03), cancel (``8x 2y``) of a running command (04) or of an empty
  socket (05), not executable (41) while powered off or powering on, and for manual
  focus commands in auto-focus mode;
- a new command that moves the same thing (pan-tilt, zoom, focus) supersedes the running
  one, which ends with "cancelled" (04);
- motion at realistic speeds (``speed_factor`` > 1 makes it faster, for tests), positions
  that move while you ask for them, travel limits, presets, power-on time;
- on the pty: serial timing at the configured baud rate (a message is delivered only
  after its bytes x 10 / baud seconds, replies queue on the line), address set and
  IF_Clear broadcasts through a chain of ``cameras``, messages to an address nobody has
  come back round the ring;
- over UDP (Sony VISCA over IP): the 8-byte header, replies with the request's sequence
  number, RESET, retransmissions answered from a cache instead of executed twice,
  "sequence number error" for a number older than the last one, "abnormal message" for
  an unknown payload type or a bad length.

Test hooks: ``silent`` (drop every reply), ``drop_replies`` (drop that many next replies),
``inject(data)`` (raw bytes to the client),
``announce_network_change()``. Thread-safety: runs on the event loop that started it;
not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from .._speedups import fastpath_visca as _k
from ..errors import ParseError
from . import protocol as p
from .transport import (
    CONTROL_ERROR_MESSAGE,
    CONTROL_ERROR_SEQUENCE,
    CONTROL_RESET,
    PT_COMMAND,
    PT_CONTROL,
    PT_CONTROL_REPLY,
    PT_DEVICE_SETTING,
    PT_INQUIRY,
    PT_REPLY,
    wire_time,
)

__all__ = ["CameraEmulator", "SimulatedCamera"]

_log = logging.getLogger(__name__)

Route = Callable[[bytes], None]

# travel and speeds of the simulated head (units per second at speed_factor 1)
PAN_RANGE = (-0x0990, 0x0990)  # about +-170 degrees
TILT_RANGE = (-0x01B0, 0x0510)  # about -30 / +90 degrees
ZOOM_RANGE = (0, 0x4000)
FOCUS_RANGE = (0x1000, 0xF000)
PAN_UNITS_PER_SPEED = 60.0  # speed 0x18 -> 1440 units/s (about 100 degrees/s)
TILT_UNITS_PER_SPEED = 50.0
ZOOM_DIRECT_SPEED = 8192.0  # wide to tele in 2 s
FOCUS_DIRECT_SPEED = 40960.0
POWER_ON_TIME = 2.0
POWER_OFF_TIME = 1.0
VERSION = {"vendor": 0x0001, "model": 0x0519, "rom": 0x0100, "max_socket": 2}  # vendor 0001: Sony


class _Refuse(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Axis:
    """A position that moves at constant velocity, toward a target or until a limit."""

    def __init__(self, value: float, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.p0 = float(value)
        self.t0 = 0.0
        self.v = 0.0
        self.target: float | None = None

    def value(self, now: float) -> int:
        pos = self.p0
        if self.v:
            pos += self.v * (now - self.t0)
            if self.target is not None:
                pos = min(pos, self.target) if self.v > 0 else max(pos, self.target)
        return int(round(min(max(pos, self.lo), self.hi)))

    def move_to(self, target: float, speed: float, now: float) -> float:
        """Start toward ``target`` (clamped to the limits); returns the travel time."""
        pos = self.value(now)
        target = min(max(target, self.lo), self.hi)
        self.p0, self.t0, self.target = float(pos), now, float(target)
        dist = target - pos
        if dist == 0 or speed <= 0:
            self.p0, self.v, self.target = float(target), 0.0, None
            return 0.0
        self.v = math.copysign(speed, dist)
        return abs(dist) / speed

    def drive(self, velocity: float, now: float) -> None:
        self.p0, self.t0, self.v, self.target = float(self.value(now)), now, velocity, None

    def stop(self, now: float) -> None:
        self.drive(0.0, now)

    def set_limits(self, lo: int, hi: int, now: float) -> None:
        self.p0, self.t0 = float(self.value(now)), now
        self.lo, self.hi = lo, hi


@dataclass
class _Job:
    socket: int
    groups: frozenset[str]
    route: Route
    task: asyncio.Task[None] | None = None


@dataclass
class _Preset:
    pan: int
    tilt: int
    zoom: int
    focus: int


class SimulatedCamera:
    """The state of one emulated camera; read its attributes in tests."""

    def __init__(self, emulator: CameraEmulator, address: int) -> None:
        self._emu = emulator
        self.address = address
        self.power = True
        self.ready_at = 0.0
        self.pan = _Axis(0, *PAN_RANGE)
        self.tilt = _Axis(0, *TILT_RANGE)
        self.zoom = _Axis(0, *ZOOM_RANGE)
        self.focus = _Axis(0x1000, *FOCUS_RANGE)
        self.focus_mode = 2  # auto
        self.white_balance = 0
        self.exposure_mode = 0
        self.backlight = 3
        self.registers: dict[str, int] = {}
        self.presets: dict[int, _Preset] = {}
        self.sockets: dict[int, _Job] = {}
        self.commands = 0  # messages handled

    # -- helpers -------------------------------------------------------------

    @property
    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def _speed(self, units_per_s: float) -> float:
        return units_per_s * self._emu.speed_factor

    def position(self) -> tuple[int, int, int, int]:
        """(pan, tilt, zoom, focus) now."""
        now = self.now
        return self.pan.value(now), self.tilt.value(now), self.zoom.value(now), self.focus.value(now)

    def _end_job(self, job: _Job) -> None:
        if self.sockets.get(job.socket) is job:
            del self.sockets[job.socket]
        if job.task is not None and not job.task.done():
            job.task.cancel()

    def clear(self) -> None:
        """IF_Clear: forget the commands in the sockets (no replies for them)."""
        for job in list(self.sockets.values()):
            self._end_job(job)

    def stop_tasks(self) -> list[asyncio.Task[None]]:
        tasks = [j.task for j in self.sockets.values() if j.task is not None]
        self.clear()
        return tasks

    async def _finish(self, job: _Job, duration: float) -> None:
        await asyncio.sleep(duration)
        if self.sockets.get(job.socket) is job:
            del self.sockets[job.socket]
            job.route(p.encode_completion(self.address, job.socket))

    # -- dispatch ------------------------------------------------------------

    def handle(self, msg: bytes, route: Route) -> None:
        """One message addressed to this camera; replies go to ``route``."""
        self.commands += 1
        a = self.address
        if len(msg) > p.MAX_MESSAGE:
            route(p.encode_error(a, 0, p.ERROR_MESSAGE_LENGTH))
            return
        body = msg[1:-1]
        if p.is_cancel(body):
            s = body[0] & 0x0F
            job = self.sockets.get(s)
            if job is None:
                route(p.encode_error(a, s, p.ERROR_NO_SOCKET))
                return
            self._end_job(job)
            self._stop_groups(job.groups)
            job.route(p.encode_error(a, s, p.ERROR_CANCELLED))
            return
        found = self._emu.table.match(body)
        if found is None:
            route(p.encode_error(a, 0, p.ERROR_SYNTAX))
            return
        spec, params = found
        now = self.now
        if spec.inquiry:
            answer = getattr(self, "_inq_" + spec.name[: -len("_inq")], None)
            if answer is None:
                route(p.encode_error(a, 0, p.ERROR_SYNTAX))
                return
            route(p.encode_completion(a, 0, spec.encode_reply(answer(now))))
            return
        if spec.name == "if_clear":
            self.clear()
            route(p.encode_completion(a, 0))
            return
        handler = getattr(self, "_do_" + spec.name, None)
        if handler is None and spec.name.startswith("pan_tilt_") and spec.name[9:] in p.DIRECTIONS:
            handler = self._drive
        if handler is None:
            route(p.encode_error(a, 0, p.ERROR_NOT_EXECUTABLE))
            return
        if spec.name not in ("power_on", "power_off") and (not self.power or now < self.ready_at):
            route(p.encode_error(a, 0, p.ERROR_NOT_EXECUTABLE))
            return
        free = [s for s in (1, 2) if s not in self.sockets]
        if not free:
            route(p.encode_error(a, 0, p.ERROR_BUFFER_FULL))
            return
        try:
            duration, groups = handler(now, spec.name, **params)
        except _Refuse as exc:
            route(p.encode_error(a, 0, exc.code))
            return
        s = free[0]
        for job in list(self.sockets.values()):
            if job.groups & groups:  # superseded by the new command
                self._end_job(job)
                job.route(p.encode_error(a, job.socket, p.ERROR_CANCELLED))
        route(p.encode_ack(a, s))
        if duration <= 0:
            route(p.encode_completion(a, s))
            return
        job = _Job(s, frozenset(groups), route)
        self.sockets[s] = job
        job.task = asyncio.get_running_loop().create_task(self._finish(job, duration))

    def _stop_groups(self, groups: frozenset[str]) -> None:
        now = self.now
        if "pt" in groups:
            self.pan.stop(now)
            self.tilt.stop(now)
        if "zoom" in groups:
            self.zoom.stop(now)
        if "focus" in groups:
            self.focus.stop(now)

    # -- commands: handler(now, name, **params) -> (duration, groups) ----------

    def _do_power_on(self, now: float, name: str) -> tuple[float, set[str]]:
        if self.power:
            return 0.0, {"power"}
        self.power = True
        t = POWER_ON_TIME / self._emu.speed_factor
        self.ready_at = now + t
        return t, {"power"}

    def _do_power_off(self, now: float, name: str) -> tuple[float, set[str]]:
        if not self.power:
            return 0.0, {"power"}
        self.power = False
        self._stop_groups(frozenset({"pt", "zoom", "focus"}))
        for job in list(self.sockets.values()):
            self._end_job(job)
            job.route(p.encode_error(self.address, job.socket, p.ERROR_CANCELLED))
        return POWER_OFF_TIME / self._emu.speed_factor, {"power"}

    def _zoom_drive(self, now: float, direction: int, speed: int) -> tuple[float, set[str]]:
        self.zoom.drive(direction * self._speed(1024.0 * (speed + 1)), now)
        return 0.0, {"zoom"}

    def _do_zoom_stop(self, now: float, name: str) -> tuple[float, set[str]]:
        self.zoom.stop(now)
        return 0.0, {"zoom"}

    def _do_zoom_tele(self, now: float, name: str) -> tuple[float, set[str]]:
        return self._zoom_drive(now, 1, 3)

    def _do_zoom_wide(self, now: float, name: str) -> tuple[float, set[str]]:
        return self._zoom_drive(now, -1, 3)

    def _do_zoom_tele_var(self, now: float, name: str, speed: int) -> tuple[float, set[str]]:
        return self._zoom_drive(now, 1, speed)

    def _do_zoom_wide_var(self, now: float, name: str, speed: int) -> tuple[float, set[str]]:
        return self._zoom_drive(now, -1, speed)

    def _do_zoom_direct(self, now: float, name: str, position: int) -> tuple[float, set[str]]:
        return self.zoom.move_to(position, self._speed(ZOOM_DIRECT_SPEED), now), {"zoom"}

    def _manual_focus(self) -> None:
        if self.focus_mode != 3:
            raise _Refuse(p.ERROR_NOT_EXECUTABLE)  # manual focus commands during auto focus

    def _focus_drive(self, now: float, direction: int, speed: int) -> tuple[float, set[str]]:
        self._manual_focus()
        self.focus.drive(direction * self._speed(2048.0 * (speed + 1)), now)
        return 0.0, {"focus"}

    def _do_focus_stop(self, now: float, name: str) -> tuple[float, set[str]]:
        self.focus.stop(now)
        return 0.0, {"focus"}

    def _do_focus_far(self, now: float, name: str) -> tuple[float, set[str]]:
        return self._focus_drive(now, -1, 3)

    def _do_focus_near(self, now: float, name: str) -> tuple[float, set[str]]:
        return self._focus_drive(now, 1, 3)

    def _do_focus_far_var(self, now: float, name: str, speed: int) -> tuple[float, set[str]]:
        return self._focus_drive(now, -1, speed)

    def _do_focus_near_var(self, now: float, name: str, speed: int) -> tuple[float, set[str]]:
        return self._focus_drive(now, 1, speed)

    def _do_focus_direct(self, now: float, name: str, position: int) -> tuple[float, set[str]]:
        self._manual_focus()
        return self.focus.move_to(position, self._speed(FOCUS_DIRECT_SPEED), now), {"focus"}

    def _do_focus_auto(self, now: float, name: str) -> tuple[float, set[str]]:
        self.focus_mode = 2
        return 0.0, set()

    def _do_focus_manual(self, now: float, name: str) -> tuple[float, set[str]]:
        self.focus_mode = 3
        return 0.0, set()

    def _do_focus_auto_manual(self, now: float, name: str) -> tuple[float, set[str]]:
        self.focus_mode = 5 - self.focus_mode
        return 0.0, set()

    def _do_focus_one_push(self, now: float, name: str) -> tuple[float, set[str]]:
        self._manual_focus()
        # "focus" on a subject at a distance that depends on the zoom
        target = FOCUS_RANGE[0] + (self.zoom.value(now) * 2)
        return self.focus.move_to(target, self._speed(FOCUS_DIRECT_SPEED), now), {"focus"}

    def _do_focus_infinity(self, now: float, name: str) -> tuple[float, set[str]]:
        self._manual_focus()
        return self.focus.move_to(FOCUS_RANGE[0], self._speed(FOCUS_DIRECT_SPEED), now), {"focus"}

    def _drive(self, now: float, name: str, pan_speed: int, tilt_speed: int) -> tuple[float, set[str]]:
        code = p.DIRECTIONS[name[len("pan_tilt_") :]]
        pan_dir = {1: -1, 2: 1, 3: 0}[code[0]]  # 01 left, 02 right
        tilt_dir = {1: 1, 2: -1, 3: 0}[code[1]]  # 01 up, 02 down
        self.pan.drive(pan_dir * self._speed(PAN_UNITS_PER_SPEED * pan_speed), now)
        self.tilt.drive(tilt_dir * self._speed(TILT_UNITS_PER_SPEED * tilt_speed), now)
        return 0.0, {"pt"}

    def _move_pt(self, now: float, pan: float, tilt: float, pan_speed: int, tilt_speed: int) -> float:
        pan_speed, tilt_speed = max(pan_speed, 1), max(tilt_speed, 1)
        t1 = self.pan.move_to(pan, self._speed(PAN_UNITS_PER_SPEED * pan_speed), now)
        t2 = self.tilt.move_to(tilt, self._speed(TILT_UNITS_PER_SPEED * tilt_speed), now)
        return max(t1, t2)

    def _do_pan_tilt_absolute(self, now: float, name: str, pan_speed: int, tilt_speed: int, pan: int,
                              tilt: int) -> tuple[float, set[str]]:
        return self._move_pt(now, pan, tilt, pan_speed, tilt_speed), {"pt"}

    def _do_pan_tilt_relative(self, now: float, name: str, pan_speed: int, tilt_speed: int, pan: int,
                              tilt: int) -> tuple[float, set[str]]:
        return self._move_pt(now, self.pan.value(now) + pan, self.tilt.value(now) + tilt, pan_speed,
                             tilt_speed), {"pt"}

    def _do_pan_tilt_home(self, now: float, name: str) -> tuple[float, set[str]]:
        return self._move_pt(now, 0, 0, 0x18, 0x17), {"pt"}

    def _do_pan_tilt_reset(self, now: float, name: str) -> tuple[float, set[str]]:
        # to both ends and back to the centre, at full speed
        span = (self.pan.hi - self.pan.lo) * 1.5 / self._speed(PAN_UNITS_PER_SPEED * 0x18)
        t = self._move_pt(now, 0, 0, 0x18, 0x17)
        return span + t, {"pt"}

    def _do_pan_tilt_limit_set(self, now: float, name: str, corner: int, pan: int,
                               tilt: int) -> tuple[float, set[str]]:
        if corner == 1:  # up-right
            if pan <= self.pan.lo or tilt <= self.tilt.lo:
                raise _Refuse(p.ERROR_NOT_EXECUTABLE)
            self.pan.set_limits(self.pan.lo, min(pan, PAN_RANGE[1]), now)
            self.tilt.set_limits(self.tilt.lo, min(tilt, TILT_RANGE[1]), now)
        else:
            if pan >= self.pan.hi or tilt >= self.tilt.hi:
                raise _Refuse(p.ERROR_NOT_EXECUTABLE)
            self.pan.set_limits(max(pan, PAN_RANGE[0]), self.pan.hi, now)
            self.tilt.set_limits(max(tilt, TILT_RANGE[0]), self.tilt.hi, now)
        return 0.0, set()

    def _do_pan_tilt_limit_clear(self, now: float, name: str, corner: int) -> tuple[float, set[str]]:
        if corner == 1:
            self.pan.set_limits(self.pan.lo, PAN_RANGE[1], now)
            self.tilt.set_limits(self.tilt.lo, TILT_RANGE[1], now)
        else:
            self.pan.set_limits(PAN_RANGE[0], self.pan.hi, now)
            self.tilt.set_limits(TILT_RANGE[0], self.tilt.hi, now)
        return 0.0, set()

    def _do_memory_set(self, now: float, name: str, preset: int) -> tuple[float, set[str]]:
        pan, tilt, zoom, focus = self.pan.value(now), self.tilt.value(now), self.zoom.value(now), self.focus.value(now)
        self.presets[preset] = _Preset(pan, tilt, zoom, focus)
        return 0.0, set()

    def _do_memory_reset(self, now: float, name: str, preset: int) -> tuple[float, set[str]]:
        self.presets.pop(preset, None)
        return 0.0, set()

    def _do_memory_recall(self, now: float, name: str, preset: int) -> tuple[float, set[str]]:
        pr = self.presets.get(preset, _Preset(0, 0, 0, FOCUS_RANGE[0]))  # unset: factory position
        t = self._move_pt(now, pr.pan, pr.tilt, 0x18, 0x17)
        t = max(t, self.zoom.move_to(pr.zoom, self._speed(ZOOM_DIRECT_SPEED), now))
        if self.focus_mode == 3:
            t = max(t, self.focus.move_to(pr.focus, self._speed(FOCUS_DIRECT_SPEED), now))
        return t, {"pt", "zoom", "focus"}

    def _do_white_balance(self, now: float, name: str, mode: int) -> tuple[float, set[str]]:
        self.white_balance = mode
        return 0.0, set()

    def _do_white_balance_trigger(self, now: float, name: str) -> tuple[float, set[str]]:
        if self.white_balance != 3:
            raise _Refuse(p.ERROR_NOT_EXECUTABLE)  # only in one-push mode
        return 0.0, set()

    def _do_exposure_mode(self, now: float, name: str, mode: int) -> tuple[float, set[str]]:
        self.exposure_mode = mode
        return 0.0, set()

    def _do_backlight(self, now: float, name: str, state: int) -> tuple[float, set[str]]:
        self.backlight = state
        return 0.0, set()

    def _register(self, now: float, name: str, **params: int) -> tuple[float, set[str]]:
        self.registers[name] = next(iter(params.values()), 0)
        return 0.0, set()

    _do_exposure_comp = _register
    _do_exposure_comp_direct = _register
    _do_iris_direct = _register
    _do_shutter_direct = _register
    _do_gain_direct = _register
    _do_bright_direct = _register

    # -- inquiries: answer(now) -> fields --------------------------------------

    def _inq_power(self, now: float) -> dict[str, int]:
        return {"state": 2 if self.power else 3}

    def _inq_zoom_position(self, now: float) -> dict[str, int]:
        return {"position": self.zoom.value(now)}

    def _inq_focus_position(self, now: float) -> dict[str, int]:
        return {"position": self.focus.value(now)}

    def _inq_focus_mode(self, now: float) -> dict[str, int]:
        return {"mode": self.focus_mode}

    def _inq_pan_tilt_position(self, now: float) -> dict[str, int]:
        return {"pan": self.pan.value(now), "tilt": self.tilt.value(now)}

    def _inq_pan_tilt_max_speed(self, now: float) -> dict[str, int]:
        return {"pan_speed": 0x18, "tilt_speed": 0x17}

    def _inq_white_balance(self, now: float) -> dict[str, int]:
        return {"mode": self.white_balance}

    def _inq_exposure_mode(self, now: float) -> dict[str, int]:
        return {"mode": self.exposure_mode}

    def _inq_backlight(self, now: float) -> dict[str, int]:
        return {"state": self.backlight}

    def _inq_version(self, now: float) -> dict[str, int]:
        return dict(VERSION)


@dataclass
class _UdpSession:
    last_seq: int | None = None
    cache: list[bytes] = field(default_factory=list)


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, emu: CameraEmulator) -> None:
        self.emu = emu
        self.transport: asyncio.DatagramTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.emu._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        _log.debug("emulator UDP: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class CameraEmulator:
    """A simulated VISCA camera, or a daisy chain of ``cameras`` (addresses 1..n).

    ``speed_factor`` divides every motion time (100 makes a 2 s zoom take 20 ms);
    ``baudrate`` and ``simulate_wire`` set the serial timing of the pty.
    ``await start_serial()`` then open ``serial_path``; ``await start_udp(port=0)`` then
    send to ``udp_port`` (camera 1 only). ``await stop()`` unplugs it.
    """

    def __init__(
        self,
        *,
        cameras: int = 1,
        speed_factor: float = 1.0,
        baudrate: int = 9600,
        simulate_wire: bool = True,
        table: p.CommandTable = p.SONY_TABLE,
    ) -> None:
        if not 1 <= cameras <= 7:
            raise ValueError(f"a VISCA chain has 1 to 7 cameras, got {cameras}")
        if speed_factor <= 0:
            raise ValueError("speed_factor must be positive")
        self.speed_factor = speed_factor
        self.baudrate = baudrate
        self.simulate_wire = simulate_wire
        self.table = table
        self.cameras = [SimulatedCamera(self, i + 1) for i in range(cameras)]
        self.silent = False
        self.drop_replies = 0
        self.serial_path: str | None = None
        self.udp_port: int | None = None
        self.udp_host: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._master = -1
        self._slave = -1
        self._framer = _k.ViscaFramer(max_length=64)  # oversized messages get error 01
        self._rx_free = 0.0
        self._tx_free = 0.0
        self._rx: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._tx: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._udp: _UdpServer | None = None
        self._sessions: dict[tuple[Any, ...], _UdpSession] = {}
        self._last_peer: tuple[Any, ...] | None = None
        self.malformed_datagrams = 0

    @property
    def camera(self) -> SimulatedCamera:
        """The first camera of the chain."""
        return self.cameras[0]

    @property
    def garbage_bytes(self) -> int:
        """Bytes the serial framer discarded."""
        return int(self._framer.garbage_bytes)

    async def __aenter__(self) -> CameraEmulator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- serial ------------------------------------------------------------------

    async def start_serial(self, baudrate: int | None = None) -> str:
        """Open a pseudo-terminal; returns (and sets) ``serial_path`` for the client."""
        if self._master >= 0:
            raise RuntimeError("serial side already started")
        if baudrate is not None:
            self.baudrate = baudrate
        self._loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing, 8-bit clean, before any client opens it
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.serial_path = os.ttyname(slave)
        self._loop.add_reader(master, self._on_serial_readable)
        self._tasks += [
            self._loop.create_task(self._rx_loop()),
            self._loop.create_task(self._tx_loop()),
        ]
        return self.serial_path

    def _on_serial_readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            _log.debug("emulator pty: %s", exc)
            return
        assert self._loop is not None
        now = self._loop.time()
        end = now
        if self.simulate_wire:
            end = max(now, self._rx_free) + wire_time(len(data), self.baudrate)
            self._rx_free = end
        for msg in self._framer.feed(data):
            self._rx.put_nowait((end, msg))

    async def _rx_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            when, msg = await self._rx.get()
            delay = when - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                self._dispatch_serial(msg)
            except Exception:  # a bug in a handler must not kill the emulator
                _log.exception("emulator failed on %s", msg.hex(" "))

    def _drop(self) -> bool:
        if self.silent:
            return True
        if self.drop_replies > 0:
            self.drop_replies -= 1
            return True
        return False

    def _serial_reply(self, msg: bytes) -> None:
        if self._master < 0 or self._drop():
            return
        assert self._loop is not None
        now = self._loop.time()
        end = now
        if self.simulate_wire:
            end = max(now, self._tx_free) + wire_time(len(msg), self.baudrate)
            self._tx_free = end
        self._tx.put_nowait((end, msg))

    async def _tx_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            when, msg = await self._tx.get()
            delay = when - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._master >= 0:
                try:
                    os.write(self._master, msg)
                except OSError as exc:
                    _log.debug("emulator pty write: %s", exc)

    def _dispatch_serial(self, msg: bytes) -> None:
        h = msg[0]
        if h >> 4 != 0x8:  # not from the controller (device 0): ignore
            return
        addr = h & 0x0F
        if addr == p.BROADCAST:
            self._broadcast(msg)
            return
        for cam in self.cameras:
            if cam.address == addr:
                cam.handle(msg, self._serial_reply)
                return
        self._serial_reply(msg)  # nobody has that address: the ring returns it

    def _broadcast(self, msg: bytes) -> None:
        body = msg[1:-1]
        if len(body) == 2 and body[0] == 0x30 and 1 <= body[1] <= 7:  # address set
            first = body[1]
            for i, cam in enumerate(self.cameras):
                cam.address = min(first + i, 7)
            self._serial_reply(p.encode_address_set(min(first + len(self.cameras), 8)))
        elif msg == p.encode_if_clear_broadcast():
            for cam in self.cameras:
                cam.clear()
            self._serial_reply(msg)
        else:  # other broadcast commands run on every camera, without replies
            for cam in self.cameras:
                cam.handle(bytes((0x80 | cam.address,)) + msg[1:], lambda _m: None)

    def inject(self, data: bytes) -> None:
        """Raw bytes to the client: on the pty, else as a reply datagram to the last UDP peer."""
        if self._master >= 0:
            os.write(self._master, data)
        elif self._udp is not None and self._udp.transport is not None and self._last_peer is not None:
            self._udp.transport.sendto(data, self._last_peer)

    def announce_network_change(self) -> None:
        """Every camera sends ``z0 38 FF`` (as after a power cycle in the chain)."""
        for cam in self.cameras:
            self._serial_reply(p.encode_network_change(cam.address))

    # -- UDP ---------------------------------------------------------------------

    async def start_udp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen for VISCA over IP (SO_REUSEADDR); returns (and sets) ``udp_port``."""
        if self._udp is not None:
            raise RuntimeError("UDP side already started")
        self._loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            _, proto = await self._loop.create_datagram_endpoint(lambda: _UdpServer(self), sock=sock)
        except BaseException:
            sock.close()
            raise
        self._udp = proto
        self.udp_host, self.udp_port = sock.getsockname()[:2]
        assert self.udp_port is not None
        return self.udp_port

    def _udp_send(self, addr: tuple[Any, ...], ptype: int, seq: int, payload: bytes) -> None:
        if self._udp is None or self._udp.transport is None or self._drop():
            return
        self._udp.transport.sendto(_k.pack_ip_header(ptype, len(payload), seq) + payload, addr)

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._last_peer = addr
        session = self._sessions.setdefault(addr, _UdpSession())
        try:
            ptype, _, seq = _k.parse_ip_header(data)
        except ParseError:
            self.malformed_datagrams += 1
            seq = int.from_bytes(data[4:8], "big") if len(data) >= 8 else 0
            self._udp_send(addr, PT_CONTROL_REPLY, seq, CONTROL_ERROR_MESSAGE)
            return
        payload = data[_k.IP_HEADER_LEN :]
        if ptype == PT_CONTROL:
            if payload == CONTROL_RESET:
                session.last_seq = None
                session.cache = []
                self._udp_send(addr, PT_CONTROL_REPLY, seq, CONTROL_RESET)
            else:
                self.malformed_datagrams += 1
                self._udp_send(addr, PT_CONTROL_REPLY, seq, CONTROL_ERROR_MESSAGE)
            return
        if ptype not in (PT_COMMAND, PT_INQUIRY, PT_DEVICE_SETTING):
            self.malformed_datagrams += 1
            self._udp_send(addr, PT_CONTROL_REPLY, seq, CONTROL_ERROR_MESSAGE)
            return
        if session.last_seq is not None:
            if seq == session.last_seq:  # a retransmission: answer again, do not run it twice
                for reply in session.cache:
                    self._udp_send(addr, PT_REPLY, seq, reply)
                return
            if seq < session.last_seq and session.last_seq - seq < 0x80000000:
                self._udp_send(addr, PT_CONTROL_REPLY, seq, CONTROL_ERROR_SEQUENCE)
                return
        session.last_seq = seq
        session.cache = []
        framer = _k.ViscaFramer(max_length=64)
        msgs = framer.feed(payload)
        if len(msgs) != 1 or framer.pending or framer.garbage_bytes:
            self.malformed_datagrams += 1
            self._udp_send(addr, PT_CONTROL_REPLY, seq, CONTROL_ERROR_MESSAGE)
            return

        def route(reply: bytes, _seq: int = seq) -> None:
            if session.last_seq == _seq:
                session.cache.append(reply)
            self._udp_send(addr, PT_REPLY, _seq, reply)

        msg = msgs[0]
        if msg[0] >> 4 != 0x8 or msg[0] & 0x0F == p.BROADCAST:
            self._udp_send(addr, PT_CONTROL_REPLY, seq, CONTROL_ERROR_MESSAGE)
            return
        try:
            self.camera.handle(msg, route)
        except Exception:
            _log.exception("emulator failed on %s", msg.hex(" "))

    # -- shutdown ------------------------------------------------------------------

    async def stop(self) -> None:
        """Unplug: close the pty and the UDP socket, end every task. Idempotent."""
        tasks = list(self._tasks)
        self._tasks.clear()
        for cam in self.cameras:
            tasks += cam.stop_tasks()
        if self._master >= 0:
            assert self._loop is not None
            self._loop.remove_reader(self._master)
            os.close(self._master)
            os.close(self._slave)
            self._master = self._slave = -1
        if self._udp is not None:
            udp, self._udp = self._udp, None
            if udp.transport is not None:
                udp.transport.close()
                await udp.closed
        self._sessions.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
