"""RTCP packets (RFC 3550 §6, RFC 4585 §6, RFC 5104 §4, RFC 5506).

Parse and serialize compound RTCP: SR, RR (with report blocks), SDES, BYE, APP,
generic NACK, TMMBR/TMMBN, PLI, FIR and RFC 8888 congestion control feedback. Packet types vcore does not model are
kept as :class:`RtcpUnknown` and serialize back unchanged. Reduced-size RTCP
(RFC 5506: a compound that does not start with SR/RR, or a lone feedback
message) is accepted on receive. Every malformed input raises
:class:`~vcore.errors.ParseError`.

These classes are plain data: no clocks, no I/O. RTCP runs at a few packets per
second, so this layer is pure Python.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Union

from ..errors import ParseError

__all__ = [
    "RTCP_SR",
    "RTCP_RR",
    "RTCP_SDES",
    "RTCP_BYE",
    "RTCP_APP",
    "RTCP_RTPFB",
    "RTCP_PSFB",
    "SDES_CNAME",
    "ReportBlock",
    "RtcpSenderReport",
    "RtcpReceiverReport",
    "RtcpSdes",
    "RtcpBye",
    "RtcpApp",
    "RtcpNack",
    "RtcpTmmbr",
    "RtcpTmmbn",
    "RtcpPli",
    "RtcpFir",
    "RtcpCcfb",
    "CcfbBlock",
    "RTPFB_CCFB",
    "CCFB_ATO_UNITS",
    "RtcpUnknown",
    "RtcpPacket",
    "parse_rtcp",
    "serialize_rtcp",
    "is_rtcp",
    "nack_fci_from_seqs",
    "seqs_from_nack_fci",
]

RTCP_SR = 200  # RFC 3550 §6.4.1
RTCP_RR = 201  # RFC 3550 §6.4.2
RTCP_SDES = 202  # RFC 3550 §6.5
RTCP_BYE = 203  # RFC 3550 §6.6
RTCP_APP = 204  # RFC 3550 §6.7
RTCP_RTPFB = 205  # RFC 4585 §6.1 transport-layer feedback
RTCP_PSFB = 206  # RFC 4585 §6.1 payload-specific feedback

RTPFB_NACK = 1  # RFC 4585 §6.2.1 generic NACK
RTPFB_TMMBR = 3  # RFC 5104 §4.2.1
RTPFB_TMMBN = 4  # RFC 5104 §4.2.2
RTPFB_CCFB = 11  # RFC 8888 §3.1 congestion control feedback
CCFB_ATO_UNITS = 1024  # RFC 8888 §3.1: arrival time offsets in 1/1024 s
CCFB_ATO_OVER_RANGE = 0x1FFE  # an offset of 0x1FFE units or more
CCFB_ATO_UNAVAILABLE = 0x1FFF
CCFB_MAX_REPORTS = 16384  # RFC 8888 §3.1: num_reports is at most 16384
PSFB_PLI = 1  # RFC 4585 §6.3.1
PSFB_FIR = 4  # RFC 5104 §4.3.1

SDES_END = 0
SDES_CNAME = 1  # RFC 3550 §6.5.1

_HEADER = struct.Struct("!BBH")
_REPORT_BLOCK = struct.Struct("!IB3sIIII")


def is_rtcp(data: bytes) -> bool:
    """True when ``data`` looks like RTCP rather than RTP on a multiplexed port (RFC 5761 §4)."""
    return len(data) >= 2 and data[0] >> 6 == 2 and 192 <= data[1] <= 223


@dataclass
class ReportBlock:
    """A reception report block (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int  # 8-bit fixed point, lost / expected * 256
    packets_lost: int  # cumulative, signed 24 bits
    highest_sequence: int  # extended highest sequence number received
    jitter: int  # interarrival jitter in timestamp units
    lsr: int  # middle 32 bits of the last SR's NTP timestamp
    dlsr: int  # delay since last SR, units of 1/65536 s

    def serialize(self) -> bytes:
        lost = self.packets_lost
        if not -0x800000 <= lost <= 0x7FFFFF:
            lost = 0x7FFFFF if lost > 0 else -0x800000  # clamp (RFC 3550 §6.4.1)
        return _REPORT_BLOCK.pack(
            self.ssrc,
            self.fraction_lost & 0xFF,
            (lost & 0xFFFFFF).to_bytes(3, "big"),
            self.highest_sequence & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.lsr & 0xFFFFFFFF,
            self.dlsr & 0xFFFFFFFF,
        )

    @classmethod
    def parse(cls, data: bytes, pos: int) -> ReportBlock:
        ssrc, fraction, lost_raw, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, pos)
        lost = int.from_bytes(lost_raw, "big")
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, fraction, lost, highest, jitter, lsr, dlsr)


@dataclass
class RtcpSenderReport:
    """SR (RFC 3550 §6.4.1): sender info and reception reports."""

    ssrc: int
    ntp_timestamp: int  # 64-bit NTP format
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)
    extension: bytes = b""  # profile-specific extension

    def _body(self) -> tuple[int, int, bytes]:
        body = struct.pack(
            "!IQIII",
            self.ssrc,
            self.ntp_timestamp,
            self.rtp_timestamp & 0xFFFFFFFF,
            self.packet_count & 0xFFFFFFFF,
            self.octet_count & 0xFFFFFFFF,
        )
        body += b"".join(r.serialize() for r in self.reports) + self.extension
        return RTCP_SR, len(self.reports), body


@dataclass
class RtcpReceiverReport:
    """RR (RFC 3550 §6.4.2)."""

    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)
    extension: bytes = b""

    def _body(self) -> tuple[int, int, bytes]:
        body = struct.pack("!I", self.ssrc) + b"".join(r.serialize() for r in self.reports) + self.extension
        return RTCP_RR, len(self.reports), body


@dataclass
class RtcpSdes:
    """SDES (RFC 3550 §6.5): ``chunks`` maps SSRC -> list of ``(item type, value)``."""

    chunks: list[tuple[int, list[tuple[int, bytes]]]] = field(default_factory=list)

    @classmethod
    def cname(cls, ssrc: int, cname: str) -> RtcpSdes:
        return cls([(ssrc, [(SDES_CNAME, cname.encode())])])

    def _body(self) -> tuple[int, int, bytes]:
        out = bytearray()
        for ssrc, items in self.chunks:
            chunk = bytearray(struct.pack("!I", ssrc))
            for item_type, value in items:
                if len(value) > 255:
                    raise ParseError("SDES item longer than 255 bytes")
                chunk += bytes((item_type, len(value))) + value
            chunk.append(SDES_END)
            chunk += b"\x00" * (-len(chunk) % 4)
            out += chunk
        return RTCP_SDES, len(self.chunks), bytes(out)


@dataclass
class RtcpBye:
    """BYE (RFC 3550 §6.6)."""

    sources: list[int] = field(default_factory=list)
    reason: bytes = b""

    def _body(self) -> tuple[int, int, bytes]:
        body = b"".join(struct.pack("!I", s) for s in self.sources)
        if self.reason:
            reason = bytes((len(self.reason),)) + self.reason
            reason += b"\x00" * (-len(reason) % 4)
            body += reason
        return RTCP_BYE, len(self.sources), body


@dataclass
class RtcpApp:
    """APP (RFC 3550 §6.7)."""

    subtype: int
    ssrc: int
    name: bytes
    data: bytes = b""

    def _body(self) -> tuple[int, int, bytes]:
        if len(self.name) != 4:
            raise ValueError("APP name must be 4 bytes")
        if len(self.data) % 4:
            raise ValueError("APP data must be a multiple of 4 bytes")
        return RTCP_APP, self.subtype, struct.pack("!I", self.ssrc) + self.name + self.data


@dataclass
class RtcpNack:
    """Generic NACK (RFC 4585 §6.2.1): ``lost`` lists the missing sequence numbers."""

    sender_ssrc: int
    media_ssrc: int
    lost: list[int] = field(default_factory=list)

    def _body(self) -> tuple[int, int, bytes]:
        fci = b"".join(struct.pack("!HH", pid, blp) for pid, blp in nack_fci_from_seqs(self.lost))
        return RTCP_RTPFB, RTPFB_NACK, struct.pack("!II", self.sender_ssrc, self.media_ssrc) + fci


@dataclass
class RtcpTmmbr:
    """Temporary Maximum Media Stream Bit Rate Request (RFC 5104 §4.2.1).

    ``entries``: ``(ssrc, bitrate in bit/s, measured overhead in bytes)``.
    """

    sender_ssrc: int
    entries: list[tuple[int, int, int]] = field(default_factory=list)

    _fmt = RTPFB_TMMBR

    def _body(self) -> tuple[int, int, bytes]:
        fci = b"".join(_tmmb_entry(*e) for e in self.entries)
        return RTCP_RTPFB, self._fmt, struct.pack("!II", self.sender_ssrc, 0) + fci


@dataclass
class RtcpTmmbn(RtcpTmmbr):
    """Temporary Maximum Media Stream Bit Rate Notification (RFC 5104 §4.2.2)."""

    _fmt = RTPFB_TMMBN


@dataclass
class RtcpPli:
    """Picture Loss Indication (RFC 4585 §6.3.1)."""

    sender_ssrc: int
    media_ssrc: int

    def _body(self) -> tuple[int, int, bytes]:
        return RTCP_PSFB, PSFB_PLI, struct.pack("!II", self.sender_ssrc, self.media_ssrc)


@dataclass
class RtcpFir:
    """Full Intra Request (RFC 5104 §4.3.1): ``entries`` of ``(ssrc, command sequence number)``."""

    sender_ssrc: int
    entries: list[tuple[int, int]] = field(default_factory=list)

    def _body(self) -> tuple[int, int, bytes]:
        fci = b"".join(struct.pack("!IB3x", ssrc, seq & 0xFF) for ssrc, seq in self.entries)
        return RTCP_PSFB, PSFB_FIR, struct.pack("!II", self.sender_ssrc, 0) + fci


@dataclass(frozen=True)
class CcfbBlock:
    """One RTP stream's reports in a :class:`RtcpCcfb`: packets ``begin_seq`` .. ``begin_seq + len(reports) - 1``.

    ``reports[i]`` is None for a packet not received, else ``(ecn, ato)``: the
    ECN bits (RFC 3168 codes) and the arrival time offset before the report
    timestamp in 1/1024 s (``CCFB_ATO_OVER_RANGE``: that long or longer,
    ``CCFB_ATO_UNAVAILABLE``: unknown).
    """

    ssrc: int
    begin_seq: int
    reports: tuple[tuple[int, int] | None, ...]


@dataclass
class RtcpCcfb:
    """RTP congestion control feedback (RFC 8888 §3.1): per-packet arrival and arrival time.

    ``report_timestamp``: the middle 32 bits of the receiver's NTP time when the
    report was made (16.16 fixed point seconds); each block's arrival offsets
    count back from it.
    """

    sender_ssrc: int
    blocks: list[CcfbBlock] = field(default_factory=list)
    report_timestamp: int = 0

    def _body(self) -> tuple[int, int, bytes]:
        out = bytearray(struct.pack("!I", self.sender_ssrc))
        for b in self.blocks:
            if not 0 <= len(b.reports) <= CCFB_MAX_REPORTS:
                raise ValueError(f"a CCFB block reports at most {CCFB_MAX_REPORTS} packets")
            out += struct.pack("!IHH", b.ssrc, b.begin_seq & 0xFFFF, len(b.reports))
            for r in b.reports:
                if r is None:
                    out += b"\0\0"
                    continue
                ecn, ato = r
                if not (0 <= ecn <= 3 and 0 <= ato <= 0x1FFF):
                    raise ValueError("CCFB ECN is 2 bits and the arrival time offset 13 bits")
                out += struct.pack("!H", 0x8000 | ecn << 13 | ato)
            if len(b.reports) % 2:
                out += b"\0\0"  # to a 32-bit boundary
        out += struct.pack("!I", self.report_timestamp & 0xFFFFFFFF)
        return RTCP_RTPFB, RTPFB_CCFB, bytes(out)


@dataclass
class RtcpUnknown:
    """An RTCP packet vcore does not model (kept raw: count/FMT field and body)."""

    packet_type: int
    count: int
    body: bytes

    def _body(self) -> tuple[int, int, bytes]:
        return self.packet_type, self.count, self.body


RtcpPacket = Union[
    RtcpSenderReport,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpBye,
    RtcpApp,
    RtcpNack,
    RtcpTmmbr,
    RtcpTmmbn,
    RtcpPli,
    RtcpFir,
    RtcpCcfb,
    RtcpUnknown,
]


def nack_fci_from_seqs(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Compress sequence numbers into NACK ``(PID, BLP)`` pairs (RFC 4585 §6.2.1), in wrap-aware order."""
    ordered: list[int] = []
    for s in seqs:
        s &= 0xFFFF
        if s not in ordered:
            ordered.append(s)
    if not ordered:
        return []
    base = ordered[0]
    ordered.sort(key=lambda s: ((s - base + 0x8000) & 0xFFFF))
    out: list[tuple[int, int]] = []
    pid = ordered[0]
    blp = 0
    for s in ordered[1:]:
        d = (s - pid) & 0xFFFF
        if 1 <= d <= 16:
            blp |= 1 << (d - 1)
        else:
            out.append((pid, blp))
            pid, blp = s, 0
    out.append((pid, blp))
    return out


def seqs_from_nack_fci(fci: Sequence[tuple[int, int]]) -> list[int]:
    """Expand NACK ``(PID, BLP)`` pairs into the sequence numbers they name."""
    out: list[int] = []
    for pid, blp in fci:
        out.append(pid & 0xFFFF)
        for bit in range(16):
            if blp & (1 << bit):
                out.append((pid + bit + 1) & 0xFFFF)
    return out


def _tmmb_entry(ssrc: int, bitrate: int, overhead: int) -> bytes:
    if bitrate < 0 or not 0 <= overhead <= 0x1FF:
        raise ValueError("TMMBR bitrate must be >= 0 and overhead 0-511")
    exp = 0
    mantissa = bitrate
    while mantissa > 0x1FFFF:
        mantissa >>= 1
        exp += 1
    if exp > 63:
        raise ValueError("TMMBR bitrate too large")
    return struct.pack("!II", ssrc, (exp << 26) | (mantissa << 9) | overhead)


def serialize_rtcp(packets: Sequence[RtcpPacket]) -> bytes:
    """A compound RTCP packet (RFC 3550 §6.1) from ``packets`` in the order given."""
    out = bytearray()
    for pkt in packets:
        ptype, count, body = pkt._body()
        if count > 31:
            raise ValueError(f"RTCP packet type {ptype} has {count} items, at most 31 fit")
        if len(body) % 4:
            raise ValueError(f"RTCP packet type {ptype} body is not a multiple of 4 bytes")
        out += _HEADER.pack(0x80 | count, ptype, len(body) // 4) + body
    return bytes(out)


def parse_rtcp(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Every packet of a compound (or reduced-size) RTCP datagram; :class:`ParseError` if malformed."""
    buf = bytes(data)
    n = len(buf)
    if n < 4:
        raise ParseError(f"RTCP packet too short: {n} bytes, the header needs 4")
    out: list[RtcpPacket] = []
    pos = 0
    while pos < n:
        if pos + 4 > n:
            raise ParseError(f"RTCP compound truncated: {n - pos} trailing bytes at offset {pos}")
        b0, ptype, words = _HEADER.unpack_from(buf, pos)
        if b0 >> 6 != 2:
            raise ParseError(f"RTCP version {b0 >> 6} is not 2 at offset {pos}")
        length = 4 + 4 * words
        if pos + length > n:
            raise ParseError(f"RTCP packet type {ptype} truncated: needs {length} bytes at offset {pos}, has {n - pos}")
        body = buf[pos + 4 : pos + length]
        if b0 & 0x20:  # padding (only allowed on the last packet, RFC 3550 §6.4.1)
            if pos + length != n:
                raise ParseError("RTCP padding bit set on a packet that is not the last of the compound")
            if not body or body[-1] == 0 or body[-1] > len(body):
                raise ParseError("RTCP padding count inconsistent with the packet length")
            body = body[: len(body) - body[-1]]
        out.append(_parse_one(ptype, b0 & 0x1F, body))
        pos += length
    return out


def _need(body: bytes, size: int, what: str) -> None:
    if len(body) < size:
        raise ParseError(f"RTCP {what} truncated: needs {size} bytes, has {len(body)}")


def _reports(body: bytes, pos: int, count: int, what: str) -> list[ReportBlock]:
    _need(body, pos + 24 * count, what)
    return [ReportBlock.parse(body, pos + 24 * i) for i in range(count)]


def _parse_one(ptype: int, count: int, body: bytes) -> RtcpPacket:
    if ptype == RTCP_SR:
        _need(body, 24, "SR")
        ssrc, ntp, rtp_ts, packets, octets = struct.unpack_from("!IQIII", body)
        reports = _reports(body, 24, count, "SR")
        return RtcpSenderReport(ssrc, ntp, rtp_ts, packets, octets, reports, body[24 + 24 * count :])
    if ptype == RTCP_RR:
        _need(body, 4, "RR")
        (ssrc,) = struct.unpack_from("!I", body)
        reports = _reports(body, 4, count, "RR")
        return RtcpReceiverReport(ssrc, reports, body[4 + 24 * count :])
    if ptype == RTCP_SDES:
        return _parse_sdes(body, count)
    if ptype == RTCP_BYE:
        _need(body, 4 * count, "BYE")
        sources = list(struct.unpack_from(f"!{count}I", body))
        reason = b""
        if len(body) > 4 * count:
            rlen = body[4 * count]
            _need(body, 4 * count + 1 + rlen, "BYE reason")
            reason = body[4 * count + 1 : 4 * count + 1 + rlen]
        return RtcpBye(sources, reason)
    if ptype == RTCP_APP:
        _need(body, 8, "APP")
        (ssrc,) = struct.unpack_from("!I", body)
        return RtcpApp(count, ssrc, body[4:8], body[8:])
    if ptype == RTCP_RTPFB and count == RTPFB_CCFB:
        return _parse_ccfb(body)
    if ptype in (RTCP_RTPFB, RTCP_PSFB):
        _need(body, 8, "feedback message")
        sender, media = struct.unpack_from("!II", body)
        fci = body[8:]
        if ptype == RTCP_RTPFB and count == RTPFB_NACK:
            if len(fci) % 4:
                raise ParseError("RTCP NACK FCI is not a multiple of 4 bytes")
            pairs = [struct.unpack_from("!HH", fci, i) for i in range(0, len(fci), 4)]
            return RtcpNack(sender, media, seqs_from_nack_fci(pairs))
        if ptype == RTCP_RTPFB and count in (RTPFB_TMMBR, RTPFB_TMMBN):
            if len(fci) % 8:
                raise ParseError("RTCP TMMBR/TMMBN FCI is not a multiple of 8 bytes")
            entries = []
            for i in range(0, len(fci), 8):
                ssrc, word = struct.unpack_from("!II", fci, i)
                entries.append((ssrc, ((word >> 9) & 0x1FFFF) << (word >> 26), word & 0x1FF))
            cls = RtcpTmmbr if count == RTPFB_TMMBR else RtcpTmmbn
            return cls(sender, entries)
        if ptype == RTCP_PSFB and count == PSFB_PLI:
            return RtcpPli(sender, media)
        if ptype == RTCP_PSFB and count == PSFB_FIR:
            if len(fci) % 8:
                raise ParseError("RTCP FIR FCI is not a multiple of 8 bytes")
            fir = [(struct.unpack_from("!I", fci, i)[0], fci[i + 4]) for i in range(0, len(fci), 8)]
            return RtcpFir(sender, fir)
    return RtcpUnknown(ptype, count, body)


def _parse_ccfb(body: bytes) -> RtcpCcfb:
    _need(body, 8, "CCFB")
    if len(body) % 4:
        raise ParseError("RTCP CCFB body is not a multiple of 4 bytes")
    (sender,) = struct.unpack_from("!I", body)
    (report_ts,) = struct.unpack_from("!I", body, len(body) - 4)
    end = len(body) - 4
    pos = 4
    blocks = []
    while pos < end:
        if pos + 8 > end:
            raise ParseError(f"RTCP CCFB report block truncated: needs 8 bytes, has {end - pos}")
        ssrc, begin, n = struct.unpack_from("!IHH", body, pos)
        pos += 8
        if n > CCFB_MAX_REPORTS:
            raise ParseError(f"RTCP CCFB block reports {n} packets, at most {CCFB_MAX_REPORTS} are allowed")
        size = 2 * n + (2 * n) % 4
        if pos + size > end:
            raise ParseError(f"RTCP CCFB metric blocks truncated: needs {size} bytes, has {end - pos}")
        reports: list[tuple[int, int] | None] = []
        for (word,) in struct.iter_unpack("!H", body[pos:pos + 2 * n]):
            reports.append(((word >> 13) & 3, word & 0x1FFF) if word & 0x8000 else None)
        pos += size
        blocks.append(CcfbBlock(ssrc, begin, tuple(reports)))
    return RtcpCcfb(sender, blocks, report_ts)


def _parse_sdes(body: bytes, count: int) -> RtcpSdes:
    chunks: list[tuple[int, list[tuple[int, bytes]]]] = []
    pos = 0
    n = len(body)
    for _ in range(count):
        _need(body, pos + 4, "SDES chunk")
        (ssrc,) = struct.unpack_from("!I", body, pos)
        pos += 4
        items: list[tuple[int, bytes]] = []
        while True:
            if pos >= n:
                raise ParseError("RTCP SDES chunk has no end item")
            item_type = body[pos]
            if item_type == SDES_END:
                pos += 1
                pos += -pos % 4  # chunk padding to a 32-bit boundary
                break
            if pos + 2 > n or pos + 2 + body[pos + 1] > n:
                raise ParseError("RTCP SDES item truncated")
            length = body[pos + 1]
            items.append((item_type, body[pos + 2 : pos + 2 + length]))
            pos += 2 + length
        chunks.append((ssrc, items))
    return RtcpSdes(chunks)
