"""Media engine benchmarks: encode/decode overhead vs bare PyAV, loopback CPU vs GStreamer, ffmpeg and aiortc.

720p30 at 1.5 Mbit/s; libx264 ultrafast + zerolatency, constrained baseline, no
B-frames on every side. All sides read the same raw YUV clip (testsrc2, made
once into a temporary file), so the encoders see the same pictures.

Run the whole comparison (about a minute, one heavy process at a time):

    python benchmarks/bench_media.py [--seconds 10] [--srtp]

or the encode/decode part through pytest-benchmark:

    python -m pytest benchmarks/bench_media.py --benchmark-only

CPU is process CPU time (user + system, every thread): ``time.process_time()``
in process, ``os.wait4`` rusage for the GStreamer and ffmpeg children. The
loopback numbers are per frame after subtracting a one-frame run of the same
command (start-up: plugin registry, codec open), so they compare steady states.

aiortc (``aiortc_loopback.py``, in this process, over 127.0.0.1) runs twice: with
the same x264 settings and as shipped; it always encrypts (DTLS-SRTP), so compare
it with the ``--srtp`` run. The "codec floor" (``codec_floor``) is the paced read
+ x264 + decode alone in one thread: what any engine with these settings pays.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from typing import Any

import av
import pytest
from av.video.frame import VideoFrame

from vcore.bench import workloads as wl

W, H, FPS, BITRATE = 1280, 720, 30, 1_500_000
FRAME_BYTES = W * H * 3 // 2
X264 = wl.X264_CONFERENCING


# ---------------------------------------------------------------- the clip


def make_clip(path: str, frames: int) -> None:
    """``frames`` frames of testsrc2 at 720p as raw I420."""
    src = av.open(f"testsrc2=size={W}x{H}:rate={FPS},format=yuv420p", format="lavfi")
    with open(path, "wb") as out:
        for i, f in enumerate(src.decode(video=0)):
            if i == frames:
                break
            out.write(f.to_ndarray().tobytes())
    src.close()


def load_frames(path: str, n: int) -> list[VideoFrame]:
    import numpy as np

    frames = []
    with open(path, "rb") as f:
        for i in range(n):
            buf = f.read(FRAME_BYTES)
            if len(buf) < FRAME_BYTES:
                break
            frame = VideoFrame.from_ndarray(np.frombuffer(buf, np.uint8).reshape(H * 3 // 2, W), format="yuv420p")
            frame.pts = round((1000 + i / FPS) * 1_000_000)
            frame.time_base = Fraction(1, 1_000_000)
            frames.append(frame)
    return frames


# ---------------------------------------------------------------- encode / decode


# The encode/decode measurements are the shared ones of vcore.bench.workloads (``vcore bench``
# runs the same code); these wrappers fix the 720p30 profile of this file.
PROFILE = wl.call_profile("720p30")
assert (PROFILE.width, PROFILE.height, PROFILE.fps, PROFILE.bitrate) == (W, H, FPS, BITRATE)


def encode_bare(frames: list[VideoFrame]) -> list[bytes]:
    """Plain PyAV: the same settings, and the same timestamps (90 kHz from the capture stamps)."""
    return wl.encode_pyav(frames, PROFILE)


def encode_vcore(frames: list[VideoFrame]) -> list[Any]:
    return wl.encode_vcore(frames, PROFILE)


decode_bare = wl.decode_pyav
decode_vcore = wl.decode_vcore


def in_turn(items: list[Any], make_a: Any, make_b: Any, rounds: int = 3) -> tuple[float, float]:
    """Process CPU per item of two workers fed the same items one by one in turn; medians of ``rounds`` runs.

    ``make_a()``/``make_b()`` return ``(work, close)``: ``work(item)`` is timed,
    ``close()`` ends the run. Alternating every item (and which of the two goes
    first) cancels the drift of a shared machine, which moves whole-run
    comparisons by about ±9 %. Per-call process CPU includes x264's slice
    threads (an encode call waits for them).
    """
    import statistics

    runs_a: list[float] = []
    runs_b: list[float] = []
    for _ in range(rounds):
        (work_a, close_a), (work_b, close_b) = make_a(), make_b()
        spent = [0.0, 0.0]
        for i, item in enumerate(items):
            for side in ((0, 1) if i % 2 else (1, 0)):
                t = time.process_time()
                (work_a if side == 0 else work_b)(item)
                spent[side] += time.process_time() - t
        close_a()
        close_b()
        runs_a.append(spent[0] / len(items))
        runs_b.append(spent[1] / len(items))
    return statistics.median(runs_a), statistics.median(runs_b)


def alternating_encode(frames: list[VideoFrame], rounds: int = 3) -> tuple[float, float]:
    """CPU per frame of bare PyAV libx264 and of ``H264Encoder`` (same settings, same frames, same timestamps)."""
    from fractions import Fraction as F

    from av.video.frame import PictureType

    from vcore.media import H264Encoder

    tb90k, t0 = F(1, 90000), frames[0].time

    def bare() -> tuple[Any, Any]:
        ctx: Any = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = W, H, "yuv420p"
        ctx.time_base, ctx.framerate, ctx.bit_rate = tb90k, F(FPS), BITRATE
        ctx.gop_size, ctx.max_b_frames = FPS * 5, 0
        rate = str(BITRATE)
        ctx.options = dict(X264, **{"forced-idr": "1", "maxrate": rate, "bufsize": rate,
                                    "x264-params": "scenecut=0:repeat-headers=1"})
        ctx.open()

        def work(f: VideoFrame) -> None:
            stamp = f.pts, f.time_base
            f.pts, f.time_base, f.pict_type = round((f.time - t0) * 90000), tb90k, PictureType.NONE
            [bytes(p) for p in ctx.encode(f)]
            f.pts, f.time_base = stamp

        return work, lambda: None

    def ours() -> tuple[Any, Any]:
        enc = H264Encoder(W, H, FPS, BITRATE, codec="libx264")
        return enc.encode, enc.close

    return in_turn(frames, bare, ours, rounds)


def alternating_decode(units: list[Any], rounds: int = 3) -> tuple[float, float]:
    """CPU per unit of bare PyAV decoding (one thread) and of ``H264Decoder``."""
    from vcore.media import H264Decoder

    def bare() -> tuple[Any, Any]:
        ctx: Any = av.CodecContext.create("h264", "r")
        ctx.thread_count = 1
        return (lambda u: ctx.decode(av.Packet(u.data))), lambda: None

    def ours() -> tuple[Any, Any]:
        dec = H264Decoder()
        return dec.decode, dec.close

    return in_turn(units, bare, ours, rounds)


def clip_source(clip: str, frames: int) -> Any:
    """A paced vcore ``Source`` over the raw clip that ends after ``frames`` frames."""
    from vcore.media import SourceEnded
    from vcore.media.sources import Source

    class Clip(Source):
        def __init__(self) -> None:
            super().__init__(clip, "rawvideo", {"video_size": f"{W}x{H}", "pixel_format": "yuv420p",
                                                "framerate": str(FPS)})

        def read(self) -> Any:
            if self.frames_read >= frames:
                raise SourceEnded("clip done")
            return super().read()

    return Clip()


# ---------------------------------------------------------------- loopbacks


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_cpu(proc: subprocess.Popen[bytes]) -> float:
    _, _, ru = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return ru.ru_utime + ru.ru_stime


def run_pair(sender: list[str], receiver: list[str], settle: float = 0.7) -> float:
    """CPU seconds of a receiver + sender pair; the receiver is stopped after the sender ends."""
    rx = subprocess.Popen(receiver, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    time.sleep(settle)
    tx = subprocess.Popen(sender, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    cpu = wait_cpu(tx)
    time.sleep(0.3)  # the last packets
    rx.kill()  # ffmpeg 5.1 ignores SIGTERM in a blocking RTP read; rusage survives SIGKILL
    cpu += wait_cpu(rx)
    return cpu


SRTP_SUITE = "AES_CM_128_HMAC_SHA1_80"
SSRC = 0x12345678


def gst_commands(clip: str, frames: int, port: int, key: bytes | None = None) -> tuple[list[str], list[str]]:
    srtp_tx = srtp_rx = ""
    caps = "application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96"
    if key is not None:
        params = "rtp-cipher=aes-128-icm rtp-auth=hmac-sha1-80 rtcp-cipher=aes-128-icm rtcp-auth=hmac-sha1-80"
        srtp_tx = f"srtpenc key={key.hex()} {params} ! "
        caps = caps.replace("x-rtp", "x-srtp") + (
            f",ssrc=(uint){SSRC},srtp-key=(buffer){key.hex()},srtp-cipher=(string)aes-128-icm,"
            "srtp-auth=(string)hmac-sha1-80,srtcp-cipher=(string)aes-128-icm,srtcp-auth=(string)hmac-sha1-80"
        )
        srtp_rx = "srtpdec ! "
    sender = (
        f"gst-launch-1.0 -q filesrc location={clip} num-buffers={frames} blocksize={FRAME_BYTES} ! "
        f"rawvideoparse width={W} height={H} format=i420 framerate={FPS}/1 ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast bitrate={BITRATE // 1000} key-int-max={FPS * 5} ! "
        f"video/x-h264,profile=constrained-baseline ! rtph264pay mtu=1200 config-interval=-1 ssrc={SSRC} ! "
        f"{srtp_tx}udpsink host=127.0.0.1 port={port} sync=true"
    ).split()
    receiver = (
        f"gst-launch-1.0 -q udpsrc address=127.0.0.1 port={port} caps={caps} ! {srtp_rx}"
        "rtpjitterbuffer latency=50 ! rtph264depay ! avdec_h264 max-threads=1 ! fakesink sync=false"
    ).split()
    return sender, receiver


def ffmpeg_commands(
    clip: str, frames: int, port: int, sdp_path: str, key: bytes | None = None
) -> tuple[list[str], list[str]]:
    import base64

    profile, crypto, url, srtp_args = "RTP/AVP", "", f"rtp://127.0.0.1:{port}?pkt_size=1200", []
    if key is not None:
        b64 = base64.b64encode(key).decode()
        profile, crypto = "RTP/SAVP", f"a=crypto:1 {SRTP_SUITE} inline:{b64}\n"
        url = f"srtp://127.0.0.1:{port}?pkt_size=1200"
        srtp_args = ["-srtp_out_suite", SRTP_SUITE, "-srtp_out_params", b64]
    with open(sdp_path, "w") as f:
        f.write(
            "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=bench\nc=IN IP4 127.0.0.1\nt=0 0\n"
            f"m=video {port} {profile} 96\na=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=1\n{crypto}"
        )
    sender = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-f", "rawvideo", "-pix_fmt", "yuv420p",
        "-s", f"{W}x{H}", "-r", str(FPS), "-i", clip, "-frames:v", str(frames),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline",
        "-b:v", str(BITRATE), "-maxrate", str(BITRATE), "-bufsize", str(BITRATE), "-g", str(FPS * 5), "-bf", "0",
        "-f", "rtp", "-payload_type", "96", *srtp_args, url,
    ]
    receiver = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-protocol_whitelist", "file,udp,rtp,srtp,crypto",
        "-threads", "1", "-i", sdp_path, "-f", "null", "-",
    ]
    return sender, receiver


def vcore_commands(clip: str, frames: int, port: int, key: bytes | None = None) -> tuple[list[str], list[str]]:
    """The vcore loopback as two processes (``vcore_peer.py``), measured like the GStreamer and ffmpeg pairs."""
    peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vcore_peer.py")
    k = [key.hex()] if key is not None else []
    sender = [sys.executable, peer, "send", str(port), clip, str(frames), *k]
    receiver = [sys.executable, peer, "receive", str(port), *k]
    return sender, receiver


def _have_aiortc() -> bool:
    try:
        import aiortc  # noqa: F401
    except ImportError:
        return False
    return True


def vcore_loopback(clip: str, frames: int, key: bytes | None = None) -> tuple[float, int, dict[str, Any]]:
    """CPU seconds and decoded frames of the in-process vcore loopback on the raw clip (real time)."""
    from vcore.media import H264Encoder, VideoReceiver, VideoSender

    async def main() -> tuple[float, int, dict[str, Any]]:
        t = time.process_time()
        tx: dict[str, Any] = {}
        rx: dict[str, Any] = {}
        if key is not None:
            from vcore.srtp import SrtpSession

            rtp_tx, rtcp_tx, rx_s = (SrtpSession(SRTP_SUITE, key) for _ in range(3))
            tx = {"protect": rtp_tx.protect, "protect_rtcp": rtcp_tx.protect_rtcp,
                  "unprotect_rtcp": rtcp_tx.unprotect_rtcp, "mtu": 1190}
            rx = {"unprotect": rx_s.unprotect, "unprotect_rtcp": rx_s.unprotect_rtcp, "protect_rtcp": rx_s.protect_rtcp}
        receiver = VideoReceiver(**rx)
        await receiver.start()
        enc = H264Encoder(W, H, FPS, BITRATE, codec="libx264")
        sender = VideoSender(clip_source(clip, frames), enc, receiver.local_address, **tx)
        await sender.start()
        await sender.finished.wait()
        await sender.close()
        for _ in range(100):
            if receiver.bye.is_set():
                break
            await asyncio.sleep(0.01)
        await receiver.close()
        cpu = time.process_time() - t
        lat = {q: receiver.latency.percentile(q) for q in (50, 95, 99)}
        return cpu, receiver.frames, lat

    return asyncio.run(main())


def codec_floor(clip: str, frames: int) -> float:
    """CPU seconds of the codec work alone, at the loopback's real-time pace, in one thread.

    The raw clip is read frame by frame in real time (the same paced ``Source``
    the vcore loopback uses), encoded by ``H264Encoder`` with the loopback's
    settings and each access unit decoded at once by ``H264Decoder``: no RTP, no
    sockets, no SRTP, no queues, no second thread of vcore's own. Every engine
    that reads this clip and runs x264 and the libavcodec decoder with these
    settings pays at least this (x264 and the decoder also cost more per frame at
    a real-time pace than in a tight loop: cold caches, thread wake-ups).
    """
    from vcore.media import H264Decoder, H264Encoder, SourceEnded
    from vcore.media.sources import capture_time

    src = clip_source(clip, frames)
    enc = H264Encoder(W, H, FPS, BITRATE, codec="libx264")
    dec = H264Decoder()
    t = time.process_time()
    try:
        for _ in range(frames):
            try:
                frame = src.read()
            except SourceEnded:
                break
            for unit in enc.encode(frame, capture_time(frame)):
                dec.decode(unit)
    finally:
        src.close()
        enc.close()
        dec.close()
    return time.process_time() - t


def differential(run: Any, frames: int) -> float:
    """CPU per frame from a full run minus a one-frame run of the same thing."""
    full = run(frames)
    one = run(1)
    return (full - one) / (frames - 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--skip-peers", action="store_true")
    p.add_argument("--repeat", type=int, default=2, help="loopback runs per side; the least counts")
    p.add_argument("--srtp", action="store_true", help="SRTP (AES_CM_128_HMAC_SHA1_80) in every loopback")
    p.add_argument("--skip-aiortc", action="store_true", help="leave out the two aiortc loopbacks")
    args = p.parse_args(argv)
    frames = int(args.seconds * FPS)
    tmp = tempfile.mkdtemp(prefix="vcore-bench-")
    clip = os.path.join(tmp, "clip.yuv")
    try:
        make_clip(clip, frames)
        print(f"clip: {frames} frames {W}x{H} testsrc2, {BITRATE} bit/s, libx264 ultrafast zerolatency baseline")

        enc_frames = load_frames(clip, 150)
        bare, ours = alternating_encode(enc_frames)
        print(f"encode  bare PyAV {bare * 1e3:6.2f} ms/frame   vcore {ours * 1e3:6.2f} ms/frame   "
              f"overhead {100 * (ours / bare - 1):+5.1f} %")
        units = encode_vcore(enc_frames)
        dbare, dours = alternating_decode(units)
        print(f"decode  bare PyAV {dbare * 1e3:6.2f} ms/frame   vcore {dours * 1e3:6.2f} ms/frame   "
              f"overhead {100 * (dours / dbare - 1):+5.1f} %")
        del enc_frames

        # Loopbacks, interleaved and repeated: the least CPU per frame of each side counts
        # (a shared machine only ever adds CPU time).
        sides: dict[str, Any] = {}

        key = os.urandom(30) if args.srtp else None
        label = " (SRTP AES_CM_128_HMAC_SHA1_80 on every side)" if key else " (plain RTP on every side)"
        print("loopbacks" + label)

        def vcore_side(n: int) -> float:
            cpu, got, lat = vcore_loopback(clip, n, key)
            if n == frames:
                sides["vcore_info"] = (got, lat)
            return cpu

        sides["vcore"] = vcore_side
        sides["vcore, two processes"] = lambda n: run_pair(*vcore_commands(clip, n, free_port(), key))
        sides["codec floor"] = lambda n: codec_floor(clip, n)
        if not args.skip_peers and shutil.which("gst-launch-1.0"):
            sides["GStreamer"] = lambda n: run_pair(*gst_commands(clip, n, free_port(), key))
        if not args.skip_peers and shutil.which("ffmpeg"):
            sdp = os.path.join(tmp, "rx.sdp")
            sides["ffmpeg"] = lambda n: run_pair(*ffmpeg_commands(clip, n, free_port(), sdp, key))
        if not args.skip_peers and not args.skip_aiortc and _have_aiortc():
            from aiortc_loopback import aiortc_loopback  # benchmarks/ is on sys.path when run as a script

            # aiortc always encrypts (DTLS-SRTP): compare it with the --srtp run.
            sides["aiortc, same x264 settings"] = lambda n: aiortc_loopback(clip, n, same_settings=True)[0]
            sides["aiortc as shipped"] = lambda n: aiortc_loopback(clip, n, same_settings=False)[0]
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            for name, run in list(sides.items()):
                if name.endswith("_info"):
                    continue
                best[name] = min(best.get(name, float("inf")), differential(run, frames))
        got, lat = sides["vcore_info"]
        vc = best["vcore"]
        print(f"loopback vcore       {vc * 1e3:6.2f} ms CPU/frame  ({got}/{frames} frames decoded; latency "
              f"p50 {lat[50] * 1e3:.1f} ms p95 {lat[95] * 1e3:.1f} ms p99 {lat[99] * 1e3:.1f} ms)")
        vp = best["vcore, two processes"]
        print(f"loopback vcore, two processes (sender and receiver apart, as the peers run) {vp * 1e3:6.2f} ms CPU/frame")
        for name in ("GStreamer", "ffmpeg", "aiortc, same x264 settings", "aiortc as shipped"):
            if name in best:
                print(f"loopback {name:<26} {best[name] * 1e3:6.2f} ms CPU/frame   vcore/peer {vc / best[name]:.2f}")
            else:
                print(f"loopback {name:<26} skipped (not installed, --skip-peers or --skip-aiortc)")
        floor = best["codec floor"]
        print(f"codec floor (paced read + x264 + decode, one thread) {floor * 1e3:6.2f} ms CPU/frame = "
              f"{floor / vc:.2f} of vcore's loopback"
              + "".join(f", {floor / best[n]:.2f} of {n}'s" for n in ("GStreamer", "ffmpeg") if n in best))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


# ---------------------------------------------------------------- pytest-benchmark entry points


@pytest.fixture(scope="module")
def bench_frames() -> Any:
    tmp = tempfile.mkdtemp(prefix="vcore-bench-")
    clip = os.path.join(tmp, "clip.yuv")
    make_clip(clip, 60)
    frames = load_frames(clip, 60)
    shutil.rmtree(tmp, ignore_errors=True)
    return frames


@pytest.mark.parametrize("side", ["pyav", "vcore"])
def test_encode_720p(benchmark: Any, bench_frames: Any, side: str) -> None:
    fn = encode_bare if side == "pyav" else encode_vcore
    units = benchmark.pedantic(fn, args=(bench_frames,), rounds=3, iterations=1)
    assert len(units) == len(bench_frames)


@pytest.mark.parametrize("side", ["pyav", "vcore"])
def test_decode_720p(benchmark: Any, bench_frames: Any, side: str) -> None:
    units = encode_vcore(bench_frames)
    if side == "pyav":
        n = benchmark.pedantic(decode_bare, args=([u.data for u in units],), rounds=3, iterations=1)
    else:
        n = benchmark.pedantic(decode_vcore, args=(units,), rounds=3, iterations=1)
    assert n == len(units)


if __name__ == "__main__":
    sys.exit(main())
