"""aiortc media loopback on the raw clip of ``bench_media``: process CPU, frames decoded, latency.

What is measured: two aiortc ``RTCPeerConnection`` objects in this process
(the offerer sends video, the answerer receives) connected over 127.0.0.1,
H.264 only. The sending track reads the raw I420 720p clip that
``bench_media.make_clip`` writes (the same bytes the vcore, GStreamer and ffmpeg
loopbacks read), paced in real time at 30 fps from a monotonic schedule, and
ends after ``frames`` frames. aiortc then does what it does in a call: x264
encode (in the event loop's executor), RTP packetization, SRTP over DTLS and
ICE, jitter buffer, FFmpeg decode (in its decoder thread). The receiving side
pulls decoded frames with ``await track.recv()``. CPU is ``time.process_time()``
(every thread of the process) over set-up + media + close; ``bench_media.
differential`` turns two runs into CPU per frame. Latency is capture (the
monotonic time the track hands a frame to aiortc) to decoded (the time
``track.recv()`` returns it), with ``vcore.media.pipeline.LatencyStats``'s
percentile definition.

How 127.0.0.1 is forced: aioice 0.13 gathers host candidates from
``aioice.ice.get_host_addresses``, which leaves 127.0.0.1 out. For the duration
of the call that function is replaced by one returning ``["127.0.0.1"]`` (and
restored afterwards); ``RTCConfiguration(iceServers=[])`` keeps aiortc from
asking its default public STUN server. After connecting, every local candidate
and the nominated ICE pair of both ends are checked to be 127.0.0.1
(``AssertionError`` otherwise).

The two modes:

- ``same_settings=False``: aiortc as shipped. Its ``H264Encoder`` opens libx264
  with ``tune=zerolatency``, ``level=31``, profile Baseline, x264's default
  preset (medium) and keyframe interval, time base 1/30, starting at 1 Mbit/s;
  the sender's REMB handling then moves the target between 0.5 and 3 Mbit/s
  (the codec is reopened when it moves by more than 10 %).
- ``same_settings=True``: the encoder settings of vcore's ``H264Encoder`` in
  ``bench_media`` (libx264 ultrafast + zerolatency, baseline, no B-frames,
  1.5 Mbit/s with maxrate = bufsize = bitrate, IDR every 5 s, scenecut off,
  forced IDR, automatic threads, 90 kHz time base). For the call only,
  ``H264Encoder.encode`` is wrapped so that it hands aiortc's own encode path a
  codec context opened with these settings, and ``H264Encoder.target_bitrate``
  is replaced by a property pinned at 1.5 Mbit/s that ignores REMB.

Receiver timestamps: aiortc's sender adds a random origin to the 90 kHz pts and
its receiver's ``TimestampMapper`` subtracts the first RTP timestamp it passes
to the decoder, so a decoded frame's pts is the sender's pts minus the pts of
the first frame that reached the decoder. On loopback that first frame is the
sender's first frame (pts 0, an IDR). The mapping is trusted only when the
first decoded frame is a keyframe, every mapped pts is one the track sent, and
at most one frame is missing (aiortc's jitter buffer releases a frame only when
the next one starts, so the last frame never comes out); otherwise the
latencies are None.

Run (two modes, about a minute):

    python benchmarks/aiortc_loopback.py --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
from av.video.frame import VideoFrame

from vcore.media.pipeline import LatencyStats

VIDEO_CLOCK_RATE = 90_000
LOOPBACK = "127.0.0.1"
TAIL_WAIT = 0.5  # seconds the receiver gets for the last frames after the sender ends
CONNECT_TIMEOUT = 10.0


# ---------------------------------------------------------------- run-time patches of aioice / aiortc


@contextlib.contextmanager
def _loopback_candidates_only() -> Iterator[None]:
    """Make aioice gather exactly one host candidate, 127.0.0.1, until the block ends."""
    import aioice.ice

    original = aioice.ice.get_host_addresses

    def loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [LOOPBACK]

    aioice.ice.get_host_addresses = loopback_only
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


def _x264_like_vcore(width: int, height: int, fps: int, bitrate: int) -> Any:
    """A libx264 context with the settings of vcore's ``H264Encoder`` in bench_media (threads auto)."""
    import av

    from vcore.bench.workloads import X264_CONFERENCING

    ctx: Any = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, VIDEO_CLOCK_RATE)
    ctx.framerate = Fraction(fps)
    ctx.bit_rate = bitrate
    ctx.gop_size = fps * 5
    ctx.max_b_frames = 0
    ctx.thread_count = 0
    ctx.options = {
        **X264_CONFERENCING,  # preset ultrafast, tune zerolatency, profile baseline
        "forced-idr": "1",
        "maxrate": str(bitrate),
        "bufsize": str(bitrate),
        "x264-params": "scenecut=0:repeat-headers=1",
    }
    return ctx


@contextlib.contextmanager
def _aiortc_encoder_like_vcore(fps: int, bitrate: int) -> Iterator[None]:
    """Until the block ends, aiortc's H.264 encoders use vcore's x264 settings at a fixed ``bitrate``.

    ``H264Encoder.encode`` is wrapped: when the encoder has no codec context for
    the frame's size yet, it gets one from :func:`_x264_like_vcore` before
    aiortc's own ``encode`` runs (which keeps a context whose size matches and
    whose bitrate is within 10 % of ``target_bitrate``). ``target_bitrate`` is
    replaced by a property that always reads ``bitrate`` and ignores REMB.
    """
    from aiortc.codecs.h264 import H264Encoder

    original_encode = H264Encoder.encode
    original_target = H264Encoder.__dict__["target_bitrate"]

    def encode(self: H264Encoder, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        codec = self.codec
        if codec is None or (codec.width, codec.height) != (frame.width, frame.height):
            self.codec = _x264_like_vcore(frame.width, frame.height, fps, bitrate)
        return original_encode(self, frame, force_keyframe)

    def pinned(self: H264Encoder) -> int:
        return bitrate

    def ignore(self: H264Encoder, value: int) -> None:
        pass

    H264Encoder.encode = encode  # type: ignore[method-assign]
    H264Encoder.target_bitrate = property(pinned, ignore)  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        H264Encoder.encode = original_encode  # type: ignore[method-assign]
        H264Encoder.target_bitrate = original_target  # type: ignore[method-assign]


# ---------------------------------------------------------------- the sending track


def _clip_track(clip: str, frames: int, width: int, height: int, fps: int, captured: dict[int, float]) -> Any:
    """A video ``MediaStreamTrack`` playing ``frames`` raw I420 frames of ``clip`` in real time."""
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    class ClipTrack(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self._file = open(clip, "rb")
            self._index = 0
            self._start: float | None = None
            self.finished = asyncio.Event()

        async def recv(self) -> VideoFrame:
            if self.readyState != "live":
                raise MediaStreamError
            if self._index >= frames:  # the previous frame has been encoded and sent
                self.finished.set()
                self.stop()
                raise MediaStreamError
            # The schedule: frame i is due at start + i / fps (monotonic clock).
            if self._start is None:
                self._start = time.monotonic()
            else:
                delay = self._start + self._index / fps - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            size = width * height * 3 // 2
            buf = self._file.read(size)
            if len(buf) < size:
                raise RuntimeError(f"{clip} ends after {self._index} frames; {frames} asked")
            frame = VideoFrame.from_ndarray(np.frombuffer(buf, np.uint8).reshape(height * 3 // 2, width),
                                            format="yuv420p")
            frame.pts = round(self._index * VIDEO_CLOCK_RATE / fps)
            frame.time_base = Fraction(1, VIDEO_CLOCK_RATE)
            captured[frame.pts] = time.monotonic()
            self._index += 1
            return frame

        def stop(self) -> None:
            super().stop()
            self._file.close()
            self.finished.set()

    return ClipTrack()


# ---------------------------------------------------------------- the loopback


def _check_loopback_only(pc: Any, side: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """Every local candidate and the nominated pair of ``pc`` are on 127.0.0.1; returns the pair."""
    (transceiver,) = pc.getTransceivers()
    ice = transceiver.sender.transport.transport  # RTCDtlsTransport -> RTCIceTransport
    hosts = {c.ip for c in ice.iceGatherer.getLocalCandidates()}
    if hosts != {LOOPBACK}:
        raise AssertionError(f"{side}: local ICE candidates on {sorted(hosts)}, not only {LOOPBACK}")
    nominated = getattr(getattr(ice, "_connection", None), "_nominated", None)  # aioice internals
    if not nominated:
        raise AssertionError(f"{side}: no nominated ICE pair to check (aioice internals changed?)")
    pairs = list(nominated.values())
    for pair in pairs:
        if pair.local_addr[0] != LOOPBACK or pair.remote_addr[0] != LOOPBACK:
            raise AssertionError(f"{side}: selected ICE pair {pair.local_addr} -> {pair.remote_addr} is not loopback")
    return pairs[0].local_addr, pairs[0].remote_addr


async def _call(clip: str, frames: int, width: int, height: int, fps: int,
                stats: dict[str, Any]) -> tuple[float, int, dict[int, float | None]]:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
    from aiortc.mediastreams import MediaStreamError

    t0 = time.process_time()
    captured: dict[int, float] = {}
    decoded: list[tuple[int, float, bool]] = []  # (pts at the receiver, monotonic time, keyframe)
    consumers: list[asyncio.Task[None]] = []

    async def consume(track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            decoded.append((frame.pts, time.monotonic(), bool(frame.key_frame)))

    track = _clip_track(clip, frames, width, height, fps, captured)
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        connected = asyncio.Event()

        @answerer.on("track")
        def on_track(remote: Any) -> None:
            consumers.append(asyncio.create_task(consume(remote)))

        @offerer.on("connectionstatechange")
        def on_state() -> None:
            if offerer.connectionState == "connected":
                connected.set()

        transceiver = offerer.addTransceiver(track, direction="sendonly")
        capabilities = RTCRtpSender.getCapabilities("video")
        transceiver.setCodecPreferences([c for c in capabilities.codecs if c.mimeType == "video/H264"])

        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        await asyncio.wait_for(connected.wait(), CONNECT_TIMEOUT)
        stats["codecs"] = sorted(set(re.findall(r"a=rtpmap:\d+ ([\w-]+)/", answerer.localDescription.sdp)))
        if stats["codecs"] != ["H264"]:
            raise AssertionError(f"negotiated codecs {stats['codecs']}, not H.264 only")
        stats["pair"] = _check_loopback_only(offerer, "offerer")
        _check_loopback_only(answerer, "answerer")

        media_start = time.monotonic()
        await track.finished.wait()
        deadline = time.monotonic() + TAIL_WAIT
        while len(decoded) < frames and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stats["media_seconds"] = time.monotonic() - media_start
        for report in (await offerer.getStats()).values():
            if report.type == "outbound-rtp":
                stats["bytes_sent"], stats["packets_sent"] = report.bytesSent, report.packetsSent
    finally:
        await offerer.close()
        await answerer.close()
        track.stop()
        for task in consumers:
            await task
    cpu = time.process_time() - t0

    stats["keyframes_decoded"] = sum(1 for _, _, key in decoded if key)
    latency: dict[int, float | None] = {50: None, 95: None, 99: None}
    mappable = (
        bool(decoded)
        and decoded[0][2]  # the first decoded frame is an IDR (the sender's first frame is one)
        and len(decoded) >= frames - 1  # at most the frame aiortc's jitter buffer holds back is missing
        and all(pts in captured for pts, _, _ in decoded)
    )
    if mappable:
        stats["latency_note"] = "receiver pts = sender pts - sender pts of the first decoded frame (0)"
        samples = LatencyStats()
        for pts, seen, _ in decoded:
            samples.add(seen - captured[pts])
        latency = {q: samples.percentile(q) for q in latency}
    else:
        stats["latency_note"] = "not mapped: first frame lost or not a keyframe, or frames missing"
    return cpu, len(decoded), latency


def aiortc_loopback(
    clip: str,
    frames: int,
    *,
    same_settings: bool,
    width: int = 1280,
    height: int = 720,
    fps: int = 30,
    bitrate: int = 1_500_000,
    stats: dict[str, Any] | None = None,
) -> tuple[float, int, dict[int, float | None]]:
    """CPU seconds, decoded frames and latency percentiles {50, 95, 99} (seconds or None) of an aiortc loopback.

    ``clip`` is raw I420 ``width`` x ``height`` (``bench_media.make_clip``);
    ``frames`` are sent at ``fps`` in real time. ``same_settings`` selects vcore's
    encoder settings at ``bitrate`` instead of aiortc's own (see the module
    docstring). ``stats``, if given, receives the ICE pair, bytes and packets
    sent, the media duration, keyframes decoded and how the latency was mapped.
    Runs its own event loop (``asyncio.run``); not thread-safe (it patches
    aioice and, with ``same_settings``, aiortc's ``H264Encoder`` while it runs).
    """
    if frames < 1:
        raise ValueError("frames must be at least 1")
    info: dict[str, Any] = {} if stats is None else stats
    with contextlib.ExitStack() as patches:
        patches.enter_context(_loopback_candidates_only())
        if same_settings:
            patches.enter_context(_aiortc_encoder_like_vcore(fps, bitrate))
        return asyncio.run(_call(clip, frames, width, height, fps, info))


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=2, help="runs per mode; the least CPU per frame counts")
    args = p.parse_args(argv)

    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import bench_media as bm

    frames = int(args.seconds * bm.FPS)
    tmp = tempfile.mkdtemp(prefix="vcore-bench-")
    clip = os.path.join(tmp, "clip.yuv")
    try:
        bm.make_clip(clip, frames)
        print(f"clip: {frames} frames {bm.W}x{bm.H} testsrc2; aiortc loopback over {LOOPBACK}, H.264 only")
        for same in (False, True):
            info: dict[str, Any] = {}

            def run(n: int) -> float:
                stats: dict[str, Any] = {}
                cpu, got, lat = aiortc_loopback(clip, n, same_settings=same, width=bm.W, height=bm.H,
                                                fps=bm.FPS, bitrate=bm.BITRATE, stats=stats)
                if n == frames:
                    info.update(stats, got=got, lat=lat)
                return cpu

            per_frame = min(bm.differential(run, frames) for _ in range(args.repeat))
            mode = "vcore's x264 settings, 1.5 Mbit/s" if same else "as shipped"
            lat = info["lat"]
            shown = " ".join(f"p{q} {'n/a' if v is None else f'{v * 1e3:.1f} ms'}" for q, v in lat.items())
            rate = info.get("bytes_sent", 0) * 8 / info["media_seconds"] / 1e3
            print(f"loopback aiortc ({mode}): {per_frame * 1e3:6.2f} ms CPU/frame  ({info['got']}/{frames} "
                  f"frames decoded, {info['keyframes_decoded']} keyframes; latency {shown}; "
                  f"~{rate:.0f} kbit/s RTP payload; pair {info['pair'][0]} -> {info['pair'][1]})")
            if lat[50] is None:
                print(f"  latency: {info['latency_note']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
