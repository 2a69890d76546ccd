"""vcore's own user-input conventions (docs/calls.md): camera presets and moves, and the recording notice.

Between vcore peers without H.281 far-end camera control, a call carries short
strings as user input (H.245 UserInputIndication alphanumeric, or a SIP INFO):
``vcore:camera-preset=N`` recalls a preset of the peer's camera,
``vcore:camera-move=MOVE`` nudges it for a moment (:data:`NUDGE` seconds), and
``vcore:recording=on|off`` tells the peer that this side records the call.
This module writes and reads those strings and checks what a caller asks of
the peer's camera; :class:`vcore.call.Call` sends and acts on them. Pure, but
:func:`nudge`, which drives a local camera.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from ..camera_control import Focus, Pan, Tilt, Zoom
from ..errors import CallError

__all__ = [
    "CAMERA_MOVES",
    "CAMERA_MOVE_PREFIX",
    "CAMERA_PRESET_PREFIX",
    "NUDGE",
    "RECORDING_PREFIX",
    "CameraRequest",
    "RemoteMove",
    "camera_move_text",
    "camera_preset_text",
    "check_remote_move",
    "legacy_move",
    "nudge",
    "read_camera_request",
    "read_recording_notice",
    "recording_text",
]

CAMERA_PRESET_PREFIX = "vcore:camera-preset="  # H.245 UserInputIndication alphanumeric, vcore's own convention
_CAMERA_PRESET = re.compile(r"^vcore:camera-preset=(\d{1,3})$")
CAMERA_MOVE_PREFIX = "vcore:camera-move="
CAMERA_MOVES = {"left": "left", "right": "right", "up": "up", "down": "down", "zoom-in": "tele", "zoom-out": "wide"}
"""The move names of ``vcore:camera-move=`` and the VISCA direction each one drives."""
_CAMERA_MOVE = re.compile(r"^vcore:camera-move=([a-z-]{1,8})$")
NUDGE = 0.3  # seconds a camera move asked by the peer lasts (then the camera stops by itself)
_MOVE_DIRECTIONS = {  # CAMERA_MOVES as H.281 directions (pan, tilt, zoom)
    "left": (Pan.LEFT, Tilt.NONE, Zoom.NONE), "right": (Pan.RIGHT, Tilt.NONE, Zoom.NONE),
    "up": (Pan.NONE, Tilt.UP, Zoom.NONE), "down": (Pan.NONE, Tilt.DOWN, Zoom.NONE),
    "zoom-in": (Pan.NONE, Tilt.NONE, Zoom.IN), "zoom-out": (Pan.NONE, Tilt.NONE, Zoom.OUT),
}
RECORDING_PREFIX = "vcore:recording="
_RECORDING = re.compile(r"^vcore:recording=(on|off)$")


# --------------------------------------------------------------------------- the strings


def camera_preset_text(preset: int) -> str:
    """``vcore:camera-preset=N``."""
    return f"{CAMERA_PRESET_PREFIX}{preset}"


def camera_move_text(move: str) -> str:
    """``vcore:camera-move=MOVE`` (a name of :data:`CAMERA_MOVES`)."""
    return f"{CAMERA_MOVE_PREFIX}{move}"


def recording_text(recording: bool) -> str:
    """``vcore:recording=on`` / ``off``."""
    return f"{RECORDING_PREFIX}{'on' if recording else 'off'}"


def read_recording_notice(text: str) -> bool | None:
    """The peer's recording notice: True (started), False (stopped), None (``text`` is not one)."""
    r = _RECORDING.match(text)
    return None if r is None else r.group(1) == "on"


@dataclass(frozen=True)
class CameraRequest:
    """What the peer asks of this terminal's camera: a ``preset`` to recall (-1: none) or a ``move`` name
    (a key of :data:`CAMERA_MOVES`; ``""``: none)."""

    preset: int
    move: str


def read_camera_request(text: str) -> CameraRequest | None:
    """A camera preset or move asked by the peer, or None when ``text`` is neither (or names no known move)."""
    m = _CAMERA_PRESET.match(text)
    mv = _CAMERA_MOVE.match(text)
    if m is None and (mv is None or mv.group(1) not in CAMERA_MOVES):
        return None
    return CameraRequest(int(m.group(1)) if m is not None else -1, mv.group(1) if mv is not None else "")


# --------------------------------------------------------------------------- what a caller asks of the peer


@dataclass(frozen=True)
class RemoteMove:
    """A checked move of the peer's camera: H.281 directions and how long (None: until stopped)."""

    pan: Pan
    tilt: Tilt
    zoom: Zoom
    focus: Focus
    duration: float | None


def check_remote_move(move: str, pan: Pan, tilt: Tilt, zoom: Zoom, focus: Focus,
                      duration: float | None) -> RemoteMove:
    """A move name (a nudge of :data:`NUDGE` seconds unless ``duration``) or directions, checked; raises
    :class:`CallError` for an unknown name, both at once, no direction or a duration out of 0..60 s."""
    if move:
        if move not in CAMERA_MOVES:
            raise CallError(f"camera move {move!r}: one of {', '.join(CAMERA_MOVES)}")
        if pan or tilt or zoom or focus:
            raise CallError("give a move name or directions, not both")
        pan, tilt, zoom = _MOVE_DIRECTIONS[move]
        duration = NUDGE if duration is None else duration
    elif not (pan or tilt or zoom or focus):
        raise CallError("a camera move needs a direction")
    if duration is not None and not 0 < duration <= 60:
        raise CallError(f"camera move duration {duration} s: give 0 < duration <= 60")
    return RemoteMove(pan, tilt, zoom, focus, duration)


def legacy_move(move: str, request: RemoteMove) -> str:
    """The move name to send a vcore peer without H.281 (it takes short single-direction nudges only);
    raises :class:`CallError` for anything else."""
    legacy = move or next((name for name, d in _MOVE_DIRECTIONS.items()
                           if d == (request.pan, request.tilt, request.zoom)), "")
    if not legacy or request.focus or request.duration not in (None, NUDGE):
        raise CallError("this peer only takes short single-direction nudges (no H.281): "
                        f"one of {', '.join(CAMERA_MOVES)}")
    return legacy


# --------------------------------------------------------------------------- acting on the peer's request


async def nudge(camera: Any, direction: str) -> None:
    """Move a VISCA camera for :data:`NUDGE` seconds in ``direction`` (a value of :data:`CAMERA_MOVES`),
    then stop (whatever happened meanwhile)."""
    zoom = direction in ("tele", "wide")
    await (camera.zoom_tele() if direction == "tele" else camera.zoom_wide() if zoom
           else camera.pan_tilt(direction))
    try:
        await asyncio.sleep(NUDGE)
    finally:
        await (camera.zoom_stop() if zoom else camera.pan_tilt_stop())
