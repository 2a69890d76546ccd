"""Pure-Python twin of ``vcore._fastpath_visca`` (see ``_fastpath_visca.pyx``).

Byte kernels of VISCA: per-byte framing on the 0xFF terminator, nibble-encoded
values (``0p 0q 0r 0s``) and the 8-byte VISCA-over-IP header. No I/O, no asyncio.
"""

from __future__ import annotations

from .errors import ParseError

TERMINATOR = 0xFF  # VISCA: every message ends with 0xFF
MAX_MESSAGE = 16  # VISCA: a message is 3 to 16 bytes, header and terminator included
MIN_MESSAGE = 3
IP_HEADER_LEN = 8  # Sony VISCA over IP: payload type (2), payload length (2), sequence (4)
_MAX_FRAMER_LENGTH = 64


class ViscaFramer:
    """Cuts a byte stream into VISCA messages; resynchronises on the 0xFF terminator.

    ``feed(data)`` returns the complete messages (terminator included) found so far.
    A message starts with a header byte (0x80-0xFE) and ends at the next 0xFF; bytes
    before a header byte, messages shorter than 3 bytes and runs longer than
    ``max_length`` without a terminator are discarded and counted in ``garbage_bytes``.
    The buffer never holds more than ``max_length`` bytes. Not thread-safe.
    """

    def __init__(self, max_length: int = MAX_MESSAGE) -> None:
        if not MIN_MESSAGE <= max_length <= _MAX_FRAMER_LENGTH:
            raise ValueError(f"max_length must be in [3, 64], got {max_length}")
        self._max = max_length
        self._buf = bytearray()
        self._garbage = 0
        self._messages = 0

    @property
    def max_length(self) -> int:
        return self._max

    @property
    def garbage_bytes(self) -> int:
        """Bytes discarded so far (noise, partial or oversized messages)."""
        return self._garbage

    @property
    def messages(self) -> int:
        """Complete messages returned so far."""
        return self._messages

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message held in the buffer."""
        return len(self._buf)

    def reset(self) -> None:
        """Drop a partial message (counted as garbage)."""
        self._garbage += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        out: list[bytes] = []
        buf = self._buf
        for b in bytes(data):
            if not buf:
                if b < 0x80 or b == TERMINATOR:
                    self._garbage += 1  # not a header byte: noise or tail of a partial message
                    continue
                buf.append(b)
                continue
            buf.append(b)
            if b == TERMINATOR:
                if len(buf) >= MIN_MESSAGE:
                    out.append(bytes(buf))
                    self._messages += 1
                else:
                    self._garbage += len(buf)
                buf.clear()
            elif len(buf) >= self._max:
                # too long for a message: slide to the next header byte after the first
                drop = 1
                while drop < len(buf) and buf[drop] < 0x80:
                    drop += 1
                self._garbage += drop
                del buf[:drop]
        return out


def pack_nibbles(value: int, count: int) -> bytes:
    """``value`` as ``count`` bytes ``0x0N``, most significant nibble first.

    Negative values are written in two's complement over ``4 * count`` bits.
    """
    if not 1 <= count <= 8:
        raise ValueError(f"nibble count must be in [1, 8], got {count}")
    bits = 4 * count
    if not -(1 << (bits - 1)) <= value < (1 << bits):
        raise ValueError(f"value {value} does not fit in {count} nibbles")
    v = value & ((1 << bits) - 1)
    return bytes((v >> (4 * (count - 1 - i))) & 0x0F for i in range(count))


def unpack_nibbles(data: bytes | bytearray | memoryview, offset: int, count: int, signed: bool = False) -> int:
    """Read ``count`` bytes ``0x0N`` at ``offset``; two's complement when ``signed``."""
    if not 1 <= count <= 8:
        raise ValueError(f"nibble count must be in [1, 8], got {count}")
    mv = bytes(data)
    if offset < 0 or offset + count > len(mv):
        raise ParseError(f"need {count} nibble bytes at offset {offset}, have {len(mv)} bytes")
    v = 0
    for i in range(offset, offset + count):
        b = mv[i]
        if b > 0x0F:
            raise ParseError(f"byte 0x{b:02x} at offset {i} is not a nibble (0x00-0x0f)")
        v = (v << 4) | b
    if signed and v >= 1 << (4 * count - 1):
        v -= 1 << (4 * count)
    return v


def pack_ip_header(payload_type: int, length: int, sequence: int) -> bytes:
    """The 8-byte VISCA-over-IP header: type (16 bits), payload length (16), sequence (32)."""
    if not 0 <= payload_type <= 0xFFFF:
        raise ValueError(f"payload type {payload_type} out of range")
    if not 0 <= length <= 0xFFFF:
        raise ValueError(f"payload length {length} out of range")
    if not 0 <= sequence <= 0xFFFFFFFF:
        raise ValueError(f"sequence number {sequence} out of range")
    return bytes(
        (
            payload_type >> 8,
            payload_type & 0xFF,
            length >> 8,
            length & 0xFF,
            (sequence >> 24) & 0xFF,
            (sequence >> 16) & 0xFF,
            (sequence >> 8) & 0xFF,
            sequence & 0xFF,
        )
    )


def parse_ip_header(data: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """``(payload_type, length, sequence)`` of a datagram; checks the length field."""
    mv = bytes(data)
    if len(mv) < IP_HEADER_LEN:
        raise ParseError(f"VISCA-over-IP datagram of {len(mv)} bytes is shorter than its 8-byte header")
    ptype = (mv[0] << 8) | mv[1]
    length = (mv[2] << 8) | mv[3]
    seq = (mv[4] << 24) | (mv[5] << 16) | (mv[6] << 8) | mv[7]
    if length != len(mv) - IP_HEADER_LEN:
        raise ParseError(f"VISCA-over-IP length field {length} does not match payload of {len(mv) - IP_HEADER_LEN} bytes")
    return ptype, length, seq
