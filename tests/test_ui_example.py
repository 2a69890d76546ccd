"""examples/kiosk_screen.py (a kiosk screen on vcore's public API) goes through a call, headless.

SDL's ``dummy`` video driver: a real pygame surface with no display, so the example runs in any CI job;
the screenshot it saves must show the agent's test pattern full window and the states must go by.
The same screens under Xvfb, full screen and on two hosts: tests/test_ui_stations.py.
"""

from __future__ import annotations

import ast
import asyncio
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

import vcore.ui

from .call_helpers import T, make_pki, run, terminal, wait_for
from .ui_helpers import load_png, region, source_frame

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "kiosk_screen.py"
WINDOW = (640, 360)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYTHONUNBUFFERED": "1"})
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_the_example_uses_only_the_public_api() -> None:
    tree = ast.parse(EXAMPLE.read_text(encoding="utf-8"))
    public = {"vcore": set(__import__("vcore").__all__), "vcore.ui": set(vcore.ui.__all__),
              "vcore.media": set(__import__("vcore.media", fromlist=["_"]).__all__)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vcore"):
            assert node.module in public, node.module
            for alias in node.names:
                assert alias.name in public[node.module], f"{node.module}.{alias.name} is not public"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "vcore":
            assert node.attr in public["vcore"], f"vcore.{node.attr} is not public"
    for name in vcore.ui.__all__:  # and every public name of vcore.ui resolves
        assert getattr(vcore.ui, name) is not None


def test_kiosk_screen_example_calls_a_card_and_shows_the_agent(tmp_path: Path) -> None:
    pytest.importorskip("pygame", reason="pygame-ce is not installed (pip install pygame-ce)")
    pki_dir = make_pki(tmp_path / "pki")
    shot = tmp_path / "in-call.png"

    async def scenario() -> None:
        from vcore.media import TestPattern

        agent = terminal(pki_dir, "CAF agent", auto_answer=True, video=lambda: TestPattern(*WINDOW, 25))
        async with agent:
            cards = tmp_path / "cards.toml"
            cards.write_text(f'[cards.1]\nname = "CAF du Cantal"\naddress = "h323:caf-agent@127.0.0.1:{agent.port}"\n'
                             '[cards.2]\nname = "UDAF"\naddress = "h323:udaf@127.0.0.1:9"\n', encoding="utf-8")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(EXAMPLE), "--identity", str(pki_dir / "Murat kiosk.pem"),
                "--trust", str(pki_dir / "ca" / "ca.cert.pem"), "--cards", str(cards), "--lang", "en",
                "--window", f"{WINDOW[0]}x{WINDOW[1]}", "--dial", "1", "--screenshot", str(shot), "--seconds", "120",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env())
            lines: list[str] = []

            async def read() -> None:
                assert proc.stdout is not None
                async for raw in proc.stdout:
                    lines.append(raw.decode().rstrip())

            reader = asyncio.ensure_future(read())
            try:
                await wait_for(lambda: any(line.startswith("screenshot:") for line in lines) or reader.done(), 6 * T)
                assert any(line.startswith("screenshot:") for line in lines), lines
                assert len(agent.calls) == 1
                proc.send_signal(signal.SIGTERM)  # stops like Ctrl-C: hangs up and closes the screen
                assert await asyncio.wait_for(proc.wait(), 3 * T) == 0
                await reader
                await wait_for(lambda: not agent.calls)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
                assert proc.stderr is not None
                errors = (await proc.stderr.read()).decode()
            assert "Traceback" not in errors and "error:" not in errors, errors
            assert f"screen: open {WINDOW[0]}x{WINDOW[1]}" in lines
            states = [line for line in lines if line.startswith("screen: ") and not line.startswith("screen: open")]
            assert states[:3] == ["screen: idle", "screen: calling (CAF du Cantal)",
                                  "screen: in-call (CAF du Cantal)"], lines
            display = [line for line in lines if line.startswith("display: ")]
            assert len(display) == 1 and "displayed=0 " not in display[0], lines

    run(scenario(), timeout=10 * T)
    picture = load_png(shot)
    assert picture.shape[:2] == (WINDOW[1], WINDOW[0])
    box = (0.27, 0.16, 0.45, 0.3)  # the colour bars, clear of the duration, the notices and the self-view
    diff = float(np.abs(region(picture, *box) - region(source_frame(*WINDOW, out=WINDOW), *box)).mean())
    assert diff < 30, diff


def test_kiosk_screen_example_bad_input_is_one_line(tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.run([sys.executable, str(EXAMPLE), "--identity", str(tmp_path / "none.pem"), "--trust",
                           str(tmp_path / "ca.pem"), "--cards", str(tmp_path / "missing.toml")],
                          capture_output=True, text=True, timeout=60, env=_env())
    assert proc.returncode == 2, proc
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and "missing.toml" in proc.stderr
