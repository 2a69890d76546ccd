"""The agent's console: status, auto-answer, the day's call log, and the resident full screen in a call.

:class:`AgentConsole` is the controller (asyncio loop: it reads
``terminal.incoming()``, answers or declines, steers the kiosk's camera
through the call, announces recording) and the drawing (screen thread, from an
immutable :class:`AgentView`). Keys: ``a`` auto-answer on/off; a call
offered: Enter answers, Esc declines; in a call: ``1``-``9`` the kiosk
camera's presets, arrows pan/tilt, ``+``/``-`` zoom, ``r`` starts/stops
recording (the kiosk shows a notice), Esc hangs up.

Recording: the call is recorded from when ``r`` is pressed to when it is
pressed again or the call ends (:class:`~vcore.ui.recording.CallRecorder`, into
the station's ``--record-dir``); the kiosk is told first, so nothing is
recorded that the resident was not told about.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..call import CallFailed
from ..errors import VcoreError
from .render import Input, Painter
from .state import ViewState
from .strings import Strings
from .video import FrameSlot

log = logging.getLogger(__name__)

__all__ = ["AgentConsole", "AgentView", "LogEntry"]

_MOVES = {"left": "left", "right": "right", "up": "up", "down": "down", "zoom-in": "zoom-in", "zoom-out": "zoom-out"}


@dataclass(frozen=True)
class LogEntry:
    """One call of the day: when (local wall-clock), who, how long (s), how it ended."""

    start: dt.datetime
    peer: str
    duration: float
    outcome: str  # hangup, refused, missed, lost


@dataclass(frozen=True)
class AgentView:
    """What the console shows; replaced whole on every change."""

    state: str = "waiting"  # waiting, offered, in-call
    peer: str = ""
    since: dt.datetime | None = None
    connected_at: float | None = None
    auto_answer: bool = True
    recording: bool = False
    camera: str = ""
    log: tuple[LogEntry, ...] = ()


class AgentConsole(ViewState[AgentView]):
    """The agent's controller; ``recorder(call) -> object with stop()`` starts a recording (None: no recording)."""

    def __init__(self, terminal: Any, name: str, strings: Strings, *, remote: FrameSlot, local: FrameSlot,
                 auto_answer: bool = True, recorder: Callable[[Any], Any] | None = None,
                 clock: Callable[[], dt.datetime] = dt.datetime.now,
                 on_state: Callable[[str, AgentView], None] | None = None) -> None:
        self.terminal, self.name, self.s = terminal, name, strings
        self.remote, self.local = remote, local
        super().__init__(AgentView(auto_answer=auto_answer), on_state)
        self._recorder_factory, self._clock = recorder, clock
        self._offered: Any = None
        self._call: Any = None
        self._recording: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._declined = False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, VcoreError):  # e.g. the call ended while a camera key was sent
                log.info("console: %s", exc)
            else:
                log.error("console: %r", exc, exc_info=exc)

    def _log(self, outcome: str) -> None:
        v = self._view
        today = self._clock().date()
        kept = tuple(e for e in v.log if e.start.date() == today)  # the log of the day only
        duration = time.monotonic() - v.connected_at if v.connected_at else 0.0
        entry = LogEntry(v.since or self._clock(), v.peer or "?", duration, outcome)
        self._set(log=kept + (entry,))

    # ------------------------------------------------------------ input (event loop)

    def on_input(self, inp: Input) -> None:
        v, key = self._view, inp.key
        if key == "a":
            self._set(auto_answer=not v.auto_answer)
            log.info("console: auto-answer %s", "on" if self._view.auto_answer else "off")
        elif v.state == "offered" and self._offered is not None:
            if key == "enter":
                self._spawn(self._answer(self._offered))
            elif key == "cancel":
                self._declined = True  # the kiosk says "cannot take your call" (destinationRejection)
                self._spawn(self._offered.reject("rejected"))
        elif v.state == "in-call" and self._call is not None:
            call = self._call
            if key == "cancel" or key == "hangup":
                self._spawn(call.hangup())
            elif key.isdigit() and key != "0":
                self._set(camera=self.s.t("camera.pending", what=self.s.t("camera.preset", n=key)))
                self._spawn(call.remote_camera_preset(int(key)))
            elif key in _MOVES:
                self._set(camera=self.s.t("camera.pending", what=self._move_name(_MOVES[key])))
                self._spawn(call.remote_camera_move(_MOVES[key]))
            elif key == "r":
                self._spawn(self._toggle_recording())

    # ------------------------------------------------------------ calls (event loop)

    async def run(self, stop: asyncio.Event) -> None:
        """Take calls until ``stop`` is set; hangs up a call in progress on the way out."""
        if self._on_state is not None:
            self._on_state("waiting", self._view)
        waiting = asyncio.ensure_future(stop.wait())
        incoming = self.terminal.incoming().__aiter__()
        try:
            while not stop.is_set():
                nxt = asyncio.ensure_future(incoming.__anext__())
                await asyncio.wait({nxt, waiting}, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    nxt.cancel()
                    await asyncio.gather(nxt, return_exceptions=True)
                    break
                try:
                    offered = nxt.result()
                except StopAsyncIteration:
                    break
                self._offered = offered
                self._declined = False
                self._set(state="offered", peer=offered.caller or offered.display_name or "?", since=self._clock())
                if self._view.auto_answer:
                    await self._answer(offered)
                else:
                    await self._wait_decision(offered, stop)
                if self._call is not None:
                    await self._follow(self._call, stop)
        finally:
            waiting.cancel()
            if self._call is not None:
                await self._call.hangup()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(waiting, *self._tasks, return_exceptions=True)
            self._stop_recording()

    async def _wait_decision(self, offered: Any, stop: asyncio.Event) -> None:
        """The agent answers (Enter) or declines (Esc); a caller who gives up is a missed call."""
        while self._call is None and not stop.is_set() and not offered.gone:
            await asyncio.sleep(0.1)
        if self._call is None:
            self._log("refused" if self._declined else "missed")
            self._offered = None
            self._set(state="waiting", peer="", since=None)

    async def _answer(self, offered: Any) -> None:
        if self._call is not None:
            return
        try:
            self._call = await offered.answer()
        except CallFailed as exc:  # the caller gave up meanwhile
            log.info("console: %s", exc)
            self._log("missed")
            self._set(state="waiting", peer="", since=None)
            return
        finally:
            self._offered = None
        self._set(state="in-call", connected_at=time.monotonic(), camera="", recording=False)

    async def _follow(self, call: Any, stop: asyncio.Event) -> None:
        async for event in call.events():
            if event.kind == "camera-control":
                what = self._move_name(event.move) if event.move else self.s.t("camera.preset", n=event.preset)
                self._set(camera=self.s.t("camera.done", what=what) if event.applied
                          else self.s.t("camera.refused", what=what, why=event.detail))
            elif event.kind == "ended":
                self._stop_recording()
                lost = event.reason not in ("hangup",)
                self._log("lost" if lost else "hangup")
        self._call = None
        self.remote.clear()
        self.local.clear()
        self._set(state="waiting", peer="", since=None, connected_at=None, recording=False, camera="")

    def _move_name(self, move: str) -> str:
        """A camera move in the console's language (``left``, ``up+left`` from H.281, ``zoom-in``...)."""
        return " + ".join(self.s.t(f"camera.{part}") if f"camera.{part}" in self.s else part
                          for part in move.split("+"))

    async def _toggle_recording(self) -> None:
        call = self._call
        if call is None:
            return
        if self._recording is None:
            if self._recorder_factory is None:
                self._set(camera=self.s.t("camera.no_record_dir"))
                return
            await call.announce_recording(True)  # the kiosk is told before anything is written
            self._recording = self._recorder_factory(call)
            self._set(recording=True)
        else:
            self._stop_recording()
            await call.announce_recording(False)

    def _stop_recording(self) -> None:
        if self._recording is not None:
            rec, self._recording = self._recording, None
            rec.stop()
            self._set(recording=False)

    # ------------------------------------------------------------ drawing (screen thread)

    def draw(self, p: Painter, now: float) -> None:
        v = self._view
        if v.state == "in-call":
            self._draw_call(p, v, now)
            return
        p.fill("background")
        p.text(self.s.t("agent.title", name=self.name), (p.u(0.04), p.u(0.03)), 0.055, bold=True,
               max_width=p.width - p.u(0.08))
        p.text(self.s.t("agent.auto.on" if v.auto_answer else "agent.auto.off"), (p.width - p.u(0.04), p.u(0.04)),
               0.04, "light", anchor="topright")
        left = (p.u(0.04), p.u(0.14), p.width // 2 - p.u(0.06), p.height - p.u(0.2))
        p.box(left, "panel", radius=p.u(0.02))
        cx, cy = left[0] + left[2] // 2, left[1] + left[3] // 2
        if v.state == "offered":
            p.circle((cx, cy - p.u(0.1)), p.u(0.07), "open")
            who, _, what = self.s.t("agent.ringing", peer=v.peer).partition(" — ")
            p.text(who, (cx, cy + p.u(0.05)), 0.055, "ink", bold=True, anchor="center", max_width=left[2] - p.u(0.04))
            p.text(what, (cx, cy + p.u(0.13)), 0.04, "muted", anchor="center", max_width=left[2] - p.u(0.04))
            p.zone(left, "enter")
        else:
            p.circle((cx, cy - p.u(0.1)), p.u(0.07), "closed")
            p.text(self.s.t("agent.waiting"), (cx, cy + p.u(0.05)), 0.055, "ink", bold=True, anchor="center",
                   max_width=left[2] - p.u(0.04))
            p.text(self._clock().strftime("%H:%M"), (cx, cy + p.u(0.14)), 0.05, "muted", anchor="center")
        right = (p.width // 2 + p.u(0.02), p.u(0.14), p.width // 2 - p.u(0.06), p.height - p.u(0.2))
        p.box(right, "light", radius=p.u(0.02))
        p.text(self.s.t("agent.log"), (right[0] + p.u(0.03), right[1] + p.u(0.03)), 0.045, "ink", bold=True)
        if not v.log:
            p.text(self.s.t("agent.log.none"), (right[0] + p.u(0.03), right[1] + p.u(0.1)), 0.035, "muted")
        for i, e in enumerate(reversed(v.log[-12:])):
            line = self.s.t("agent.log.entry", start=e.start.strftime("%H:%M"), peer=e.peer,
                            duration=self.s.duration(e.duration), outcome=self.s.t(f"outcome.{e.outcome}"))
            p.text(line, (right[0] + p.u(0.03), right[1] + p.u(0.1 + 0.05 * i)), 0.035, "ink",
                   max_width=right[2] - p.u(0.06))
        p.zone((p.width - p.u(0.5), 0, p.u(0.5), p.u(0.12)), "a")

    def _draw_call(self, p: Painter, v: AgentView, now: float) -> None:
        p.fill("black")
        p.picture(self.remote, (0, 0, p.width, p.height))
        sw, sh = p.width // 6, p.width // 6 * 9 // 16
        rect = (p.width - sw - p.u(0.03), p.u(0.12), sw, sh)
        p.box((rect[0] - 2, rect[1] - 2, sw + 4, sh + 4), "white")
        p.box(rect, "black")
        p.picture(self.local, rect)
        bar = p.u(0.09)
        p.box((0, 0, p.width, bar), "background")
        since = v.since.strftime("%H:%M") if v.since else ""
        dur = self.s.duration(now - v.connected_at) if v.connected_at else ""
        p.text(f"{self.s.t('agent.incall', peer=v.peer, since=since)}  ·  {dur}", (p.u(0.03), bar // 2), 0.04,
               bold=True, anchor="midleft", max_width=p.width * 52 // 100)
        rec = "agent.recording.on" if v.recording else "agent.recording.off"
        p.text(self.s.t(rec), (p.width - p.u(0.03), bar // 2), 0.035, "danger" if v.recording else "light",
               bold=v.recording, anchor="midright", max_width=p.width * 40 // 100)
        p.box((0, p.height - bar, p.width, bar), "background")
        p.text(self.s.t("agent.keys"), (p.u(0.03), p.height - bar // 2), 0.032, "light", anchor="midleft",
               max_width=p.width - p.u(0.06))
        if v.camera:
            p.text(self.s.t("agent.camera", detail=v.camera), (p.u(0.03), p.height - bar - p.u(0.05)), 0.035,
                   "white", bold=True, anchor="midleft")
