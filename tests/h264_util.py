"""Helpers shared by the H.264 tests: a real encoded clip and frame hashes."""

from __future__ import annotations

import fractions
import hashlib
from pathlib import Path

import av


def encode_clip(path: Path, width: int = 320, height: int = 240, frames: int = 45, slice_max: int = 0) -> list[bytes]:
    """Encode an FFmpeg testsrc clip with libx264 (baseline, zerolatency); write Annex B to ``path``.

    Returns the access units. SPS/PPS are in-band before the first IDR.
    """
    src = av.open(f"testsrc=size={width}x{height}:rate=30", format="lavfi")
    enc = av.CodecContext.create("libx264", "w")
    enc.width = width
    enc.height = height
    enc.pix_fmt = "yuv420p"
    enc.time_base = fractions.Fraction(1, 30)
    opts = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline", "g": "15", "bitrate": "400k"}
    x264 = "keyint=15"
    if slice_max:
        x264 += f":slice-max-size={slice_max}"
    opts["x264-params"] = x264
    enc.options = opts
    units: list[bytes] = []
    for i, frame in enumerate(src.decode(video=0)):
        if i >= frames:
            break
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        frame.pict_type = av.video.frame.PictureType.NONE
        units.extend(bytes(p) for p in enc.encode(frame))
    units.extend(bytes(p) for p in enc.encode(None))
    src.close()
    path.write_bytes(b"".join(units))
    return units


def frame_md5(frame: av.VideoFrame) -> str:
    """MD5 of a decoded frame's I420 planes, packed (as ffmpeg -f framemd5 / checksumsink)."""
    return hashlib.md5(frame.to_ndarray(format="yuv420p").tobytes()).hexdigest()


def decode_units(units: list[bytes]) -> list[str]:
    """Frame hashes from decoding access units with PyAV's h264 decoder (single thread, every frame)."""
    dec = av.CodecContext.create("h264", "r")
    dec.thread_count = 1
    out = []
    for unit in units:
        for frame in dec.decode(av.Packet(unit)):
            out.append(frame_md5(frame))
    for frame in dec.decode(None):
        out.append(frame_md5(frame))
    return out


def decode_file(path: Path) -> list[str]:
    with av.open(str(path), format="h264") as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        return [frame_md5(f) for f in container.decode(stream)]
