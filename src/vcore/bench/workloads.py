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
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np


@dataclass
class Workload:
    """A prepared measurement: ``run()`` processes ``items`` items of ``unit`` (and ``nbytes`` bytes)."""

    name: str
    run: Callable[[], object]
    items: int
    unit: str
    nbytes: int = 0


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
