"""Kiosk calls agent over mutual TLS + SRTP on 127.0.0.1: both decode, stats, events, clean teardown."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from .call_helpers import T, make_pki, run, terminal, until, wait_for


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_kiosk_calls_agent_tls_srtp(pki_dir: Path, tmp_path: Path) -> None:
    record = tmp_path / "agent.mp4"

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, allow=["Murat kiosk"], rtcp_interval=0.3)
        kiosk = terminal(pki_dir, "Murat kiosk", rtcp_interval=0.3)
        async with agent, kiosk:
            incoming_task = asyncio.ensure_future(_first(agent.incoming()))
            call = await kiosk.call(agent.uri, record=None)
            await asyncio.wait_for(call.connected, T)
            incoming = await asyncio.wait_for(incoming_task, T)
            assert incoming.answered and incoming.caller == "Murat kiosk"
            answered = incoming.call
            await until(call, "media-started")
            await until(answered, "media-started")
            await wait_for(lambda: all(c.first_frame_at for c in (call, answered)))
            # keyframe request over H.245 reaches the agent's encoder
            await call.request_keyframe()
            await until(answered, "keyframe-requested")
            await call.limit_bitrate(200_000)
            changed = await until(answered, "bitrate-changed")
            assert changed.bitrate == 200_000 and changed.by_peer
            await asyncio.sleep(1.0)
            stats = call.stats()
            assert stats.signalling == "tls" and stats.media_encrypted and not stats.warnings
            assert stats.peer == "CAF agent"
            video_in = stats.stream("video", "receive")
            audio_in = stats.stream("audio", "receive")
            video_out = stats.stream("video", "send")
            assert video_in and audio_in and video_out
            assert video_in.cipher_suite == "AEAD_AES_128_GCM" and video_in.codec == "H264"
            assert video_in.packets > 0 and video_in.fps is not None and video_in.playout_delay is not None
            assert video_in.dropped == 0 and audio_in.packets > 0
            await wait_for(lambda: call.stats().stream("video", "send").rtt is not None)  # RRs came back
            await wait_for(lambda: call.stats().lip_sync is not None)  # both streams' SRs arrived
            assert abs(call.stats().lip_sync or 0.0) < 1.0  # same capture clock on both streams
            a_stats = answered.stats()
            assert a_stats.peer == "Murat kiosk" and a_stats.stream("video", "receive").packets > 0
            await call.hangup()
            ended = await answered.wait_ended(T)
            assert call.ended is not None and call.ended.reason == "hangup" and not call.ended.by_peer
            assert ended.reason == "hangup" and ended.by_peer
            kinds = [e.kind async for e in call.events()]
            assert kinds[0] in ("ringing", "connected") and kinds[-1] == "ended"
            assert "connected" in kinds and "media-started" in kinds
            await call.hangup()  # idempotent

    run(scenario())


async def _first(it: Any) -> Any:
    async for item in it:
        return item


def test_incoming_answer_records_and_reject_busy(pki_dir: Path, tmp_path: Path) -> None:
    record = tmp_path / "agent.mp4"

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent")
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False)
        async with agent, kiosk:
            it = agent.incoming()
            # first call: rejected busy
            call = await kiosk.call(agent.uri)
            incoming = await asyncio.wait_for(it.__anext__(), T)
            assert not incoming.answered
            await until(call, "ringing")
            await incoming.reject("busy")
            ended = await call.wait_ended(T)
            assert ended.reason == "busy" and ended.by_peer and ended.cause == 17
            with pytest.raises(Exception, match="busy"):
                await call.connected
            # second call: answered with a recording
            call = await kiosk.call(agent.uri)
            incoming = await asyncio.wait_for(it.__anext__(), T)
            answered = await incoming.answer(record=record)
            await asyncio.wait_for(call.connected, T)
            await until(answered, "media-started")
            await wait_for(lambda: answered.stats().stream("video", "receive").packets > 30)
            await answered.hangup()
            assert (await call.wait_ended(T)).reason == "hangup"
            await it.aclose()
        assert record.stat().st_size > 0
        import av

        with av.open(str(record)) as f:
            kinds = sorted(s.type for s in f.streams)
        assert kinds == ["audio", "video"]

    run(scenario())


def test_no_leaks_after_terminal_close(pki_dir: Path) -> None:
    """Closing the terminals mid-call ends the calls and leaves no task, thread or socket."""

    def open_fds() -> int:
        import os

        return len(os.listdir("/proc/self/fd"))

    async def scenario() -> None:
        fds = open_fds()
        agent = terminal(pki_dir, "CAF agent", auto_answer=True)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False)
        await agent.start()
        await kiosk.start()
        call = await kiosk.call(agent.uri)
        await asyncio.wait_for(call.connected, T)
        await until(call, "media-started")
        await kiosk.close()
        assert call.ended is not None and call.ended.reason == "terminal-closed"
        await agent.close()
        await asyncio.sleep(0.1)
        assert open_fds() <= fds, "sockets left open"

    run(scenario())


def test_camera_presets_local_and_remote(pki_dir: Path) -> None:
    """The kiosk recalls its presets; the agent steers the kiosk's camera over the call (H.245 user input)."""
    from vcore.visca import CameraEmulator, ViscaCamera

    async def scenario() -> None:
        emu = CameraEmulator(speed_factor=50.0)
        cam = await ViscaCamera.open_ip("127.0.0.1", await emu.start_udp("127.0.0.1", 0))
        try:
            await cam.power(True)
            for number, (pan, tilt) in {1: (0, 120), 2: (300, -400)}.items():
                await cam.pan_tilt_to(pan, tilt)
                await cam.preset_set(number)
            agent = terminal(pki_dir, "CAF agent", auto_answer=True)
            kiosk = terminal(pki_dir, "Murat kiosk", listen=False, camera=cam, remote_camera=True)
            async with agent, kiosk:
                call = await kiosk.call(agent.uri)
                await asyncio.wait_for(call.connected, T)
                await call.camera_preset(1)
                assert await cam.pan_tilt_position() == (0, 120)
                answered = agent.calls[0]
                await answered.remote_camera_preset(2)
                event = await until(call, "camera-control")
                assert event.preset == 2 and event.applied, event
                assert await cam.pan_tilt_position() == (300, -400)
                # the agent has no camera: a request to it is refused and said so
                await call.remote_camera_preset(1)
                refused = await until(answered, "camera-control")
                assert not refused.applied and refused.detail == "no camera"
                await call.hangup()
        finally:
            await cam.close()
            await emu.stop()

    run(scenario())


@pytest.mark.parametrize("side", ["caller", "callee"])
def test_call_without_fast_connect_uses_h245_procedures(pki_dir: Path, side: str) -> None:
    """Channels opened by H.245 OpenLogicalChannel get the same media (keys, senders, receivers)."""

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, fast_connect=side != "callee")
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, fast_connect=side != "caller")
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            await until(call, "media-started")
            answered = agent.calls[0]
            await until(answered, "media-started")
            stats = call.stats()
            assert {(s.stream, s.direction) for s in stats.streams} == {
                ("audio", "send"), ("audio", "receive"), ("video", "send"), ("video", "receive")}
            assert stats.media_encrypted
            await call.hangup()

    run(scenario())


@pytest.mark.parametrize("suites, expected", [
    (("AES_CM_128_HMAC_SHA1_80",), "AES_CM_128_HMAC_SHA1_80"),
    (("AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"), "AES_CM_128_HMAC_SHA1_80"),
    (("AEAD_AES_256_GCM", "AEAD_AES_128_GCM"), "AEAD_AES_256_GCM"),
])
def test_srtp_suite_negotiation(pki_dir: Path, suites: tuple[str, ...], expected: str) -> None:
    """The callee picks its most preferred suite among the caller's; media flows under it both ways."""

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, suites=suites)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False,
                         suites=("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM"))
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            await wait_for(lambda: call.stats().stream("video", "receive").frames > 0)
            assert {s.cipher_suite for s in call.stats().streams} == {expected}
            await wait_for(lambda: agent.calls[0].stats().stream("video", "receive").frames > 0)
            assert all(s.dropped == 0 for s in call.stats().streams)
            await call.hangup()

    run(scenario())


def test_capture_time_extension_only_with_the_latency_probe(pki_dir: Path) -> None:
    """No unnegotiated RTP header extension by default (issue 14 finding 5); the probe is there when asked.

    The agent listens for the probe's extension (``latency_probe=True``): from a default kiosk it finds none,
    so no latency can be measured; from a kiosk with the probe on, it can.
    """
    async def latency_at_agent(kiosk_probe: bool) -> float | None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, latency_probe=True)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, latency_probe=kiosk_probe)
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            await wait_for(lambda: bool(agent.calls) and agent.calls[0].stats().stream("video", "receive") is not None
                           and agent.calls[0].stats().stream("video", "receive").frames > 5)
            latency = agent.calls[0].stats().stream("video", "receive").latency_p50
            await call.hangup()
            return latency

    async def scenario() -> None:
        assert await latency_at_agent(False) is None
        assert await latency_at_agent(True) is not None

    run(scenario())


def test_calls_between_vcore_terminals_are_congestion_controlled(pki_dir: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, allow=["Murat kiosk"], bitrate=800_000)
        kiosk = terminal(pki_dir, "Murat kiosk", bitrate=800_000, start_bitrate=200_000)
        async with agent, kiosk:
            incoming_task = asyncio.ensure_future(_first(agent.incoming()))
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            answered = (await asyncio.wait_for(incoming_task, T)).call
            await until(call, "media-started")
            # the agent sees a vcore peer (its H.225.0 productId) and sends RFC 8888 feedback...
            rx = answered._media.video_rx
            await wait_for(lambda: rx.feedback is not None and rx.feedback_sent > 5)
            # ...which drives the kiosk's controller, pacer and encoder
            tx = call._media.video_tx
            assert tx.congestion is not None and tx.pacer is not None and tx.ladder is not None
            await wait_for(lambda: tx.congestion.queue_delay is not None)
            out = call.stats().stream("video", "send")
            assert out is not None and out.target_bitrate is not None and 100_000 <= out.target_bitrate <= 800_000
            assert out.size is not None and out.size.count("x") == 1 and "@" in out.size
            # H.245 flow control from the agent caps the kiosk's controller, never below the floor
            await answered.limit_bitrate(1000)
            await until(call, "bitrate-changed")
            assert tx.congestion.limit == 64_000 and tx.congestion.target <= 100_000
            await call.hangup()

    run(scenario())


def test_congestion_control_can_be_turned_off(pki_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, allow=["Murat kiosk"])
        kiosk = terminal(pki_dir, "Murat kiosk", congestion_control=False)
        async with agent, kiosk:
            incoming_task = asyncio.ensure_future(_first(agent.incoming()))
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            await asyncio.wait_for(incoming_task, T)
            await until(call, "media-started")
            tx = call._media.video_tx
            assert tx.congestion is None and tx.pacer is None
            assert call.stats().stream("video", "send").target_bitrate is None
            await call.hangup()

    with caplog.at_level("WARNING"):
        run(scenario())
    assert "congestion control off" in caplog.text


@pytest.mark.parametrize("kw, match", [({"bitrate": 10}, "out of range"), ({"start_bitrate": 0}, "positive")])
def test_bad_bitrates_are_refused(pki_dir: Path, kw: dict[str, Any], match: str) -> None:
    import vcore

    with pytest.raises(vcore.CallError, match=match):
        terminal(pki_dir, "Murat kiosk", **kw)


def test_the_callers_display_name_reaches_the_agent_with_its_accents(pki_dir: Path) -> None:
    """Issue 15, 9: a non-ASCII name dropped the connection or arrived as '?'; now H.225.0 displayName carries it."""
    name = "Maison des services de Murat — Hélène"

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent")
        kiosk = terminal(pki_dir, name, pem="Murat kiosk", listen=False)
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            incoming = await asyncio.wait_for(agent.incoming().__anext__(), T)
            assert incoming.display_name == name and incoming.caller == "Murat kiosk"
            answered = await incoming.answer()
            await asyncio.wait_for(call.connected, T)
            await call.hangup()
            await answered.wait_ended(T)

    run(scenario())
