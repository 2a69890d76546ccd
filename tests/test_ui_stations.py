"""The kiosk screen and the agent's console, full screen under Xvfb, on two hosts (network namespaces).

The "done when" of issue 18: ``vcore kiosk`` and ``vcore agent``, each on its
own virtual display and its own namespace, go through a whole call driven by
synthetic key presses — a closed card refused, a card pressed, the agent
answers, moves the kiosk's (emulated VISCA) camera by preset and by arrow,
starts recording (the kiosk shows the notice), the resident hangs up. Every
state is photographed and checked: the video area shows the peer's test
pattern (against the source frame), the notices are there, and nothing of the
call is left on the kiosk after it (the idle screen is the same as before).
``VCORE_SCREENS_DIR=docs/screens`` keeps the screenshots of the run.
Skipped with a message without root/namespaces, Xvfb, xdotool, ImageMagick or pygame-ce.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.call_helpers import make_pki, video_frames
from tests.netlab import Lab, lab, vcore_cmd
from tests.ui_helpers import Xvfb, colour_share, dump, need_x_tools, region, source_frame, wait_line

from vcore.ui.render import COLOURS

_ = lab
SIZE = (640, 360)
PRESET = 2
PRESET_AT = (-1500, 600)  # pan, tilt stored in the emulated camera's preset 2


class EmulatedCamera:
    """vcore's VISCA emulator on a pseudo-terminal, run by its own event loop in a thread."""

    def __init__(self) -> None:
        from vcore.visca.emulator import CameraEmulator

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.emulator = CameraEmulator(speed_factor=20, simulate_wire=False)
        self.path = self.run(self.emulator.start_serial())

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def store_preset(self) -> None:
        """Preset 2 at PRESET_AT, then back home (what an installer does once)."""
        from vcore.visca import ViscaCamera

        async def setup() -> None:
            cam = await ViscaCamera.open_serial(self.path)
            try:
                await cam.pan_tilt_to(*PRESET_AT)
                await cam.preset_set(PRESET)
                await cam.home()
            finally:
                await cam.close()
        self.run(setup())

    def pan_tilt(self) -> tuple[int, int]:
        async def ask() -> tuple[int, int]:
            pan, tilt, _, _ = self.emulator.camera.position()
            return pan, tilt
        return tuple(self.run(ask()))  # type: ignore[return-value]

    def close(self) -> None:
        self.run(self.emulator.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _bars_match(shot: np.ndarray[Any, Any], source: np.ndarray[Any, Any]) -> float:
    """Mean difference between the screen and the source frame over a part of the static colour bars."""
    box = (0.27, 0.16, 0.45, 0.3)  # clear of the duration, the recording notice and the self-view
    return float(np.abs(region(shot, *box) - region(source, *box)).mean())


def _wait_until(pred: Any, timeout: float) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_whole_call_between_kiosk_and_agent_screens(lab: Lab, pki_dir: Path, tmp_path: Path) -> None:
    need_x_tools()
    lab.host("kiosk")
    lab.host("agent")
    lab.link("kiosk", "eth0", "198.51.100.2/24", "agent", "eth0", "198.51.100.3/24")
    closed_day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(dt.datetime.now().weekday() + 3) % 7]
    cards = tmp_path / "cards.toml"
    cards.write_text(f'''[cards.1]
name = "CAF du Cantal"
address = "h323:caf-agent@198.51.100.3"
[cards.2]
name = "UDAF"
address = "h323:udaf@198.51.100.9"
hours = ["{closed_day} 09:00-12:00"]
''', encoding="utf-8")
    trust = ["--trust", str(pki_dir / "ca" / "ca.cert.pem")]
    media = ["--size", f"{SIZE[0]}x{SIZE[1]}", "--fps", "25", "--bitrate", "800000", "--media-timeout", "20"]
    shots = tmp_path / "shots"
    shots.mkdir()
    cam = EmulatedCamera()
    try:
        cam.store_preset()
        alog, klog = tmp_path / "agent.log", tmp_path / "kiosk.log"
        with Xvfb(tmp_path / "xvfb-kiosk.log") as kx, Xvfb(tmp_path / "xvfb-agent.log") as ax:
            try:
                agent = lab.spawn("agent", vcore_cmd("agent", "--identity", str(pki_dir / "CAF agent.pem"), *trust,
                                                     "--allow", "Murat kiosk", "--no-auto-answer", "--record-dir",
                                                     str(tmp_path / "rec"), *media), log=alog, env=ax.env())
                kiosk = lab.spawn("kiosk", vcore_cmd("kiosk", "--identity", str(pki_dir / "Murat kiosk.pem"), *trust,
                                                     "--cards", str(cards), "--visca", cam.path, *media),
                                  log=klog, env=kx.env())
                wait_line(alog, "screen: open", 60, agent)
                wait_line(klog, "screen: idle", 60, kiosk)
                # "screen: idle" is printed as the state changes, the first picture of it is drawn just after
                shown: dict[str, np.ndarray[Any, Any]] = {}

                def drawn(x: Xvfb, name: str) -> bool:
                    shown[name] = x.shot(shots / name)
                    return colour_share(shown[name], COLOURS["panel"], 6) > 0.1  # the cards, the agent's panel
                assert _wait_until(lambda: drawn(kx, "kiosk-idle.png"), 20)
                assert _wait_until(lambda: drawn(ax, "agent-waiting.png"), 20)
                idle = shown["kiosk-idle.png"]

                def closed_card() -> bool:  # a closed card: refused on the spot, with its next opening
                    kx.key("2")  # (pressed again if a fresh Xvfb lost the first key while loading its keymap)
                    return colour_share(region(kx.shot(shots / "kiosk-closed-card.png"), 0, 0.8, 1, 1),
                                        COLOURS["warning"], 10) > 0.2
                assert _wait_until(closed_card, 20)
                assert "screen: calling" not in klog.read_text()

                kx.key("1")
                k_at = wait_line(klog, "screen: calling (CAF du Cantal)", 20, kiosk)
                a_at = wait_line(alog, "screen: offered (Murat kiosk)", 30, agent)
                assert _wait_until(lambda: colour_share(region(kx.shot(shots / "kiosk-calling.png"), 0, 0.8, 1, 1),
                                                        COLOURS["danger"], 10) > 0.2, 10)  # the cancel key
                assert _wait_until(lambda: colour_share(region(ax.shot(shots / "agent-offered.png"), 0, 0.1, 0.5, 0.95),
                                                        COLOURS["open"], 10) > 0.01, 10)  # the green "answer" light

                ax.key("Return")  # the agent answers
                a_at = wait_line(alog, "screen: in-call (Murat kiosk)", 30, agent, a_at)
                k_at = wait_line(klog, "screen: in-call (CAF du Cantal)", 30, kiosk, k_at)
                source = source_frame(*SIZE)
                assert _wait_until(lambda: _bars_match(kx.shot(shots / "kiosk-in-call.png"), source) < 30, 30)
                assert _wait_until(lambda: _bars_match(ax.shot(shots / "agent-in-call.png"), source) < 30, 30)

                ax.key(str(PRESET))  # the kiosk's camera goes to preset 2, through the call
                assert _wait_until(lambda: cam.pan_tilt() == PRESET_AT, 30), cam.pan_tilt()
                ax.key("Left")  # and a nudge to the left
                assert _wait_until(lambda: cam.pan_tilt()[0] < PRESET_AT[0], 30), cam.pan_tilt()

                ax.key("r")  # recording: the kiosk is told
                assert _wait_until(lambda: colour_share(region(kx.shot(shots / "kiosk-recording.png"),
                                                               0.3, 0, 0.7, 0.15), COLOURS["danger"], 10) > 0.3, 20)
                ax.shot(shots / "agent-recording.png")

                kx.key("Escape")  # the resident hangs up
                k_at = wait_line(klog, "screen: ended", 30, kiosk, k_at)
                wait_line(alog, "screen: waiting", 30, agent, a_at)
                # nothing of the call left: no picture, the screen is the plain background with a few words
                assert _wait_until(lambda: colour_share(kx.shot(shots / "kiosk-ended.png"), COLOURS["background"], 6)
                                   > 0.8, 10)
                wait_line(klog, "screen: idle", 30, kiosk, k_at)
                assert _wait_until(lambda: float(np.abs(kx.shot(shots / "kiosk-idle-after.png").astype(np.int32)
                                                        - idle.astype(np.int32)).mean()) < 1.0, 10)  # as before
                assert _wait_until(lambda: colour_share(region(ax.shot(shots / "agent-log.png"), 0.5, 0.1, 1, 0.95),
                                                        COLOURS["light"], 6) > 0.5, 10)

                for proc in (kiosk, agent):
                    proc.send_signal(signal.SIGTERM)
                assert kiosk.wait(30) == 0, klog.read_text()
                assert agent.wait(30) == 0, alog.read_text()
                for text in (klog.read_text(), alog.read_text()):
                    displayed = [line for line in text.splitlines() if line.startswith("display: ")]
                    assert displayed and "displayed=0 " not in displayed[0], text
                    assert "Traceback" not in text
                recordings = list((tmp_path / "rec").glob("*.mp4"))
                assert len(recordings) == 1 and video_frames(recordings[0]) > 0
            except BaseException as exc:  # say what happened: both stations' output, both X servers'
                report = dump(kiosk=klog, agent=alog, xvfb_kiosk=kx.log_path, xvfb_agent=ax.log_path)
                print(report)
                exc.add_note(report)
                raise
    finally:
        cam.close()
        keep = os.environ.get("VCORE_SCREENS_DIR")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            for png in shots.glob("*.png"):
                shutil.copy(png, Path(keep) / png.name)
