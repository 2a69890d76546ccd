"""Congestion control in the real pipeline: sender, pacer, RFC 8888 feedback and receiver over UDP.

The thin line is :class:`vcore.testing.netem.UdpRelay` on 127.0.0.1: a
512 kbit/s link with a 300 ms drop-tail queue (an ADSL uplink), in this
process. Assertions are on what the controller and the line did, never on how
long the test took.
"""

from __future__ import annotations

import asyncio
import math

import pytest

from vcore.jitter import VideoJitterBuffer
from vcore.media import H264Encoder, TestPattern, VideoReceiver, VideoSender
from vcore.media.adaptation import QualityLadder
from vcore.nack import RetransmissionHistory
from vcore.rtp.rtcp import RtcpTmmbn, RtcpTmmbr
from vcore.testing.netem import NetworkEmulator, UdpRelay
from vcore.transport import CongestionController, FeedbackRecorder
from vcore.transport.probe import PROBE_DURATION, PROBE_MIN_PACKETS

LINK = 512_000


async def _call_over_adsl(seconds: float, *, congestion: bool) -> tuple[VideoSender, VideoReceiver, NetworkEmulator,
                                                                         list[int]]:
    rx = VideoReceiver(assembler=VideoJitterBuffer(nack=True, max_delay=0.5), capture_time_ext_id=None)
    rx.rtcp_interval = 0.5
    if congestion:
        rx.feedback = FeedbackRecorder()
    await rx.start()
    up = NetworkEmulator(seed=1, rate=LINK, queue_bytes=LINK // 8 * 3 // 10, delay=0.02)
    relay = UdpRelay(rx.local_address, up, NetworkEmulator(seed=2, delay=0.02))
    await relay.start()
    enc = H264Encoder(1280, 720, 30, 300_000 if congestion else 1_500_000, max_bitrate=1_500_000, idr_interval=20)
    tx = VideoSender(TestPattern(1280, 720, 30, pattern="testsrc2"), enc, relay.address, capture_time_ext_id=None)
    tx.history = RetransmissionHistory(1024, max_age=1.0)
    if congestion:
        tx.congestion = CongestionController(start_bitrate=300_000, max_bitrate=1_500_000)
        tx.ladder = QualityLadder(1280, 720, 30)
    await tx.start()
    targets = []
    try:
        for _ in range(int(seconds * 2)):
            await asyncio.sleep(0.5)
            if tx.congestion is not None:
                targets.append(tx.congestion.target)
    finally:
        await tx.close()
        await asyncio.sleep(0.1)
        await rx.close()
        relay.close()
    return tx, rx, up, targets


def test_the_sender_fits_its_video_to_a_thin_uplink() -> None:
    tx, rx, link, targets = asyncio.run(_call_over_adsl(12.0, congestion=True))
    assert rx.feedback is not None and rx.feedback_sent > 50  # ~10 reports a second
    assert tx.congestion is not None and tx.pacer is not None
    late = targets[len(targets) // 2:]
    assert max(late) < 1.5 * LINK, f"the target stays far above the line: {late}"
    assert min(late) > 0.3 * LINK, f"the target collapsed: {late}"
    assert tx.encoder.width < 1280  # the ladder took a smaller picture for ~500 kbit/s
    # the line's queue overflowed on fewer than 3 % of the packets (without control: see below)
    assert link.stats.queue_drops < 0.03 * max(1, link.stats.sent), link.stats
    assert rx.frames > 60


def test_without_control_the_same_line_overflows() -> None:
    # The reference for the test above: 1.5 Mbit/s into 512 kbit/s loses a third of the packets.
    tx, rx, link, _ = asyncio.run(_call_over_adsl(6.0, congestion=False))
    assert tx.pacer is None
    assert link.stats.queue_drops > 0.2 * link.stats.sent


def test_tmmbr_caps_the_sender_and_is_answered_with_tmmbn() -> None:
    async def main() -> tuple[list[object], int, int]:
        seen: list[object] = []
        rx = VideoReceiver(capture_time_ext_id=None)
        await rx.start()
        enc = H264Encoder(320, 240, 15, 300_000, max_bitrate=800_000)
        tx = VideoSender(TestPattern(320, 240, 15), enc, rx.local_address, capture_time_ext_id=None)
        tx.congestion = CongestionController(start_bitrate=600_000, max_bitrate=800_000)
        await tx.start()
        assert rx.transport is not None
        rx.transport.add_rtcp_listener(lambda packets, addr: seen.extend(packets))
        for _ in range(100):
            await asyncio.sleep(0.02)
            if rx.stats is not None:
                break
        rx.transport.send_rtcp([RtcpTmmbr(rx.ssrc, [(tx.ssrc, 200_000, 40)])])
        for _ in range(100):
            await asyncio.sleep(0.02)
            if any(isinstance(p, RtcpTmmbn) for p in seen):
                break
        target = tx.congestion.target
        bitrate = enc.bitrate
        await tx.close()
        await rx.close()
        return seen, target, bitrate

    seen, target, bitrate = asyncio.run(main())
    answers = [p for p in seen if isinstance(p, RtcpTmmbn)]
    assert answers and answers[0].entries[0][1] == 200_000
    assert target <= 200_000 and bitrate <= 200_000


@pytest.mark.parametrize("kind", ["pli", "fir", "h245"])
def test_keyframe_requests_are_rate_limited(kind: str) -> None:
    """RTCP PLI/FIR and H.245 videoFastUpdatePicture (which ``Call`` hands to ``answer_keyframe_request``)."""
    from vcore.rtp.rtcp import RtcpFir, RtcpPli

    async def main() -> tuple[int, int]:
        rx = VideoReceiver(capture_time_ext_id=None)
        await rx.start()
        tx = VideoSender(TestPattern(320, 240, 15), H264Encoder(320, 240, 15, 200_000), rx.local_address,
                         capture_time_ext_id=None)
        await tx.start()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if rx.stats is not None:
                break
        assert rx.transport is not None
        for i in range(10):  # a burst of requests, as a lossy line makes them
            if kind == "h245":
                tx.answer_keyframe_request()
                continue
            packet = RtcpPli(rx.ssrc, tx.ssrc) if kind == "pli" else RtcpFir(rx.ssrc, [(tx.ssrc, i)])
            rx.transport.send_rtcp([packet])
        await asyncio.sleep(0.2)
        result = (tx.keyframe_requests, tx.keyframe_requests_ignored)
        await tx.close()
        await rx.close()
        return result

    answered, ignored = asyncio.run(main())
    assert answered == 1 and ignored == 9


def test_a_hostile_tmmbr_of_zero_does_not_stop_the_video() -> None:
    async def main() -> tuple[int, int]:
        rx = VideoReceiver(capture_time_ext_id=None)
        await rx.start()
        enc = H264Encoder(320, 240, 15, 300_000)
        tx = VideoSender(TestPattern(320, 240, 15), enc, rx.local_address, capture_time_ext_id=None)
        await tx.start()  # no congestion control: the limit goes to the encoder directly
        assert rx.transport is not None
        for _ in range(100):
            await asyncio.sleep(0.02)
            if rx.stats is not None:
                break
        rx.transport.send_rtcp([RtcpTmmbr(rx.ssrc, [(tx.ssrc, 0, 0)])])
        for _ in range(100):
            await asyncio.sleep(0.02)
            if tx.tmmbr_limit is not None:
                break
        result = (tx.tmmbr_limit or 0, enc.bitrate)
        await tx.close()
        await rx.close()
        return result

    limit, bitrate = asyncio.run(main())
    assert limit == 1 and bitrate == 64_000


async def _controlled_sender() -> tuple[VideoReceiver, H264Encoder, VideoSender]:
    """A congestion-controlled sender to a receiver on loopback, past its first report and start-up reopen."""
    rx = VideoReceiver(capture_time_ext_id=None)
    await rx.start()
    enc = H264Encoder(320, 240, 15, 300_000, max_bitrate=800_000)
    tx = VideoSender(TestPattern(320, 240, 15), enc, rx.local_address, capture_time_ext_id=None)
    tx.congestion = CongestionController(start_bitrate=300_000, max_bitrate=800_000)
    await tx.start()
    for _ in range(200):
        await asyncio.sleep(0.02)
        if rx.stats is not None and not enc.keyframe_pending:
            break
    return rx, enc, tx


async def _send_pli(rx: VideoReceiver, tx: VideoSender) -> None:
    from vcore.rtp.rtcp import RtcpPli

    assert rx.transport is not None
    rx.transport.send_rtcp([RtcpPli(rx.ssrc, tx.ssrc)])
    for _ in range(100):
        await asyncio.sleep(0.01)
        if tx.keyframe_requests:
            break


def test_a_keyframe_request_waits_for_a_deep_modem_queue_to_drain() -> None:
    """Issue 16: an IDR sent into a deep queue (a capacity drop) arrives late or is dropped; it waits for the drain."""

    async def main() -> tuple[int, bool, int, bool]:
        rx, enc, tx = await _controlled_sender()
        assert tx.congestion is not None
        tx.congestion.queue_delay = 0.3  # as the controller measures it after a drop
        before = enc.reopens
        await _send_pli(rx, tx)
        held = (enc.reopens - before, enc.keyframe_pending)
        tx.congestion.queue_delay = 0.0  # drained: the next look at the queue sends it
        await asyncio.sleep(0.4)
        result = (held[0], held[1], tx.keyframe_requests, enc.reopens - before == 1)
        await tx.close()
        await rx.close()
        return result

    reopened, pending_while_deep, answered, pending_after = asyncio.run(main())
    assert answered == 1
    assert reopened == 0 and not pending_while_deep  # not while the queue was deep
    assert pending_after  # the keyframe went once it drained


def test_a_deferred_keyframe_goes_once_the_queue_should_have_drained_and_no_picture_waits_before_it() -> None:
    """Issue 16: no feedback may come while the queue drains (nothing is sent); the keyframe goes anyway.

    While it waits no picture is encoded (the receiver cannot decode one before the keyframe, and each
    would slow the drain); after about the queue's own delay the keyframe is sent, without feedback.
    """

    async def main() -> tuple[int, int, int, int]:
        rx, enc, tx = await _controlled_sender()
        assert tx.congestion is not None
        tx.congestion.queue_delay = 0.25  # as measured after a drop; no feedback will say otherwise
        before_reopens, before_keyframes = enc.reopens, enc.keyframes_out
        await _send_pli(rx, tx)
        await asyncio.sleep(0.15)  # the queue is still there: nothing encoded
        held = (enc.reopens - before_reopens, tx.frames_held)
        await asyncio.sleep(0.9)  # past the longest hold (no feedback came): the keyframe went
        result = (held[0], held[1], enc.reopens - before_reopens, enc.keyframes_out - before_keyframes)
        await tx.close()
        await rx.close()
        return result

    reopened_early, held, reopened, keyframes = asyncio.run(main())
    assert reopened_early == 0 and held >= 1
    assert reopened == 1 and keyframes >= 1


def test_a_probe_cluster_crosses_the_line_beside_the_media_and_is_judged() -> None:
    """Issue 16: padding-only packets on the sender's probe SSRC are reported in the same RFC 8888
    report as the media, in a block of their own; the receiver's media stages never see them."""

    async def run() -> tuple[VideoSender, VideoReceiver, int, int]:
        rx = VideoReceiver(assembler=VideoJitterBuffer(nack=True, max_delay=0.5), capture_time_ext_id=None)
        rx.feedback = FeedbackRecorder()
        await rx.start()
        up = NetworkEmulator(seed=1, rate=2_000_000, queue_bytes=75_000, delay=0.02)
        relay = UdpRelay(rx.local_address, up, NetworkEmulator(seed=2, delay=0.02))
        await relay.start()
        enc = H264Encoder(320, 240, 30, 300_000, max_bitrate=1_500_000, idr_interval=20)
        tx = VideoSender(TestPattern(320, 240, 30, pattern="testsrc2"), enc, relay.address, capture_time_ext_id=None)
        tx.congestion = CongestionController(start_bitrate=300_000, max_bitrate=1_500_000)
        assert not tx.probe(600_000)  # not started: no pacer yet
        await tx.start()
        try:
            await asyncio.sleep(1.5)
            frames = rx.frames
            assert tx.probe(600_000)
            assert not tx.probe(600_000)  # one cluster at a time
            cc = tx.congestion
            for _ in range(50):
                await asyncio.sleep(0.1)
                if cc.probe_result is not None:
                    break
            await asyncio.sleep(0.5)
            # the padding fills what the media leaves of the cluster (at least half), sized as if under SRTP
            count = math.ceil(600_000 / 2 * PROBE_DURATION / 8 / (12 + 255 + 16 + 28))
            return tx, rx, frames, max(PROBE_MIN_PACKETS, count)
        finally:
            await tx.close()
            await asyncio.sleep(0.1)
            await rx.close()
            relay.close()

    tx, rx, frames, count = asyncio.run(run())
    assert tx.congestion is not None and tx.congestion.probes >= 1
    assert rx.probe_packets >= count and tx.pacer is not None and tx.pacer.pacer.probe_packets >= count
    assert tx.congestion.probe_result is not None and tx.congestion.probe_result > 0
    # the media stream never noticed: same SSRC, no restart, nothing dropped, pictures went on
    assert rx.stats is not None and rx.stats.ssrc == tx.ssrc
    assert rx.dropped == 0 and rx.assembler.resets == 0
    assert rx.frames > frames + 10
    with pytest.raises(ValueError):
        tx.probe(0)
