"""Two vcore terminals calling each other over SIP on 127.0.0.1 (TLS, TCP, UDP): media, hang-ups, refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import vcore
from vcore.sip import SipSettings

from .call_helpers import T, make_pki, run, sources, terminal, until, wait_for


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _first(it: Any) -> Any:
    async for item in it:
        return item
    raise AssertionError("no incoming call")


def _plain(name: str, transport: str, **kw: Any) -> Any:
    opts: dict[str, Any] = {"allow_plaintext": True, "bitrate": 300_000, "encoder": "libx264", "listen": False,
                            "sip": SipSettings(transport=transport, sdes_over_plaintext=True)}
    opts.update(sources())
    opts.update(kw)
    return vcore.Terminal(name, **opts)


async def _media_both_ways(call: Any, answered: Any) -> None:
    await until(call, "media-started")
    await until(answered, "media-started")
    await wait_for(lambda: all(c.first_frame_at for c in (call, answered)))
    for c in (call, answered):
        stats = c.stats()
        for kind in ("audio", "video"):
            rx = stats.stream(kind, "receive")
            # the SDES race: the callee may send before its 200 OK (carrying its keys) reaches the caller
            assert rx is not None and rx.packets > 0 and rx.dropped <= 10, (kind, rx)
            assert rx.cipher_suite != "plaintext"


def test_sip_tls_call_media_and_hangup_by_caller(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, sip=SipSettings(),  # H.323 listens too
                         rtcp_interval=0.3)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, sip=SipSettings(), rtcp_interval=0.3)
        async with agent, kiosk:
            assert agent.sip_uri.startswith("sips:caf-agent@127.0.0.1:") and agent.port != agent.sip_port
            incoming_task = asyncio.ensure_future(_first(agent.incoming()))
            call = await kiosk.call(agent.sip_uri)
            await asyncio.wait_for(call.connected, T)
            incoming = await asyncio.wait_for(incoming_task, T)
            assert incoming.caller == "Murat kiosk" and "murat-kiosk" in incoming.aliases
            answered = incoming.call
            await _media_both_ways(call, answered)
            stats = call.stats()
            assert stats.signalling == "tls" and stats.media_encrypted and stats.peer == "CAF agent"
            await call.request_keyframe()  # RFC 5168 INFO
            await until(answered, "keyframe-requested")
            await call.hangup()
            ended = await answered.wait_ended(T)
            assert ended.reason == "hangup" and ended.by_peer
            assert call.ended is not None and call.ended.reason == "hangup" and not call.ended.by_peer

    run(scenario())


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_sip_plaintext_transports_hangup_by_callee(transport: str) -> None:
    async def scenario() -> None:
        agent = _plain("Agent", transport, auto_answer=True)
        kiosk = _plain("Kiosk", transport)
        async with agent, kiosk:
            incoming_task = asyncio.ensure_future(_first(agent.incoming()))
            call = await kiosk.call(agent.sip_uri)
            await asyncio.wait_for(call.connected, T)
            answered = (await asyncio.wait_for(incoming_task, T)).call
            await _media_both_ways(call, answered)
            assert call.stats().signalling == "plaintext"
            await answered.hangup()
            ended = await call.wait_ended(T)
            assert ended.reason == "hangup" and ended.by_peer

    run(scenario())


def test_sip_busy_and_reject(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", listen=False, sip=SipSettings())
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, sip=SipSettings())
        async with agent, kiosk:
            for how, expected in (("busy", "busy"), ("rejected", "rejected")):
                incoming_task = asyncio.ensure_future(_first(agent.incoming()))
                call = await kiosk.call(agent.sip_uri)
                await until(call, "ringing")
                incoming = await asyncio.wait_for(incoming_task, T)
                await incoming.reject(how)
                ended = await call.wait_ended(T)
                assert ended.reason == expected and ended.by_peer, ended
                with pytest.raises(vcore.CallFailed):
                    await call.connected

    run(scenario())


def test_sip_cancel_before_answer(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", listen=False, sip=SipSettings())
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, sip=SipSettings())
        async with agent, kiosk:
            incoming_task = asyncio.ensure_future(_first(agent.incoming()))
            call = await kiosk.call(agent.sip_uri)
            await until(call, "ringing")
            incoming = await asyncio.wait_for(incoming_task, T)
            await call.hangup()  # CANCEL
            await wait_for(lambda: incoming.gone)
            with pytest.raises(vcore.CallFailed):
                await incoming.answer()
            assert call.ended is not None and not call.ended.by_peer
            # hung up before even the 100 Trying came back: the CANCEL waits for it (RFC 3261 §9.1), then goes
            incoming_task = asyncio.ensure_future(_first(agent.incoming()))
            call = await kiosk.call(agent.sip_uri)
            await call.hangup()
            incoming = await asyncio.wait_for(incoming_task, T)
            await wait_for(lambda: incoming.gone)

    run(scenario())


def test_sip_tls_callee_must_hold_the_dialled_user(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, listen=False, sip=SipSettings())
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, sip=SipSettings())
        async with agent, kiosk:
            wrong = agent.sip_uri.replace("caf-agent", "someone-else")
            with pytest.raises(vcore.CallFailed) as info:
                await kiosk.call(wrong)
            assert info.value.reason == "security-denied" and "someone-else" in str(info.value)

    run(scenario())


def test_sip_plaintext_needs_the_switch(pki_dir: Path) -> None:
    with pytest.raises(vcore.CallError, match="allow_plaintext"):
        terminal(pki_dir, "CAF agent", sip=SipSettings(transport="udp"))
    with pytest.raises(vcore.CallError, match="identity"):
        vcore.Terminal("x", allow_plaintext=True, sip=SipSettings())


def test_sip_tls_refusals_forged_certificate_and_allow_list(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, listen=False, sip=SipSettings(),
                         allow=["Other kiosk"])
        forged = terminal(pki_dir, "Murat kiosk", pem="forged", listen=False, sip=SipSettings(),
                          trust=[pki_dir / "ca" / "ca.cert.pem"], legacy_certificates=True, crl=None)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, sip=SipSettings())
        async with agent, kiosk:
            call = await kiosk.call(agent.sip_uri)  # not on the allow-list: 403
            ended = await call.wait_ended(T)
            assert ended.reason == "rejected" and ended.cause == 21, ended
            assert agent.refused[-1].reason == "securityDenied" and agent.refused[-1].name == "Murat kiosk"
            async with forged:  # another CA's certificate: the handshake fails, the call ends at once
                try:
                    call = await forged.call(agent.sip_uri)
                except vcore.CallFailed as exc:  # refused before the INVITE left (TLS 1.2 style)
                    assert exc.reason in ("tls-failure", "security-denied", "connection-failed"), exc
                else:
                    ended = await call.wait_ended(T)
                    assert ended.reason in ("connection-failed", "peer-closed"), ended
            await wait_for(lambda: any(r.reason == "tlsFailure" for r in agent.refused))

    run(scenario())
