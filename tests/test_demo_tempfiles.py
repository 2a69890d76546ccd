"""``vcore demo`` leaves nothing in the temp folder (issue 13: each run left ``vcore-demo-*.mp4/.png`` there)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def _env(tmpdir: Path) -> dict[str, str]:
    env = dict(os.environ, TMPDIR=str(tmpdir))
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_demo_removes_its_temporary_files(tmp_path: Path) -> None:
    """A run without --output/--chart: CA, certificates, recording, all in a temporary directory that goes at exit."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "vcore", "demo", "--seconds", "2", "--size", "320x240",
                             "--fps", "15", "--bitrate", "300000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmpdir))
    seen: set[str] = set()
    try:
        while proc.poll() is None:  # the demo works in TMPDIR while it runs (so the check below is not vacuous)
            seen.update(p.name for p in tmpdir.glob("vcore-demo-*"))
            time.sleep(0.05)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert seen, "the demo made no vcore-demo-* temporary directory under TMPDIR"
    left = sorted(p.name for p in tmpdir.glob("vcore-demo-*"))
    assert left == [], left
    assert "bytes, not kept" in out  # it did record, to a temporary file
    assert "chart: not drawn" in out


def test_demo_keeps_what_was_asked_for_and_nothing_else(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out = tmp_path / "call.mp4"
    proc = subprocess.run([sys.executable, "-m", "vcore", "demo", "--seconds", "1.5", "--size", "320x240",
                           "--fps", "15", "--bitrate", "300000", "--no-tls", "--output", str(out)],
                          capture_output=True, text=True, timeout=120, env=_env(tmpdir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.stat().st_size > 0 and f"recording: {out}" in proc.stdout
    assert sorted(p.name for p in tmpdir.glob("vcore-demo-*")) == []
