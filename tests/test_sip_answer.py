"""The callee's side of an INVITE against a bare UDP caller: an offer vcore cannot take is refused before it
rings, and a call hung up before the caller's ACK ends with one BYE after that ACK (RFC 3261 §15), never
a BYE while the 200 OK is still being retransmitted.

Plaintext signalling on 127.0.0.1 (allowed explicitly); no external program needed.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

import vcore
import vcore.sip.transaction

from .call_helpers import T, run
from .sip_peers import LOCALHOST
from .test_sip_sipp import _OFFER, _agent, _RawUac

_G729_ONLY = ("v=0\r\no=g729 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
              "m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n")
_SRTP_WITHOUT_KEYS = ("v=0\r\no=nokeys 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                      "m=audio 40000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def _messages(uac: _RawUac, seconds: float, *, answer_bye: bool = True) -> list[tuple[float, str, str]]:
    """(arrival, first line, CSeq method) of every datagram for ``seconds``; a BYE is answered 200."""
    out: list[tuple[float, str, str]] = []
    uac.sock.settimeout(0.05)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = uac.sock.recv(65536).decode("utf-8", "replace")
        except TimeoutError:
            continue
        first = data.split("\r\n", 1)[0]
        cseq = re.search(r"(?im)^CSeq:\s*\d+\s+(\w+)", data)
        out.append((time.monotonic(), first, cseq.group(1) if cseq else ""))
        if answer_bye and first.startswith("BYE "):
            head = data.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
            copied = [h for h in head if h.split(":", 1)[0].strip().lower() in ("via", "from", "to", "call-id", "cseq")]
            reply = "\r\n".join(["SIP/2.0 200 OK", *copied, "Content-Length: 0"]) + "\r\n\r\n"
            uac.sock.sendto(reply.encode(), (LOCALHOST, uac.port))
    return out


def _to_tag(uac: _RawUac) -> str:
    """Wait for the 200 OK to the INVITE; its To tag."""
    uac.sock.settimeout(T)
    while True:
        data = uac.sock.recv(65536).decode("utf-8", "replace")
        if data.startswith("SIP/2.0 200") and re.search(r"(?im)^CSeq:\s*1 INVITE", data):
            tag = re.search(r"(?im)^To:.*;tag=([^;\s]+)", data)
            assert tag is not None, data
            return tag.group(1)


@pytest.mark.parametrize("sdp", [_G729_ONLY, _SRTP_WITHOUT_KEYS], ids=["g729-only", "savp-without-keys"])
def test_unacceptable_offer_is_refused_before_ringing(sdp: str) -> None:
    """488 (with a Warning naming the reason) and no 180: the application is never offered the call."""

    async def scenario() -> None:
        async with _agent() as agent:
            uac = _RawUac(agent.sip_port, 1)
            try:
                uac.send("INVITE", 1, body=sdp)
                got = await asyncio.to_thread(uac.responses, 1.5)
                statuses = [s for s, m, _ in got if m == "INVITE"]
                assert 488 in statuses and 180 not in statuses and 200 not in statuses, got
                tag = next(t for s, m, t in got if s == 488)
                uac.send("ACK", 1, to_tag=tag)  # the ACK of an error response (same branch)
                with pytest.raises(asyncio.TimeoutError):  # nothing reached the application
                    await asyncio.wait_for(agent.incoming().__anext__(), 0.5)
                assert agent.refused and "488" in agent.refused[-1].detail, list(agent.refused)
                assert agent.calls == []
            finally:
                uac.close()

    run(scenario())


def test_hangup_before_the_ack_sends_bye_after_it() -> None:
    """The callee hangs up right after its 200 OK: the 200 keeps going until the ACK, then one BYE."""

    async def scenario() -> None:
        async with _agent() as agent:
            uac = _RawUac(agent.sip_port, 2)
            try:
                uac.send("INVITE", 1, body=_OFFER)
                incoming = await asyncio.wait_for(agent.incoming().__anext__(), T)
                call = await incoming.answer()
                tag = await asyncio.to_thread(_to_tag, uac)
                await call.hangup()  # before any ACK
                assert call.ended is not None and not call.ended.by_peer
                before_ack = await asyncio.to_thread(_messages, uac, 1.0)
                assert not any(first.startswith("BYE ") for _, first, _ in before_ack), before_ack
                assert any(first.startswith("SIP/2.0 200") for _, first, _ in before_ack), before_ack
                uac.send("ACK", 1, branch=f"{uac.branch}-ack", to_tag=tag)
                after_ack = await asyncio.to_thread(_messages, uac, 2.0)
                byes = [t for t, first, _ in after_ack if first.startswith("BYE ")]
                assert byes, f"no BYE after the ACK: {after_ack}"
                oks = [t for t, first, m in after_ack if first.startswith("SIP/2.0 200") and m == "INVITE"]
                assert all(t < byes[0] for t in oks), f"200 OK retransmitted after the BYE: {after_ack}"
            finally:
                uac.close()
            assert agent.calls == []

    run(scenario())


def test_no_ack_ends_with_bye_and_no_more_200(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller never ACKs: the 200 OK stops at timer L (T1 shortened here to 20 ms), then the BYE."""
    monkeypatch.setattr(vcore.sip.transaction, "T1", 0.02)

    async def scenario() -> None:
        async with _agent() as agent:
            uac = _RawUac(agent.sip_port, 3)
            try:
                uac.send("INVITE", 1, body=_OFFER)
                incoming = await asyncio.wait_for(agent.incoming().__anext__(), T)
                call = await incoming.answer()
                got = await asyncio.to_thread(_messages, uac, 3.0)  # timer L: 64 × T1 = 1.28 s
                byes = [t for t, first, _ in got if first.startswith("BYE ")]
                oks = [t for t, first, m in got if first.startswith("SIP/2.0 200") and m == "INVITE"]
                assert byes and len(oks) >= 3, got
                assert all(t < byes[0] for t in oks), f"200 OK retransmitted after the BYE: {got}"
                ended = await call.wait_ended(T)
                assert ended is not None
            finally:
                uac.close()

    run(scenario())

