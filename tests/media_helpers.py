"""Helpers shared by the media tests (no fixtures with side effects)."""

from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np
from av.video.frame import VideoFrame

from vcore.payload.h264 import split_annexb


def noise_frames(n: int, width: int = 320, height: int = 240, seed: int = 1, fps: int = 30) -> list[VideoFrame]:
    """``n`` frames of random noise (incompressible: the encoder always works at its bitrate)."""
    rng = np.random.default_rng(seed)
    frames = []
    base = rng.integers(0, 256, (height * 3 // 2, width), dtype=np.uint8)
    for i in range(n):
        data = np.roll(base, i * 3, axis=1) ^ rng.integers(0, 32, base.shape, dtype=np.uint8)
        f = VideoFrame.from_ndarray(data, format="yuv420p")
        f.pts = 1_000_000 + i * 1_000_000 // fps
        f.time_base = Fraction(1, 1_000_000)
        frames.append(f)
    return frames


def nal_types(data: bytes) -> list[int]:
    return [nal[0] & 0x1F for nal in split_annexb(data)]


def avcc_nals(data: bytes) -> list[bytes]:
    """NAL units of a length-prefixed (AVCC, as in MP4/MKV) sample."""
    out, pos = [], 0
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        out.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return out


def vcore_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("vcore-")}


def write_test_file(path: str, frames: int = 15, fps: int = 30, width: int = 160, height: int = 120) -> None:
    """A small H.264 file of ``frames`` frames (made with PyAV; no external tool)."""
    import av

    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i, f in enumerate(noise_frames(frames, width, height, fps=fps)):
            f.pts, f.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
