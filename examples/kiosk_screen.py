"""A kiosk screen in one file, on vcore's public API only: the cards, the call, the agent full screen.

    python examples/kiosk_screen.py --identity kiosk.pem --trust ca.cert.pem --cards cards.toml
    python examples/kiosk_screen.py ... --window 1280x720 --lang en        # a window, to try it on a desktop
    python examples/kiosk_screen.py ... --dial 12 --seconds 30 --screenshot call.png

Full screen unless ``--window``; keys: a card's number, Esc to cancel or hang up (see docs/screens.md).
Picture: a test pattern here (``vcore.media.Camera("/dev/video0", ...)`` on a real kiosk); sound: the
default speaker when there is one. ``--dial N`` presses card N once the screen is up, ``--screenshot``
saves the screen once it shows the agent's picture, ``--seconds`` stops after that long (hanging up).
Ctrl-C or SIGTERM stops it; exit status 0, 1 if the screen failed, 2 on bad input.
The full station, with the station file and a VISCA camera, is ``vcore kiosk --config kiosk.toml``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

import vcore
from vcore.media import Speaker, TestPattern, Tone
from vcore.ui import FrameSlot, Input, KioskScreen, KioskView, Ringer, Screen, SelfView, Strings


def window(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (160 <= w <= 7680 and 120 <= h <= 4320):
        raise argparse.ArgumentTypeError(f"{text!r}: from 160x120 to 7680x4320")
    return w, h


def speaker() -> Any:
    """The default speaker if there is one (else the call is silent here: said once)."""
    try:
        Speaker(None).close()
    except (vcore.VcoreError, OSError, ImportError) as exc:
        print(f"no speaker ({exc}): no sound", flush=True)
        return None
    return lambda: Speaker(None)


def show_state(state: str, view: KioskView) -> None:
    print(f"screen: {state}" + (f" ({view.card.name})" if view.card and state != "idle" else ""), flush=True)


async def screenshot(screen: Screen, remote: FrameSlot, path: str, stop: asyncio.Event) -> None:
    """Save the screen once the agent's picture has reached it."""
    while remote.displayed == 0 and not stop.is_set():
        await asyncio.sleep(0.1)
    if not stop.is_set():
        saved = screen.screenshot(path)  # taken by the screen thread at its next drawing
        print("screenshot:", await asyncio.get_running_loop().run_in_executor(None, saved.result, 10), flush=True)


async def main(args: argparse.Namespace) -> int:
    remote, local = FrameSlot(), FrameSlot((320, 180))  # the agent full screen, the resident in a corner
    try:
        cards = vcore.Directory.load(args.cards)
        sound = speaker()
        terminal = vcore.Terminal(
            args.name, identity=args.identity, trust=args.trust, directory=cards, listen=False,
            video=lambda: SelfView(TestPattern(640, 360, 25), local), audio=lambda: Tone(sample_rate=16000),
            video_sink=lambda: remote, **({"audio_sink": sound} if sound else {}))
    except vcore.VcoreError as exc:  # a missing or bad cards file, certificate or trust anchor: one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kiosk = KioskScreen(terminal, cards, Strings(args.lang), remote=remote, local=local, on_state=show_state,
                        ringer=(lambda: Ringer.open(None)) if sound else None)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    screen = Screen(kiosk.draw, kiosk.on_input, loop, title=args.name, size=args.window, version=kiosk.version,
                    slots=(remote, local), on_failure=lambda _: stop.set())
    async with terminal:
        runner = asyncio.ensure_future(kiosk.run(stop))  # the idle screen, then keys and calls until stop
        shooter = asyncio.ensure_future(screenshot(screen, remote, args.screenshot, stop) if args.screenshot
                                        else asyncio.sleep(0))
        try:
            try:
                size = await screen.open()
            except vcore.MediaError as exc:  # no display, no pygame-ce
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print(f"screen: open {size[0]}x{size[1]}", flush=True)
            if args.dial is not None:
                while screen.flips == 0 and not stop.is_set():  # once the cards are on the screen
                    await asyncio.sleep(0.05)
                kiosk.on_input(Input(str(args.dial)))
                if kiosk.view.state == "idle" and kiosk.view.entry:  # also the start of a longer number
                    kiosk.on_input(Input("enter"))
            try:
                await asyncio.wait_for(stop.wait(), args.seconds or None)
            except asyncio.TimeoutError:
                pass
        finally:
            stop.set()
            await asyncio.gather(runner, shooter, return_exceptions=True)
            await loop.run_in_executor(None, screen.close)
    print(f"display: {remote.stats().line()}", flush=True)
    if screen.failure:
        print(f"error: {screen.failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="a kiosk screen on vcore's public API")
    p.add_argument("--name", default="Murat kiosk")
    p.add_argument("--identity", required=True, help="this kiosk's key and certificate (vcore pki issue)")
    p.add_argument("--trust", action="append", required=True, help="the installation's CA certificate")
    p.add_argument("--cards", required=True, help="cards.toml")
    p.add_argument("--lang", choices=("fr", "en"), default="fr")
    p.add_argument("--window", type=window, help="WIDTHxHEIGHT: a window instead of the full screen")
    p.add_argument("--dial", type=int, help="press this card once the screen is up")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0: at Ctrl-C or SIGTERM)")
    p.add_argument("--screenshot", metavar="PNG", help="save the screen once it shows the agent's picture")
    sys.exit(asyncio.run(main(p.parse_args())))
