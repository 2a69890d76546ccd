"""Pure-Python twin of ``vcore._fastpath_jitter``: the video jitter buffer kernel.

Same public names, results, exceptions and exception messages as the compiled
module ``_fastpath_jitter.pyx``. Packet work only: time is always an argument
(seconds on any monotonic clock), never read from a clock; no I/O, no asyncio.

:class:`VideoJitterCore` keeps H.264 RTP packets in a ring indexed by extended
sequence number (RFC 3550 A.1), assembles frames (all packets of one timestamp,
from a known frame start to the marker bit, no holes), decides when each frame
plays out (adaptive delay from RFC 3550 A.8 jitter and a high percentile of
frame delay), tracks decodability (a lost reference frame holds back every
frame until the next keyframe and raises a keyframe request) and, when enabled,
generic NACK state (RFC 4585 §6.2.1). ``vcore.jitter.VideoJitterBuffer`` is the
public face.

Thread-safety: none; one buffer belongs to one receiving task or thread.
"""

from __future__ import annotations

import bisect
from collections import deque

from ._fastpath_py import AccessUnit, H264Depacketizer, RtpPacket, extend_seq, ts_diff

__all__ = ["VideoJitterCore", "DEFAULT_CAPACITY"]

DEFAULT_CAPACITY = 1024  # packets held at most (a 720p keyframe is 25-100 packets)
MAX_DROPOUT = 3000  # RFC 3550 A.1: a larger forward jump is a restart candidate
MAX_MISORDER = 1000  # a packet this far behind the oldest held one is a restart candidate
TS_JUMP = 3.0  # seconds: a timestamp this far off the arrival clock is a restart candidate
WINDOW_FRAMES = 300  # frame-delay samples kept for the percentile (10 s at 30 fps)
MINS_CAP = 1024  # entries of the windowed-minimum deque at most
DELAY_PERCENTILE = 0.95  # WebRTC-style high percentile of frame delay
JITTER_MULT = 3.0  # target delay >= this many RFC 3550 A.8 jitters
SHRINK_RATE = 0.05  # seconds of delay removed per second of media at most
TIME_EPS = 1e-9  # seconds: comparisons of times computed two ways
REORDER_WAIT = 0.010  # extra wait for a late packet beyond the playout time
STALL_WAIT = 1.0  # s: a stream that is late (nothing newer arrived), not lossy, is waited for this much longer
MAX_NACK_RETRIES = 10
NACK_WAIT_JITTERS = 3.0  # a missing packet is NACKed at most this many A.8 jitters after its gap was seen
TAIL_WAIT = 0.015  # s (+ TAIL_WAIT_JITTERS A.8 jitters) of silence after a packet without the marker bit...
TAIL_WAIT_JITTERS = 3.0  # ...after which the next sequence number is taken for lost (a frame's lost tail)
RTX_DELAY_JITTERS = 2.0  # a frame completed by a retransmission counts as at most RTT + this many jitters late
REORDER_WINDOW = 128  # reordering delays kept (packets that filled a gap without being retransmitted)
REORDER_PERCENTILE = 0.95  # NACK once a reordered packet would have come with this probability
NACK_RTTS = 5.0  # with NACK, an incomplete frame waits this many RTTs beyond its playout time
WARMUP_FRAMES = 30  # until this many delay samples, incomplete frames wait up to max_delay
KEYFRAME_INTERVAL = 0.2  # seconds between keyframe requests at least (and 2 RTT): the rate limit
PLI_BEFORE_FIR = 3  # requests sent as PLI before falling back to FIR

NAL_TYPE_SLICE = 1  # H.264 Table 7-1
NAL_TYPE_IDR = 5
NAL_TYPE_SEI = 6
NAL_TYPE_SPS = 7
NAL_TYPE_PPS = 8
NAL_TYPE_AUD = 9
NAL_TYPE_STAP_A = 24  # RFC 6184 §5.7.1
NAL_TYPE_FU_A = 28  # RFC 6184 §5.8

F_IDR = 1
F_SPS = 2
F_PPS = 4
F_PSLICE = 8  # a non-IDR slice: not a keyframe
F_NONREF = 16  # a slice with nal_ref_idc 0: nothing refers to this frame (H.264 §7.4.1)
F_BEGIN = 32  # the packet starts an access unit: its first NAL unit is an AUD, SPS or SEI
F_FIRST_SLICE = 128  # the packet starts a picture (first_mb_in_slice 0); parameter sets may precede it
F_RTX = 64  # a packet of the frame was retransmitted: no delay sample (as WebRTC)


def _nal_flags(payload: bytes) -> int:
    """Frame flags learnt from one RTP payload's NAL headers (RFC 6184 §5.2)."""
    n = len(payload)
    if n == 0:
        return 0
    h = payload[0]
    t = h & 0x1F
    flags = 0
    if t == NAL_TYPE_FU_A:
        if n < 3:
            return 0
        fu = payload[1]
        t = fu & 0x1F
        if not fu & 0x80:  # a middle or end fragment: type only
            if t == NAL_TYPE_IDR:
                return F_IDR
            if t == NAL_TYPE_SLICE:
                return F_PSLICE | (F_NONREF if not h & 0x60 else 0)
            return 0
        first = payload[2]
    elif t == NAL_TYPE_STAP_A:
        pos = 1
        first_nal = True
        while pos + 2 < n:
            size = (payload[pos] << 8) | payload[pos + 1]
            pos += 2
            if size == 0 or pos + size > n:
                break
            sub = payload[pos]
            st = sub & 0x1F
            if st == NAL_TYPE_IDR:
                flags |= F_IDR
            elif st == NAL_TYPE_SPS:
                flags |= F_SPS
            elif st == NAL_TYPE_PPS:
                flags |= F_PPS
            elif st == NAL_TYPE_SLICE:
                flags |= F_PSLICE | (F_NONREF if not sub & 0x60 else 0)
            if first_nal and (st == NAL_TYPE_AUD or st == NAL_TYPE_SPS or st == NAL_TYPE_SEI):
                flags |= F_BEGIN
            elif first_nal and (st == NAL_TYPE_SLICE or st == NAL_TYPE_IDR) and size > 1 and payload[pos + 1] & 0x80:
                flags |= F_FIRST_SLICE
            first_nal = False
            pos += size
        return flags
    elif 1 <= t <= 23:
        first = payload[1] if n > 1 else 0
    else:
        return 0
    if t == NAL_TYPE_IDR:
        flags = F_IDR
    elif t == NAL_TYPE_SLICE:
        flags = F_PSLICE | (F_NONREF if not h & 0x60 else 0)
    elif t == NAL_TYPE_SPS:
        flags = F_SPS
    elif t == NAL_TYPE_PPS:
        flags = F_PPS
    if t == NAL_TYPE_AUD or t == NAL_TYPE_SPS or t == NAL_TYPE_SEI:
        flags |= F_BEGIN
    elif (t == NAL_TYPE_SLICE or t == NAL_TYPE_IDR) and first & 0x80:  # first_mb_in_slice == 0
        flags |= F_FIRST_SLICE
    return flags


class _Frame:
    """Bookkeeping of one frame (one RTP timestamp) while its packets are held."""

    __slots__ = (
        "ts",
        "rtp_ts",
        "ts_sec",
        "lo",
        "hi",
        "count",
        "marker",
        "begin",
        "first_slice",
        "flags",
        "complete",
        "done",
        "arrival",
    )

    def __init__(self, ts: int, rtp_ts: int, ts_sec: float, ext: int) -> None:
        self.ts = ts
        self.rtp_ts = rtp_ts
        self.ts_sec = ts_sec
        self.lo = ext
        self.hi = ext
        self.count = 0
        self.marker = -1
        self.begin = -1
        self.first_slice = -1
        self.flags = 0
        self.complete = False
        self.done = False
        self.arrival = -1e300


class _Missing:
    __slots__ = ("ts_sec", "detected", "sent", "retries")

    def __init__(self, ts_sec: float, detected: float) -> None:
        self.ts_sec = ts_sec
        self.detected = detected
        self.sent = -1e300
        self.retries = 0


class VideoJitterCore:
    """H.264 video jitter buffer kernel; see ``vcore.jitter.VideoJitterBuffer`` for the contract."""

    def __init__(
        self,
        clock_rate: int = 90000,
        min_delay: float = 0.0,
        max_delay: float = 0.5,
        capacity: int = DEFAULT_CAPACITY,
        nack: bool = False,
        rtt: float = 0.1,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock_rate {clock_rate} must be positive")
        if capacity < 64 or capacity & (capacity - 1):
            raise ValueError(f"capacity {capacity} must be a power of two, at least 64")
        if not 0.0 <= min_delay <= max_delay:
            raise ValueError(f"need 0 <= min_delay <= max_delay, got {min_delay} and {max_delay}")
        self.clock_rate = clock_rate
        self.min_delay = float(min_delay)
        self.max_delay = float(max_delay)
        self.capacity = capacity
        self.nack_enabled = bool(nack)
        self.rtt = float(rtt)
        self._mask = capacity - 1
        self._slot_ext = [-1] * capacity
        self._slot_pkt: list[RtpPacket | None] = [None] * capacity
        self._slot_frame: list[_Frame | None] = [None] * capacity
        self._dep = H264Depacketizer()
        # counters
        self.packets = 0
        self.duplicates = 0
        self.late = 0
        self.lost = 0
        self.discarded = 0
        self.frames_complete = 0
        self.frames_released = 0
        self.frames_dropped = 0
        self.resets = 0
        self.keyframe_requests = 0
        self.nacks_sent = 0
        self.recovered = 0
        self.held = 0
        # timing
        self.jitter = 0.0
        self.delay = self.min_delay
        self._last_transit = 0.0
        self._have_transit = False
        self._samples: deque[float] = deque()
        self._sorted: list[float] = []
        self._mins: deque[tuple[float, float]] = deque()  # (ts_sec, transit), increasing transit
        self._offset = 0.0
        self._have_offset = False
        self._delay_ts = 0.0
        # keyframe requests
        self._kf_wanted = False
        self._kf_last = -1e300
        self._kf_sent = 0
        self._clock = -1e300
        self._sps = False
        self._pps = False
        # probation of a restart candidate (SSRC change, sequence or timestamp jump)
        self._cand: RtpPacket | None = None
        self._cand_arrival = 0.0
        self._missing: dict[int, _Missing] = {}
        self._reorder: deque[float] = deque()
        self._reorder_sorted: list[float] = []
        self.ssrc = -1
        self._init_stream()

    # ------------------------------------------------------------------ state

    def _init_stream(self) -> None:
        self._base = -1  # lowest extended sequence number not yet released
        self._highest = -1
        self._boundary = False  # a frame ended exactly at base - 1
        self._settled = False  # nothing before base is awaited any more (false at stream start)
        self._released_any = False
        self._chain = False  # the decoder has every reference it needs
        self._frames: dict[int, _Frame] = {}
        self._last_frame: _Frame | None = None
        self._key: _Frame | None = None  # latest complete keyframe not yet released
        self._ts_ref = 0
        self._ts_base = 0
        self._hi_ts_sec = 0.0
        self._hi_marker = False
        self._hi_arrival = -1e300  # when the highest packet arrived
        self._done_ts = -(1 << 62)
        self._missing = {}

    def reset(self) -> None:
        """Forget every held packet and frame (they count as dropped); ask for a keyframe."""
        for i in range(self.capacity):
            if self._slot_pkt[i] is not None:
                self._slot_pkt[i] = None
                self._slot_frame[i] = None
            self._slot_ext[i] = -1
        self.frames_dropped += sum(1 for f in self._frames.values() if not f.done)
        self.held = 0
        self._init_stream()
        self._mins.clear()
        self._have_offset = False
        self._have_transit = False
        self._want_keyframe()

    def _want_keyframe(self) -> None:
        self._kf_wanted = True

    @property
    def keyframe_needed(self) -> bool:
        """True when a keyframe request should be sent now (rate-limited)."""
        interval = 2.0 * self.rtt if self.rtt > KEYFRAME_INTERVAL / 2.0 else KEYFRAME_INTERVAL
        return self._kf_wanted and self._clock - self._kf_last >= interval

    def take_keyframe_request(self) -> str | None:
        """``"pli"`` or ``"fir"`` when a request is due (then clears it), else ``None``.

        The first requests after a loss are PLI (RFC 4585 §6.3.1); when a keyframe
        still has not come after several, FIR (RFC 5104 §4.3.1).
        """
        if not self.keyframe_needed:
            return None
        self._kf_last = self._clock
        self._kf_sent += 1
        self.keyframe_requests += 1
        return "fir" if self._kf_sent > PLI_BEFORE_FIR else "pli"

    # ------------------------------------------------------------------ timing

    def _playout(self, ts_sec: float) -> float:
        return ts_sec + self._offset + self.delay

    def _giveup(self, ts_sec: float) -> float:
        extra = 2.0 * self.jitter + REORDER_WAIT
        if self.nack_enabled:
            extra += NACK_RTTS * self.rtt
        hold = self.delay + extra
        if len(self._samples) < WARMUP_FRAMES or hold > self.max_delay:  # no estimate yet: wait the longest
            hold = self.max_delay if self.max_delay > self.delay else self.delay
        return ts_sec + self._offset + hold

    def playout_time(self, rtp_timestamp: int) -> float:
        """Local time at which a frame with this RTP timestamp plays out (NaN before any packet)."""
        if not self._have_offset:
            return float("nan")
        ts = self._ts_ref + ts_diff(rtp_timestamp & 0xFFFFFFFF, self._ts_ref & 0xFFFFFFFF)
        return self._playout((ts - self._ts_base) / self.clock_rate)

    def _is_key(self, f: _Frame) -> bool:
        """An IDR frame whose parameter sets are known: decodable on its own."""
        fl = f.flags
        return bool(fl & F_IDR) and bool(fl & F_SPS or self._sps) and bool(fl & F_PPS or self._pps)

    def _on_complete(self, f: _Frame) -> None:
        arrival = f.arrival
        f.complete = True
        self.frames_complete += 1
        if self._is_key(f):
            if self._key is None or f.lo > self._key.lo:
                self._key = f
        self._sample(arrival - f.ts_sec, f.ts_sec, bool(f.flags & F_RTX))

    def _sample(self, transit: float, ts_sec: float, rtx: bool = False) -> None:
        """One frame-delay observation: update the reference transit and the playout delay."""
        mins = self._mins
        while mins and mins[-1][1] >= transit:
            mins.pop()
        mins.append((ts_sec, transit))
        if len(mins) > MINS_CAP:
            mins.popleft()
        horizon = ts_sec - WINDOW_FRAMES / 30.0
        while mins[0][0] < horizon and len(mins) > 1:
            mins.popleft()
        self._offset = mins[0][1]
        self._have_offset = True
        sample = transit - self._offset
        if rtx:  # completed by a retransmission: the delay covers one round trip at most
            cap = RTX_DELAY_JITTERS * self.jitter + self.rtt
            if sample > cap:
                sample = cap
        self._samples.append(sample)
        bisect.insort(self._sorted, sample)
        if len(self._samples) > WINDOW_FRAMES:
            old = self._samples.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        srt = self._sorted
        target = srt[int(DELAY_PERCENTILE * (len(srt) - 1))]
        jt = JITTER_MULT * self.jitter
        if jt > target:
            target = jt
        if target < self.min_delay:
            target = self.min_delay
        if target > self.max_delay:
            target = self.max_delay
        dt = ts_sec - self._delay_ts
        if dt < 0.0:
            dt = 0.0
        self._delay_ts = ts_sec
        if target >= self.delay:
            self.delay = target
        else:
            step = SHRINK_RATE * dt
            self.delay = target if self.delay - target < step else self.delay - step

    # ------------------------------------------------------------------ push

    def push(self, packet: RtpPacket, arrival: float, retransmission: bool = False) -> None:
        """Add one RTP packet that arrived at ``arrival`` seconds."""
        self.packets += 1
        if arrival > self._clock:
            self._clock = arrival
        seq = packet.sequence_number
        if self._base < 0 or packet.ssrc != self.ssrc:
            if self._base >= 0 or self._cand is not None:
                self._probation(packet, arrival)
                return
            self.ssrc = packet.ssrc
            self._start(packet, arrival)
            return
        ext = extend_seq(seq, self._highest)
        d = ext - self._highest
        ts = self._ts_ref + ts_diff(packet.timestamp, self._ts_ref & 0xFFFFFFFF)
        ts_sec = (ts - self._ts_base) / self.clock_rate
        transit = arrival - ts_sec
        if self._have_offset and abs(transit - self._offset) > TS_JUMP + self.max_delay:
            if d > 0 and not retransmission:
                self._probation(packet, arrival)
            else:
                self.discarded += 1
            return
        if d > MAX_DROPOUT or (ext < self._base and self._base - ext > MAX_MISORDER):
            self._probation(packet, arrival)
            return
        if self._cand is not None:
            self._cand = None
            self.discarded += 1
        self._insert(packet, arrival, ext, ts, ts_sec, transit, retransmission)

    def _start(self, packet: RtpPacket, arrival: float) -> None:
        ext = packet.sequence_number + 0x10000
        self._base = ext
        self._highest = ext - 1
        self._ts_ref = packet.timestamp + (1 << 32)
        self._ts_base = self._ts_ref
        ts_sec = 0.0
        if not self._have_offset:
            self._offset = arrival - ts_sec
            self._have_offset = True
        self._insert(packet, arrival, ext, self._ts_ref, ts_sec, arrival - ts_sec, False)

    def _probation(self, packet: RtpPacket, arrival: float) -> None:
        """RFC 3550 A.1-style probation: two sequential packets confirm a restart."""
        cand = self._cand
        if (
            cand is not None
            and cand.ssrc == packet.ssrc
            and packet.sequence_number == (cand.sequence_number + 1) & 0xFFFF
            and abs(ts_diff(packet.timestamp, cand.timestamp)) < int(TS_JUMP * self.clock_rate)
        ):
            self._cand = None
            self.resets += 1
            self.reset()
            self.ssrc = packet.ssrc
            self._start(cand, self._cand_arrival)
            self.push(packet, arrival)
            self.packets -= 1
            return
        if cand is not None:
            self.discarded += 1
        self._cand = packet
        self._cand_arrival = arrival

    def _insert(
        self,
        packet: RtpPacket,
        arrival: float,
        ext: int,
        ts: int,
        ts_sec: float,
        transit: float,
        retransmission: bool,
    ) -> None:
        mask = self._mask
        i = ext & mask
        if self._slot_ext[i] == ext:
            self.duplicates += 1
            return
        if ext < self._base:
            if not self._released_any and self._base - ext < 64 and ext > self._highest - self.capacity + 1:
                if self.nack_enabled and ext + 1 < self._base:  # stream start: what lies between is missing too
                    if len(self._missing) + self._base - ext - 1 > self.capacity // 2:
                        self._missing.clear()
                        self._want_keyframe()
                    else:
                        mask = self._mask
                        for s in range(ext + 1, self._base):
                            if self._slot_ext[s & mask] != s and s not in self._missing:
                                self._missing[s] = _Missing(ts_sec, arrival)
                self._base = ext
                self._boundary = False
            else:
                self.late += 1
                if not retransmission:  # it came after its frame's deadline: the delay is too short
                    self._sample(transit, ts_sec)
                return
        if ts == self._done_ts:
            self.discarded += 1
            if ext == self._base:
                self._base += 1
                self._boundary = packet.marker
            return
        if not retransmission:
            if self._have_transit:
                dd = transit - self._last_transit
                if dd < 0.0:
                    dd = -dd
                self.jitter += (dd - self.jitter) / 16.0  # RFC 3550 A.8
            self._last_transit = transit
            self._have_transit = True
        # make room: drop the oldest frames while the packet does not fit the ring
        while ext - self._base >= self.capacity:
            self._evict(ext)
        if ext > self._highest:
            if self.nack_enabled and ext > self._highest + 1:
                gap = ext - self._highest - 1
                if len(self._missing) + gap > self.capacity // 2:
                    self._missing.clear()
                    self._want_keyframe()
                else:
                    hint = self._hi_ts_sec if not self._hi_marker else ts_sec
                    for s in range(self._highest + 1, ext):
                        if s not in self._missing:  # (a frame's tail may be awaited already)
                            self._missing[s] = _Missing(hint, arrival)
            if self._missing:
                m = self._missing.pop(ext, None)  # a frame's tail, taken for lost, came
                if m is not None and m.retries:
                    self.recovered += 1
            self._highest = ext
            self._ts_ref = ts
            self._hi_ts_sec = ts_sec
            self._hi_marker = packet.marker
            self._hi_arrival = arrival
        elif self._missing:
            m = self._missing.pop(ext, None)
            if m is not None:
                if m.retries:
                    self.recovered += 1
                if not retransmission:  # reordered, not lost: how long such a gap lasts
                    self._reorder_sample(arrival - m.detected)
            # the frame of a missing neighbour is now known better: its deadline too
            if not packet.marker:
                m = self._missing.get(ext + 1)
                if m is not None:
                    m.ts_sec = ts_sec  # the frame goes on after this packet
            m = self._missing.get(ext - 1)
            if m is not None and m.ts_sec > ts_sec:
                m.ts_sec = ts_sec  # the packet before belongs to this frame or an earlier one
        self._slot_ext[i] = ext
        self._slot_pkt[i] = packet
        self.held += 1
        f = self._last_frame
        if f is None or f.ts != ts or f.done:
            f = self._frames.get(ts)
            if f is None or f.done:
                f = _Frame(ts, packet.timestamp, ts_sec, ext)
                self._frames[ts] = f
            self._last_frame = f
        self._slot_frame[i] = f
        if ext < f.lo:
            f.lo = ext
        if ext > f.hi:
            f.hi = ext
        f.count += 1
        fl = _nal_flags(packet.payload)
        if retransmission:
            fl |= F_RTX
        if fl & F_BEGIN and (f.begin < 0 or ext < f.begin):
            f.begin = ext
        if fl & F_FIRST_SLICE and (f.first_slice < 0 or ext < f.first_slice):
            f.first_slice = ext
        f.flags |= fl
        if packet.marker and f.marker < 0:
            f.marker = ext
        if arrival > f.arrival:
            f.arrival = arrival
        self._check(f)
        j = (ext + 1) & mask
        if self._slot_ext[j] == ext + 1:
            g = self._slot_frame[j]
            if g is not None and g is not f:
                self._check(g)

    def _check(self, f: _Frame) -> None:
        if f.complete or f.done or f.marker < 0 or f.hi != f.marker:
            return
        if f.count != f.marker - f.lo + 1:
            return
        lo = f.lo
        if f.begin != lo:
            if lo == self._base:
                if not self._boundary and (f.first_slice != lo or not self._settled):
                    return
            else:
                j = (lo - 1) & self._mask
                if self._slot_ext[j] != lo - 1 or self._slot_pkt[j] is None:
                    return
                g = self._slot_frame[j]
                if g is None or g.ts == f.ts:
                    return
        self._on_complete(f)

    # ------------------------------------------------------------------ pop

    def _head(self) -> _Frame | None:
        s = self._base
        mask = self._mask
        while s <= self._highest:
            i = s & mask
            if self._slot_ext[i] == s and self._slot_pkt[i] is not None:
                return self._slot_frame[i]
            s += 1
        return None

    def _remove(self, f: _Frame) -> None:
        """Take frame ``f`` out of the ring; base moves past it (missing packets count as lost)."""
        mask = self._mask
        for s in range(self._base, f.hi + 1):
            i = s & mask
            if self._slot_ext[i] == s and self._slot_pkt[i] is not None:
                g = self._slot_frame[i]
                if g is not f and g is not None and not g.done:  # interleaved timestamps: drop it too
                    g.done = True
                    self._frames.pop(g.ts, None)
                    self.frames_dropped += 1
                    if self._key is g:
                        self._key = None
                self._slot_pkt[i] = None
                self._slot_frame[i] = None
                self.held -= 1
            else:
                self.lost += 1
        f.done = True
        self._released_any = True
        self._frames.pop(f.ts, None)
        if self._key is f:
            self._key = None
        self._done_ts = f.ts
        self._base = f.hi + 1
        self._boundary = f.marker == f.hi
        self._settled = True
        if self._missing:
            for s in [s for s in self._missing if s < self._base]:
                del self._missing[s]

    def _drop(self, f: _Frame) -> None:
        clean = f.lo == self._base and (self._boundary or f.begin == f.lo)
        self._remove(f)
        self.frames_dropped += 1
        if f.flags & F_IDR:  # the keyframe we asked for is broken: ask again at once
            self._kf_last = -1e300
        if not (clean and f.flags & F_NONREF):
            self._chain = False
            self._want_keyframe()

    def _evict(self, ext: int) -> None:
        f = self._head()
        if f is None or f.lo > ext - self.capacity:
            lost = ext - self.capacity + 1 - self._base
            self.lost += lost
            self._base += lost
            self._boundary = False
            self._settled = True
            self._chain = False
            self._want_keyframe()
            return
        self.discarded += f.count
        self._drop(f)

    def _release(self, f: _Frame, out: list[AccessUnit]) -> None:
        dep = self._dep
        dep._expected = -1
        mask = self._mask
        for s in range(f.lo, f.hi + 1):
            units = dep.push(self._slot_pkt[s & mask])  # type: ignore[arg-type]
        unit = units[-1]
        key = self._is_key(f)
        self._remove(f)
        if not unit.complete:
            self.frames_dropped += 1
            self._chain = False
            self._want_keyframe()
            return
        if f.flags & F_SPS:
            self._sps = True
        if f.flags & F_PPS:
            self._pps = True
        unit.keyframe = key
        if key:
            self._chain = True
            self._kf_wanted = False
            self._kf_sent = 0
        self.frames_released += 1
        out.append(unit)

    def pop(self, now: float) -> list[AccessUnit]:
        """Frames ready to decode at ``now``, in decode order."""
        out: list[AccessUnit] = []
        if now > self._clock:
            self._clock = now
        while self.held:
            f = self._head()
            if f is None:
                break
            key = self._key
            if not f.complete and f.lo == self._base:
                self._check(f)
            if f.complete and f.lo == self._base:
                if not self._chain and not self._is_key(f):
                    self._drop(f)
                    continue
                if now < self._playout(f.ts_sec) - TIME_EPS:
                    break
                self._release(f, out)
                continue
            if key is not None and not self._chain and now >= self._playout(key.ts_sec) - TIME_EPS:
                self._skip_to(key)
                continue
            if not self._chain and not self._is_key(f) and f.complete:
                self._drop(f)
                continue
            giveup = self._giveup(f.ts_sec)
            if now >= giveup - TIME_EPS:
                if f.lo == self._base and f.ts_sec >= self._hi_ts_sec \
                        and now < giveup + STALL_WAIT - TIME_EPS:
                    break  # nothing newer has arrived: the line is late (a queue), not lossy: wait for the rest
                if now < giveup + self._rtx_wait() - TIME_EPS and self._awaiting(f.hi + 1, now):
                    break  # a retransmission asked for may still come: sooner than a keyframe would
                if f.lo > self._base:  # give up the packets missing before f first
                    self.lost += f.lo - self._base
                    self._base = f.lo
                    self._boundary = False
                    self._settled = True
                    self._chain = False
                    self._want_keyframe()
                    continue
                if not self._settled:  # stream start: stop waiting for earlier packets
                    self._settled = True
                    self._check(f)
                    if f.complete:
                        continue
                self._drop(f)
                continue
            break
        return out

    def _skip_to(self, key: _Frame) -> None:
        while True:
            f = self._head()
            if f is None or f is key:
                break
            self._drop(f)
        if self._base < key.lo:
            self.lost += key.lo - self._base
            self._base = key.lo

    # ------------------------------------------------------------------ NACK

    def _rtx_wait(self) -> float:
        """How long past its give-up time a frame waits for a retransmission already asked for (0 without NACK).

        Dropping it costs a keyframe: a request, a queue and an IDR burst later, with every frame
        until then lost; the answer to a NACK on its way takes a round trip. Two NACK spacings:
        a lost request or answer is asked for once more.
        """
        if not self.nack_enabled:
            return 0.0
        return 2.0 * (self.rtt + NACK_WAIT_JITTERS * self.jitter)

    def _awaiting(self, hi: int, now: float) -> bool:
        """A packet from the base to ``hi`` was NACKed and its answer may still come."""
        if not self._missing:
            return False
        spacing = self.rtt + NACK_WAIT_JITTERS * self.jitter + REORDER_WAIT
        base = self._base
        for s, m in self._missing.items():
            if base <= s <= hi and m.retries and now - m.sent < spacing:
                return True
        return False

    def _reorder_sample(self, wait: float) -> None:
        self._reorder.append(wait)
        bisect.insort(self._reorder_sorted, wait)
        if len(self._reorder) > REORDER_WINDOW:
            old = self._reorder.popleft()
            del self._reorder_sorted[bisect.bisect_left(self._reorder_sorted, old)]

    def _nack_wait(self) -> float:
        """How long a gap may be reordering rather than loss: the measured reordering, at most 3 jitters."""
        wait = NACK_WAIT_JITTERS * self.jitter
        srt = self._reorder_sorted
        if not srt:
            return 0.0  # no reordering seen on this line: a gap is a loss
        q = srt[int(REORDER_PERCENTILE * (len(srt) - 1))]
        return q if q < wait else wait

    def _tail_check(self, now: float) -> None:
        """A frame whose last packet (the marker) is lost shows no gap until the next frame comes, a frame
        interval later: after a short silence the packet after the highest is taken for lost."""
        if self._hi_marker or self._base < 0 or self._highest < self._base:
            return
        nxt = self._highest + 1
        if now - self._hi_arrival >= TAIL_WAIT + TAIL_WAIT_JITTERS * self.jitter and nxt not in self._missing:
            self._missing[nxt] = _Missing(self._hi_ts_sec, now)

    def nacks(self, now: float) -> list[int]:
        """Sequence numbers to request now (RFC 4585 §6.2.1); empty when NACK is off.

        Besides gaps, the packet after the highest one when that one lacks the marker bit and
        nothing came for a short while (a frame's lost tail: found a frame interval sooner).
        """
        if not self.nack_enabled:
            return []
        self._tail_check(now)
        if not self._missing:
            return []
        if now > self._clock:
            self._clock = now
        out: list[int] = []
        wait = self._nack_wait()  # a packet less late than this may only be reordered
        spacing = self.rtt + NACK_WAIT_JITTERS * self.jitter  # when a retransmission is overdue
        if spacing < 0.001:
            spacing = 0.001
        gone = []
        for s, m in self._missing.items():
            giveup = self._giveup(m.ts_sec)
            if s < self._base or m.retries >= MAX_NACK_RETRIES or now + self.rtt > giveup + self._rtx_wait():
                gone.append(s)
                continue
            due = m.sent + spacing
            if m.retries:  # a retry that would come too late for its frame goes out earlier, at the last chance
                last = giveup - self.rtt - NACK_WAIT_JITTERS * self.jitter  # the latest answer still in time
                if last < m.sent + self.rtt:
                    last = m.sent + self.rtt
                if last < due:
                    due = last
            if now >= due - TIME_EPS and now - m.detected >= wait:
                m.sent = now
                m.retries += 1
                out.append(s & 0xFFFF)
        for s in gone:
            del self._missing[s]
        self.nacks_sent += len(out)
        return out

    @property
    def frames_held(self) -> int:
        """Frames with at least one packet in the buffer."""
        return len(self._frames)

    @property
    def missing(self) -> int:
        """Packets currently tracked as missing for NACK."""
        return len(self._missing)
