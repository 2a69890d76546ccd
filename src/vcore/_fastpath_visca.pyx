# cython: language_level=3
"""Compiled VISCA kernels: framing on the 0xFF terminator, nibble values, VISCA-over-IP header.

Twin of ``vcore._fastpath_visca_py``: same names, results, exceptions and messages.
"""

cimport cython
from libc.string cimport memmove

from .errors import ParseError

TERMINATOR = 0xFF
MAX_MESSAGE = 16
MIN_MESSAGE = 3
IP_HEADER_LEN = 8
DEF _MAX_FRAMER_LENGTH = 64


cdef class ViscaFramer:
    """Cuts a byte stream into VISCA messages; resynchronises on the 0xFF terminator.

    ``feed(data)`` returns the complete messages (terminator included) found so far.
    A message starts with a header byte (0x80-0xFE) and ends at the next 0xFF; bytes
    before a header byte, messages shorter than 3 bytes and runs longer than
    ``max_length`` without a terminator are discarded and counted in ``garbage_bytes``.
    The buffer never holds more than ``max_length`` bytes. Not thread-safe.
    """

    cdef unsigned char _buf[_MAX_FRAMER_LENGTH]
    cdef Py_ssize_t _len
    cdef Py_ssize_t _max
    cdef unsigned long long _garbage
    cdef unsigned long long _messages

    def __init__(self, Py_ssize_t max_length=MAX_MESSAGE):
        if not MIN_MESSAGE <= max_length <= _MAX_FRAMER_LENGTH:
            raise ValueError(f"max_length must be in [3, 64], got {max_length}")
        self._max = max_length
        self._len = 0
        self._garbage = 0
        self._messages = 0

    @property
    def max_length(self):
        return self._max

    @property
    def garbage_bytes(self):
        """Bytes discarded so far (noise, partial or oversized messages)."""
        return self._garbage

    @property
    def messages(self):
        """Complete messages returned so far."""
        return self._messages

    @property
    def pending(self):
        """Bytes of an incomplete message held in the buffer."""
        return self._len

    def reset(self):
        """Drop a partial message (counted as garbage)."""
        self._garbage += self._len
        self._len = 0

    @cython.boundscheck(False)
    def feed(self, data):
        cdef const unsigned char[:] mv
        cdef Py_ssize_t i, n, drop
        cdef unsigned char b
        cdef list out = []
        if isinstance(data, (bytes, bytearray, memoryview)):
            mv = memoryview(data).cast("B") if isinstance(data, memoryview) else data
        else:
            mv = bytes(data)
        n = mv.shape[0]
        for i in range(n):
            b = mv[i]
            if self._len == 0:
                if b < 0x80 or b == 0xFF:
                    self._garbage += 1
                    continue
                self._buf[0] = b
                self._len = 1
                continue
            self._buf[self._len] = b
            self._len += 1
            if b == 0xFF:
                if self._len >= MIN_MESSAGE:
                    out.append(self._buf[:self._len])
                    self._messages += 1
                else:
                    self._garbage += self._len
                self._len = 0
            elif self._len >= self._max:
                drop = 1
                while drop < self._len and self._buf[drop] < 0x80:
                    drop += 1
                self._garbage += drop
                memmove(self._buf, self._buf + drop, self._len - drop)
                self._len -= drop
        return out


def pack_nibbles(value, int count):
    """``value`` as ``count`` bytes ``0x0N``, most significant nibble first.

    Negative values are written in two's complement over ``4 * count`` bits.
    """
    cdef int i, bits
    cdef unsigned long long v
    cdef unsigned char out[8]
    if not 1 <= count <= 8:
        raise ValueError(f"nibble count must be in [1, 8], got {count}")
    bits = 4 * count
    if not -(1LL << (bits - 1)) <= value < (1LL << bits):
        raise ValueError(f"value {value} does not fit in {count} nibbles")
    cdef long long lv = value
    v = (<unsigned long long>lv) & ((1ULL << bits) - 1)
    for i in range(count):
        out[i] = (v >> (4 * (count - 1 - i))) & 0x0F
    return out[:count]


def unpack_nibbles(data, Py_ssize_t offset, int count, bint signed=False):
    """Read ``count`` bytes ``0x0N`` at ``offset``; two's complement when ``signed``."""
    cdef const unsigned char[:] mv
    cdef Py_ssize_t i
    cdef long long v = 0
    cdef unsigned char b
    if not 1 <= count <= 8:
        raise ValueError(f"nibble count must be in [1, 8], got {count}")
    mv = memoryview(data).cast("B") if isinstance(data, memoryview) else data
    if offset < 0 or offset + count > mv.shape[0]:
        raise ParseError(f"need {count} nibble bytes at offset {offset}, have {mv.shape[0]} bytes")
    for i in range(offset, offset + count):
        b = mv[i]
        if b > 0x0F:
            raise ParseError(f"byte 0x{b:02x} at offset {i} is not a nibble (0x00-0x0f)")
        v = (v << 4) | b
    if signed and v >= (1LL << (4 * count - 1)):
        v -= 1LL << (4 * count)
    return v


def pack_ip_header(payload_type, length, sequence):
    """The 8-byte VISCA-over-IP header: type (16 bits), payload length (16), sequence (32)."""
    if not 0 <= payload_type <= 0xFFFF:
        raise ValueError(f"payload type {payload_type} out of range")
    if not 0 <= length <= 0xFFFF:
        raise ValueError(f"payload length {length} out of range")
    if not 0 <= sequence <= 0xFFFFFFFF:
        raise ValueError(f"sequence number {sequence} out of range")
    cdef unsigned int t = payload_type, ln = length
    cdef unsigned long s = sequence
    cdef unsigned char out[8]
    out[0] = t >> 8
    out[1] = t & 0xFF
    out[2] = ln >> 8
    out[3] = ln & 0xFF
    out[4] = (s >> 24) & 0xFF
    out[5] = (s >> 16) & 0xFF
    out[6] = (s >> 8) & 0xFF
    out[7] = s & 0xFF
    return out[:8]


def parse_ip_header(data):
    """``(payload_type, length, sequence)`` of a datagram; checks the length field."""
    cdef const unsigned char[:] mv
    mv = memoryview(data).cast("B") if isinstance(data, memoryview) else data
    cdef Py_ssize_t n = mv.shape[0]
    if n < IP_HEADER_LEN:
        raise ParseError(f"VISCA-over-IP datagram of {n} bytes is shorter than its 8-byte header")
    cdef unsigned int ptype = (mv[0] << 8) | mv[1]
    cdef unsigned int length = (mv[2] << 8) | mv[3]
    cdef unsigned long seq = (<unsigned long>mv[4] << 24) | (<unsigned long>mv[5] << 16) | (<unsigned long>mv[6] << 8) | mv[7]
    if length != n - IP_HEADER_LEN:
        raise ParseError(f"VISCA-over-IP length field {length} does not match payload of {n - IP_HEADER_LEN} bytes")
    return ptype, length, seq
