"""Re-INVITE at the media level (RFC 3264 §8): hold and resume between two vcore terminals (TLS, SDES), and
a bare UDP peer that holds, moves its media to another port, tries a codec change (488) and resumes.

The bare peer receives vcore's RTP on its own sockets: what is measured is what vcore really sends.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest

import vcore
from vcore.sip import SipSettings

from .call_helpers import T, make_pki, run, terminal, until, wait_for
from .sip_peers import LOCALHOST
from .test_sip_sipp import _agent, _RawUac


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _received(call: Any, kind: str) -> int:
    rx = call.stats().stream(kind, "receive")
    return rx.packets if rx is not None else 0


class _Events:
    """One iterator over a call's events, read on from where it stopped (``until`` restarts from the first)."""

    def __init__(self, call: Any) -> None:
        self._it = call.events().__aiter__()

    async def next(self, kind: str) -> Any:
        async def find() -> Any:
            async for event in self._it:
                if event.kind == kind:
                    return event
            raise AssertionError(f"the call ended before a {kind} event")

        return await asyncio.wait_for(find(), T)


async def _grows(call: Any, kind: str, seconds: float) -> int:
    before = _received(call, kind)
    await asyncio.sleep(seconds)
    return _received(call, kind) - before


def test_hold_and_resume_between_vcore_terminals(pki_dir: Path) -> None:
    """The kiosk holds (re-INVITE a=inactive): both sides report Held, no media flows either way; it
    resumes: media flows again both ways (video from a keyframe). H.323 calls say hold is not supported."""

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, sip=SipSettings(), rtcp_interval=0.3)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, sip=SipSettings(), rtcp_interval=0.3)
        async with agent, kiosk:
            incoming = asyncio.ensure_future(agent.incoming().__anext__())
            call = await kiosk.call(agent.sip_uri)
            await asyncio.wait_for(call.connected, T)
            answered = (await asyncio.wait_for(incoming, T)).call
            await until(call, "media-started")
            await until(answered, "media-started")
            events = _Events(answered)
            await call.hold()
            here = await until(call, "held")
            there = await events.next("held")
            assert (here.held, here.by_peer, there.held, there.by_peer) == (True, False, True, True)
            assert call.held and answered.held
            await asyncio.sleep(0.3)  # what was in flight
            assert await _grows(call, "audio", 1.0) == 0 and await _grows(answered, "audio", 1.0) == 0
            assert await _grows(call, "video", 0.5) == 0
            await call.hold()  # already held: nothing happens
            await call.resume()
            resumed = await events.next("held")
            assert (resumed.held, resumed.by_peer) == (False, True)
            await wait_for(lambda: not call.held and not answered.held)
            assert await _grows(call, "audio", 1.0) > 20 and await _grows(answered, "audio", 1.0) > 20
            assert await _grows(answered, "video", 1.5) > 0
            assert call.ended is None and answered.ended is None
            await call.hangup()
            await answered.wait_ended(T)

    run(scenario())


def test_hold_over_h323_is_refused_clearly(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, video=None)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, video=None)
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            with pytest.raises(vcore.CallError, match="hold is not supported"):
                await call.hold()
            assert call.ended is None
            await call.hangup()

    run(scenario())


class _Peer(_RawUac):
    """A bare SIP caller on UDP with its own RTP sockets (plain RTP, PCMU) that counts vcore's packets."""

    def __init__(self, port: int, n: int) -> None:
        super().__init__(port, n)
        self.rtp = [self._bind(), self._bind()]  # a first media port, and the one it moves to
        self.to_tag = ""

    @staticmethod
    def _bind() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LOCALHOST, 0))
        s.setblocking(False)
        return s

    def sdp(self, version: int, *, which: int = 0, direction: str = "sendrecv", hold_address: bool = False,
            pt: int = 0) -> str:
        port = self.rtp[which].getsockname()[1]
        addr = "0.0.0.0" if hold_address else LOCALHOST
        name = {0: "PCMU", 8: "PCMA"}[pt]
        return (f"v=0\r\no=peer 7 {version} IN IP4 {LOCALHOST}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\na={direction}\r\n")

    def drain(self, which: int) -> int:
        """How many datagrams arrived on media socket ``which`` since the last call."""
        n = 0
        while True:
            try:
                self.rtp[which].recv(2048)
            except BlockingIOError:
                return n
            n += 1

    def final(self, cseq: int, wait: float = 3.0) -> tuple[int, str]:
        """(status, body) of the final response to CSeq ``cseq``; ``to_tag`` keeps its To tag."""
        self.sock.settimeout(0.1)
        end = time.monotonic() + wait
        while time.monotonic() < end:
            try:
                data = self.sock.recv(65536).decode("utf-8", "replace")
            except TimeoutError:
                continue
            if not data.startswith("SIP/2.0 ") or not re.search(rf"(?im)^CSeq:\s*{cseq}\s+INVITE", data):
                continue
            status = int(data.split(" ", 2)[1])
            if status >= 200:
                tag = re.search(r"(?im)^To:.*;tag=([^;\s]+)", data)
                self.to_tag = tag.group(1) if tag else ""
                return status, data.split("\r\n\r\n", 1)[1]
        raise AssertionError(f"no final response to CSeq {cseq}")

    def close(self) -> None:
        for s in self.rtp:
            s.close()
        super().close()


def test_peer_holds_moves_and_changes_codec() -> None:
    """A bare peer: sendonly hold (vcore answers recvonly and stops sending), c=0.0.0.0 hold, a resume on
    another port (vcore sends there, not to the old one), a codec change (488: the call goes on)."""

    async def scenario() -> None:
        async with _agent() as agent:
            peer = _Peer(agent.sip_port, 1)
            try:
                peer.send("INVITE", 1, body=peer.sdp(1))
                incoming = await asyncio.wait_for(agent.incoming().__anext__(), T)
                call = await incoming.answer()
                status, _ = await asyncio.to_thread(peer.final, 1)
                assert status == 200
                tag = peer.to_tag
                events = _Events(call)
                peer.send("ACK", 1, branch=f"{peer.branch}-ack", to_tag=tag)
                await asyncio.sleep(1.0)
                assert peer.drain(0) > 20  # vcore's audio reaches the first port

                async def reinvite(cseq: int, body: str) -> tuple[int, str]:
                    peer.send("INVITE", cseq, branch=f"{peer.branch}-{cseq}", to_tag=tag, body=body)
                    result = await asyncio.to_thread(peer.final, cseq)
                    if result[0] == 200:
                        peer.send("ACK", cseq, branch=f"{peer.branch}-{cseq}-ack", to_tag=tag)
                    return result

                status, answer = await reinvite(2, peer.sdp(2, direction="sendonly"))
                assert status == 200 and "a=recvonly" in answer, answer
                event = await events.next("held")
                assert event.held and event.by_peer and call.held
                await asyncio.sleep(0.3)
                peer.drain(0)
                await asyncio.sleep(1.0)
                assert peer.drain(0) == 0, "vcore kept sending while held"

                status, answer = await reinvite(3, peer.sdp(3, hold_address=True))  # RFC 2543 hold
                assert status == 200 and call.held

                status, answer = await reinvite(4, peer.sdp(4, which=1))  # resume, on another port
                assert status == 200 and "a=sendrecv" in answer, answer
                event = await events.next("held")
                assert not event.held and event.by_peer and not call.held
                await asyncio.sleep(1.0)
                assert peer.drain(1) > 20, "no audio on the peer's new port"
                peer.drain(0)
                await asyncio.sleep(0.5)
                assert peer.drain(0) == 0, "audio still sent to the old port"

                status, _ = await reinvite(5, peer.sdp(5, which=1, pt=8))  # PCMU -> PCMA: a new encoder
                assert status == 488
                await asyncio.sleep(0.5)
                peer.drain(1)
                await asyncio.sleep(0.5)
                assert peer.drain(1) > 10 and call.ended is None, "the call did not go on after the 488"
                await call.hangup()
            finally:
                peer.close()

    run(scenario())


# ------------------------------------------------------------------------- the pure answer to a re-offer

_KEY = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e"  # 30 bytes: AES_CM_128 key and salt
_NEW_KEY = "HhwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgEA"


def _peer_offer(version: int, *, port: int = 40000, direction: str = "sendrecv", key: str = _KEY,
                proto: str = "RTP/SAVP", video: bool = False, pt: int = 0) -> Any:
    from vcore.sip import sdp

    name = {0: "PCMU", 8: "PCMA"}[pt]
    text = (f"v=0\r\no=peer 7 {version} IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
            f"m=audio {port} {proto} {pt}\r\na=rtpmap:{pt} {name}/8000\r\n"
            + (f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n" if proto == "RTP/SAVP" else "")
            + f"a={direction}\r\n"
            + ("m=video 40002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n" if video else ""))
    return sdp.SessionDescription.parse(text)


def _negotiated() -> tuple[Any, list[Any]]:
    from vcore.h323.fast_connect import MediaPolicy
    from vcore.h323.messages import PCMU, Address
    from vcore.sip import sdp

    policy = MediaPolicy((PCMU,), suites=("AES_CM_128_HMAC_SHA1_80",))
    endpoints = {1: (Address("192.0.2.5", 30000), Address("192.0.2.5", 30001))}
    answer, channels = sdp.answer_offer(_peer_offer(1), policy, endpoints, host="192.0.2.5", sdes=True)
    return answer, channels


def test_reoffer_hold_move_and_refusals() -> None:
    from vcore.h323.messages import Address
    from vcore.sip import sdp
    from vcore.sip.reoffer import answer_reoffer

    current, channels = _negotiated()
    same = answer_reoffer(_peer_offer(2), current, channels)
    assert not same.held and same.targets == ((1, Address("198.51.100.7", 40000), Address("198.51.100.7", 40001)),)
    assert same.answer.origin.version == current.origin.version + 1
    assert same.answer.media[0].port == 30000 and same.answer.media[0].direction() == "sendrecv"
    assert same.answer.media[0].cryptos() == current.media[0].cryptos()  # our key stays (RFC 4568 §7.1.4)

    held = answer_reoffer(_peer_offer(3, direction="sendonly"), current, channels)
    assert held.held and held.targets == ((1, None, None),) and held.answer.media[0].direction() == "recvonly"
    assert held.changes == ("audio sendonly",)
    moved = answer_reoffer(_peer_offer(4, port=41000), current, channels)
    assert moved.targets[0][1] == Address("198.51.100.7", 41000) and not moved.held

    for offer, message in ((_peer_offer(5, key=_NEW_KEY), "re-keying"),
                           (_peer_offer(5, proto="RTP/AVP"), "changes transport"),
                           (_peer_offer(5, video=True), "streams added"),
                           (_peer_offer(5, pt=8), "codec change")):
        with pytest.raises(sdp.SdpNegotiationError, match=message):
            answer_reoffer(offer, current, channels)
