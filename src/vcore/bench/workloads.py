"""Benchmark workloads: one implementation of each measurement.

Kernel workloads take the kernel module explicitly (compiled or pure-Python
twin, see ``vcore._speedups.load_twin``) so the fast path's worth is visible;
peer workloads (aiortc, PyAV codecs) import their peer lazily.
"""

from __future__ import annotations

import fractions
import functools
import hashlib
import os
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np


@dataclass
class Workload:
    """A prepared measurement: ``run()`` processes ``items`` items of ``unit`` (and ``nbytes`` bytes)."""

    name: str
    run: Callable[[], object]
    items: int
    unit: str
    nbytes: int = 0
    prepare: Callable[[], None] | None = None  # untimed, before each run (fresh receiver state)


@functools.lru_cache(maxsize=8)
def h264_clip(
    width: int = 1280, height: int = 720, fps: int = 30, bitrate: int = 1_500_000, seconds: float = 3.0
) -> tuple[bytes, ...]:
    """Access units (Annex B) of an FFmpeg testsrc2 clip encoded by libx264 at conferencing settings.

    Cached in memory and on disk (temp dir) because encoding is slow on small machines.
    """
    key = hashlib.sha1(f"{width}x{height}@{fps}:{bitrate}:{seconds}".encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"vcore-bench-{key}.h264"
    frames = int(seconds * fps)
    import av
    from av.video.frame import PictureType

    if not cache.exists():
        src = av.open(f"testsrc2=size={width}x{height}:rate={fps}", format="lavfi")
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.time_base = fractions.Fraction(1, fps)
        enc.bit_rate = bitrate
        enc.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline",
                       "x264-params": f"keyint={2 * fps}"}
        parts: list[bytes] = []
        for i, frame in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts = i
            frame.pict_type = PictureType.NONE
            parts.extend(bytes(p) for p in enc.encode(frame))
        parts.extend(bytes(p) for p in enc.encode(None))
        src.close()
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(b"".join(len(p).to_bytes(4, "big") + p for p in parts))
        tmp.replace(cache)
    data = cache.read_bytes()
    units = []
    pos = 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        units.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return tuple(units)


def h264_rtp_workload(fp: ModuleType, units: tuple[bytes, ...], mode: int = 1, mtu: int = 1200) -> Workload:
    """Packetize every access unit to RtpPackets and depacketize them back to access units."""
    count = sum(len(fp.h264_packetize(u, 0, 96, 1, 0, mtu, mode)) for u in units)
    nbytes = sum(len(u) for u in units)
    packetize = fp.h264_packetize
    depacketizer_cls = fp.H264Depacketizer

    def run() -> int:
        dp = depacketizer_cls()
        push = dp.push
        seq = 0
        ts = 0
        n = 0
        for unit in units:
            packets = packetize(unit, ts, 96, 1, seq, mtu, mode)
            seq = (seq + len(packets)) & 0xFFFF
            ts += 3000
            for p in packets:
                push(p)
            n += len(packets)
        return n

    return Workload(f"h264 rtp round trip ({fp.__name__})", run, count, "packet", nbytes)


def h264_rtp_workload_aiortc(units: tuple[bytes, ...]) -> Workload:
    """aiortc's H.264 packetizer (``H264Encoder._packetize``) and depayloader (``h264_depayload``)."""
    from aiortc.codecs.h264 import H264Encoder, h264_depayload

    split = H264Encoder._split_bitstream
    packetize = H264Encoder._packetize
    count = sum(len(packetize(split(u))) for u in units)
    nbytes = sum(len(u) for u in units)

    def run() -> int:
        n = 0
        for unit in units:
            payloads = packetize(split(unit))
            frame = b"".join([h264_depayload(p) for p in payloads])
            n += len(payloads)
            del frame
        return n

    return Workload("h264 rtp round trip (aiortc)", run, count, "packet", nbytes)


def h264_wire_workload(fp: ModuleType, units: tuple[bytes, ...], mode: int = 1, mtu: int = 1200) -> Workload:
    """The path a wire packet takes: packetize, serialize to datagrams, parse them, depacketize."""
    count = sum(len(fp.h264_packetize(u, 0, 96, 1, 0, mtu, mode)) for u in units)
    nbytes = sum(len(u) for u in units)
    packetize, parse, depacketizer_cls = fp.h264_packetize, fp.RtpPacket.parse, fp.H264Depacketizer

    def run() -> int:
        dp = depacketizer_cls()
        push = dp.push
        seq = ts = n = 0
        for unit in units:
            datagrams = [p.serialize() for p in packetize(unit, ts, 96, 1, seq, mtu, mode)]
            seq = (seq + len(datagrams)) & 0xFFFF
            ts += 3000
            for d in datagrams:
                push(parse(d))
            n += len(datagrams)
        return n

    return Workload(f"h264 wire round trip ({fp.__name__})", run, count, "packet", nbytes)


def h264_wire_workload_aiortc(units: tuple[bytes, ...], mtu: int = 1200) -> Workload:
    """aiortc doing the same: ``H264Encoder._packetize``, ``RtpPacket`` serialize and parse, ``h264_depayload``."""
    from aiortc.codecs.h264 import H264Encoder, h264_depayload
    from aiortc.rtp import RtpPacket

    split = H264Encoder._split_bitstream
    packetize = H264Encoder._packetize
    count = sum(len(packetize(split(u))) for u in units)
    nbytes = sum(len(u) for u in units)

    def run() -> int:
        seq = ts = n = 0
        for unit in units:
            datagrams = []
            for payload in packetize(split(unit)):
                pkt = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, ssrc=1)
                pkt.payload = payload
                datagrams.append(pkt.serialize())
                seq = (seq + 1) & 0xFFFF
            ts += 3000
            frame = b"".join([h264_depayload(RtpPacket.parse(d).payload) for d in datagrams])
            n += len(datagrams)
            del frame
        return n

    return Workload("h264 wire round trip (aiortc)", run, count, "packet", nbytes)


def _sample_packets(fp: ModuleType, units: tuple[bytes, ...]) -> list[bytes]:
    out = []
    seq = 0
    for i, unit in enumerate(units):
        for p in fp.h264_packetize(unit, i * 3000, 96, 0x1234, seq, 1200, 1):
            out.append(p.serialize())
            seq = (seq + 1) & 0xFFFF
    return out


def rtp_packet_workload(fp: ModuleType, units: tuple[bytes, ...]) -> Workload:
    """Parse then serialize every packet of a real H.264 RTP stream."""
    datas = _sample_packets(fp, units)
    parse = fp.RtpPacket.parse

    def run() -> int:
        for d in datas:
            parse(d).serialize()
        return len(datas)

    return Workload(f"rtp parse+serialize ({fp.__name__})", run, len(datas), "packet", sum(map(len, datas)))


def rtp_packet_workload_aiortc(fp: ModuleType, units: tuple[bytes, ...]) -> Workload:
    """The same packets through ``aiortc.rtp.RtpPacket``."""
    from aiortc.rtp import RtpPacket

    datas = _sample_packets(fp, units)
    parse = RtpPacket.parse

    def run() -> int:
        for d in datas:
            parse(d).serialize()
        return len(datas)

    return Workload("rtp parse+serialize (aiortc)", run, len(datas), "packet", sum(map(len, datas)))


def g711_workload(fp: ModuleType | None, direction: str, samples: int = 1 << 20) -> Workload:
    """µ-law encode or decode of ``samples`` samples; ``fp=None`` measures FFmpeg's pcm_mulaw through PyAV."""
    rng = np.random.default_rng(1)
    pcm = rng.integers(-32768, 32768, samples, dtype=np.int16)
    if fp is not None:
        codes = fp.g711_encode(pcm, False)
        if direction == "encode":
            encode = fp.g711_encode
            return Workload(f"g711 encode ({fp.__name__})", lambda: encode(pcm, False), samples, "sample")
        decode = fp.g711_decode
        return Workload(f"g711 decode ({fp.__name__})", lambda: decode(codes, False), samples, "sample")
    import av

    if direction == "encode":
        ctx = av.CodecContext.create("pcm_mulaw", "w")
        ctx.sample_rate, ctx.format, ctx.layout = 8000, "s16", "mono"
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 8000

        def run_enc() -> object:
            return ctx.encode(frame)

        return Workload("g711 encode (ffmpeg pcm_mulaw via PyAV)", run_enc, samples, "sample")
    dctx = av.CodecContext.create("pcm_mulaw", "r")
    dctx.sample_rate, dctx.layout = 8000, "mono"
    packet_bytes = bytes(rng.integers(0, 256, samples, dtype=np.uint8))

    def run_dec() -> object:
        return [f.to_ndarray() for f in dctx.decode(av.Packet(packet_bytes))]

    return Workload("g711 decode (ffmpeg pcm_mulaw via PyAV)", run_dec, samples, "sample")


# ---------------------------------------------------------------------------
# SRTP per packet: vcore (either kernel twin) beside pylibsrtp
# ---------------------------------------------------------------------------

SRTP_PACKET_SIZE = 1200
SRTP_SSRC = 0x12345678
SRTP_IMPLS = ("pylibsrtp", "vcore-c", "vcore-py")


def rtp_packets(n: int, size: int = SRTP_PACKET_SIZE, start: int = 1000, ssrc: int = SRTP_SSRC) -> list[bytes]:
    """``n`` plain RTP packets of ``size`` bytes (PT 96, random payload, consecutive sequence numbers)."""
    pay = os.urandom(size - 12)
    return [struct.pack("!BBHII", 0x80, 96, (start + i) & 0xFFFF, i * 3000, ssrc) + pay for i in range(n)]


def srtp_test_key(suite: str) -> bytes:
    """A fixed master key || salt of the right length for ``suite`` (benchmarks only)."""
    from ..srtp import SRTP_SUITES

    s = SRTP_SUITES[suite]
    return bytes(range(s.master_key_len + s.master_salt_len))


def srtp_session(impl: str, suite: str, outbound: bool, key: bytes | None = None) -> Any:
    """A fresh SRTP session of ``impl`` ("vcore-c", "vcore-py", "vcore" = selected twin, "pylibsrtp")."""
    key = srtp_test_key(suite) if key is None else key
    if impl == "pylibsrtp":
        import pylibsrtp

        pol = pylibsrtp.Policy
        profiles = {"AES_CM_128_HMAC_SHA1_80": pol.SRTP_PROFILE_AES128_CM_SHA1_80,
                    "AEAD_AES_128_GCM": pol.SRTP_PROFILE_AEAD_AES_128_GCM}
        ssrc_type = pol.SSRC_ANY_OUTBOUND if outbound else pol.SSRC_ANY_INBOUND
        return pylibsrtp.Session(pol(key=key, ssrc_type=ssrc_type, srtp_profile=profiles[suite]))
    from .._speedups import load_twin
    from ..srtp import SrtpSession

    if impl == "vcore":
        return SrtpSession(suite, key)
    if impl not in ("vcore-c", "vcore-py"):
        raise ValueError(f"unknown SRTP implementation {impl!r}")
    return SrtpSession(suite, key, kernel=load_twin("_fastpath_srtp", "c" if impl == "vcore-c" else "py"))


def srtp_workload(impl: str, suite: str, op: str, packets: list[bytes], batch: int = 0) -> Workload:
    """``protect`` / ``unprotect`` (or ``protect_many`` with ``batch``) of ``packets`` with ``impl``.

    ``prepare()`` makes a fresh session (untimed): an SRTP receiver refuses replays,
    so each ``run()`` needs one.
    """
    if op == "unprotect":
        sender = srtp_session("pylibsrtp" if impl == "pylibsrtp" else impl, suite, True)
        data = [sender.protect(p) for p in packets]
    else:
        data = packets
    state: dict[str, Any] = {}

    def prepare() -> None:
        state["s"] = srtp_session(impl, suite, op != "unprotect")

    def run() -> int:
        f = getattr(state["s"], op)
        if batch:
            for i in range(0, len(data), batch):
                f(data[i : i + batch])
        else:
            for p in data:
                f(p)
        return len(data)

    prepare()
    return Workload(f"srtp {op} {suite} ({impl})", run, len(data), "packet",
                    sum(map(len, data)), prepare=prepare)


# ---------------------------------------------------------------------------
# Video jitter buffer and the whole receive path
# ---------------------------------------------------------------------------


def jitter_workload(jk: ModuleType, fp: ModuleType, raw: list[bytes], spacing: float = 0.001) -> Workload:
    """``push`` + ``pop`` of every packet of an H.264 RTP stream through a fresh ``VideoJitterCore``.

    Frames come out whole (Annex B); ``run()`` returns the frames released.
    """
    packets = [fp.RtpPacket.parse(b) for b in raw]
    pairs = [(p, k * spacing) for k, p in enumerate(packets)]
    core = jk.VideoJitterCore

    def run() -> int:
        jb = core()
        push = jb.push
        pop = jb.pop
        out = 0
        for p, t in pairs:
            push(p, t)
            out += len(pop(t))
        return out

    return Workload(f"video jitter push+pop ({jk.__name__})", run, len(pairs), "packet")


def receive_path_workload(raw: list[bytes], suite: str = "AES_CM_128_HMAC_SHA1_80",
                          spacing: float = 0.001) -> Workload:
    """A receiver's work per packet: SRTP unprotect, RTP parse, jitter push + pop (depacketize).

    Uses the selected twins (compiled when built) through the public classes.
    ``run()`` returns the packets handled; ``prepare()`` makes fresh receiver state.
    """
    from ..jitter import VideoJitterBuffer
    from ..rtp.packet import RtpPacket
    from ..srtp import SrtpSession

    key = srtp_test_key(suite)
    tx = SrtpSession(suite, key)
    protected = [(tx.protect(b), k * spacing) for k, b in enumerate(raw)]
    state: dict[str, Any] = {}

    def prepare() -> None:
        state["s"] = SrtpSession(suite, key)
        state["jb"] = VideoJitterBuffer()

    def run() -> int:
        unprotect = state["s"].unprotect
        jb = state["jb"]
        push, pop, parse = jb.push, jb.pop, RtpPacket.parse
        frames = 0
        for data, t in protected:
            push(parse(unprotect(data)), t)
            frames += len(pop(t))
        return len(protected)

    prepare()
    return Workload("receive path: unprotect+parse+jitter+depacketize", run, len(protected), "packet",
                    prepare=prepare)


def send_path_workload(units: tuple[bytes, ...], suite: str = "AES_CM_128_HMAC_SHA1_80", mtu: int = 1190) -> Workload:
    """A sender's work per packet: H.264 packetize (RFC 6184 mode 1) + serialize + SRTP protect."""
    from .._speedups import fastpath
    from ..srtp import SrtpSession

    count = sum(len(fastpath.h264_packetize(u, 0, 96, 1, 0, mtu, 1)) for u in units)
    key = srtp_test_key(suite)
    state: dict[str, Any] = {}

    def prepare() -> None:
        state["s"] = SrtpSession(suite, key)

    def run() -> int:
        protect = state["s"].protect
        packetize = fastpath.h264_packetize
        seq = ts = n = 0
        for unit in units:
            packets = packetize(unit, ts, 96, 1, seq, mtu, 1)
            seq = (seq + len(packets)) & 0xFFFF
            ts += 3000
            for p in packets:
                protect(p.serialize())
            n += len(packets)
        return n

    prepare()
    return Workload("send path: packetize+serialize+protect", run, count, "packet", prepare=prepare)


def per_item(w: Workload, rounds: int = 3, budget: float = 5.0) -> tuple[float, float]:
    """Least (CPU seconds, wall seconds) per item over up to ``rounds`` runs within ``budget`` seconds."""
    best_cpu = best_wall = float("inf")
    start = time.monotonic()
    for _ in range(rounds):
        if w.prepare is not None:
            w.prepare()
        c0, t0 = time.process_time(), time.perf_counter()
        w.run()
        c1, t1 = time.process_time(), time.perf_counter()
        best_cpu = min(best_cpu, (c1 - c0) / w.items)
        best_wall = min(best_wall, (t1 - t0) / w.items)
        if time.monotonic() - start > budget:
            break
    return best_cpu, best_wall


# ---------------------------------------------------------------------------
# Video encode and decode per call profile
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoProfile:
    """A call's video: picture size, frame rate and the bitrate vcore uses for it."""

    name: str
    width: int
    height: int
    fps: int
    bitrate: int


CALL_PROFILES: tuple[VideoProfile, ...] = (
    VideoProfile("360p15", 640, 360, 15, 300_000),
    VideoProfile("360p30", 640, 360, 30, 500_000),
    VideoProfile("480p15", 854, 480, 15, 450_000),
    VideoProfile("480p30", 854, 480, 30, 700_000),
    VideoProfile("720p15", 1280, 720, 15, 900_000),
    VideoProfile("720p30", 1280, 720, 30, 1_500_000),
    VideoProfile("1080p15", 1920, 1080, 15, 1_800_000),
    VideoProfile("1080p30", 1920, 1080, 30, 3_000_000),
)


def call_profile(name: str) -> VideoProfile:
    """The profile called ``name`` ("720p30")."""
    for p in CALL_PROFILES:
        if p.name == name:
            return p
    raise KeyError(f"unknown call profile {name!r}; known: {', '.join(p.name for p in CALL_PROFILES)}")


def raw_frames(width: int, height: int, count: int, fps: int = 30, noise: int = 0) -> list[Any]:
    """``count`` testsrc2 frames (yuv420p PyAV frames) with capture stamps ``1/fps`` apart.

    ``noise`` (0-100) adds temporal noise like a camera sensor's (FFmpeg ``noise`` filter):
    a clean synthetic picture is far cheaper to encode than a camera's.
    """
    import av

    graph = f"testsrc2=size={width}x{height}:rate={fps},format=yuv420p"
    if noise:
        graph += f",noise=alls={noise}:allf=t"
    src = av.open(graph, format="lavfi")
    frames: list[Any] = []
    try:
        for i, f in enumerate(src.decode(video=0)):
            if i >= count:
                break
            f.pts = round((1000 + i / fps) * 1_000_000)
            f.time_base = fractions.Fraction(1, 1_000_000)
            frames.append(f)
    finally:
        src.close()
    return frames


# the pytest-benchmark media file compares these two encoders on the same frames
X264_CONFERENCING = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}


def encode_pyav(frames: list[Any], profile: VideoProfile, preset: str = "ultrafast") -> list[bytes]:
    """Bare PyAV libx264 with vcore's conferencing settings and the same 90 kHz timestamps."""
    import av
    from av.video.frame import PictureType

    ctx: Any = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = profile.width, profile.height, "yuv420p"
    ctx.time_base = fractions.Fraction(1, 90000)
    ctx.framerate = fractions.Fraction(profile.fps)
    ctx.bit_rate = profile.bitrate
    ctx.gop_size = profile.fps * 5
    ctx.max_b_frames = 0
    rate = str(profile.bitrate)
    ctx.options = dict(X264_CONFERENCING, preset=preset, **{"forced-idr": "1", "maxrate": rate, "bufsize": rate,
                                                            "x264-params": "scenecut=0:repeat-headers=1"})
    ctx.open()
    out: list[Any] = []
    t0 = frames[0].time
    tb90k = fractions.Fraction(1, 90000)
    for f in frames:
        stamp = f.pts, f.time_base
        f.pts, f.time_base, f.pict_type = round((f.time - t0) * 90000), tb90k, PictureType.NONE
        out.extend(bytes(p) for p in ctx.encode(f))
        f.pts, f.time_base = stamp
    return out


def encode_vcore(frames: list[Any], profile: VideoProfile, codec: str = "libx264",
                 preset: str = "ultrafast") -> list[Any]:
    """``vcore.media.H264Encoder`` on ``frames``; returns its access units."""
    from ..media import H264Encoder

    enc = H264Encoder(profile.width, profile.height, profile.fps, profile.bitrate, codec=codec, preset=preset)
    out = []
    for f in frames:
        out.extend(enc.encode(f))
    return out


def decode_pyav(units: list[bytes]) -> int:
    """Bare PyAV h264 decoding (one thread); returns the frames decoded."""
    import av

    ctx: Any = av.CodecContext.create("h264", "r")
    ctx.thread_count = 1
    return sum(len(ctx.decode(av.Packet(u))) for u in units)


def decode_vcore(units: list[Any]) -> int:
    """``vcore.media.H264Decoder`` on access units; returns the frames decoded."""
    from ..media import H264Decoder

    dec = H264Decoder()
    return sum(len(dec.decode(u)) for u in units)


@dataclass
class EncodeResult:
    """One encoder at one profile: cost per second of call, latency, real-time verdict."""

    codec: str
    preset: str
    profile: str
    frames: int = 0
    cpu_per_frame: float = 0.0  # process CPU seconds (every thread)
    wall_per_frame: float = 0.0
    latency_mean: float = 0.0  # seconds from encode() call to its access unit
    latency_p95: float = 0.0
    realtime: bool = False
    error: str | None = None

    @property
    def cpu_per_second(self) -> float:
        """CPU seconds spent per second of call (in cores) at the profile's frame rate."""
        return self.cpu_per_frame * call_profile(self.profile).fps


def measure_encode(frames: list[Any], profile: VideoProfile, codec: str = "libx264", preset: str = "ultrafast",
                   budget: float = 10.0) -> tuple[EncodeResult, list[Any]]:
    """Encode ``frames`` as fast as possible with ``vcore.media.H264Encoder``; stops after ``budget`` s.

    Real time: the encoder keeps up with the profile's frame rate (wall time per frame
    below the frame period). Encode latency: wall time of each ``encode()`` call that
    returned its unit (zero-latency tuning: the same call). An encoder that fails to
    open or to encode gives a result with ``error`` set, never an exception.
    Returns the result and the access units.
    """
    from ..media import H264Encoder

    res = EncodeResult(codec, preset, profile.name)
    try:
        enc = H264Encoder(profile.width, profile.height, profile.fps, profile.bitrate, codec=codec, preset=preset)
    except Exception as exc:
        res.error = f"not available: {exc}"
        return res, []
    units: list[Any] = []
    lat: list[float] = []
    deadline = time.monotonic() + budget
    c0, t0 = time.process_time(), time.perf_counter()
    n = 0
    try:
        for f in frames:
            s = time.perf_counter()
            out = enc.encode(f)
            e = time.perf_counter()
            if out:
                lat.append(e - s)
                units.extend(out)
            n += 1
            if time.monotonic() > deadline:
                break
        units.extend(enc.flush())
    except Exception as exc:
        res.error = f"encoding failed: {exc}"
        return res, units
    finally:
        enc.close()
    c1, t1 = time.process_time(), time.perf_counter()
    if n == 0:
        res.error = "no frames"
        return res, units
    res.frames = n
    res.cpu_per_frame = (c1 - c0) / n
    res.wall_per_frame = (t1 - t0) / n
    if lat:
        lat.sort()
        res.latency_mean = sum(lat) / len(lat)
        res.latency_p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
    res.realtime = res.wall_per_frame < 1.0 / profile.fps and not (len(lat) < n // 2)
    return res, units


def measure_decode(units: list[Any], budget: float = 10.0) -> tuple[float, float, int]:
    """(CPU, wall) seconds per frame and frames decoded by ``vcore.media.H264Decoder`` (one thread)."""
    from ..media import H264Decoder

    dec = H264Decoder()
    deadline = time.monotonic() + budget
    c0, t0 = time.process_time(), time.perf_counter()
    n = 0
    for u in units:
        n += len(dec.decode(u))
        if time.monotonic() > deadline:
            break
    c1, t1 = time.process_time(), time.perf_counter()
    dec.close()
    if n == 0:
        raise RuntimeError("the decoder produced no frame")
    return (c1 - c0) / n, (t1 - t0) / n, n


# ---------------------------------------------------------------------------
# VISCA round trip (a real port, or the emulator on a pty)
# ---------------------------------------------------------------------------


async def visca_round_trip(port: str = "emulate", count: int = 20, baudrate: int = 9600,
                           timeout: float = 10.0) -> dict[str, float]:
    """Round trip of a VISCA power inquiry (81 09 04 00 FF -> 90 50 0p FF), ``count`` times.

    ``port`` is a serial device, ``host:port`` for VISCA over IP, or ``"emulate"`` (the
    camera emulator on a pty at ``baudrate``). Returns mean, p95 and min in seconds and the
    wire time of the 9 bytes at ``baudrate``. Raises ``TimeoutError`` after ``timeout`` s.
    """
    import asyncio

    from ..visca import CameraEmulator, ViscaCamera
    from ..visca.transport import wire_time

    emu = None
    cam = None

    async def run() -> list[float]:
        nonlocal emu, cam
        if port == "emulate":
            emu = CameraEmulator(baudrate=baudrate, speed_factor=1000)
            path = await emu.start_serial(baudrate)
            cam = await ViscaCamera.open_serial(path, baudrate=baudrate)
        elif ":" in port and not port.startswith("/"):
            host, _, p = port.rpartition(":")
            cam = await ViscaCamera.open_ip(host, int(p))
        else:
            cam = await ViscaCamera.open_serial(port, baudrate=baudrate)
        await cam.power_state()  # warm up
        times = []
        for _ in range(count):
            t = time.perf_counter()
            await cam.power_state()
            times.append(time.perf_counter() - t)
        return times

    try:
        times = await asyncio.wait_for(run(), timeout)
    finally:
        if cam is not None:
            await cam.close()
        if emu is not None:
            await emu.stop()
    times.sort()
    return {"mean": sum(times) / len(times), "p95": times[min(len(times) - 1, int(0.95 * len(times)))],
            "min": times[0], "wire": wire_time(9, baudrate), "count": float(len(times))}
