"""The threaded RTP video pipeline over UDP on 127.0.0.1: frames, latency, RTCP, hooks, clean close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from av.video.frame import VideoFrame
from .media_helpers import vcore_threads, write_test_file

from vcore.errors import ParseError, SrtpReplayError
from vcore.media import (
    FileSource,
    FrameQueue,
    H264Encoder,
    InOrderAssembler,
    Recorder,
    TestPattern,
    VideoReceiver,
    VideoSender,
)
from vcore.media.pipeline import decode_capture_time, encode_capture_time
from vcore.media.sources import Source

W, H = 320, 240


async def run_loopback(
    seconds: float,
    *,
    source: Source | None = None,
    sink: object = None,
    protect: Callable[[bytes], bytes] | None = None,
    unprotect: Callable[[bytes], bytes] | None = None,
    recorder: Recorder | None = None,
    rtcp_interval: float = 0.2,
    fps: float = 30,
    capture_thread: bool | None = None,
) -> tuple[VideoSender, VideoReceiver]:
    receiver = VideoReceiver(sink, unprotect=unprotect, recorder=recorder)
    await receiver.start()
    src = source if source is not None else TestPattern(W, H, fps)
    enc = H264Encoder(W, H, fps, 300_000, codec="libx264", idr_interval=1.0)
    sender = VideoSender(
        src, enc, receiver.local_address, protect=protect, rtcp_interval=rtcp_interval, capture_thread=capture_thread
    )
    await sender.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not sender.finished.is_set():
            await asyncio.sleep(0.02)
    finally:
        await sender.close()
        for _ in range(50):  # let the packets in flight arrive
            if receiver.bye.is_set():
                break
            await asyncio.sleep(0.01)
        await receiver.close()
    return sender, receiver


@pytest.mark.parametrize("capture_thread", [False, True])
def test_loopback_frames_arrive_and_latency_is_measured(capture_thread: bool) -> None:
    before = vcore_threads()
    got: list[VideoFrame] = []
    sender, receiver = asyncio.run(run_loopback(1.2, sink=got.append, capture_thread=capture_thread))
    assert sender.error is None and receiver.error is None
    assert sender.frames_encoded >= 20
    assert receiver.frames == len(got) >= sender.frames_encoded // 2
    if receiver.queue.dropped == 0:  # (a starved decode thread may drop units on a loaded machine)
        assert receiver.decoder.errors == 0 and receiver.frames == sender.frames_encoded
    assert (got[0].width, got[0].height) == (W, H)
    assert receiver.latency.count == receiver.frames
    p50, p95 = receiver.latency.percentile(50), receiver.latency.percentile(95)
    assert p50 is not None and p95 is not None and 0 < p50 <= p95
    # the sender's SRs reached the receiver, and its BYE
    assert receiver.remote_clock.synchronized
    assert receiver.bye.is_set()
    assert receiver.packets == sender.packets_sent and receiver.stats is not None
    assert receiver.stats.lost == 0
    assert vcore_threads() == before  # nothing left running


def test_protect_hooks_are_applied_and_bad_packets_dropped() -> None:
    def protect(data: bytes) -> bytes:
        return data + b"TAG!"

    def unprotect(data: bytes) -> bytes:
        if not data.endswith(b"TAG!"):
            raise ParseError("bad tag")
        return data[:-4]

    sender, receiver = asyncio.run(run_loopback(0.6, protect=protect, unprotect=unprotect))
    assert receiver.frames >= 10 and receiver.dropped == 0

    sender, receiver = asyncio.run(run_loopback(0.4, protect=protect))  # receiver does not unprotect
    assert receiver.error is None  # garbage at the end of every NAL unit: reported, never raised

    sender, receiver = asyncio.run(run_loopback(0.4, unprotect=unprotect))  # nothing is protected
    assert receiver.frames == 0 and receiver.dropped == sender.packets_sent


def test_a_replayed_packet_is_rejected_and_counted_apart_from_bad_ones() -> None:
    # A retransmission that crosses its late original arrives twice; SRTP rejects the copy as a replay.
    # That is not a failed packet (wrong key, garbage): `dropped` stays for those.
    count = {"n": 0}

    def replaying(data: bytes) -> bytes:
        count["n"] += 1
        if count["n"] % 10 == 0:
            raise SrtpReplayError("replayed SRTP packet")
        return data

    sender, receiver = asyncio.run(run_loopback(0.6, unprotect=replaying))
    assert receiver.replayed >= 1 and receiver.dropped == 0


def test_packet_loss_triggers_pli_and_a_keyframe() -> None:
    count = {"n": 0}

    def lossy(data: bytes) -> bytes:
        count["n"] += 1
        if count["n"] == 15:  # one packet lost early in the stream
            raise ParseError("simulated loss")
        return data

    sender, receiver = asyncio.run(run_loopback(1.0, unprotect=lossy))
    assert receiver.decoder.errors >= 1
    assert receiver.plis_sent >= 1
    assert sender.keyframe_requests >= 1
    assert sender.encoder.keyframes_out >= 2
    # recovered long before the periodic IDR (1 s): most frames still came out
    assert receiver.frames >= sender.frames_encoded * 0.6


def test_source_end_finishes_the_sender_and_recorder_keeps_every_frame(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clip = str(tmp_path / "clip.mp4")
    write_test_file(clip, frames=12, width=W, height=H)
    out = str(tmp_path / "received.mkv")
    rec = Recorder(out)
    sender, receiver = asyncio.run(
        run_loopback(5.0, source=FileSource(clip, loop=False), recorder=rec)
    )
    assert sender.error is None  # a file that ends is a normal end
    assert sender.frames_encoded == 12
    assert receiver.frames == 12 and rec.video_frames == 12
    import av

    with av.open(out) as f:
        assert sum(1 for _ in f.decode(video=0)) == 12


def test_source_failure_is_reported_and_nothing_leaks() -> None:
    class Broken(Source):
        def __init__(self) -> None:
            super().__init__(f"testsrc=size={W}x{H}:rate=30,format=yuv420p", "lavfi")

        def read(self):  # type: ignore[no-untyped-def]
            frame = super().read()
            if self.frames_read > 5:
                from vcore.media import DeviceError

                raise DeviceError("camera unplugged")
            return frame

    before = vcore_threads()
    sender, receiver = asyncio.run(run_loopback(5.0, source=Broken()))
    assert sender.error is not None and "unplugged" in str(sender.error)
    assert 1 <= receiver.frames <= 6
    assert vcore_threads() == before


def test_close_is_idempotent_and_stops_a_slow_source() -> None:
    async def main() -> None:
        receiver = VideoReceiver(FrameQueue(4))
        await receiver.start()
        enc = H264Encoder(W, H, 1, 100_000, codec="libx264")
        sender = VideoSender(TestPattern(W, H, 0.02), enc, receiver.local_address)  # a frame every 50 s
        await sender.start()
        await asyncio.sleep(0.1)
        t = time.monotonic()
        await sender.close()
        await sender.close()
        assert time.monotonic() - t < 20  # did not wait for the next frame
        await receiver.close()
        await receiver.close()

    before = vcore_threads()
    asyncio.run(main())
    assert vcore_threads() == before


def test_capture_time_extension_round_trip() -> None:
    t = time.monotonic()
    assert decode_capture_time(encode_capture_time(t)) == pytest.approx(t, abs=1e-6)
    assert decode_capture_time(b"123") is None


def test_in_order_assembler_is_a_unit_assembler() -> None:
    a = InOrderAssembler()
    assert a.pop(0.0) == [] and a.keyframe_needed is False


@pytest.mark.parametrize("codec", ["pcmu", "g722", "opus"])
def test_audio_loopback(codec: str) -> None:
    from vcore.media import AudioDecoder, AudioEncoder, AudioReceiver, AudioSender, Tone

    async def main() -> tuple[AudioSender, AudioReceiver, list]:  # type: ignore[type-arg]
        got: list = []  # type: ignore[type-arg]
        receiver = AudioReceiver(AudioDecoder(codec), got.append)
        await receiver.start()
        sender = AudioSender(Tone(440, 48000), AudioEncoder(codec), receiver.local_address, rtcp_interval=0.2)
        await sender.start()
        await asyncio.sleep(0.6)
        await sender.close()
        for _ in range(50):
            if receiver.bye.is_set():
                break
            await asyncio.sleep(0.01)
        await receiver.close()
        return sender, receiver, got

    before = vcore_threads()
    sender, receiver, got = asyncio.run(main())
    assert sender.error is None and receiver.error is None
    assert receiver.packets == sender.packets_sent >= 20
    assert receiver.frames >= 20 and receiver.remote_clock.synchronized
    rate = {"pcmu": 8000, "g722": 16000, "opus": 48000}[codec]
    assert got[5].sample_rate == rate and got[5].samples == rate // 50
    # RTP timestamps advance by one payload each (20 ms at the RTP clock)
    step = {"pcmu": 160, "g722": 160, "opus": 960}[codec]
    assert {(b.pts - a.pts) & 0xFFFFFFFF for a, b in zip(got[1:], got[2:])} == {step}
    assert receiver.latency.count >= 20
    assert vcore_threads() == before


def test_audio_and_video_streams_can_be_played_in_sync() -> None:
    """Capture instants survive the trip: through SRs, a receiver finds A/V captured together."""
    from vcore.media import AudioDecoder, AudioEncoder, AudioReceiver, AudioSender, Tone, sync_offset

    async def main() -> float | None:
        video_frames: list[VideoFrame] = []
        audio_frames: list = []  # type: ignore[type-arg]
        vr = VideoReceiver(video_frames.append)
        ar = AudioReceiver(AudioDecoder("pcmu"), audio_frames.append)
        await vr.start()
        await ar.start()
        enc = H264Encoder(W, H, 30, 300_000, codec="libx264")
        vs = VideoSender(TestPattern(W, H, 30), enc, vr.local_address, rtcp_interval=0.1)
        aus = AudioSender(Tone(440, 8000), AudioEncoder("pcmu"), ar.local_address, rtcp_interval=0.1)
        await vs.start()
        await aus.start()
        await asyncio.sleep(0.8)
        for c in (vs, aus):
            await c.close()
        await asyncio.sleep(0.05)
        for r in (vr, ar):
            await r.close()
        # the sender's capture instants of the last frames, mapped through the SRs
        v_rtp, a_rtp = video_frames[-5].pts, audio_frames[-5].pts
        v_cap = enc.clock.capture_time(v_rtp, time.monotonic())
        a_cap = aus.clock.capture_time(a_rtp, time.monotonic())
        offset = sync_offset(ar.remote_clock, a_rtp, vr.remote_clock, v_rtp)
        assert offset is not None
        # presentation delay: the receivers' clock at the sink minus the capture time from the SRs; sender and
        # receivers share one clock here, so it is the capture-to-sink latency the receivers also measure
        for r in (vr, ar):
            assert r.presentation_delay is not None and 0.0 < r.presentation_delay < 0.5
        assert vr.presentation_delay == pytest.approx(vr.latency.percentile(50), abs=0.02)
        return offset - (v_cap - a_cap)  # what the receiver computed vs the truth

    error = asyncio.run(main())
    assert error is not None and abs(error) < 0.002


def test_a_jitter_buffer_plugs_in_as_the_assembler() -> None:
    """An assembler that holds units for a playout delay is polled: even the last frame comes out."""
    from vcore.payload.h264 import H264Depacketizer

    class DelayBuffer:  # the shape of vcore.jitter.VideoJitterBuffer: push(pkt, arrival), pop(now)
        def __init__(self, delay: float) -> None:
            self.delay = delay
            self.depacketizer = H264Depacketizer()
            self.held: list[tuple[float, object]] = []
            self.keyframe_needed = False
            self.pushed = 0

        def push(self, packet: object, arrival: float) -> None:
            self.pushed += 1
            for unit in self.depacketizer.push(packet):
                self.held.append((arrival + self.delay, unit))

        def pop(self, now: float) -> list:  # type: ignore[type-arg]
            due = [u for t, u in self.held if t <= now]
            self.held = [(t, u) for t, u in self.held if t > now]
            return due

    async def main() -> tuple[VideoSender, VideoReceiver, DelayBuffer]:
        buf = DelayBuffer(0.05)
        receiver = VideoReceiver(assembler=buf)  # type: ignore[arg-type]
        await receiver.start()
        enc = H264Encoder(W, H, 30, 300_000, codec="libx264")
        sender = VideoSender(TestPattern(W, H, 30), enc, receiver.local_address)
        await sender.start()
        await asyncio.sleep(0.5)
        await sender.close()
        await asyncio.sleep(0.3)  # no packets any more: only the poll releases the held units
        await receiver.close()
        return sender, receiver, buf

    sender, receiver, buf = asyncio.run(main())
    assert buf.pushed == sender.packets_sent and not buf.held
    assert receiver.frames == sender.frames_encoded
    p50 = receiver.latency.percentile(50)
    assert p50 is not None and p50 >= 0.05  # the playout delay is part of the latency


def test_record_only_receiver_does_not_decode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "rec.mp4")

    async def main() -> tuple[VideoSender, VideoReceiver, list]:  # type: ignore[type-arg]
        units: list = []  # type: ignore[type-arg]
        receiver = VideoReceiver(units.append, recorder=Recorder(out), decode=False)
        await receiver.start()
        enc = H264Encoder(W, H, 30, 300_000, codec="libx264")
        sender = VideoSender(TestPattern(W, H, 30), enc, receiver.local_address)
        await sender.start()
        await asyncio.sleep(0.5)
        await sender.close()
        await asyncio.sleep(0.1)
        await receiver.close()
        return sender, receiver, units

    sender, receiver, units = asyncio.run(main())
    assert receiver.frames == 0 and len(units) == sender.frames_encoded
    assert receiver.recorder is not None and receiver.recorder.video_frames == len(units)
    import av

    with av.open(out) as f:
        assert sum(1 for _ in f.decode(video=0)) == len(units)


@pytest.mark.parametrize("same_key", [True, False])
def test_srtp_protected_loopback(same_key: bool) -> None:
    import os

    from vcore.srtp import SrtpSession

    suite = "AES_CM_128_HMAC_SHA1_80"
    key = os.urandom(30)
    # sessions are not thread-safe: RTP is protected in the encode thread, RTCP on the event loop
    rtp_tx, rtcp_tx = SrtpSession(suite, key), SrtpSession(suite, key)
    rx = SrtpSession(suite, key if same_key else os.urandom(30))

    async def main() -> tuple[VideoSender, VideoReceiver]:
        receiver = VideoReceiver(unprotect=rx.unprotect, unprotect_rtcp=rx.unprotect_rtcp, protect_rtcp=rx.protect_rtcp)
        await receiver.start()
        enc = H264Encoder(W, H, 30, 300_000, codec="libx264")
        sender = VideoSender(
            TestPattern(W, H, 30), enc, receiver.local_address, mtu=1190, rtcp_interval=0.1,
            protect=rtp_tx.protect, protect_rtcp=rtcp_tx.protect_rtcp, unprotect_rtcp=rtcp_tx.unprotect_rtcp,
        )
        await sender.start()
        await asyncio.sleep(0.6)
        await sender.close()
        await asyncio.sleep(0.1)
        await receiver.close()
        return sender, receiver

    sender, receiver = asyncio.run(main())
    if same_key:
        assert receiver.frames == sender.frames_encoded >= 10 and receiver.dropped == 0
        assert receiver.remote_clock.synchronized and receiver.bye.is_set()  # SRTCP SRs and BYE got through
    else:
        assert receiver.frames == 0 and receiver.dropped == sender.packets_sent  # every packet failed auth
        assert not receiver.remote_clock.synchronized


def test_a_failing_recorder_does_not_end_the_call(tmp_path) -> None:  # type: ignore[no-untyped-def]
    class FullDisk(Recorder):
        def write_video(self, unit, at=None):  # type: ignore[no-untyped-def]
            if self.video_frames >= 3:
                from vcore.errors import MediaError

                raise MediaError("No space left on device")
            super().write_video(unit, at)

    rec = FullDisk(str(tmp_path / "rec.mkv"))
    sender, receiver = asyncio.run(run_loopback(0.6, recorder=rec))
    assert receiver.recorder_error is not None and "No space" in str(receiver.recorder_error)
    assert receiver.error is None and receiver.frames >= 10  # decoding went on
    assert rec.video_frames == 3


def test_audio_and_video_receivers_record_into_one_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import av

    from vcore.media import AudioDecoder, AudioEncoder, AudioReceiver, AudioSender, Tone

    path = str(tmp_path / "call.mkv")

    async def main() -> None:
        rec = Recorder(path, audio=True)
        vr = VideoReceiver(recorder=rec)
        ar = AudioReceiver(AudioDecoder("pcmu"), recorder=rec)
        await vr.start()
        await ar.start()
        vs = VideoSender(TestPattern(W, H, 30), H264Encoder(W, H, 30, 300_000, codec="libx264"), vr.local_address)
        aus = AudioSender(Tone(440, 8000), AudioEncoder("pcmu"), ar.local_address)
        await aus.start()
        await asyncio.sleep(0.3)  # audio first: the file must not start the two together
        await vs.start()
        await asyncio.sleep(0.6)
        for c in (vs, aus):
            await c.close()
        await asyncio.sleep(0.05)
        await vr.close()
        await ar.close()
        assert vr.error is None and ar.error is None and vr.recorder_error is None

    asyncio.run(main())
    with av.open(path) as f:
        v, a = f.streams.video[0], f.streams.audio[0]
        starts: dict[str, float] = {}
        for p in f.demux(v, a):  # one pass: a seek would land on the first keyframe
            if p.pts is not None:
                starts[p.stream.type] = min(starts.get(p.stream.type, 1e9), float(p.pts * p.time_base))
        first_video, first_audio = starts["video"], starts["audio"]
        f.seek(0)
        assert sum(1 for _ in f.decode(video=0)) >= 10
    assert first_video - first_audio > 0.15  # the video joined about 0.3 s into the audio


def test_a_failing_rtcp_task_is_logged_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 14, finding 8: an RTCP task that fails (here: a CNAME over SDES's 255 bytes) does not die silently."""
    async def main() -> tuple[VideoSender, VideoReceiver]:
        receiver = VideoReceiver()
        receiver.rtcp_interval, receiver.cname = 0.05, "r" * 300
        await receiver.start()
        enc = H264Encoder(W, H, 30, 300_000, codec="libx264")
        sender = VideoSender(TestPattern(W, H, 30), enc, receiver.local_address, rtcp_interval=0.05)
        sender.cname = "s" * 300
        await sender.start()
        for _ in range(200):
            if sender.error is not None and receiver.error is not None:
                break
            await asyncio.sleep(0.02)
        await sender.close()
        await receiver.close()
        return sender, receiver

    with caplog.at_level("ERROR"):
        sender, receiver = asyncio.run(main())
    assert sender.error is not None and "RTCP sender reports stopped" in str(sender.error)
    assert receiver.error is not None and "RTCP receiver reports stopped" in str(receiver.error)
    assert sum("RTCP task failed" in r.getMessage() for r in caplog.records) == 2
