"""The installation examples work: examples/*.toml load and pass `vcore check`, the systemd units verify.

The station files name absolute paths of a real station (/dev/video0, /var/lib/vcore/recordings); each test
runs on a temporary copy where those are replaced, next to a PKI made for the test (docs/install.md).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vcore import pki
from vcore.call.addresses import parse_address
from vcore.directory import Directory
from vcore.station import ConfigError, load_station_config
from .call_helpers import free_port as _free_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
UNITS = EXAMPLES / "systemd"
DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env



@pytest.fixture
def station(tmp_path: Path) -> Path:
    """/etc/vcore of a station, in a temporary folder: what docs/install.md copies there from the CA machine."""
    ca = pki.CertificateAuthority.init(tmp_path / "ca", "Office CA")
    etc = tmp_path / "etc-vcore"
    etc.mkdir()
    ca.issue("CAF agent", role="agent").save(etc / "agent.pem")
    ca.issue("Murat kiosk", role="kiosk").save(etc / "kiosk.pem")
    shutil.copy(ca.cert_path, etc / "ca.cert.pem")
    shutil.copy(ca.crl_path, etc / "crl.pem")
    shutil.copy(EXAMPLES / "cards.toml", etc / "cards.toml")
    (tmp_path / "recordings").mkdir()
    return etc


def _copy(name: str, etc: Path, *, devices: str = "keep", port: int | None = None) -> Path:
    """examples/NAME into ``etc``, its absolute paths replaced: devices "keep" (/dev/null, a character device:
    the file check passes, opening it as a camera does not) or "drop" (no camera, microphone, speaker lines)."""
    text = (EXAMPLES / name).read_text()
    text = text.replace('"/var/lib/vcore/recordings"', f'"{etc.parent / "recordings"}"')
    if devices == "drop":
        text = re.sub(r"(?m)^(camera|microphone|speaker) = .*\n", "", text)
    else:
        text = text.replace('"/dev/video0"', '"/dev/null"')
    if port is not None:
        text, n = re.subn(r"(?m)^port = 1300\b", f"port = {port}", text)
        assert n == 1
    path = etc / name
    path.write_text(text)
    return path


def _check(config: Path) -> tuple[int, dict[str, tuple[str, str]], str]:
    proc = subprocess.run([sys.executable, "-m", "vcore", "check", "--config", str(config)], env=_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    lines: dict[str, tuple[str, str]] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"(OK|WARN|FAIL)\s+(\w+): (.*)", line)
        if m:
            lines[m.group(2)] = (m.group(1), m.group(3))
    return proc.returncode, lines, proc.stdout + proc.stderr


# ------------------------------------------------------------------ the TOML files


def test_cards_example_loads_and_dials_documentation_addresses() -> None:
    cards = Directory.load(EXAMPLES / "cards.toml")
    assert [c.number for c in cards] == [12, 14, 21]
    for card in cards:
        alias, host, port = parse_address(card.address, True)
        assert alias and host and port == 1300, card
        assert any(ipaddress.ip_address(host) in net for net in DOC_NETS), card
    assert cards[12].certificate == "CAF agent"


def test_examples_name_documentation_addresses_only() -> None:
    files = [*EXAMPLES.glob("*.toml"), *UNITS.iterdir()]
    assert len(files) >= 7
    for path in files:
        for text in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", path.read_text()):
            assert any(ipaddress.ip_address(text) in net for net in DOC_NETS), f"{path.name}: {text}"


@pytest.mark.parametrize("name", ["agent.toml", "kiosk.toml"])
def test_station_examples_fail_only_for_the_files_a_station_has(name: str, tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / name, tmp_path / name)  # no PEM files next to it: the first one named is missing
    with pytest.raises(ConfigError, match=r"\[tls\] identity: .*no such file"):
        load_station_config(tmp_path / name)


def test_agent_example_loads(station: Path) -> None:
    values = load_station_config(_copy("agent.toml", station))
    assert values["identity"] == str(station / "agent.pem")  # relative to the file
    assert values["trust"] == [str(station / "ca.cert.pem")]
    assert values["allow"] == ["Murat kiosk", "Lucie kiosk"]
    assert values["port"] == 1300 and values["rtp_ports"] == "16384-16483"
    assert values["record_dir"] == str(station.parent / "recordings") and values["keep_days"] == 90
    assert values["camera"] == "/dev/null" and values["size"] == (1280, 720)
    assert values["microphone"] == "USB" and values["speaker"] == "USB"
    assert "crl" not in values and "no_crl" not in values  # the crl.pem next to ca.cert.pem


def test_kiosk_example_loads(station: Path) -> None:
    values = load_station_config(_copy("kiosk.toml", station))
    assert values["identity"] == str(station / "kiosk.pem")
    assert values["cards"] == str(station / "cards.toml")
    assert not {"port", "host", "allow", "record_dir"} & set(values)  # vcore check: no listen check


def test_vcore_check_passes_on_the_agent_example(station: Path) -> None:
    status, lines, out = _check(_copy("agent.toml", station, devices="drop", port=_free_port()))
    assert status == 0 and "ready" in out, out
    for item in ("trust", "certificate", "crl", "camera", "microphone", "speaker", "listen"):
        assert lines[item][0] == "OK", out
    assert "'CAF agent' (agent, alias caf-agent)" in lines["certificate"][1]
    assert lines["recordings"][0] in ("OK", "WARN"), out  # WARN: under 2 GiB free on this disk


def test_vcore_check_on_the_kiosk_example_fails_only_for_devices(station: Path) -> None:
    status, lines, out = _check(_copy("kiosk.toml", station))
    assert status == 1 and "not ready" in out, out
    assert lines["camera"][0] == "FAIL" and "/dev/null" in lines["camera"][1], out  # not a camera
    failed = {item for item, (state, _) in lines.items() if state == "FAIL"}
    assert failed <= {"camera", "microphone", "speaker"}, out  # no "USB" sound device on a test machine, maybe
    assert lines["cards"] == ("OK", "3 card(s): 12 CAF agent, 14 Legal aid, 21 Employment office"), out
    assert "listen" not in lines, out


def test_vcore_check_fails_without_the_crl_next_to_the_ca_certificate(station: Path) -> None:
    (station / "crl.pem").unlink()
    status, lines, out = _check(_copy("kiosk.toml", station, devices="drop"))
    assert status == 1, out
    assert lines["crl"] == ("FAIL", "no crl.pem next to the trust anchor: copy it from the CA directory"), out


# ------------------------------------------------------------------ the systemd units


def _unit(name: str) -> str:
    return (UNITS / name).read_text()


def test_units_say_what_the_install_guide_says() -> None:
    agent = _unit("vcore-agent.service")
    assert "\nExecStart=/opt/vcore/bin/vcore answer --config /etc/vcore/agent.toml\n" in agent
    assert "\nExecReload=/bin/kill -HUP $MAINPID\n" in agent
    assert "\nRestart=on-failure\n" in agent and "\nEnvironment=MALLOC_ARENA_MAX=2\n" in agent
    assert "\nSupplementaryGroups=video dialout audio\n" in agent
    assert "\nStateDirectory=vcore vcore/recordings\n" in agent
    for unit in ("vcore-agent.service", "vcore-kiosk.service"):
        text = _unit(unit)
        assert "\nUser=vcore\n" in text and "\nNoNewPrivileges=yes\n" in text and "\nProtectSystem=strict\n" in text
        assert not re.search(r"(?m)^(PrivateDevices|DevicePolicy)=", text)  # the camera, the sound card
    assert "\nExecStart=/opt/vcore/bin/vcore check --config /etc/vcore/kiosk.toml\n" in _unit("vcore-kiosk.service")
    crl = _unit("vcore-crl-refresh.service")
    assert "\nExecStart=/opt/vcore/bin/vcore pki crl ${CA}\n" in crl
    assert "\nOnCalendar=weekly\n" in _unit("vcore-crl-refresh.timer")
    # the agent's recordings go where the unit's StateDirectory= makes them
    assert 'directory = "/var/lib/vcore/recordings"' in (EXAMPLES / "agent.toml").read_text()


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    # verify wants ExecStart= to exist: point it at an executable that does
    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/vcore/bin/vcore", sys.executable))
    for unit in sorted(tmp_path.iterdir()):
        proc = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True,
                              timeout=60, check=False)
        if proc.returncode != 0 and "Failed to" in proc.stderr and "bus" in proc.stderr.lower():
            pytest.skip(f"systemd-analyze cannot run here: {proc.stderr.strip()}")
        assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), f"{unit.name}:\n{proc.stderr}"
