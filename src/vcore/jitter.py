"""Jitter buffers: H.264 video (frames) and 20 ms audio frames.

Pure data structures: time is always an argument (seconds on any monotonic
clock), never read from a clock; no asyncio, no I/O. The per-packet video work
runs in the fast-path kernel ``vcore._fastpath_jitter`` (compiled, or its
pure-Python twin); this module gives it its public face and adds the audio
buffer and a PCM concealer.

Video (:class:`VideoJitterBuffer`)
    Packets in any order with their arrival time; duplicates dropped; 16-bit
    sequence and 32-bit timestamp wrap; SSRC changes and sequence/timestamp jumps
    (peer restart) confirmed by two sequential packets (RFC 3550 A.1 probation)
    and then followed. A frame is complete when every packet from its first
    (known from the previous frame's marker or from its own NAL headers) to its
    marker bit arrived; it is released as soon as it is complete and its playout
    time has come. An incomplete frame is given up at its deadline if a packet
    of a newer frame arrived (a hole); if nothing newer came, the line is late
    (a modem queue), not lossy, and it is waited for up to 1 s more. After a lost
    reference frame nothing is released until the next keyframe and a keyframe
    request (PLI, then FIR) is raised, rate-limited. The playout delay follows
    the 95th percentile of frame delay (a frame completed by a retransmission
    counts as at most one RTT + 2 jitters late) and three RFC 3550 A.8 jitters,
    between ``min_delay`` and ``max_delay``; it grows at once and shrinks by at most
    50 ms per second. Generic NACK (RFC 4585) when ``nack=True``: :meth:`nacks`
    asks once a gap has lasted longer than the line's measured reordering (at once
    on a line that keeps order), retries after RTT + 3 jitters or at the last
    moment an answer can still make the frame's deadline, and stops when it can
    no longer. See docs/jitter.md.

Audio (:class:`AudioJitterBuffer`)
    Fixed-duration frames (20 ms: G.711, G.722, Opus) played on a steady clock;
    adaptive target delay; a missing frame is reported as concealed (the codec's
    PLC, or :class:`FadeConcealer` for G.711/G.722); the buffer grows by inserting
    a concealed frame and shrinks by discarding one, following the sender's
    timestamps so that it never drifts.

Thread-safety: none. A buffer belongs to one receiving task or thread.
"""

from __future__ import annotations

import bisect
import logging
from collections import deque
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ._speedups import fastpath_jitter as _jitter
from .nack import unwrap_rtx
from .payload.h264 import AccessUnit
from .rtp.packet import RtpPacket
from .rtp.seq import ts_diff

__all__ = [
    "VideoJitterBuffer",
    "VideoJitterStats",
    "AudioJitterBuffer",
    "AudioJitterStats",
    "AudioFrame",
    "AudioFrameKind",
    "FadeConcealer",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoJitterStats:
    """A snapshot of a :class:`VideoJitterBuffer`'s counters and estimates.

    ``delay``: current playout delay (s) added to the fastest frame; ``jitter``:
    RFC 3550 A.8 interarrival jitter (s); ``late``: packets that came after their
    frame was released or given up; ``lost``: sequence numbers given up without a
    packet; ``discarded``: packets thrown away for capacity, restart probation or
    belonging to a frame already given up; ``duplicates``; ``frames_complete``,
    ``frames_released``, ``frames_dropped`` (incomplete, undecodable, evicted);
    ``resets`` (SSRC change, sequence or timestamp jump); ``keyframe_requests``
    taken; ``nacks_sent``; ``recovered`` (NACKed packets that arrived);
    ``held_packets`` and ``held_frames`` now.
    """

    delay: float
    jitter: float
    late: int
    lost: int
    discarded: int
    frames_complete: int
    frames_dropped: int
    frames_released: int
    packets: int
    duplicates: int
    resets: int
    keyframe_requests: int
    nacks_sent: int
    recovered: int
    held_packets: int
    held_frames: int


class VideoJitterBuffer(_jitter.VideoJitterCore):
    """Jitter buffer for one H.264 RTP stream (RFC 6184); see the module docstring.

    ``jb.push(packet, arrival)``; ``jb.pop(now)`` -> access units to decode, in
    order (``keyframe`` set on IDR units); ``jb.nacks(now)`` -> sequence numbers
    to NACK now; ``jb.keyframe_needed`` / ``jb.take_keyframe_request()`` ->
    ``"pli"``, ``"fir"`` or ``None``; ``jb.stats``. Set ``jb.rtt`` (seconds) from
    RTCP. ``capacity`` (a power of two) bounds the packets held.
    Not thread-safe.
    """

    def __init__(
        self,
        clock_rate: int = 90000,
        min_delay: float = 0.0,
        max_delay: float = 0.5,
        *,
        nack: bool = False,
        rtt: float = 0.1,
        capacity: int = _jitter.DEFAULT_CAPACITY,
    ) -> None:
        super().__init__(clock_rate, min_delay, max_delay, capacity, nack, rtt)

    def push_rtx(self, rtx: RtpPacket, arrival: float) -> None:
        """Add an RFC 4588 RTX packet: unwrapped (OSN) and pushed as a retransmission.

        Raises :class:`vcore.ParseError` when the RTX payload has no OSN.
        """
        self.push(unwrap_rtx(rtx, self.ssrc & 0xFFFFFFFF, rtx.payload_type), arrival, True)

    @property
    def stats(self) -> VideoJitterStats:
        """A snapshot of the counters and estimates."""
        return VideoJitterStats(
            delay=self.delay,
            jitter=self.jitter,
            late=self.late,
            lost=self.lost,
            discarded=self.discarded,
            frames_complete=self.frames_complete,
            frames_dropped=self.frames_dropped,
            frames_released=self.frames_released,
            packets=self.packets,
            duplicates=self.duplicates,
            resets=self.resets,
            keyframe_requests=self.keyframe_requests,
            nacks_sent=self.nacks_sent,
            recovered=self.recovered,
            held_packets=self.held,
            held_frames=self.frames_held,
        )


# ---------------------------------------------------------------------------
# Audio
# ---------------------------------------------------------------------------


class AudioFrameKind(Enum):
    """What :meth:`AudioJitterBuffer.pop` says about one frame slot."""

    NORMAL = "normal"  # the packet arrived: decode ``payload``
    CONCEALED = "concealed"  # the packet is missing: run the codec's PLC (or FadeConcealer)
    EXPAND = "expand"  # an extra frame inserted to grow the delay: conceal too


@dataclass(frozen=True)
class AudioFrame:
    """One frame slot of audio: ``payload`` is None unless ``kind`` is NORMAL."""

    timestamp: int
    kind: AudioFrameKind
    payload: bytes | None
    playout: float


@dataclass(frozen=True)
class AudioJitterStats:
    """A snapshot of an :class:`AudioJitterBuffer`'s counters and estimates."""

    delay: float
    target_delay: float
    jitter: float
    packets: int
    played: int
    concealed: int
    expanded: int
    discarded: int
    late: int
    duplicates: int
    resets: int
    skipped: int
    held: int
    sync_delay: float = 0.0
    realigned: int = 0


MAX_SYNC_DELAY = 1.0  # seconds of lip-sync delay an audio buffer accepts at most
AUDIO_WINDOW = 250  # delay samples kept (5 s of 20 ms frames)
AUDIO_PERCENTILE = 0.95
AUDIO_MAX_HELD = 256  # frames held at most (5 s)
AUDIO_JUMP = 2.0  # seconds: a timestamp this far from the playout point restarts (after probation)
AUDIO_MAX_CATCHUP = 0.5  # seconds of slots one pop() returns at most; older ones are skipped
AUDIO_REALIGN = 3  # packets in a row off the playout grid by the same offset: the grid moves to them


class AudioJitterBuffer:
    """Jitter buffer for one audio stream of fixed-duration frames (20 ms by default).

    ``push(packet, arrival)`` then ``pop(now)`` -> the :class:`AudioFrame` slots
    whose playout time has come, one per ``frame_duration``: NORMAL (decode the
    payload), CONCEALED (missing: the decoder's PLC for Opus, :class:`FadeConcealer`
    for G.711/G.722) or EXPAND (inserted to grow the delay). The target delay is
    the 95th percentile of packet delay over the last 5 s, between ``min_delay``
    and ``max_delay``, plus ``sync_delay`` (0 by default; the call layer sets it
    to hold the sound back to a later picture: lip sync). When the buffer runs
    longer than the target by more than a frame, one frame is discarded (at most
    one every ``shrink_interval`` s). The
    playout point follows the sender's timestamps (minimum transit over a window),
    so clock drift turns into discards or expansions instead of a growing delay.
    ``clock_rate`` is the RTP clock (8000 for G.711 and for G.722, RFC 3551 §4.5.2;
    48000 for Opus, RFC 7587). One ``pop`` returns at most 0.5 s of slots: after a longer pause in polling the
    older slots are skipped (``skipped``). A packet whose timestamp is off the playout grid (a sender
    that re-anchored its timestamps after a capture stall, or one that never was on a frame grid) takes
    the nearest slot; when ``AUDIO_REALIGN`` packets in a row are off the grid by the same offset, the
    grid moves by that offset (``realigned``), so the slots keep their timing. Not thread-safe.
    """

    def __init__(
        self,
        clock_rate: int = 8000,
        frame_duration: float = 0.02,
        min_delay: float = 0.02,
        max_delay: float = 0.3,
        shrink_interval: float = 0.2,
    ) -> None:
        if clock_rate <= 0 or frame_duration <= 0:
            raise ValueError("clock_rate and frame_duration must be positive")
        if not 0.0 <= min_delay <= max_delay:
            raise ValueError(f"need 0 <= min_delay <= max_delay, got {min_delay} and {max_delay}")
        self.clock_rate = clock_rate
        self.frame_duration = frame_duration
        self.samples_per_frame = int(round(clock_rate * frame_duration))
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.shrink_interval = shrink_interval
        self._target = min_delay  # from the delay percentile, without the sync delay
        self._sync_delay = 0.0
        self.jitter = 0.0
        self.packets = 0
        self.played = 0
        self.concealed = 0
        self.expanded = 0
        self.discarded = 0
        self.late = 0
        self.duplicates = 0
        self.resets = 0
        self.skipped = 0
        self._held: dict[int, bytes] = {}
        self._samples: deque[float] = deque()
        self._sorted: list[float] = []
        self._mins: deque[tuple[float, float]] = deque()
        self._offset = 0.0
        self._last_transit: float | None = None
        self._ssrc: int | None = None
        self._ts_ref = 0
        self._play_ts: int | None = None  # extended RTP timestamp of the next slot
        self._play_time = 0.0
        self._last_shrink = float("-inf")
        self._cand: tuple[RtpPacket, float] | None = None
        self.realigned = 0
        self._phase = 0  # offset from the playout grid (samples, in [0, samples_per_frame)) of the last packets
        self._phase_run = 0  # how many packets in a row had that offset

    @property
    def target_delay(self) -> float:
        """The delay playout steers to: the jitter estimate (within min/max) plus ``sync_delay``."""
        return self._target + self._sync_delay

    @property
    def sync_delay(self) -> float:
        """Extra delay (s) for lip sync, in [0, MAX_SYNC_DELAY]; playout grows or shrinks to it a frame at a time."""
        return self._sync_delay

    @sync_delay.setter
    def sync_delay(self, value: float) -> None:
        if not 0.0 <= value <= MAX_SYNC_DELAY:
            raise ValueError(f"sync_delay must be in [0, {MAX_SYNC_DELAY}] s, got {value}")
        self._sync_delay = float(value)

    @property
    def delay(self) -> float:
        """The current buffering delay: how far behind the fastest packet playout runs."""
        if self._play_ts is None:
            return 0.0
        return self._play_time - (self._play_ts / self.clock_rate + self._offset)

    @property
    def stats(self) -> AudioJitterStats:
        """A snapshot of the counters and estimates."""
        return AudioJitterStats(
            delay=self.delay,
            target_delay=self.target_delay,
            jitter=self.jitter,
            packets=self.packets,
            played=self.played,
            concealed=self.concealed,
            expanded=self.expanded,
            discarded=self.discarded,
            late=self.late,
            duplicates=self.duplicates,
            resets=self.resets,
            skipped=self.skipped,
            held=len(self._held),
            sync_delay=self._sync_delay,
            realigned=self.realigned,
        )

    def _restart(self, packet: RtpPacket, arrival: float) -> None:
        self._held.clear()
        self._mins.clear()
        self._last_transit = None
        self._ssrc = packet.ssrc
        self._ts_ref = packet.timestamp + (1 << 32)
        self._offset = arrival - self._ts_ref / self.clock_rate
        self._play_ts = self._ts_ref
        self._play_time = arrival + self.target_delay
        self._phase = self._phase_run = 0

    def _slot(self, ts: int) -> int:
        """The playout slot of extended timestamp ``ts``: the nearest on the grid, after moving the grid to a
        persistent offset."""
        assert self._play_ts is not None
        spf = self.samples_per_frame
        off = (ts - self._play_ts) % spf
        if off == 0:
            self._phase_run = 0
            return ts
        if off == self._phase:
            self._phase_run += 1
        else:
            self._phase, self._phase_run = off, 1
        if self._phase_run >= AUDIO_REALIGN:
            # the sender's timestamps moved for good: move the grid (and the slots held on it) the shorter way
            shift = off if 2 * off <= spf else off - spf
            self._play_ts += shift
            self._held = {k + shift: v for k, v in self._held.items()}
            self._phase = self._phase_run = 0
            self.realigned += 1
            _log.debug("audio playout grid moved by %d samples to the sender's timestamps", shift)
            return ts
        return ts - off if 2 * off <= spf else ts - off + spf

    def push(self, packet: RtpPacket, arrival: float) -> None:
        """Add one RTP packet that arrived at ``arrival`` seconds."""
        self.packets += 1
        if self._play_ts is None:
            self._restart(packet, arrival)
        ts = self._ts_ref + ts_diff(packet.timestamp, self._ts_ref & 0xFFFFFFFF)
        transit = arrival - ts / self.clock_rate
        if packet.ssrc != self._ssrc or abs(transit - self._offset) > AUDIO_JUMP + self.max_delay:
            cand = self._cand
            if (
                cand is not None
                and cand[0].ssrc == packet.ssrc
                and packet.sequence_number == (cand[0].sequence_number + 1) & 0xFFFF
            ):
                self._cand = None
                self.resets += 1
                self._restart(cand[0], cand[1])
                self.push(cand[0], cand[1])
                self.packets -= 1
                self.push(packet, arrival)
                self.packets -= 1
            else:
                if cand is not None:
                    self.discarded += 1
                self._cand = (packet, arrival)
            return
        if self._cand is not None:
            self.discarded += 1
            self._cand = None
        self._ts_ref = ts
        # RFC 3550 A.8 jitter
        if self._last_transit is not None:
            self.jitter += (abs(transit - self._last_transit) - self.jitter) / 16.0
        self._last_transit = transit
        # windowed minimum transit: the playout reference (drift follows it)
        mins = self._mins
        while mins and mins[-1][1] >= transit:
            mins.pop()
        mins.append((arrival, transit))
        while mins[0][0] < arrival - 10.0:
            mins.popleft()
        self._offset = mins[0][1]
        sample = transit - self._offset
        self._samples.append(sample)
        bisect.insort(self._sorted, sample)
        if len(self._samples) > AUDIO_WINDOW:
            old = self._samples.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        srt = self._sorted
        target = srt[int(AUDIO_PERCENTILE * (len(srt) - 1))] + self.frame_duration / 2
        self._target = min(self.max_delay, max(self.min_delay, target))
        assert self._play_ts is not None
        ts = self._slot(ts)
        if ts < self._play_ts:
            self.late += 1
            return
        if ts in self._held:
            self.duplicates += 1
            return
        if ts - self._play_ts >= AUDIO_MAX_HELD * self.samples_per_frame:
            self.discarded += 1  # far in the future: bounded memory
            return
        self._held[ts] = packet.payload

    def pop(self, now: float) -> list[AudioFrame]:
        """Frame slots whose playout time is at or before ``now``, in order."""
        out: list[AudioFrame] = []
        if self._play_ts is None:
            return out
        spf = self.samples_per_frame
        behind = now - self._play_time
        if behind > AUDIO_MAX_CATCHUP:  # polled after a long pause: skip the slots nobody heard
            n = int((behind - AUDIO_MAX_CATCHUP) / self.frame_duration) + 1
            self._play_ts += n * spf
            self._play_time += n * self.frame_duration
            self.skipped += n
            for ts in [ts for ts in self._held if ts < self._play_ts]:
                del self._held[ts]
                self.discarded += 1
        while now >= self._play_time:
            delay = self.delay
            ts = self._play_ts
            payload = self._held.pop(ts, None)
            grow = payload is None and delay < self.target_delay - self.frame_duration / 2
            if (
                not grow
                and payload is not None
                and self._sync_delay > 0.0
                and delay < self.target_delay - self.frame_duration
            ):
                # grow for lip sync although the packet is here: keep it for the next slot
                self._held[ts] = payload
                grow = True
            if grow:
                # grow: insert a frame without consuming one (the missing packet may still come)
                self.expanded += 1
                out.append(AudioFrame(ts & 0xFFFFFFFF, AudioFrameKind.EXPAND, None, self._play_time))
                self._play_time += self.frame_duration
                continue
            if (
                payload is not None
                and delay > self.target_delay + self.frame_duration
                and self._play_time - self._last_shrink >= self.shrink_interval
                and (ts + spf) in self._held
            ):
                # shrink: discard this frame, play the next one in its slot
                self.discarded += 1
                self._last_shrink = self._play_time
                self._play_ts = ts + spf
                continue
            if payload is None:
                self.concealed += 1
                out.append(AudioFrame(ts & 0xFFFFFFFF, AudioFrameKind.CONCEALED, None, self._play_time))
            else:
                self.played += 1
                out.append(AudioFrame(ts & 0xFFFFFFFF, AudioFrameKind.NORMAL, payload, self._play_time))
            self._play_ts = ts + spf
            self._play_time += self.frame_duration
        return out


class FadeConcealer:
    """Packet loss concealment by fade-out repetition, for codecs without PLC (G.711, G.722).

    ``process(pcm)`` passes int16 PCM frames through and remembers the last;
    ``process(None)`` (a lost frame) repeats the last frame faded: the gain drops
    linearly to zero over ``fade_frames`` frames, then silence. The first good frame
    after a loss fades back in over one frame. Not thread-safe.
    """

    def __init__(self, samples_per_frame: int = 160, fade_frames: int = 3) -> None:
        self.samples_per_frame = samples_per_frame
        self.fade_frames = max(1, fade_frames)
        self._last = np.zeros(samples_per_frame, dtype=np.int16)
        self._lost = 0

    def process(self, pcm: np.ndarray | bytes | None) -> np.ndarray:
        """The PCM frame to play (int16): ``pcm`` itself, or a concealment when None."""
        n = self.samples_per_frame
        if pcm is None:
            g0 = max(0.0, 1.0 - self._lost / self.fade_frames)
            g1 = max(0.0, 1.0 - (self._lost + 1) / self.fade_frames)
            self._lost += 1
            gain = np.linspace(g0, g1, n, endpoint=False)
            return (self._last.astype(np.float64) * gain).astype(np.int16)
        frame = np.frombuffer(pcm, dtype=np.int16) if isinstance(pcm, (bytes, bytearray)) else pcm
        frame = frame.astype(np.int16, copy=False)
        if self._lost and frame.size:
            ramp = np.linspace(0.0, 1.0, frame.size, endpoint=False)
            out = (frame.astype(np.float64) * ramp).astype(np.int16)
        else:
            out = frame
        self._lost = 0
        if frame.size == n:
            self._last = frame.copy()
        return out
