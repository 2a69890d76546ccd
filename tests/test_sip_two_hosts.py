"""SIP between two hosts for real (network namespaces, tests/netlab.py), the kiosk behind an ADSL box
(masquerade and a stateful firewall), TLS signalling and SDES-SRTP, with the CLI as an installer runs it.

- Direct: the kiosk dials ``sips:caf-agent@203.0.113.2:5061``; the agent's answers go back through the box's
  mapping of the kiosk's TLS connection, its media by latching to the kiosk's authenticated SRTP.
- Through a SIP server: Kamailio on the public side (203.0.113.2, beside the agent's station); the kiosk
  registers over TLS from behind the box (its contact learnt from ``received``/``rport``, RFC 3581) and
  the agent calls ``sips:murat-kiosk@203.0.113.2:5061``: Kamailio relays the INVITE over the kiosk's own
  TLS connection, asserting the caller (RFC 3325), and media flows both ways by symmetric RTP latching.

Documentation addresses only; every namespace and process is removed whatever happens. Skipped with a
message without root, iproute2 or nft (netlab), or without kamailio and its TLS module (the server case).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.call_helpers import make_pki, video_frames
from tests.netlab import Lab, kiosk_behind_adsl_box, lab, summary, vcore_cmd, wait_for_text
from tests.sip_peers import Kamailio, issue_server_certificate, require_program
from tests.test_two_sites import two_site_call

SERVER = "203.0.113.2"  # the agent's host on the public side, which also runs the SIP server
SECONDS = 8
_ = lab  # the fixture


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _identity(pki: Path, name: str) -> list[str]:
    return ["--identity", str(pki / f"{name}.pem"), "--trust", str(pki / "ca" / "ca.cert.pem")]


def test_kiosk_behind_nat_calls_agent_over_sip(lab: Lab, pki_dir: Path, tmp_path: Path) -> None:
    """``vcore call sips:...`` from behind the box: recordings on both sides hold ≥ 90 % of what was sent;
    the agent's media latched to the box's public address (the kiosk announced 192.0.2.2)."""
    kiosk_behind_adsl_box(lab)
    out = two_site_call(lab, pki_dir, tmp_path, kiosk="kiosk", agent="agent",
                        target=[f"sips:caf-agent@{SERVER}:5061"], agent_args=["--sip", "-v"], seconds=SECONDS)
    assert re.search(r"video: RTP latched to 203\.0\.113\.1:\d+ \(signalled \('192\.0\.2\.2'", out["agent_log"]), \
        out["agent_log"][-3000:]
    assert out["kiosk"][("audio", "send")]["suite"] != "plaintext"


def _password(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    os.chmod(path, 0o600)
    return path


def test_agent_calls_kiosk_through_sip_server_across_nat(lab: Lab, pki_dir: Path, tmp_path: Path) -> None:
    """The kiosk registers with Kamailio over TLS from behind the box; the agent calls its address-of-record
    through Kamailio; both recordings decode, media both ways; the kiosk saw the caller as asserted by its
    registrar (a trusted hop), not end to end."""
    require_program("kamailio")
    kiosk_behind_adsl_box(lab)
    issue_server_certificate(pki_dir / "ca", "SIP server", [SERVER], tmp_path / "sip-server.pem")
    users = {"murat-kiosk": "Kiosk-pw1", "caf-agent": "Agent-pw1"}
    registrar = f"sips:{SERVER}:5061"
    media = ["--size", "320x240", "--fps", "15", "--bitrate", "300000", "--stats", "0"]
    with Kamailio(tmp_path / "kamailio", users, port=5060, tls_port=5061, host=SERVER,
                  identity=tmp_path / "sip-server.pem", cafile=pki_dir / "ca" / "ca.cert.pem",
                  netns=lab.ns("agent")) as k:
        rec = tmp_path / "rec"
        kiosk_log, agent_log = tmp_path / "kiosk.log", tmp_path / "agent.log"
        kiosk = lab.spawn("kiosk", vcore_cmd(
            "answer", *_identity(pki_dir, "Murat kiosk"), "--sip", "--sip-registrar", registrar,
            "--sip-username", "murat-kiosk", "--sip-password-file",
            str(_password(tmp_path / "kiosk-pw.txt", users["murat-kiosk"])), "--allow", "caf-agent",
            "--record-dir", str(rec), "-v", *media), log=kiosk_log)
        wait_for_text(kiosk_log, "answering calls", 60, kiosk)
        deadline = time.monotonic() + 30
        while k.log_has("authenticated murat-kiosk (REGISTER)") < 1:  # the kiosk registered (digest, TLS)
            assert kiosk.poll() is None and time.monotonic() < deadline, (kiosk_log.read_text()[-3000:],
                                                                           k.output[-20:])
            time.sleep(0.1)
        agent = lab.spawn("agent", vcore_cmd(
            "call", *_identity(pki_dir, "CAF agent"), "--sip-registrar", registrar, "--sip-username", "caf-agent",
            "--sip-password-file", str(_password(tmp_path / "agent-pw.txt", users["caf-agent"])),
            "--seconds", str(SECONDS), "--record", str(tmp_path / "agent.mp4"), "-v", *media,
            f"sips:murat-kiosk@{SERVER}:5061"), log=agent_log)
        agent.wait(SECONDS + 60)
        agent_out = agent_log.read_text()
        assert agent.returncode == 0, (agent_out[-4000:], k.output[-30:])
        kiosk_out = wait_for_text(kiosk_log, "summary: video receive", 30, kiosk)
    # the kiosk's REGISTER learnt its public address; Kamailio relayed over the kiosk's own connection
    assert k.log_has("authenticated caf-agent (INVITE)") >= 1, k.output[-30:]
    assert "asserted by trusted SIP server sips:203.0.113.2:5061" in kiosk_out, kiosk_out[-3000:]
    ks, ags = summary(kiosk_out), summary(agent_out)
    for side in (ks, ags):
        assert side[("video", "send")]["suite"] != "plaintext" and side[("audio", "receive")]["packets"] > 0
    recordings = list(rec.glob("*.mp4"))
    assert len(recordings) == 1, kiosk_out[-3000:]
    at_kiosk, at_agent = video_frames(recordings[0]), video_frames(tmp_path / "agent.mp4")
    sent_by_kiosk, sent_by_agent = ks[("video", "send")]["frames"], ags[("video", "send")]["frames"]
    assert at_agent >= 0.9 * sent_by_kiosk and at_kiosk >= 0.9 * sent_by_agent, \
        (at_agent, sent_by_kiosk, at_kiosk, sent_by_agent)
    # the agent announced its public address; it followed the kiosk's media to the box (symmetric RTP)
    assert re.search(r"RTP latched to 203\.0\.113\.1:\d+", agent_out), agent_out[-3000:]
