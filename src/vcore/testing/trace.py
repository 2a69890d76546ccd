"""A real 720p H.264 RTP trace for tests and benchmarks.

:func:`make_h264_trace` encodes FFmpeg's ``testsrc`` (through PyAV's lavfi input)
with libx264 (preset ultrafast, tune zerolatency, baseline: IDR + P chain, one
reference), packetizes each access unit with :class:`vcore.H264Packetizer`
(RFC 6184 mode 1) and paces the packets at the frame rate. The result is cached
in a temporary directory, keyed by its parameters.

Thread-safety: functions are re-entrant; the cache write is atomic (rename).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["TraceFrame", "H264Trace", "make_h264_trace"]

CLOCK_RATE = 90000  # RFC 6184 §8.2.1


@dataclass(frozen=True)
class TraceFrame:
    """One encoded frame of the trace: its RTP timestamp, whether it is an IDR, its packets."""

    index: int
    timestamp: int
    keyframe: bool
    first_seq: int  # extended (never wraps inside the trace)
    packets: int
    send_time: float
    data: bytes  # the Annex B access unit as encoded


@dataclass(frozen=True)
class H264Trace:
    """Packets ``(send_time, rtp_bytes)`` in send order, and the frames they carry."""

    packets: list[tuple[float, bytes]]
    frames: list[TraceFrame]
    fps: int
    ssrc: int
    payload_type: int

    def frame_by_timestamp(self) -> dict[int, TraceFrame]:
        """Frames keyed by RTP timestamp."""
        return {f.timestamp: f for f in self.frames}


def make_h264_trace(
    seconds: float = 10.0,
    fps: int = 30,
    bitrate: int = 1_500_000,
    keyint: int = 60,
    width: int = 1280,
    height: int = 720,
    mtu: int = 1200,
    first_seq: int = 65000,
    first_timestamp: int = 0xFFFF0000,
    ssrc: int = 0x1234ABCD,
    packet_spacing: float = 50e-6,
    all_intra: bool = False,
    cache: bool = True,
) -> H264Trace:
    """Encode, packetize and pace a trace; cached in ``$TMPDIR/vcore-traces``.

    The defaults make the 16-bit sequence number and the 32-bit timestamp wrap
    inside the trace. Frame ``k`` is sent at ``k / fps`` seconds, its packets
    ``packet_spacing`` apart. ``keyint`` frames between IDRs (2 s at 30 fps).
    """
    key = repr(
        (seconds, fps, bitrate, keyint, width, height, mtu, first_seq, first_timestamp, ssrc, packet_spacing, all_intra)
    )
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    folder = os.path.join(tempfile.gettempdir(), "vcore-traces")
    path = os.path.join(folder, f"h264-{digest}.pickle")
    if cache and os.path.exists(path):
        with open(path, "rb") as fh:
            trace: H264Trace = pickle.load(fh)
        return trace
    trace = _build(
        seconds, fps, bitrate, keyint, width, height, mtu, first_seq, first_timestamp, ssrc, packet_spacing, all_intra
    )
    if cache:
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump(trace, fh)
        os.replace(tmp, path)
    return trace


def _encode(
    seconds: float, fps: int, bitrate: int, keyint: int, width: int, height: int, all_intra: bool
) -> list[tuple[bytes, bool]]:
    import av  # PyAV is needed only to build a trace
    from av.video.frame import PictureType

    count = int(round(seconds * fps))
    out: list[tuple[bytes, bool]] = []
    with av.open(f"testsrc=size={width}x{height}:rate={fps}", format="lavfi") as src:
        enc = av.CodecContext.create("libx264", "w")
        enc.width = width
        enc.height = height
        enc.pix_fmt = "yuv420p"
        enc.bit_rate = bitrate
        enc.time_base = Fraction(1, fps)
        enc.framerate = Fraction(fps, 1)
        enc.gop_size = keyint
        enc.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline", "threads": "1"}
        n = 0
        for frame in src.decode(video=0):
            if n >= count:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts = n
            # lavfi marks every frame I: let x264 choose unless all-intra is wanted
            frame.pict_type = PictureType.I if all_intra else PictureType.NONE
            for pkt in enc.encode(frame):
                out.append((bytes(pkt), bool(pkt.is_keyframe)))
            n += 1
        for pkt in enc.encode(None):
            out.append((bytes(pkt), bool(pkt.is_keyframe)))
    return out


def _build(
    seconds: float,
    fps: int,
    bitrate: int,
    keyint: int,
    width: int,
    height: int,
    mtu: int,
    first_seq: int,
    first_timestamp: int,
    ssrc: int,
    packet_spacing: float,
    all_intra: bool,
) -> H264Trace:
    from ..payload.h264 import H264Packetizer

    units = _encode(seconds, fps, bitrate, keyint, width, height, all_intra)
    pt = 96
    packetizer = H264Packetizer(payload_type=pt, ssrc=ssrc, mtu=mtu, sequence_number=first_seq)
    packets: list[tuple[float, bytes]] = []
    frames: list[TraceFrame] = []
    seq = first_seq
    step = CLOCK_RATE // fps
    for k, (au, key) in enumerate(units):
        ts = (first_timestamp + k * step) & 0xFFFFFFFF
        t0 = k / fps
        pkts = packetizer.packetize(au, ts)
        frames.append(TraceFrame(k, ts, key, seq, len(pkts), t0, au))
        for i, p in enumerate(pkts):
            packets.append((t0 + i * packet_spacing, p.serialize()))
        seq += len(pkts)
    return H264Trace(packets, frames, fps, ssrc, pt)
