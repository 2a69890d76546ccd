"""One clock model for capture, RTP and RTCP (RFC 3550 §5.1, §6.4.1).

Capture times are seconds on ``time.monotonic()``. A :class:`MediaClock` maps
them to the RTP timestamps of one stream (random offset, the stream's clock
rate) and to 64-bit NTP wall-clock time for sender reports. Every clock in a
process shares one monotonic-to-wall-clock anchor taken at import, so the SRs
of an audio and a video stream from this process agree on the NTP time of a
capture instant: that is what lets a receiver play them in sync (RFC 3550 §6.4.1,
"lip sync"). :class:`RemoteClock` is the receiver's side: it learns (NTP, RTP)
pairs from SRs and maps RTP timestamps back to the sender's wall clock.
"""

from __future__ import annotations

import secrets
import time

from ..rtp.rtcp import RtcpSenderReport
from ..rtp.seq import ts_diff
from ..rtp.stats import NTP_EPOCH_OFFSET, ntp_from_unix

__all__ = ["MediaClock", "RemoteClock", "WALL_ANCHOR", "ntp_to_unix", "sync_offset"]

# (monotonic, unix) taken together once: the process-wide map from capture time to wall time.
WALL_ANCHOR: tuple[float, float] = (time.monotonic(), time.time())


def ntp_to_unix(ntp: int) -> float:
    """Unix time in seconds of a 64-bit NTP timestamp."""
    return (ntp >> 32) - NTP_EPOCH_OFFSET + (ntp & 0xFFFFFFFF) / 4294967296.0


class MediaClock:
    """Capture time (``time.monotonic()`` seconds) -> RTP timestamp and NTP time.

    ``rtp_offset`` is random by default (RFC 3550 §5.1). ``anchor`` is a
    ``(monotonic, unix)`` pair; the default :data:`WALL_ANCHOR` is shared by all
    clocks of the process. Immutable after construction, hence thread-safe.
    """

    __slots__ = ("clock_rate", "rtp_offset", "_mono0", "_unix0")

    def __init__(
        self,
        clock_rate: int,
        rtp_offset: int | None = None,
        anchor: tuple[float, float] | None = None,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        self.clock_rate = clock_rate
        self.rtp_offset = secrets.randbits(32) if rtp_offset is None else rtp_offset & 0xFFFFFFFF
        self._mono0, self._unix0 = WALL_ANCHOR if anchor is None else anchor

    def rtp_timestamp(self, capture_time: float) -> int:
        """The 32-bit RTP timestamp of a capture instant."""
        ticks = round((capture_time - self._mono0) * self.clock_rate)
        return (self.rtp_offset + ticks) & 0xFFFFFFFF

    def capture_time(self, rtp_timestamp: int, near: float) -> float:
        """The capture instant of an RTP timestamp, unwrapped to the one closest to ``near``."""
        ref = self.rtp_timestamp(near)
        return near + ts_diff(rtp_timestamp & 0xFFFFFFFF, ref) / self.clock_rate

    def unix_time(self, capture_time: float) -> float:
        """Wall-clock (Unix) time of a capture instant."""
        return self._unix0 + (capture_time - self._mono0)

    def ntp_timestamp(self, capture_time: float) -> int:
        """64-bit NTP timestamp of a capture instant (the SR's NTP field)."""
        return ntp_from_unix(self.unix_time(capture_time))

    def sender_report_times(self, now: float) -> tuple[int, int]:
        """``(ntp, rtp)`` of the instant ``now``: the two clock fields of an SR."""
        return self.ntp_timestamp(now), self.rtp_timestamp(now)


class RemoteClock:
    """The receiver's view of a sender's clock, learnt from its sender reports.

    ``update(sr)`` records the SR's (NTP, RTP) pair; ``unix_time(rtp)`` maps an
    RTP timestamp of that stream to the sender's wall-clock time (None until an
    SR arrived). Not thread-safe.
    """

    def __init__(self, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        self.clock_rate = clock_rate
        self._ref: tuple[float, int] | None = None

    @property
    def synchronized(self) -> bool:
        """True once a sender report was seen."""
        return self._ref is not None

    def update(self, sr: RtcpSenderReport) -> None:
        """Learn the sender's (NTP, RTP) pair from one sender report."""
        self._ref = (ntp_to_unix(sr.ntp_timestamp), sr.rtp_timestamp & 0xFFFFFFFF)

    def unix_time(self, rtp_timestamp: int) -> float | None:
        """Sender wall-clock time (Unix seconds) of an RTP timestamp, or None before the first SR."""
        if self._ref is None:
            return None
        unix, rtp = self._ref
        return unix + ts_diff(rtp_timestamp & 0xFFFFFFFF, rtp) / self.clock_rate


def sync_offset(audio: RemoteClock, audio_rtp: int, video: RemoteClock, video_rtp: int) -> float | None:
    """How much later (seconds) the video frame ``video_rtp`` was captured than the audio ``audio_rtp``.

    A receiver playing audio sample ``audio_rtp`` now should show video frame
    ``video_rtp`` after this many seconds (negative: it is late). None until both
    streams have had a sender report.
    """
    a = audio.unix_time(audio_rtp)
    v = video.unix_time(video_rtp)
    if a is None or v is None:
        return None
    return v - a
