"""ITU-T H.224 frames (the Q.922-like header, client IDs, CME) and their RTP carriage.

An H.224 frame is a Q.922 UI frame whose information field starts with the
6-octet H.224 header::

    Q.922   address (2 octets: 0x00 0x61, or 0x00 0x71 for high priority), control 0x03 (UI)
    H.224   destination terminal (2), source terminal (2), client ID (1),
            BS ES C1 C0 + segment number (1)
            client data (the H.281 message, a CME message, ...)

Over RTP (H.323 Annex Q, RFC 4573 ``application/h224``) one RTP packet carries
one frame, in either of two forms that this module reads and writes:

* **octet-aligned** (``hdlc=False``): the frame octets as above, nothing else;
* **HDLC-tunnelled** (``hdlc=True``, H.245 ``DataProtocolCapability.hdlcFrameTunnelling``):
  the frame as an HDLC bit stream, as H323Plus sends it: opening flags
  (``0x7E``), the octets least significant bit first with a zero inserted after
  five ones, the FCS-16 of RFC 1662 (low octet first), closing flags; the bit
  stream fills each payload octet from its most significant bit, and may start
  at any bit position.

Parsing is strict (:class:`H224Error`, a :class:`vcore.ParseError`): a wrong
address or control octet, an FCS mismatch, an HDLC abort, a truncated header
or an oversized frame is refused. Everything here is pure and thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ParseError

__all__ = [
    "CLIENT_CME",
    "CLIENT_EXTENDED",
    "CLIENT_H281",
    "CLIENT_H284",
    "CLIENT_NONSTANDARD",
    "CLIENT_T140",
    "H224_BROADCAST",
    "ClientList",
    "ClientListCommand",
    "CmeMessage",
    "ExtraCapabilities",
    "ExtraCapabilitiesCommand",
    "H224Error",
    "H224Frame",
    "encode_rtp_payload",
    "hdlc_decode",
    "longest_ones_run",
    "hdlc_encode",
    "parse_cme",
    "parse_rtp_payload",
]


class H224Error(ParseError):
    """A malformed H.224 frame, HDLC bit stream or CME message."""


Q922_ADDRESS_HIGH = 0x00  # H.224: DLCI 6 (normal) / 7 (high priority), C/R 0, EA bits
Q922_ADDRESS_LOW_NORMAL = 0x61
Q922_ADDRESS_LOW_HIGH_PRIORITY = 0x71
Q922_CONTROL_UI = 0x03  # Q.922: unnumbered information
Q922_HEADER_SIZE = 3
H224_HEADER_SIZE = 6
MAX_INFORMATION_FIELD = 260  # Q.922 N201 default (octets of H.224 header + client data)
H224_BROADCAST = 0x0000  # terminal address meaning "every terminal" (point-to-point calls use it both ways)

CLIENT_CME = 0x00  # H.224: Client Management Entity
CLIENT_H281 = 0x01  # H.281 far-end camera control
CLIENT_T140 = 0x02  # T.140 text conversation
CLIENT_H284 = 0x03  # H.284 extended camera control
CLIENT_EXTENDED = 0x7E  # an extended client ID octet follows (in a client list)
CLIENT_NONSTANDARD = 0x7F  # a T.35 non-standard client identifier follows (in a client list)

_BS, _ES, _C1, _C0 = 0x80, 0x40, 0x20, 0x10
HDLC_FLAG = 0x7E


@dataclass(frozen=True)
class H224Frame:
    """One H.224 frame: client ``client_id`` (standard IDs 0..0x7D) and its ``data``."""

    client_id: int
    data: bytes
    destination: int = H224_BROADCAST
    source: int = H224_BROADCAST
    high_priority: bool = False
    begin: bool = True  # BS: first segment of a client message
    end: bool = True  # ES: last segment
    c1: bool = False
    c0: bool = False
    segment: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.client_id < CLIENT_EXTENDED:
            raise H224Error(f"H.224 client ID {self.client_id:#04x} is not a standard client ID (0x00..0x7d)")
        if not 0 <= self.destination <= 0xFFFF or not 0 <= self.source <= 0xFFFF:
            raise H224Error("H.224 terminal addresses are 16-bit")
        if not 0 <= self.segment <= 15:
            raise H224Error(f"H.224 segment number {self.segment} is not in 0..15")
        if H224_HEADER_SIZE + len(self.data) > MAX_INFORMATION_FIELD:
            raise H224Error(f"H.224 client data of {len(self.data)} octets exceeds the "
                            f"{MAX_INFORMATION_FIELD - H224_HEADER_SIZE}-octet frame limit")

    def encode(self) -> bytes:
        """The octet-aligned frame (Q.922 header, H.224 header, client data)."""
        flags = ((_BS if self.begin else 0) | (_ES if self.end else 0) | (_C1 if self.c1 else 0)
                 | (_C0 if self.c0 else 0) | self.segment)
        low = Q922_ADDRESS_LOW_HIGH_PRIORITY if self.high_priority else Q922_ADDRESS_LOW_NORMAL
        return bytes((Q922_ADDRESS_HIGH, low, Q922_CONTROL_UI, self.destination >> 8, self.destination & 0xFF,
                      self.source >> 8, self.source & 0xFF, self.client_id, flags)) + self.data

    @classmethod
    def parse(cls, data: bytes) -> H224Frame:
        """Read an octet-aligned frame (the inverse of :meth:`encode`)."""
        data = bytes(data)
        if len(data) < Q922_HEADER_SIZE + H224_HEADER_SIZE:
            raise H224Error(f"H.224 frame of {len(data)} octets is shorter than its 9-octet header")
        if len(data) - Q922_HEADER_SIZE > MAX_INFORMATION_FIELD:
            raise H224Error(f"H.224 frame of {len(data)} octets exceeds the Q.922 information field limit")
        if data[0] != Q922_ADDRESS_HIGH or data[1] not in (Q922_ADDRESS_LOW_NORMAL, Q922_ADDRESS_LOW_HIGH_PRIORITY):
            raise H224Error(f"Q.922 address {data[0]:02x}{data[1]:02x} is not H.224's (0061 or 0071)")
        if data[2] != Q922_CONTROL_UI:
            raise H224Error(f"Q.922 control {data[2]:#04x} is not UI (0x03)")
        client = data[7]
        if client & 0x80 or client >= CLIENT_EXTENDED:
            raise H224Error(f"H.224 client ID {client:#04x} is not a standard client ID (0x00..0x7d)")
        flags = data[8]
        return cls(client, data[9:], (data[3] << 8) | data[4], (data[5] << 8) | data[6],
                   data[1] == Q922_ADDRESS_LOW_HIGH_PRIORITY, bool(flags & _BS), bool(flags & _ES),
                   bool(flags & _C1), bool(flags & _C0), flags & 0x0F)


# --------------------------------------------------------------------------- HDLC (Q.922 framing)


def _fcs16(data: bytes) -> int:
    """RFC 1662 §C.2 FCS-16 (CRC-CCITT, reflected, initial 0xFFFF, ones' complement)."""
    fcs = 0xFFFF
    for octet in data:
        fcs ^= octet
        for _ in range(8):
            fcs = (fcs >> 1) ^ 0x8408 if fcs & 1 else fcs >> 1
    return fcs ^ 0xFFFF


def hdlc_encode(frame: bytes, *, flags: int = 2) -> bytes:
    """``frame`` (octets) as an octet-aligned HDLC bit stream: flags, stuffed octets and FCS, flags, fill ones."""
    if not frame:
        raise H224Error("cannot HDLC-encode an empty frame")
    fcs = _fcs16(frame)
    bits: list[int] = []
    for _ in range(flags):
        bits.extend((HDLC_FLAG >> i) & 1 for i in range(8))
    ones = 0
    for octet in frame + bytes((fcs & 0xFF, fcs >> 8)):
        for i in range(8):
            bit = (octet >> i) & 1
            bits.append(bit)
            ones = ones + 1 if bit else 0
            if ones == 5:  # zero-bit insertion
                bits.append(0)
                ones = 0
    for _ in range(flags):
        bits.extend((HDLC_FLAG >> i) & 1 for i in range(8))
    bits.extend([1] * (-len(bits) % 8))  # idle (mark) fill to the octet boundary
    out = bytearray()
    for i in range(0, len(bits), 8):
        value = 0
        for bit in bits[i:i + 8]:
            value = (value << 1) | bit
        out.append(value)
    return bytes(out)


def hdlc_decode(data: bytes) -> bytes:
    """The frame octets of the first HDLC frame in ``data`` (any bit alignment), FCS checked and removed."""
    bits = [(octet >> (7 - i)) & 1 for octet in bytes(data) for i in range(8)]
    n = len(bits)
    pos = _find_flag(bits, 0)
    if pos is None:
        raise H224Error("no HDLC flag in the H.224 payload")
    while pos + 8 <= n and bits[pos:pos + 8] == [0, 1, 1, 1, 1, 1, 1, 0]:
        pos += 8  # skip repeated opening flags
    out: list[int] = []
    ones = 0
    i = pos
    while i < n:
        bit = bits[i]
        if bit:
            ones += 1
            if ones == 6:
                if i + 1 < n and bits[i + 1] == 0 and len(out) >= 6:  # closing flag 01111110
                    return _frame_from_bits(out[:-6])  # its 0 and five 1s were taken as data
                raise H224Error("HDLC abort (seven ones) in the H.224 payload")
            out.append(1)
        else:
            if ones != 5:  # after five ones a zero is stuffing: drop it
                out.append(0)
            ones = 0
        i += 1
    raise H224Error("HDLC frame without a closing flag")


def _find_flag(bits: list[int], start: int) -> int | None:
    pattern = [0, 1, 1, 1, 1, 1, 1, 0]
    for i in range(start, len(bits) - 7):
        if bits[i:i + 8] == pattern:
            return i
    return None


def _frame_from_bits(bits: list[int]) -> bytes:
    if len(bits) % 8:
        raise H224Error(f"HDLC frame of {len(bits)} bits is not a whole number of octets")
    octets = bytes(sum(bits[i + k] << k for k in range(8)) for i in range(0, len(bits), 8))
    if len(octets) < Q922_HEADER_SIZE + 2:
        raise H224Error(f"HDLC frame of {len(octets)} octets is too short for a header and an FCS")
    if len(octets) - 2 - Q922_HEADER_SIZE > MAX_INFORMATION_FIELD:
        raise H224Error("HDLC frame exceeds the Q.922 information field limit")
    body, fcs = octets[:-2], octets[-2] | (octets[-1] << 8)
    if _fcs16(body) != fcs:
        raise H224Error(f"HDLC FCS mismatch (got {fcs:#06x}, computed {_fcs16(body):#06x})")
    return body


def longest_ones_run(frame: bytes) -> int:
    """The longest run of one bits in the HDLC stream of ``frame`` before zero-bit insertion (FCS included).

    H323Plus 1.28's HDLC decoder (``Q922_Frame::DecodeByte``) restarts its count of ones at zero, not one,
    when a one follows a stuffed zero, so it rejects any frame holding a run of ten ones or more (its own too).
    """
    fcs = _fcs16(frame)
    best = run = 0
    for octet in frame + bytes((fcs & 0xFF, fcs >> 8)):
        for i in range(8):
            run = run + 1 if (octet >> i) & 1 else 0
            best = max(best, run)
    return best


H323PLUS_MAX_ONES = 9  # longest run of ones H323Plus 1.28 decodes (see longest_ones_run)


def encode_rtp_payload(frame: H224Frame, *, hdlc: bool) -> bytes:
    """The RTP payload carrying ``frame``: HDLC-tunnelled (H323Plus) or octet-aligned."""
    octets = frame.encode()
    return hdlc_encode(octets) if hdlc else octets


def parse_rtp_payload(payload: bytes) -> tuple[H224Frame, bool]:
    """The frame in an RTP payload and whether it was HDLC-tunnelled.

    The two forms cannot be confused: an octet-aligned frame starts with the
    Q.922 address octet 0x00, and no octet of an HDLC stream that starts in
    its flags is 0x00.
    """
    payload = bytes(payload)
    if not payload:
        raise H224Error("empty H.224 RTP payload")
    if payload[0] == Q922_ADDRESS_HIGH:
        return H224Frame.parse(payload), False
    return H224Frame.parse(hdlc_decode(payload)), True


# --------------------------------------------------------------------------- CME (client management)

CME_CLIENT_LIST = 0x01
CME_EXTRA_CAPABILITIES = 0x02
CME_MESSAGE = 0x00
CME_COMMAND = 0xFF
_EXTRA_CAPS_FLAG = 0x80  # in a client list entry: the client has extra capabilities


@dataclass(frozen=True)
class ClientList:
    """CME client list message: the standard clients a terminal has, each with its extra-capabilities flag.

    Extended and non-standard entries of a received list are skipped (vcore has no use for them).
    """

    clients: tuple[tuple[int, bool], ...]

    def encode(self) -> bytes:
        out = bytearray((CME_CLIENT_LIST, CME_MESSAGE, len(self.clients)))
        for client, extra in self.clients:
            if not 0 < client < CLIENT_EXTENDED:
                raise H224Error(f"client list entry {client:#04x} is not a standard client ID")
            out.append((_EXTRA_CAPS_FLAG if extra else 0) | client)
        return bytes(out)

    def has(self, client: int) -> bool:
        return any(c == client for c, _ in self.clients)


@dataclass(frozen=True)
class ClientListCommand:
    """CME client list command: "send me your client list"."""

    def encode(self) -> bytes:
        return bytes((CME_CLIENT_LIST, CME_COMMAND))


@dataclass(frozen=True)
class ExtraCapabilities:
    """CME extra capabilities message of client ``client`` (for H.281: presets and video sources)."""

    client: int
    data: bytes

    def encode(self) -> bytes:
        if not 0 < self.client < CLIENT_EXTENDED:
            raise H224Error(f"extra capabilities of {self.client:#04x}: not a standard client ID")
        return bytes((CME_EXTRA_CAPABILITIES, CME_MESSAGE, _EXTRA_CAPS_FLAG | self.client)) + self.data


@dataclass(frozen=True)
class ExtraCapabilitiesCommand:
    """CME extra capabilities command: "send me the extra capabilities of ``client``"."""

    client: int

    def encode(self) -> bytes:
        return bytes((CME_EXTRA_CAPABILITIES, CME_COMMAND, _EXTRA_CAPS_FLAG | self.client))


CmeMessage = ClientList | ClientListCommand | ExtraCapabilities | ExtraCapabilitiesCommand


def parse_cme(data: bytes) -> CmeMessage:
    """Read the client data of a CME frame (client ID 0)."""
    data = bytes(data)
    if len(data) < 2:
        raise H224Error(f"CME message of {len(data)} octets is shorter than its 2-octet code")
    code, kind = data[0], data[1]
    if kind not in (CME_MESSAGE, CME_COMMAND):
        raise H224Error(f"CME message type {kind:#04x} is neither message (0x00) nor command (0xff)")
    if code == CME_CLIENT_LIST:
        if kind == CME_COMMAND:
            if len(data) != 2:
                raise H224Error("CME client list command has trailing octets")
            return ClientListCommand()
        if len(data) < 3:
            raise H224Error("CME client list lacks its client count")
        count, i = data[2], 3
        clients: list[tuple[int, bool]] = []
        for _ in range(count):
            if i >= len(data):
                raise H224Error(f"CME client list announces {count} clients but holds fewer")
            entry = data[i]
            client = entry & 0x7F
            width = 2 if client == CLIENT_EXTENDED else 6 if client == CLIENT_NONSTANDARD else 1
            if i + width > len(data):
                raise H224Error("CME client list entry is truncated")
            if width == 1:
                clients.append((client, bool(entry & _EXTRA_CAPS_FLAG)))
            i += width
        if i != len(data):
            raise H224Error(f"CME client list has {len(data) - i} trailing octets")
        return ClientList(tuple(clients))
    if code == CME_EXTRA_CAPABILITIES:
        if len(data) < 3:
            if kind == CME_COMMAND:
                return ExtraCapabilitiesCommand(0)  # H323Plus reads a bare command as "all clients"
            raise H224Error("CME extra capabilities lacks its client ID")
        client = data[2] & 0x7F
        if client >= CLIENT_EXTENDED:
            raise H224Error(f"CME extra capabilities of client {client:#04x}: not a standard client ID")
        if kind == CME_COMMAND:
            if len(data) != 3:
                raise H224Error("CME extra capabilities command has trailing octets")
            return ExtraCapabilitiesCommand(client)
        return ExtraCapabilities(client, data[3:])
    raise H224Error(f"unknown CME code {code:#04x}")
