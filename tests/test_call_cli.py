"""The commands: ``vcore demo`` runs a whole call and exits 0; ``vcore answer`` + ``vcore call`` talk to each other."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from .call_helpers import free_port as _free_port


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_demo_runs_and_exits_zero(tmp_path: Path) -> None:
    out = tmp_path / "agent.mp4"
    proc = subprocess.run([sys.executable, "-m", "vcore", "demo", "--seconds", "4", "--size", "320x240",
                           "--fps", "15", "--bitrate", "300000", "--output", str(out)],
                          capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    assert "TLS, mutual certificates" in text and "AEAD_AES_128_GCM" in text
    assert text.count(" fps ") >= 3  # live stats every second
    assert "summary" in text and "ended: hangup" in text and "camera: preset 1" in text
    assert "call set-up" in text and ("chart:" in text)
    assert out.stat().st_size > 10_000



@pytest.mark.parametrize("tls", [False, True])
def test_answer_and_call_commands(tmp_path: Path, tls: bool) -> None:
    port = _free_port()
    sec: list[str] = ["--no-tls"]
    call_sec: list[str] = ["--no-tls"]
    if tls:
        from vcore import pki

        ca = pki.CertificateAuthority.init(tmp_path / "ca", "CA")
        ca.issue("agent", role="agent").save(tmp_path / "agent.pem")
        ca.issue("kiosk", role="kiosk").save(tmp_path / "kiosk.pem")
        anchor = str(tmp_path / "ca" / "ca.cert.pem")
        sec = ["--identity", str(tmp_path / "agent.pem"), "--trust", anchor, "--allow", "kiosk"]
        call_sec = ["--identity", str(tmp_path / "kiosk.pem"), "--trust", anchor, "--expect", "agent"]
    small = ["--size", "160x120", "--fps", "10", "--bitrate", "100000", "--stats", "1"]
    agent = subprocess.Popen([sys.executable, "-m", "vcore", "answer", "--host", "127.0.0.1", "--port", str(port),
                              *sec, *small], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + 30
        while True:  # wait until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert agent.poll() is None and time.monotonic() < deadline, agent.stderr.read() if agent.stderr else ""
                time.sleep(0.2)
        (tmp_path / "cards.toml").write_text(f'[cards.12]\nname = "agent"\naddress = "h323:agent@127.0.0.1:{port}"\n')
        kiosk = subprocess.run([sys.executable, "-m", "vcore", "call", *call_sec, *small, "--seconds", "2.5",
                                "--cards", str(tmp_path / "cards.toml"), "12"],
                               capture_output=True, text=True, timeout=60, env=_env())
        assert kiosk.returncode == 0, kiosk.stdout + kiosk.stderr
        assert ": answered" in kiosk.stderr and "call ended: hangup" in kiosk.stderr
        assert "video rx H264" in kiosk.stdout
    finally:
        agent.terminate()
        out, err = agent.communicate(timeout=30)
    assert "call from" in err, out + err
