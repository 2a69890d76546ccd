"""The kiosk's and the console's controllers, in process, on real calls between two terminals on 127.0.0.1.

No window: the controllers are driven through ``on_input`` (what the screen thread sends for a key) and
their views are read; a few states are painted on an off-screen pygame surface (``Painter``) to check
what a resident would see. The whole-screen test under Xvfb is ``tests/test_ui_stations.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vcore.directory import Directory
from vcore.ui import FrameSlot, Strings
from vcore.ui.agent import AgentConsole
from vcore.ui.kiosk import KioskScreen, KioskView
from vcore.ui.render import COLOURS, Input, Painter

from .call_helpers import T, free_port, make_pki, run, terminal, wait_for
from .ui_helpers import colour_share, region

NOW = dt.datetime(2026, 12, 8, 10, 0)  # a Tuesday morning: the clock the cards' hours are read against
SIZE = (640, 360)


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def cards(agent_port: int) -> Directory:
    """Card 1: the agent; card 2: an address where nothing listens."""
    return Directory.parse(f'''[cards.1]
name = "CAF du Cantal"
address = "h323:caf-agent@127.0.0.1:{agent_port}"
[cards.2]
name = "UDAF"
address = "h323:caf-agent@127.0.0.1:{free_port()}"
''', "cards.toml")


class Bell:
    """Stands in for the ringback tone (a sound device): counts the rings started and stopped."""

    def __init__(self) -> None:
        self.started = self.stopped = 0

    def __call__(self) -> Bell:
        self.started += 1
        return self

    def stop(self) -> None:
        self.stopped += 1


class Recorder:
    """Stands in for the console's recorder (an encoder writing a file): counts starts and stops."""

    def __init__(self) -> None:
        self.started = self.stopped = 0

    def __call__(self, call: Any) -> Recorder:
        assert call.connected_at is not None
        self.started += 1
        return self

    def stop(self) -> None:
        self.stopped += 1


def kiosk_screen(kiosk: Any, **kw: Any) -> KioskScreen:
    return KioskScreen(kiosk, kiosk.directory, Strings("en"), remote=kw.pop("remote", FrameSlot()),
                       local=FrameSlot((160, 90)), clock=lambda: NOW, **kw)


async def state(controller: Any, wanted: str, timeout: float = T) -> None:
    await wait_for(lambda: controller.view.state == wanted, timeout)


async def running(screen: KioskScreen) -> None:
    """``screen.run()`` has begun (it shows the idle screen first)."""
    await wait_for(lambda: screen.version() > 0)


def press(controller: Any, *keys: str) -> None:
    for key in keys:
        controller.on_input(Input(key))


def paint(controller: Any) -> np.ndarray[Any, Any]:
    """The controller's screen now, drawn off screen at SIZE (RGB rows)."""
    pg = pytest.importorskip("pygame", reason="pygame-ce is not installed (pip install pygame-ce)")
    pg.font.init()
    surface = pg.Surface(SIZE)
    controller.draw(Painter(pg, surface), 0.0)
    return np.asarray(pg.surfarray.array3d(surface)).swapaxes(0, 1)


def idle_view(view: KioskView) -> bool:
    """The idle screen with nothing of any call in it (the notice clock aside)."""
    return dataclasses.replace(view, notice_until=0.0) == KioskView()


# --------------------------------------------------------------------------- the kiosk alone


def test_kiosk_says_busy_refused_no_answer_unreachable_in_plain_words(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=False)
        actions = iter(["busy", "rejected", "ring"])

        async def agent_side() -> None:  # the agent's station: busy, then declines, then lets it ring
            async for offered in agent.incoming():
                action = next(actions)
                if action != "ring":
                    await offered.reject(action)

        async with agent:
            kiosk = terminal(pki_dir, "Murat kiosk", listen=False, directory=cards(agent.port))
            async with kiosk:
                bell = Bell()
                screen = kiosk_screen(kiosk, ringer=bell, ring_timeout=2.0)
                stop = asyncio.Event()
                tasks = [asyncio.ensure_future(screen.run(stop)), asyncio.ensure_future(agent_side())]
                try:
                    await running(screen)
                    for card, kind in (("1", "busy"), ("1", "refused"), ("1", "noanswer"), ("2", "unreachable")):
                        press(screen, card)
                        assert screen.view.state == "calling" and screen.view.card is not None
                        if kind == "noanswer":  # it rang, then the kiosk gave up after ring_timeout
                            await wait_for(lambda: screen.view.ringing)
                        await state(screen, "failed")
                        assert screen.view.failure == kind and screen.view.card is not None, (kind, screen.view)
                        text = Strings("en").t(f"failed.{kind}", name=screen.view.card.name)
                        assert text.startswith(screen.view.card.name) and Strings("en").t(f"failed.{kind}.what")
                        assert bell.stopped == bell.started  # no ringback once it failed
                        press(screen, "enter")  # any key: back to the cards
                        assert idle_view(screen.view), screen.view
                    assert bell.started == 4 and screen.calls_made == 4
                    await wait_for(lambda: not kiosk.calls and not agent.calls)
                finally:
                    stop.set()
                    tasks[1].cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)

    run(scenario())


def test_lost_connection_redials_the_same_card_once(pki_dir: Path) -> None:
    """The agent sends nothing on its first call (the kiosk's media times out), then picture and sound."""
    from vcore.media import TestPattern, Tone

    def first_silent(make: Any) -> Any:
        made = iter(range(1000))
        return lambda: None if next(made) == 0 else make()

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, video=first_silent(lambda: TestPattern(320, 240, 15)),
                         audio=first_silent(lambda: Tone(sample_rate=8000)))
        async with agent:
            remote = FrameSlot()
            kiosk = terminal(pki_dir, "Murat kiosk", listen=False, directory=cards(agent.port), media_timeout=1.5,
                             video_sink=lambda: remote)
            async with kiosk:
                states: list[str] = []
                screen = kiosk_screen(kiosk, remote=remote, on_state=lambda s, v: states.append(s))
                stop = asyncio.Event()
                task = asyncio.ensure_future(screen.run(stop))
                try:
                    await running(screen)
                    press(screen, "1")
                    await wait_for(lambda: states.count("in-call") == 2, 4 * T)
                    assert states == ["idle", "calling", "in-call", "lost", "calling", "in-call"], states
                    assert screen.view.card is not None and screen.view.card.number == 1  # the same card
                    await wait_for(lambda: remote.latest() is not None)  # this time the picture comes
                    press(screen, "hangup")
                    await state(screen, "ended")
                    assert not screen.view.lost_ending and screen.calls_made == 2
                finally:
                    stop.set()
                    await asyncio.gather(task, return_exceptions=True)

    run(scenario())


def test_a_second_lost_connection_is_not_redialled(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, video=None, audio=None)  # never any media
        answered: list[Any] = []

        async def count() -> None:
            async for offered in agent.incoming():
                answered.append(offered)

        async with agent:
            kiosk = terminal(pki_dir, "Murat kiosk", listen=False, directory=cards(agent.port), media_timeout=1.5)
            async with kiosk:
                states: list[str] = []
                screen = kiosk_screen(kiosk, on_state=lambda s, v: states.append(s))
                stop = asyncio.Event()
                tasks = [asyncio.ensure_future(screen.run(stop)), asyncio.ensure_future(count())]
                try:
                    await running(screen)
                    press(screen, "1")
                    await wait_for(lambda: "ended" in states, 4 * T)
                    assert states == ["idle", "calling", "in-call", "lost", "calling", "in-call", "ended"], states
                    v = screen.view
                    assert v.lost_ending and v.card is None and v.connected_at is None and not v.recording
                    assert screen.calls_made == 2 and len(answered) == 2
                    press(screen, "enter")
                    assert idle_view(screen.view)
                    await wait_for(lambda: not kiosk.calls and not agent.calls)
                    assert screen.calls_made == 2 and len(answered) == 2  # and no third call
                finally:
                    stop.set()
                    tasks[1].cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)

    run(scenario())


# --------------------------------------------------------------------------- the kiosk and the console


class Pair:
    """A kiosk screen and an agent console on two terminals, each controller running."""

    def __init__(self, kiosk: KioskScreen, console: AgentConsole) -> None:
        self.kiosk, self.console = kiosk, console


def pair(pki_dir: Path, *, auto_answer: bool, recorder: Any = None) -> Any:
    """An async context manager giving a running :class:`Pair`."""
    import contextlib

    @contextlib.asynccontextmanager
    async def cm() -> Any:
        k_remote, a_remote = FrameSlot(), FrameSlot()
        agent = terminal(pki_dir, "CAF agent", auto_answer=False, video_sink=lambda: a_remote)
        async with agent:
            kiosk = terminal(pki_dir, "Murat kiosk", listen=False, directory=cards(agent.port),
                             video_sink=lambda: k_remote)
            async with kiosk:
                screen = kiosk_screen(kiosk, remote=k_remote, ringer=Bell())
                console = AgentConsole(agent, "CAF agent", Strings("en"), remote=a_remote, local=FrameSlot(),
                                       auto_answer=auto_answer, recorder=recorder, clock=lambda: NOW)
                stop = asyncio.Event()
                tasks = [asyncio.ensure_future(screen.run(stop)), asyncio.ensure_future(console.run(stop))]
                try:
                    await running(screen)
                    yield Pair(screen, console)
                finally:
                    stop.set()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    assert all(t.exception() is None for t in tasks if not t.cancelled())
    return cm()


def test_whole_call_recording_notice_and_nothing_left_after(pki_dir: Path) -> None:
    recorder = Recorder()

    async def scenario() -> None:
        async with pair(pki_dir, auto_answer=False, recorder=recorder) as p:
            kiosk, console = p.kiosk, p.console
            idle_before = paint(kiosk)
            press(kiosk, "1")
            await state(console, "offered")
            assert console.view.peer == "Murat kiosk"
            await wait_for(lambda: kiosk.view.ringing)  # the console rings: the kiosk says so
            press(console, "enter")
            await state(console, "in-call")
            await state(kiosk, "in-call")
            await wait_for(lambda: kiosk.remote.latest() is not None and console.remote.latest() is not None)
            shot = paint(kiosk)
            assert colour_share(region(shot, 0.3, 0.3, 0.7, 0.7), COLOURS["background"], 6) < 0.5  # a picture
            assert colour_share(region(shot, 0.3, 0, 0.7, 0.12), COLOURS["danger"], 10) < 0.05  # no notice yet

            press(console, "r")  # recording: the kiosk is told, and shows it
            await wait_for(lambda: kiosk.view.recording and console.view.recording)
            assert recorder.started == 1
            assert colour_share(region(paint(kiosk), 0.3, 0, 0.7, 0.12), COLOURS["danger"], 10) > 0.3
            press(console, "r")  # stopped: the notice goes
            await wait_for(lambda: not kiosk.view.recording and not console.view.recording)
            assert recorder.stopped == 1
            press(console, "r")  # and again, left on until the resident hangs up
            await wait_for(lambda: kiosk.view.recording)

            press(kiosk, "hangup")
            await state(kiosk, "ended")
            v = kiosk.view
            assert v.card is None and v.connected_at is None and not v.recording and not v.stalled
            assert kiosk.remote.latest() is None and kiosk.local.latest() is None
            assert colour_share(paint(kiosk), COLOURS["background"], 6) > 0.8  # a few words, no picture
            await state(console, "waiting")
            assert recorder.started == recorder.stopped == 2  # the end of the call ends the recording
            assert [e.outcome for e in console.view.log] == ["hangup"]
            assert console.view.peer == "" and console.remote.latest() is None and not console.view.recording
            press(kiosk, "enter")
            assert idle_view(kiosk.view)
            assert float(np.abs(paint(kiosk).astype(np.int32) - idle_before.astype(np.int32)).mean()) == 0.0

    run(scenario())


def test_console_declines_misses_and_auto_answers(pki_dir: Path) -> None:
    async def scenario() -> None:
        async with pair(pki_dir, auto_answer=False) as p:
            kiosk, console = p.kiosk, p.console
            press(kiosk, "1")  # the agent declines: the kiosk says the service cannot take the call
            await state(console, "offered")
            press(console, "cancel")
            await state(kiosk, "failed")
            assert kiosk.view.failure == "refused"
            await state(console, "waiting")
            press(kiosk, "enter")

            press(kiosk, "1")  # the resident gives up while it rings: back to the cards; a missed call
            await state(console, "offered")
            await wait_for(lambda: kiosk.view.ringing)
            press(kiosk, "cancel")
            await state(kiosk, "idle")
            assert idle_view(kiosk.view) and kiosk.remote.latest() is None
            await state(console, "waiting")
            assert [e.outcome for e in console.view.log] == ["refused", "missed"]
            assert all(e.peer == "Murat kiosk" and e.duration == 0 for e in console.view.log)

            press(console, "a")  # auto-answer on: the next call is answered without a key
            assert console.view.auto_answer
            press(kiosk, "1")
            await state(kiosk, "in-call")
            assert console.view.state == "in-call"
            press(console, "hangup")  # the agent hangs up this time
            await state(kiosk, "ended")
            assert not kiosk.view.lost_ending
            await state(console, "waiting")
            assert [e.outcome for e in console.view.log] == ["refused", "missed", "hangup"]
            press(console, "a")
            assert not console.view.auto_answer
            assert kiosk.calls_made == 3

    run(scenario())


def test_cancel_before_the_callee_answers_anything() -> None:
    """Cancel while the connection is still being made (nothing listening answers the TCP handshake slowly)."""
    async def scenario() -> None:
        gate = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await gate.wait()  # accepts the connection, never speaks TLS
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = int(server.sockets[0].getsockname()[1])
        import vcore

        kiosk = vcore.Terminal("Murat kiosk", listen=False, allow_plaintext=True,
                               directory=Directory.parse(f'[cards.1]\nname = "CAF"\naddress = "127.0.0.1:{port}"\n'))
        try:
            async with kiosk:
                bell = Bell()
                screen = kiosk_screen(kiosk, ringer=bell)
                stop = asyncio.Event()
                task = asyncio.ensure_future(screen.run(stop))
                try:
                    await running(screen)
                    press(screen, "1")
                    assert screen.view.state == "calling"
                    await asyncio.sleep(0.2)
                    press(screen, "cancel")
                    await state(screen, "idle")
                    assert idle_view(screen.view) and bell.started == bell.stopped == 1
                finally:
                    stop.set()
                    await asyncio.gather(task, return_exceptions=True)
        finally:
            gate.set()
            server.close()
            await server.wait_closed()

    run(scenario())
