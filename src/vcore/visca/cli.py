"""``vcore camera``: drive a VISCA camera from the shell (also ``python -m vcore.visca``).

    vcore camera --serial /dev/ttyUSB0 preset-recall 2
    vcore camera --ip 192.0.2.5 status
    vcore camera --emulate pan-tilt-to 400 100

Aiming the camera before storing presets (each prints where the camera then is,
``pan P tilt T zoom Z``, one line; ``focus`` adds ``focus F MODE``):

    vcore camera --serial /dev/ttyUSB0 pan-tilt left --speed 4 --for 0.3
    vcore camera --serial /dev/ttyUSB0 zoom in --for 1
    vcore camera --serial /dev/ttyUSB0 focus near --for 0.2
    vcore camera --serial /dev/ttyUSB0 preset-set 1

``pan-tilt`` (left, right, up, down, upleft, upright, downleft, downright),
``zoom in|out`` and ``focus near|far`` start a move, wait ``--for`` seconds
(default 0.5) and stop it, also when interrupted (Ctrl-C). ``focus near|far``
switch the camera to manual focus first.

Values are checked before the camera is opened (one ``error: ...`` line, status 2):
presets 0-127, pan/tilt -32768..32767, zoom 0..16384, speed 1-24 (zoom 0-7),
duration more than 0 and at most 60 s, address 1-7, baud rate 9600/19200/38400,
UDP port 1-65535, a positive timeout. A camera that cannot be opened or answers
with an error is one ``error: ...`` line, status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from ..cli import char_device, fail, integer, number, port
from .camera import ViscaCamera
from .emulator import CameraEmulator
from .errors import CameraError
from .protocol import DIRECTIONS
from .transport import VISCA_IP_PORT

__all__ = ["main", "build_parser", "visca_target", "open_camera"]


_preset = integer(0, 127, "preset")
_pan_tilt = integer(-32768, 32767, "position")
_zoom = integer(0, 16384, "zoom position")
_speed = integer(1, 0x18, "speed")
_zoom_speed = integer(0, 7, "zoom speed")
_duration = number(0, 60, "duration", above=True)
_MOVES = {d.replace("_", ""): d for d in DIRECTIONS if d != "stop"}  # "upleft" -> "up_left"


def _direction(text: str) -> str:
    """A pan-tilt direction: left, right, up, down, upleft... (``up-left``, ``up_left`` too)."""
    key = text.strip().lower().replace("-", "").replace("_", "")
    if key not in _MOVES:
        raise argparse.ArgumentTypeError(f"direction {text!r} is not one of {', '.join(_MOVES)}")
    return _MOVES[key]


def visca_target(text: str) -> tuple[str, str, int]:
    """Where a station's camera is, for ``--visca`` (an argparse ``type=``).

    ``/dev/ttyUSB0`` (a serial port: ``("serial", path, 0)``) or ``udp:HOST[:PORT]``
    (VISCA over IP, port 52381 by default; ``udp:[::1]:52381`` for IPv6):
    ``("udp", host, port)``. Anything else is an ``ArgumentTypeError``.
    """
    if not text.startswith("udp:"):
        return "serial", char_device(text), 0
    m = re.fullmatch(r"udp:(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+)(?::(\d{1,5}))?", text)
    udp_port = int(m.group(2) or VISCA_IP_PORT) if m else 0
    if m is None or not 1 <= udp_port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not udp:HOST or udp:HOST:PORT (port 1 to 65535)")
    return "udp", m.group(1).strip("[]"), udp_port


async def open_camera(target: tuple[str, str, int], *, baudrate: int = 9600, address: int = 1) -> ViscaCamera:
    """Open the camera :func:`visca_target` described (raises :class:`CameraError`)."""
    kind, where, udp_port = target
    if kind == "udp":
        return await ViscaCamera.open_ip(where, udp_port, address=address)
    return await ViscaCamera.open_serial(where, baudrate=baudrate, address=address)


def _onoff(text: str) -> bool:
    if text in ("on", "1", "true"):
        return True
    if text in ("off", "0", "false"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off, got {text!r}")


def build_parser(prog: str = "vcore camera") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description="Control a VISCA PTZ camera.")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--serial", metavar="PORT", help="serial port, e.g. /dev/ttyUSB0")
    where.add_argument("--ip", metavar="HOST", help="camera speaking Sony VISCA over IP")
    where.add_argument("--emulate", action="store_true", help="an emulated camera on a pseudo-terminal")
    ap.add_argument("--baudrate", type=int, choices=(9600, 19200, 38400), default=9600,
                    help="serial speed (9600, 19200 or 38400)")
    ap.add_argument("--port", type=port(), default=VISCA_IP_PORT, help="UDP port (default 52381)")
    ap.add_argument("--address", type=integer(1, 7, "address"), default=1, help="camera address on the chain (1-7)")
    ap.add_argument("--timeout", type=number(0, what="timeout", above=True), default=30.0,
                    help="seconds to wait for completion")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("status", help="print power, pan, tilt, zoom and focus")
    sub.add_parser("version", help="print vendor, model, ROM version")
    for name in ("preset-recall", "preset-set", "preset-reset"):
        sub.add_parser(name, help=f"{name.split('-')[1]} a memory preset").add_argument("preset", type=_preset)
    sub.add_parser("power").add_argument("state", type=_onoff)
    sub.add_parser("home", help="pan-tilt home")
    sub.add_parser("reset", help="pan-tilt reset")
    sub.add_parser("zoom-to", help="zoom to a position (0 wide .. 16384 tele)").add_argument("position", type=_zoom)
    sp = sub.add_parser("pan-tilt-to", help="move to an absolute position")
    sp.add_argument("pan", type=_pan_tilt)
    sp.add_argument("tilt", type=_pan_tilt)
    sp.add_argument("--speed", type=_speed, default=0x10, help="1 to 24 (tilt at most 23)")
    sp = sub.add_parser("pan-tilt", help="move in a direction for a while, then stop")
    sp.add_argument("direction", type=_direction, help=", ".join(_MOVES))
    sp.add_argument("--speed", type=_speed, default=8, help="1 to 24 (tilt at most 23; default 8)")
    sp.add_argument("--for", dest="seconds", metavar="SECONDS", type=_duration, default=0.5,
                    help="how long to move (default 0.5)")
    sp = sub.add_parser("zoom", help="zoom in (tele) or out (wide) for a while, then stop")
    sp.add_argument("direction", choices=["in", "out"])
    sp.add_argument("--speed", type=_zoom_speed, help="0 to 7 (default: the camera's standard speed)")
    sp.add_argument("--for", dest="seconds", metavar="SECONDS", type=_duration, default=0.5,
                    help="how long to zoom (default 0.5)")
    sp = sub.add_parser("focus", help="focus mode, or focus nearer/farther for a while (manual focus)")
    sp.add_argument("mode", choices=["auto", "manual", "one-push", "near", "far"])
    sp.add_argument("--for", dest="seconds", metavar="SECONDS", type=_duration, default=0.5,
                    help="near/far: how long to move the focus (default 0.5)")
    sub.add_parser("backlight").add_argument("state", type=_onoff)
    sub.add_parser("white-balance").add_argument(
        "mode", choices=["auto", "indoor", "outdoor", "one_push", "atw", "manual"]
    )
    sub.add_parser("address-set", help="number the cameras of the chain; prints how many")
    return ap


_REPORTS = {"pan-tilt", "pan-tilt-to", "home", "reset", "zoom", "zoom-to", "focus", "preset-recall"}


async def _for_a_while(start: Callable[[], Awaitable[Any]], stop: Callable[[], Awaitable[Any]],
                       seconds: float, interrupted: asyncio.Event) -> None:
    """Start a move, wait ``seconds`` (or until ``interrupted``), stop it.

    The stop is sent whatever happens (Ctrl-C, an error, even before the camera
    answered the start): a move is never left running. The wait watches the
    event, not only the task's cancellation, which Python 3.11's ``wait_for``
    can lose when it coincides with a reply.
    """
    try:
        await start()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(interrupted.wait(), seconds)
    except BaseException:
        with contextlib.suppress(CameraError):
            await stop()
        raise
    await stop()


async def _where(cam: ViscaCamera, focus: bool = False) -> str:
    """The camera's own report of its position, one line."""
    pan, tilt = await cam.pan_tilt_position()
    line = f"pan {pan} tilt {tilt} zoom {await cam.zoom_position()}"
    if focus:
        line += f" focus {await cam.focus_position()} {await cam.focus_mode()}"
    return line


async def _focus(cam: ViscaCamera, mode: str, seconds: float, interrupted: asyncio.Event) -> None:
    if mode in ("near", "far"):
        await cam.focus_manual()  # near/far move a manual focus only
        move = cam.focus_near if mode == "near" else cam.focus_far
        await _for_a_while(move, cam.focus_stop, seconds, interrupted)
    else:
        await {"auto": cam.focus_auto, "manual": cam.focus_manual, "one-push": cam.focus_one_push}[mode]()


def _on_ctrl_c(interrupted: asyncio.Event) -> None:
    """SIGINT (main thread only): cancel the command and end a timed move's wait."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def handler() -> None:
        interrupted.set()
        if task is not None:
            task.cancel()

    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
        loop.add_signal_handler(signal.SIGINT, handler)


async def _run(args: argparse.Namespace) -> int:
    emu: CameraEmulator | None = None
    cam: ViscaCamera | None = None
    interrupted = asyncio.Event()
    _on_ctrl_c(interrupted)
    try:
        if args.emulate:
            emu = CameraEmulator(baudrate=args.baudrate)
            path = await emu.start_serial()
            cam = await ViscaCamera.open_serial(path, baudrate=args.baudrate, address=args.address)
        elif args.serial:
            cam = await ViscaCamera.open_serial(args.serial, baudrate=args.baudrate, address=args.address)
        else:
            cam = await ViscaCamera.open_ip(args.ip, args.port, address=args.address)
        cam.completion_timeout = args.timeout
        a = args.action
        actions: dict[str, Callable[[], Awaitable[Any]]] = {
            "preset-recall": lambda: cam.preset_recall(args.preset),
            "preset-set": lambda: cam.preset_set(args.preset),
            "preset-reset": lambda: cam.preset_reset(args.preset),
            "power": lambda: cam.power(args.state),
            "home": lambda: cam.home(),
            "reset": lambda: cam.pan_tilt_reset(),
            "zoom-to": lambda: cam.zoom_to(args.position),
            "backlight": lambda: cam.backlight(args.state),
            "white-balance": lambda: cam.white_balance(args.mode),
        }
        if a == "status":
            print(json.dumps(await cam.status()))
        elif a == "version":
            v = await cam.version()
            print(f"vendor 0x{v.vendor:04x} model 0x{v.model:04x} rom 0x{v.rom:04x} sockets {v.max_socket}")
        elif a == "address-set":
            print(await cam.address_set())
        elif a == "pan-tilt-to":
            await cam.pan_tilt_to(args.pan, args.tilt, pan_speed=args.speed, tilt_speed=min(args.speed, 0x17))
        elif a == "pan-tilt":
            await _for_a_while(lambda: cam.pan_tilt(args.direction, args.speed, min(args.speed, 0x17)),
                               cam.pan_tilt_stop, args.seconds, interrupted)
        elif a == "zoom":
            zoom = cam.zoom_tele if args.direction == "in" else cam.zoom_wide
            await _for_a_while(lambda: zoom(args.speed), cam.zoom_stop, args.seconds, interrupted)
        elif a == "focus":
            await _focus(cam, args.mode, args.seconds, interrupted)
        else:
            await actions[a]()
        if interrupted.is_set():  # the cancellation was lost in a reply; the move was stopped all the same
            return 130
        if a in _REPORTS:
            print(await _where(cam, focus=a == "focus"), flush=True)
        return 0
    finally:
        if cam is not None:
            await cam.close()
        if emu is not None:
            await emu.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vcore camera``; returns the exit status (0 ok, 1 camera error, 2 bad input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return asyncio.run(_run(args))
    except CameraError as exc:
        return fail(f"camera: {exc}", 1)
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C
        return 130
