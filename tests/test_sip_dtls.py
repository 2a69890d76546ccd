"""DTLS-SRTP (RFC 5763/5764): the handshake on the media sockets, its SDP, and SIP calls keyed by it.

From the bottom up: :class:`vcore.transport.dtls.DtlsSrtpTransport` between two RTP transports on
127.0.0.1 (keys, roles, profiles, a wrong fingerprint, a silent or garbled peer), the SDP
(``a=fingerprint``, ``a=setup``, ``UDP/TLS/RTP/SAVP``), vcore calling vcore with DTLS-SRTP forced
(both role assignments, a lying fingerprint, a handshake that never completes) and baresip 1.0 with
``mediaenc=dtls_srtp`` both ways (skipped with a message without baresip).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

import vcore
from vcore.h323.fast_connect import MediaPolicy
from vcore.h323.messages import DEFAULT_FORMATS, G722, H264_MODE0, H264_MODE1, OPUS, PCMA, PCMU, Address
from vcore.sip import SipSettings, sdp, sdp_dtls
from vcore.srtp import SrtpSession
from vcore.transport import RtpTransport
from vcore.transport.dtls import (
    DtlsCertificate,
    DtlsError,
    DtlsFingerprintError,
    DtlsSrtpTransport,
    DtlsTimeout,
    fingerprint_of,
    is_dtls,
)

from .call_helpers import T, make_pki, run, terminal, until, wait_for

HOST = "127.0.0.1"
GCM, CM80, CM32, GCM256 = "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_256_GCM"


@pytest.fixture(scope="module")
def certs() -> tuple[DtlsCertificate, DtlsCertificate]:
    return DtlsCertificate.generate(), DtlsCertificate.generate()


async def _pair(mux: bool) -> tuple[RtpTransport, RtpTransport]:
    a, b = RtpTransport(HOST, rtcp_mux=mux, name="a"), RtpTransport(HOST, rtcp_mux=mux, name="b")
    await a.open()
    await b.open()
    a.set_remote(b.local_rtp, b.local_rtcp)
    b.set_remote(a.local_rtp, a.local_rtcp)
    return a, b


def _fp(cert: DtlsCertificate) -> list[tuple[str, str]]:
    return [("sha-256", cert.fingerprint)]


# ------------------------------------------------------------------------------------------ transport


def test_rfc7983_demultiplexing() -> None:
    assert is_dtls(b"\x16\xfe\xfd") and is_dtls(bytes([20])) and is_dtls(bytes([63]))
    assert not is_dtls(b"") and not is_dtls(bytes([0x80, 0])) and not is_dtls(bytes([0])) and not is_dtls(bytes([64]))

    async def scenario() -> None:
        a, b = await _pair(mux=True)
        try:
            rtp: list[bytes] = []
            dtls: list[bytes] = []
            b.set_rtp_handler(lambda d, _a: rtp.append(d))
            b.set_dtls_handler(lambda d, _a: dtls.append(d))
            b.hold()  # DTLS goes through a hold (it brings the keys); RTP waits
            a.send_datagram(b"\x16\xfe\xfd" + bytes(20), b.local_rtp)
            a.send_rtp([bytes([0x80, 0x60]) + bytes(20)])
            await wait_for(lambda: len(dtls) == 1)
            assert rtp == []
            b.release()
            await wait_for(lambda: len(rtp) == 1)
            b.set_dtls_handler(None)
            a.send_datagram(b"\x17\xfe\xfd" + bytes(20), b.local_rtp)  # no handler: dropped, not RTP
            a.send_rtp([bytes([0x80, 0x60]) + bytes(20)])
            await wait_for(lambda: len(rtp) == 2)
            assert len(dtls) == 1 and all(d[0] == 0x80 for d in rtp)
        finally:
            await a.close()
            await b.close()

    run(scenario())


@pytest.mark.parametrize("mux", [True, False], ids=["rtcp-mux", "rtcp-apart"])
@pytest.mark.parametrize("client", ["a", "b"])
def test_handshake_gives_mirrored_keys_that_protect_srtp(certs: Any, mux: bool, client: str) -> None:
    ca, cb = certs

    async def scenario() -> None:
        a, b = await _pair(mux)
        legs = [(DtlsSrtpTransport(a), DtlsSrtpTransport(b))]
        if not mux:
            legs.append((DtlsSrtpTransport(a, rtcp=True), DtlsSrtpTransport(b, rtcp=True)))
        try:
            for da, db in legs:
                ka, kb = await asyncio.gather(
                    da.handshake(ca, "client" if client == "a" else "server", _fp(cb), [GCM, CM80]),
                    db.handshake(cb, "server" if client == "a" else "client", _fp(ca), [CM80, GCM]))
                assert ka.suite == kb.suite
                assert (ka.local_key, ka.local_salt) == (kb.remote_key, kb.remote_salt)
                assert (ka.remote_key, ka.remote_salt) == (kb.local_key, kb.local_salt)
                assert ka.local_key != ka.remote_key
                assert ka.peer_fingerprint == cb.fingerprint and kb.peer_fingerprint == ca.fingerprint
                assert "key" not in repr(ka).replace("DtlsKeys", "")  # keys never in a repr
                packet = bytes([0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7]) + b"voice"
                sent = SrtpSession(ka.suite, ka.local_key + ka.local_salt).protect(packet)
                assert SrtpSession(kb.suite, kb.remote_key + kb.remote_salt).unprotect(sent) == packet
                assert da.datagrams_received > 0 and db.datagrams_sent > 0
        finally:
            for da, db in legs:
                da.close()
                db.close()
            await a.close()
            await b.close()

    run(scenario())


@pytest.mark.parametrize(("client_suites", "server_suites", "expected"), [
    ([CM80], [GCM, CM80], CM80),
    ([GCM256, GCM], [GCM256], GCM256),
    ([CM32], [CM32, CM80], CM32),
])
def test_srtp_profile_is_one_both_allow(certs: Any, client_suites: list[str], server_suites: list[str],
                                        expected: str) -> None:
    ca, cb = certs

    async def scenario() -> None:
        a, b = await _pair(mux=True)
        da, db = DtlsSrtpTransport(a), DtlsSrtpTransport(b)
        try:
            ka, kb = await asyncio.gather(da.handshake(ca, "client", _fp(cb), client_suites),
                                          db.handshake(cb, "server", _fp(ca), server_suites))
            assert ka.suite == kb.suite == expected
            assert len(ka.local_key) == (32 if expected == GCM256 else 16)
            assert len(ka.local_salt) == (12 if "GCM" in expected else 14)
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_no_common_profile_is_a_refused_handshake(certs: Any) -> None:
    ca, cb = certs

    async def scenario() -> None:
        a, b = await _pair(mux=True)
        da, db = DtlsSrtpTransport(a), DtlsSrtpTransport(b)
        try:
            results = await asyncio.gather(da.handshake(ca, "client", _fp(cb), [CM80], timeout=T),
                                           db.handshake(cb, "server", _fp(ca), [GCM], timeout=T),
                                           return_exceptions=True)
            assert all(isinstance(r, DtlsError) for r in results), results
            assert any("refused" in str(r) or "SRTP profile" in str(r) for r in results), results
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_wrong_fingerprint_gives_no_keys(certs: Any) -> None:
    ca, cb = certs
    impostor = DtlsCertificate.generate()

    async def scenario() -> None:
        a, b = await _pair(mux=True)
        da, db = DtlsSrtpTransport(a), DtlsSrtpTransport(b)
        try:
            results = await asyncio.gather(da.handshake(ca, "client", _fp(impostor), [GCM]),
                                           db.handshake(cb, "server", _fp(ca), [GCM]), return_exceptions=True)
            assert isinstance(results[0], DtlsFingerprintError), results
            assert "does not match the fingerprint" in str(results[0]) and cb.fingerprint in str(results[0])
            assert da.keys is None and da.closed
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_fingerprint_of_an_unknown_hash_only_is_refused(certs: Any) -> None:
    ca, cb = certs

    async def scenario() -> None:
        a, _b = await _pair(mux=True)
        try:
            with pytest.raises(DtlsFingerprintError, match="no fingerprint of a hash vcore checks"):
                await DtlsSrtpTransport(a).handshake(ca, "client", [("md5", "AB:CD")], [GCM])
        finally:
            await a.close()
            await _b.close()

    run(scenario())


def test_other_hash_functions_match(certs: Any) -> None:
    ca, cb = certs

    async def scenario() -> None:
        a, b = await _pair(mux=True)
        try:
            ka, _ = await asyncio.gather(
                DtlsSrtpTransport(a).handshake(ca, "client", [("sha-512", fingerprint_of(cb.certificate, "sha-512")),
                                                              ("sha-1", "00:11")], [GCM]),
                DtlsSrtpTransport(b).handshake(cb, "server", [("SHA-384", fingerprint_of(ca.certificate, "sha-384"))],
                                               [GCM]))
            assert ka.suite == GCM
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_silent_peer_times_out_and_leaves_nothing(certs: Any) -> None:
    ca, cb = certs

    async def scenario() -> None:
        a, b = await _pair(mux=True)
        try:
            leg = DtlsSrtpTransport(a)
            seen: list[bytes] = []
            b.set_dtls_handler(lambda d, _a: seen.append(d))  # b never answers
            with pytest.raises(DtlsTimeout, match=r"did not complete within 1.5 s \(0 DTLS datagrams"):
                await leg.handshake(ca, "client", _fp(cb), [GCM], timeout=1.5)
            assert leg.closed and len(seen) >= 2, "the ClientHello was not retransmitted (RFC 6347 timer)"
            count = len(seen)
            await asyncio.sleep(1.2)
            assert len(seen) == count, "a retransmission timer outlived the failed handshake"
        finally:
            await a.close()
            await b.close()

    run(scenario())


@pytest.mark.parametrize("garbage", [
    b"\x16\xfe\xfd" + bytes(8) + b"\xff\xff" + b"short",  # a record whose length runs past the datagram
    b"\x16\xfe\xfd\x00\x00" + bytes(6) + b"\x00\x10" + bytes(16),  # a handshake record of zeros
    b"\x15\xfe\xfd" + bytes(8) + b"\x00\x02\x02\x28",  # a fatal alert (handshake_failure)
    b"\x3f" * 64,  # in the DTLS range, not DTLS at all
])
def test_malformed_records_end_in_a_clear_error(certs: Any, garbage: bytes) -> None:
    ca, cb = certs

    async def scenario() -> None:
        a, b = await _pair(mux=True)
        try:
            leg = DtlsSrtpTransport(b)
            task = asyncio.ensure_future(leg.handshake(cb, "server", _fp(ca), [GCM], timeout=1.5))
            for _ in range(3):
                a.send_datagram(garbage, b.local_rtp)
                await asyncio.sleep(0.05)
            with pytest.raises(DtlsError) as info:
                await task
            assert str(info.value).startswith("b RTP DTLS: ")
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_a_peer_quicker_than_our_answer_is_not_lost(certs: Any) -> None:
    """The client's first flight arrives before the server side starts its handshake: kept, used at once."""
    ca, cb = certs

    async def scenario() -> None:
        a, b = await _pair(mux=True)
        try:
            server = DtlsSrtpTransport(b)
            client = asyncio.ensure_future(DtlsSrtpTransport(a).handshake(ca, "client", _fp(cb), [GCM]))
            await asyncio.sleep(0.3)  # the ClientHello is waiting at b
            loop = asyncio.get_running_loop()
            started = loop.time()
            await server.handshake(cb, "server", _fp(ca), [GCM])
            await client
            assert loop.time() - started < 0.9, "the early ClientHello was dropped (waited for a retransmission)"
        finally:
            await a.close()
            await b.close()

    run(scenario())


# ------------------------------------------------------------------------------------------ SDP


def _endpoints() -> dict[int, tuple[Address, Address]]:
    return {1: (Address(HOST, 40000), Address(HOST, 40001)), 2: (Address(HOST, 40002), Address(HOST, 40003))}


def test_sdp_offer_and_answer_with_dtls(certs: Any) -> None:
    ca, cb = certs
    policy = MediaPolicy(DEFAULT_FORMATS)
    offer = sdp.make_offer(policy, _endpoints(), host=HOST, sdes=True, dtls=ca)
    text = offer.sdp.serialize()
    assert "m=audio 40000 UDP/TLS/RTP/SAVP " in text and "m=video 40002 UDP/TLS/RTP/SAVP " in text
    assert f"a=fingerprint:sha-256 {ca.fingerprint}\r\n" in text and "a=setup:actpass\r\n" in text
    assert "a=crypto" not in text
    parsed = sdp.SessionDescription.parse(text)
    answer, channels = sdp.answer_offer(parsed, policy, _endpoints(), host=HOST, sdes=True, dtls=cb)
    answer_text = answer.serialize()
    assert f"a=fingerprint:sha-256 {cb.fingerprint}" in answer_text and "a=setup:active" in answer_text
    assert all(ch.srtp is None for ch in channels)  # keys come from the handshake
    theirs = sdp_dtls.dtls_streams(answer, parsed)
    ours = sdp_dtls.dtls_streams(offer.sdp, sdp.SessionDescription.parse(answer_text))
    assert [(s.session_id, s.role) for s in theirs] == [(1, "client"), (2, "client")]
    assert [(s.session_id, s.role) for s in ours] == [(1, "server"), (2, "server")]
    assert ours[0].fingerprints == (("sha-256", cb.fingerprint),) and theirs[0].fingerprints == (("sha-256",
                                                                                                  ca.fingerprint),)
    assert ours[0].remote == ((HOST, 40000), (HOST, 40001))
    assert sdp.accept_answer(offer, sdp.SessionDescription.parse(answer_text))


def _dtls_offer(setup: str | None = "actpass", fingerprint: str | None = None, proto: str = "UDP/TLS/RTP/SAVPF",
                session_level: bool = False) -> sdp.SessionDescription:
    fp = fingerprint or "sha-256 " + ":".join(["AB"] * 32)
    attrs = ([f"a=fingerprint:{fp}"] if fingerprint != "" else []) + ([f"a=setup:{setup}"] if setup else [])
    session = attrs if session_level else []
    media = [] if session_level else attrs
    return sdp.SessionDescription.parse("\r\n".join([
        "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0", *session,
        f"m=audio 30000 {proto} 0", "a=rtpmap:0 PCMU/8000", *media, ""]))


@pytest.mark.parametrize(("offered", "answered", "role"), [
    ("actpass", "active", "client"), ("passive", "active", "client"), ("active", "passive", "server"),
    (None, "passive", "server"),  # RFC 4145 §4: no a=setup means active
])
def test_answer_setup_and_role(certs: Any, offered: str | None, answered: str, role: str) -> None:
    policy = MediaPolicy(DEFAULT_FORMATS)
    for session_level in (False, True):
        offer = _dtls_offer(offered, session_level=session_level)
        answer, _ = sdp.answer_offer(offer, policy, _endpoints(), host=HOST, sdes=True, dtls=certs[0])
        assert f"a=setup:{answered}" in answer.serialize()
        (stream,) = sdp_dtls.dtls_streams(answer, offer)
        assert stream.role == role and stream.fingerprints[0][1] == ":".join(["AB"] * 32)


@pytest.mark.parametrize(("offer_kw", "sdes", "dtls", "reason"), [
    ({}, True, False, "DTLS-SRTP is off"),
    ({}, False, True, "only over TLS signalling unless explicitly allowed"),
    ({"setup": "holdconn"}, True, True, "holdconn"),
    ({"fingerprint": ""}, True, True, "without a fingerprint vcore can check (no a=fingerprint)"),
    ({"fingerprint": "md5 " + ":".join(["AB"] * 16)}, True, True, "without a fingerprint vcore can check (md5)"),
    ({"fingerprint": "sha-256 AB:CD"}, True, True, "a=fingerprint:sha-256 has 2 bytes, not 32"),
    ({"fingerprint": "sha-256 ABCD"}, True, True, "is not '<hash> <XX:XX:...>'"),
    ({"setup": "sometimes"}, True, True, "one of active, passive, actpass, holdconn"),
    ({"proto": "UDP/TLS/RTP/AVP"}, True, True, "not RTP"),
])
def test_unusable_dtls_offers_are_488_with_the_reason(certs: Any, offer_kw: dict[str, Any], sdes: bool, dtls: bool,
                                                      reason: str) -> None:
    offer = _dtls_offer(**offer_kw)
    with pytest.raises(sdp.SdpNegotiationError) as info:
        sdp.answer_offer(offer, MediaPolicy(DEFAULT_FORMATS), _endpoints(), host=HOST, sdes=sdes,
                         dtls=certs[0] if dtls else None)
    assert reason in str(info.value)


def test_an_answer_without_fingerprint_or_with_actpass_is_refused(certs: Any) -> None:
    offer = sdp.make_offer(MediaPolicy(DEFAULT_FORMATS), _endpoints(), host=HOST, sdes=True, dtls=certs[0])
    good, _ = sdp.answer_offer(offer.sdp, MediaPolicy(DEFAULT_FORMATS), _endpoints(), host=HOST, sdes=True,
                               dtls=certs[1])
    text = good.serialize()
    for bad, reason in ((text.replace("a=setup:active", "a=setup:actpass"), "is not active or passive"),
                        ("".join(line + "\r\n" for line in text.split("\r\n") if line and "fingerprint" not in line),
                         "without a fingerprint")):
        with pytest.raises(sdp.SdpNegotiationError, match=reason):
            sdp_dtls.dtls_streams(offer.sdp, sdp.SessionDescription.parse(bad))


def test_offer_needs_a_suite_and_keys_allowed(certs: Any) -> None:
    with pytest.raises(sdp.SdpNegotiationError, match="DTLS-SRTP cannot be offered"):
        sdp.make_offer(MediaPolicy(DEFAULT_FORMATS, allow_plaintext=True), _endpoints(), host=HOST, sdes=False,
                       dtls=certs[0])


def test_settings_validate_dtls() -> None:
    with pytest.raises(vcore.VcoreError, match="answer, offer or off"):
        SipSettings(dtls="always")


# ------------------------------------------------------------------------------------------ vcore calls vcore


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _first(it: Any) -> Any:
    async for item in it:
        return item
    raise AssertionError("no incoming call")


@pytest.mark.parametrize("answer_setup", ["active", "passive"], ids=["callee-client", "callee-server"])
def test_vcore_calls_vcore_with_dtls_srtp(pki_dir: Path, answer_setup: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller offers DTLS-SRTP only (actpass); the callee answers active (RFC 5763 §5), or passive:
    media both ways under the handshake's keys, the SDES-free SDP on the wire, hang-up."""
    if answer_setup == "passive":  # the answerer MAY be passive (RFC 5763 §5): the caller is then the client
        monkeypatch.setitem(sdp_dtls.ANSWER_SETUP, "actpass", "passive")

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, listen=False, sip=SipSettings(), rtcp_interval=0.3)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, sip=SipSettings(dtls="offer"), rtcp_interval=0.3)
        async with agent, kiosk:
            incoming_task = asyncio.ensure_future(_first(agent.incoming()))
            call = await kiosk.call(agent.sip_uri)
            await asyncio.wait_for(call.connected, T)
            answered = (await asyncio.wait_for(incoming_task, T)).call
            await until(call, "media-started")
            await until(answered, "media-started")
            await wait_for(lambda: all(c.first_frame_at for c in (call, answered)))
            for c in (call, answered):
                sec = c.security()
                assert sec["srtp_keys"] == "DTLS-SRTP (fingerprints on TLS)", sec
                stats = c.stats()
                assert stats.media_encrypted
                for kind in ("audio", "video"):
                    for direction in ("send", "receive"):
                        s = stats.stream(kind, direction)
                        assert s is not None and s.packets > 0 and s.cipher_suite == GCM, (kind, direction, s)
                    assert stats.stream(kind, "receive").dropped <= 2  # no key race: keys before media
            # SRTCP under the RTCP sockets' own DTLS keys, both ways: each side read the other's reports
            await wait_for(lambda: all(c.stats().stream("video", "send").rtt is not None for c in (call, answered)))
            await call.hangup()
            ended = await answered.wait_ended(T)
            assert ended.reason == "hangup" and ended.by_peer

    run(scenario())


def test_a_certificate_that_does_not_match_its_fingerprint_fails_the_call(pki_dir: Path) -> None:
    """The callee's SDP names another certificate than the one it presents on the media path (an attacker on
    the path): the caller's handshake check fails, the call ends security-denied, no media is keyed."""

    class Lying(DtlsCertificate):
        @property
        def fingerprint(self) -> str:
            return other.fingerprint

    other = DtlsCertificate.generate()

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, listen=False, sip=SipSettings())
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, sip=SipSettings(dtls="offer"))
        async with agent, kiosk:
            liar = Lying.generate()  # presents its own certificate, announces the other's fingerprint
            agent._sip._dtls_certificate = liar
            real = fingerprint_of(liar.certificate)
            incoming_task = asyncio.ensure_future(_first(agent.incoming()))
            call = await kiosk.call(agent.sip_uri)
            with pytest.raises(vcore.CallFailed) as info:
                await asyncio.wait_for(call.connected, T)
            assert info.value.reason == "security-denied", info.value
            ended = await call.wait_ended(T)
            assert "does not match the fingerprint" in ended.detail and real in ended.detail
            assert other.fingerprint in ended.detail
            assert not any(s.packets for s in call.stats().streams), call.stats().streams  # nothing keyed, no media
            answered = (await asyncio.wait_for(incoming_task, T)).call
            agent_end = await answered.wait_ended(T)
            assert agent_end.by_peer, agent_end

    run(scenario())


def test_a_handshake_that_never_completes_ends_the_call_with_a_timeout(pki_dir: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """DTLS records are lost both ways (a firewall that passes RTP only): the call ends `timeout` with the
    reason, within the handshake limit; no task, thread or timer is left behind (``run`` checks)."""
    import vcore.transport.dtls as dtls_module

    monkeypatch.setattr(dtls_module, "HANDSHAKE_TIMEOUT", 1.5)
    monkeypatch.setattr(RtpTransport, "send_datagram", lambda self, data, addr, rtcp_socket=False: True)

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", listen=False, sip=SipSettings())
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, sip=SipSettings(dtls="offer"))
        async with agent, kiosk:
            incoming_task = asyncio.ensure_future(_first(agent.incoming()))
            call = await kiosk.call(agent.sip_uri)
            incoming = await asyncio.wait_for(incoming_task, T)
            with pytest.raises(vcore.CallFailed, match="DTLS handshake did not complete within 1.5 s"):
                await incoming.answer()
            with pytest.raises(vcore.CallFailed) as info:
                await asyncio.wait_for(call.connected, T)
            ended = await call.wait_ended(T)
            # whichever side gives up first ends the call with the reason; the other then sees its BYE
            assert info.value.reason in ("timeout", "hangup"), info.value
            assert "DTLS handshake did not complete" in ended.detail or ended.by_peer, ended
            callee_end = incoming.call.ended
            assert callee_end is not None and callee_end.h225_reason == "timeout", callee_end
            assert "DTLS handshake did not complete within 1.5 s" in callee_end.detail, callee_end

    run(scenario())


def _udp(name: str, allowance: bool, dtls: str, **kw: Any) -> Any:
    from .call_helpers import sources

    return vcore.Terminal(name, allow_plaintext=True, bitrate=300_000, encoder="libx264", listen=False,
                          sip=SipSettings(transport="udp", sdes_over_plaintext=allowance, dtls=dtls), **sources(), **kw)


def test_dtls_over_plaintext_sip_needs_the_allowance_and_says_unauthenticated(
        caplog: pytest.LogCaptureFixture) -> None:
    """Over UDP signalling the fingerprints can be rewritten on the way: DTLS-SRTP then needs the same explicit
    allowance as SDES keys, and the call says its keys are unauthenticated; without it the offer is refused."""

    async def scenario() -> None:
        async with _udp("Agent", True, "answer", auto_answer=True) as agent, _udp("Kiosk", True, "offer") as kiosk:
            call = await kiosk.call(agent.sip_uri)
            await asyncio.wait_for(call.connected, T)
            await until(call, "media-started")
            assert call.security()["srtp_keys"] == "DTLS-SRTP (fingerprints unauthenticated)"
            assert call.stats().stream("audio", "receive").cipher_suite == GCM
            await call.hangup()
        assert any("DTLS-SRTP fingerprints came over plaintext signalling: unauthenticated" in r.getMessage()
                   for r in caplog.records if r.levelno == logging.WARNING)
        async with _udp("Agent", False, "answer", auto_answer=True) as agent, _udp("Kiosk", True, "offer") as kiosk:
            call = await kiosk.call(agent.sip_uri)
            with pytest.raises(vcore.CallFailed):
                await asyncio.wait_for(call.connected, T)
            ended = await call.wait_ended(T)
            assert "488" in ended.detail, ended

    run(scenario())


# ------------------------------------------------------------------------------------------ baresip 1.0


BARESIP_FORMATS = (H264_MODE1, H264_MODE0, OPUS, G722, PCMU, PCMA)  # Opus: baresip's tone source is 48 kHz only
TALK = 4.0


def _baresip(tmp_path: Path, base: Path, user: str, pem: str) -> Any:
    from .sip_peers import LOCALHOST, Baresip, BaresipAccount

    return Baresip(tmp_path / "baresip", BaresipAccount(f"sip:{user}@{LOCALHOST}", mediaenc="dtls_srtp"),
                   certificate=base / pem, cafile=base / "ca" / "ca.cert.pem")


def _check_dtls_media(call: Any, peer: Any) -> None:
    from .sip_peers import wav_stats

    stats = call.stats()
    for direction in ("send", "receive"):
        s = stats.stream("audio", direction)
        assert s is not None and s.packets >= 50 and s.cipher_suite != "plaintext", (direction, s)
    assert call.security()["srtp_keys"] == "DTLS-SRTP (fingerprints on TLS)", call.security()
    summary = peer.rtp_summary()
    # baresip checked vcore's certificate and keyed both its sockets (it does not multiplex RTCP)
    for what in ("verified sha-256 fingerprint OK", "DTLS-SRTP complete (audio/RTP)",
                 "DTLS-SRTP complete (audio/RTCP)"):
        assert any(what in line for line in peer.output), (what, peer.output[-30:])
    assert summary.get("audio", (0, 0))[1] >= 50, (summary, peer.output[-30:])
    heard = peer.heard()
    assert heard, "baresip dumped no decoded audio"
    _, loud = wav_stats(heard[-1])
    assert loud >= 1.0, f"baresip decoded only {loud:.2f} s of audible sound from vcore"


def test_baresip_with_dtls_srtp_calls_vcore(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """baresip (``mediaenc=dtls_srtp``) offers UDP/TLS/RTP/SAVP only; vcore answers it (setup:active), the
    handshake keys the media on both sockets (RTP and RTCP, baresip does not multiplex); baresip hangs up."""
    caplog.set_level(logging.INFO, logger="vcore.transport.dtls")
    base = make_pki(tmp_path)
    peer = _baresip(tmp_path, base, "murat-kiosk", "Murat kiosk.pem")

    async def scenario() -> None:
        async with terminal(base, "CAF agent", sip=SipSettings(transport="tls"), formats=BARESIP_FORMATS,
                            listen=False) as agent:
            with peer:
                peer.command("dial", f"sip:caf-agent@127.0.0.1:{agent.sip_port};transport=tls")
                incoming = await asyncio.wait_for(agent.incoming().__anext__(), T)
                call = await incoming.answer()
                await asyncio.to_thread(peer.wait_event, "CALL_ESTABLISHED")
                await asyncio.sleep(TALK)
                assert call.stats().stream("audio", "receive").dropped <= 2
                peer.command("hangup")
                ended = await until(call, "ended")
                assert ended.by_peer, ended
                await asyncio.to_thread(peer.wait_event, "CALL_CLOSED")
            _check_dtls_media(call, peer)
            keyed = [r.getMessage() for r in caplog.records if "DTLS-SRTP keyed" in r.getMessage()]
            assert any("audio RTP" in k for k in keyed) and any("audio RTCP" in k for k in keyed), keyed

    run(scenario())


def test_vcore_calls_baresip_with_dtls_srtp(tmp_path: Path) -> None:
    """vcore offers DTLS-SRTP only (``SipSettings(dtls="offer")``, setup:actpass) to baresip; vcore hangs up."""
    base = make_pki(tmp_path)
    peer = _baresip(tmp_path, base, "caf-agent", "CAF agent.pem")

    async def scenario() -> None:
        async with terminal(base, "Murat kiosk", sip=SipSettings(transport="tls", dtls="offer"),
                            formats=BARESIP_FORMATS, listen=False) as kiosk:
            with peer:
                call = await kiosk.call(f"sips:caf-agent@127.0.0.1:{peer.tls_port}")
                await asyncio.wait_for(call.connected, T)
                await asyncio.sleep(TALK)
                assert call.stats().stream("audio", "receive").dropped <= 2
                await call.hangup()
                await asyncio.to_thread(peer.wait_event, "CALL_CLOSED")
            _check_dtls_media(call, peer)

    run(scenario())
