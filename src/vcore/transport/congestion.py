"""Sender-side congestion control for a video stream on a thin uplink (ADSL).

:class:`CongestionController` turns feedback into a target bitrate for the
video encoder and the pacer. It is a member of the Google Congestion Control
family (draft-ietf-rmcat-gcc-02) with the congestion signal of LEDBAT/NADA:

- **Delay-based, with per-packet feedback** (RFC 8888 reports between vcore
  peers, :mod:`vcore.transport.feedback`): the one-way delay of each packet
  (receiver arrival minus our send time, the clock offset cancels out) minus
  its minimum over the last minute is the *queueing delay*; taking the lowest
  delay of the last half second strips the network jitter (a queue that
  builds raises every packet's delay, jitter only some). Above ``queue_high`` (40 ms) the line is
  overused (unless that queue is draining: the last decrease is acting): the target drops to
  0.85 × the rate the receiver actually got (GCC §5.5; over the receiver's last 0.3 s when the
  queue is past 40 ms: a capacity drop, less the share that drains that queue within a second,
  as SCReAM and NADA scale their decrease with the delay), at most once per response time; so does a queue above
  ``queue_low`` that grew report after report (caught early). Below ``queue_low`` (15 ms) it
  may rise: 30 %/s until the first congestion ("start"; with ``backlog``, also until the
  queue as it stands now passes 60 ms), then about one packet
  per response time up to 0.95 × the rate where congestion was last seen, a quarter of a
  packet above it (the probe builds a queue slowly enough to be caught early); 15 %/s far
  from it or once no congestion was seen for 8 s (GCC's additive / multiplicative
  increase), 25 %/s once the receiver got 1.1 × every congestion rate of the last 10 s
  without a queue (the line grew: ADSL capacity comes back in steps). In between it holds;
  a queue that stays level (within 10 ms) through 2 s of holding is the delay floor moving
  up (a packet crosses a slower line more slowly) and the floor is re-learnt. With the
  sender's backlog (``on_feedback(backlog=)``), a queue as it stands now past 250 ms is a
  capacity drop, answered about 0.4 s before the filtered measure shows it.
  Why not GCC's trendline filter: on an ADSL line the deep modem queue is the
  only bottleneck, an absolute queue target bounds latency directly (the p95
  goal), and the min filter is immune to 20–60 ms of jitter that a slope
  estimator reads as overuse. The cost, as for every delay-based controller: a
  competing TCP upload that keeps the queue full takes most of the line.
- **Loss**: random loss on a lossy line is not congestion (NACK repairs it), and
  a drop-tail queue that overflows shows in the delay first; with per-packet
  feedback loss counts only above 10 %, and only for packets sent since the last
  decrease (the burst a capacity drop loses from the modem's queue was sent
  before the decrease that answered it). With peers
  that send only receiver reports (no per-packet feedback) the controller
  falls back to GCC's loss rules (§6): above 10 % cut by half the loss, below
  2 % grow 8 %/s, else hold.
- **Probe clusters** (libwebrtc's ProbeController and BitrateProber): after a large
  drop (the target under 0.6 × the highest rate the receiver got in the last minute,
  for 3 s) the line may come back in a step the encoder cannot fill (a small picture
  makes less than its target). Every 3 s, when no queue stands, :meth:`probe_rate`
  asks the sender for a cluster: 150 ms at twice the rate the receiver gets, made of
  the media queued and padding-only packets on a probe SSRC of their own (the
  jitter buffer never sees them), paced at exactly that rate. If the receiver got
  it at 0.9 × the rate it left at or more, the line carries it: the target jumps
  to 0.85 × it, and when that is past every congestion rate of the last 10 s (the
  line grew) another cluster at twice that rate goes at once; that chained cluster,
  spread out by the line, arrived at the line's rate, and the increase stops just
  under it for 10 s. A cluster the line spread out otherwise moves nothing, and the
  queue it left is paid back: the sender encodes no picture for that long (at most
  0.1 s, :meth:`take_probe_debt`). 150 ms so that a probe above the line builds a
  queue deeper than a modem's (or a token bucket's) burst allowance; the media sent
  in the cluster and 0.7 s after it queue behind it, so their delays are not taken
  for congestion and the target does not rise until they are reported.
- **Limits**: ``limit`` caps the target (a peer's TMMBR, RFC 5104, or H.245
  ``flowControlCommand``); ``min_bitrate``/``max_bitrate`` bound it.

Pure: no I/O and no clock; every call takes ``now`` (``time.monotonic()``
seconds). Not thread-safe: it belongs to the event loop.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable

from .feedback import PacketResult
from .probe import PROBE_DURATION, ProbeCluster

__all__ = ["CongestionController", "BETA", "QUEUE_LOW", "QUEUE_HIGH"]

BETA = 0.85  # GCC §5.5: decrease to this share of the received rate
QUEUE_LOW = 0.015  # s of queueing delay under which the rate may grow
QUEUE_HIGH = 0.040  # s above which the line is overused
LOSS_LOW = 0.02  # GCC §6
LOSS_HIGH = 0.10
START_GROWTH = 1.30  # per second, until the first congestion
FAR_GROWTH = 1.15  # per second, far from the last congestion point
GREW_GROWTH = 1.25  # per second, once the line is known to have grown
RR_GROWTH = 1.08  # per second, loss-based fallback (GCC §6)
PACKET_BITS = 1200 * 8  # additive increase: about one packet per response time
NEAR_MAX = 0.95  # of the last congestion rate, above which the additive increase slows to a quarter
BASE_WINDOW = 60.0  # s over which the minimum one-way delay is kept
_BUCKET = 2.0  # s per base-delay bucket
RATE_WINDOW = 1.0  # s of feedback for the received rate
MAX_ARRIVALS = 4096  # packets of arrival history at most
RECENT_WINDOW = 0.3  # s of feedback for the capacity under a deep queue
LOSS_INTERVAL = 0.5  # s of feedback per loss measurement
GREW = 1.1  # a received rate this far above every congestion rate of the last GREW_MEMORY s means the line grew
GREW_MEMORY = 10.0  # s
FORGET_CONGESTION = 8.0  # s without a decrease after which the last congestion rate no longer slows growth
APP_LIMITED = 0.6  # no increase while the receiver gets less than this share of the target
GROWTH_CAP = 1.6  # the target stays within this many times the received rate (+20 kbit/s): tested rates only
RISE = 0.010  # s the queue must have grown by over the last RISE_WINDOW to count as building
RISE_WINDOW = 0.4  # s
QUEUE_WINDOW = 0.5  # s: the queueing delay is the lowest one-way delay seen in this window, minus the base
START_QUEUE = 0.06  # s of queue as it stands now that ends the start phase
SURGE = 0.25  # s of queue as it stands now that is a capacity drop, not a probe's overshoot
DRAIN = 1.0  # s: a deep queue's decrease leaves room to drain it in this long
DRAIN_FLOOR = 0.5  # the deep-queue decrease goes no lower than this share of the capacity
REBASE_AFTER = 2.0  # s of holding on a level queue after which that level is the delay floor
FALLBACK_AFTER = 3.0  # s without per-packet feedback before receiver reports drive the rate
PROBE_GAIN = 2.0  # a probe cluster goes at this many times the received rate (or the last cluster's found rate)
PROBE_BELOW = 0.6  # probe while the target is under this share of the highest received rate lately
PROBE_MEMORY = 60.0  # s over which that highest rate is kept
PROBE_INTERVAL = 3.0  # s between probe clusters (none in flight)
PROBE_MAX_DEBT = 0.1  # s: the most a cluster's queue is paid back by sending nothing (one picture at 15 fps:
# a longer pause is a freeze of its own)
PROBE_AFTER_DROP = 3.0  # s the target stays low before the first cluster (a line that just dropped is not back)
PROBE_QUIET = 0.7  # s after a cluster during which the media sent is not a delay sample (its queue drains)


class CongestionController:
    """The target bitrate (bit/s) of one video stream; see the module docs.

    Feed it :meth:`on_feedback` (per-packet results) and/or
    :meth:`on_receiver_report`; read :attr:`target`. ``state`` says what it
    did last ("start", "increase", "hold", "decrease"); ``queue_delay`` (s),
    ``loss`` (0..1) and ``received_rate`` (bit/s) are its latest measurements.
    """

    def __init__(self, *, start_bitrate: int = 300_000, min_bitrate: int = 100_000, max_bitrate: int = 1_500_000,
                 queue_low: float = QUEUE_LOW, queue_high: float = QUEUE_HIGH) -> None:
        if not 0 < min_bitrate <= max_bitrate:
            raise ValueError(f"bitrate bounds must satisfy 0 < min ({min_bitrate}) <= max ({max_bitrate})")
        if not 0 < queue_low < queue_high:
            raise ValueError("queue delay thresholds must satisfy 0 < low < high")
        self.min_bitrate = int(min_bitrate)
        self.max_bitrate = int(max_bitrate)
        self.queue_low = queue_low
        self.queue_high = queue_high
        self._target = float(start_bitrate)
        self.limit: int | None = None
        self.state = "start"
        self.rtt = 0.1
        self.queue_delay: float | None = None
        self.loss = 0.0
        self.received_rate: float | None = None
        self.queue_now: float | None = None  # s: the queue as it stands now (with ``backlog``, in the start)
        self.decreases = 0
        self._base: deque[tuple[float, float]] = deque()  # (bucket start, min one-way delay)
        self._acked: deque[tuple[float, int]] = deque()  # (feedback time, bytes acknowledged)
        self._arrivals: deque[tuple[float, int]] = deque()  # (receiver's arrival time, bytes), last second
        self._first_feedback: float | None = None
        self._lows: deque[tuple[float, float]] = deque()  # (report time, its lowest one-way delay)
        self._trend: deque[tuple[float, float]] = deque()  # (report time, queue delay) over RISE_WINDOW
        self._last_update: float | None = None
        self._last_decrease = -math.inf
        self._congested_at: float | None = None  # received rate when congestion was last seen
        self._grew = False  # the receiver got well past the last congestion rate: the line grew
        self._congestions: deque[tuple[float, float]] = deque()  # (time, received rate) at each decrease
        self._last_feedback = -math.inf
        self._interval_start: float | None = None
        self._interval_sent = 0
        self._interval_lost = 0
        self._loss_at = -math.inf  # when self.loss was last measured
        self._restore: float | None = None  # the target to go back to once a deep queue drained
        self._newest = (-math.inf, 0.0)  # (send time, one-way delay) of the newest packet reported received
        self._flat: deque[tuple[float, float]] = deque()  # (report time, queue delay) while holding
        self.rebases = 0  # times the one-way delay floor was re-learnt (see _note_flat)
        self._peaks: deque[tuple[float, float]] = deque()  # (bucket start, highest received rate)
        self._cluster: ProbeCluster | None = None
        self._last_probe = -math.inf
        self._probe_again = False  # the last cluster went through: the next one goes at once
        self._probe_found = 0.0  # bit/s the last cluster that went through was carried at
        self._low_since: float | None = None  # when the target fell under PROBE_BELOW of the high rate
        self._line: tuple[float, float] | None = None  # (when, bit/s): the line's rate a cluster measured
        self._probe_quiet = -math.inf  # media sent in [quiet, quiet_end) queued behind a cluster
        self._probe_quiet_end = -math.inf
        self.probes = 0  # clusters asked for
        self.probes_through = 0  # clusters the line carried (the target jumped)
        self.probe_result: float | None = None  # bit/s the receiver got of the last cluster
        self._probe_debt = 0.0  # s of queue the last cluster left on a line that did not carry it
        self._clamp()

    # ------------------------------------------------------------ reading

    @property
    def target(self) -> int:
        """The bitrate to send at now (bit/s), within the bounds and ``limit``."""
        return int(self._target)

    @property
    def grew(self) -> bool:
        """The receiver got well past every congestion rate of the last 10 s without a queue: the line grew.

        True from then until the next decrease (the climb is at 25 %/s meanwhile).
        """
        return self._grew

    def set_limit(self, bitrate: int | None) -> None:
        """Cap the target (a peer's TMMBR or flow control); None lifts the cap."""
        if bitrate is not None and bitrate <= 0:
            raise ValueError("a bitrate limit must be positive")
        self.limit = bitrate
        self._clamp()

    def _clamp(self) -> None:
        top = self.max_bitrate if self.limit is None else min(self.max_bitrate, self.limit)
        self._target = max(float(self.min_bitrate), min(float(top), self._target))

    # ------------------------------------------------------------ per-packet feedback

    def on_feedback(self, results: Iterable[PacketResult], now: float,
                    backlog: Callable[[float], int] | None = None) -> int:
        """Results of one RFC 8888 report (from :meth:`SendLog.results`); returns the new target.

        ``backlog(t)``: the bits sent after ``t`` that no report has spoken of yet
        (:meth:`SendLog.bits_sent_after`); with it the controller also reads the queue as it
        stands now (``queue_now``, :meth:`drain_time`), a queue earlier than the filtered
        ``queue_delay``: past 60 ms it ends the start phase, past 250 ms it is a capacity drop
        (a deep-queue decrease, at most once a second), and a deep queue's restore waits until
        it is gone. (Holding every increase on it was tried: at 15-25 %/s its overestimate held
        back the climb after a capacity rise, for no fewer freezes.)
        """
        self._last_feedback = now
        delays: list[float] = []
        results = list(results)
        if self._cluster is not None:
            self._cluster.add_media(results)
        for r in results:
            # the loss measure counts packets sent since the last decrease: those sent before it
            # (into the queue that overflowed at a capacity drop) were what that decrease answered
            counted = r.send_time >= self._last_decrease
            if r.received:
                if r.late:
                    if counted:
                        self._interval_lost = max(0, self._interval_lost - 1)
                    continue
                if counted:
                    self._interval_sent += 1
                if r.arrival is None:
                    continue
                self._acked.append((now, r.size))
                self._arrivals.append((r.arrival, r.size))
                if not r.retransmitted and not self._probe_quiet <= r.send_time < self._probe_quiet_end:
                    # (a packet sent in or just after a probe cluster queued behind it: its delay is the
                    # probe's own queue, not congestion; the cluster's verdict speaks for it)
                    delays.append(r.arrival - r.send_time)
                    if r.send_time >= self._newest[0]:
                        self._newest = (r.send_time, r.arrival - r.send_time)
            elif counted:
                self._interval_sent += 1
                self._interval_lost += 1
        arrivals = self._arrivals
        if arrivals:  # keep the last second of arrivals (bounded whatever the feedback)
            latest = arrivals[-1][0]
            while arrivals and (latest - arrivals[0][0] > 1.0 or len(arrivals) > MAX_ARRIVALS):
                arrivals.popleft()
        if delays:
            low = min(delays)
            self._note_base(low, now)
            self._lows.append((now, low))
            while now - self._lows[0][0] > QUEUE_WINDOW:
                self._lows.popleft()
            self.queue_delay = max(0.0, min(v for _, v in self._lows) - min(b for _, b in self._base))
        self._measure_rate(now)
        if self._interval_start is None:
            self._interval_start = now
        if now - self._interval_start >= LOSS_INTERVAL and self._interval_sent:
            self.loss = self._interval_lost / self._interval_sent
            self._loss_at = now
            self._interval_start, self._interval_sent, self._interval_lost = now, 0, 0
        self.queue_now = None
        if backlog is not None and self._newest[0] != -math.inf:
            self.queue_now = self.drain_time(backlog(self._newest[0]), now)
        # a report that speaks only of media queued behind a probe cluster brings no delay sample:
        # the last queue measure is stale then, and is not acted on again (the cluster's verdict speaks)
        fresh = bool(delays) or not self._probe_quiet_active(now)
        self._update(now, self.queue_delay if fresh else None, self.loss)
        return self.target

    def _probe_quiet_active(self, now: float) -> bool:
        return self._cluster is not None or now < self._probe_quiet_end + self.rtt + 0.1

    def _note_base(self, delay: float, now: float) -> None:
        if self._base and now - self._base[-1][0] < _BUCKET:
            start, low = self._base[-1]
            self._base[-1] = (start, min(low, delay))
        else:
            self._base.append((now, delay))
        while self._base and now - self._base[0][0] > BASE_WINDOW:
            self._base.popleft()

    def _measure_rate(self, now: float) -> None:
        # bytes acknowledged per second of feedback (our clock: a peer's timestamps cannot stretch it)
        while self._acked and now - self._acked[0][0] > RATE_WINDOW:
            self._acked.popleft()
        if self._first_feedback is None:
            self._first_feedback = now
        if now - self._first_feedback >= RATE_WINDOW:
            self.received_rate = sum(b for _, b in self._acked) * 8 / RATE_WINDOW
            peaks = self._peaks
            if peaks and now - peaks[-1][0] < _BUCKET:
                peaks[-1] = (peaks[-1][0], max(peaks[-1][1], self.received_rate))
            else:
                peaks.append((now, self.received_rate))
            while peaks and now - peaks[0][0] > PROBE_MEMORY:
                peaks.popleft()

    def _recent_rate(self, now: float) -> float | None:
        """Bit/s that arrived at the receiver over the last RECENT_WINDOW of its own arrival times.

        Arrival times, not our feedback times: under a deep queue the feedback that comes now
        is about packets that left before a capacity drop. None before there is that much.
        """
        arrivals = self._arrivals
        if not arrivals:
            return None
        latest = max(a for a, _ in arrivals)
        if latest - min(a for a, _ in arrivals) < RECENT_WINDOW:
            return None
        return sum(b for a, b in arrivals if latest - a <= RECENT_WINDOW) * 8 / RECENT_WINDOW

    @property
    def newest_reported(self) -> float:
        """Send time of the newest packet the receiver reported received (-inf before any)."""
        return self._newest[0]

    @property
    def newest_queue(self) -> float | None:
        """Queueing delay (s) of the newest packet the receiver reported: the freshest, unfiltered measure."""
        sent, delay = self._newest
        if sent == -math.inf or not self._base:
            return None
        return max(0.0, delay - min(b for _, b in self._base))

    def drain_time(self, bits_after: float, now: float) -> float | None:
        """Seconds until the modem queue is empty if nothing more is sent; None before any measure.

        ``bits_after``: what left after the newest packet the receiver reported and no report
        spoke of yet (:meth:`SendLog.bits_sent_after`). The newest packet found the queue at its own
        queueing delay; what followed it adds its time on the line (at the rate the receiver gets
        now), and the line has drained since it left. Feedback lags by the queue itself: this is
        what the sender knows *now*, where ``queue_delay`` is what it knew a queue ago. An
        overestimate while a drop-tail queue overflows (the packets it lost are counted until a
        report says so): the caller bounds what it does with it.
        """
        sent, delay = self._newest
        if sent == -math.inf or not self._base:
            return None
        rate = self._recent_rate(now) or self.received_rate or float(self._target)
        queue = max(0.0, delay - min(b for _, b in self._base)) + bits_after / max(rate, 1.0) - (now - sent)
        return max(0.0, queue)

    def _update(self, now: float, queue: float | None, loss: float) -> None:
        dt = 0.0 if self._last_update is None else min(1.0, max(0.0, now - self._last_update))
        self._last_update = now
        rising = False
        if queue is not None:
            self._trend.append((now, queue))
            while now - self._trend[0][0] > RISE_WINDOW:
                self._trend.popleft()
            # a queue above queue_low that grew by RISE over the last RISE_WINDOW is caught before it
            # reaches queue_high (the slope, as GCC's trendline, on the jitter-free queue measure)
            # (not before the first rate measurement: the call's first keyframe is a queue of its own)
            rising = queue > self.queue_low and queue - min(q for _, q in self._trend) >= RISE \
                and self.received_rate is not None
        # a loss measure counts once: a decrease it caused is not repeated until the next measure
        lossy = loss > LOSS_HIGH and self._loss_at > self._last_decrease
        # a deep queue that is draining (it fell by RISE over the last RISE_WINDOW) holds: the last
        # decrease is acting, and the rate it leaves is the rate the queue drains through
        deep = queue is not None and queue > self.queue_high \
            and not queue <= max(q for _, q in self._trend) - RISE
        # the start overshoots at 30 %/s: seen in the queue as it stands now, not a queue later
        early = self.state == "start" and self.queue_now is not None and self.queue_now > START_QUEUE \
            and self.received_rate is not None
        # a capacity drop under a full rate: the queue as it stands now is past SURGE (a probe's
        # overshoot builds tens of ms) while the filtered measure, a queue late, still reads the
        # line before the drop; acted on once, the next decrease waits for the filtered measure
        surge = self.queue_now is not None and self.queue_now > SURGE and self.received_rate is not None \
            and now - self._last_decrease > DRAIN
        deep = deep or surge
        overuse = deep or rising or lossy or early
        if overuse or queue is None or queue <= self.queue_low:
            self._flat.clear()
        if overuse:
            if now - self._last_decrease < max(0.3, self.rtt + 0.1):
                return  # the last decrease has not had time to act
            rate = self.received_rate if self.received_rate else self._target
            if deep:
                # a deep queue: the line is saturated and what it delivered over the last
                # RECENT_WINDOW is its capacity now (the 1 s average still holds the rate before a drop)
                recent = self._recent_rate(now)
                if recent is not None:
                    rate = min(rate, recent)
            if lossy and not deep:
                new = self._target * (1 - 0.5 * loss)
            elif deep:
                # and below it by the share that drains the queue within DRAIN seconds (as SCReAM
                # and NADA scale their decrease with the queueing delay): 0.85 x the capacity leaves
                # a 300 ms modem queue standing for 2 s, each packet in it late, each NACK answer later.
                # Once it drained, the target is back at 0.85 x that capacity (BBR's drain, then cruise)
                depth = max(queue or 0.0, self.queue_now or 0.0) if surge else (queue or 0.0)
                new = rate * max(DRAIN_FLOOR, BETA - (depth - self.queue_low) / DRAIN)
                restore = BETA * rate
                self._restore = restore if self._restore is None else min(self._restore, restore)
            else:
                new = BETA * rate
                if self._restore is not None:
                    self._restore = min(self._restore, new)
            self._congested_at = rate
            self._grew = False
            self._probe_again = False
            self._congestions.append((now, self.received_rate or rate))
            while now - self._congestions[0][0] > GREW_MEMORY:
                self._congestions.popleft()
            self._last_decrease = now
            self.decreases += 1
            self._target = min(self._target, new)
            self.state = "decrease"
        elif queue is not None and queue > self.queue_low:
            self.state = "hold"
            self._note_flat(now, queue)
        elif self._probe_quiet_active(now):
            # a probe cluster and the media behind it are not measured yet (their delays are left out):
            # no increase (nor restore) on a queue measure that cannot see them
            self.state = "hold"
        elif self._restore is not None and self.queue_now is not None and self.queue_now > self.queue_low:
            self.state = "hold"  # the deep queue is not gone yet as it stands now (a surge: the filter lags)
        elif self._restore is not None:
            # the deep queue drained: cruise at 0.85 x the capacity measured under it
            self._target = max(self._target, self._restore)
            self._restore = None
            self.state = "increase"
        else:
            self._increase(dt)
        self._clamp()

    def _note_flat(self, now: float, queue: float) -> None:
        """A queue that neither grows nor drains through REBASE_AFTER of holding is the line's new floor.

        Holding keeps the rate steady: a real queue under it drains (the rate is below the
        capacity) or grows (above); one that stays level within RISE for two seconds is the
        one-way delay's floor moving up: a packet takes 37 ms to cross a 256 kbit/s line and
        10 ms at 1 Mbit/s, so after a capacity drop the floor learnt before it reads as a
        standing queue of ~30 ms, and the controller would hold until the floor aged out of
        its minute (LEDBAT's base-delay problem after a route change). The floor is re-learnt from the delays
        seen now; if it was a queue after all, the next probe's trend catches it and the next
        lower delay brings the floor back down.
        """
        flat = self._flat
        flat.append((now, queue))
        while now - flat[0][0] > REBASE_AFTER:
            flat.popleft()
        if now - flat[0][0] < REBASE_AFTER - 0.2 or max(q for _, q in flat) - min(q for _, q in flat) >= RISE:
            return
        floor = min(v for _, v in self._lows)
        self._base = deque([(now, floor)])
        self._trend.clear()
        flat.clear()
        self.queue_delay = 0.0
        self.rebases += 1

    def _increase(self, dt: float) -> None:
        if self._congested_at is not None and self.received_rate is not None and self._congestions \
                and self.received_rate > GREW * max(r for _, r in self._congestions):
            # the receiver got well past the last congestion rate without a queue: the line has
            # grown (an ADSL line's capacity comes back in steps), probe fast again
            self._congested_at = None
            self._grew = True
        elif self._congested_at is not None and self._last_update is not None \
                and self._last_update - self._last_decrease > FORGET_CONGESTION:
            self._congested_at = None  # quiet for long: the line may have grown (GCC resets its average max)
            self._grew = False
        if self.state == "start" or (self._congested_at is None and self.decreases == 0):
            new = self._target * START_GROWTH ** dt
            self.state = "start"
        elif self._congested_at is None:
            new = self._target * (GREW_GROWTH if self._grew else FAR_GROWTH) ** dt
            self.state = "increase"
        elif 0.75 * self._congested_at <= self._target <= 1.5 * self._congested_at:
            # near the last congestion: additive, one packet per response time up to just under the
            # rate the line carried then, a quarter of that above it, so that the queue an overshoot
            # builds grows slowly enough for the trend rule to catch it at a few tens of ms (on the
            # target, not on what the receiver gets: an encoder short of its target may make all of
            # it at the next scene change; measuring on the received rate was tried and overshot)
            step = PACKET_BITS if self._target < NEAR_MAX * self._congested_at else PACKET_BITS / 4
            new = self._target + step * dt / (self.rtt + 0.1)
            self.state = "increase"
        else:
            new = self._target * FAR_GROWTH ** dt
            self.state = "increase"
        if self._line is not None and self._last_update is not None \
                and self._last_update - self._line[0] < GREW_MEMORY:
            new = min(new, max(self._target, NEAR_MAX * self._line[1]))  # a cluster measured the line
        if self.received_rate is not None:
            if self.received_rate < APP_LIMITED * self._target:
                self.state = "hold"  # the encoder does not use what it has: more would be untested
                return
            new = min(new, max(self._target, GROWTH_CAP * self.received_rate + 20_000))
        self._target = max(self._target, new)

    # ------------------------------------------------------------ probe clusters

    def probe_rate(self, now: float) -> int | None:
        """The rate (bit/s) of a probe cluster to send now, or None; see the module docs.

        Only with per-packet feedback, no decrease in the last second, no queue standing (nor
        a deep one's restore owed), and the target under PROBE_BELOW of the highest rate the
        receiver got in the last minute for PROBE_AFTER_DROP (a large drop), every
        PROBE_INTERVAL; or at once after a cluster that found the line grew. One at a time.
        """
        if self._cluster is not None:
            if not self._cluster.expired(now):
                return None
            self._judge(now)  # its reports did not all come: judge it on what did
        high = max((r for _, r in self._peaks), default=0.0)
        if self._target >= PROBE_BELOW * high:
            self._low_since = None
        elif self._low_since is None:
            self._low_since = now
        if self.received_rate is None or now - self._last_feedback > FALLBACK_AFTER \
                or now - self._last_decrease < 1.0 or self._restore is not None:
            return None
        if self.queue_delay is None or self.queue_delay > self.queue_low \
                or (self.queue_now is not None and self.queue_now > self.queue_low):
            return None
        if not self._probe_again and (self._low_since is None or now - self._low_since < PROBE_AFTER_DROP
                                      or now - self._last_probe < PROBE_INTERVAL):
            return None
        top = self.max_bitrate if self.limit is None else min(self.max_bitrate, self.limit)
        # twice what the line carries now (not the target: a small picture leaves part of it unused,
        # and the probe's cost is its excess over the line), or twice what the last cluster found
        base = self._probe_found if self._probe_again else self.received_rate
        rate = min(PROBE_GAIN * base, float(top))
        if rate < 1.2 * self._target:
            return None  # at the ceiling: nothing to find
        return int(rate)

    def probe_sent(self, rate: float, count: int, now: float) -> None:
        """The sender queued a cluster at ``rate`` with ``count`` padding packets (its results follow)."""
        self._cluster = ProbeCluster(rate, count, now, chained=self._probe_again)
        self._last_probe = now
        if now >= self._probe_quiet_end:  # (a chained cluster extends the window of the one before it)
            self._probe_quiet = now
        self._probe_quiet_end = now + PROBE_DURATION + PROBE_QUIET
        self._probe_again = False
        self.probes += 1

    def take_probe_debt(self) -> float:
        """Seconds of queue the last cluster left on a line that did not carry it (once; 0 when none).

        The sender sends nothing new for that long (the queue drains at the line's rate),
        as the controller cannot: a rate that fills the line keeps a queue standing.
        """
        debt, self._probe_debt = self._probe_debt, 0.0
        return max(0.0, debt)

    def on_probe_feedback(self, results: Iterable[PacketResult], now: float) -> None:
        """Results about the probe SSRC's padding packets (from its own :class:`SendLog`)."""
        cluster = self._cluster
        if cluster is not None and cluster.add_padding(results):
            self._judge(now)

    def _judge(self, now: float) -> None:
        """A cluster is back: did the line carry its rate?"""
        cluster, self._cluster = self._cluster, None
        verdict = cluster.verdict() if cluster is not None else None
        if cluster is None or verdict is None:
            return
        got = self.probe_result = verdict.got
        if not verdict.through:
            # the line spread the cluster out: it does not carry the probe rate, and the cluster left
            # a queue of about the time the line took beyond the time it was sent in: the sender pays
            # it back (take_probe_debt), or it would stand under a rate that fills the line
            self._probe_debt = min(PROBE_MAX_DEBT, verdict.debt)
            # and the delays of what is sent from now on are samples again: a queue the cluster left
            # on a nearly full line drains only if the rate comes down, as for any other queue
            self._probe_quiet_end = min(self._probe_quiet_end, now)
            if cluster.chained and got > self._probe_found:
                # the cluster before this one went through, so this one, at twice that rate, queued
                # well past a modem's burst allowance: the rate it arrived at is the line's; the
                # increase stops just under it for a while (at 25 %/s it overshot into a keyframe)
                self._raise_to(BETA * got, got)
                self._line = (now, got)
            return
        found = min(verdict.sent, got, cluster.rate * 1.2)
        if self._raise_to(BETA * found, found):
            self.probes_through += 1
            # past the congestion rates of late the line grew: the next cluster, at twice this rate,
            # goes at once (under them the line only had room for this much, and twice would overshoot)
            self._probe_again = self._grew

    def _raise_to(self, new: float, found: float) -> bool:
        """A cluster showed the line carries ``found`` bit/s: the target goes up to ``new`` (never down)."""
        if new <= self._target:
            return False
        self._probe_found = found
        self._target = new
        if found > GREW * max((r for _, r in self._congestions), default=0.0):
            # past every congestion rate of the last GREW_MEMORY s: the line grew (the ladder climbs
            # fast, the increase is at GREW_GROWTH); under them it only carries more than we sent
            self._congested_at = None
            self._grew = True
        self.state = "increase"
        self._clamp()
        return True

    # ------------------------------------------------------------ receiver reports (other peers)

    def on_receiver_report(self, fraction_lost: float, rtt: float | None, now: float) -> int:
        """A report block about our stream (RFC 3550): RTT always; the loss drives the rate without RFC 8888."""
        if rtt is not None and 0 <= rtt < 10:
            self.rtt = rtt
        if now - self._last_feedback < FALLBACK_AFTER:
            return self.target  # per-packet feedback is richer
        dt = 0.0 if self._last_update is None else min(2.0, max(0.0, now - self._last_update))
        self._last_update = now
        self.loss = max(0.0, min(1.0, fraction_lost))
        if self.loss > LOSS_HIGH:
            if now - self._last_decrease >= max(0.3, self.rtt + 0.1):
                self._target *= 1 - 0.5 * self.loss
                self._last_decrease = now
                self.decreases += 1
                self.state = "decrease"
        elif self.loss < LOSS_LOW:
            self._target *= RR_GROWTH ** dt
            self.state = "increase"
        else:
            self.state = "hold"
        self._clamp()
        return self.target
