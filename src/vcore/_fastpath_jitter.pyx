# cython: language_level=3
"""Compiled video jitter buffer kernel.

Twin of ``vcore._fastpath_jitter_py`` (read that module for the reference
semantics and the constants' meaning): same public names, results, exceptions
and messages. Packet work only: time is an argument, never read from a clock;
no I/O, no asyncio.

Thread-safety: none; one buffer belongs to one receiving task or thread.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdlib cimport free, malloc
from libc.string cimport memmove

from vcore._fastpath cimport AccessUnit, H264Depacketizer, RtpPacket, c_extend_seq, c_ts_diff

__all__ = ["VideoJitterCore", "DEFAULT_CAPACITY"]

DEFAULT_CAPACITY = 1024

# constants: see the twin (_fastpath_jitter_py.py) for what each one means
cdef enum:
    MAX_DROPOUT = 3000
    MAX_MISORDER = 1000
    WINDOW_FRAMES = 300
    MINS_CAP = 1024
    MAX_NACK_RETRIES = 10
    WARMUP_FRAMES = 30
    PLI_BEFORE_FIR = 3
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
    F_PSLICE = 8
    F_NONREF = 16
    F_BEGIN = 32
    F_RTX = 64
    F_FIRST_SLICE = 128
    REORDER_WINDOW = 128

cdef double TS_JUMP = 3.0
cdef double DELAY_PERCENTILE = 0.95
cdef double JITTER_MULT = 3.0
cdef double SHRINK_RATE = 0.05
cdef double TIME_EPS = 1e-9
cdef double REORDER_WAIT = 0.010
cdef double STALL_WAIT = 1.0  # a late (not lossy) stream is waited for this much longer
cdef double NACK_RTTS = 5.0
cdef double NACK_WAIT_JITTERS = 3.0
cdef double TAIL_WAIT = 0.015  # silence after a packet without the marker bit (+ jitters) before
cdef double TAIL_WAIT_JITTERS = 3.0  # the next sequence number is taken for lost (a frame's lost tail)
cdef double RTX_DELAY_JITTERS = 2.0
cdef double REORDER_PERCENTILE = 0.95
cdef double KEYFRAME_INTERVAL = 0.2
cdef double NEVER = -1e300


# 64-bit constants as C variables: Cython would turn literals this large into Python ints
cdef long long MASK32 = 0xFFFFFFFF
cdef long long HALF32 = 0x80000000
cdef long long MOD32 = 0x100000000
cdef long long FAR_PAST = -4611686018427387904


cdef inline long long _extend_seq(long long seq, long long highest_ext) noexcept:
    return c_extend_seq(seq, highest_ext)


cdef inline long long _ts_diff(long long a, long long b) noexcept:
    return c_ts_diff(a, b)


cdef inline int _slice_flags(int t, int h) noexcept:
    if t == NAL_TYPE_IDR:
        return F_IDR
    if t == NAL_TYPE_SLICE:
        return F_PSLICE | (F_NONREF if not h & 0x60 else 0)
    return 0


cdef int _packet_flags(RtpPacket packet) except -1:
    """Frame flags of a packet; reads its payload view in place (RtpPacket keeps the
    payload as ``_src[_off:_off + _plen]``, behind a 2-byte FU-A header the packetizer
    may have synthesized in ``_prefix``)."""
    cdef const unsigned char* p
    cdef unsigned char head[3]
    cdef Py_ssize_t n = packet._plen
    if packet._prefix_len == 2:  # FU-A view: indicator and header apart, the rest in _src
        head[0] = packet._prefix[0]
        head[1] = packet._prefix[1]
        head[2] = (<const unsigned char*>PyBytes_AS_STRING(packet._src))[packet._off] if n > 0 else 0
        return _nal_flags(head, 3 if n > 0 else 2)
    if packet._prefix_len:  # not made by vcore: let the packet join its parts
        packet.payload
    p = <const unsigned char*>PyBytes_AS_STRING(packet._src) + packet._off
    return _nal_flags(p, packet._plen)


@cython.boundscheck(False)
cdef int _nal_flags(const unsigned char* p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t pos, size
    cdef int h, t, fu, first, flags = 0, sub, st
    cdef bint first_nal
    if n == 0:
        return 0
    h = p[0]
    t = h & 0x1F
    if t == NAL_TYPE_FU_A:
        if n < 3:
            return 0
        fu = p[1]
        t = fu & 0x1F
        if not fu & 0x80:
            return _slice_flags(t, h)
        first = p[2]
    elif t == NAL_TYPE_STAP_A:
        pos = 1
        first_nal = True
        while pos + 2 < n:
            size = (p[pos] << 8) | p[pos + 1]
            pos += 2
            if size == 0 or pos + size > n:
                break
            sub = p[pos]
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
            elif first_nal and (st == NAL_TYPE_SLICE or st == NAL_TYPE_IDR) and size > 1 and p[pos + 1] & 0x80:
                flags |= F_FIRST_SLICE
            first_nal = False
            pos += size
        return flags
    elif 1 <= t <= 23:
        first = p[1] if n > 1 else 0
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
    elif (t == NAL_TYPE_SLICE or t == NAL_TYPE_IDR) and first & 0x80:
        flags |= F_FIRST_SLICE
    return flags


@cython.final
cdef class _Frame:
    cdef long long ts
    cdef long long rtp_ts
    cdef double ts_sec
    cdef long long lo
    cdef long long hi
    cdef long long count
    cdef long long marker
    cdef long long begin
    cdef long long first_slice
    cdef int flags
    cdef bint complete
    cdef bint done
    cdef double arrival


cdef _Frame _new_frame(long long ts, long long rtp_ts, double ts_sec, long long ext):
    cdef _Frame f = _Frame.__new__(_Frame)
    f.ts = ts
    f.rtp_ts = rtp_ts
    f.ts_sec = ts_sec
    f.lo = ext
    f.hi = ext
    f.count = 0
    f.marker = -1
    f.begin = -1
    f.first_slice = -1
    f.flags = 0
    f.complete = False
    f.done = False
    f.arrival = NEVER
    return f


@cython.final
cdef class _Missing:
    cdef double ts_sec
    cdef double detected
    cdef double sent
    cdef int retries


cdef class VideoJitterCore:
    """H.264 video jitter buffer kernel; see ``vcore.jitter.VideoJitterBuffer`` for the contract."""

    cdef public long long clock_rate
    cdef public double min_delay
    cdef public double max_delay
    cdef public long long capacity
    cdef public bint nack_enabled
    cdef public double rtt
    cdef public long long packets
    cdef public long long duplicates
    cdef public long long late
    cdef public long long lost
    cdef public long long discarded
    cdef public long long frames_complete
    cdef public long long frames_released
    cdef public long long frames_dropped
    cdef public long long resets
    cdef public long long keyframe_requests
    cdef public long long nacks_sent
    cdef public long long recovered
    cdef public long long held
    cdef public double jitter
    cdef public double delay
    cdef public long long ssrc

    cdef long long _mask
    cdef long long* _slot_ext
    cdef list _slot_pkt
    cdef list _slot_frame
    cdef H264Depacketizer _dep
    cdef double _last_transit
    cdef bint _have_transit
    cdef double _win[WINDOW_FRAMES]  # delay samples, oldest first (a ring)
    cdef double _srt[WINDOW_FRAMES]  # the same samples, sorted
    cdef int _win_head
    cdef int _win_len
    cdef double _min_ts[MINS_CAP]  # monotonic deque of (ts_sec, transit): the windowed minimum
    cdef double _min_tr[MINS_CAP]
    cdef int _min_head
    cdef double _ro_win[REORDER_WINDOW]  # reordering delays, oldest first (a ring)
    cdef double _ro_srt[REORDER_WINDOW]  # the same, sorted
    cdef int _ro_head
    cdef int _ro_len
    cdef int _min_len
    cdef double _offset
    cdef bint _have_offset
    cdef double _delay_ts
    cdef bint _kf_wanted
    cdef double _kf_last
    cdef long long _kf_sent
    cdef double _clock
    cdef bint _sps
    cdef bint _pps
    cdef RtpPacket _cand
    cdef double _cand_arrival
    cdef dict _missing
    # per stream
    cdef long long _base
    cdef long long _highest
    cdef bint _boundary
    cdef bint _settled
    cdef bint _released_any
    cdef bint _chain
    cdef dict _frames
    cdef _Frame _last_frame
    cdef _Frame _key
    cdef long long _ts_ref
    cdef long long _ts_base
    cdef double _hi_ts_sec
    cdef bint _hi_marker
    cdef double _hi_arrival
    cdef long long _done_ts

    def __cinit__(self):
        self._slot_ext = NULL

    def __dealloc__(self):
        free(self._slot_ext)

    def __init__(
        self,
        clock_rate=90000,
        min_delay=0.0,
        max_delay=0.5,
        capacity=DEFAULT_CAPACITY,
        nack=False,
        rtt=0.1,
    ):
        cdef long long i
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
        free(self._slot_ext)
        self._slot_ext = <long long*>malloc(capacity * sizeof(long long))
        if self._slot_ext == NULL:
            raise MemoryError()
        for i in range(capacity):
            self._slot_ext[i] = -1
        self._slot_pkt = [None] * capacity
        self._slot_frame = [None] * capacity
        self._dep = H264Depacketizer()
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
        self.jitter = 0.0
        self.delay = self.min_delay
        self._last_transit = 0.0
        self._have_transit = False
        self._win_head = 0
        self._win_len = 0
        self._min_head = 0
        self._min_len = 0
        self._ro_head = 0
        self._ro_len = 0
        self._offset = 0.0
        self._have_offset = False
        self._delay_ts = 0.0
        self._kf_wanted = False
        self._kf_last = NEVER
        self._kf_sent = 0
        self._clock = NEVER
        self._sps = False
        self._pps = False
        self._cand = None
        self._cand_arrival = 0.0
        self._missing = {}
        self.ssrc = -1
        self._init_stream()

    # ------------------------------------------------------------------ state

    cdef void _init_stream(self):
        self._base = -1
        self._highest = -1
        self._boundary = False
        self._settled = False
        self._released_any = False
        self._chain = False
        self._frames = {}
        self._last_frame = None
        self._key = None
        self._ts_ref = 0
        self._ts_base = 0
        self._hi_ts_sec = 0.0
        self._hi_marker = False
        self._hi_arrival = NEVER
        self._done_ts = FAR_PAST
        self._missing = {}

    def reset(self):
        """Forget every held packet and frame (they count as dropped); ask for a keyframe."""
        cdef long long i
        cdef _Frame f
        for i in range(self.capacity):
            self._slot_pkt[i] = None
            self._slot_frame[i] = None
            self._slot_ext[i] = -1
        for f in self._frames.values():
            if not f.done:
                self.frames_dropped += 1
        self.held = 0
        self._init_stream()
        self._min_len = 0
        self._have_offset = False
        self._have_transit = False
        self._kf_wanted = True

    @property
    def keyframe_needed(self):
        """True when a keyframe request should be sent now (rate-limited)."""
        return self._keyframe_due()

    cdef bint _keyframe_due(self):
        cdef double interval = 2.0 * self.rtt if self.rtt > KEYFRAME_INTERVAL / 2.0 else KEYFRAME_INTERVAL
        return self._kf_wanted and self._clock - self._kf_last >= interval

    def take_keyframe_request(self):
        """``"pli"`` or ``"fir"`` when a request is due (then clears it), else ``None``.

        The first requests after a loss are PLI (RFC 4585 §6.3.1); when a keyframe
        still has not come after several, FIR (RFC 5104 §4.3.1).
        """
        if not self._keyframe_due():
            return None
        self._kf_last = self._clock
        self._kf_sent += 1
        self.keyframe_requests += 1
        return "fir" if self._kf_sent > PLI_BEFORE_FIR else "pli"

    # ------------------------------------------------------------------ timing

    cdef inline double _playout(self, double ts_sec) noexcept:
        return ts_sec + self._offset + self.delay

    cdef double _giveup(self, double ts_sec) noexcept:
        cdef double extra = 2.0 * self.jitter + REORDER_WAIT
        cdef double hold
        if self.nack_enabled:
            extra += NACK_RTTS * self.rtt
        hold = self.delay + extra
        if self._win_len < WARMUP_FRAMES or hold > self.max_delay:
            hold = self.max_delay if self.max_delay > self.delay else self.delay
        return ts_sec + self._offset + hold

    def playout_time(self, rtp_timestamp):
        """Local time at which a frame with this RTP timestamp plays out (NaN before any packet)."""
        if not self._have_offset:
            return float("nan")
        cdef long long ts = self._ts_ref + _ts_diff(rtp_timestamp & MASK32, self._ts_ref & MASK32)
        return self._playout(<double>(ts - self._ts_base) / self.clock_rate)

    cdef inline bint _is_key(self, _Frame f) noexcept:
        cdef int fl = f.flags
        return (fl & F_IDR) != 0 and ((fl & F_SPS) != 0 or self._sps) and ((fl & F_PPS) != 0 or self._pps)

    cdef void _on_complete(self, _Frame f):
        f.complete = True
        self.frames_complete += 1
        if self._is_key(f):
            if self._key is None or f.lo > self._key.lo:
                self._key = f
        self._sample(f.arrival - f.ts_sec, f.ts_sec, (f.flags & F_RTX) != 0)

    @cython.boundscheck(False)
    cdef void _sample(self, double transit, double ts_sec, bint rtx=False) noexcept:
        cdef int k, lo, hi, mid, n
        cdef double old, sample
        # windowed minimum transit (monotonic deque in a ring)
        while self._min_len and self._min_tr[(self._min_head + self._min_len - 1) % MINS_CAP] >= transit:
            self._min_len -= 1
        k = (self._min_head + self._min_len) % MINS_CAP
        self._min_ts[k] = ts_sec
        self._min_tr[k] = transit
        self._min_len += 1
        if self._min_len > MINS_CAP:
            self._min_head = (self._min_head + 1) % MINS_CAP
            self._min_len -= 1
        cdef double horizon = ts_sec - WINDOW_FRAMES / 30.0
        while self._min_ts[self._min_head] < horizon and self._min_len > 1:
            self._min_head = (self._min_head + 1) % MINS_CAP
            self._min_len -= 1
        self._offset = self._min_tr[self._min_head]
        self._have_offset = True
        sample = transit - self._offset
        cdef double cap
        if rtx:  # completed by a retransmission: the delay covers one round trip at most
            cap = RTX_DELAY_JITTERS * self.jitter + self.rtt
            if sample > cap:
                sample = cap
        n = self._win_len
        if n == WINDOW_FRAMES:  # forget the oldest sample
            old = self._win[self._win_head]
            self._win[self._win_head] = sample
            self._win_head = (self._win_head + 1) % WINDOW_FRAMES
            lo = 0
            hi = n
            while lo < hi:  # bisect_left
                mid = (lo + hi) >> 1
                if self._srt[mid] < old:
                    lo = mid + 1
                else:
                    hi = mid
            memmove(&self._srt[lo], &self._srt[lo + 1], (n - lo - 1) * sizeof(double))
            n -= 1
        else:
            self._win[(self._win_head + n) % WINDOW_FRAMES] = sample
            self._win_len = n + 1
        lo = 0
        hi = n
        while lo < hi:  # bisect_right (insort)
            mid = (lo + hi) >> 1
            if sample < self._srt[mid]:
                hi = mid
            else:
                lo = mid + 1
        memmove(&self._srt[lo + 1], &self._srt[lo], (n - lo) * sizeof(double))
        self._srt[lo] = sample
        n += 1
        cdef double target = self._srt[<int>(DELAY_PERCENTILE * (n - 1))]
        cdef double jt = JITTER_MULT * self.jitter
        if jt > target:
            target = jt
        if target < self.min_delay:
            target = self.min_delay
        if target > self.max_delay:
            target = self.max_delay
        cdef double dt = ts_sec - self._delay_ts
        if dt < 0.0:
            dt = 0.0
        self._delay_ts = ts_sec
        cdef double step
        if target >= self.delay:
            self.delay = target
        else:
            step = SHRINK_RATE * dt
            self.delay = target if self.delay - target < step else self.delay - step

    # ------------------------------------------------------------------ push

    def push(self, RtpPacket packet not None, double arrival, bint retransmission=False):
        """Add one RTP packet that arrived at ``arrival`` seconds."""
        self.packets += 1
        if arrival > self._clock:
            self._clock = arrival
        cdef long long seq = packet.sequence_number
        if self._base < 0 or packet.ssrc != self.ssrc:
            if self._base >= 0 or self._cand is not None:
                self._probation(packet, arrival)
                return
            self.ssrc = packet.ssrc
            self._start(packet, arrival)
            return
        cdef long long ext = _extend_seq(seq, self._highest)
        cdef long long d = ext - self._highest
        cdef long long ts = self._ts_ref + _ts_diff(packet.timestamp, self._ts_ref & MASK32)
        cdef double ts_sec = <double>(ts - self._ts_base) / self.clock_rate
        cdef double transit = arrival - ts_sec
        cdef double off = transit - self._offset
        if self._have_offset and (off > TS_JUMP + self.max_delay or -off > TS_JUMP + self.max_delay):
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

    cdef int _start(self, RtpPacket packet, double arrival) except -1:
        cdef long long ext = packet.sequence_number + 0x10000
        self._base = ext
        self._highest = ext - 1
        self._ts_ref = packet.timestamp + MOD32
        self._ts_base = self._ts_ref
        cdef double ts_sec = 0.0
        if not self._have_offset:
            self._offset = arrival - ts_sec
            self._have_offset = True
        self._insert(packet, arrival, ext, self._ts_ref, ts_sec, arrival - ts_sec, False)
        return 0

    cdef int _probation(self, RtpPacket packet, double arrival) except -1:
        cdef RtpPacket cand = self._cand
        cdef long long dts
        if cand is not None and cand.ssrc == packet.ssrc and packet.sequence_number == (cand.sequence_number + 1) & 0xFFFF:
            dts = _ts_diff(packet.timestamp, cand.timestamp)
            if dts < 0:
                dts = -dts
            if dts < <long long>(TS_JUMP * self.clock_rate):
                self._cand = None
                self.resets += 1
                self.reset()
                self.ssrc = packet.ssrc
                self._start(cand, self._cand_arrival)
                self.push(packet, arrival)
                self.packets -= 1
                return 0
        if cand is not None:
            self.discarded += 1
        self._cand = packet
        self._cand_arrival = arrival
        return 0

    @cython.boundscheck(False)  # every index is masked by capacity - 1
    cdef int _insert(
        self,
        RtpPacket packet,
        double arrival,
        long long ext,
        long long ts,
        double ts_sec,
        double transit,
        bint retransmission,
    ) except -1:
        cdef long long mask = self._mask
        cdef long long i = ext & mask
        cdef long long s, j, gap
        cdef double dd, hint
        cdef _Missing m
        cdef _Frame f, g
        cdef int fl
        if self._slot_ext[i] == ext:
            self.duplicates += 1
            return 0
        if ext < self._base:
            if not self._released_any and self._base - ext < 64 and ext > self._highest - self.capacity + 1:
                if self.nack_enabled and ext + 1 < self._base:  # stream start: what lies between is missing too
                    if len(self._missing) + self._base - ext - 1 > self.capacity // 2:
                        self._missing.clear()
                        self._kf_wanted = True
                    else:
                        for s in range(ext + 1, self._base):
                            if self._slot_ext[s & self._mask] != s and s not in self._missing:
                                m = _Missing.__new__(_Missing)
                                m.ts_sec = ts_sec
                                m.detected = arrival
                                m.sent = NEVER
                                m.retries = 0
                                self._missing[s] = m
                self._base = ext
                self._boundary = False
            else:
                self.late += 1
                if not retransmission:
                    self._sample(transit, ts_sec)
                return 0
        if ts == self._done_ts:
            self.discarded += 1
            if ext == self._base:
                self._base += 1
                self._boundary = packet.marker
            return 0
        if not retransmission:
            if self._have_transit:
                dd = transit - self._last_transit
                if dd < 0.0:
                    dd = -dd
                self.jitter += (dd - self.jitter) / 16.0  # RFC 3550 A.8
            self._last_transit = transit
            self._have_transit = True
        while ext - self._base >= self.capacity:
            self._evict(ext)
        if ext > self._highest:
            if self.nack_enabled and ext > self._highest + 1:
                gap = ext - self._highest - 1
                if len(self._missing) + gap > self.capacity // 2:
                    self._missing.clear()
                    self._kf_wanted = True
                else:
                    hint = self._hi_ts_sec if not self._hi_marker else ts_sec
                    for s in range(self._highest + 1, ext):
                        if s in self._missing:  # (a frame's tail may be awaited already)
                            continue
                        m = _Missing.__new__(_Missing)
                        m.ts_sec = hint
                        m.detected = arrival
                        m.sent = NEVER
                        m.retries = 0
                        self._missing[s] = m
            if self._missing:
                mo = self._missing.pop(ext, None)  # a frame's tail, taken for lost, came
                if mo is not None and (<_Missing>mo).retries:
                    self.recovered += 1
            self._highest = ext
            self._ts_ref = ts
            self._hi_ts_sec = ts_sec
            self._hi_marker = packet.marker
            self._hi_arrival = arrival
        elif self._missing:
            mo = self._missing.pop(ext, None)
            if mo is not None:
                m = <_Missing>mo
                if m.retries:
                    self.recovered += 1
                if not retransmission:  # reordered, not lost: how long such a gap lasts
                    self._reorder_sample(arrival - m.detected)
            # the frame of a missing neighbour is now known better: its deadline too
            if not packet.marker:
                mo = self._missing.get(ext + 1)
                if mo is not None:
                    (<_Missing>mo).ts_sec = ts_sec  # the frame goes on after this packet
            mo = self._missing.get(ext - 1)
            if mo is not None and (<_Missing>mo).ts_sec > ts_sec:
                (<_Missing>mo).ts_sec = ts_sec  # the packet before belongs to this frame or an earlier one
        self._slot_ext[i] = ext
        self._slot_pkt[i] = packet
        self.held += 1
        f = self._last_frame
        if f is None or f.ts != ts or f.done:
            fo = self._frames.get(ts) if self._frames else None
            if fo is None or (<_Frame>fo).done:
                f = _new_frame(ts, packet.timestamp, ts_sec, ext)
                self._frames[ts] = f
            else:
                f = <_Frame>fo
            self._last_frame = f
        self._slot_frame[i] = f
        if ext < f.lo:
            f.lo = ext
        if ext > f.hi:
            f.hi = ext
        f.count += 1
        fl = _packet_flags(packet)
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
            go = self._slot_frame[j]
            if go is not None and go is not f:
                self._check(<_Frame>go)
        return 0

    @cython.boundscheck(False)  # every index is masked by capacity - 1
    cdef int _check(self, _Frame f) except -1:
        cdef long long lo, j
        if f.complete or f.done or f.marker < 0 or f.hi != f.marker:
            return 0
        if f.count != f.marker - f.lo + 1:
            return 0
        lo = f.lo
        if f.begin != lo:
            if lo == self._base:
                if not self._boundary and (f.first_slice != lo or not self._settled):
                    return 0
            else:
                j = (lo - 1) & self._mask
                if self._slot_ext[j] != lo - 1 or self._slot_pkt[j] is None:
                    return 0
                go = self._slot_frame[j]
                if go is None or (<_Frame>go).ts == f.ts:
                    return 0
        self._on_complete(f)
        return 0

    # ------------------------------------------------------------------ pop

    @cython.boundscheck(False)  # every index is masked by capacity - 1
    cdef _Frame _head(self):
        cdef long long s = self._base
        cdef long long mask = self._mask
        cdef long long i
        while s <= self._highest:
            i = s & mask
            if self._slot_ext[i] == s and self._slot_pkt[i] is not None:
                return <_Frame>self._slot_frame[i]
            s += 1
        return None

    @cython.boundscheck(False)  # every index is masked by capacity - 1
    cdef int _remove(self, _Frame f) except -1:
        cdef long long mask = self._mask
        cdef long long s, i
        cdef _Frame g
        for s in range(self._base, f.hi + 1):
            i = s & mask
            if self._slot_ext[i] == s and self._slot_pkt[i] is not None:
                go = self._slot_frame[i]
                if go is not f and go is not None and not (<_Frame>go).done:
                    g = <_Frame>go
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
        return 0

    cdef int _drop(self, _Frame f) except -1:
        cdef bint clean = f.lo == self._base and (self._boundary or f.begin == f.lo)
        self._remove(f)
        self.frames_dropped += 1
        if f.flags & F_IDR:
            self._kf_last = NEVER
        if not (clean and f.flags & F_NONREF):
            self._chain = False
            self._kf_wanted = True
        return 0

    cdef int _evict(self, long long ext) except -1:
        cdef _Frame f = self._head()
        cdef long long lost
        if f is None or f.lo > ext - self.capacity:
            lost = ext - self.capacity + 1 - self._base
            self.lost += lost
            self._base += lost
            self._boundary = False
            self._settled = True
            self._chain = False
            self._kf_wanted = True
            return 0
        self.discarded += f.count
        self._drop(f)
        return 0

    @cython.boundscheck(False)  # every index is masked by capacity - 1
    cdef int _release(self, _Frame f, list out) except -1:
        cdef H264Depacketizer dep = self._dep
        cdef long long mask = self._mask
        cdef long long s
        cdef RtpPacket p
        cdef AccessUnit unit
        dep._timestamp = f.rtp_ts
        for s in range(f.lo, f.hi + 1):
            p = <RtpPacket>self._slot_pkt[s & mask]
            dep._payload(p)
        unit = dep._finish()
        cdef bint key = self._is_key(f)
        self._remove(f)
        if not unit.complete:
            self.frames_dropped += 1
            self._chain = False
            self._kf_wanted = True
            return 0
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
        return 0

    def pop(self, double now):
        """Frames ready to decode at ``now``, in decode order."""
        cdef list out = []
        cdef _Frame f, key
        cdef double giveup
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
                if f.lo > self._base:
                    self.lost += f.lo - self._base
                    self._base = f.lo
                    self._boundary = False
                    self._settled = True
                    self._chain = False
                    self._kf_wanted = True
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

    cdef int _skip_to(self, _Frame key) except -1:
        cdef _Frame f
        while True:
            f = self._head()
            if f is None or f is key:
                break
            self._drop(f)
        if self._base < key.lo:
            self.lost += key.lo - self._base
            self._base = key.lo
        return 0

    # ------------------------------------------------------------------ NACK

    @cython.boundscheck(False)
    cdef void _reorder_sample(self, double wait) noexcept:
        cdef int lo, hi, mid, n = self._ro_len
        cdef double old
        if n == REORDER_WINDOW:  # forget the oldest sample
            old = self._ro_win[self._ro_head]
            self._ro_win[self._ro_head] = wait
            self._ro_head = (self._ro_head + 1) % REORDER_WINDOW
            lo = 0
            hi = n
            while lo < hi:  # bisect_left
                mid = (lo + hi) >> 1
                if self._ro_srt[mid] < old:
                    lo = mid + 1
                else:
                    hi = mid
            memmove(&self._ro_srt[lo], &self._ro_srt[lo + 1], (n - lo - 1) * sizeof(double))
            n -= 1
        else:
            self._ro_win[(self._ro_head + n) % REORDER_WINDOW] = wait
            self._ro_len = n + 1
        lo = 0
        hi = n
        while lo < hi:  # bisect_right (insort)
            mid = (lo + hi) >> 1
            if wait < self._ro_srt[mid]:
                hi = mid
            else:
                lo = mid + 1
        memmove(&self._ro_srt[lo + 1], &self._ro_srt[lo], (n - lo) * sizeof(double))
        self._ro_srt[lo] = wait

    cdef double _rtx_wait(self) noexcept:
        """How long past its give-up time a frame waits for a retransmission already asked for (0 without NACK)."""
        if not self.nack_enabled:
            return 0.0
        return 2.0 * (self.rtt + NACK_WAIT_JITTERS * self.jitter)

    cdef bint _awaiting(self, long long hi, double now) except -1:
        """A packet from the base to ``hi`` was NACKed and its answer may still come."""
        if not self._missing:
            return False
        cdef double spacing = self.rtt + NACK_WAIT_JITTERS * self.jitter + REORDER_WAIT
        cdef long long base = self._base
        cdef long long s
        cdef _Missing m
        for so, mo in self._missing.items():
            s = so
            m = <_Missing>mo
            if base <= s <= hi and m.retries and now - m.sent < spacing:
                return True
        return False

    cdef double _nack_wait(self) noexcept:
        cdef double wait = NACK_WAIT_JITTERS * self.jitter
        if self._ro_len == 0:
            return 0.0  # no reordering seen on this line: a gap is a loss
        cdef double q = self._ro_srt[<int>(REORDER_PERCENTILE * (self._ro_len - 1))]
        return q if q < wait else wait

    cdef void _tail_check(self, double now):
        # a frame whose last packet (the marker) is lost shows no gap until the next frame comes, a
        # frame interval later: after a short silence the packet after the highest is taken for lost
        if self._hi_marker or self._base < 0 or self._highest < self._base:
            return
        cdef long long nxt = self._highest + 1
        cdef _Missing m
        if now - self._hi_arrival >= TAIL_WAIT + TAIL_WAIT_JITTERS * self.jitter and nxt not in self._missing:
            m = _Missing.__new__(_Missing)
            m.ts_sec = self._hi_ts_sec
            m.detected = now
            m.sent = NEVER
            m.retries = 0
            self._missing[nxt] = m

    def nacks(self, double now):
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
        cdef list out = []
        cdef double wait = self._nack_wait()  # a packet less late than this may only be reordered
        cdef double spacing = self.rtt + NACK_WAIT_JITTERS * self.jitter  # when a retransmission is overdue
        if spacing < 0.001:
            spacing = 0.001
        cdef list gone = []
        cdef _Missing m
        cdef long long s
        cdef double giveup, due, last
        for so, mo in self._missing.items():
            s = so
            m = <_Missing>mo
            giveup = self._giveup(m.ts_sec)
            if s < self._base or m.retries >= MAX_NACK_RETRIES or now + self.rtt > giveup + self._rtx_wait():
                gone.append(so)
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
        for so in gone:
            del self._missing[so]
        self.nacks_sent += len(out)
        return out

    @property
    def frames_held(self):
        """Frames with at least one packet in the buffer."""
        return len(self._frames)

    @property
    def missing(self):
        """Packets currently tracked as missing for NACK."""
        return len(self._missing)
