"""The media pipeline: what the senders (:mod:`.sender`) and receivers (:mod:`.receiver`) share.

Capture, encode and decode run in their own threads (PyAV releases the GIL),
joined by :class:`~vcore.media.sinks.FrameQueue` objects that drop the oldest
item instead of building latency. The asyncio event loop carries RTCP and the
incoming datagrams; outgoing RTP leaves straight from the encode thread.

Video sender: source -> [capture thread for live devices] -> queue -> [encode
thread] -> encoder -> packetizer -> optional ``protect`` hook (SRTP) -> UDP. It
answers PLI/FIR with a keyframe and sends RTCP sender reports whose (NTP, RTP)
pair comes from the encoder's :class:`~vcore.media.clock.MediaClock`.

Video receiver: UDP -> optional ``unprotect`` hook -> RTP parse -> an assembler
("packets -> access units": :class:`InOrderAssembler` now, a jitter buffer
later) -> queue -> [decode thread] -> decoder -> sink. It sends PLI when the
decoder needs a keyframe and learns the sender's clock from its SRs.

Audio: :class:`AudioSender` (one thread: read, encode 20 ms payloads, send) and
:class:`AudioReceiver` (decode thread) follow the same pattern and clock model.

Latency test mode: the sender puts each frame's capture time (monotonic
microseconds, 8 bytes) into an RFC 8285 one-byte header extension (id
``capture_time_ext_id``, default 1) on the first packet of the frame; the
receiver measures capture-to-decoded latency (meaningful when both ends share
a clock, as on one machine) into :class:`LatencyStats`.

Every thread and task a component starts, it owns and stops in ``close()``.
Thread-safety: ``start``/``close`` belong to the event loop's thread; counters
may be read from anywhere; ``request_keyframe`` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..payload.h264 import AccessUnit, H264Depacketizer
from ..rtp.packet import RtpPacket
from ..transport.rtp import Protect

_log = logging.getLogger(__name__)

__all__ = [
    "Protect",
    "UnitAssembler",
    "InOrderAssembler",
    "LatencyStats",
    "VideoSender",
    "VideoReceiver",
    "AudioSender",
    "AudioReceiver",
    "CAPTURE_TIME_EXT_ID",
    "encode_capture_time",
    "decode_capture_time",
]

CAPTURE_TIME_EXT_ID = 1
_JOIN_TIMEOUT = 5.0


def rtcp_delay(interval: float) -> float:
    """The next RTCP report delay: ``interval`` randomized to [0.5, 1.5] times itself (RFC 3550 §6.3.1)."""
    return interval * random.uniform(0.5, 1.5)




def encode_capture_time(t: float) -> bytes:
    """8-byte header-extension value: monotonic capture time in microseconds."""
    return struct.pack("!Q", round(t * 1_000_000))


def decode_capture_time(value: bytes) -> float | None:
    """The capture time in a header-extension value, or None when malformed."""
    if len(value) != 8:
        return None
    return struct.unpack("!Q", value)[0] / 1_000_000  # type: ignore[no-any-return]


class LatencyStats:
    """Latency samples (seconds): all-time and per-window percentiles. Thread-safe."""

    def __init__(self, keep: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._all: list[float] = []
        self._window: list[float] = []
        self._keep = keep

    def add(self, seconds: float) -> None:
        with self._lock:
            if len(self._all) < self._keep:
                self._all.append(seconds)
            self._window.append(seconds)

    @property
    def count(self) -> int:
        return len(self._all)

    @staticmethod
    def _pct(samples: list[float], q: float) -> float | None:
        if not samples:
            return None
        s = sorted(samples)
        return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile of every sample so far (None without samples)."""
        with self._lock:
            return self._pct(self._all, q)

    def window(self) -> dict[str, float | None]:
        """p50/p95/max of the samples since the last call, and their count; starts a new window."""
        with self._lock:
            w, self._window = self._window, []
        return {"count": len(w), "p50": self._pct(w, 50), "p95": self._pct(w, 95), "max": max(w) if w else None}


class UnitAssembler(Protocol):
    """The receive stage that turns RTP packets into access units (a reorder buffer or jitter buffer).

    ``push`` may return units at once; ``pop(now)`` returns units that became
    due. ``keyframe_needed`` asks the sender for a keyframe (PLI). An assembler
    with a ``poll_interval`` attribute (seconds) is polled that often.
    """

    def push(self, packet: RtpPacket, arrival: float) -> list[AccessUnit] | None: ...

    def pop(self, now: float) -> list[AccessUnit]: ...

    @property
    def keyframe_needed(self) -> bool: ...


class InOrderAssembler:
    """The simplest assembler: packets in arrival order through :class:`H264Depacketizer`; never waits."""

    def __init__(self) -> None:
        self.depacketizer = H264Depacketizer()

    def push(self, packet: RtpPacket, arrival: float) -> list[AccessUnit]:
        return self.depacketizer.push(packet)

    def pop(self, now: float) -> list[AccessUnit]:
        return []

    @property
    def keyframe_needed(self) -> bool:
        return False


class _Worker(threading.Thread):
    def __init__(self, name: str, target: Callable[[], None], on_exit: Callable[[BaseException | None], None]):
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self._on_exit = on_exit

    def run(self) -> None:
        error: BaseException | None = None
        try:
            self._target_fn()
        except BaseException as exc:  # reported to the owner, never lost
            error = exc
        self._on_exit(error)


async def _join(threads: list[threading.Thread], timeout: float = _JOIN_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    for t in threads:
        while t.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if t.is_alive():  # pragma: no cover - a device that ignores its read timeout
            _log.warning("thread %s did not stop within %.1f s", t.name, timeout)


# The stages themselves, re-exported: ``vcore.media.pipeline.VideoSender`` is ``vcore.media.sender.VideoSender``.
from .receiver import AudioReceiver, VideoReceiver  # noqa: E402
from .sender import AudioSender, VideoSender  # noqa: E402
