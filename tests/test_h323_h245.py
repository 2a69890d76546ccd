"""H.245 procedures as state machines (MSDSE, CESE, LCSE with their timers), the separate H.245 channel
(h245Address, h245Tunnelling FALSE, switching from tunnelling) and the orderly release of a call."""

from __future__ import annotations

import asyncio
from typing import Any

from vcore.callcontrol import ChannelOpened, Connected, ProtocolWarning, Released
from vcore.h323 import asn1
from vcore.h323.fast_connect import MediaPolicy
from vcore.h323.h245 import H245Control, H245Timers
from vcore.h323.h245.cese import PeerCapabilities, choose_channels
from vcore.h323.h245.lcse import LcseState, OutgoingChannels
from vcore.h323.h245.msd import MasterSlaveDetermination, MsdState
from vcore.h323.messages import (
    G722,
    H264_MODE1,
    PCMU,
    Address,
    OpenChannel,
    connect_uuie,
    encode_h245,
    master_slave_determination,
    parse_h245,
    parse_user_information,
    release_complete_uuie,
    terminal_capability_set,
    user_information,
)
from vcore.h323.q931 import Cause, MessageType, Q931Message, cause_ie, user_user_ie
from vcore.h323.signalling import SignallingListener, place_call
from vcore.h323.tpkt import TpktDecoder, encode_tpkt

from .test_h323_signalling import CALLEE_MEDIA, CALLER_MEDIA, T, RawPeer, drain, plain, raw_server, run, stop, until

FAST = H245Timers(t101=0.4, t103=0.4, t106=0.4, n100=3, media=0.6)


def names(pdus: list[Any]) -> list[str]:
    return [p[1][0] for p in pdus]


# --------------------------------------------------------------------------- MSDSE (H.245 §C.2)


def test_msd_reject_is_retried_n100_times_then_fails() -> None:
    numbers = iter([5, 6, 7, 8])
    msd = MasterSlaveDetermination(timeout=1.0, retries=3, random=lambda: next(numbers))
    assert names(msd.start(0.0)) == ["masterSlaveDetermination"]
    assert msd.state is MsdState.OUTGOING_AWAITING_RESPONSE and msd.deadline == 1.0
    first = msd.on_reject(0.5)  # retry 1: a new number, T106 restarted
    assert names(first) == ["masterSlaveDetermination"] and first[0][1][1]["statusDeterminationNumber"] == 6
    assert msd.deadline == 1.5
    assert names(msd.on_reject(0.6)) == ["masterSlaveDetermination"]
    assert msd.on_reject(0.7) == [] and msd.failure == "master/slave determination rejected 3 times (N100)"
    assert msd.state is MsdState.IDLE and msd.deadline is None and msd.status is None


def test_msd_indeterminate_crossing_requests_retry_then_fail() -> None:
    msd = MasterSlaveDetermination(timeout=1.0, retries=2, random=lambda: 100)
    msd.start(0.0)
    same = {"terminalType": 50, "statusDeterminationNumber": 100}
    assert names(msd.on_request(same, 0.1)) == ["masterSlaveDetermination"]  # a new number (the same here)
    assert names(msd.on_request(same, 0.2)) == ["masterSlaveDeterminationReject"]
    assert msd.failure is not None and "indeterminate 2 times" in msd.failure


def test_msd_t106_expiry_sends_release() -> None:
    msd = MasterSlaveDetermination(timeout=1.0, retries=3, random=lambda: 1)
    msd.start(0.0)
    assert msd.expire(0.9) == [] and msd.failure is None
    assert names(msd.expire(1.0)) == ["masterSlaveDeterminationRelease"]
    assert msd.failure == "no answer to master/slave determination within 1 s (T106)"


def test_msd_incoming_then_inconsistent_ack_fails() -> None:
    msd = MasterSlaveDetermination(timeout=1.0, retries=3, random=lambda: 1)
    # the peer is an MC (terminal type 160 > 50): it is master, we are slave
    answer = msd.on_request({"terminalType": 160, "statusDeterminationNumber": 9}, 0.0)
    assert answer[0][1] == ("masterSlaveDeterminationAck", {"decision": ("master", 0)})
    assert msd.state is MsdState.INCOMING_AWAITING_RESPONSE and msd.status == "slave"
    msd.on_ack({"decision": ("master", 0)}, 0.1)
    assert msd.failure == "the peer acknowledged master where the determination gave slave"


def test_msd_peer_acks_our_request() -> None:
    msd = MasterSlaveDetermination(timeout=1.0, retries=3, random=lambda: 1)
    msd.start(0.0)
    confirm = msd.on_ack({"decision": ("slave", 0)}, 0.1)
    assert confirm[0][1] == ("masterSlaveDeterminationAck", {"decision": ("master", 0)})
    assert msd.status == "slave" and msd.state is MsdState.IDLE and msd.deadline is None


# --------------------------------------------------------------------------- CESE (H.245 §C.3) and descriptors


def _tcs(descriptors: list[list[list[int]]] | None) -> Any:
    tcs = terminal_capability_set(1, [G722, PCMU, H264_MODE1])[1][1]
    if descriptors is None:
        del tcs["capabilityDescriptors"]
    else:
        tcs["capabilityDescriptors"] = [{"capabilityDescriptorNumber": i, "simultaneousCapabilities": d}
                                        for i, d in enumerate(descriptors)]
    return asn1.decode_h245(asn1.encode_h245(("request", ("terminalCapabilitySet", tcs))))[1][1]


def test_capability_descriptors_limit_what_is_opened() -> None:
    policy = MediaPolicy((H264_MODE1, G722, PCMU), (), allow_plaintext=True)
    # table: 1 G722, 2 PCMU, 3 H.264. One alternative set holds them all: one channel at a time
    one_at_a_time = PeerCapabilities.parse(_tcs([[[3, 1, 2]]]))
    chosen = choose_channels(one_at_a_time, policy, [1, 2])
    assert list(chosen) == [1] and chosen[1][0].name == "G722"
    # audio and video simultaneously, PCMU only
    both = PeerCapabilities.parse(_tcs([[[3]], [[2], [3]]]))
    chosen = choose_channels(both, policy, [1, 2])
    assert chosen[1][0].name == "PCMU" and chosen[2][0].name == "H264"
    # no descriptor: every format usable on its own
    free = PeerCapabilities.parse(_tcs(None))
    assert free.descriptors is None and set(choose_channels(free, policy, [1, 2])) == {1, 2}


def test_cese_t101_and_reject() -> None:
    control = H245Control(MediaPolicy((PCMU,), (), allow_plaintext=True), caller=True, timers=FAST)
    control.start(0.0)
    out, _ = control.take()
    assert [parse_h245(p).name for p in out] == ["terminalCapabilitySet", "masterSlaveDetermination"]
    control.receive(encode_h245(("response", ("terminalCapabilitySetAck", {"sequenceNumber": 1}))), 0.1)
    assert control.cese.acknowledged
    control.expire(0.5)  # T106: the peer never answered our MasterSlaveDetermination
    out, _ = control.take()
    assert [parse_h245(p).name for p in out] == ["masterSlaveDeterminationRelease"]
    assert control.failure is not None and "(T106)" in control.failure.detail
    other = H245Control(MediaPolicy((PCMU,), (), allow_plaintext=True), caller=True, timers=FAST)
    other.start(0.0)
    other.receive(encode_h245(("response", ("terminalCapabilitySetReject",
                                            {"sequenceNumber": 1, "cause": ("unspecified", 0)}))), 0.1)
    assert other.failure is not None and other.failure.detail == "the peer rejected our capabilities (unspecified)"


# --------------------------------------------------------------------------- LCSE (H.245 §C.4)


def test_lcse_t103_closes_an_unanswered_channel() -> None:
    lcse = OutgoingChannels(timeout=1.0)
    channel = OpenChannel(64, PCMU, session_id=1, media_control=Address("127.0.0.1", 5001))
    assert names(lcse.open(channel, 0.0)) == ["openLogicalChannel"] and lcse.pending == 1
    assert lcse.on_ack(65) is None  # not ours
    pdus, notes = lcse.expire(1.0)
    assert pdus == [("request", ("closeLogicalChannel", {"forwardLogicalChannelNumber": 64,
                                                         "source": ("lcse", 0)}))]
    assert notes == ["channel 64: no answer to OpenLogicalChannel within 1 s (T103)"]
    assert lcse.state(64) is LcseState.RELEASED
    lcse.open(channel, 2.0)
    assert lcse.on_ack(64) is channel and lcse.state(64) is LcseState.ESTABLISHED and lcse.deadline() is None
    assert names(lcse.close(64, 3.0)) == ["closeLogicalChannel"] and lcse.state(64) is LcseState.AWAITING_RELEASE
    lcse.on_close_ack(64)
    assert lcse.state(64) is LcseState.RELEASED


# --------------------------------------------------------------------------- the separate H.245 channel


def _plain_policy() -> MediaPolicy:
    return MediaPolicy((G722, PCMU, H264_MODE1), ("AEAD_AES_128_GCM",))


async def _h245_call(caller_tunnels: bool, callee_tunnels: bool) -> None:
    caller_cfg = plain("kiosk", fast_connect=False, h245_tunnelling=caller_tunnels, policy=_plain_policy())
    callee_cfg = plain("agent", fast_connect=False, h245_tunnelling=callee_tunnels, policy=_plain_policy())
    async with SignallingListener(callee_cfg) as listener:
        call = await place_call("127.0.0.1", listener.port, caller_cfg, CALLER_MEDIA)
        incoming = await listener.accept(T)
        await incoming.answer(CALLEE_MEDIA)
        connected = await until(call, Connected)
        assert not connected.fast_connect and connected.channels == ()
        opened = [await until(call, ChannelOpened) for _ in range(4)]
        assert {o.channel.direction for o in opened} == {"send", "receive"}
        assert all(o.channel.suite == "AEAD_AES_128_GCM" for o in opened)  # plaintext signalling: keys allowed
        assert call.separate_h245 and incoming.separate_h245
        assert call.security()["h245"] == "separate" and not call.tunnelling and not incoming.tunnelling
        while call.msd_status is None or incoming.msd_status is None:
            await asyncio.sleep(0.01)
        assert {call.msd_status, incoming.msd_status} == {"master", "slave"}
        await call.request_keyframe(opened[0].channel.number)
        await call.hangup()
        released = await drain(incoming)
        assert released.by_peer and released.normal
        await incoming.close()


def test_caller_without_tunnelling_announces_h245_address_in_setup() -> None:
    run(_h245_call(caller_tunnels=False, callee_tunnels=True))


def test_callee_without_tunnelling_makes_the_caller_follow() -> None:
    run(_h245_call(caller_tunnels=True, callee_tunnels=False))


def test_neither_tunnels() -> None:
    run(_h245_call(caller_tunnels=False, callee_tunnels=False))


async def _answer_without_tunnelling(peer: RawPeer, seen: list[str], *, startH245: bool) -> None:
    """A callee that refuses tunnelling and gives no h245Address; it connects to the caller's startH245 address."""
    setup = await peer.receive()
    assert setup is not None
    info = parse_user_information(setup.user_user or b"")
    uuie = asn1.encode_uuie(user_information(
        "connect", connect_uuie(call_id=info.call_id or bytes(16), conference_id=bytes(16),
                                fast_connect_refused=True), tunnelling=False))
    await peer.send_raw(Q931Message(MessageType.CONNECT, setup.call_reference, True, (user_user_ie(uuie),)).encode())
    message = await peer.receive()
    assert message is not None
    facility = parse_user_information(message.user_user or b"")
    seen.append(f"{message.name} {facility.facility_reason} tunnelling={facility.h245_tunnelling}")
    address = facility.h245_address
    assert address is not None and startH245
    reader, writer = await asyncio.open_connection(address.host, address.port)
    decoder = TpktDecoder()
    pending: list[bytes] = []
    writer.write(encode_tpkt(encode_h245(terminal_capability_set(1, [PCMU]))))
    writer.write(encode_tpkt(encode_h245(master_slave_determination(50, 1234))))
    while True:
        data = await asyncio.wait_for(reader.read(65536), T)
        if not data:
            break
        pending.extend(decoder.feed(data))
        seen.extend(parse_h245(p).name for p in pending)
        pending.clear()
        if "endSessionCommand" in seen:
            break
    writer.close()
    message = await peer.receive()  # vcore's ReleaseComplete
    seen.append(message.name if message is not None else "EOF")


def test_caller_offers_h245_address_when_callee_refuses_tunnelling_without_one() -> None:
    seen: list[str] = []

    async def scenario2() -> None:
        server, port = await raw_server(lambda p: _answer_without_tunnelling(p, seen, startH245=True))
        call = await place_call("127.0.0.1", port, plain("kiosk", policy=MediaPolicy((PCMU,), (), allow_plaintext=True)),
                                CALLER_MEDIA)
        await until(call, Connected)
        while "openLogicalChannel" not in seen:
            await asyncio.sleep(0.02)
        assert call.separate_h245 and not call.tunnelling
        await call.hangup()
        await stop(server)

    run(scenario2())
    assert seen[0] == "FACILITY startH245 tunnelling=False"
    for name in ("terminalCapabilitySet", "masterSlaveDetermination", "terminalCapabilitySetAck",
                 "masterSlaveDeterminationAck", "openLogicalChannel", "endSessionCommand"):
        assert name in seen, (name, seen)
    assert seen[-1] == "RELEASE_COMPLETE"


def test_connected_without_any_h245_path_fails_after_the_timers() -> None:
    async def mute_callee(peer: RawPeer) -> None:
        setup = await peer.receive()
        assert setup is not None
        info = parse_user_information(setup.user_user or b"")
        uuie = asn1.encode_uuie(user_information(
            "connect", connect_uuie(call_id=info.call_id or bytes(16), conference_id=bytes(16),
                                    fast_connect_refused=True), tunnelling=True))
        await peer.send_raw(Q931Message(MessageType.CONNECT, setup.call_reference, True,
                                        (user_user_ie(uuie),)).encode())
        while await peer.receive() is not None:
            pass

    async def scenario() -> None:
        server, port = await raw_server(mute_callee)
        call = await place_call("127.0.0.1", port, plain("kiosk", h245_timers=FAST), CALLER_MEDIA)
        await until(call, Connected)
        released = await drain(call)
        assert released.reason == "timeout" and released.cause == Cause.RECOVERY_ON_TIMER_EXPIRY
        assert released.detail.startswith("H.245: no answer to ")
        await stop(server)

    run(scenario())


# --------------------------------------------------------------------------- orderly release


def test_hangup_waits_for_the_peers_release_complete() -> None:
    """vcore keeps its end open until the peer answered its ReleaseComplete and closed: no RST either way."""
    outcome: list[str] = []

    async def polite_callee(peer: RawPeer) -> None:
        setup = await peer.receive()
        assert setup is not None
        info = parse_user_information(setup.user_user or b"")
        call_id = info.call_id or bytes(16)
        uuie = asn1.encode_uuie(user_information(
            "connect", connect_uuie(call_id=call_id, conference_id=bytes(16), fast_connect_refused=True)))
        await peer.send_raw(Q931Message(MessageType.CONNECT, setup.call_reference, True,
                                        (user_user_ie(uuie),)).encode())
        while True:
            message = await peer.receive()
            assert message is not None
            if message.message_type == MessageType.RELEASE_COMPLETE:
                break
        await asyncio.sleep(0.2)  # like H323Plus: its own ReleaseComplete a little later
        rc = asn1.encode_uuie(user_information("releaseComplete", release_complete_uuie(call_id=call_id)))
        try:
            await peer.send_raw(Q931Message(MessageType.RELEASE_COMPLETE, setup.call_reference, True,
                                            (cause_ie(Cause.NORMAL_CALL_CLEARING), user_user_ie(rc))).encode())
            outcome.append("sent")
            rest = await asyncio.wait_for(peer.reader.read(), T)  # vcore closes once it has read ours
            outcome.append(f"eof {len(rest)}")
        except (ConnectionResetError, BrokenPipeError) as exc:
            outcome.append(f"reset {exc!r}")

    async def scenario() -> None:
        server, port = await raw_server(polite_callee)
        call = await place_call("127.0.0.1", port, plain("kiosk"), CALLER_MEDIA)
        await until(call, Connected)
        await call.hangup()
        released = await drain(call)
        assert not released.by_peer
        await stop(server)

    run(scenario())
    assert outcome == ["sent", "eof 0"]


def test_released_event_is_last_and_nothing_is_left_running() -> None:
    async def scenario() -> None:
        async with SignallingListener(plain("agent", h245_tunnelling=False)) as listener:
            call = await place_call("127.0.0.1", listener.port, plain("kiosk"), CALLER_MEDIA)
            incoming = await listener.accept(T)
            await incoming.answer(CALLEE_MEDIA)
            await until(call, Connected)
            await incoming.hangup()
            events = []
            async for event in call:
                events.append(event)
            assert isinstance(events[-1], Released)
            assert not any(isinstance(e, ProtocolWarning) for e in events), events
            await call.close()

    run(scenario())


# --------------------------------------------------------------------------- early media


def test_fast_connect_answer_in_alerting_opens_receive_channels_before_connect() -> None:
    """The keys of what the caller receives are known at Alerting: its receive channels open then (early media)."""
    from vcore.h323.fast_connect import answer_offer, decode_proposals, encode_proposals
    from vcore.h323.messages import alerting_uuie

    async def early_callee(peer: RawPeer) -> None:
        setup = await peer.receive()
        assert setup is not None
        info = parse_user_information(setup.user_user or b"")
        answers, _ = answer_offer(decode_proposals(info.fast_start or ()), MediaPolicy((G722, H264_MODE1)),
                                  CALLEE_MEDIA)
        call_id = info.call_id or bytes(16)
        await peer.send(MessageType.ALERTING, setup.call_reference, True, "alerting",
                        alerting_uuie(call_id=call_id, fast_start=encode_proposals(answers)))
        await asyncio.sleep(0.2)
        await peer.send(MessageType.CONNECT, setup.call_reference, True, "connect",
                        connect_uuie(call_id=call_id, conference_id=bytes(16)))
        while await peer.receive() is not None:
            pass

    async def scenario() -> None:
        server, port = await raw_server(early_callee)
        call = await place_call("127.0.0.1", port, plain("kiosk"), CALLER_MEDIA)
        events = []
        while not events or not isinstance(events[-1], Connected):
            events.append(await call.next_event(T))
        early = [e.channel for e in events if isinstance(e, ChannelOpened)]
        assert sorted(c.session_id for c in early) == [1, 2] and all(c.direction == "receive" for c in early)
        assert all(c.srtp is not None for c in early)  # the caller's own proposal keys protect what it receives
        connected = events[-1]
        assert connected.fast_connect and set(early) <= set(connected.channels)
        await call.hangup()
        await stop(server)

    run(scenario())


# --------------------------------------------------------------------------- keys never on a plain H.245 connection


def test_tls_call_never_sends_keys_on_a_plain_h245_connection(tmp_path: Any) -> None:
    """Beside TLS signalling the separate H.245 connection is plain TCP: channels open only in plain RTP (where the
    policy allows it), never with an SRTP key on that connection."""
    from vcore import pki
    from vcore.h323.signalling import SignallingConfig

    from .test_h323_signalling import contexts

    ca = pki.CertificateAuthority.init(tmp_path / "ca", "Office CA")
    for name in ("agent-1", "kiosk-1"):
        ca.issue(name).save(tmp_path / f"{name}.pem")

    async def scenario(allow_plaintext: bool) -> None:
        server_ctx, client_ctx = contexts(tmp_path, "agent-1", "kiosk-1")
        policy = MediaPolicy((G722, PCMU), ("AEAD_AES_128_GCM",), allow_plaintext=allow_plaintext)
        callee = SignallingConfig("agent-1", allow_list=frozenset({"kiosk-1"}), fast_connect=False, policy=policy,
                                  h245_tunnelling=False, h245_timers=FAST)
        async with SignallingListener(callee, server_ctx) as listener:
            call = await place_call("127.0.0.1", listener.port,
                                    SignallingConfig("kiosk-1", fast_connect=False, policy=policy, h245_timers=FAST),
                                    CALLER_MEDIA, ssl_context=client_ctx)
            incoming = await listener.accept(T)
            await incoming.answer(CALLEE_MEDIA)
            await until(call, Connected)
            if allow_plaintext:
                opened = [await until(call, ChannelOpened) for _ in range(2)]
                assert all(o.channel.srtp is None and not o.channel.encrypted for o in opened)
                assert call.separate_h245 and call.security()["srtp_keys"].startswith("tls-protected (Fast Connect")
                await call.hangup()
            else:  # SRTP required and no key may travel: nothing opens, and the call ends saying why
                ends = [await drain(call), await drain(incoming)]  # whichever side's timer expires first
                assert any(r.reason == "timeout" and "no media channel opened" in r.detail for r in ends), ends
            await incoming.close()

    run(scenario(True))
    run(scenario(False))


# --------------------------------------------------------------------------- the H.224 data channel (H.323 Annex Q)


def _exchange(a: H245Control, b: H245Control, now: float = 0.0) -> tuple[list[Any], list[Any]]:
    """Carry PDUs both ways until both are quiet; returns every event of a and of b."""
    events_a: list[Any] = []
    events_b: list[Any] = []
    for _ in range(20):
        out_a, ev_a = a.take()
        out_b, ev_b = b.take()
        events_a += ev_a
        events_b += ev_b
        if not out_a and not out_b:
            break
        for pdu in out_a:
            b.receive(pdu, now)
        for pdu in out_b:
            a.receive(pdu, now)
    return events_a, events_b


DATA_A = {**CALLER_MEDIA, 3: (Address("127.0.0.1", 5004), Address("127.0.0.1", 5005))}
DATA_B = {**CALLEE_MEDIA, 3: (Address("127.0.0.1", 6004), Address("127.0.0.1", 6005))}


def _controls(a_policy: MediaPolicy, b_policy: MediaPolicy) -> tuple[H245Control, H245Control]:
    a, b = H245Control(a_policy, caller=True), H245Control(b_policy, caller=False)
    a.endpoints, b.endpoints = DATA_A, DATA_B
    a.start(0.0)
    b.start(0.0)
    a.connected(0.0, fast_connect=True)  # audio and video came with Fast Connect: data still opens with H.245
    b.connected(0.0, fast_connect=True)
    return a, b


def test_h224_data_channels_open_both_ways_with_h235_8_keys() -> None:
    policy = MediaPolicy((H264_MODE1, PCMU), ("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"), h224=True)
    tcs = terminal_capability_set(1, policy.formats, policy.suites, h224=True)[1][1]
    peer = PeerCapabilities.parse(asn1.decode_h245(asn1.encode_h245(("request", ("terminalCapabilitySet", tcs))))
                                  [1][1])
    assert peer.h224 is not None and peer.h224.kind == "data" and not peer.legacy_keys
    assert len(tcs["capabilityDescriptors"][0]["simultaneousCapabilities"]) == 3  # audio, video, data
    a, b = _controls(policy, policy)
    ev_a, ev_b = _exchange(a, b)
    for events, control, local in ((ev_a, a, DATA_A), (ev_b, b, DATA_B)):
        data = [e.channel for e in events if isinstance(e, ChannelOpened) and e.channel.format.kind == "data"]
        assert {c.direction for c in data} == {"send", "receive"}, events
        send = next(c for c in data if c.direction == "send")
        receive = next(c for c in data if c.direction == "receive")
        assert send.session_id == receive.session_id == 3 and send.format.payload_type == 100
        assert send.suite == receive.suite == "AEAD_AES_128_GCM" and send.srtp != receive.srtp
        assert receive.local_rtp == local[3][0] and send.remote_rtp is not None
        assert not [e for e in events if isinstance(e, ProtocolWarning)], events
    # each side's send key is what the other receives with
    key_a = next(e.channel.srtp for e in ev_a if isinstance(e, ChannelOpened) and e.channel.direction == "send")
    key_b = next(e.channel.srtp for e in ev_b if isinstance(e, ChannelOpened) and e.channel.direction == "receive")
    assert key_a == key_b


def test_h224_needs_both_sides_and_a_common_suite() -> None:
    offered = MediaPolicy((H264_MODE1, PCMU), ("AEAD_AES_128_GCM",), h224=True)
    a, b = _controls(offered, MediaPolicy((H264_MODE1, PCMU), ("AEAD_AES_128_GCM",)))  # b: no H.224
    ev_a, ev_b = _exchange(a, b)
    assert not [e for e in ev_a + ev_b if isinstance(e, ChannelOpened)]
    plain_only = MediaPolicy((H264_MODE1, PCMU), (), allow_plaintext=True, h224=True)
    a, b = _controls(offered, plain_only)  # no suite in common: no data channel, and no plaintext one either
    ev_a, ev_b = _exchange(a, b)
    assert not [e for e in ev_a + ev_b if isinstance(e, ChannelOpened)]
    a, b = _controls(plain_only, plain_only)
    ev_a, _ = _exchange(a, b)
    data = [e.channel for e in ev_a if isinstance(e, ChannelOpened)]
    assert {(c.direction, c.format.name, c.suite) for c in data} == {("send", "H224", None), ("receive", "H224", None)}
