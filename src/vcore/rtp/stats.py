"""Receiver statistics per RFC 3550 Appendix A.

:class:`ReceiverStats` follows one source: extended highest sequence number
and probation (A.1), cumulative and fraction lost (A.3), interarrival jitter
(A.8). It builds report blocks and computes round-trip time from the blocks a
peer sends back (LSR/DLSR, §6.4.1). Time is always an argument (seconds on any
monotonic clock), never read from a clock. Not thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rtcp import ReportBlock, RtcpSenderReport

__all__ = ["ReceiverStats", "SenderStats", "ntp_from_unix", "ntp_middle32", "rtt_from_report"]

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01 (RFC 5905)
MIN_SEQUENTIAL = 2  # RFC 3550 A.1 probation
MAX_DROPOUT = 3000  # RFC 3550 A.1
MAX_MISORDER = 100  # RFC 3550 A.1


def ntp_from_unix(unix_time: float) -> int:
    """64-bit NTP timestamp of a Unix time in seconds."""
    seconds = int(unix_time) + NTP_EPOCH_OFFSET
    fraction = int((unix_time - int(unix_time)) * (1 << 32)) & 0xFFFFFFFF
    return ((seconds & 0xFFFFFFFF) << 32) | fraction


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp (the LSR field, RFC 3550 §6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


def rtt_from_report(block: ReportBlock, arrival_ntp: int) -> float | None:
    """Round-trip time in seconds from a report block about our stream (RFC 3550 §6.4.1).

    ``arrival_ntp`` is the 64-bit NTP time at which the report arrived. None when
    the block carries no LSR (the peer has not yet received a sender report).
    """
    if block.lsr == 0:
        return None
    a = ntp_middle32(arrival_ntp)
    rtt = (a - block.lsr - block.dlsr) & 0xFFFFFFFF
    if rtt & 0x80000000:  # negative: clocks or values inconsistent
        return 0.0
    return rtt / 65536.0


@dataclass
class SenderStats:
    """Counters a sender puts in its SR (RFC 3550 §6.4.1)."""

    packet_count: int = 0
    octet_count: int = 0

    def on_send(self, payload_size: int) -> None:
        self.packet_count = (self.packet_count + 1) & 0xFFFFFFFF
        self.octet_count = (self.octet_count + payload_size) & 0xFFFFFFFF


class ReceiverStats:
    """Reception statistics of one RTP source (RFC 3550 A.1, A.3, A.8)."""

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.received = 0
        self.duplicates_or_old = 0
        self._base_seq = -1
        self._max_seq = 0
        self._cycles = 0
        self._bad_seq = -1
        self._probation = MIN_SEQUENTIAL
        self._expected_prior = 0
        self._received_prior = 0
        self._jitter = 0.0  # in timestamp units, A.8
        self._transit: float | None = None
        self._last_sr_middle = 0
        self._last_sr_arrival: float | None = None

    # -- A.1 -----------------------------------------------------------------
    def _init_seq(self, seq: int) -> None:
        self._base_seq = seq
        self._max_seq = seq
        self._bad_seq = -1
        self._cycles = 0
        self._received_prior = 0
        self._expected_prior = 0
        self.received = 0

    def update(self, seq: int, timestamp: int, arrival: float) -> bool:
        """Account one packet. Returns False when RFC 3550 A.1 says to drop it (probation, big jump)."""
        if self._base_seq < 0:
            self._init_seq(seq)
            self._max_seq = (seq - 1) & 0xFFFF
            self._probation = MIN_SEQUENTIAL
        if self._probation:
            if seq == (self._max_seq + 1) & 0xFFFF:
                self._probation -= 1
                self._max_seq = seq
                if self._probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    self._jitter_update(timestamp, arrival)
                    return True
            else:
                self._probation = MIN_SEQUENTIAL - 1
                self._max_seq = seq
            return False
        delta = (seq - self._max_seq) & 0xFFFF
        if delta < MAX_DROPOUT:
            if seq < self._max_seq:
                self._cycles += 1 << 16
            self._max_seq = seq
        elif delta <= 0x10000 - MAX_MISORDER:
            if seq == self._bad_seq:  # two sequential packets: the source restarted
                self._init_seq(seq)
            else:
                self._bad_seq = (seq + 1) & 0xFFFF
                return False
        else:
            self.duplicates_or_old += 1  # duplicate or reordered packet
        self.received += 1
        self._jitter_update(timestamp, arrival)
        return True

    def _jitter_update(self, timestamp: int, arrival: float) -> None:
        # A.8: transit in timestamp units; J += (|D| - J) / 16
        transit = arrival * self.clock_rate - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d > (1 << 31):  # timestamp wrap
                d = abs(d - (1 << 32))
            self._jitter += (d - self._jitter) / 16.0
        self._transit = transit

    @property
    def extended_highest(self) -> int:
        """Extended highest sequence number received (cycles << 16 | max_seq)."""
        return self._cycles + self._max_seq

    @property
    def expected(self) -> int:
        if self._base_seq < 0:
            return 0
        return self.extended_highest - self._base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative number of packets lost (can be negative with duplicates, A.3)."""
        return self.expected - self.received

    @property
    def jitter(self) -> float:
        """Interarrival jitter in seconds."""
        return self._jitter / self.clock_rate

    def on_sender_report(self, sr: RtcpSenderReport, arrival: float) -> None:
        """Remember an SR from this source for the LSR/DLSR fields."""
        self._last_sr_middle = ntp_middle32(sr.ntp_timestamp)
        self._last_sr_arrival = arrival

    def report_block(self, now: float) -> ReportBlock:
        """A report block for this source; resets the fraction-lost interval (A.3)."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        self._expected_prior = expected
        received_interval = self.received - self._received_prior
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        if self._last_sr_arrival is None:
            lsr = dlsr = 0
        else:
            lsr = self._last_sr_middle
            dlsr = int((now - self._last_sr_arrival) * 65536) & 0xFFFFFFFF
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=self.lost,
            highest_sequence=self.extended_highest & 0xFFFFFFFF,
            jitter=int(self._jitter),
            lsr=lsr,
            dlsr=dlsr,
        )


