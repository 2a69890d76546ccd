"""Far-end camera control over H.224/H.281: the controlled side and the controlling side.

**Controlled side.** :class:`FeccReceiver` is the H.281 state machine, pure
(time is an argument): a start action begins a move and arms the timeout, a
continue with the same directions re-arms it, a stop with the same
directions, a different start, a preset or a source change ends it, and so
does the timeout when no continue came in time (the sender vanished, or
its continues were lost). It returns :class:`CameraAction` values.
:class:`FarEndCamera` runs them on a local VISCA camera
(:class:`vcore.visca.ViscaCamera`) on the event loop and owns the timeout
task:

=================  ==========================================================
H.281              VISCA
=================  ==========================================================
pan/tilt start     Pan-tiltDrive up/down/left/right/up_left... (speed ``speed``)
zoom in / out      Zoom Tele / Wide (variable speed)
focus in / out     Focus manual, then Near / Far
stop / timeout     Pan-tiltDrive stop, Zoom stop, Focus stop (what was moving)
activate preset n  Memory Recall n
store preset n     Memory Set n, only with ``allow_store=True`` (off by default: the
                   far end would rewrite this terminal's presets)
select source 1    accepted (vcore sends one camera); other sources refused
=================  ==========================================================

**Controlling side.** :class:`FeccSender` (pure) turns "move" / "stop" /
"preset" into H.281 messages and repeats a running move with continue
actions every :data:`CONTINUE_INTERVAL` seconds, well inside the 800 ms
timeout; :class:`RemoteCamera` runs it on the loop with a send callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..supervisor import cancel_and_wait
from ..errors import VcoreError
from .h281 import (
    DEFAULT_TIMEOUT_MS,
    MAIN_CAMERA,
    ActivatePreset,
    ContinueAction,
    Focus,
    H281Message,
    Pan,
    SelectVideoSource,
    StartAction,
    StopAction,
    StoreAsPreset,
    Tilt,
    VideoSourceSwitched,
    Zoom,
)

__all__ = [
    "CONTINUE_INTERVAL",
    "CameraAction",
    "FarEndCamera",
    "FeccReceiver",
    "FeccSender",
    "RemoteCamera",
]

log = logging.getLogger(__name__)

CONTINUE_INTERVAL = 0.4  # s between continue actions (half the default 800 ms timeout, as H323Plus does)


@dataclass(frozen=True)
class CameraAction:
    """What the local camera must do: ``kind`` is "move", "stop", "recall", "store" or "refuse"."""

    kind: str
    pan: Pan = Pan.NONE
    tilt: Tilt = Tilt.NONE
    zoom: Zoom = Zoom.NONE
    focus: Focus = Focus.NONE
    preset: int = -1
    detail: str = ""


class FeccReceiver:
    """The controlled side's H.281 state machine (pure; ``now`` in seconds of any monotonic clock)."""

    def __init__(self, *, allow_store: bool = False, presets: int = 16) -> None:
        self.allow_store = allow_store
        self.presets = presets
        self._moving: StartAction | None = None
        self._deadline: float | None = None

    @property
    def moving(self) -> StartAction | None:
        """The running action, if any."""
        return self._moving

    @property
    def deadline(self) -> float | None:
        """When the running action stops by itself unless continued (None: nothing running)."""
        return self._deadline

    def _stop(self) -> list[CameraAction]:
        if self._moving is None:
            return []
        m, self._moving, self._deadline = self._moving, None, None
        return [CameraAction("stop", m.pan, m.tilt, m.zoom, m.focus)]

    def on_message(self, message: H281Message, now: float) -> list[CameraAction]:
        """Actions for one received H.281 message."""
        if isinstance(message, StartAction):
            out = self._stop()
            if not message.moving:
                return out  # a start with no direction is void
            self._moving = message
            self._deadline = now + message.timeout_ms / 1000
            return [*out, CameraAction("move", message.pan, message.tilt, message.zoom, message.focus)]
        if isinstance(message, ContinueAction):
            if self._moving is not None and message.same_action(self._moving):
                self._deadline = now + self._moving.timeout_ms / 1000
            return []  # a continue for another action than the running one is ignored
        if isinstance(message, StopAction):
            if self._moving is not None and message.same_action(self._moving):
                return self._stop()
            return []
        if isinstance(message, VideoSourceSwitched):
            return []  # an indication about the peer's own video: nothing to do here
        if isinstance(message, SelectVideoSource):
            out = self._stop()
            if message.source != MAIN_CAMERA:
                return [*out, CameraAction("refuse", detail=f"video source {message.source} does not exist")]
            return out
        if isinstance(message, ActivatePreset):
            out = self._stop()
            if message.preset >= self.presets:
                return [*out, CameraAction("refuse", preset=message.preset, detail="no such preset")]
            return [*out, CameraAction("recall", preset=message.preset)]
        if isinstance(message, StoreAsPreset):
            out = self._stop()
            if not self.allow_store:
                return [*out, CameraAction("refuse", preset=message.preset,
                                           detail="storing presets from the far end is off (allow_store=False)")]
            if message.preset >= self.presets:
                return [*out, CameraAction("refuse", preset=message.preset, detail="no such preset")]
            return [*out, CameraAction("store", preset=message.preset)]
        raise TypeError(f"not an H.281 message: {message!r}")  # pragma: no cover - typed callers

    def on_time(self, now: float) -> list[CameraAction]:
        """Actions due at ``now``: the timeout stop of an action that was not continued."""
        if self._deadline is not None and now >= self._deadline:
            return self._stop()
        return []

    def close(self) -> list[CameraAction]:
        """The call ended: stop whatever runs."""
        return self._stop()


_PAN_TILT = {
    (Pan.NONE, Tilt.UP): "up", (Pan.NONE, Tilt.DOWN): "down", (Pan.LEFT, Tilt.NONE): "left",
    (Pan.RIGHT, Tilt.NONE): "right", (Pan.LEFT, Tilt.UP): "up_left", (Pan.RIGHT, Tilt.UP): "up_right",
    (Pan.LEFT, Tilt.DOWN): "down_left", (Pan.RIGHT, Tilt.DOWN): "down_right",
}


class FarEndCamera:
    """Runs what :class:`FeccReceiver` decides on a local VISCA camera (one per call; loop-bound).

    ``on_action`` (optional) sees every action once it was applied or failed
    (``CameraAction``, error text or ""), for the call's events and logs.
    """

    def __init__(self, camera: Any, *, allow_store: bool = False, presets: int = 16, speed: int = 0x0C,
                 on_action: Callable[[CameraAction, str], None] | None = None) -> None:
        self.camera = camera
        self.speed = speed
        self._fsm = FeccReceiver(allow_store=allow_store, presets=presets)
        self._on_action = on_action
        self._lock = asyncio.Lock()  # VISCA commands of one camera in the order H.281 asked them
        self._timer: asyncio.Task[None] | None = None
        self._loop_time = asyncio.get_running_loop().time
        self._closed = False

    async def handle(self, message: H281Message) -> None:
        """Act on one received H.281 message."""
        if self._closed:
            return
        await self._apply(self._fsm.on_message(message, self._loop_time()))
        self._arm()

    def _arm(self) -> None:
        if self._fsm.deadline is not None and (self._timer is None or self._timer.done()):
            self._timer = asyncio.get_running_loop().create_task(self._watch(), name="H.281 timeout")

    async def _watch(self) -> None:
        while (deadline := self._fsm.deadline) is not None:
            await asyncio.sleep(max(deadline - self._loop_time(), 0))
            actions = self._fsm.on_time(self._loop_time())
            if actions:
                log.info("H.281 action timed out without a continue: stopping the camera")
                await self._apply(actions)

    async def close(self) -> None:
        """Stop any running move and the timeout task (idempotent)."""
        if self._closed:
            return
        self._closed = True
        timer, self._timer = self._timer, None
        if timer is not None:
            await cancel_and_wait(timer)
        await self._apply(self._fsm.close())

    async def _apply(self, actions: list[CameraAction]) -> None:
        for action in actions:
            error = ""
            async with self._lock:
                try:
                    await self._run(action)
                except VcoreError as exc:
                    error = str(exc)
                    log.warning("H.281 %s failed on the camera: %s", action.kind, exc)
            if action.kind == "refuse":
                log.info("H.281 request refused: %s", action.detail)
            if self._on_action is not None:
                self._on_action(action, error or (action.detail if action.kind == "refuse" else ""))

    async def _run(self, a: CameraAction) -> None:
        cam = self.camera
        if a.kind == "move":
            if a.pan or a.tilt:
                await cam.pan_tilt(_PAN_TILT[(a.pan, a.tilt)], self.speed, self.speed)
            if a.zoom:
                await (cam.zoom_tele() if a.zoom == Zoom.IN else cam.zoom_wide())
            if a.focus:
                await cam.focus_manual()
                await (cam.focus_near() if a.focus == Focus.IN else cam.focus_far())
        elif a.kind == "stop":
            if a.pan or a.tilt:
                await cam.pan_tilt_stop()
            if a.zoom:
                await cam.zoom_stop()
            if a.focus:
                await cam.focus_stop()
        elif a.kind == "recall":
            await cam.preset_recall(a.preset)
        elif a.kind == "store":
            await cam.preset_set(a.preset)


# --------------------------------------------------------------------------- controlling side


class FeccSender:
    """The controlling side's H.281 message schedule (pure; ``now`` in seconds)."""

    def __init__(self, interval: float = CONTINUE_INTERVAL) -> None:
        self.interval = interval
        self._running: StartAction | None = None
        self._next: float | None = None

    @property
    def running(self) -> StartAction | None:
        return self._running

    @property
    def next_continue(self) -> float | None:
        """When the next continue action is due (None: nothing running)."""
        return self._next

    def stop(self) -> list[H281Message]:
        if self._running is None:
            return []
        r, self._running, self._next = self._running, None, None
        return [StopAction(r.pan, r.tilt, r.zoom, r.focus)]

    def move(self, pan: Pan, tilt: Tilt, zoom: Zoom, focus: Focus, now: float) -> list[H281Message]:
        """Messages to start moving (a different running move is stopped first; the same one goes on)."""
        start = StartAction(pan, tilt, zoom, focus, DEFAULT_TIMEOUT_MS)
        if not start.moving:
            return self.stop()
        if self._running is not None and self._running.same_action(start):
            return []
        out = self.stop()
        self._running, self._next = start, now + self.interval
        return [*out, start]

    def preset(self, preset: int, *, store: bool = False) -> list[H281Message]:
        out = self.stop()
        return [*out, StoreAsPreset(preset) if store else ActivatePreset(preset)]

    def on_time(self, now: float) -> list[H281Message]:
        """The continue action due at ``now``, if any."""
        if self._running is None or self._next is None or now < self._next:
            return []
        self._next = now + self.interval
        r = self._running
        return [ContinueAction(r.pan, r.tilt, r.zoom, r.focus)]


class RemoteCamera:
    """Steers the peer's camera with H.281 through ``send`` (an H.281 message to put in an H.224 frame).

    ``move`` keeps the camera moving (continue actions) until ``stop``, a
    preset, another move, the optional ``duration`` or :meth:`close`.
    """

    def __init__(self, send: Callable[[H281Message], Awaitable[None]], *, interval: float = CONTINUE_INTERVAL) -> None:
        self._send = send
        self._fsm = FeccSender(interval)
        self._task: asyncio.Task[None] | None = None
        self._until: float | None = None
        self._loop_time = asyncio.get_running_loop().time
        self._closed = False

    async def move(self, *, pan: Pan = Pan.NONE, tilt: Tilt = Tilt.NONE, zoom: Zoom = Zoom.NONE,
                   focus: Focus = Focus.NONE, duration: float | None = None) -> None:
        """Start (or keep) moving; ``duration`` seconds: stop by itself afterwards."""
        self._check()
        now = self._loop_time()
        self._until = None if duration is None else now + duration
        await self._emit(self._fsm.move(pan, tilt, zoom, focus, now))
        if self._fsm.running is not None and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._repeat(), name="H.281 continue")

    async def stop(self) -> None:
        self._check()
        await self._emit(self._fsm.stop())

    async def preset(self, preset: int, *, store: bool = False) -> None:
        """Activate (or, ``store``, store) preset ``preset`` (0..15) of the peer's camera."""
        self._check()
        await self._emit(self._fsm.preset(preset, store=store))

    async def close(self) -> None:
        """Stop a running move (best effort) and the continue task (idempotent)."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        try:
            await self._emit(self._fsm.stop())
        except VcoreError as exc:
            log.debug("H.281 stop at close not sent: %s", exc)

    def _check(self) -> None:
        if self._closed:
            raise VcoreError("remote camera control is closed")

    async def _emit(self, messages: list[H281Message]) -> None:
        for m in messages:
            await self._send(m)

    async def _repeat(self) -> None:
        while self._fsm.running is not None:
            now = self._loop_time()
            if self._until is not None and now >= self._until:
                self._until = None
                await self._emit(self._fsm.stop())
                return
            due = self._fsm.next_continue
            wake = now if due is None else due
            if self._until is not None:
                wake = min(wake, self._until)
            await asyncio.sleep(max(wake - now, 0))
            await self._emit(self._fsm.on_time(self._loop_time()))
