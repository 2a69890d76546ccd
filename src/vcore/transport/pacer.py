"""Pacing: spread each frame's packets over time instead of bursting them into the modem.

A 720p keyframe is 60–100 KB; written to a 512 kbit/s ADSL uplink at once it
is a second of queue for everything behind it, audio included. The
:class:`Pacer` lets packets go at ``factor`` × the congestion controller's
target (2.5 × as in libwebrtc's pacer), with bursts of at most 10 ms of that rate
(what a thread woken late by the GIL or the scheduler may catch up);
retransmissions go first but are capped to a share of the target
(``rtx_share``), so a lossy line cannot turn into a retransmission storm.
When the queue would take longer than ``max_queue_time`` to drain, the pace
rises to drain it in that time (the encoder is then too far above the line:
the controller brings it down).

A probe cluster (:meth:`Pacer.push_probe`, for the congestion controller's
:meth:`~vcore.transport.CongestionController.probe_rate`) paces strictly, one
packet at a time, at the probe rate until its padding is gone: what is queued
goes first, the padding fills the rest. No burst allowance: the receiver
measures the cluster's rate from how its packets arrive. Padding packets come
out of :meth:`Pacer.pop` with ``PROBE_FLAG`` added to their sequence number
(:class:`PacedSender` logs them in the probe SSRC's own send log).

:class:`Pacer` is a pure data structure (time as an argument, not
thread-safe); :class:`PacedSender` is the thread that runs it in front of an
:class:`~vcore.transport.RtpTransport` and records each packet's real send time
in a :class:`~vcore.transport.feedback.SendLog`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from .feedback import SendLog

__all__ = ["Pacer", "PacedSender", "PACING_FACTOR", "PROBE_FLAG"]

_log = logging.getLogger(__name__)

PACING_FACTOR = 2.5
BURST = 0.010  # s of the pace rate that may leave back to back (a thread woken late catches up this much)
MAX_QUEUE_TIME = 1.0  # s
RTX_SHARE = 0.25  # of the target, over RTX_WINDOW
RTX_WINDOW = 1.0  # s
WIRE_OVERHEAD = 28  # IPv4 + UDP header bytes per datagram
PROBE_FLAG = 1 << 16  # added to a padding packet's sequence number in pop()'s output


class Pacer:
    """A leaky bucket over a queue of ``(datagram, sequence number)``; see the module docs."""

    def __init__(self, target: float, *, factor: float = PACING_FACTOR, max_queue_time: float = MAX_QUEUE_TIME,
                 rtx_share: float = RTX_SHARE) -> None:
        if target <= 0 or factor < 1 or max_queue_time <= 0 or not 0 <= rtx_share <= 1:
            raise ValueError("pacer needs target > 0, factor >= 1, max_queue_time > 0 and 0 <= rtx_share <= 1")
        self.target = float(target)
        self.factor = factor
        self.max_queue_time = max_queue_time
        self.rtx_share = rtx_share
        self._queue: deque[tuple[bytes, int]] = deque()
        self._since: deque[float] = deque()  # when each queued packet was queued
        self._queued_bytes = 0
        self._budget = 0.0  # bytes that may leave now
        self._last: float | None = None
        self._rtx: deque[tuple[float, int]] = deque()
        self._rtx_bytes = 0
        self.rtx_refused = 0
        self.sent = 0
        self._probe: deque[tuple[bytes, int]] = deque()  # a cluster's padding packets
        self._probe_rate = 0.0
        self._probe_next = 0.0  # when the cluster's next packet may leave
        self.probe_packets = 0  # padding packets sent

    @property
    def rate(self) -> float:
        """The pace now (bit/s): ``factor`` × target, or faster, so that no packet waits over ``max_queue_time``."""
        base = self.factor * self.target
        if not self._since or self._last is None:
            return base
        left = self.max_queue_time - (self._last - self._since[0])
        return max(base, self._queued_bytes * 8 / max(0.05, left))

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def __len__(self) -> int:
        return len(self._queue) + len(self._probe)

    @property
    def probing(self) -> bool:
        """A probe cluster's padding is still queued."""
        return bool(self._probe)

    def push_probe(self, padding: Sequence[tuple[bytes, int]], rate: float, now: float) -> None:
        """Start a probe cluster: pace at ``rate`` (bit/s), one packet at a time, until ``padding`` is sent.

        The queued media goes first, at the probe rate; the padding fills the rest.
        A cluster already running is replaced.
        """
        if rate <= 0:
            raise ValueError("a probe cluster needs a positive rate")
        self._refill(now)
        self._probe = deque(padding)
        self._probe_rate = float(rate)
        self._probe_next = now

    def push(self, packets: Sequence[tuple[bytes, int]], now: float) -> None:
        """Queue a frame's packets (behind what is queued)."""
        self._refill(now)
        for p in packets:
            self._queue.append(p)
            self._since.append(now)
            self._queued_bytes += len(p[0]) + WIRE_OVERHEAD

    def push_retransmission(self, packet: tuple[bytes, int], now: float) -> bool:
        """Queue a retransmission in front, unless the retransmission budget is spent (False)."""
        self._refill(now)
        while self._rtx and now - self._rtx[0][0] > RTX_WINDOW:
            self._rtx_bytes -= self._rtx.popleft()[1]
        size = len(packet[0]) + WIRE_OVERHEAD
        if (self._rtx_bytes + size) * 8 > self.rtx_share * self.target * RTX_WINDOW:
            self.rtx_refused += 1
            return False
        self._rtx.append((now, size))
        self._rtx_bytes += size
        self._queue.appendleft(packet)
        self._since.appendleft(self._since[0] if self._since else now)  # the queue's age stays the oldest's
        self._queued_bytes += size
        return True

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            burst = max(4 * 1300.0, self.rate / 8 * BURST)
            self._budget = min(burst, self._budget + self.rate / 8 * (now - self._last))
        if self._last is None or now > self._last:
            self._last = now

    def pop(self, now: float) -> list[tuple[bytes, int]]:
        """The packets that may leave now, in order."""
        self._refill(now)
        if self._probe:
            return self._pop_probe(now)
        out = []
        while self._queue and self._budget > 0:
            p = self._queue.popleft()
            self._since.popleft()
            size = len(p[0]) + WIRE_OVERHEAD
            self._queued_bytes -= size
            self._budget -= size
            out.append(p)
        self.sent += len(out)
        return out

    def _pop_probe(self, now: float) -> list[tuple[bytes, int]]:
        out: list[tuple[bytes, int]] = []
        while self._probe and now >= self._probe_next:
            if self._queue:
                p = self._queue.popleft()
                self._since.popleft()
                size = len(p[0]) + WIRE_OVERHEAD
                self._queued_bytes -= size
                self.sent += 1
                out.append(p)
            else:
                d, seq = self._probe.popleft()
                size = len(d) + WIRE_OVERHEAD
                self.probe_packets += 1
                out.append((d, (seq & 0xFFFF) | PROBE_FLAG))
            # strictly paced from the schedule, not from now: a late wake-up does not stretch the cluster
            self._probe_next = max(self._probe_next, now - 0.002) + size * 8 / self._probe_rate
        if not self._probe:
            self._budget = 0.0  # back to the leaky bucket from here
        return out

    def next_time(self, now: float) -> float | None:
        """When the next packet may leave (None: the queue is empty)."""
        if self._probe:
            return max(now, self._probe_next)
        if not self._queue:
            return None
        if self._budget > 0:
            return now
        # the budget refills from the last refill on: when it is back above zero
        last = self._last if self._last is not None else now
        return max(now, last + (1 - self._budget) * 8 / self.rate)


class PacedSender:
    """The thread that empties a :class:`Pacer` onto ``send`` (thread-safe front end).

    ``send(datagrams) -> bool`` is the transport's ``send_rtp_threadsafe``;
    ``log`` gets each packet's send time (for per-packet feedback).
    ``on_exit(error)`` is called when the thread ends (``error``: None, or why).
    """

    def __init__(self, pacer: Pacer, send: Callable[[Sequence[bytes]], bool], *, log: SendLog | None = None,
                 on_exit: Callable[[BaseException | None], None] | None = None, name: str = "vcore-pacer",
                 probe_log: SendLog | None = None) -> None:
        self.pacer = pacer
        self._send = send
        self.log = log
        self.probe_log = probe_log
        self._on_exit = on_exit
        self._cond = threading.Condition()
        self._closed = False
        self._finishing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def finish(self) -> None:
        """End the thread once the queue is empty (the source ended)."""
        with self._cond:
            self._finishing = True
            self._cond.notify()

    def set_target(self, target: float) -> None:
        with self._cond:
            self.pacer.target = float(target)
            self._cond.notify()

    def push(self, packets: Sequence[tuple[bytes, int]]) -> bool:
        """Queue a frame's packets; False once closed."""
        with self._cond:
            if self._closed:
                return False
            self.pacer.push(packets, time.monotonic())
            self._cond.notify()
        return True

    def push_probe(self, padding: Sequence[tuple[bytes, int]], rate: float) -> bool:
        """Start a probe cluster (:meth:`Pacer.push_probe`); False once closed or while one runs."""
        with self._cond:
            if self._closed or self.pacer.probing:
                return False
            self.pacer.push_probe(padding, rate, time.monotonic())
            self._cond.notify()
        return True

    def push_retransmission(self, packet: tuple[bytes, int]) -> bool:
        with self._cond:
            if self._closed:
                return False
            ok = self.pacer.push_retransmission(packet, time.monotonic())
            if ok:
                self._cond.notify()
        return ok

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            while True:
                with self._cond:
                    while True:
                        if self._closed or (self._finishing and not len(self.pacer)):
                            return
                        now = time.monotonic()
                        due = self.pacer.next_time(now)
                        if due is not None and due <= now:
                            batch = self.pacer.pop(now)
                            if batch:
                                break
                            due = self.pacer.next_time(now)
                        self._cond.wait(None if due is None else max(0.0005, due - now))
                if not self._send([d for d, _ in batch]):
                    with self._cond:
                        self._closed = True  # the transport is gone: push() says so from now on
                    return
                log, probe_log = self.log, self.probe_log
                t = time.monotonic()
                for d, seq in batch:
                    if seq & PROBE_FLAG:
                        if probe_log is not None:
                            probe_log.on_sent(seq, t, len(d) + WIRE_OVERHEAD)
                    elif log is not None:
                        log.on_sent(seq, t, len(d) + WIRE_OVERHEAD)
        except BaseException as exc:  # reported to the owner, never lost
            error = exc
            _log.exception("pacer failed")
        finally:
            if self._on_exit is not None:
                self._on_exit(error)
