"""From decoded frames to what the screen shows: the latest picture, scaled once, and how late it is.

A :class:`FrameSlot` is a call's video sink (``Terminal(video_sink=...)``):
the decode thread ``write()``s each frame; it is scaled by libswscale straight
to the size of the screen area that shows it and converted to RGB (one pass,
in the decode thread), and only the latest one is kept — a slow screen drops
pictures, it never delays them. The screen thread ``take()``s it and calls
``shown()`` after the flip: :class:`DisplayStats` then knows how many frames
were decoded and displayed, the display latency (decoded → on screen) and the
CPU time both threads spent on the display path.

:class:`SelfView` wraps the terminal's own video source and copies a small
picture of each frame it reads into another slot (the resident's own picture
in a corner). Thread-safe: one writer thread, one reader thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

__all__ = ["FrameSlot", "SelfView", "DisplayStats", "Picture"]

_LATENCY_SAMPLES = 4096


@dataclass(frozen=True)
class Picture:
    """One frame ready to blit: RGB rows ``(height, width, 3)`` and when it was decoded (monotonic)."""

    rgb: npt.NDArray[np.uint8]
    decoded_at: float
    serial: int


@dataclass(frozen=True)
class DisplayStats:
    """What the display path did: frames decoded/displayed, latency (s), CPU seconds of each thread."""

    decoded: int
    displayed: int
    latency_p50: float | None
    latency_p95: float | None
    convert_cpu: float

    def line(self) -> str:
        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v * 1000:.1f}"
        return (f"decoded={self.decoded} displayed={self.displayed} latency_p50_ms={ms(self.latency_p50)} "
                f"latency_p95_ms={ms(self.latency_p95)} convert_cpu_s={self.convert_cpu:.2f}")


class FrameSlot:
    """The latest decoded frame, scaled to ``size`` (width, height) and in RGB; a video sink."""

    def __init__(self, size: tuple[int, int] = (640, 360)) -> None:
        self._lock = threading.Lock()
        self._size = size
        self._picture: Picture | None = None
        self._serial = 0
        self._taken = 0
        self.decoded = 0
        self.displayed = 0
        self.closed = False
        self._latency: list[float] = []
        self._convert_cpu = 0.0

    @property
    def serial(self) -> int:
        """Counts pictures written; changes when a new one arrives (0: none yet)."""
        return self._serial

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @size.setter
    def size(self, size: tuple[int, int]) -> None:
        w, h = size
        self._size = (max(2, w - w % 2), max(2, h - h % 2))

    def write(self, frame: Any) -> None:
        """A decoded frame (PyAV ``VideoFrame``), from the decode or capture thread."""
        if self.closed:
            return
        t0 = time.thread_time()
        w, h = self._size
        rgb = np.ascontiguousarray(frame.to_ndarray(format="rgb24", width=w, height=h))  # rows may be padded
        now = time.monotonic()
        with self._lock:
            self._serial += 1
            self._picture = Picture(rgb, now, self._serial)
            self.decoded += 1
            self._convert_cpu += time.thread_time() - t0

    def take(self) -> Picture | None:
        """The newest picture not yet taken, or None (screen thread)."""
        with self._lock:
            p = self._picture
            if p is None or p.serial == self._taken:
                return None
            self._taken = p.serial
            return p

    def latest(self) -> Picture | None:
        """The newest picture, taken or not (to redraw after something else covered it)."""
        with self._lock:
            return self._picture

    def shown(self, picture: Picture, now: float | None = None) -> None:
        """``picture`` reached the screen (after the flip)."""
        delay = (time.monotonic() if now is None else now) - picture.decoded_at
        with self._lock:
            self.displayed += 1
            if len(self._latency) < _LATENCY_SAMPLES:
                self._latency.append(delay)
            else:
                self._latency[self.displayed % _LATENCY_SAMPLES] = delay

    def clear(self) -> None:
        """Forget the picture (the call ended: nothing of it stays on screen); counters are kept."""
        with self._lock:
            self._picture = None

    def stats(self) -> DisplayStats:
        with self._lock:
            lat = sorted(self._latency)
            p50 = lat[len(lat) // 2] if lat else None
            p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))] if lat else None
            return DisplayStats(self.decoded, self.displayed, p50, p95, self._convert_cpu)

    def reset(self) -> None:
        """A new call: forget the picture, the counters and the latencies."""
        with self._lock:
            self._picture = None
            self.decoded = self.displayed = 0
            self._latency = []
            self._convert_cpu = 0.0

    def close(self) -> None:
        """End of the call's sink (the terminal closes it); the slot stays usable for the next call."""
        self.clear()


class SelfView:
    """A video source that copies every ``every``-th frame it reads into ``slot`` (the self-view)."""

    def __init__(self, source: Any, slot: FrameSlot, every: int = 2) -> None:
        self._source = source
        self._slot = slot
        self._every = max(1, every)
        self._count = 0
        self.kind = getattr(source, "kind", "video")

    def read(self) -> Any:
        frame = self._source.read()
        self._count += 1
        if self._count % self._every == 0:
            try:
                self._slot.write(frame)
            except (ValueError, OSError) as exc:  # a picture format swscale refuses: no self-view, the call goes on
                log.debug("self-view: %s", exc)
        return frame

    def close(self) -> None:
        self._slot.clear()
        self._source.close()

    def __getattr__(self, name: str) -> Any:  # width, height, fps, live, closed, frames_read...
        return getattr(self._source, name)

    def __iter__(self) -> Any:
        while not self._source.closed:
            yield self.read()
