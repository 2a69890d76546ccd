"""``vcore camera`` moves (pan-tilt, zoom, focus, home...) against the CameraEmulator over a pty and UDP.

The emulator runs on its own event loop in a thread, so the command line (which
runs its own ``asyncio.run``) talks to a camera that outlives each command, as
an installer's does: a move left running, or a position reported wrongly, shows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vcore.visca import CameraEmulator
from vcore.visca.cli import main as camera_main


class EmulatorThread:
    """A CameraEmulator on a pty and on UDP, served by an event loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.emu = CameraEmulator()
        self.path = self.call(self.emu.start_serial(9600))
        self.port = self.call(self.emu.start_udp("127.0.0.1", 0))

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def position(self) -> tuple[int, int, int, int]:
        """(pan, tilt, zoom, focus) of the emulated camera now."""
        async def read() -> tuple[int, int, int, int]:
            return self.emu.camera.position()
        return self.call(read())  # type: ignore[no-any-return]

    def close(self) -> None:
        self.call(self.emu.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def cam() -> Iterator[EmulatorThread]:
    emu = EmulatorThread()
    try:
        yield emu
    finally:
        emu.close()


def where(emu: EmulatorThread, kind: str) -> list[str]:
    return ["--serial", emu.path] if kind == "serial" else ["--ip", "127.0.0.1", "--port", str(emu.port)]


def run(emu: EmulatorThread, kind: str, capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, int | str]:
    """Run one command; returns what it printed (``pan P tilt T zoom Z [focus F MODE]``) as a dict."""
    assert camera_main([*where(emu, kind), *argv]) == 0
    words = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert words[:6:2] == ["pan", "tilt", "zoom"]
    report: dict[str, int | str] = {k: int(v) for k, v in zip(words[0:6:2], words[1:6:2])}
    if len(words) > 6:
        assert words[6] == "focus" and len(words) == 9
        report.update(focus=int(words[7]), mode=words[8])
    return report


def still(emu: EmulatorThread) -> tuple[int, int, int, int]:
    """The position, checked not to change any more: every move was stopped."""
    before = emu.position()
    time.sleep(0.15)
    assert emu.position() == before, "the camera is still moving"
    return before


@pytest.mark.parametrize("kind", ["serial", "udp"])
@pytest.mark.parametrize("direction, pan_sign, tilt_sign", [
    ("right", 1, 0), ("left", -1, 0), ("up", 0, 1), ("down", 0, -1),
    ("upleft", -1, 1), ("up-right", 1, 1), ("downleft", -1, -1), ("down_right", 1, -1),
])
def test_pan_tilt_moves_for_a_while_then_stops_and_reports_where(
        cam: EmulatorThread, capsys: pytest.CaptureFixture[str], kind: str, direction: str,
        pan_sign: int, tilt_sign: int) -> None:
    t0 = time.monotonic()
    report = run(cam, kind, capsys, "pan-tilt", direction, "--speed", "6", "--for", "0.2")
    assert time.monotonic() - t0 >= 0.2
    pan, tilt, zoom, _ = still(cam)
    assert (report["pan"], report["tilt"], report["zoom"]) == (pan, tilt, zoom)  # what the camera said
    for value, sign in ((pan, pan_sign), (tilt, tilt_sign)):
        assert value == 0 if sign == 0 else value * sign > 0
    # speed 6 for 0.2 s: 6 x 60 pan units/s x 0.2 s = 72, plus the line's latency
    if pan_sign:
        assert 60 <= abs(pan) <= 360  # at most 1 s of moving, even on a loaded machine


def test_faster_and_longer_moves_go_further(cam: EmulatorThread, capsys: pytest.CaptureFixture[str]) -> None:
    slow = run(cam, "udp", capsys, "pan-tilt", "right", "--speed", "2", "--for", "0.2")["pan"]
    run(cam, "udp", capsys, "home")
    fast = run(cam, "udp", capsys, "pan-tilt", "right", "--speed", "24", "--for", "0.2")["pan"]
    run(cam, "udp", capsys, "home")
    longer = run(cam, "udp", capsys, "pan-tilt", "right", "--speed", "2", "--for", "0.6")["pan"]
    assert isinstance(slow, int) and isinstance(fast, int) and isinstance(longer, int)
    assert fast > 5 * slow and longer > 1.5 * slow


@pytest.mark.parametrize("kind", ["serial", "udp"])
def test_absolute_moves_home_and_zoom(cam: EmulatorThread, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    assert run(cam, kind, capsys, "pan-tilt-to", "300", "-100", "--speed", "24") == \
        {"pan": 300, "tilt": -100, "zoom": 0}
    assert run(cam, kind, capsys, "zoom-to", "0x1000") == {"pan": 300, "tilt": -100, "zoom": 4096}
    zin = run(cam, kind, capsys, "zoom", "in", "--for", "0.2")
    assert int(zin["zoom"]) > 4096 + 400 and still(cam)[2] == zin["zoom"]
    zout = run(cam, kind, capsys, "zoom", "out", "--speed", "7", "--for", "0.2")
    assert int(zout["zoom"]) < int(zin["zoom"]) and still(cam)[2] == zout["zoom"]
    assert run(cam, kind, capsys, "home") == {"pan": 0, "tilt": 0, "zoom": zout["zoom"]}


def test_focus_modes_and_moves(cam: EmulatorThread, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cam, "serial", capsys, "focus", "auto")["mode"] == "auto"
    start = cam.position()[3]
    near = run(cam, "serial", capsys, "focus", "near", "--for", "0.2")  # switches to manual itself
    assert near["mode"] == "manual" and int(near["focus"]) > start and still(cam)[3] == near["focus"]
    far = run(cam, "serial", capsys, "focus", "far", "--for", "0.1")
    assert int(far["focus"]) < int(near["focus"]) and still(cam)[3] == far["focus"]
    assert run(cam, "serial", capsys, "focus", "one-push")["mode"] == "manual"
    assert run(cam, "serial", capsys, "focus", "auto")["mode"] == "auto"


def test_presets_store_what_the_moves_aimed_at(cam: EmulatorThread, capsys: pytest.CaptureFixture[str]) -> None:
    aimed = run(cam, "udp", capsys, "pan-tilt", "upright", "--for", "0.2")
    assert camera_main([*where(cam, "udp"), "preset-set", "3"]) == 0
    run(cam, "udp", capsys, "home")
    assert run(cam, "udp", capsys, "preset-recall", "3") == aimed


@pytest.mark.parametrize("argv, message", [
    (["pan-tilt", "sideways"], "argument direction: direction 'sideways' is not one of"),
    (["pan-tilt", "stop"], "argument direction"),
    (["pan-tilt", "left", "--speed", "0"], "argument --speed: speed 0 is out of range (1 to 24)"),
    (["pan-tilt", "left", "--speed", "25"], "argument --speed"),
    (["pan-tilt", "left", "--for", "0"], "argument --for: duration 0 must be more than 0 and at most 60"),
    (["pan-tilt", "left", "--for", "-1"], "argument --for"),
    (["pan-tilt", "left", "--for", "nan"], "argument --for"),
    (["pan-tilt", "left", "--for", "61"], "argument --for"),
    (["pan-tilt"], "the following arguments are required: direction"),
    (["pan-tilt-to", "40000", "0"], "argument pan: position 40000 is out of range"),
    (["pan-tilt-to", "0"], "the following arguments are required: tilt"),
    (["zoom", "sideways"], "argument direction: invalid choice"),
    (["zoom", "in", "--speed", "8"], "argument --speed: zoom speed 8 is out of range (0 to 7)"),
    (["zoom", "out", "--for", "x"], "argument --for: duration 'x' is not a number"),
    (["zoom-to", "16385"], "argument position"),
    (["focus", "sharp"], "argument mode: invalid choice"),
    (["focus", "near", "--for", "0"], "argument --for"),
    (["home", "now"], "unrecognized arguments: now"),
])
def test_bad_values_are_one_error_line_and_status_2(
        cam: EmulatorThread, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    before = cam.position()
    with pytest.raises(SystemExit) as exc:
        camera_main([*where(cam, "serial"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "error:" in line]
    assert len(errors) == 1 and errors[0] == err[-1] and message in errors[0]
    assert cam.position() == before  # refused before the camera was opened


def test_ctrl_c_during_a_move_stops_the_camera(cam: EmulatorThread) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "vcore", "camera", "--serial", cam.path,
                             "pan-tilt", "left", "--for", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 20
        while cam.position()[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cam.position()[0] < 0, "the move never started"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert still(cam)[0] < 0


def test_visca_target_for_call_and_answer(cam: EmulatorThread) -> None:
    from vcore.visca.cli import open_camera, visca_target

    assert visca_target(cam.path) == ("serial", cam.path, 0)
    assert visca_target("udp:192.0.2.5") == ("udp", "192.0.2.5", 52381)
    assert visca_target("udp:cam.local:1259") == ("udp", "cam.local", 1259)
    assert visca_target("udp:[::1]:52381") == ("udp", "::1", 52381)
    for bad in ("udp:", "udp:host:0", "udp:host:65536", "udp:host:x", "udp:a:b:c", "/dev/vcore-no-such-tty"):
        with pytest.raises(argparse.ArgumentTypeError):
            visca_target(bad)

    async def both() -> list[tuple[int, int]]:
        where = []
        for text in (cam.path, f"udp:127.0.0.1:{cam.port}"):
            camera = await open_camera(visca_target(text), baudrate=9600)
            try:
                where.append(await camera.pan_tilt_position())
            finally:
                await camera.close()
        return where

    assert asyncio.run(both()) == [(0, 0), (0, 0)]
