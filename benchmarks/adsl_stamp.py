"""The picture every ADSL-benchmark sender sends: testsrc2 at 720p with a burned-in stamp.

Three rows of 24 blocks (40 × 40 pixels at 720p, white = 1, black = 0) across
the top-left of the luma plane carry the frame index, the capture time
(``time.monotonic()`` in ms, modulo 2^24) and a check word (index XOR time).
Any stack's receiver reads them back from the *decoded* picture, whatever
size it was scaled to (down to 320 × 180: 10-pixel blocks), so capture-to-
display latency, frame loss and freezes are measured the same way for vcore
and for its peers; the index also names the source frame a received picture is
compared with (PSNR). Network namespaces share ``CLOCK_MONOTONIC``, so sender
and receiver times compare directly.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

import av
import numpy as np

W, H, FPS = 1280, 720, 30
BLOCK = 40  # pixels at 720p
BITS = 24
TOP = 8
LEFT = 8
_MASK = (1 << BITS) - 1


def _rows(index: int, ms: int) -> list[int]:
    return [index & _MASK, ms & _MASK, (index ^ ms) & _MASK]


def stamp(y: np.ndarray, index: int, ms: int) -> None:
    """Burn the stamp into a 720p luma plane (in place)."""
    for r, word in enumerate(_rows(index, ms)):
        top = TOP + r * BLOCK
        for b in range(BITS):
            bit = (word >> (BITS - 1 - b)) & 1
            left = LEFT + b * BLOCK
            y[top:top + BLOCK, left:left + BLOCK] = 235 if bit else 16


def read_stamp(y: np.ndarray) -> tuple[int, int] | None:
    """(frame index, capture ms) from a decoded luma plane of any size, or None if unreadable."""
    h, w = y.shape[:2]
    s = h / H
    words = []
    for r in range(3):
        word = 0
        cy = int((TOP + r * BLOCK + BLOCK / 2) * s)
        for b in range(BITS):
            cx = int((LEFT + b * BLOCK + BLOCK / 2) * s)
            d = max(1, int(BLOCK * s / 4))
            value = float(y[cy - d:cy + d, cx - d:cx + d].mean())
            word = (word << 1) | (value > 125)
        words.append(word)
    index, ms, check = words
    if (index ^ ms) & _MASK != check:
        return None
    return index, ms


def luma(frame: Any) -> np.ndarray:
    """The luma plane of a PyAV video frame as a 2-D uint8 array (any pixel format)."""
    if frame.format.name not in ("yuv420p", "yuvj420p", "nv12"):
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    arr = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
    return arr[:, :frame.width]


def source_frame(index: int) -> np.ndarray:
    """The luma plane of testsrc2 frame ``index`` (without the stamp), for PSNR."""
    container = av.open(f"testsrc2=size={W}x{H}:rate={FPS}", format="lavfi")
    try:
        for n, frame in enumerate(container.decode(video=0)):
            if n == index:
                return luma(frame).copy()
    finally:
        container.close()
    raise ValueError(index)


class StampedFrames:
    """testsrc2 frames with the stamp, paced in real time (``next()`` blocks until the frame is due).

    Frames a slow reader missed are skipped, as a camera would (the index still
    counts them).
    """

    def __init__(self) -> None:
        self._container = av.open(f"testsrc2=size={W}x{H}:rate={FPS},format=yuv420p", format="lavfi")
        self._frames = self._container.decode(video=0)
        self._t0: float | None = None
        self.index = -1

    def next(self) -> tuple[Any, float]:
        """The next due frame (yuv420p, stamped) and its capture time (monotonic)."""
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + (self.index + 1) / FPS
        if due > now:
            time.sleep(due - now)
        else:  # late: skip to the frame due now
            while self._t0 + (self.index + 2) / FPS <= now:
                next(self._frames)
                self.index += 1
        frame = next(self._frames)
        self.index += 1
        t = time.monotonic()
        y = np.frombuffer(frame.planes[0], np.uint8).reshape(H, frame.planes[0].line_size)
        y = y[:, :W]
        out = av.VideoFrame(W, H, "yuv420p")
        for i, plane in enumerate(frame.planes):
            out.planes[i].update(bytes(plane))
        y_out = np.frombuffer(out.planes[0], np.uint8).reshape(H, out.planes[0].line_size)
        stamp(y_out[:, :W], self.index, int(t * 1000))
        out.pts = self.index
        out.time_base = Fraction(1, FPS)
        return out, t

    def close(self) -> None:
        self._container.close()
