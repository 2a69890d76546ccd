"""Wireshark's dissectors accept every message vcore sends: capture loopback calls with tshark and check.

Needs the Debian package ``tshark`` (and capture rights on ``lo``: root, or dumpcap's capabilities).
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import require_tool
from vcore.h323.messages import Address
from vcore.h323.signalling import (
    ChannelOpened,
    KeyframeRequested,
    Released,
    SignallingConfig,
    SignallingListener,
    place_call,
)

pytestmark = pytest.mark.interop

A = Address
CALLER_MEDIA = {1: (A("127.0.0.1", 5000), A("127.0.0.1", 5001)), 2: (A("127.0.0.1", 5002), A("127.0.0.1", 5003))}
CALLEE_MEDIA = {1: (A("127.0.0.1", 6000), A("127.0.0.1", 6001)), 2: (A("127.0.0.1", 6002), A("127.0.0.1", 6003))}
READ_OPTS = ["-o", "tcp.try_heuristic_first:TRUE"]  # H.225.0 on ephemeral ports: Q.931-over-TPKT heuristic


def _start_capture(tshark: str, ports: list[int], out: Path, flt: str = "") -> subprocess.Popen[bytes]:
    flt = flt or " or ".join(f"tcp port {p}" for p in ports)
    proc = subprocess.Popen([tshark, "-i", "lo", "-f", flt, "-w", str(out), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 30
    while b"Capturing on" not in seen:
        ready, _, _ = select.select([proc.stderr], [], [], max(deadline - time.monotonic(), 0))
        chunk = os.read(proc.stderr.fileno(), 4096) if ready else b""
        if not chunk:
            proc.kill()
            proc.wait()
            proc.stderr.close()
            pytest.skip(f"tshark cannot capture on lo: {seen.decode(errors='replace').strip()[-200:]}")
        seen += chunk
    time.sleep(0.5)  # dumpcap reports before its filter is attached: let it settle
    return proc


def _stop_capture(proc: subprocess.Popen[bytes]) -> None:
    time.sleep(0.5)  # let the last segments reach the capture
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    finally:
        if proc.stderr is not None:
            proc.stderr.close()


async def _calls(tshark: str, out: Path) -> list[int]:
    """Run the calls under capture; returns the ports of the test's hand-made peers (their bytes are not vcore's)."""
    open_agent = SignallingConfig("agent", allow_plaintext_signalling=True)
    picky_agent = SignallingConfig("agent", allow_plaintext_signalling=True, allow_list=frozenset({"kiosk-1"}))
    kiosk = SignallingConfig("kiosk", allow_plaintext_signalling=True, display_name="Kiosk 1")
    from .test_h323_signalling import RawPeer, odd_h245_peer, raw_server, stop

    from vcore.h323.messages import call_proceeding_uuie
    from vcore.h323.q931 import MessageType, Q931Message

    replies: list[str] = []

    async def status_then_silence(peer: RawPeer) -> None:
        setup = await peer.receive()
        assert setup is not None
        crv = setup.call_reference
        await peer.send(MessageType.CALL_PROCEEDING, crv, True, "callProceeding",
                        call_proceeding_uuie(call_id=bytes(16)))
        await peer.send_raw(Q931Message(MessageType.STATUS_ENQUIRY, crv, True).encode())
        await peer.send_raw(Q931Message(0x33, crv, True).encode())
        while await peer.receive() is not None:
            pass

    odd, odd_port = await raw_server(lambda peer: odd_h245_peer(peer, replies))
    quiet, quiet_port = await raw_server(status_then_silence)
    async with SignallingListener(open_agent) as listener, SignallingListener(picky_agent) as picky:
        proc = _start_capture(tshark, [listener.port, picky.port, odd_port, quiet_port], out)
        try:
            # 0. vcore answering a peer's odd tunnelled H.245 (OLC Reject, RTD response, FunctionNotUnderstood),
            #    then Status messages and a ReleaseComplete after a timeout.
            call = await place_call("127.0.0.1", odd_port, kiosk, CALLER_MEDIA)
            await call.wait_connected(10)
            await asyncio.sleep(0.2)
            await call.hangup()
            call = await place_call("127.0.0.1", quiet_port, SignallingConfig(
                "kiosk", allow_plaintext_signalling=True, answer_timeout=0.5), CALLER_MEDIA)
            assert (await _released(call)).reason == "timeout"
            await stop(odd)
            await stop(quiet)
            # 1. Fast Connect: Setup with fastStart and tunnelled TCS/MSD, CallProceeding, Alerting, Connect,
            #    tunnelled acks, videoFastUpdatePicture, flowControlCommand, CloseLogicalChannel, EndSession.
            call = await place_call("127.0.0.1", listener.port, kiosk, CALLER_MEDIA, destination=["agent", "1234"])
            incoming = await listener.accept(10)
            await incoming.alert()
            channels = await incoming.answer(CALLEE_MEDIA)
            connected = await call.wait_connected(10)
            video = next(c for c in connected.channels if c.direction == "send" and c.session_id == 2)
            await incoming.request_keyframe(video.number)
            await incoming.limit_bitrate(512_000, video.number)
            await incoming.close_channel(next(c.number for c in channels if c.direction == "send"))
            while not isinstance(await call.next_event(10), KeyframeRequested):
                pass
            await call.hangup()
            await _released(incoming)
            # 2. No Fast Connect: H.245 procedures open the channels (OLC/OLC Ack), the callee hangs up.
            call = await place_call("127.0.0.1", listener.port,
                                    SignallingConfig("kiosk", allow_plaintext_signalling=True, fast_connect=False),
                                    CALLER_MEDIA)
            incoming = await listener.accept(10)
            await incoming.answer(CALLEE_MEDIA)
            assert not (await call.wait_connected(10)).fast_connect
            opened = 0
            while opened < 4:
                event = await call.next_event(10)
                opened += isinstance(event, ChannelOpened)
            await incoming.hangup()
            await _released(call)
            # 3. A caller not on the allow-list: ReleaseComplete with securityDenied and nothing else.
            call = await place_call("127.0.0.1", picky.port, kiosk, CALLER_MEDIA)
            assert (await _released(call)).reason == "securityDenied"
        finally:
            _stop_capture(proc)
    return [odd_port, quiet_port]


async def _released(session) -> Released:  # type: ignore[no-untyped-def]
    while True:
        event = await session.next_event(10)
        if isinstance(event, Released):
            await session.close()
            return event


def test_wireshark_decodes_every_message(tmp_path: Path) -> None:
    tshark = require_tool("tshark")
    out = tmp_path / "h323.pcapng"
    foreign = asyncio.run(_calls(tshark, out))
    vcore_sent = " && ".join(f"tcp.srcport != {port}" for port in foreign)
    errors = subprocess.run([tshark, "-r", str(out), *READ_OPTS, "-Y",
                             f"(_ws.malformed || _ws.expert.severity >= error) && ({vcore_sent})"],
                            capture_output=True, text=True, timeout=120)
    assert errors.returncode == 0, errors.stderr
    assert errors.stdout.strip() == ""
    text = subprocess.run([tshark, "-r", str(out), *READ_OPTS, "-Y", vcore_sent, "-V"], capture_output=True,
                          text=True, timeout=120).stdout
    assert "Malformed" not in text and "Expert Info (Error" not in text and "Expert Info (Warning" not in text
    bodies = set(re.findall(r"h323-message-body: (\w+) \(", text))
    assert bodies == {"setup", "callProceeding", "alerting", "connect", "releaseComplete", "empty"}
    assert "Cause value: Recovery on timer expiry (102)" in text
    h245 = set(re.findall(r"^\s+(?:request|response|command|indication): (\w+) \(", text, re.M))
    assert h245 >= {
        "terminalCapabilitySet", "terminalCapabilitySetAck", "masterSlaveDetermination",
        "masterSlaveDeterminationAck", "openLogicalChannel", "openLogicalChannelAck", "closeLogicalChannel",
        "closeLogicalChannelAck", "endSessionCommand", "miscellaneousCommand", "flowControlCommand",
        "openLogicalChannelReject", "roundTripDelayResponse", "functionNotUnderstood",
    }
    assert "Message type: STATUS (0x7d)" in text and "Cause value: Message type non-existent or not implemented (97)" in text
    assert "videoFastUpdatePicture" in text
    assert "standard: 0.0.8.241.0.0.1 (h264 generic-capabilities)" in text
    assert "Profile: 0x40, Baseline Profile" in text and "unsignedMin: 71 - Level 3.1" in text
    assert "oid: 0.0.8.241.0.0.0.1 (iPpacketization_RFC3984NonInterleaved)" in text
    assert "standard: 0.0.8.235.0.4.90" in text  # H.235.8 SrtpCryptoCapability (genericH235SecurityCapability)
    assert "encryptionCapability" not in text  # nothing vcore-specific beside it
    assert "g711Ulaw64k" in text and "g711Alaw64k" in text and "g722-64k" in text
    assert "reason: securityDenied" in text
    assert text.count("fastStart:") >= 2


async def _ras_exchange(tshark: str, out: Path) -> int:
    from .test_h323_ras import CALL_ID, CONF_ID, FakeGatekeeper  # the in-process gatekeeper

    from vcore.h323.ras import RasClient, RasRejected

    loop = asyncio.get_running_loop()
    transport, gk = await loop.create_datagram_endpoint(FakeGatekeeper, local_addr=("127.0.0.1", 0))
    port = gk.port
    flt = f"udp port {port}"
    proc = _start_capture(tshark, [], out, flt)
    try:
        async with RasClient(A("127.0.0.1", port), A("127.0.0.1", 1720), ["kiosk-1", "100"]) as ras:
            await ras.discover()
            await ras.register(time_to_live=1)
            await asyncio.sleep(0.7)  # one keep-alive RRQ
            await ras.admit(call_id=CALL_ID, conference_id=CONF_ID, call_reference=9, destination=["agent"])
            try:
                await ras.admit(call_id=CALL_ID, conference_id=CONF_ID, call_reference=10, destination=["x"])
            except RasRejected:
                pass
            await ras.disengage(call_id=CALL_ID, conference_id=CONF_ID, call_reference=9, answered=False)
            await ras.unregister()
    finally:
        _stop_capture(proc)
        transport.close()
    return port


def test_wireshark_decodes_ras(tmp_path: Path) -> None:
    tshark = require_tool("tshark")
    out = tmp_path / "ras.pcapng"
    port = asyncio.run(_ras_exchange(tshark, out))
    opts = ["-d", f"udp.port=={port},h225"]
    errors = subprocess.run([tshark, "-r", str(out), *opts, "-Y", "_ws.malformed || _ws.expert.severity >= error"],
                            capture_output=True, text=True, timeout=120)
    assert errors.returncode == 0, errors.stderr
    assert errors.stdout.strip() == ""
    text = subprocess.run([tshark, "-r", str(out), *opts, "-V"], capture_output=True, text=True, timeout=120).stdout
    assert "Malformed" not in text and "Expert Info (Error" not in text and "Expert Info (Warning" not in text
    names = set(re.findall(r"RasMessage: (\w+) \(", text))
    assert names == {"gatekeeperRequest", "gatekeeperConfirm", "registrationRequest", "registrationConfirm",
                     "admissionRequest", "admissionConfirm", "admissionReject", "disengageRequest",
                     "disengageConfirm", "unregistrationRequest", "unregistrationConfirm"}
    assert "keepAlive: True" in text
