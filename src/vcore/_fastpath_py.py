"""Pure-Python twin of ``vcore._fastpath``.

Same public names, results, exceptions and exception messages as the compiled
kernels in ``_fastpath.pyx``; selected by ``vcore._speedups`` when the extension
is missing or ``VCORE_NO_EXTENSIONS=1``. Kernels here do byte and packet work
only: no I/O, no clocks, no asyncio.

Contents:

* sequence/timestamp arithmetic (RFC 3550 §5.1 wrap-around),
* :class:`RtpPacket` (RFC 3550 §5.1, header extensions RFC 8285),
* Annex B splitting and the H.264 RTP payload format (RFC 6184): packetize,
  :class:`H264Depacketizer`, :class:`AccessUnit`,
* G.711 µ-law / A-law tables and codecs (ITU-T G.711), bit-exact with FFmpeg.

Thread-safety: functions are re-entrant; objects are not safe to share between
threads without a lock.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from .errors import ParseError

__all__ = [
    "SEQ_MOD",
    "TS_MOD",
    "seq_diff",
    "seq_gt",
    "ts_diff",
    "extend_seq",
    "RtpPacket",
    "parse_header_extensions",
    "build_header_extensions",
    "split_annexb",
    "h264_packetize",
    "AccessUnit",
    "H264Depacketizer",
    "g711_encode",
    "g711_decode",
]

SEQ_MOD = 1 << 16  # RFC 3550 §5.1: 16-bit sequence number
TS_MOD = 1 << 32  # RFC 3550 §5.1: 32-bit timestamp

RTP_VERSION = 2  # RFC 3550 §5.1
RTP_HEADER_SIZE = 12  # RFC 3550 §5.1 fixed header
RTP_MAX_CSRC = 15  # RFC 3550 §5.1: 4-bit CC
EXT_PROFILE_ONE_BYTE = 0xBEDE  # RFC 8285 §4.2
EXT_PROFILE_TWO_BYTE = 0x1000  # RFC 8285 §4.3 (0x100 followed by 4 appbits)

NAL_TYPE_SLICE = 1  # H.264 Table 7-1: coded slice of a non-IDR picture
NAL_TYPE_IDR = 5  # H.264 Table 7-1: coded slice of an IDR picture
NAL_TYPE_SEI = 6
NAL_TYPE_SPS = 7
NAL_TYPE_PPS = 8
NAL_TYPE_AUD = 9
NAL_TYPE_STAP_A = 24  # RFC 6184 §5.7.1
NAL_TYPE_STAP_B = 25  # RFC 6184 §5.7.1
NAL_TYPE_MTAP16 = 26  # RFC 6184 §5.7.2
NAL_TYPE_MTAP24 = 27  # RFC 6184 §5.7.2
NAL_TYPE_FU_A = 28  # RFC 6184 §5.8
NAL_TYPE_FU_B = 29  # RFC 6184 §5.8

MIN_MTU = 64
START_CODE = b"\x00\x00\x00\x01"


# --------------------------------------------------------------------------
# Sequence and timestamp arithmetic (RFC 3550 §5.1, Appendix A.1)
# --------------------------------------------------------------------------


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two 16-bit sequence numbers, in [-32768, 32767]."""
    d = (a - b) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


def seq_gt(a: int, b: int) -> bool:
    """True when sequence number ``a`` comes after ``b`` (modulo 2^16)."""
    return seq_diff(a, b) > 0


def ts_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two 32-bit RTP timestamps."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d


def extend_seq(seq: int, highest_ext: int) -> int:
    """Extend a 16-bit ``seq`` to the extended number closest to ``highest_ext``.

    ``highest_ext`` is the highest extended sequence number seen so far
    (``cycles << 16 | seq``, RFC 3550 A.1).
    """
    ext = (highest_ext & ~0xFFFF) | seq
    d = ext - highest_ext
    if d > 0x8000:
        ext -= 0x10000
    elif d < -0x8000:
        ext += 0x10000
    return ext


# --------------------------------------------------------------------------
# RTP packets (RFC 3550 §5.1) and header extensions (RFC 8285)
# --------------------------------------------------------------------------


def parse_header_extensions(profile: int, data: bytes) -> list[tuple[int, bytes]]:
    """Elements of an RFC 8285 header extension block as ``(id, value)`` pairs.

    ``profile`` is the 16-bit "defined by profile" field: 0xBEDE (one-byte form) or
    0x1000-0x100F (two-byte form). Any other profile raises :class:`ParseError`.
    """
    out: list[tuple[int, bytes]] = []
    n = len(data)
    pos = 0
    if profile == EXT_PROFILE_ONE_BYTE:
        while pos < n:
            b = data[pos]
            ext_id = b >> 4
            if ext_id == 0:  # padding byte (RFC 8285 §4.2)
                pos += 1
                continue
            if ext_id == 15:  # reserved: stop processing (RFC 8285 §4.2)
                break
            length = (b & 0x0F) + 1
            if pos + 1 + length > n:
                raise ParseError(
                    f"RTP header extension element {ext_id} truncated: needs {length} bytes, has {n - pos - 1}"
                )
            out.append((ext_id, bytes(data[pos + 1 : pos + 1 + length])))
            pos += 1 + length
        return out
    if (profile & 0xFFF0) == EXT_PROFILE_TWO_BYTE:
        while pos < n:
            ext_id = data[pos]
            if ext_id == 0:  # padding byte (RFC 8285 §4.3)
                pos += 1
                continue
            if pos + 2 > n:
                raise ParseError(f"RTP header extension element {ext_id} truncated: no length byte")
            length = data[pos + 1]
            if pos + 2 + length > n:
                raise ParseError(
                    f"RTP header extension element {ext_id} truncated: needs {length} bytes, has {n - pos - 2}"
                )
            out.append((ext_id, bytes(data[pos + 2 : pos + 2 + length])))
            pos += 2 + length
        return out
    raise ParseError(f"RTP header extension profile 0x{profile:04x} is not RFC 8285")


def build_header_extensions(elements: Sequence[tuple[int, bytes]]) -> tuple[int, bytes]:
    """Encode ``(id, value)`` pairs as an RFC 8285 block: ``(profile, data)``.

    The one-byte form is used when every id is 1-14 and every value 1-16 bytes,
    otherwise the two-byte form (ids 1-255, values 0-255 bytes). ``data`` is
    zero-padded to a multiple of 4 bytes.
    """
    one_byte = all(1 <= i <= 14 and 1 <= len(v) <= 16 for i, v in elements)
    buf = bytearray()
    if one_byte:
        for ext_id, value in elements:
            buf.append((ext_id << 4) | (len(value) - 1))
            buf += value
        profile = EXT_PROFILE_ONE_BYTE
    else:
        for ext_id, value in elements:
            if not 1 <= ext_id <= 255:
                raise ValueError(f"RTP header extension id {ext_id} out of range 1-255")
            if len(value) > 255:
                raise ValueError(f"RTP header extension element {ext_id} longer than 255 bytes")
            buf.append(ext_id)
            buf.append(len(value))
            buf += value
        profile = EXT_PROFILE_TWO_BYTE
    buf += b"\x00" * ((4 - len(buf) % 4) % 4)
    return profile, bytes(buf)


class RtpPacket:
    """One RTP packet (RFC 3550 §5.1).

    ``parse`` then ``serialize`` reproduces the input bytes exactly when the
    padding bytes were zero. Padding is removed from ``payload`` and kept as
    ``padding_size``. The header extension is kept raw (``extension_profile``,
    ``extension_data``); ``extensions`` gives and takes RFC 8285 elements.
    Field ranges are checked by ``serialize``.

    Not thread-safe: an instance must not be mutated from two threads.
    """

    __slots__ = (
        "marker",
        "payload_type",
        "sequence_number",
        "timestamp",
        "ssrc",
        "csrc",
        "extension",
        "extension_profile",
        "extension_data",
        "padding_size",
        "payload",
    )

    def __init__(
        self,
        payload_type: int = 0,
        sequence_number: int = 0,
        timestamp: int = 0,
        ssrc: int = 0,
        payload: bytes = b"",
        marker: bool = False,
        csrc: Sequence[int] = (),
        extension_profile: int | None = None,
        extension_data: bytes = b"",
        padding_size: int = 0,
    ) -> None:
        self.payload_type = payload_type
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = bytes(payload)
        self.marker = bool(marker)
        self.csrc = tuple(csrc)
        self.extension = extension_profile is not None
        self.extension_profile = 0 if extension_profile is None else extension_profile
        self.extension_data = bytes(extension_data)
        self.padding_size = padding_size

    @property
    def version(self) -> int:
        """Always 2 (RFC 3550)."""
        return RTP_VERSION

    @property
    def padding(self) -> bool:
        """True when the packet carries padding (the P bit)."""
        return self.padding_size > 0

    @property
    def extensions(self) -> list[tuple[int, bytes]]:
        """RFC 8285 header extension elements as ``(id, value)`` pairs (empty when none)."""
        if not self.extension:
            return []
        return parse_header_extensions(self.extension_profile, self.extension_data)

    @extensions.setter
    def extensions(self, elements: Sequence[tuple[int, bytes]]) -> None:
        if not elements:
            self.extension = False
            self.extension_profile = 0
            self.extension_data = b""
            return
        self.extension_profile, self.extension_data = build_header_extensions(elements)
        self.extension = True

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Parse one RTP packet; raises :class:`ParseError` on truncated or inconsistent input."""
        buf = bytes(data)
        n = len(buf)
        if n < RTP_HEADER_SIZE:
            raise ParseError(f"RTP packet too short: {n} bytes, the fixed header needs 12")
        b0 = buf[0]
        version = b0 >> 6
        if version != RTP_VERSION:
            raise ParseError(f"RTP version {version} is not 2")
        cc = b0 & 0x0F
        pos = RTP_HEADER_SIZE + 4 * cc
        if pos > n:
            raise ParseError(f"RTP packet truncated: {cc} CSRC need {pos} header bytes, packet has {n}")
        pkt = cls.__new__(cls)
        b1 = buf[1]
        pkt.marker = bool(b1 & 0x80)
        pkt.payload_type = b1 & 0x7F
        pkt.sequence_number, pkt.timestamp, pkt.ssrc = struct.unpack_from("!HII", buf, 2)
        pkt.csrc = struct.unpack_from(f"!{cc}I", buf, RTP_HEADER_SIZE) if cc else ()
        if b0 & 0x10:
            if pos + 4 > n:
                raise ParseError(f"RTP header extension truncated: header needs {pos + 4} bytes, packet has {n}")
            profile, words = struct.unpack_from("!HH", buf, pos)
            end = pos + 4 + 4 * words
            if end > n:
                raise ParseError(
                    f"RTP header extension truncated: {words} words need {end} bytes, packet has {n}"
                )
            pkt.extension = True
            pkt.extension_profile = profile
            pkt.extension_data = buf[pos + 4 : end]
            if profile == EXT_PROFILE_ONE_BYTE or (profile & 0xFFF0) == EXT_PROFILE_TWO_BYTE:
                parse_header_extensions(profile, pkt.extension_data)  # validate now
            pos = end
        else:
            pkt.extension = False
            pkt.extension_profile = 0
            pkt.extension_data = b""
        end = n
        if b0 & 0x20:
            pad = buf[n - 1]
            if pad == 0:
                raise ParseError("RTP padding count is zero")
            if pad > n - pos:
                raise ParseError(f"RTP padding count {pad} exceeds the {n - pos} bytes after the header")
            end = n - pad
            pkt.padding_size = pad
        else:
            pkt.padding_size = 0
        pkt.payload = buf[pos:end]
        return pkt

    def serialize(self) -> bytes:
        """The packet as bytes; raises ``ValueError`` when a field is out of range."""
        _check_range("payload_type", self.payload_type, 0x7F)
        _check_range("sequence_number", self.sequence_number, 0xFFFF)
        _check_range("timestamp", self.timestamp, 0xFFFFFFFF)
        _check_range("ssrc", self.ssrc, 0xFFFFFFFF)
        _check_range("padding_size", self.padding_size, 0xFF)
        cc = len(self.csrc)
        if cc > RTP_MAX_CSRC:
            raise ValueError(f"RTP packet has {cc} CSRC, at most 15 fit")
        for c in self.csrc:
            _check_range("csrc", c, 0xFFFFFFFF)
        b0 = 0x80 | cc
        if self.padding_size:
            b0 |= 0x20
        if self.extension:
            b0 |= 0x10
        parts = [
            struct.pack(
                "!BBHII",
                b0,
                (0x80 if self.marker else 0) | self.payload_type,
                self.sequence_number,
                self.timestamp,
                self.ssrc,
            )
        ]
        if cc:
            parts.append(struct.pack(f"!{cc}I", *self.csrc))
        if self.extension:
            _check_range("extension_profile", self.extension_profile, 0xFFFF)
            ext = self.extension_data
            if len(ext) % 4:
                raise ValueError(f"RTP header extension data is {len(ext)} bytes, not a multiple of 4")
            if len(ext) > 4 * 0xFFFF:
                raise ValueError("RTP header extension data longer than 262140 bytes")
            parts.append(struct.pack("!HH", self.extension_profile, len(ext) // 4))
            parts.append(ext)
        parts.append(self.payload)
        if self.padding_size:
            parts.append(b"\x00" * (self.padding_size - 1) + bytes((self.padding_size,)))
        return b"".join(parts)

    def __repr__(self) -> str:
        return (
            f"RtpPacket(seq={self.sequence_number}, ts={self.timestamp}, pt={self.payload_type}, "
            f"ssrc=0x{self.ssrc:08x}, marker={self.marker}, payload={len(self.payload)} bytes)"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RtpPacket):
            return NotImplemented
        return _packet_key(self) == _packet_key(other)

    __hash__ = None  # type: ignore[assignment]


def _packet_key(p: RtpPacket) -> tuple[object, ...]:
    return (
        p.marker,
        p.payload_type,
        p.sequence_number,
        p.timestamp,
        p.ssrc,
        tuple(p.csrc),
        p.extension,
        p.extension_profile,
        bytes(p.extension_data),
        p.padding_size,
        bytes(p.payload),
    )


def _check_range(name: str, value: int, maximum: int) -> None:
    if not 0 <= value <= maximum:
        raise ValueError(f"RTP {name} {value} out of range 0-{maximum}")


# --------------------------------------------------------------------------
# H.264 Annex B and RTP payload format (RFC 6184)
# --------------------------------------------------------------------------


def split_annexb(data: bytes | bytearray | memoryview) -> list[bytes]:
    """NAL units of an H.264 Annex B byte stream, without start codes.

    Accepts 3- and 4-byte start codes; trailing zero bytes after a NAL unit are
    dropped; bytes before the first start code are ignored. Empty input gives an
    empty list; non-empty input without any start code raises :class:`ParseError`.
    """
    buf = bytes(data)
    n = len(buf)
    if n == 0:
        return []
    start = buf.find(b"\x00\x00\x01")
    if start < 0:
        raise ParseError("H.264 Annex B data has no start code")
    nals: list[bytes] = []
    pos = start + 3
    while True:
        nxt = buf.find(b"\x00\x00\x01", pos)
        end = n if nxt < 0 else nxt
        stop = end
        while stop > pos and buf[stop - 1] == 0:
            stop -= 1
        if stop > pos:
            nals.append(buf[pos:stop])
        if nxt < 0:
            return nals
        pos = nxt + 3


def _order_nals(nals: list[bytes]) -> list[bytes]:
    """Parameter sets once each, placed before the first slice; other NAL order kept."""
    params: list[bytes] = []
    seen: set[bytes] = set()
    body: list[bytes] = []
    first_vcl = -1
    for nal in nals:
        t = nal[0] & 0x1F
        if t == NAL_TYPE_SPS or t == NAL_TYPE_PPS:
            if nal not in seen:
                seen.add(nal)
                params.append(nal)
            continue
        if first_vcl < 0 and 1 <= t <= 5:
            first_vcl = len(body)
        body.append(nal)
    if not params:
        return body
    if first_vcl < 0:
        return body + params
    return body[:first_vcl] + params + body[first_vcl:]


def h264_packetize(
    access_unit: bytes,
    timestamp: int,
    payload_type: int,
    ssrc: int,
    sequence_number: int,
    mtu: int,
    mode: int,
) -> list[RtpPacket]:
    """Packetize one Annex B access unit into RTP packets (RFC 6184).

    ``mtu`` bounds the whole RTP packet (12-byte header included). Mode 1 uses
    single NAL unit packets, STAP-A for runs of small NAL units and FU-A for
    large ones (fragments of near-equal size); mode 0 sends every NAL unit whole
    in its own packet, even when larger than ``mtu``. Sequence numbers start at
    ``sequence_number``; the marker bit is set on the last packet.
    """
    if mode not in (0, 1):
        raise ValueError(f"H.264 packetization mode {mode} is not 0 or 1")
    if not MIN_MTU <= mtu <= 65535:
        raise ValueError(f"mtu {mtu} out of range {MIN_MTU}-65535")
    nals = _order_nals(split_annexb(access_unit))
    limit = mtu - RTP_HEADER_SIZE
    payloads: list[bytes] = []
    if mode == 0:
        payloads = nals
    else:
        i = 0
        count = len(nals)
        while i < count:
            nal = nals[i]
            size = len(nal)
            if size > limit:
                _fragment(nal, limit, payloads)
                i += 1
                continue
            # try to aggregate nal[i], nal[i+1], ... into one STAP-A (RFC 6184 §5.7.1)
            total = 1 + 2 + size
            j = i + 1
            nri = nal[0] & 0x60
            fbit = nal[0] & 0x80
            while j < count and total + 2 + len(nals[j]) <= limit:
                total += 2 + len(nals[j])
                nri = max(nri, nals[j][0] & 0x60)
                fbit |= nals[j][0] & 0x80
                j += 1
            if j - i == 1:
                payloads.append(nal)
            else:
                parts = [bytes((fbit | nri | NAL_TYPE_STAP_A,))]
                for k in range(i, j):
                    parts.append(struct.pack("!H", len(nals[k])))
                    parts.append(nals[k])
                payloads.append(b"".join(parts))
            i = j
    seq = sequence_number & 0xFFFF
    last = len(payloads) - 1
    packets = []
    for idx, payload in enumerate(payloads):
        pkt = RtpPacket(payload_type, seq, timestamp, ssrc, payload, idx == last)
        packets.append(pkt)
        seq = (seq + 1) & 0xFFFF
    return packets


def _fragment(nal: bytes, limit: int, out: list[bytes]) -> None:
    """FU-A fragments (RFC 6184 §5.8) of near-equal size, each at most ``limit`` bytes."""
    header = nal[0]
    indicator = (header & 0xE0) | NAL_TYPE_FU_A
    nal_type = header & 0x1F
    size = len(nal) - 1
    room = limit - 2
    count = (size + room - 1) // room
    base, extra = divmod(size, count)
    pos = 1
    for k in range(count):
        chunk = base + (1 if k < extra else 0)
        fu_header = nal_type
        if k == 0:
            fu_header |= 0x80
        if k == count - 1:
            fu_header |= 0x40
        out.append(bytes((indicator, fu_header)) + nal[pos : pos + chunk])
        pos += chunk


class AccessUnit:
    """One H.264 access unit (a coded picture) in Annex B form.

    ``data``: NAL units each behind a 4-byte start code; ``timestamp``: RTP
    timestamp (90 kHz); ``keyframe``: it holds an IDR slice and SPS/PPS are known
    (in it or earlier in the stream); ``complete``: every packet arrived and every
    fragment was whole. An incomplete unit carries only the NAL units that
    arrived intact.
    """

    __slots__ = ("data", "timestamp", "keyframe", "complete")

    def __init__(self, data: bytes, timestamp: int, keyframe: bool = False, complete: bool = True) -> None:
        self.data = bytes(data)
        self.timestamp = timestamp
        self.keyframe = bool(keyframe)
        self.complete = bool(complete)

    def __repr__(self) -> str:
        return (
            f"AccessUnit(ts={self.timestamp}, {len(self.data)} bytes, "
            f"keyframe={self.keyframe}, complete={self.complete})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AccessUnit):
            return NotImplemented
        return (self.data, self.timestamp, self.keyframe, self.complete) == (
            other.data,
            other.timestamp,
            other.keyframe,
            other.complete,
        )

    __hash__ = None  # type: ignore[assignment]


class H264Depacketizer:
    """Reassembles H.264 access units from RTP packets (RFC 6184).

    Feed packets in sequence order (a jitter buffer sorts them). Single NAL unit
    packets, STAP-A and FU-A are reassembled; STAP-B, MTAP and FU-B are counted in
    ``unsupported`` and make the unit incomplete; malformed payloads are counted
    in ``malformed``. A gap in sequence numbers, a fragment without its start or
    end, or a missing marker bit makes the unit incomplete (``complete=False``)
    and drops the broken NAL unit instead of emitting corrupt data. A packet older
    than the last one accepted is dropped and counted in ``late``. ``push`` never
    raises on payload content.

    Counters: ``packets``, ``lost``, ``late``, ``malformed``, ``unsupported``,
    ``units``, ``incomplete``. Not thread-safe.
    """

    def __init__(self) -> None:
        self._nals: list[bytes] = []
        self._fu: bytearray | None = None
        self._timestamp = -1
        self._expected = -1
        self._broken = False
        self._have_sps = False
        self._have_pps = False
        self.packets = 0
        self.lost = 0
        self.late = 0
        self.malformed = 0
        self.unsupported = 0
        self.units = 0
        self.incomplete = 0

    def push(self, packet: RtpPacket) -> list[AccessUnit]:
        """Add one packet; returns the access units it completes (zero, one or two)."""
        out: list[AccessUnit] = []
        seq = packet.sequence_number
        gap = False
        if self._expected >= 0:
            d = seq_diff(seq, self._expected)
            if d < 0:
                self.late += 1
                return out
            if d > 0:
                self.lost += d
                gap = True
        self.packets += 1
        self._expected = (seq + 1) & 0xFFFF
        if self._timestamp >= 0 and packet.timestamp != self._timestamp:
            # the previous unit never saw its marker: its last packet(s) are missing
            self._broken = True
            out.append(self._finish())
        if gap:
            self._broken = True
            self._fu = None
        self._timestamp = packet.timestamp
        self._payload(packet.payload)
        if packet.marker:
            out.append(self._finish())
        return out

    def flush(self) -> list[AccessUnit]:
        """The unit in progress, if any, as an incomplete unit (end of stream)."""
        if self._timestamp < 0:
            return []
        self._broken = True
        return [self._finish()]

    def _payload(self, payload: bytes) -> None:
        n = len(payload)
        if n == 0:
            self.malformed += 1
            self._broken = True
            return
        header = payload[0]
        t = header & 0x1F
        if 1 <= t <= 23:
            if self._fu is not None:  # a fragmented NAL unit lost its end
                self._fu = None
                self._broken = True
            self._nals.append(bytes(payload))
        elif t == NAL_TYPE_STAP_A:
            if self._fu is not None:
                self._fu = None
                self._broken = True
            pos = 1
            found: list[bytes] = []
            while pos < n:
                if pos + 2 > n:
                    self.malformed += 1
                    self._broken = True
                    return
                size = (payload[pos] << 8) | payload[pos + 1]
                pos += 2
                if size == 0 or pos + size > n:
                    self.malformed += 1
                    self._broken = True
                    return
                found.append(bytes(payload[pos : pos + size]))
                pos += size
            if not found:
                self.malformed += 1
                self._broken = True
                return
            self._nals.extend(found)
        elif t == NAL_TYPE_FU_A:
            if n < 3:
                self.malformed += 1
                self._broken = True
                self._fu = None
                return
            fu_header = payload[1]
            start = fu_header & 0x80
            end = fu_header & 0x40
            if start:
                if self._fu is not None:
                    self._broken = True
                if end:  # start and end in one fragment is not allowed (RFC 6184 §5.8)
                    self.malformed += 1
                    self._broken = True
                    self._fu = None
                    return
                self._fu = bytearray(((header & 0xE0) | (fu_header & 0x1F),))
                self._fu += payload[2:]
            else:
                if self._fu is None:  # its start was lost
                    self._broken = True
                    return
                self._fu += payload[2:]
                if end:
                    self._nals.append(bytes(self._fu))
                    self._fu = None
        elif t in (NAL_TYPE_STAP_B, NAL_TYPE_MTAP16, NAL_TYPE_MTAP24, NAL_TYPE_FU_B):
            self.unsupported += 1
            self._broken = True
            self._fu = None
        # types 0, 30 and 31 are reserved: ignored (RFC 6184 §5.4)

    def _finish(self) -> AccessUnit:
        if self._fu is not None:
            self._fu = None
            self._broken = True
        idr = False
        for nal in self._nals:
            t = nal[0] & 0x1F
            if t == NAL_TYPE_SPS:
                self._have_sps = True
            elif t == NAL_TYPE_PPS:
                self._have_pps = True
            elif t == NAL_TYPE_IDR:
                idr = True
        data = b"".join([START_CODE + nal for nal in self._nals])
        complete = not self._broken
        unit = AccessUnit(data, self._timestamp, idr and self._have_sps and self._have_pps, complete)
        self.units += 1
        if not complete:
            self.incomplete += 1
        self._nals = []
        self._broken = False
        self._timestamp = -1
        return unit


# --------------------------------------------------------------------------
# G.711 (ITU-T G.711), bit-exact with FFmpeg's pcm_mulaw / pcm_alaw
# --------------------------------------------------------------------------


def _ulaw_to_linear(code: int) -> int:
    u = ~code & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def _alaw_to_linear(code: int) -> int:
    a = code ^ 0x55
    mantissa = a & 0x0F
    segment = (a & 0x70) >> 4
    if segment:
        t = (2 * mantissa + 33) << (segment + 2)
    else:
        t = (2 * mantissa + 1) << 3
    return t if a & 0x80 else -t


def _encode_table(decode: Callable[[int], int], mask: int) -> npt.NDArray[np.uint8]:
    """14-bit index ``(pcm + 32768) >> 2`` -> code, nearest level with FFmpeg's rounding."""
    table = np.zeros(16384, dtype=np.uint8)
    table[8192] = mask
    j = 1
    for level in range(127):
        lo = decode(level ^ mask)
        hi = decode((level + 1) ^ mask)
        threshold = (lo + hi + 4) >> 3  # midpoint of two levels, in units of 4
        while j < threshold:
            table[8192 - j] = level ^ (mask ^ 0x80)
            table[8192 + j] = level ^ mask
            j += 1
    while j < 8192:
        table[8192 - j] = 127 ^ (mask ^ 0x80)
        table[8192 + j] = 127 ^ mask
        j += 1
    table[0] = table[1]
    return table


ULAW_DECODE = np.array([_ulaw_to_linear(c) for c in range(256)], dtype=np.int16)
ALAW_DECODE = np.array([_alaw_to_linear(c) for c in range(256)], dtype=np.int16)
ULAW_ENCODE = _encode_table(_ulaw_to_linear, 0xFF)
ALAW_ENCODE = _encode_table(_alaw_to_linear, 0xD5)


def _pcm_view(pcm: bytes | bytearray | memoryview | npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise TypeError(f"G.711 encoder needs int16 PCM, got {pcm.dtype}")
        return pcm.reshape(-1)
    raw = memoryview(pcm).cast("B")
    if raw.nbytes % 2:
        raise ValueError(f"int16 PCM needs an even number of bytes, got {raw.nbytes}")
    return np.frombuffer(raw, dtype=np.int16)


def g711_encode(pcm: bytes | bytearray | memoryview | npt.NDArray[np.int16], alaw: bool) -> bytes:
    """Encode native-endian int16 PCM to G.711 µ-law (``alaw=False``) or A-law codes."""
    samples = _pcm_view(pcm)
    index = (samples.astype(np.int32) + 32768) >> 2
    table = ALAW_ENCODE if alaw else ULAW_ENCODE
    return bytes(table[index].tobytes())


def g711_decode(data: bytes | bytearray | memoryview, alaw: bool) -> bytes:
    """Decode G.711 codes to native-endian int16 PCM bytes."""
    codes = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    table = ALAW_DECODE if alaw else ULAW_DECODE
    return bytes(table[codes].tobytes())


