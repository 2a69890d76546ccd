"""The user agent against a raw UDP socket: retransmissions absorbed, rport, refusals of bad requests."""

from __future__ import annotations

import asyncio
from typing import Any

from vcore.h323.fast_connect import MediaPolicy
from vcore.h323.messages import DEFAULT_FORMATS
from vcore.sip import SipConfig, SipListener, parse_message
from vcore.sip.message import SipMessage

from .call_helpers import T, run

OFFER = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def _request(method: str, port: int, local: int, *, branch: str = "z9hG4bKraw1", cseq: str | None = None,
             extra: str = "", body: bytes = b"", via: str | None = None) -> bytes:
    head = (f"{method} sip:agent@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: {via or f'SIP/2.0/UDP 192.0.2.7:{local};branch={branch};rport'}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:kiosk@192.0.2.7>;tag=k1\r\nTo: <sip:agent@127.0.0.1>\r\n"
            f"Call-ID: raw-{branch}\r\nCSeq: {cseq or f'1 {method}'}\r\nContact: <sip:kiosk@127.0.0.1:{local}>\r\n"
            f"{extra}")
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.responses: asyncio.Queue[SipMessage] = asyncio.Queue()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.responses.put_nowait(parse_message(data))

    async def next(self) -> SipMessage:
        return await asyncio.wait_for(self.responses.get(), T)


def test_raw_udp_requests() -> None:
    async def scenario() -> None:
        ua = SipListener(SipConfig("agent", MediaPolicy(DEFAULT_FORMATS, allow_plaintext=True),
                                   allow_plaintext_signalling=True), "udp")
        await ua.start()
        loop = asyncio.get_running_loop()
        transport, peer = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
        local = transport.get_extra_info("sockname")[1]
        try:
            def send(data: bytes) -> None:
                transport.sendto(data, ("127.0.0.1", ua.port))

            # OPTIONS: 200, answered to the source port; rport and received filled in (RFC 3581)
            send(_request("OPTIONS", ua.port, local))
            r = await peer.next()
            assert r.status == 200 and "INVITE" in (r.get("Allow") or "")
            assert r.top_via.params["rport"] == str(local) and r.top_via.params["received"] == "127.0.0.1"
            # an INVITE sent twice (a UDP retransmission): one call, the 100 Trying repeated
            invite = _request("INVITE", ua.port, local, branch="z9hG4bKinv", body=OFFER)
            send(invite)
            assert (await peer.next()).status == 100
            session = await ua.accept(T)
            send(invite)
            assert (await peer.next()).status == 100
            await session.alert()
            assert (await peer.next()).status == 180
            send(invite)
            assert (await peer.next()).status == 180  # the last provisional again
            await session.reject("userBusy", 17)
            busy = await peer.next()
            assert busy.status == 486 and busy.to.tag
            ack = _request("ACK", ua.port, local, branch="z9hG4bKinv", cseq="1 ACK").replace(
                b"To: <sip:agent@127.0.0.1>", f"To: {busy.get('To')}".encode())
            send(ack)  # stops timer G: no more 486 (RFC 3261 §17.2.1)
            while True:
                try:
                    again = await asyncio.wait_for(peer.responses.get(), 1.5)  # longer than T1 doubled
                except TimeoutError:
                    break
                assert again.status == 486  # only those sent before the ACK arrived
            assert ua._incoming.empty()  # the retransmissions made no second call
            # refusals, each with its own status
            cases = [
                (_request("BYE", ua.port, local, branch="z9hG4bKbye").replace(b"To: <sip:agent@127.0.0.1>",
                                                                               b"To: <sip:agent@127.0.0.1>;tag=x"),
                 481),
                (_request("SUBSCRIBE", ua.port, local, branch="z9hG4bKsub"), 405),
                (_request("FOO", ua.port, local, branch="z9hG4bKfoo"), 501),
                (_request("CANCEL", ua.port, local, branch="z9hG4bKnone"), 481),
                (_request("OPTIONS", ua.port, local, branch="z9hG4bKreq", extra="Require: 100rel\r\n"), 420),
                (_request("OPTIONS", ua.port, local, branch="nocookie"), 400),
                (_request("OPTIONS", ua.port, local, branch="z9hG4bKmf", extra="Max-Forwards: 999\r\n"), 400),
                (_request("INVITE", ua.port, local, branch="z9hG4bKsdp", body=b"v=0\r\nbogus\r\n"), 400),
            ]
            for data, status in cases:
                send(data)
                r = await peer.next()
                assert r.status == status, (status, r.summary(), r.reason)
            send(b"\x00\x01garbage\r\n\r\n")  # unreadable: dropped, counted, nothing breaks
            send(_request("OPTIONS", ua.port, local, branch="z9hG4bKcseq", cseq="x OPTIONS"))  # no response possible
            send(_request("OPTIONS", ua.port, local, branch="z9hG4bKafter"))
            assert (await peer.next()).status == 200
            assert ua.core.transports["UDP"].malformed == 3  # Max-Forwards twice, garbage, bad CSeq
            assert ua.sessions == 0
        finally:
            transport.close()
            await ua.close()

    run(scenario())


def test_reinvite_keeps_the_session_and_bye_ends_it() -> None:
    from vcore.callcontrol import Connected, MediaUpdated, Released
    from vcore.h323.messages import Address

    async def scenario() -> None:
        ua = SipListener(SipConfig("agent", MediaPolicy(DEFAULT_FORMATS, allow_plaintext=True),
                                   allow_plaintext_signalling=True), "udp")
        await ua.start()
        loop = asyncio.get_running_loop()
        transport, peer = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
        local = transport.get_extra_info("sockname")[1]
        try:
            def send(data: bytes) -> None:
                transport.sendto(data, ("127.0.0.1", ua.port))

            send(_request("INVITE", ua.port, local, branch="z9hG4bKre1", body=OFFER))
            assert (await peer.next()).status == 100
            session = await ua.accept(T)
            channels = await session.answer({1: (Address("127.0.0.1", 41000), Address("127.0.0.1", 41001))})
            assert {(c.direction, c.format.name) for c in channels} == {("send", "PCMU"), ("receive", "PCMU")}
            ok = await peer.next()
            assert ok.status == 200 and ok.content_type == "application/sdp" and b"m=audio 41000 RTP/AVP 0" in ok.body
            to = f"To: {ok.get('To')}".encode()

            def in_dialog(method: str, branch: str, cseq: int, body: bytes = b"") -> bytes:
                return _request(method, ua.port, local, branch=branch, cseq=f"{cseq} {method}",
                                body=body).replace(b"To: <sip:agent@127.0.0.1>", to).replace(
                    f"Call-ID: raw-{branch}".encode(), b"Call-ID: raw-z9hG4bKre1")

            send(in_dialog("ACK", "z9hG4bKack1", 1))
            assert isinstance(await session.next_event(T), Connected)
            send(in_dialog("INVITE", "z9hG4bKre2", 2, OFFER.replace(b"a=rtpmap", b"a=sendonly\r\na=rtpmap")))
            again = await peer.next()
            assert again.status == 200 and b"a=recvonly" in again.body and b"a=sendrecv" not in again.body
            assert again.body.replace(b"a=recvonly", b"a=sendrecv").replace(b" 2 IN IP4", b" 1 IN IP4") == ok.body
            update = await session.next_event(T)  # hold answered; the keys and ports stay as negotiated
            assert update == MediaUpdated(((1, None, None),), held=True, by_peer=True)  # audio: send nothing
            send(in_dialog("ACK", "z9hG4bKack2", 2))
            send(in_dialog("OPTIONS", "z9hG4bKopt", 3))
            assert (await peer.next()).status == 200
            send(in_dialog("OPTIONS", "z9hG4bKold", 1))  # CSeq lower than the last: out of order
            assert (await peer.next()).status == 500
            send(in_dialog("BYE", "z9hG4bKbye2", 4))
            assert (await peer.next()).status == 200
            released = await session.next_event(T)
            assert isinstance(released, Released) and released.by_peer and released.cause == 16
            assert ua.sessions == 0  # nothing kept once the call is over
        finally:
            transport.close()
            await ua.close()

    run(scenario())


def test_fuzzed_requests_never_break_the_user_agent(caplog: Any) -> None:
    """Mutated INVITEs, BYEs and CANCELs through the whole dispatch: refused or handled, never an exception."""
    import logging

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    seeds = [_request("INVITE", 5060, 9, branch="z9hG4bKf1", body=OFFER),
             _request("BYE", 5060, 9, branch="z9hG4bKf2").replace(b"To: <sip:agent@127.0.0.1>",
                                                                   b"To: <sip:agent@127.0.0.1>;tag=1"),
             _request("CANCEL", 5060, 9, branch="z9hG4bKf1"), _request("OPTIONS", 5060, 9, branch="z9hG4bKf3")]

    async def feed(messages: list[bytes]) -> None:
        ua = SipListener(SipConfig("agent", MediaPolicy(DEFAULT_FORMATS, allow_plaintext=True),
                                   allow_plaintext_signalling=True), "udp")
        await ua.start()
        try:
            udp = ua.core.transports["UDP"]
            for data in messages:
                udp._datagram(data, ("127.0.0.1", 9))  # what a datagram from 127.0.0.1:9 goes through
            while not ua._incoming.empty():
                session = ua._incoming.get_nowait()
                await session.alert()
                await session.reject()
        finally:
            await ua.close()

    @given(st.lists(st.tuples(st.sampled_from(range(len(seeds))),
                              st.lists(st.tuples(st.integers(0, 400), st.binary(max_size=3)), max_size=4)),
                    min_size=1, max_size=4))
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    def check(plan: list[tuple[int, list[tuple[int, bytes]]]]) -> None:
        messages = []
        for index, mutations in plan:
            data = bytearray(seeds[index])
            for pos, repl in mutations:
                data[pos % len(data):pos % len(data) + 1] = repl
            messages.append(bytes(data))
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            asyncio.run(feed(messages))
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text

    check()


def test_invite_answers_a_proxy_challenge_once() -> None:
    """407 -> the INVITE again with Proxy-Authorization (new CSeq, same Call-ID), each error ACKed."""
    from vcore.callcontrol import Released
    from vcore.h323.messages import Address
    from vcore.sip import Credentials, SipUri
    from vcore.sip.auth import DigestVerifier
    from vcore.sip.ua import response_to

    async def scenario() -> None:
        verifier = DigestVerifier("proxy.test", {"kiosk": "pw"})
        loop = asyncio.get_running_loop()
        transport, peer = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
        proxy_port = transport.get_extra_info("sockname")[1]
        ua = SipListener(SipConfig("kiosk", MediaPolicy(DEFAULT_FORMATS, allow_plaintext=True),
                                   allow_plaintext_signalling=True), "udp", credentials=Credentials("kiosk", "pw"),
                         outbound_proxy=f"sip:127.0.0.1:{proxy_port}")
        await ua.start()

        async def endpoints(local: str, remote: str) -> Any:
            return {1: (Address(local, 42000), Address(local, 42001))}

        try:
            session = await ua.place_call(SipUri.parse("sip:agent@192.0.2.10"), endpoints)
            first = await peer.next()  # the proxy received the INVITE (the Peer queue takes requests too)
            assert first.method == "INVITE" and first.get("Route") == f"<sip:127.0.0.1:{proxy_port};lr>"
            assert first.uri is not None and first.uri.host == "192.0.2.10"
            reply_to = ("127.0.0.1", ua.port)
            transport.sendto(response_to(first, 407, "Proxy Authentication Required", to_tag="p1",
                                         extra=[("Proxy-Authenticate", verifier.challenge())]).serialize(), reply_to)
            ack = await peer.next()
            assert ack.method == "ACK" and ack.top_via.branch == first.top_via.branch
            second = await peer.next()
            assert second.method == "INVITE" and second.call_id == first.call_id
            assert second.cseq[0] == first.cseq[0] + 1 and second.top_via.branch != first.top_via.branch
            assert verifier.verify(second.get("Proxy-Authorization") or "", "INVITE") == "kiosk"
            transport.sendto(response_to(second, 486, "Busy Here", to_tag="b1").serialize(), reply_to)
            assert (await peer.next()).method == "ACK"
            released = await session.next_event(T)
            assert isinstance(released, Released) and released.reason == "userBusy" and released.cause == 17
        finally:
            transport.close()
            await ua.close()

    run(scenario())
