"""Stations from a configuration file (issue 13): the file, `vcore check`, SIGHUP, retention, bad values."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vcore import VcoreError, pki
from vcore.directory import Directory
from vcore.station import apply_config, load_station_config, prune_recordings
from .call_helpers import free_port as _free_port

NOW = dt.datetime.now(dt.timezone.utc)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env



@pytest.fixture
def site(tmp_path: Path) -> Path:
    """What an installer copies to two stations: the CA's public files, each station's identity, its TOML."""
    ca = pki.CertificateAuthority.init(tmp_path / "ca", "Office CA")
    for role, name in (("agent", "CAF agent"), ("kiosk", "Murat kiosk"), ("kiosk", "Other kiosk")):
        ca.issue(name, role=role).save(tmp_path / f"{name}.pem")
    (tmp_path / "rec").mkdir()
    return tmp_path


def _agent_toml(site: Path, port: int, allow: str = '"Murat kiosk"') -> Path:
    path = site / "agent.toml"
    path.write_text(f"""
[station]
name = "CAF agent"
[tls]
identity = "CAF agent.pem"          # relative to this file
trust = ["ca/ca.cert.pem"]
allow = [{allow}]
[network]
host = "127.0.0.1"
port = {port}
[media]
size = "160x120"
fps = 10
bitrate = 100000
[recording]
directory = "rec"
keep_days = 30
[log]
stats = 0
""")
    return path


def _kiosk_toml(site: Path, port: int, name: str = "Murat kiosk") -> Path:
    path = site / f"{name}.toml"
    path.write_text(f"""
[tls]
identity = "{name}.pem"
trust = ["ca/ca.cert.pem"]
[media]
size = "160x120"
fps = 10
bitrate = 100000
[log]
stats = 0
[cards.12]
name = "CAF agent"
address = "h323:caf-agent@127.0.0.1:{port}"
""")
    return path


def test_a_config_file_gives_checked_values(site: Path) -> None:
    values = load_station_config(_agent_toml(site, 1300))
    assert values["identity"] == str(site / "CAF agent.pem") and values["trust"] == [str(site / "ca" / "ca.cert.pem")]
    assert values["port"] == 1300 and values["size"] == (160, 120) and values["fps"] == 10.0
    assert values["allow"] == ["Murat kiosk"] and values["record_dir"] == str(site / "rec")
    kiosk = load_station_config(_kiosk_toml(site, 1300))
    assert isinstance(kiosk["cards"], Directory) and kiosk["cards"][12].name == "CAF agent"
    (site / "off.toml").write_text('[tls]\ncrl = false\n')
    assert load_station_config(site / "off.toml") == {"no_crl": True}


@pytest.mark.parametrize(("text", "message"), [
    ("[media]\nfps = 0\n", r"\[media\] fps: fps 0 must be at least 1"),
    ("[network]\nport = 99999\n", r"\[network\] port: port 99999 is out of range"),
    ("[media]\nsize = \"abc\"\n", r"\[media\] size: size 'abc' is not WIDTHxHEIGHT"),
    ("[tls]\ntrust = \"ca.pem\"\n", r"\[tls\] trust: must be a list"),
    ("[tls]\nidentity = \"absent.pem\"\n", r"\[tls\] identity: .*absent.pem': no such file"),
    ("[media]\ncamera = \"/dev/video99\"\n", r"\[media\] camera: '/dev/video99': No such file"),
    ("[media]\nbitrate = 10000000000\n", r"bitrate 10000000000 is out of range"),
    ("[media]\nfsp = 25\n", r"\[media\] fsp: unknown key \(known in \[media\]: camera, microphone"),
    ("[medai]\nfps = 25\n", r"unknown section \[medai\]"),
    ("[tls]\nplaintext = \"yes\"\n", r"\[tls\] plaintext: 'yes' is not true or false"),
    ("[media]\nfps = [25]\n", r"\[media\] fps: \[25\] is not a single value"),
    ("[cards]\nfile = \"c.toml\"\n[cards.1]\nname = \"a\"\naddress = \"b\"\n", r"both a file and inline cards"),
    ("[cards.x]\nname = \"a\"\naddress = \"b\"\n", r"card 'x' is not a number"),
    ("media = 5\n", r"media must be a table"),
    ("port = 1300\n", r"unknown section \[port\]"),
    ("[media\n", r"not valid TOML"),
])
def test_bad_config_values_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "station.toml"
    path.write_text(text)
    with pytest.raises(VcoreError, match=message) as info:
        load_station_config(path)
    assert str(path) in str(info.value)


def test_flags_override_the_file(site: Path) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--allow", action="append", default=[])
    args = apply_config(p, p.parse_args(["--fps", "5"]), str(_agent_toml(site, 1300)))
    assert (args.port, args.fps, args.allow) == (1300, 5.0, ["Murat kiosk"])  # [recording] etc. not for this parser


def test_bad_config_from_the_command_line(site: Path) -> None:
    (site / "bad.toml").write_text("[media]\nfps = 0\n")
    for command in (["answer"], ["call", "12"], ["check"]):
        proc = subprocess.run([sys.executable, "-m", "vcore", *command, "--config", str(site / "bad.toml")],
                              capture_output=True, text=True, timeout=60, env=_env())
        assert proc.returncode == 2, proc
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and "fps 0" in proc.stderr


def test_vcore_check(site: Path) -> None:
    port = _free_port()
    good = subprocess.run([sys.executable, "-m", "vcore", "check", "--config", str(_agent_toml(site, port))],
                          capture_output=True, text=True, timeout=60, env=_env())
    assert good.returncode == 0, good.stdout + good.stderr
    lines = good.stdout.splitlines()
    assert lines[-1] == "ready"
    states = {line.split()[1].rstrip(":"): line.split()[0] for line in lines[:-1]}
    assert states == {"trust": "OK", "certificate": "OK", "crl": "OK", "camera": "OK", "microphone": "OK", "speaker": "OK",
                      "recordings": "OK", "listen": "OK"}, good.stdout
    # the same station with a busy port, an expired CRL and a peer that is not there
    ca_dir = site / "ca"
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    key = serialization.load_pem_private_key((ca_dir / "ca.key.pem").read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((ca_dir / "ca.cert.pem").read_bytes())
    crl = (x509.CertificateRevocationListBuilder().issuer_name(cert.subject)
           .last_update(NOW - dt.timedelta(days=40)).next_update(NOW - dt.timedelta(days=1))
           .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    (ca_dir / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        bad = subprocess.run([sys.executable, "-m", "vcore", "check", "--config", str(_agent_toml(site, port)),
                              "--peer", f"h323:x@127.0.0.1:{_free_port()}"],
                             capture_output=True, text=True, timeout=60, env=_env())
    assert bad.returncode == 1 and bad.stdout.splitlines()[-1].startswith("not ready"), bad.stdout
    text = bad.stdout
    assert "FAIL  crl:" in text and "vcore pki crl" in text
    assert f"FAIL  listen: TCP port {port}: in use" in text
    assert "FAIL  peer:" in text and "Traceback" not in text + bad.stderr


def test_prune_recordings(tmp_path: Path) -> None:
    old, new, other = tmp_path / "call-1-a.mp4", tmp_path / "call-2-b.mkv", tmp_path / "notes-old.mp4"
    for f in (old, new, other):
        f.write_bytes(b"x")
    past = (NOW - dt.timedelta(days=40)).timestamp()
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    assert prune_recordings(tmp_path, 30, NOW) == [old]
    assert new.exists() and other.exists()  # only the station's own recordings, only the old ones
    assert prune_recordings(tmp_path, 0, NOW + dt.timedelta(days=999)) == []  # 0 keeps everything


def _spawn_agent(config: Path, log: Path) -> subprocess.Popen[str]:
    """``vcore answer --config CONFIG``, its output into ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "vcore", "answer", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, text=True, env=_env())


def _wait_for(path: Path, text: str, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, path.read_text()
        time.sleep(0.1)


def test_stations_from_config_files_and_sighup(site: Path) -> None:
    """An agent and a kiosk run from their files; SIGHUP changes the allow-list without a restart."""
    port = _free_port()
    agent_toml = _agent_toml(site, port)
    log = site / "agent.log"
    agent = _spawn_agent(agent_toml, log)
    try:
        _wait_for(log, "answering calls", agent)

        def kiosk(name: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "vcore", "call", "--config",
                                   str(_kiosk_toml(site, port, name)), "12", "--seconds", "2"],
                                  capture_output=True, text=True, timeout=60, env=_env())

        first = kiosk("Murat kiosk")
        assert first.returncode == 0, first.stdout + first.stderr
        assert ": answered" in first.stderr
        refused = kiosk("Other kiosk")  # not on the allow-list
        assert refused.returncode != 0
        _agent_toml(site, port, allow='"Other kiosk"')
        agent.send_signal(signal.SIGHUP)
        _wait_for(log, "configuration reloaded", agent)
        allowed = kiosk("Other kiosk")
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        assert agent.poll() is None  # the station is still running
        assert any(site.joinpath("rec").iterdir())  # [recording] directory from the file
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(15)
    assert agent.returncode == 0, log.read_text()


class _EmulatedCamera:
    """A VISCA-over-IP camera emulator on its own thread and event loop (the station runs in a subprocess)."""

    def __init__(self) -> None:
        import asyncio
        import threading

        from vcore.visca import CameraEmulator

        self.loop = asyncio.new_event_loop()
        self.emu = CameraEmulator(speed_factor=50.0)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = self.run(self.emu.start_udp("127.0.0.1", 0))

    def run(self, coro: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def position(self) -> tuple[int, int]:
        from vcore.visca import ViscaCamera

        async def ask() -> tuple[int, int]:
            cam = await ViscaCamera.open_ip("127.0.0.1", self.port)
            try:
                return await cam.pan_tilt_position()
            finally:
                await cam.close()

        import asyncio

        return asyncio.run(ask())

    def store(self, preset: int, pan: int, tilt: int) -> None:
        from vcore.visca import ViscaCamera

        async def setup() -> None:
            cam = await ViscaCamera.open_ip("127.0.0.1", self.port)
            try:
                await cam.power(True)
                await cam.pan_tilt_to(pan, tilt)
                await cam.preset_set(preset)
                await cam.pan_tilt_to(0, 0)
            finally:
                await cam.close()

        import asyncio

        asyncio.run(setup())

    def close(self) -> None:
        self.run(self.emu.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def test_the_station_camera_goes_to_its_preset_when_a_call_starts(site: Path) -> None:
    """[camera] visca + preset: the agent's camera is opened with the station and aimed when a call starts."""
    camera = _EmulatedCamera()
    try:
        camera.store(2, 400, -200)
        assert camera.position() == (0, 0)
        port = _free_port()
        agent_toml = _agent_toml(site, port)
        with open(agent_toml, "a") as f:
            f.write(f'[camera]\nvisca = "udp:127.0.0.1:{camera.port}"\npreset = 2\n')
        check = subprocess.run([sys.executable, "-m", "vcore", "check", "--config", str(agent_toml)],
                               capture_output=True, text=True, timeout=60, env=_env())
        assert "OK    visca: 127.0.0.1 answers" in check.stdout, check.stdout + check.stderr
        log = site / "agent.log"
        agent = _spawn_agent(agent_toml, log)
        try:
            _wait_for(log, "answering calls", agent)
            kiosk = subprocess.run([sys.executable, "-m", "vcore", "call", "--config",
                                    str(_kiosk_toml(site, port)), "12", "--seconds", "2"],
                                   capture_output=True, text=True, timeout=60, env=_env())
            assert kiosk.returncode == 0, kiosk.stdout + kiosk.stderr
            assert camera.position() == (400, -200), log.read_text()
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(15)
        assert agent.returncode == 0, log.read_text()
    finally:
        camera.close()


def test_a_camera_that_does_not_answer_does_not_stop_the_station(site: Path) -> None:
    port = _free_port()
    agent_toml = _agent_toml(site, port)
    with open(agent_toml, "a") as f:
        f.write(f'[camera]\nvisca = "udp:127.0.0.1:{_free_port()}"\npreset = 1\n')  # nobody there
    log = site / "agent.log"
    agent = _spawn_agent(agent_toml, log)
    try:
        _wait_for(log, "answering calls", agent, timeout=60)
        assert "calls go on without camera control" in log.read_text()
        kiosk = subprocess.run([sys.executable, "-m", "vcore", "call", "--config", str(_kiosk_toml(site, port)),
                                "12", "--seconds", "1"], capture_output=True, text=True, timeout=60, env=_env())
        assert kiosk.returncode == 0, kiosk.stdout + kiosk.stderr
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(15)
