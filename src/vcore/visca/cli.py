"""``vcore camera``: drive a VISCA camera from the shell (also ``python -m vcore.visca``).

    vcore camera --serial /dev/ttyUSB0 preset-recall 2
    vcore camera --ip 192.0.2.5 status
    vcore camera --emulate pan-tilt-to 400 100

Values are checked before the camera is opened (one ``error: ...`` line, status 2):
presets 0-127, pan/tilt -32768..32767, zoom 0..16384, speed 1-24, address 1-7,
baud rate 9600/19200/38400, UDP port 1-65535, a positive timeout. A camera that
cannot be opened or answers with an error is one ``error: ...`` line, status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..cli import fail, integer, number, port
from .camera import ViscaCamera
from .emulator import CameraEmulator
from .errors import CameraError
from .transport import VISCA_IP_PORT

__all__ = ["main", "build_parser"]


_preset = integer(0, 127, "preset")
_pan_tilt = integer(-32768, 32767, "position")
_zoom = integer(0, 16384, "zoom position")
_speed = integer(1, 0x18, "speed")


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
    sub.add_parser("zoom-to").add_argument("position", type=_zoom)
    sp = sub.add_parser("pan-tilt-to")
    sp.add_argument("pan", type=_pan_tilt)
    sp.add_argument("tilt", type=_pan_tilt)
    sp.add_argument("--speed", type=_speed, default=0x10, help="1 to 24 (tilt at most 23)")
    sub.add_parser("focus").add_argument("mode", choices=["auto", "manual", "one-push"])
    sub.add_parser("backlight").add_argument("state", type=_onoff)
    sub.add_parser("white-balance").add_argument(
        "mode", choices=["auto", "indoor", "outdoor", "one_push", "atw", "manual"]
    )
    sub.add_parser("address-set", help="number the cameras of the chain; prints how many")
    return ap


async def _run(args: argparse.Namespace) -> int:
    emu: CameraEmulator | None = None
    cam: ViscaCamera | None = None
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
        elif a == "focus":
            await {"auto": cam.focus_auto, "manual": cam.focus_manual, "one-push": cam.focus_one_push}[args.mode]()
        else:
            await actions[a]()
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
    except KeyboardInterrupt:
        return 130
