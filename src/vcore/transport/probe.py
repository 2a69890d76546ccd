"""Probe clusters: did the line carry a burst sent at a given rate? (libwebrtc's ProbeBitrateEstimator.)

A cluster is a short stretch of packets paced at exactly one rate (the
:class:`~vcore.transport.Pacer`'s probe mode): the media queued then, and
padding-only RTP packets on a probe SSRC of their own. :class:`ProbeCluster`
collects what the receiver's RFC 8888 reports say of them and gives a
:class:`ProbeVerdict`: the rate the cluster left at (send times), the rate it
arrived at (receiver arrival times), and whether the line carried it (arrived at
``PROBE_THROUGH`` of the rate sent or more). A line slower than the cluster
spreads it out: it then arrived at the line's rate, and left a queue of about the
time the line took beyond the time it was sent in (``debt``).

When and at what rate to probe, and what a verdict does to the target, is the
congestion controller's policy (:mod:`vcore.transport.congestion`). Pure: no
I/O and no clock; not thread-safe (it belongs to the event loop).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .feedback import PacketResult

__all__ = ["ProbeCluster", "ProbeVerdict", "PROBE_DURATION", "PROBE_MIN_PACKETS", "PROBE_THROUGH"]

PROBE_DURATION = 0.15  # s of the probe rate one cluster lasts (past a modem's or a token bucket's burst)
PROBE_MIN_PACKETS = 6
PROBE_THROUGH = 0.9  # arrived at this share of the rate sent or more: the line carries the cluster's rate
PROBE_TIMEOUT = 1.0  # s after which a cluster's missing reports are given up
PROBE_MIN_RESULTS = 5  # received packets a verdict needs


@dataclass(frozen=True)
class ProbeVerdict:
    """What a cluster showed: ``sent`` and ``got`` in bit/s, ``through`` (the line carried it), ``debt`` (s)."""

    sent: float
    got: float
    through: bool
    debt: float  # s of queue the cluster left (0 when it went through)


class ProbeCluster:
    """One cluster in flight: ``rate`` (bit/s), ``count`` padding packets, queued at ``started``.

    ``chained``: sent at once after a cluster that went through (its verdict then
    measures the line itself).
    """

    def __init__(self, rate: float, count: int, started: float, *, chained: bool = False) -> None:
        if rate <= 0 or count <= 0:
            raise ValueError("a probe cluster needs a positive rate and packet count")
        self.rate = float(rate)
        self.count = int(count)
        self.started = started
        self.chained = chained
        self.reported = 0  # padding packets the reports spoke of (received or lost)
        self._padding: list[PacketResult] = []
        self._media: list[PacketResult] = []

    def expired(self, now: float) -> bool:
        """Its reports did not all come within PROBE_TIMEOUT: judge it on what did."""
        return now - self.started > PROBE_TIMEOUT

    def add_padding(self, results: Iterable[PacketResult]) -> bool:
        """Results about the probe SSRC's packets; True once all ``count`` were reported."""
        for r in results:
            if r.send_time < self.started:
                continue  # an earlier cluster's, late
            self.reported += 1
            if r.received and r.arrival is not None:
                self._padding.append(r)
        return self.reported >= self.count

    def add_media(self, results: Iterable[PacketResult]) -> None:
        """Media results (first transmissions): those sent in the cluster's time went at its rate too."""
        self._media.extend(r for r in results if r.received and r.arrival is not None and not r.retransmitted
                           and r.send_time >= self.started)

    def verdict(self) -> ProbeVerdict | None:
        """The cluster's rates from what came back; None with too little to tell."""
        if not self._padding:
            return None
        first = min(p.send_time for p in self._padding)
        last = max(p.send_time for p in self._padding)
        packets = self._padding + [m for m in self._media if first <= m.send_time <= last]
        if len(packets) < PROBE_MIN_RESULTS:
            return None
        by_send = sorted(packets, key=lambda p: p.send_time)
        by_arrival = sorted(packets, key=lambda p: p.arrival or 0.0)
        send_span = by_send[-1].send_time - by_send[0].send_time
        arrival_span = (by_arrival[-1].arrival or 0.0) - (by_arrival[0].arrival or 0.0)
        if send_span <= 0.0 or arrival_span <= 0.0:
            return None
        # a rate over n packets counts the bytes of n - 1 (the first's left before the span began)
        sent = sum(p.size for p in by_send[:-1]) * 8 / send_span
        got = sum(p.size for p in by_arrival[1:]) * 8 / arrival_span
        through = got >= PROBE_THROUGH * sent
        return ProbeVerdict(sent, got, through, 0.0 if through else max(0.0, arrival_span - send_span))
