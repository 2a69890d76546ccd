"""A day at the office, on two hosts: stations run from their configuration files (issue 13's "done when").

The agent's host runs ``vcore answer --config agent.toml`` — the command line of
``examples/systemd/vcore-agent.service`` — and the kiosk, behind an ADSL box
(masquerade + stateful firewall), dials card 12 from ``kiosk.toml``. Then what
systemd does to a service: ``reload`` (SIGHUP) with a new allow-list, and ``stop``
(SIGTERM) in the middle of a call. The recordings must play and the agent's log
must tell the story of the day. Network namespaces with documentation addresses;
skipped where they cannot be made (CI runs as root). systemd itself does not run
in this container: the units' command lines are what is tested.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.call_helpers import make_pki, video_frames
from tests.netlab import Lab, kiosk_behind_adsl_box, lab, vcore_cmd, wait_for_text


_frames = video_frames


def _agent_toml(etc: Path, allow: str) -> Path:
    path = etc / "agent.toml"
    path.write_text(f"""
[station]
name = "CAF agent"
[tls]
identity = "CAF agent.pem"
trust = ["ca/ca.cert.pem"]
allow = [{allow}]
[network]
port = 1300
[media]
size = "320x240"
fps = 15
bitrate = 300000
[recording]
directory = "{etc / 'recordings'}"
keep_days = 90
[log]
stats = 0
""")
    return path


def test_a_day_of_calls_from_config_files(lab: Lab, tmp_path: Path) -> None:
    kiosk_behind_adsl_box(lab)
    etc = make_pki(tmp_path / "etc")  # what the installer copied: identities, ca/ca.cert.pem, ca/crl.pem
    kiosk_toml = etc / "kiosk.toml"
    kiosk_toml.write_text("""
[tls]
identity = "Murat kiosk.pem"
trust = ["ca/ca.cert.pem"]
[media]
size = "320x240"
fps = 15
bitrate = 300000
[log]
stats = 0
[cards.12]
name = "CAF agent"
address = "h323:caf-agent@203.0.113.2"
certificate = "CAF agent"
""")
    agent_log = tmp_path / "agent.log"
    agent = lab.spawn("agent", vcore_cmd("answer", "--config", str(_agent_toml(etc, '"Murat kiosk"'))),
                      log=agent_log)
    wait_for_text(agent_log, "answering calls", 60, agent)

    def kiosk_call(n: int, seconds: str = "4") -> Any:
        log = tmp_path / f"kiosk{n}.log"
        return lab.spawn("kiosk", vcore_cmd("call", "--config", str(kiosk_toml), "12", "--seconds", seconds),
                         log=log), log

    # 9:00, 9:30: two residents
    for n in (1, 2):
        k, log = kiosk_call(n)
        assert k.wait(90) == 0, log.read_text()
        assert "call ended: hangup" in log.read_text()
    # 12:00: the office takes this kiosk off its list; systemctl reload (SIGHUP) — the station stays up
    _agent_toml(etc, '"Some other kiosk"')
    agent.send_signal(signal.SIGHUP)
    wait_for_text(agent_log, "configuration reloaded", 20, agent)
    k, log = kiosk_call(3)
    assert k.wait(90) != 0, log.read_text()  # refused
    # 13:30: back on the list
    _agent_toml(etc, '"Murat kiosk"')
    agent.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while agent_log.read_text().count("configuration reloaded") < 2:
        assert time.monotonic() < deadline and agent.poll() is None, agent_log.read_text()
        time.sleep(0.1)
    # 17:00: a resident is still talking when the station is stopped (systemctl stop: SIGTERM)
    k, log = kiosk_call(4, seconds="0")
    wait_for_text(log, ": answered", 60, k)
    time.sleep(3)
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(10) == 0, agent_log.read_text()
    assert k.wait(30) == 0, log.read_text()  # the kiosk heard a hang-up, not a lost connection
    assert "call ended: hangup" in log.read_text(), log.read_text()
    # the recordings play, one per answered call
    recordings = sorted((etc / "recordings").glob("call-*.mp4"))
    assert len(recordings) == 3, recordings
    assert all(_frames(r) > 10 for r in recordings)
    # the day's story, as an administrator reads it in the journal
    story = agent_log.read_text()
    assert story.count('INFO vcore.station: call from "Murat kiosk"') == 3, story
    assert story.count('"Murat kiosk": answered (TLS, SRTP') == 3, story
    assert story.count("call ended: hangup by peer") == 2 and "call ended: terminal-closed" in story, story
    assert story.count("; recording ") == 3, story
    assert 'refused a call from "Murat kiosk"' in story and "not on the allow-list" in story, story
    assert story.count("configuration reloaded") == 2, story
    assert "Traceback" not in story
