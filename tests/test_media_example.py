"""examples/loopback_video.py runs, prints its live figures, records, and ends by itself with status 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "loopback_video.py"


def test_loopback_example(tmp_path: Path) -> None:
    out = tmp_path / "loop.mp4"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--seconds", "1.5", "--size", "320x240", "--fps", "20",
         "--bitrate", "300000", "--output", str(out), "--encoder", "libx264"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any("fps" in line and "kbit/s" in line and "latency p50" in line for line in lines)
    assert lines[-2].startswith("total:") and "decoder errors 0" in lines[-2]
    with av.open(str(out)) as f:
        assert sum(1 for _ in f.decode(video=0)) >= 20


def test_loopback_example_reports_bad_input() -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--seconds", "1", "--camera", "/dev/video-missing"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_vcore_demo_command_plaintext_says_so() -> None:
    """``vcore demo`` is now the two-terminal call (tests/test_call_cli.py runs it over TLS); --no-tls says so."""
    proc = subprocess.run(
        [sys.executable, "-m", "vcore", "demo", "--seconds", "1.5", "--size", "320x240", "--fps", "15",
         "--bitrate", "300000", "--no-tls"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr
    assert "(plaintext)" in proc.stdout and "warning: plaintext signalling" in proc.stdout
    assert "ended: hangup" in proc.stdout
