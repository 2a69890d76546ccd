"""``vcore kiosk`` (the resident's screen) and ``vcore agent`` (the agent's console): full-screen stations.

    vcore kiosk --config kiosk.toml [--lang en] [--window 1280x720]
    vcore agent --config agent.toml [--no-auto-answer] [--record-dir DIR]

Same flags and station file as ``vcore call`` / ``vcore answer`` (see
``docs/station-config.md``), plus ``--lang`` (fr, the default, or en) and
``--window WxH`` (a window instead of the full screen, for trying it out),
also set by the file's ``[screen]`` section (``language``, ``window``,
``auto_answer``).
Each state change is one line on stdout (``screen: idle``, ``screen:
in-call``...), and at the end of each call one ``display:`` line says what the
screen did (frames decoded and displayed, display latency, CPU). The peer's
sound goes to ``--speaker``, else to the default output when there is one,
else nowhere. SIGINT/SIGTERM hang up and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import call_cli as cc
from ..cli import fail, host_address, input_file, nonempty, port, record_dir, size
from .strings import LANGUAGES, Strings
from .video import FrameSlot, SelfView

log = logging.getLogger("vcore.station.ui")

__all__ = ["kiosk_main", "agent_main", "kiosk_parser", "agent_parser", "parse_args"]

SELF_VIEW = (320, 180)


def _screen_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lang", choices=LANGUAGES, default="fr", help="language of the screen (default fr)")
    p.add_argument("--window", metavar="WxH", type=size, help="a window of this size instead of the full screen")


def _speaker(args: argparse.Namespace) -> Callable[[], Any] | None:
    """The peer's sound: ``--speaker``, else the default output if it opens, else none (logged, not an error)."""
    from ..errors import VcoreError
    from ..media import Speaker

    if args.speaker:
        return lambda: Speaker(args.speaker)
    try:
        Speaker(None).close()
    except (VcoreError, OSError, ImportError) as exc:
        log.info("no speaker (%s): the peer's sound is not played", exc)
        return None
    return lambda: Speaker(None)


def _on_state(state: str, view: Any) -> None:
    peer = getattr(view, "peer", "") or (view.card.name if getattr(view, "card", None) else "")
    print(f"screen: {state}" + (f" ({peer})" if peer and state != "idle" else ""), flush=True)


class _Display:
    """Prints the ``display:`` line of each call (decoded vs displayed, latency, CPU of the display path)."""

    def __init__(self, slot: FrameSlot) -> None:
        self.slot = slot
        self.screen: Any = None
        self._t0 = (0.0, 0.0)

    def call_started(self) -> None:
        self.slot.reset()
        self._t0 = (time.monotonic(), self.screen.cpu_seconds() if self.screen else 0.0)

    def call_ended(self) -> None:
        wall = time.monotonic() - self._t0[0]
        cpu = (self.screen.cpu_seconds() if self.screen else 0.0) - self._t0[1]
        print(f"display: {self.slot.stats().line()} screen_cpu_s={cpu:.2f} wall_s={wall:.1f}", flush=True)


def _watch(display: _Display, active: tuple[str, ...]) -> Callable[[str, Any], None]:
    state = {"in": False}

    def on_state(new: str, view: Any) -> None:
        if new in active and not state["in"]:
            state["in"] = True
            display.call_started()
        elif new not in active and state["in"]:
            state["in"] = False
            display.call_ended()
        _on_state(new, view)
    return on_state


async def _run_screen(controller: Any, args: argparse.Namespace, title: str, slots: tuple[FrameSlot, ...],
                      display: _Display, stop: asyncio.Event) -> int:
    from ..errors import MediaError
    from .render import Screen

    screen = Screen(controller.draw, controller.on_input, asyncio.get_running_loop(), title=title,
                    size=args.window, version=controller.version, slots=slots, on_failure=lambda _: stop.set())
    display.screen = screen
    try:
        w, h = await screen.open()
    except MediaError as exc:
        return fail(exc, 1)
    print(f"screen: open {w}x{h}", flush=True)
    try:
        await controller.run(stop)
    finally:
        await asyncio.get_running_loop().run_in_executor(None, screen.close)
    return fail(screen.failure, 1) if screen.failure else 0


# ------------------------------------------------------------------ the kiosk


async def _kiosk(args: argparse.Namespace) -> int:
    return await cc._with_camera(_kiosk_station, args)


async def _kiosk_station(args: argparse.Namespace, camera: dict[str, Any]) -> int:
    from ..call import Terminal
    from ..directory import Directory
    from .kiosk import KioskScreen
    from .sound import Ringer

    if not args.cards:
        return fail("no cards: give --cards cards.toml or a [cards] section in the station file")
    directory = args.cards if isinstance(args.cards, Directory) else Directory.load(args.cards)
    remote, local = FrameSlot(), FrameSlot(SELF_VIEW)
    opts = cc._terminal_options(args)
    source = opts["video"]
    opts["video"] = lambda: SelfView(source(), local)
    opts["video_sink"] = lambda: remote
    speaker = _speaker(args)
    if speaker is not None:
        opts["audio_sink"] = speaker
    terminal = Terminal(cc._name(args), listen=False, directory=directory, **opts, **camera)
    cc._probe(args)
    if (status := await cc._start(terminal, args)) is not None:
        return status
    async with terminal:
        stop = cc._Shutdown().event
        display = _Display(remote)
        ringer = (lambda: Ringer.open(args.speaker)) if speaker is not None else None
        controller = KioskScreen(terminal, directory, Strings(args.lang), remote=remote, local=local,
                                 ringer=ringer, on_state=_watch(display, ("in-call",)))
        return await _run_screen(controller, args, terminal.name, (remote, local), display, stop)


def kiosk_parser() -> argparse.ArgumentParser:
    """The flags of ``vcore kiosk``."""
    p = argparse.ArgumentParser(prog="vcore kiosk", description="the resident's kiosk screen: cards, calls, "
                                "the agent full screen")
    cc._common(p)
    p.add_argument("--cards", metavar="TOML", type=input_file, help="directory of numbered cards (cards.toml)")
    _screen_options(p)
    return p


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | int:
    """``argv`` parsed and filled from ``--config`` (its ``[screen]`` too); or the exit status of a bad file."""
    return cc._parse(parser, argv)


def kiosk_main(argv: list[str]) -> int:
    """``vcore kiosk``: 0 when stopped by a signal, 1 when it failed at run time, 2 on bad input."""
    args = parse_args(kiosk_parser(), argv)
    return args if isinstance(args, int) else cc._run(_kiosk, args)


# ------------------------------------------------------------------ the agent's console


async def _agent(args: argparse.Namespace) -> int:
    return await cc._with_camera(_agent_station, args)


async def _agent_station(args: argparse.Namespace, camera: dict[str, Any]) -> int:
    from ..call import Terminal
    from .agent import AgentConsole
    from .recording import CallRecorder, Tee

    remote, local = FrameSlot(), FrameSlot(SELF_VIEW)
    video_tee, audio_tee = Tee(remote, "video"), Tee(None, "audio")
    opts = cc._terminal_options(args)
    source = opts["video"]
    opts["video"] = lambda: SelfView(source(), local)
    opts["video_sink"] = lambda: video_tee
    speaker = _speaker(args)

    def audio_sink() -> Any:
        audio_tee.first = speaker() if speaker is not None else None
        return audio_tee
    opts["audio_sink"] = audio_sink
    # no recordings= here: the console records only while the agent says so (and the kiosk shows it)
    terminal = Terminal(cc._name(args), host=args.host, port=args.port, auto_answer=False,
                        allow=args.allow or None, max_calls=1, **opts, **camera)
    cc._probe(args)
    if (status := await cc._start(terminal, args)) is not None:
        return status
    finishing: list[CallRecorder] = []

    def recorder(call: Any) -> Any:
        who = re.sub(r"[^A-Za-z0-9_.-]+", "_", call.peer or "caller")
        rec = CallRecorder(Path(args.record_dir) / f"call-{time.strftime('%Y%m%d-%H%M%S')}-{who}.mp4")
        video_tee.recorder = audio_tee.recorder = rec
        finishing.append(rec)

        class Handle:
            def stop(self) -> None:
                video_tee.recorder = audio_tee.recorder = None
                rec.finish()
        return Handle()

    async with terminal:
        stop = cc._Shutdown().event
        display = _Display(remote)
        console = AgentConsole(terminal, terminal.name, Strings(args.lang), remote=remote, local=local,
                               auto_answer=args.auto_answer is not False,
                               recorder=recorder if args.record_dir else None,
                               on_state=_watch(display, ("in-call",)))
        try:
            return await _run_screen(console, args, terminal.name, (remote, local), display, stop)
        finally:
            loop = asyncio.get_running_loop()
            for rec in finishing:
                await loop.run_in_executor(None, rec.stop)


def agent_parser() -> argparse.ArgumentParser:
    """The flags of ``vcore agent``."""
    p = argparse.ArgumentParser(prog="vcore agent", description="the agent's console: status, call log, the "
                                "resident full screen, the kiosk's camera, recording")
    cc._common(p)
    p.add_argument("--host", default="", type=host_address, help="listen address (default: every address)")
    p.add_argument("--port", type=port(any_port=True), default=None,
                   help="listen port, 0 for any free one (default 1300 with TLS, 1720 without)")
    p.add_argument("--allow", action="append", default=[], metavar="NAME", type=nonempty,
                   help="admit only these certificate names")
    p.add_argument("--record-dir", metavar="DIR", type=record_dir,
                   help="where the R key records a call (the kiosk is told); without it, R does nothing")
    p.add_argument("--auto-answer", action=argparse.BooleanOptionalAction, default=None,
                   help="answer at once (the default), or with --no-auto-answer ring and wait for Enter")
    _screen_options(p)
    return p


def agent_main(argv: list[str]) -> int:
    """``vcore agent``: 0 when stopped by a signal, 1 when it failed at run time, 2 on bad input."""
    args = parse_args(agent_parser(), argv)
    return args if isinstance(args, int) else cc._run(_agent, args)

