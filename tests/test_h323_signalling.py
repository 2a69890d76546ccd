"""Loopback H.225.0 calls: Fast Connect, H.245 procedures, mutual TLS, refusals and faults."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcore import pki
from vcore.h323 import asn1
from vcore.h323.errors import CallRefused, SecurityError, SignallingTimeout
from vcore.h323.fast_connect import MediaPolicy
from vcore.h323.messages import (
    PCMA,
    PCMU,
    Address,
    OpenChannel,
    alerting_uuie,
    call_proceeding_uuie,
    connect_uuie,
    encode_h245,
    master_slave_determination,
    master_slave_determination_ack,
    open_logical_channel,
    open_logical_channel_pdu,
    parse_h245,
    parse_user_information,
    round_trip_delay_request,
    setup_uuie,
    terminal_capability_set,
    user_information,
    video_fast_update_picture,
)
from vcore.h323.q931 import Cause, MessageType, Q931Message, user_user_ie
from vcore.h323.signalling import (
    BitrateLimited,
    CallEvent,
    CallSession,
    CallState,
    ChannelClosed,
    ChannelOpened,
    Connected,
    KeyframeRequested,
    ProtocolWarning,
    Released,
    SignallingConfig,
    SignallingListener,
    place_call,
)
from vcore.h323.tpkt import TpktDecoder, encode_tpkt

A = Address
CALLER_MEDIA = {1: (A("127.0.0.1", 5000), A("127.0.0.1", 5001)), 2: (A("127.0.0.1", 5002), A("127.0.0.1", 5003))}
CALLEE_MEDIA = {1: (A("127.0.0.1", 6000), A("127.0.0.1", 6001)), 2: (A("127.0.0.1", 6002), A("127.0.0.1", 6003))}
T = 5.0  # generous upper bound for one event on a loaded machine; tests never assert on time


def plain(alias: str, **kw: Any) -> SignallingConfig:
    return SignallingConfig(alias, allow_plaintext_signalling=True, **kw)


def run(coro: Awaitable[None]) -> None:
    async def main() -> None:
        await asyncio.wait_for(coro, 60)
        # every task a session or listener started must be gone
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


async def until(session: CallSession, kind: type[CallEvent]) -> Any:
    seen = []
    while True:
        event = await session.next_event(T)
        seen.append(event)
        if isinstance(event, kind):
            return event
        if isinstance(event, Released):
            raise AssertionError(f"released while waiting for {kind.__name__}: {seen}")


async def drain(session: CallSession) -> Released:
    async for event in session:
        if isinstance(event, Released):
            return event
    assert session.released is not None
    return session.released


# --------------------------------------------------------------------------- plaintext loopback


def test_fast_connect_call_over_tcp() -> None:
    async def scenario() -> None:
        async with SignallingListener(plain("agent")) as listener:
            call = await place_call("127.0.0.1", listener.port, plain("kiosk"), CALLER_MEDIA, destination=["agent"])
            incoming = await listener.accept(T)
            assert incoming.remote_aliases == ("kiosk",) and incoming.state is CallState.INCOMING_PROCEEDING
            await incoming.alert()
            callee_channels = await incoming.answer(CALLEE_MEDIA)
            connected = await until(call, Connected)
            assert connected.fast_connect and len(connected.channels) == 4 == len(callee_channels)
            assert call.state is CallState.ACTIVE and incoming.state is CallState.ACTIVE
            sends = {c.session_id: c for c in connected.channels if c.direction == "send"}
            assert sends[1].remote_rtp == CALLEE_MEDIA[1][0] and sends[2].remote_rtp == CALLEE_MEDIA[2][0]
            assert sends[2].format.name == "H264" and sends[1].format.name == "G722"
            assert all(c.suite == "AEAD_AES_128_GCM" for c in connected.channels)
            assert call.security()["signalling"] == "plaintext" and call.media_encrypted
            assert call.security()["srtp_keys"] == "exposed (plaintext signalling)"
            while incoming.msd_status is None or call.msd_status is None:  # tunnelled MSD settles
                await asyncio.sleep(0.01)
            assert {call.msd_status, incoming.msd_status} == {"master", "slave"}
            # keyframe requests and bitrate commands travel in tunnelled H.245
            await call.request_keyframe(sends[2].number)
            await call.limit_bitrate(256_000)
            assert await until(incoming, KeyframeRequested) == KeyframeRequested(sends[2].number)
            assert await until(incoming, BitrateLimited) == BitrateLimited(256_000, None)
            await incoming.close_channel(next(c.number for c in callee_channels if c.direction == "send"))
            assert isinstance(await until(call, ChannelClosed), ChannelClosed)
            await call.hangup()
            await call.hangup()  # idempotent
            released = await drain(incoming)
            assert released.by_peer and released.normal and released.reason == "undefinedReason"
            mine = await drain(call)
            assert not mine.by_peer and mine.normal
            await incoming.close()

    run(scenario())


def test_h245_procedures_when_callee_declines_fast_connect() -> None:
    async def scenario() -> None:
        async with SignallingListener(plain("agent", fast_connect=False)) as listener:
            call = await place_call("127.0.0.1", listener.port, plain("kiosk"), CALLER_MEDIA)
            incoming = await listener.accept(T)
            assert await incoming.answer(CALLEE_MEDIA) == []
            connected = await until(call, Connected)
            assert not connected.fast_connect and connected.channels == ()
            opened = [await until(call, ChannelOpened) for _ in range(4)]
            mine = {(o.channel.direction, o.channel.session_id): o.channel for o in opened}
            assert set(mine) == {("send", 1), ("send", 2), ("receive", 1), ("receive", 2)}
            assert mine["send", 1].remote_rtp == CALLEE_MEDIA[1][0]
            theirs = {(o.channel.direction, o.channel.session_id): o.channel
                      for o in [await until(incoming, ChannelOpened) for _ in range(4)]}
            for session in (1, 2):
                assert mine["send", session].srtp == theirs["receive", session].srtp
                assert mine["receive", session].srtp == theirs["send", session].srtp
                assert mine["send", session].srtp is not None
            await incoming.hangup("undefinedReason")
            assert (await drain(call)).by_peer
            await call.close()

    run(scenario())


def test_callee_rejects_with_reason() -> None:
    async def scenario() -> None:
        async with SignallingListener(plain("agent")) as listener:
            call = await place_call("127.0.0.1", listener.port, plain("kiosk"), CALLER_MEDIA)
            incoming = await listener.accept(T)
            await incoming.reject("destinationRejection", Cause.USER_BUSY)
            with pytest.raises(CallRefused) as info:
                await call.wait_connected(T)
            assert info.value.reason == "destinationRejection" and info.value.cause == Cause.USER_BUSY
            await call.close()

    run(scenario())


def test_no_common_media_falls_back_and_opens_nothing() -> None:
    async def scenario() -> None:
        callee = plain("agent", policy=MediaPolicy((PCMA,), ("AES_CM_128_HMAC_SHA1_80",)))
        caller = plain("kiosk", policy=MediaPolicy((PCMU,), ("AEAD_AES_128_GCM",)))
        async with SignallingListener(callee) as listener:
            call = await place_call("127.0.0.1", listener.port, caller, CALLER_MEDIA)
            incoming = await listener.accept(T)
            assert await incoming.answer(CALLEE_MEDIA) == []
            connected = await until(call, Connected)
            assert connected.channels == () and not connected.fast_connect
            await call.hangup()
            await drain(incoming)
            assert call.channels == [] and incoming.channels == []

    run(scenario())


def test_plaintext_requires_configuration() -> None:
    async def scenario() -> None:
        with pytest.raises(SecurityError, match="plaintext signalling is not allowed"):
            SignallingListener(SignallingConfig("agent"))
        with pytest.raises(SecurityError, match="plaintext signalling is not allowed"):
            await place_call("127.0.0.1", 9, SignallingConfig("kiosk"), CALLER_MEDIA)

    run(scenario())


# --------------------------------------------------------------------------- a hand-driven peer


class RawPeer:
    """A minimal H.225.0 endpoint built from the message API, to misbehave on purpose."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = TpktDecoder()
        self.pending: list[bytes] = []

    async def send_raw(self, payload: bytes) -> None:
        self.writer.write(encode_tpkt(payload))
        await self.writer.drain()

    async def send(self, mtype: int, crv: int, from_destination: bool, body_name: str, body: Any) -> None:
        uuie = asn1.encode_uuie(user_information(body_name, body))
        await self.send_raw(Q931Message(mtype, crv, from_destination, (user_user_ie(uuie),)).encode())

    async def receive(self) -> Q931Message | None:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), T)
            if not data:
                return None
            self.pending.extend(self.decoder.feed(data))
        return Q931Message.parse(self.pending.pop(0))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


_HANDLERS: set[asyncio.Task[Any]] = set()


async def raw_server(behaviour: Callable[[RawPeer], Awaitable[None]]) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        _HANDLERS.add(task)
        peer = RawPeer(reader, writer)
        try:
            await behaviour(peer)
        finally:
            await peer.close()
            _HANDLERS.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def stop(server: asyncio.Server) -> None:
    """Stop the raw server once its handlers have finished (they end when vcore closes the connection)."""
    server.close()
    await server.wait_closed()
    for task in list(_HANDLERS):
        await asyncio.wait_for(asyncio.shield(task), T)


def test_peer_never_answers_times_out() -> None:
    got: list[Q931Message | None] = []

    async def silent(peer: RawPeer) -> None:
        got.append(await peer.receive())  # the Setup
        got.append(await peer.receive())  # then vcore's ReleaseComplete

    async def scenario() -> None:
        server, port = await raw_server(silent)
        call = await place_call("127.0.0.1", port, plain("kiosk", setup_timeout=0.3), CALLER_MEDIA)
        released = await drain(call)
        assert released.reason == "timeout" and not released.by_peer
        assert released.detail == "no answer to Setup within the timeout"
        await asyncio.sleep(0.05)
        await stop(server)
        assert got[0] is not None and got[0].message_type == MessageType.SETUP
        assert got[1] is not None and got[1].message_type == MessageType.RELEASE_COMPLETE
        assert got[1].cause == Cause.RECOVERY_ON_TIMER_EXPIRY

    run(scenario())


def test_no_connect_after_alerting_times_out() -> None:
    async def ringing_forever(peer: RawPeer) -> None:
        setup = await peer.receive()
        assert setup is not None
        call_id = parse_user_information(setup.user_user or b"").call_id or bytes(16)
        await peer.send(MessageType.ALERTING, setup.call_reference, True, "alerting", alerting_uuie(call_id=call_id))
        await peer.receive()

    async def scenario() -> None:
        server, port = await raw_server(ringing_forever)
        call = await place_call("127.0.0.1", port, plain("kiosk", answer_timeout=0.3), CALLER_MEDIA)
        released = await drain(call)
        assert released.reason == "timeout" and released.cause == Cause.NO_ANSWER
        assert released.detail == "no Connect within the timeout"
        await stop(server)

    run(scenario())


def test_peer_closes_tcp_mid_call() -> None:
    async def connect_then_vanish(peer: RawPeer) -> None:
        setup = await peer.receive()
        assert setup is not None
        info = parse_user_information(setup.user_user or b"")
        call_id = info.call_id or bytes(16)
        await peer.send(MessageType.CONNECT, setup.call_reference, True, "connect",
                        connect_uuie(call_id=call_id, conference_id=bytes(16), fast_connect_refused=True))

    async def scenario() -> None:
        server, port = await raw_server(connect_then_vanish)
        call = await place_call("127.0.0.1", port, plain("kiosk"), CALLER_MEDIA)
        assert not (await until(call, Connected)).fast_connect
        released = await drain(call)
        assert released.reason == "peerClosed" and released.by_peer
        assert released.detail == "the peer closed the signalling connection"
        await stop(server)

    run(scenario())


def test_caller_closes_tcp_before_answer() -> None:
    async def scenario() -> None:
        async with SignallingListener(plain("agent")) as listener:
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            peer = RawPeer(reader, writer)
            setup = setup_uuie(call_id=bytes(16), conference_id=bytes(16), source_aliases=["raw"])
            await peer.send(MessageType.SETUP, 77, False, "setup", setup)
            incoming = await listener.accept(T)
            assert (await peer.receive()) is not None  # CallProceeding
            await peer.close()
            released = await drain(incoming)
            assert released.reason == "peerClosed"
            await incoming.close()

    run(scenario())


def test_malformed_q931_releases_with_protocol_error() -> None:
    got: list[Q931Message | None] = []

    async def garbage(peer: RawPeer) -> None:
        setup = await peer.receive()
        assert setup is not None
        await peer.send_raw(b"\x09\x02\x00\x01\x02")  # wrong protocol discriminator
        got.append(await peer.receive())

    async def scenario() -> None:
        server, port = await raw_server(garbage)
        call = await place_call("127.0.0.1", port, plain("kiosk"), CALLER_MEDIA)
        released = await drain(call)
        assert released.reason == "protocolError" and released.cause == Cause.INVALID_MESSAGE
        assert released.detail == "malformed signalling: Q.931 protocol discriminator 0x09 is not 0x08"
        await asyncio.sleep(0.05)
        await stop(server)
        assert got and got[0] is not None and got[0].message_type == MessageType.RELEASE_COMPLETE

    run(scenario())


def test_malformed_uuie_and_bad_tpkt_release() -> None:
    async def bad(peer: RawPeer) -> None:
        setup = await peer.receive()
        assert setup is not None
        await peer.send_raw(Q931Message(MessageType.CONNECT, setup.call_reference, True,
                                        (user_user_ie(b"\xff\xff\xff"),)).encode())
        await peer.receive()

    async def bad_tpkt(peer: RawPeer) -> None:
        await peer.receive()
        peer.writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await peer.writer.drain()
        await peer.receive()

    async def scenario() -> None:
        for behaviour, detail in ((bad, "malformed signalling: malformed H323-UserInformation"),
                                  (bad_tpkt, "malformed signalling: TPKT version 72 is not 3")):
            server, port = await raw_server(behaviour)
            call = await place_call("127.0.0.1", port, plain("kiosk"), CALLER_MEDIA)
            released = await drain(call)
            assert released.reason == "protocolError" and released.detail.startswith(detail)
            await stop(server)

    run(scenario())


def test_unknown_message_type_gets_status_and_call_continues() -> None:
    statuses: list[Q931Message | None] = []

    async def odd(peer: RawPeer) -> None:
        setup = await peer.receive()
        assert setup is not None
        crv = setup.call_reference
        await peer.send(MessageType.CALL_PROCEEDING, crv, True, "callProceeding",
                        call_proceeding_uuie(call_id=bytes(16)))
        await peer.send_raw(Q931Message(0x33, crv, True).encode())
        await peer.send_raw(Q931Message(MessageType.STATUS_ENQUIRY, crv, True).encode())
        while True:
            message = await peer.receive()
            if message is None or message.message_type == MessageType.RELEASE_COMPLETE:
                break
            if message.message_type == MessageType.STATUS:
                statuses.append(message)

    async def scenario() -> None:
        server, port = await raw_server(odd)
        call = await place_call("127.0.0.1", port, plain("kiosk"), CALLER_MEDIA)
        warning = await until(call, ProtocolWarning)
        assert warning.detail == "unknown Q.931 message type 0x33 answered with Status"
        await asyncio.sleep(0.1)
        assert call.released is None and call.state is CallState.OUTGOING_PROCEEDING
        await call.hangup()
        await asyncio.sleep(0.05)
        await stop(server)
        causes = sorted(s.cause for s in statuses if s is not None)
        assert causes == [30, Cause.MESSAGE_TYPE_NONEXISTENT]

    run(scenario())


def odd_h245_answer(crv: int) -> bytes:
    """A Connect refusing Fast Connect whose tunnelled H.245 vcore must answer in every way it can."""
    g728 = open_logical_channel(OpenChannel(7, PCMU, media_control=CALLEE_MEDIA[1][1]))
    g728["forwardLogicalChannelParameters"]["dataType"] = ("audioData", ("g728", 20))
    h245 = [
        encode_h245(terminal_capability_set(1, (PCMU,), ("AEAD_AES_128_GCM",))),
        encode_h245(master_slave_determination(50, 12345)),
        encode_h245(("request", ("openLogicalChannel", g728))),  # -> OpenLogicalChannelReject
        encode_h245(open_logical_channel_pdu(OpenChannel(8, PCMU, media_control=CALLEE_MEDIA[1][1]))),  # plain
        encode_h245(round_trip_delay_request(9)),  # -> RoundTripDelayResponse
        encode_h245(("request", ("maintenanceLoopRequest", {"type": ("systemLoop", 0)}))),  # -> not understood
        b"\xff\xff",  # undecodable: ignored with a warning
    ]
    uuie = asn1.encode_uuie(user_information(
        "connect", connect_uuie(call_id=bytes(16), conference_id=bytes(16), fast_connect_refused=True),
        h245_control=h245))
    return Q931Message(MessageType.CONNECT, crv, True, (user_user_ie(uuie),)).encode()


async def odd_h245_peer(peer: RawPeer, replies: list[str]) -> None:
    setup = await peer.receive()
    assert setup is not None
    await peer.send_raw(odd_h245_answer(setup.call_reference))
    while True:
        message = await peer.receive()
        if message is None or message.message_type == MessageType.RELEASE_COMPLETE:
            return
        info = parse_user_information(message.user_user or b"")
        replies.extend(parse_h245(pdu).name for pdu in info.h245_control)


def test_tunnelled_h245_answers() -> None:
    replies: list[str] = []

    async def scenario() -> None:
        server, port = await raw_server(lambda peer: odd_h245_peer(peer, replies))
        call = await place_call("127.0.0.1", port, plain("kiosk"), CALLER_MEDIA)
        await until(call, Connected)
        warnings = [(await until(call, ProtocolWarning)).detail for _ in range(4)]
        assert warnings[0] == "rejected channel 7: dataTypeNotSupported"
        assert warnings[1] == "rejected channel 8: securityDenied"  # plain RTP is not allowed
        assert warnings[2] == "H.245 maintenanceLoopRequest not understood"
        assert warnings[3].startswith("undecodable tunnelled H.245 ignored: malformed MultimediaSystemControlMessage")
        await asyncio.sleep(0.1)
        assert call.released is None
        await call.hangup()
        await stop(server)
        assert {"terminalCapabilitySetAck", "masterSlaveDeterminationAck", "openLogicalChannelReject",
                "roundTripDelayResponse", "functionNotUnderstood", "openLogicalChannel",
                "endSessionCommand"} - set(replies) == {"endSessionCommand"}  # EndSession rides in ReleaseComplete

    run(scenario())


def test_msd_ack_is_confirmed() -> None:
    """A peer that answers vcore's MasterSlaveDetermination with an Ack gets vcore's confirming Ack (H.245 §8.2)."""
    replies: list[tuple[str, Any]] = []

    async def acking_peer(peer: RawPeer) -> None:
        setup = await peer.receive()
        assert setup is not None
        uuie = asn1.encode_uuie(user_information(
            "connect", connect_uuie(call_id=bytes(16), conference_id=bytes(16), fast_connect_refused=True),
            h245_control=[encode_h245(master_slave_determination_ack("master"))]))
        await peer.send_raw(Q931Message(MessageType.CONNECT, setup.call_reference, True,
                                        (user_user_ie(uuie),)).encode())
        while True:
            message = await peer.receive()
            if message is None or message.message_type == MessageType.RELEASE_COMPLETE:
                return
            info = parse_user_information(message.user_user or b"")
            replies.extend((p.name, p.body) for p in map(parse_h245, info.h245_control))

    async def scenario() -> None:
        server, port = await raw_server(acking_peer)
        call = await place_call("127.0.0.1", port, plain("kiosk"), CALLER_MEDIA)
        await until(call, Connected)
        while not replies:
            await asyncio.sleep(0.01)
        assert replies == [("masterSlaveDeterminationAck", {"decision": ("slave", 0)})]
        assert call.msd_status == "master"
        await call.hangup()
        await stop(server)

    run(scenario())


def test_listener_refuses_non_setup_first_message() -> None:
    async def scenario() -> None:
        async with SignallingListener(plain("agent", setup_timeout=0.3)) as listener:
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            peer = RawPeer(reader, writer)
            await peer.send(MessageType.CONNECT, 5, False, "connect",
                            connect_uuie(call_id=bytes(16), conference_id=bytes(16)))
            reply = await peer.receive()
            assert reply is not None and reply.message_type == MessageType.RELEASE_COMPLETE
            assert reply.cause == Cause.INVALID_MESSAGE
            assert await peer.receive() is None
            await peer.close()
            # a connection that never sends a Setup
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
            assert [(r.reason, r.detail) for r in listener.refused] == [
                ("protocolError", "CONNECT instead of Setup"), ("timeout", "no Setup within the timeout")]

    run(scenario())


# --------------------------------------------------------------------------- mutual TLS


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("pki")
    ca = pki.CertificateAuthority.init(base / "ca", "Office CA")
    other = pki.CertificateAuthority.init(base / "other", "Someone else's CA")
    for name in ("agent-1", "kiosk-1", "kiosk-2", "stranger"):
        ca.issue(name).save(base / f"{name}.pem")
    other.issue("kiosk-1").save(base / "forged-kiosk-1.pem")
    ca.revoke("kiosk-2")
    return base


def contexts(base: Path, server: str, client: str) -> tuple[Any, Any]:
    anchors = base / "ca" / "ca.cert.pem"
    crl = base / "ca" / "crl.pem"
    return (pki.server_context(pki.Identity.load(base / f"{server}.pem"), anchors, crl),
            pki.client_context(pki.Identity.load(base / f"{client}.pem"), anchors, crl))


TLS_AGENT = SignallingConfig("agent-1", allow_list=frozenset({"kiosk-1", "kiosk-2"}))


def test_mutual_tls_call(pki_dir: Path) -> None:
    async def scenario() -> None:
        server_ctx, client_ctx = contexts(pki_dir, "agent-1", "kiosk-1")
        async with SignallingListener(TLS_AGENT, server_ctx) as listener:
            call = await place_call("127.0.0.1", listener.port, SignallingConfig("kiosk-1"), CALLER_MEDIA,
                                    ssl_context=client_ctx, expected_name="agent-1")
            incoming = await listener.accept(T)
            assert incoming.peer_name == "kiosk-1" and incoming.signalling_encrypted
            await incoming.answer(CALLEE_MEDIA)
            connected = await until(call, Connected)
            assert call.peer_name == "agent-1"
            security = call.security()
            assert security["signalling"] == "tls" and security["peer_certificate"] == "agent-1"
            assert security["srtp_keys"] == "tls-protected"
            assert {m["srtp"] for m in security["media"]} == {"AEAD_AES_128_GCM"} and len(connected.channels) == 4
            await call.hangup()
            assert (await drain(incoming)).by_peer

    run(scenario())


@pytest.mark.parametrize(("client", "reason", "refusal"), [
    ("stranger", "securityDenied", ("securityDenied", "caller 'stranger' is not on the allow-list")),
    ("forged-kiosk-1", "tlsFailure", ("tlsFailure", "TLS handshake failed: self-signed certificate in certificate chain")),
    ("kiosk-2", "tlsFailure", ("tlsFailure", "TLS handshake failed: certificate revoked")),
])
def test_refused_callers(pki_dir: Path, client: str, reason: str, refusal: tuple[str, str]) -> None:
    async def scenario() -> None:
        server_ctx, client_ctx = contexts(pki_dir, "agent-1", client)
        async with SignallingListener(TLS_AGENT, server_ctx) as listener:
            call = await place_call("127.0.0.1", listener.port, SignallingConfig(client), CALLER_MEDIA,
                                    ssl_context=client_ctx)
            events = [event async for event in call]
            assert len(events) == 1  # a refused caller gets a release reason and nothing else
            released = events[0]
            assert isinstance(released, Released) and released.reason == reason and released.by_peer
            if reason == "securityDenied":
                assert released.cause == Cause.CALL_REJECTED
            await asyncio.sleep(0.05)
            assert [(r.reason, r.detail) for r in listener.refused] == [refusal]
            await call.close()

    run(scenario())


def test_caller_refuses_untrusted_callee(pki_dir: Path) -> None:
    async def scenario() -> None:
        forged = pki.Identity.load(pki_dir / "forged-kiosk-1.pem")
        other_anchor = pki_dir / "other" / "ca.cert.pem"
        server_ctx = pki.server_context(forged, other_anchor)
        _, client_ctx = contexts(pki_dir, "agent-1", "kiosk-1")
        async with SignallingListener(SignallingConfig("evil"), server_ctx) as listener:
            with pytest.raises(SecurityError, match="TLS handshake with 127.0.0.1:.* failed: CERTIFICATE_VERIFY_FAILED"):
                await place_call("127.0.0.1", listener.port, SignallingConfig("kiosk-1"), CALLER_MEDIA,
                                 ssl_context=client_ctx)

    run(scenario())


def test_caller_checks_callee_name(pki_dir: Path) -> None:
    async def scenario() -> None:
        server_ctx, client_ctx = contexts(pki_dir, "stranger", "kiosk-1")
        async with SignallingListener(SignallingConfig("stranger"), server_ctx) as listener:
            with pytest.raises(SecurityError, match="presented certificate 'stranger', not 'agent-1'"):
                await place_call("127.0.0.1", listener.port, SignallingConfig("kiosk-1"), CALLER_MEDIA,
                                 ssl_context=client_ctx, expected_name="agent-1")
            with pytest.raises(SignallingTimeout, match="no incoming call within 0.1 s"):
                await listener.accept(0.1)

    run(scenario())


def test_plaintext_client_against_tls_listener(pki_dir: Path) -> None:
    async def scenario() -> None:
        server_ctx, _ = contexts(pki_dir, "agent-1", "kiosk-1")
        async with SignallingListener(SignallingConfig("agent-1", tls_timeout=1.0), server_ctx) as listener:
            call = await place_call("127.0.0.1", listener.port, plain("kiosk"), CALLER_MEDIA)
            released = await drain(call)
            assert released.reason == "peerClosed"
            await asyncio.sleep(0.05)
            assert listener.refused and listener.refused[0].reason == "tlsFailure"

    run(scenario())


# --------------------------------------------------------------------------- fuzzing live sessions


def _watch_loop_errors() -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    return errors


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200),
                 st.binary(max_size=200).map(lambda b: encode_tpkt(b"\x08\x02\x00\x07\x05" + b))))
def test_listener_survives_garbage(data: bytes) -> None:
    async def scenario() -> None:
        errors = _watch_loop_errors()
        async with SignallingListener(plain("agent", setup_timeout=0.2)) as listener:
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            writer.write(data)
            await writer.drain()
            await asyncio.wait_for(reader.read(), T)  # the listener ends the connection
            writer.close()
            await writer.wait_closed()
            with pytest.raises(SignallingTimeout):
                await listener.accept(0.01)
            assert len(listener.refused) == 1
        assert errors == []

    run(scenario())


def _connect_answer(crv: int) -> bytes:
    h245 = [
        encode_h245(terminal_capability_set(1, (PCMU, PCMA), ("AEAD_AES_128_GCM",))),
        encode_h245(master_slave_determination(50, 12345)),
        encode_h245(open_logical_channel_pdu(OpenChannel(7, PCMU, media_control=CALLEE_MEDIA[1][1]))),
        encode_h245(video_fast_update_picture(3)),
    ]
    uuie = asn1.encode_uuie(user_information(
        "connect", connect_uuie(call_id=bytes(16), conference_id=bytes(16), fast_connect_refused=True),
        h245_control=h245))
    return Q931Message(MessageType.CONNECT, crv, True, (user_user_ie(uuie),)).encode()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_caller_survives_mutated_answers(data: st.DataObject) -> None:
    async def mutate(peer: RawPeer) -> None:
        setup = await peer.receive()
        assert setup is not None
        raw = bytearray(_connect_answer(setup.call_reference))
        for _ in range(data.draw(st.integers(1, 6))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
        await peer.send_raw(bytes(raw))
        await asyncio.sleep(0.05)

    async def scenario() -> None:
        errors = _watch_loop_errors()
        server, port = await raw_server(mutate)
        call = await place_call("127.0.0.1", port, plain("kiosk"), CALLER_MEDIA)
        released = await drain(call)
        assert released.reason in {"peerClosed", "protocolError", "undefinedReason", "securityDenied"}
        await stop(server)
        assert errors == []

    run(scenario())


def test_tls_listener_times_out_silent_client(pki_dir: Path) -> None:
    async def scenario() -> None:
        server_ctx, _ = contexts(pki_dir, "agent-1", "kiosk-1")
        async with SignallingListener(SignallingConfig("agent-1", tls_timeout=0.3), server_ctx) as listener:
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            assert await asyncio.wait_for(reader.read(), T) == b""  # dropped after the handshake timeout
            writer.close()
            await writer.wait_closed()
            assert [(r.reason, r.detail) for r in listener.refused] == [("tlsFailure", "TLS handshake timed out")]

    run(scenario())


def test_keys_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    keys: list[bytes] = []

    async def scenario() -> None:
        async with SignallingListener(plain("agent")) as listener:
            call = await place_call("127.0.0.1", listener.port, plain("kiosk"), CALLER_MEDIA)
            incoming = await listener.accept(T)
            channels = await incoming.answer(CALLEE_MEDIA)
            await call.wait_connected(T)
            keys.extend(c.srtp.master_key for c in channels if c.srtp is not None)
            keys.extend(c.srtp.master_salt for c in channels if c.srtp is not None)
            await call.hangup()
            await drain(incoming)

    with caplog.at_level("DEBUG", logger="vcore"):
        run(scenario())
    assert len(keys) == 8
    text = caplog.text + repr([r.__dict__ for r in caplog.records])
    for secret in keys:
        assert secret.hex() not in text and repr(secret) not in text
