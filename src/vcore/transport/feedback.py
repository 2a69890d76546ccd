"""Per-packet congestion feedback (RFC 8888) on both ends of one RTP stream.

- :class:`FeedbackRecorder` (receiver): notes the arrival time of each RTP
  packet and makes :class:`~vcore.rtp.rtcp.RtcpCcfb` reports. A packet reported
  missing is reported again in the next reports (for half a second), so a
  packet that was only late (reordered by jitter) is not taken for lost.
- :class:`SendLog` (sender): the send time and size of each packet that left,
  matched against the reports into :class:`PacketResult` lists for the
  congestion controller (:mod:`vcore.transport.congestion`).

Pure data structures: no sockets, no clocks; every time is an argument
(``time.monotonic()`` seconds on this host; the receiver's times travel as the
report timestamp, the middle 32 bits of its NTP clock). Thread-safety: a
:class:`FeedbackRecorder` belongs to the event loop; a :class:`SendLog` is
written by the pacer thread and read on the event loop, under its own lock.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from ..rtp.rtcp import CCFB_ATO_OVER_RANGE, CCFB_ATO_UNAVAILABLE, CCFB_ATO_UNITS, CcfbBlock, RtcpCcfb
from ..rtp.seq import seq_diff

__all__ = ["FeedbackRecorder", "SendLog", "PacketResult", "FEEDBACK_INTERVAL"]

FEEDBACK_INTERVAL = 0.1  # s between reports: RFC 8888 §3.1 suggests one per frame to one per 200 ms
_REREPORT = 0.5  # s a missing packet is reported again (a late packet is then counted as received)
_MAX_BLOCK = 500  # packets per report at most: ~1 KB of RTCP, under the MTU (a 1 s outage at 1 Mbit/s is ~110)


class FeedbackRecorder:
    """The receiver's side of RFC 8888 for one RTP stream (one SSRC at a time)."""

    def __init__(self) -> None:
        self.ssrc: int | None = None
        self._highest: int | None = None  # extended sequence number
        self._arrivals: dict[int, tuple[float, int]] = {}  # extended seq -> (arrival, ECN)
        self._next = 0  # first extended seq not yet reported
        self._missing: deque[tuple[int, float]] = deque()  # (extended seq, first reported missing at)
        self.reports = 0

    def on_packet(self, ssrc: int, seq: int, arrival: float, ecn: int = 0) -> None:
        """An RTP packet (already authenticated) arrived at ``arrival``."""
        if ssrc != self.ssrc:  # a new stream (or the sender restarted): start over
            self.__init__()  # type: ignore[misc]
            self.ssrc = ssrc
        if self._highest is None:
            ext = seq & 0xFFFF
            self._highest = ext
            self._next = ext
        else:
            ext = self._highest + seq_diff(seq & 0xFFFF, self._highest & 0xFFFF)
            self._highest = max(self._highest, ext)
        self._arrivals.setdefault(ext, (arrival, ecn & 3))

    def report(self, sender_ssrc: int, now: float, report_timestamp: int) -> RtcpCcfb | None:
        """The report to send now (None when there is nothing new); ``report_timestamp`` stands for ``now``."""
        if self.ssrc is None or self._highest is None:
            return None
        while self._missing and now - self._missing[0][1] > _REREPORT:
            self._missing.popleft()
        # from the oldest packet reported missing (it may have arrived since: say so once) or the first new one
        begin = min((ext for ext, _ in self._missing), default=self._next)
        begin = min(begin, self._next)
        end = self._highest + 1
        if end <= begin:
            return None
        begin = max(begin, end - _MAX_BLOCK)
        reports: list[tuple[int, int] | None] = []
        known = {ext for ext, _ in self._missing}
        for ext in range(begin, end):
            got = self._arrivals.get(ext)
            if got is None:
                reports.append(None)
                if ext >= self._next and ext not in known:
                    self._missing.append((ext, now))
                continue
            arrival, ecn = got
            ato = round((now - arrival) * CCFB_ATO_UNITS)
            reports.append((ecn, CCFB_ATO_UNAVAILABLE if ato < 0 else min(ato, CCFB_ATO_OVER_RANGE)))
        self._next = end
        self._missing = deque((ext, at) for ext, at in self._missing if ext not in self._arrivals)
        # forget arrivals no report can name again
        oldest = min([begin, *(ext for ext, _ in self._missing)])
        for ext in [e for e in self._arrivals if e < oldest]:
            del self._arrivals[ext]
        self.reports += 1
        return RtcpCcfb(sender_ssrc, [CcfbBlock(self.ssrc, begin & 0xFFFF, tuple(reports))], report_timestamp)


@dataclass
class PacketResult:
    """What became of one sent packet: when it left, its size, whether it arrived, and when (receiver clock, s).

    ``arrival`` is None for a lost packet, and for a received one whose arrival
    time the receiver could not give.
    """

    sequence_number: int
    send_time: float
    size: int
    received: bool
    arrival: float | None
    retransmitted: bool = False
    late: bool = False  # received after an earlier report called it missing (reordered, or resent)


@dataclass
class _Sent:
    seq: int
    send_time: float
    size: int
    retransmitted: bool = False
    acked: bool = False
    missing: bool = False


class SendLog:
    """The sender's record of what left on one stream, for matching RFC 8888 reports (thread-safe).

    ``capacity`` packets are kept (a ring by sequence number). A packet sent
    again (a NACK answer) is marked and its delay ignored: which copy arrived
    is unknown.
    """

    def __init__(self, capacity: int = 4096, max_age: float = 8.0) -> None:
        self.capacity = capacity
        self.max_age = max_age
        self._ring: list[_Sent | None] = [None] * capacity
        self._lock = threading.Lock()
        self._newest_seq: int | None = None  # the latest first transmission
        self._epoch: int | None = None  # the first report timestamp (receiver clock), for unwrapping
        self._last_ts = 0  # the newest report timestamp, and its value (16.16 units since the first)
        self._last_value = 0

    def on_sent(self, seq: int, now: float, size: int) -> None:
        """A packet left now (``size``: its bytes on the wire above IP/UDP)."""
        seq &= 0xFFFF
        with self._lock:
            slot = self._ring[seq % self.capacity]
            if slot is not None and slot.seq == seq and now - slot.send_time < self.max_age:
                slot.retransmitted = True
                slot.send_time = now
                return
            self._ring[seq % self.capacity] = _Sent(seq, now, size)
            self._newest_seq = seq

    def bits_sent_after(self, t: float, now: float) -> int:
        """Bits sent after ``t`` (``time.monotonic()``) that no report has spoken of yet: in flight (or lost).

        Walks back from the newest packet to the first sent at or before ``t``: the packets in
        flight, not the whole ring (it is called on every report, under the pacer's lock).
        A retransmission counts only while the walk reaches it (its packet was first sent
        after ``t``, or just before): the answers to older NACKs are left out, a small underestimate.
        """
        bits = 0
        with self._lock:
            newest = self._newest_seq
            if newest is None:
                return 0
            for back in range(self.capacity):
                seq = (newest - back) & 0xFFFF
                s = self._ring[seq % self.capacity]
                if s is None or s.seq != seq or now - s.send_time > self.max_age:
                    break
                if s.send_time <= t and not s.retransmitted:
                    break
                if s.send_time > t and not s.acked and not s.missing:
                    bits += 8 * s.size
        return bits

    def _receiver_seconds(self, report_timestamp: int) -> float:
        """The receiver's clock in seconds since its first report (16.16 NTP, unwrapped by signed difference)."""
        ts = report_timestamp & 0xFFFFFFFF
        if self._epoch is None:
            self._epoch = ts
            self._last_ts = ts
            self._last_value = 0
            return 0.0
        diff = (ts - self._last_ts) & 0xFFFFFFFF
        if diff >= 0x80000000:
            diff -= 1 << 32  # an older report (reordered): measured from the newest, never a new wrap
        value = self._last_value + diff
        if diff > 0:
            self._last_ts, self._last_value = ts, value
        return value / 65536.0

    def results(self, report: RtcpCcfb, ssrc: int, now: float) -> list[PacketResult]:
        """The packets a report speaks of (ours only, each received one once), oldest send first."""
        out: list[PacketResult] = []
        with self._lock:
            base = self._receiver_seconds(report.report_timestamp)
            for block in report.blocks:
                if block.ssrc != ssrc:
                    continue
                for i, r in enumerate(block.reports):
                    seq = (block.begin_seq + i) & 0xFFFF
                    sent = self._ring[seq % self.capacity]
                    if sent is None or sent.seq != seq or now - sent.send_time > self.max_age or sent.acked:
                        continue
                    if r is None:
                        if not sent.missing:  # said once: the next reports repeat it until it arrives
                            sent.missing = True
                            out.append(PacketResult(seq, sent.send_time, sent.size, False, None, sent.retransmitted))
                        continue
                    _, ato = r
                    arrival = None if ato >= CCFB_ATO_OVER_RANGE else base - ato / CCFB_ATO_UNITS
                    sent.acked = True
                    out.append(PacketResult(seq, sent.send_time, sent.size, True, arrival, sent.retransmitted,
                                            sent.missing))
        out.sort(key=lambda p: p.send_time)
        return out
