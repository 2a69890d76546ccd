"""vcore's SIP calls with real SIP software nobody here wrote: baresip 1.0, linphonec 5.1 and Kamailio 5.6.

Every test measures media both ways: what vcore received (``call.stats()``) and what the peer
received and decoded (baresip's packet summary and its decoded-audio dump, linphonec's recording).
Each skips with a message when its program is missing (Debian ``baresip``, ``linphone-cli``,
``kamailio``; ``.ci/run`` installs them). Peer quirks met here are listed in docs/sip.md.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

import vcore
from vcore.h323.messages import G722, H264_MODE0, H264_MODE1, OPUS, PCMA, PCMU
from vcore.sip import SipSettings

from .call_helpers import T, make_pki, run, terminal, until, wait_for
from .sip_peers import (
    LOCALHOST,
    Baresip,
    BaresipAccount,
    Kamailio,
    Linphonec,
    answer_dialled,
    check_baresip_heard,
    issue_server_certificate,
    registered_baresip,
    tls_baresip,
    tone_terminal,
    wav_stats,
)

pytestmark = pytest.mark.interop

FORMATS = (H264_MODE1, H264_MODE0, OPUS, G722, PCMU, PCMA)  # Opus: baresip's tone source is 48 kHz only
TALK = 4.0  # seconds of conversation per call


def _tls_station(base: Path, name: str, **sip: Any) -> Any:
    """The installation's station ``name`` with SIP over TLS (``sip``: more :class:`SipSettings` fields)."""
    return terminal(base, name, sip=SipSettings(transport="tls", **sip), formats=FORMATS)


def _stream(call: Any, kind: str, direction: str) -> Any:
    return next((s for s in call.stats().streams if s.stream == kind and s.direction == direction), None)


def _check_vcore_media(call: Any, *, video: bool = False, encrypted: bool = True) -> None:
    """vcore sent and received audio (and video) during the call, encrypted when expected."""
    kinds = ("audio", "video") if video else ("audio",)
    for kind in kinds:
        rx, tx = _stream(call, kind, "receive"), _stream(call, kind, "send")
        assert rx is not None and tx is not None, (kind, call.stats())
        assert rx.packets >= (50 if kind == "audio" else 10), ("too little received", rx)
        assert tx.packets >= (50 if kind == "audio" else 10), ("too little sent", tx)
        if encrypted:
            assert rx.cipher_suite != "plaintext" and tx.cipher_suite != "plaintext", (rx, tx)
    if video:
        rx = _stream(call, "video", "receive")
        assert rx.frames and rx.frames >= 5, ("no decoded video from the peer", rx)


# ---------------------------------------------------------------------------------------------- baresip


def test_baresip_calls_vcore_over_tls_with_sdes(tmp_path: Path) -> None:
    """baresip (kiosk certificate) dials vcore's sips listener; SDES-SRTP; baresip hangs up."""
    base = make_pki(tmp_path)
    peer = tls_baresip(tmp_path, base, "murat-kiosk", "Murat kiosk")

    async def scenario() -> None:
        async with _tls_station(base, "CAF agent") as agent:
            with peer:
                incoming, call = await answer_dialled(agent, peer,
                                                      f"sip:caf-agent@{LOCALHOST}:{agent.sip_port};transport=tls")
                assert incoming.caller == "Murat kiosk"  # the name bound to its TLS certificate
                await asyncio.sleep(TALK)
                _check_vcore_media(call)
                assert call.stats().signalling == "tls" and call.stats().media_encrypted
                peer.command("hangup")
                ended = await until(call, "ended")
                assert ended.by_peer, ended
                await asyncio.to_thread(peer.wait_event, "CALL_CLOSED")
            assert any("SRTP is Enabled" in line for line in peer.output), peer.output[-20:]
            check_baresip_heard(peer)

    run(scenario())


def test_vcore_calls_baresip_over_tls_with_sdes(tmp_path: Path) -> None:
    """vcore dials sips:caf-agent@baresip (agent certificate, checked against the URI); vcore hangs up."""
    base = make_pki(tmp_path)
    peer = tls_baresip(tmp_path, base, "caf-agent", "CAF agent")

    async def scenario() -> None:
        async with _tls_station(base, "Murat kiosk") as kiosk:
            with peer:
                call = await kiosk.call(f"sips:caf-agent@{LOCALHOST}:{peer.tls_port}")
                await asyncio.wait_for(call.connected, T)
                await asyncio.sleep(TALK)
                _check_vcore_media(call)
                await call.hangup()
                await asyncio.to_thread(peer.wait_event, "CALL_CLOSED")
            check_baresip_heard(peer)

    run(scenario())


def test_h264_video_with_baresip(tmp_path: Path) -> None:
    """H.264 both ways with baresip (its avcodec module offers packetization-mode 0 only), over TLS + SRTP."""
    base = make_pki(tmp_path)
    peer = tls_baresip(tmp_path, base, "caf-agent", "CAF agent", video=True, video_codecs="H264")

    async def scenario() -> None:
        async with _tls_station(base, "Murat kiosk") as kiosk:
            with peer:
                call = await kiosk.call(f"sips:caf-agent@{LOCALHOST}:{peer.tls_port}")
                await asyncio.wait_for(call.connected, T)
                await asyncio.sleep(TALK)
                _check_vcore_media(call, video=True)
                sent = _stream(call, "video", "send")
                assert sent.codec.upper().startswith("H264"), sent
                await call.hangup()
                await asyncio.to_thread(peer.wait_event, "CALL_CLOSED")
            check_baresip_heard(peer, video=True)

    run(scenario())


def test_baresip_hold_and_resume_keep_the_call(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """baresip puts the call on hold and resumes it (two re-INVITEs): vcore answers both (200, the direction
    mirrored), stops sending while held and reports it (Held events, by the peer); audio flows after the
    resume."""
    caplog.set_level(logging.INFO, "vcore.sip.session")
    base = make_pki(tmp_path)
    peer = tls_baresip(tmp_path, base, "murat-kiosk", "Murat kiosk")

    async def scenario() -> None:
        async with _tls_station(base, "CAF agent") as agent:
            with peer:
                _, call = await answer_dialled(agent, peer, f"sip:caf-agent@{LOCALHOST}:{agent.sip_port};transport=tls")
                await asyncio.sleep(1.0)
                peer.command("hold")
                held = await until(call, "held")
                assert held.held and held.by_peer and call.held
                await asyncio.sleep(1.5)
                peer.command("resume")
                await wait_for(lambda: not call.held)
                await asyncio.sleep(1.0)
                before = _stream(call, "audio", "receive").packets
                await asyncio.sleep(1.5)
                assert _stream(call, "audio", "receive").packets > before + 25, "no audio after the resume"
                assert call.ended is None
                changes = [r.getMessage() for r in caplog.records
                           if r.name == "vcore.sip.session" and "the peer's re-INVITE" in r.getMessage()]
                assert len(changes) == 1, f"vcore did not see the hold re-INVITE (once): {changes}"
                assert "sendonly" in changes[0] or "inactive" in changes[0], changes
                await call.hangup()
                await asyncio.to_thread(peer.wait_event, "CALL_CLOSED")
            assert not any("488" in line or "Not Acceptable" in line for line in peer.output), peer.output[-20:]

    run(scenario())


def test_baresip_insisting_on_dtls_srtp_gets_488(tmp_path: Path) -> None:
    """An offer vcore cannot take (DTLS-SRTP only, and a station configured with ``dtls="off"``) is refused
    with 488 before it rings: the application is never offered the call, the refusal names the reason;
    nothing is left behind."""
    base = make_pki(tmp_path)
    peer = tls_baresip(tmp_path, base, "murat-kiosk", "Murat kiosk", mediaenc="dtls_srtp")

    async def scenario() -> None:
        async with _tls_station(base, "CAF agent", dtls="off") as agent:
            with peer:
                peer.command("dial", f"sip:caf-agent@{LOCALHOST}:{agent.sip_port};transport=tls")
                await asyncio.to_thread(peer.wait_event, "CALL_CLOSED")
                line = await asyncio.to_thread(peer.wait_output, r"\b488\b")
                assert "488" in line
                with pytest.raises(asyncio.TimeoutError):  # refused before ringing: never offered
                    await asyncio.wait_for(agent.incoming().__anext__(), 0.3)
                assert any("DTLS" in r.detail for r in agent.refused), agent.refused
            assert agent.calls == []

    run(scenario())


def test_baresip_calls_vcore_over_tcp(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SIP over TCP (``;transport=tcp``; plaintext, allowed explicitly), plain RTP: both ways, baresip hangs up."""
    caplog.set_level(logging.DEBUG, logger="vcore.sip.transport")

    peer = Baresip(tmp_path / "baresip", BaresipAccount(f"sip:murat-kiosk@{LOCALHOST}"))

    async def scenario() -> None:
        async with tone_terminal("CAF agent", SipSettings(transport="tcp"), formats=FORMATS) as agent:
            assert agent.sip_uri.endswith(";transport=tcp"), agent.sip_uri
            with peer:
                _, call = await answer_dialled(agent, peer, agent.sip_uri)
                await asyncio.sleep(TALK)
                _check_vcore_media(call, encrypted=False)
                assert call.stats().signalling == "plaintext"
                assert any(r.getMessage().startswith("SIP/TCP <- ") and "INVITE" in r.getMessage()
                           for r in caplog.records), "the INVITE did not come over TCP"
                peer.command("hangup")
                ended = await until(call, "ended")
                assert ended.by_peer, ended
                await asyncio.to_thread(peer.wait_event, "CALL_CLOSED")
            check_baresip_heard(peer)

    run(scenario())


def test_cli_kiosk_calls_baresip(tmp_path: Path) -> None:
    """`vcore call sips:caf-agent@…` (the kiosk's command) reaches baresip over TLS + SRTP, 3 s, exit 0."""
    import os
    import subprocess
    import sys

    base = make_pki(tmp_path)
    peer = tls_baresip(tmp_path, base, "caf-agent", "CAF agent")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    with peer:
        kiosk = subprocess.run([sys.executable, "-m", "vcore", "call", "--identity", str(base / "Murat kiosk.pem"),
                                "--trust", str(base / "ca" / "ca.cert.pem"), "--size", "160x120", "--fps", "10",
                                "--bitrate", "100000", "--stats", "1", "--seconds", "3",
                                f"sips:caf-agent@{LOCALHOST}:{peer.tls_port}"],
                               capture_output=True, text=True, timeout=90, env=env)
        peer.wait_event("CALL_CLOSED")
    assert kiosk.returncode == 0, kiosk.stdout + kiosk.stderr
    assert "answered (TLS, SRTP" in kiosk.stderr and "call ended: hangup" in kiosk.stderr, kiosk.stderr
    assert "audio rx OPUS" in kiosk.stdout, kiosk.stdout
    check_baresip_heard(peer)


# --------------------------------------------------------------------------------------------- Kamailio


def _udp_agent(name: str, user: str, password: str, k: Kamailio, **kw: Any) -> vcore.Terminal:
    """A station registering over UDP (plaintext signalling and media, both allowed explicitly)."""
    from vcore.media import TestPattern, Tone

    return vcore.Terminal(name, allow_plaintext=True, formats=FORMATS, audio=lambda: Tone(sample_rate=8000),
                          video=lambda: TestPattern(320, 240, 15), bitrate=300_000, encoder="libx264",
                          sip=SipSettings(transport="udp", registrar=f"sip:{k.domain}", username=user,
                                          password=password), **kw)


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_vcore_registers_with_kamailio(tmp_path: Path, algorithm: str) -> None:
    """REGISTER answered with digest (RFC 8760, MD5 and SHA-256); a wrong password is a clear failure."""
    with Kamailio(tmp_path / "kamailio", {"caf-agent": "Agent-pw1"}, algorithm=algorithm) as k:

        async def scenario() -> None:
            async with _udp_agent("CAF agent", "caf-agent", "Agent-pw1", k):
                await wait_for(lambda: k.log_has("authenticated caf-agent (REGISTER)") >= 1)
            assert k.log_has("challenge REGISTER") >= 1
            with pytest.raises(vcore.VcoreError, match="401|403|auth|regist"):
                async with _udp_agent("CAF agent", "caf-agent", "wrong-pw", k):
                    pass

        run(scenario())


def _call_through_kamailio(tmp_path: Path, *, vcore_calls: bool) -> None:
    """vcore (caf-agent) and baresip (bob) both register with Kamailio (digest MD5); one dials the other's
    AOR, Kamailio routes it; both hear each other; the caller hangs up; Kamailio authenticated its INVITE."""
    with Kamailio(tmp_path / "kamailio", {"caf-agent": "Agent-pw1", "bob": "Bob-pw1"}) as k:
        peer = registered_baresip(tmp_path, k, "bob", "Bob-pw1")

        async def scenario() -> None:
            async with _udp_agent("CAF agent", "caf-agent", "Agent-pw1", k) as agent:
                with peer:
                    await asyncio.to_thread(peer.wait_registered)
                    if vcore_calls:
                        call = await agent.call(f"sip:bob@{k.domain}")
                        await asyncio.wait_for(call.connected, T)
                    else:
                        _, call = await answer_dialled(agent, peer, f"sip:caf-agent@{k.domain}")
                    await asyncio.sleep(TALK)
                    _check_vcore_media(call, encrypted=False)
                    if vcore_calls:
                        await call.hangup()
                    else:
                        peer.command("hangup")
                        await until(call, "ended")
                    await asyncio.to_thread(peer.wait_event, "CALL_CLOSED")
                check_baresip_heard(peer)
            caller = "caf-agent" if vcore_calls else "bob"
            assert k.log_has(f"authenticated {caller} (INVITE)") >= 1, f"Kamailio never authenticated {caller}'s INVITE"

        run(scenario())


def test_baresip_calls_vcore_through_kamailio(tmp_path: Path) -> None:
    """vcore and baresip both register (digest MD5); baresip dials the AOR, Kamailio routes it to vcore."""
    _call_through_kamailio(tmp_path, vcore_calls=False)


def test_vcore_calls_baresip_through_kamailio(tmp_path: Path) -> None:
    """vcore dials bob's AOR at Kamailio, answers its 407 with digest, and the call reaches baresip."""
    _call_through_kamailio(tmp_path, vcore_calls=True)


def _tls_kamailio(tmp_path: Path, base: Path, users: dict[str, str]) -> Kamailio:
    """Kamailio with a TLS listener: its certificate from the installation's CA naming its host (127.0.0.1),
    clients' verified too."""
    issue_server_certificate(base / "ca", "SIP server", [LOCALHOST], base / "sip.pem")
    return Kamailio(tmp_path / "kamailio", users, identity=base / "sip.pem", cafile=base / "ca" / "ca.cert.pem")


def test_vcore_registers_with_kamailio_over_tls(tmp_path: Path) -> None:
    """The secure default: REGISTER over mutual TLS (sips:), digest on top."""
    base = make_pki(tmp_path)
    with _tls_kamailio(tmp_path, base, {"caf-agent": "Agent-pw1"}) as k:

        async def scenario() -> None:
            sip = SipSettings(transport="tls", registrar=f"sips:{LOCALHOST}:{k.tls_port}", username="caf-agent",
                              password="Agent-pw1")
            async with terminal(base, "CAF agent", formats=FORMATS, sip=sip):
                await wait_for(lambda: k.log_has("authenticated caf-agent (REGISTER)") >= 1)
            assert any("REGISTER" in line and "(tls)" in line for line in k.output)

        run(scenario())


def test_baresip_calls_vcore_through_kamailio_over_tls(tmp_path: Path) -> None:
    """baresip (UDP, SDES) → Kamailio → vcore registered over TLS: the last hop is mutual TLS with the
    registrar, a trusted hop; the caller is who Kamailio asserts (P-Asserted-Identity, RFC 3325), admitted
    by the allow-list, and the call's security says the identity is the server's word, not end to end."""
    base = make_pki(tmp_path)
    with _tls_kamailio(tmp_path, base, {"caf-agent": "Agent-pw1", "bob": "Bob-pw1"}) as k:
        peer = registered_baresip(tmp_path, k, "bob", "Bob-pw1", mediaenc="srtp-mand")

        async def scenario() -> None:
            sip = SipSettings(transport="tls", registrar=f"sips:{LOCALHOST}:{k.tls_port}", username="caf-agent",
                              password="Agent-pw1")
            async with terminal(base, "CAF agent", formats=FORMATS, sip=sip, allow=["bob"]) as agent:
                with peer:
                    await asyncio.to_thread(peer.wait_registered)
                    _, call = await answer_dialled(agent, peer, f"sip:caf-agent@{k.domain}")
                    await asyncio.sleep(TALK)
                    _check_vcore_media(call)
                    caller = call.security()["caller_identity"]
                    assert caller == {"uri": f"sip:bob@{LOCALHOST}", "asserted_by": f"sips:{LOCALHOST}:{k.tls_port}",
                                      "header": "P-Asserted-Identity", "end_to_end": False}, caller
                    peer.command("hangup")
                    await until(call, "ended")
                    await asyncio.to_thread(peer.wait_event, "CALL_CLOSED")
                check_baresip_heard(peer)

        run(scenario())


# -------------------------------------------------------------------------------------------- linphonec


def _check_linphone_heard(peer: Linphonec) -> None:
    peer.wait_output(r"Call \d+ .*ended|terminated")
    rate, loud = wav_stats(peer.recording)
    assert loud >= 1.0, f"linphonec recorded only {loud:.2f} s of audible sound from vcore ({rate} Hz)"


def test_linphonec_calls_vcore(tmp_path: Path) -> None:
    """linphonec dials vcore over UDP (plain RTP, allowed explicitly); it plays a tone, records vcore's."""

    async def scenario() -> None:
        async with tone_terminal("CAF agent", SipSettings(transport="udp"), formats=FORMATS) as agent:
            with Linphonec(tmp_path / "linphone", user="murat") as peer:
                peer.send(f"call sip:caf-agent@{LOCALHOST}:{agent.sip_port}")
                incoming = await asyncio.wait_for(agent.incoming().__anext__(), T)
                call = await incoming.answer()
                await asyncio.to_thread(peer.wait_output, r"Call \d+ .* connected")
                await asyncio.sleep(TALK)
                _check_vcore_media(call, encrypted=False)
                peer.send("terminate")
                ended = await until(call, "ended")
                assert ended.by_peer, ended
                _check_linphone_heard(peer)

    run(scenario())


def test_vcore_calls_linphonec_with_sdes(tmp_path: Path) -> None:
    """vcore dials linphonec, which insists on SRTP (SDES over UDP: allowed explicitly on both sides)."""

    async def scenario() -> None:
        async with tone_terminal("Murat kiosk", SipSettings(transport="udp", sdes_over_plaintext=True),
                                 formats=FORMATS) as kiosk:
            with Linphonec(tmp_path / "linphone", user="agent", media_encryption="srtp", mandatory=True) as peer:
                call = await kiosk.call(peer.uri)
                await asyncio.wait_for(call.connected, T)
                await asyncio.sleep(TALK)
                _check_vcore_media(call, encrypted=True)
                await call.hangup()
                _check_linphone_heard(peer)

    run(scenario())


def test_h264_video_with_linphonec(tmp_path: Path) -> None:
    """H.264 both ways with linphonec (OpenH264, its static picture as camera): vcore decodes its frames,
    linphonec decodes vcore's (a snapshot of the received stream, at vcore's size)."""
    from vcore.media import TestPattern, Tone

    snapshot = tmp_path / "received.jpg"

    async def scenario() -> None:
        async with vcore.Terminal("Murat kiosk", allow_plaintext=True, formats=FORMATS, encoder="libx264",
                                  bitrate=300_000, video=lambda: TestPattern(320, 240, 15),
                                  audio=lambda: Tone(sample_rate=8000), sip=SipSettings(transport="udp")) as kiosk:
            with Linphonec(tmp_path / "linphone", user="agent", video=True) as peer:
                call = await kiosk.call(peer.uri)
                await asyncio.wait_for(call.connected, T)
                await asyncio.sleep(TALK)
                rx = _stream(call, "video", "receive")
                assert rx is not None and rx.codec.upper().startswith("H264") and (rx.frames or 0) >= 2, rx
                tx = _stream(call, "video", "send")
                assert tx.packets >= 20, tx
                peer.send(f"snapshot {snapshot}")
                await wait_for(lambda: snapshot.exists() and snapshot.stat().st_size > 0)
                await asyncio.sleep(0.3)  # written in one go, but let it finish
                await call.hangup()
        import av

        with av.open(str(snapshot)) as container:
            frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (320, 240)

    run(scenario())
