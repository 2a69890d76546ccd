"""The resident's kiosk screen: the cards, the call, the agent full screen, and nothing left afterwards.

:class:`KioskScreen` is the controller (on the asyncio loop, driving a
:class:`~vcore.Terminal` and its cards) and the drawing (in the screen
thread, from an immutable :class:`KioskView`). States::

    idle ──card──▶ calling ──answered──▶ in-call ──hang-up──▶ ended ──4 s──▶ idle
                     │ busy / no answer (60 s) / refused / unreachable ▶ failed ─key or 20 s─▶ idle
                     │ cancel ▶ idle
                     in-call ──connection lost──▶ lost ──redial the same card, once──▶ calling

Keys (numeric keypad or keyboard): a card's number (dialled as soon as it is
unambiguous, else with Enter), the red key (Esc, Backspace, ``*``) cancels or
hangs up; touching a card or a button does the same. After a call every
picture and name of it is gone from the screen (confidentiality).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..call import CallFailed
from ..errors import CallError
from ..directory import Card, Directory
from .render import Input, Painter
from .state import ViewState
from .strings import Strings
from .video import FrameSlot

log = logging.getLogger(__name__)

__all__ = ["KioskScreen", "KioskView", "failure_kind"]

ENDED_FOR = 4.0  # seconds the "call ended" screen stays
FAILED_FOR = 20.0  # seconds a failure stays unless a key is pressed
NOTICE_FOR = 6.0  # seconds a notice (closed card, unknown number) stays on the idle screen
RING_TIMEOUT = 60.0  # seconds a call may ring unanswered before the kiosk gives up ("no answer")
REDIAL_AFTER = 1.0  # seconds between a lost connection and the one redial of the same card
_LOST = {"media-timeout", "peer-closed", "timeout", "protocol-error", "media-error", "connection-failed",
         "tls-failure", "internal-error"}


def failure_kind(reason: str) -> str:
    """A call that did not go through, in the four cases a resident is told about."""
    if reason == "busy":
        return "busy"
    if reason in ("timeout", "noAnswer", "no-answer"):  # "timeout": the callee's answer_timeout ran out
        return "noanswer"
    if reason in ("rejected", "security-denied", "securityDenied", "destinationRejection", "calledPartyNotRegistered"):
        return "refused"
    return "unreachable"


@dataclass(frozen=True)
class KioskView:
    """What the kiosk shows; replaced whole on every change (the screen thread reads it)."""

    state: str = "idle"  # idle, calling, failed, in-call, lost, ended
    card: Card | None = None
    ringing: bool = False
    connected_at: float | None = None
    recording: bool = False
    stalled: bool = False
    failure: str = ""
    entry: str = ""
    notice: str = ""
    notice_until: float = 0.0
    lost_ending: bool = False


class KioskScreen(ViewState[KioskView]):
    """The kiosk's controller; ``on_state(state, view)`` is told of each change of state (the CLI prints it).

    ``terminal``: a :class:`~vcore.Terminal` (``listen=False``) whose video sink is ``remote`` and whose
    video source feeds ``local`` (:class:`~vcore.ui.SelfView`); ``ringer()``: an object with ``stop()``
    playing the ringback tone (:class:`~vcore.ui.Ringer`); ``clock``: the wall clock the cards' hours are
    read against; ``ring_timeout``: seconds a call rings unanswered before the kiosk says "no answer".
    Drive it with :meth:`on_input` and :meth:`run`; :meth:`draw` paints it (``Screen(kiosk.draw, ...)``).
    """

    def __init__(self, terminal: Any, directory: Directory, strings: Strings, *, remote: FrameSlot,
                 local: FrameSlot, ringer: Callable[[], Any] | None = None,
                 clock: Callable[[], dt.datetime] = dt.datetime.now,
                 on_state: Callable[[str, KioskView], None] | None = None,
                 ring_timeout: float = RING_TIMEOUT) -> None:
        self.terminal, self.directory, self.s = terminal, directory, strings
        self.remote, self.local = remote, local
        super().__init__(KioskView(), on_state)
        self._ringer_factory, self._clock = ringer, clock
        self.ring_timeout = ring_timeout
        self._task: asyncio.Task[None] | None = None
        self._call: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._gave_up = ""  # why the kiosk itself ended a call that was not answered: "cancel", "no-answer"
        self.calls_made = 0

    # ------------------------------------------------------------ state (event loop)

    def _later(self, delay: float, state: str) -> None:
        """Back to idle after ``delay`` s if still in ``state``."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(
            delay, lambda: self._idle() if self._view.state == state else None)

    def _idle(self) -> None:
        self.remote.clear()
        self.local.clear()
        self._set(state="idle", card=None, ringing=False, connected_at=None, recording=False, stalled=False,
                  failure="", entry="", notice="", lost_ending=False)

    def on_input(self, inp: Input) -> None:
        """A key or a touch, from the screen thread (through ``call_soon_threadsafe``)."""
        v, key = self._view, inp.key
        if v.state == "idle":
            if key.startswith("card:"):
                self._choose(int(key[5:]))
            elif key.isdigit():
                self._digit(key)
            elif key == "enter" and v.entry:
                self._choose(int(v.entry))
            elif key == "cancel":
                self._set(entry="", notice="")
        elif v.state in ("calling", "lost", "in-call") and key in ("cancel", "hangup"):
            self._hang_up()
        elif v.state in ("failed", "ended"):
            self._idle()

    def _digit(self, key: str) -> None:
        entry = (self._view.entry + key)[-4:]
        numbers = [str(c.number) for c in self.directory]
        if not any(n.startswith(entry) for n in numbers):
            self._notice(self.s.t("card.unknown", number=entry))
        elif entry in numbers and not any(n != entry and n.startswith(entry) for n in numbers):
            self._choose(int(entry))
        else:
            self._set(entry=entry, notice="")

    def _notice(self, text: str) -> None:
        self._set(entry="", notice=text, notice_until=time.monotonic() + NOTICE_FOR)

    def _choose(self, number: int) -> None:
        if number not in self.directory:
            self._notice(self.s.t("card.unknown", number=number))
            return
        card = self.directory[number]
        now = self._clock()
        if not card.is_open(now):
            nxt = card.next_opening(now)
            self._notice(self.s.t("card.closed_now", name=card.name, when=self.s.when(nxt, now) if nxt else "?"))
            return
        self._start(card, redial=False)

    def _start(self, card: Card, *, redial: bool) -> None:
        self._set(state="calling", card=card, ringing=False, entry="", notice="", failure="", recording=False,
                  stalled=False, connected_at=None)
        self._task = asyncio.ensure_future(self._dial(card, redial))

    def _hang_up(self, why: str = "cancel") -> None:
        if self._call is not None:
            if self._call.connected_at is None:
                self._gave_up = why
            self._spawn(self._call.hangup())
        elif self._task is not None:
            self._task.cancel()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("kiosk: %r", task.exception(), exc_info=task.exception())

    def _ring_out(self) -> None:
        """Rang for ``ring_timeout`` s unanswered: the kiosk hangs up and says "no answer"."""
        if self._view.state == "calling" and self._call is not None and self._call.connected_at is None:
            log.info("kiosk: no answer within %g s", self.ring_timeout)
            self._hang_up("no-answer")

    # ------------------------------------------------------------ a call (event loop)

    async def _dial(self, card: Card, redial: bool) -> None:
        ringer = None
        lost = False
        ring_out = asyncio.get_running_loop().call_later(self.ring_timeout, self._ring_out)
        self._gave_up = ""
        try:
            self.calls_made += 1
            ringer = self._ringer_factory() if self._ringer_factory is not None else None
            try:
                try:
                    self._call = call = await self.terminal.call(card=card.number)
                except CallFailed:
                    raise
                except CallError as exc:  # e.g. still in the previous call: said like a failure, logged
                    log.warning("kiosk: cannot call card %d: %s", card.number, exc)
                    raise CallFailed(str(exc), "unavailable") from None
                async for event in call.events():
                    if event.kind == "ringing":
                        self._set(ringing=True)
                    elif event.kind == "connected":
                        if ringer is not None:
                            ringer.stop()
                            ringer = None
                        self._set(state="in-call", connected_at=time.monotonic())
                    elif event.kind == "recording":
                        self._set(recording=event.recording)
                    elif event.kind == "degraded" and event.stream == "video":
                        self._set(stalled=event.degraded and event.detail == "no media")
                    elif event.kind == "ended":
                        if call.connected_at is None:
                            raise CallFailed(event.detail, self._gave_up or event.reason)
                        lost = event.reason in _LOST
            except CallFailed as exc:
                log.info("kiosk: card %d: %s (%s)", card.number, exc, exc.reason)
                if exc.reason == "cancel":  # the resident cancelled: back to the cards, nothing to say
                    self._idle()
                elif redial:  # the connection was lost and the redial failed: say so, plainly
                    self._set(state="ended", card=None, ringing=False, lost_ending=True)
                    self._later(ENDED_FOR * 2, "ended")
                else:
                    self._set(state="failed", failure=failure_kind(exc.reason), ringing=False)
                    self._later(FAILED_FOR, "failed")
                return
        except asyncio.CancelledError:
            self._idle()
            raise
        finally:
            ring_out.cancel()
            self._call = None
            if ringer is not None:
                ringer.stop()
            self.remote.clear()
            self.local.clear()
        if lost and not redial:  # once, the same card
            self._set(state="lost", stalled=True, connected_at=None, recording=False)
            await asyncio.sleep(REDIAL_AFTER)
            if self._view.state == "lost":
                self._start(card, redial=True)
            return
        self._set(state="ended", card=None, connected_at=None, recording=False, lost_ending=lost)
        self._later(ENDED_FOR, "ended")

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; hangs up a call in progress on the way out."""
        if self._view.state == "idle" and self._task is None:  # (a key pressed before run() is not undone)
            self._idle()
            if self._on_state is not None:
                self._on_state("idle", self._view)
        try:
            await stop.wait()
        finally:
            if self._timer is not None:
                self._timer.cancel()
            task = self._task
            if self._call is not None:
                await self._call.hangup()
            if task is not None and not task.done():
                task.cancel()
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
            await asyncio.gather(*self._tasks, return_exceptions=True)  # hang-ups under way: short

    # ------------------------------------------------------------ drawing (screen thread)

    def draw(self, p: Painter, now: float) -> None:
        v = self._view
        p.fill("background")
        if v.state == "idle":
            self._draw_idle(p, v, now)
        elif v.state in ("calling", "failed") or (v.state == "lost" and v.card is not None):
            self._draw_calling(p, v, now)
        elif v.state == "in-call":
            self._draw_call(p, v, now)
        else:
            p.text(self.s.t("ended.title"), (p.width // 2, p.height // 3), 0.09, bold=True, anchor="center")
            p.text(self.s.t("ended.lost" if v.lost_ending else "ended.thanks"), (p.width // 2, p.height // 2),
                   0.06, anchor="center", max_width=p.width - p.u(0.1))

    def _draw_idle(self, p: Painter, v: KioskView, now: float) -> None:
        p.text(self.s.t("idle.title"), (p.width // 2, p.u(0.04)), 0.085, bold=True, anchor="midtop",
               max_width=p.width - p.u(0.1))
        cards = list(self.directory)
        if not cards:
            p.text(self.s.t("idle.none"), (p.width // 2, p.height // 2), 0.06, anchor="center")
            return
        cols = 1 if len(cards) <= 3 else 2 if len(cards) <= 8 else 3
        rows = math.ceil(len(cards) / cols)
        top, bottom, margin = p.u(0.16), p.height - p.u(0.14), p.u(0.03)
        cw = (p.width - margin * (cols + 1)) // cols
        ch = min(p.u(0.2), (bottom - top - margin * (rows - 1)) // rows)
        wall = self._clock()
        for i, card in enumerate(cards):
            x = margin + (i % cols) * (cw + margin)
            y = top + (i // cols) * (ch + margin)
            self._draw_card(p, card, (x, y, cw, ch), wall)
        help_y = p.height - p.u(0.07)
        if v.notice and now < v.notice_until:
            p.box((0, help_y - p.u(0.05), p.width, p.u(0.1)), "warning")
            p.text(v.notice, (p.width // 2, help_y), 0.05, "ink", bold=True, anchor="center",
                   max_width=p.width - p.u(0.05))
        elif v.entry:
            p.text(self.s.t("entry", digits=v.entry), (p.width // 2, help_y), 0.06, bold=True, anchor="center")
        else:
            p.text(self.s.t("idle.help"), (p.width // 2, help_y), 0.05, "light", anchor="center")

    def _draw_card(self, p: Painter, card: Card, rect: tuple[int, int, int, int], wall: dt.datetime) -> None:
        x, y, w, h = rect
        is_open = card.is_open(wall)
        p.box(rect, "panel", radius=p.u(0.02))
        r = int(h * 0.36)
        p.circle((x + r + p.u(0.02), y + h // 2), r, "accent" if is_open else "closed")
        p.text(str(card.number), (x + r + p.u(0.02), y + h // 2), h * 0.5 / p.height, bold=True, anchor="center")
        tx = x + 2 * r + p.u(0.045)
        p.text(card.name, (tx, y + int(h * 0.14)), h * 0.3 / p.height, "ink", bold=True,
               max_width=x + w - tx - p.u(0.02))
        if is_open:
            status, colour = self.s.t("card.open"), "open"
        else:
            nxt = card.next_opening(wall)
            status = self.s.t("card.closed") + (" · " + self.s.t("card.opens", when=self.s.when(nxt, wall))
                                                if nxt else "")
            colour = "muted"
        p.text(status, (tx, y + int(h * 0.58)), h * 0.22 / p.height, colour, bold=is_open,
               max_width=x + w - tx - p.u(0.02))
        p.zone(rect, f"card:{card.number}")

    def _draw_calling(self, p: Painter, v: KioskView, now: float) -> None:
        name = v.card.name if v.card else ""
        cx = p.width // 2
        p.text(self.s.t("calling.title", name=name), (cx, p.u(0.08)), 0.09, bold=True, anchor="midtop",
               max_width=p.width - p.u(0.1))
        if v.state == "failed":
            p.circle((cx, p.u(0.42)), p.u(0.1), "warning")
            p.text("!", (cx, p.u(0.42)), 0.16, "ink", bold=True, anchor="center")
            p.text(self.s.t(f"failed.{v.failure}", name=name), (cx, p.u(0.62)), 0.065, bold=True, anchor="center",
                   max_width=p.width - p.u(0.08))
            p.text(self.s.t(f"failed.{v.failure}.what"), (cx, p.u(0.72)), 0.05, "light", anchor="center",
                   max_width=p.width - p.u(0.08))
            p.text(self.s.t("failed.back"), (cx, p.u(0.9)), 0.045, "light", anchor="center")
            p.zone((0, 0, p.width, p.height), "enter")
            return
        phase = (now * 1.2) % 1.0  # rings spreading out from the bell, faster when it rings
        for k in range(3):
            f = (phase + k / 3) % 1.0
            p.circle((cx, p.u(0.42)), p.u(0.08 + 0.14 * f), "accent", width=max(2, int(p.u(0.012) * (1 - f))))
        p.circle((cx, p.u(0.42)), p.u(0.075), "open" if v.ringing else "accent")
        if v.card is not None:
            p.text(str(v.card.number), (cx, p.u(0.42)), 0.09, bold=True, anchor="center")
        text = (self.s.t("incall.redial", name=name) if v.state == "lost"
                else self.s.t("calling.ringing") if v.ringing else self.s.t("calling.connecting"))
        p.text(text, (cx, p.u(0.66)), 0.06, anchor="center", max_width=p.width - p.u(0.08))
        self._red_button(p, self.s.t("calling.cancel"), "cancel")

    def _red_button(self, p: Painter, label: str, key: str) -> None:
        rect = (p.width // 2 - p.u(0.5), p.height - p.u(0.17), p.u(1.0), p.u(0.13))
        p.box(rect, "danger", radius=p.u(0.03))
        p.text(label, (rect[0] + rect[2] // 2, rect[1] + rect[3] // 2), 0.045, bold=True, anchor="center",
               max_width=rect[2] - p.u(0.04))
        p.zone(rect, key)

    def _draw_call(self, p: Painter, v: KioskView, now: float) -> None:
        p.fill("black")
        if not p.picture(self.remote, (0, 0, p.width, p.height)):
            p.text(self.s.t("incall.waiting"), (p.width // 2, p.height // 2), 0.06, anchor="center")
        sw, sh = p.width // 5, p.width // 5 * 9 // 16
        self_rect = (p.width - sw - p.u(0.03), p.height - sh - p.u(0.03), sw, sh)
        p.box((self_rect[0] - 3, self_rect[1] - 3, sw + 6, sh + 6), "white")
        p.box(self_rect, "black")
        p.picture(self.local, self_rect)
        if v.connected_at is not None:
            label = self.s.t("incall.duration", duration=self.s.duration(now - v.connected_at))
            r = p.text(label, (p.u(0.05), p.u(0.045)), 0.05, bold=True)
            p.box((r[0] - p.u(0.02), r[1] - p.u(0.012), r[2] + p.u(0.04), r[3] + p.u(0.024)), "background",
                  radius=p.u(0.02))
            p.text(label, (p.u(0.05), p.u(0.045)), 0.05, bold=True)
        if v.recording:
            rect = (p.width // 2 - p.u(0.45), p.u(0.03), p.u(0.9), p.u(0.08))
            p.box(rect, "danger", radius=p.u(0.02))
            p.text(self.s.t("incall.recording"), (p.width // 2, rect[1] + rect[3] // 2), 0.045, bold=True,
                   anchor="center", max_width=rect[2] - p.u(0.02))
        if v.stalled:
            band = (0, p.height // 2 - p.u(0.08), p.width, p.u(0.16))
            p.box(band, "warning")
            p.text(self.s.t("incall.lost"), (p.width // 2, p.height // 2), 0.07, "ink", bold=True, anchor="center")
        rect = (p.u(0.04), p.height - p.u(0.19), p.u(0.62), p.u(0.15))
        p.box(rect, "danger", radius=p.u(0.03))
        p.text(self.s.t("incall.hangup"), (rect[0] + rect[2] // 2, rect[1] + int(rect[3] * 0.38)), 0.06,
               bold=True, anchor="center", max_width=rect[2] - p.u(0.03))
        p.text(self.s.t("incall.hangup.key"), (rect[0] + rect[2] // 2, rect[1] + int(rect[3] * 0.78)), 0.03,
               anchor="center", max_width=rect[2] - p.u(0.03))
        p.zone(rect, "hangup")
