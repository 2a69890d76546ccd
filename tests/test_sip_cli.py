"""``vcore answer --sip`` and ``vcore call sip:...`` talk to each other; the station file's ``[sip]`` section."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vcore.station import ConfigError, load_station_config

from .call_helpers import free_port


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_answer_sip_only_and_call_a_sip_uri() -> None:
    port = free_port()
    small = ["--size", "160x120", "--fps", "10", "--bitrate", "100000", "--stats", "1", "--no-tls"]
    agent = subprocess.Popen([sys.executable, "-m", "vcore", "answer", "--name", "Agent", "--host", "127.0.0.1",
                              "--sip", "--no-h323", "--sip-transport", "tcp", "--sip-port", str(port),
                              "--sip-sdes-over-plaintext", *small],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert agent.poll() is None and time.monotonic() < deadline, agent.stderr.read() if agent.stderr else ""
                time.sleep(0.2)
        kiosk = subprocess.run([sys.executable, "-m", "vcore", "call", "--name", "Kiosk", *small, "--seconds", "2.5",
                                "--sip-sdes-over-plaintext", f"sip:agent@127.0.0.1:{port};transport=tcp"],
                               capture_output=True, text=True, timeout=60, env=_env())
        assert kiosk.returncode == 0, kiosk.stdout + kiosk.stderr
        assert ": answered" in kiosk.stderr and "call ended: hangup" in kiosk.stderr
        assert "video rx H264" in kiosk.stdout
    finally:
        agent.terminate()
        out, err = agent.communicate(timeout=30)
    assert "call from" in err and f"SIP sip:agent@127.0.0.1:{port};transport=tcp" in err, out + err


def test_bad_sip_flags_are_one_error_line() -> None:
    for argv, message in ((["answer", "--no-tls", "--no-h323"], "--no-h323 leaves nothing to answer on"),
                          (["call", "--no-tls", "--sip-registrar", "http://x", "sip:a@127.0.0.1"], "not a sip"),
                          (["call", "--no-tls", "sip:a@127.0.0.1;transport=sctp"], "SIP transport 'sctp'"),
                          (["call", "--no-tls", "--sip-dtls", "always", "sip:a@127.0.0.1"], "--sip-dtls"),
                          (["call", "--no-tls", "--sip-trusted-proxy", "sips:bob@pbx.example.org", "sip:a@127.0.0.1"],
                           "names a user")):
        proc = subprocess.run([sys.executable, "-m", "vcore", *argv], capture_output=True, text=True, timeout=60,
                              env=_env())
        assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if "error:" in line]  # ours, or argparse's
        assert len(lines) == 1 and message in lines[0], proc.stderr


def test_station_file_sip_section(tmp_path: Path) -> None:
    (tmp_path / "pw.txt").write_text("s3cret\n")
    conf = tmp_path / "kiosk.toml"
    conf.write_text('[sip]\nenabled = true\ntransport = "udp"\nport = 5062\nregistrar = "sip:192.0.2.1"\n'
                    'username = "kiosk-murat"\npassword_file = "pw.txt"\nregister_interval = 600\n')
    values = load_station_config(conf)
    assert values == {"sip": True, "sip_transport": "udp", "sip_port": 5062, "sip_registrar": "sip:192.0.2.1",
                      "sip_username": "kiosk-murat", "sip_password_file": str(tmp_path / "pw.txt"),
                      "sip_register_interval": 600}
    conf.write_text('[sip]\ntrusted_proxies = ["sips:pbx.example.org", "sips:192.0.2.7:5061"]\n')
    assert load_station_config(conf) == {"sip_trusted_proxy": ["sips:pbx.example.org", "sips:192.0.2.7:5061"]}
    conf.write_text('[sip]\ndtls = "off"\n')
    assert load_station_config(conf) == {"sip_dtls": "off"}
    for bad, message in (('transport = "sctp"', "[sip] transport"), ('registrar = "http://x"', "[sip] registrar"),
                         ('trusted_proxies = ["sip:bob@pbx"]', "[sip] trusted_proxies"),
                         ("register_interval = 5", "[sip] register_interval"), ('password = "x"', "unknown key"),
                         ('dtls = "always"', "[sip] dtls")):
        conf.write_text(f"[sip]\n{bad}\n")
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_station_config(conf)
