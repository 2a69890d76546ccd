# cython: language_level=3
"""Compiled kernels: sequence arithmetic, RTP packets, H.264 over RTP, G.711.

Twin of ``vcore._fastpath_py`` (read that module for the reference semantics):
same public names, results, exceptions and exception messages. Byte and packet
work only: no I/O, no clocks, no asyncio. Long loops (G.711) release the GIL.

Thread-safety: functions are re-entrant; objects must not be shared between
threads without a lock.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memset

import numpy as np

from .errors import ParseError

__all__ = [
    "SEQ_MOD", "TS_MOD", "seq_diff", "seq_gt", "ts_diff", "extend_seq", "RtpPacket", "parse_header_extensions",
    "build_header_extensions", "split_annexb", "h264_packetize", "AccessUnit", "H264Depacketizer",
    "g711_encode", "g711_decode",
]

SEQ_MOD = 1 << 16  # RFC 3550 §5.1
TS_MOD = 1 << 32  # RFC 3550 §5.1

DEF RTP_HEADER_SIZE = 12  # RFC 3550 §5.1
DEF RTP_MAX_CSRC = 15
DEF EXT_PROFILE_ONE_BYTE = 0xBEDE  # RFC 8285 §4.2
DEF EXT_PROFILE_TWO_BYTE = 0x1000  # RFC 8285 §4.3
DEF NAL_TYPE_IDR = 5
DEF NAL_TYPE_SPS = 7
DEF NAL_TYPE_PPS = 8
DEF NAL_TYPE_STAP_A = 24  # RFC 6184 §5.7.1
DEF NAL_TYPE_STAP_B = 25
DEF NAL_TYPE_MTAP16 = 26
DEF NAL_TYPE_MTAP24 = 27
DEF NAL_TYPE_FU_A = 28  # RFC 6184 §5.8
DEF NAL_TYPE_FU_B = 29
DEF MIN_MTU = 64


# --------------------------------------------------------------------------
# Sequence and timestamp arithmetic
# --------------------------------------------------------------------------

cpdef int seq_diff(long long a, long long b):
    """Signed distance ``a - b`` between two 16-bit sequence numbers, in [-32768, 32767]."""
    return c_seq_diff(a, b)


cpdef bint seq_gt(long long a, long long b):
    """True when sequence number ``a`` comes after ``b`` (modulo 2^16)."""
    return c_seq_diff(a, b) > 0


cpdef long long ts_diff(long long a, long long b):
    """Signed distance ``a - b`` between two 32-bit RTP timestamps."""
    return c_ts_diff(a, b)


cpdef long long extend_seq(long long seq, long long highest_ext):
    """Extend a 16-bit ``seq`` to the extended number closest to ``highest_ext``."""
    return c_extend_seq(seq, highest_ext)


# --------------------------------------------------------------------------
# RTP packets and RFC 8285 header extensions
# --------------------------------------------------------------------------

cdef inline bytes _as_bytes(object data):
    if type(data) is bytes:
        return <bytes>data
    return bytes(data)


def parse_header_extensions(long long profile, data):
    """Elements of an RFC 8285 header extension block as ``(id, value)`` pairs."""
    cdef bytes buf = _as_bytes(data)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t pos = 0
    cdef int ext_id, length, b
    cdef list out = []
    if profile == EXT_PROFILE_ONE_BYTE:
        while pos < n:
            b = p[pos]
            ext_id = b >> 4
            if ext_id == 0:
                pos += 1
                continue
            if ext_id == 15:
                break
            length = (b & 0x0F) + 1
            if pos + 1 + length > n:
                raise ParseError(
                    f"RTP header extension element {ext_id} truncated: needs {length} bytes, has {n - pos - 1}"
                )
            out.append((ext_id, PyBytes_FromStringAndSize(<const char*>p + pos + 1, length)))
            pos += 1 + length
        return out
    if (profile & 0xFFF0) == EXT_PROFILE_TWO_BYTE:
        while pos < n:
            ext_id = p[pos]
            if ext_id == 0:
                pos += 1
                continue
            if pos + 2 > n:
                raise ParseError(f"RTP header extension element {ext_id} truncated: no length byte")
            length = p[pos + 1]
            if pos + 2 + length > n:
                raise ParseError(
                    f"RTP header extension element {ext_id} truncated: needs {length} bytes, has {n - pos - 2}"
                )
            out.append((ext_id, PyBytes_FromStringAndSize(<const char*>p + pos + 2, length)))
            pos += 2 + length
        return out
    raise ParseError(f"RTP header extension profile 0x{profile:04x} is not RFC 8285")


def build_header_extensions(elements):
    """Encode ``(id, value)`` pairs as an RFC 8285 block: ``(profile, data)``."""
    cdef bint one_byte = all(1 <= i <= 14 and 1 <= len(v) <= 16 for i, v in elements)
    cdef bytearray buf = bytearray()
    cdef long long profile
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


cdef inline unsigned int _be32(const unsigned char* p) noexcept nogil:
    return (<unsigned int>p[0] << 24) | (<unsigned int>p[1] << 16) | (<unsigned int>p[2] << 8) | p[3]


cdef inline void _put32(unsigned char* p, unsigned long long v) noexcept nogil:
    p[0] = (v >> 24) & 0xFF
    p[1] = (v >> 16) & 0xFF
    p[2] = (v >> 8) & 0xFF
    p[3] = v & 0xFF


cdef inline int _check_range(str name, long long value, long long maximum) except -1:
    if not 0 <= value <= maximum:
        raise ValueError(f"RTP {name} {value} out of range 0-{maximum}")
    return 0


@cython.freelist(256)
cdef class RtpPacket:
    """One RTP packet (RFC 3550 §5.1).

    ``parse`` then ``serialize`` reproduces the input bytes exactly when the
    padding bytes were zero. Padding is removed from ``payload`` and kept as
    ``padding_size``. The header extension is kept raw (``extension_profile``,
    ``extension_data``); ``extensions`` gives and takes RFC 8285 elements.
    Field ranges are checked by ``serialize``.

    Not thread-safe: an instance must not be mutated from two threads.
    """

    def __init__(
        self,
        long long payload_type=0,
        long long sequence_number=0,
        long long timestamp=0,
        long long ssrc=0,
        payload=b"",
        marker=False,
        csrc=(),
        extension_profile=None,
        extension_data=b"",
        long long padding_size=0,
    ):
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
    def payload(self):
        """The payload bytes (padding excluded)."""
        cdef bytes whole
        if self._prefix_len == 0 and self._off == 0 and self._plen == PyBytes_GET_SIZE(self._src):
            return self._src
        whole = PyBytes_FromStringAndSize(NULL, self._prefix_len + self._plen)
        if self._prefix_len:
            memcpy(PyBytes_AS_STRING(whole), self._prefix, self._prefix_len)
        memcpy(PyBytes_AS_STRING(whole) + self._prefix_len, PyBytes_AS_STRING(self._src) + self._off, self._plen)
        self._src = whole
        self._off = 0
        self._plen = PyBytes_GET_SIZE(whole)
        self._prefix_len = 0
        return whole

    @payload.setter
    def payload(self, value):
        self._src = bytes(value)
        self._off = 0
        self._plen = PyBytes_GET_SIZE(self._src)
        self._prefix_len = 0

    @property
    def version(self):
        """Always 2 (RFC 3550)."""
        return 2

    @property
    def padding(self):
        """True when the packet carries padding (the P bit)."""
        return self.padding_size > 0

    @property
    def extensions(self):
        """RFC 8285 header extension elements as ``(id, value)`` pairs (empty when none)."""
        if not self.extension:
            return []
        return parse_header_extensions(self.extension_profile, self.extension_data)

    @extensions.setter
    def extensions(self, elements):
        if not elements:
            self.extension = False
            self.extension_profile = 0
            self.extension_data = b""
            return
        self.extension_profile, self.extension_data = build_header_extensions(elements)
        self.extension = True

    @classmethod
    def parse(cls, data):
        """Parse one RTP packet; raises :class:`ParseError` on truncated or inconsistent input."""
        cdef bytes buf = _as_bytes(data)
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buf)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
        cdef Py_ssize_t pos, end, words
        cdef int b0, cc, version, pad, i
        cdef long long profile
        if n < RTP_HEADER_SIZE:
            raise ParseError(f"RTP packet too short: {n} bytes, the fixed header needs 12")
        b0 = p[0]
        version = b0 >> 6
        if version != 2:
            raise ParseError(f"RTP version {version} is not 2")
        cc = b0 & 0x0F
        pos = RTP_HEADER_SIZE + 4 * cc
        if pos > n:
            raise ParseError(f"RTP packet truncated: {cc} CSRC need {pos} header bytes, packet has {n}")
        cdef RtpPacket pkt = RtpPacket.__new__(RtpPacket) if cls is RtpPacket else cls.__new__(cls)
        pkt.marker = (p[1] & 0x80) != 0
        pkt.payload_type = p[1] & 0x7F
        pkt.sequence_number = (p[2] << 8) | p[3]
        pkt.timestamp = _be32(p + 4)
        pkt.ssrc = _be32(p + 8)
        if cc:
            pkt.csrc = tuple([_be32(p + RTP_HEADER_SIZE + 4 * i) for i in range(cc)])
        else:
            pkt.csrc = ()
        if b0 & 0x10:
            if pos + 4 > n:
                raise ParseError(f"RTP header extension truncated: header needs {pos + 4} bytes, packet has {n}")
            profile = (p[pos] << 8) | p[pos + 1]
            words = (p[pos + 2] << 8) | p[pos + 3]
            end = pos + 4 + 4 * words
            if end > n:
                raise ParseError(
                    f"RTP header extension truncated: {words} words need {end} bytes, packet has {n}"
                )
            pkt.extension = True
            pkt.extension_profile = profile
            pkt.extension_data = PyBytes_FromStringAndSize(<const char*>p + pos + 4, end - pos - 4)
            if profile == EXT_PROFILE_ONE_BYTE or (profile & 0xFFF0) == EXT_PROFILE_TWO_BYTE:
                parse_header_extensions(profile, pkt.extension_data)
            pos = end
        else:
            pkt.extension = False
            pkt.extension_profile = 0
            pkt.extension_data = b""
        end = n
        if b0 & 0x20:
            pad = p[n - 1]
            if pad == 0:
                raise ParseError("RTP padding count is zero")
            if pad > n - pos:
                raise ParseError(f"RTP padding count {pad} exceeds the {n - pos} bytes after the header")
            end = n - pad
            pkt.padding_size = pad
        else:
            pkt.padding_size = 0
        pkt._src = buf  # zero copy: the payload is a view into the packet
        pkt._off = pos
        pkt._plen = end - pos
        pkt._prefix_len = 0
        return pkt

    def serialize(self):
        """The packet as bytes; raises ``ValueError`` when a field is out of range."""
        cdef Py_ssize_t cc, total, ext_len = 0, plen, pos, i
        cdef unsigned char* out
        cdef bytes result
        cdef long long c
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
        if self.extension:
            _check_range("extension_profile", self.extension_profile, 0xFFFF)
            ext_len = len(self.extension_data)
            if ext_len % 4:
                raise ValueError(f"RTP header extension data is {ext_len} bytes, not a multiple of 4")
            if ext_len > 4 * 0xFFFF:
                raise ValueError("RTP header extension data longer than 262140 bytes")
        plen = self._prefix_len + self._plen
        total = RTP_HEADER_SIZE + 4 * cc + (4 + ext_len if self.extension else 0) + plen + self.padding_size
        result = PyBytes_FromStringAndSize(NULL, total)
        out = <unsigned char*>PyBytes_AS_STRING(result)
        out[0] = 0x80 | cc | (0x20 if self.padding_size else 0) | (0x10 if self.extension else 0)
        out[1] = (0x80 if self.marker else 0) | self.payload_type
        out[2] = (self.sequence_number >> 8) & 0xFF
        out[3] = self.sequence_number & 0xFF
        _put32(out + 4, self.timestamp)
        _put32(out + 8, self.ssrc)
        pos = RTP_HEADER_SIZE
        for i in range(cc):
            _put32(out + pos, self.csrc[i])
            pos += 4
        if self.extension:
            out[pos] = (self.extension_profile >> 8) & 0xFF
            out[pos + 1] = self.extension_profile & 0xFF
            out[pos + 2] = ((ext_len // 4) >> 8) & 0xFF
            out[pos + 3] = (ext_len // 4) & 0xFF
            if ext_len:
                memcpy(out + pos + 4, PyBytes_AS_STRING(self.extension_data), ext_len)
            pos += 4 + ext_len
        if self._prefix_len:
            memcpy(out + pos, self._prefix, self._prefix_len)
        if self._plen:
            memcpy(out + pos + self._prefix_len, PyBytes_AS_STRING(self._src) + self._off, self._plen)
        pos += plen
        if self.padding_size:
            memset(out + pos, 0, self.padding_size - 1)
            out[pos + self.padding_size - 1] = self.padding_size
        return result

    def __repr__(self):
        return (
            f"RtpPacket(seq={self.sequence_number}, ts={self.timestamp}, pt={self.payload_type}, "
            f"ssrc=0x{self.ssrc:08x}, marker={self.marker}, payload={self._prefix_len + self._plen} bytes)"
        )

    def __eq__(self, other):
        if not isinstance(other, RtpPacket):
            return NotImplemented
        return _packet_key(self) == _packet_key(<RtpPacket>other)

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = None


cdef tuple _packet_key(RtpPacket p):
    return (
        p.marker, p.payload_type, p.sequence_number, p.timestamp, p.ssrc, tuple(p.csrc),
        p.extension, p.extension_profile, p.extension_data, p.padding_size, p.payload,
    )


# --------------------------------------------------------------------------
# H.264 Annex B and RTP payload format (RFC 6184)
# --------------------------------------------------------------------------

# The start-code scan, in C: x86-64 compares 16 (SSE2) or 32 (AVX2, chosen at run time) positions at a
# time for the whole 00 00 01 pattern; elsewhere memchr finds each 01 and looks back. (A 01 byte comes
# every ~120 bytes of x264 output, so a memchr call per 01 cost more than the scan itself.)
cdef extern from *:
    """
    #include <string.h>
    #if defined(__GNUC__) && defined(__x86_64__)
    #include <immintrin.h>
    #define VCORE_SCAN_SIMD 1
    static Py_ssize_t vcore_scan_tail(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) {
        for (; i + 2 < n; i++)
            if (p[i + 2] == 1 && p[i + 1] == 0 && p[i] == 0)
                return i;
        return -1;
    }
    static Py_ssize_t vcore_scan_sse2(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) {
        const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi8(1);
        for (; i + 18 <= n; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(p + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(p + i + 1));
            __m128i c = _mm_loadu_si128((const __m128i *)(p + i + 2));
            int m = _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(c, one),
                                                    _mm_and_si128(_mm_cmpeq_epi8(a, zero), _mm_cmpeq_epi8(b, zero))));
            if (m)
                return i + __builtin_ctz((unsigned)m);
        }
        return vcore_scan_tail(p, i, n);
    }
    __attribute__((target("avx2")))
    static Py_ssize_t vcore_scan_avx2(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) {
        /* 64 positions per round: "00 01" pairs are rare, so test those and confirm the first 00 on a hit */
        const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi8(1);
        for (; i + 66 <= n; i += 64) {
            __m256i b0 = _mm256_loadu_si256((const __m256i *)(p + i + 1));
            __m256i c0 = _mm256_loadu_si256((const __m256i *)(p + i + 2));
            __m256i b1 = _mm256_loadu_si256((const __m256i *)(p + i + 33));
            __m256i c1 = _mm256_loadu_si256((const __m256i *)(p + i + 34));
            __m256i h0 = _mm256_and_si256(_mm256_cmpeq_epi8(b0, zero), _mm256_cmpeq_epi8(c0, one));
            __m256i h1 = _mm256_and_si256(_mm256_cmpeq_epi8(b1, zero), _mm256_cmpeq_epi8(c1, one));
            if (!_mm256_testz_si256(_mm256_or_si256(h0, h1), _mm256_or_si256(h0, h1))) {
                unsigned long long m = (unsigned)_mm256_movemask_epi8(h0)
                    | ((unsigned long long)(unsigned)_mm256_movemask_epi8(h1) << 32);
                while (m) {
                    int j = __builtin_ctzll(m);
                    if (p[i + j] == 0)
                        return i + j;
                    m &= m - 1;
                }
            }
        }
        return vcore_scan_sse2(p, i, n);
    }
    static int vcore_has_avx2 = -1;
    static Py_ssize_t vcore_find_start(const unsigned char *p, Py_ssize_t pos, Py_ssize_t n) {
        if (vcore_has_avx2 < 0) {
            __builtin_cpu_init();
            vcore_has_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
        }
        return vcore_has_avx2 ? vcore_scan_avx2(p, pos, n) : vcore_scan_sse2(p, pos, n);
    }
    #else
    #define VCORE_SCAN_SIMD 0
    static Py_ssize_t vcore_find_start(const unsigned char *p, Py_ssize_t pos, Py_ssize_t n) {
        Py_ssize_t k = pos + 2;
        while (k < n) {
            const unsigned char *hit = (const unsigned char *)memchr(p + k, 1, (size_t)(n - k));
            if (hit == NULL)
                return -1;
            k = hit - p;
            if (p[k - 1] == 0 && p[k - 2] == 0)
                return k - 2;
            k += 1;
        }
        return -1;
    }
    #endif
    """
    Py_ssize_t vcore_find_start(const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) noexcept nogil
    int VCORE_SCAN_SIMD


cdef inline Py_ssize_t _find_start(const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) noexcept nogil:
    """Offset of the next 00 00 01 at or after ``pos``, or -1."""
    return vcore_find_start(p, pos, n)


cdef list _split(bytes buf):
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t pos, nxt, end, stop
    cdef list nals = []
    if n == 0:
        return nals
    nxt = _find_start(p, 0, n)
    if nxt < 0:
        raise ParseError("H.264 Annex B data has no start code")
    pos = nxt + 3
    while True:
        nxt = _find_start(p, pos, n)
        end = n if nxt < 0 else nxt
        stop = end
        while stop > pos and p[stop - 1] == 0:
            stop -= 1
        if stop > pos:
            nals.append(PyBytes_FromStringAndSize(<const char*>p + pos, stop - pos))
        if nxt < 0:
            return nals
        pos = nxt + 3


def split_annexb(data):
    """NAL units of an H.264 Annex B byte stream, without start codes.

    Accepts 3- and 4-byte start codes; trailing zero bytes after a NAL unit are
    dropped; bytes before the first start code are ignored. Empty input gives an
    empty list; non-empty input without any start code raises :class:`ParseError`.
    """
    return _split(_as_bytes(data))


cdef inline RtpPacket _new_packet(long long pt, long long seq, long long ts, long long ssrc, bytes src,
                                  Py_ssize_t off, Py_ssize_t size, int prefix0, int prefix1, int prefix_len):
    cdef RtpPacket pkt = RtpPacket.__new__(RtpPacket)
    pkt.marker = False
    pkt.payload_type = pt
    pkt.sequence_number = seq
    pkt.timestamp = ts
    pkt.ssrc = ssrc
    pkt.csrc = ()
    pkt.extension = False
    pkt.extension_profile = 0
    pkt.extension_data = b""
    pkt.padding_size = 0
    pkt._src = src
    pkt._off = off
    pkt._plen = size
    pkt._prefix[0] = prefix0
    pkt._prefix[1] = prefix1
    pkt._prefix_len = prefix_len
    return pkt


cdef struct _Template:
    long long payload_type
    long long seq
    long long timestamp
    long long ssrc


cdef inline int _emit(_Template* tpl, bytes src, Py_ssize_t off, Py_ssize_t size, int prefix0, int prefix1,
                      int prefix_len, list out) except -1:
    out.append(_new_packet(tpl.payload_type, tpl.seq, tpl.timestamp, tpl.ssrc, src, off, size, prefix0, prefix1,
                           prefix_len))
    tpl.seq = (tpl.seq + 1) & 0xFFFF
    return 0


cdef struct _Nal:
    Py_ssize_t start
    Py_ssize_t size


cdef Py_ssize_t _nal_offsets(const unsigned char* p, Py_ssize_t n, _Nal** out) except -2:
    """Fill ``*out`` (malloc'd, caller frees) with the NAL units of an Annex B buffer; returns the count."""
    cdef Py_ssize_t cap = 16, count = 0, pos, nxt, end, stop
    cdef _Nal* nals
    cdef _Nal* grown
    out[0] = NULL
    if n == 0:
        return 0
    nxt = _find_start(p, 0, n)
    if nxt < 0:
        raise ParseError("H.264 Annex B data has no start code")
    nals = <_Nal*>malloc(cap * sizeof(_Nal))
    if nals == NULL:
        raise MemoryError()
    pos = nxt + 3
    while True:
        nxt = _find_start(p, pos, n)
        end = n if nxt < 0 else nxt
        stop = end
        while stop > pos and p[stop - 1] == 0:
            stop -= 1
        if stop > pos:
            if count == cap:
                cap *= 2
                grown = <_Nal*>realloc(nals, cap * sizeof(_Nal))
                if grown == NULL:
                    free(nals)
                    raise MemoryError()
                nals = grown
            nals[count].start = pos
            nals[count].size = stop - pos
            count += 1
        if nxt < 0:
            break
        pos = nxt + 3
    out[0] = nals
    return count


cdef Py_ssize_t _order(const unsigned char* p, _Nal* nals, Py_ssize_t count, Py_ssize_t* order) noexcept:
    """Fill ``order`` with NAL indexes: parameter sets once each, placed before the first slice.

    ``order`` has room for ``2 * count`` entries; the upper half is scratch space.
    """
    cdef Py_ssize_t i, j, k, n_params = 0, n_out = 0
    cdef int t
    cdef bint dup, placed = False
    cdef Py_ssize_t* params = order + count
    for i in range(count):
        t = p[nals[i].start] & 0x1F
        if t == NAL_TYPE_SPS or t == NAL_TYPE_PPS:
            dup = False
            for k in range(n_params):
                j = params[k]
                if nals[j].size == nals[i].size and memcmp(p + nals[j].start, p + nals[i].start, nals[i].size) == 0:
                    dup = True
                    break
            if not dup:
                params[n_params] = i
                n_params += 1
    for i in range(count):
        t = p[nals[i].start] & 0x1F
        if t == NAL_TYPE_SPS or t == NAL_TYPE_PPS:
            continue
        if not placed and 1 <= t <= 5:
            placed = True
            for k in range(n_params):
                order[n_out] = params[k]
                n_out += 1
        order[n_out] = i
        n_out += 1
    if not placed:
        for k in range(n_params):
            order[n_out] = params[k]
            n_out += 1
    return n_out


cdef int _fragment(bytes buf, Py_ssize_t start, Py_ssize_t nal_size, Py_ssize_t limit, _Template* tpl,
                   list out) except -1:
    """FU-A fragments (RFC 6184 §5.8) of near-equal size, each at most ``limit`` bytes (views, no copy)."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buf) + start
    cdef unsigned char header = p[0]
    cdef unsigned char indicator = (header & 0xE0) | NAL_TYPE_FU_A
    cdef unsigned char nal_type = header & 0x1F
    cdef Py_ssize_t size = nal_size - 1
    cdef Py_ssize_t room = limit - 2
    cdef Py_ssize_t count = (size + room - 1) // room
    cdef Py_ssize_t base = size // count
    cdef Py_ssize_t extra = size % count
    cdef Py_ssize_t pos = 1, k, chunk
    cdef unsigned char fu_header
    for k in range(count):
        chunk = base + (1 if k < extra else 0)
        fu_header = nal_type
        if k == 0:
            fu_header |= 0x80
        if k == count - 1:
            fu_header |= 0x40
        _emit(tpl, buf, start + pos, chunk, indicator, fu_header, 2, out)
        pos += chunk
    return 0


cdef int _payloads(bytes buf, _Nal* nals, Py_ssize_t* order, Py_ssize_t count,
                   Py_ssize_t limit, long long mode, _Template* tpl, list out) except -1:
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t i = 0, j, k, size, total, start
    cdef int nri, fbit, h
    cdef bytes stap
    cdef unsigned char* q
    while i < count:
        start = nals[order[i]].start
        size = nals[order[i]].size
        if mode == 0:
            _emit(tpl, buf, start, size, 0, 0, 0, out)
            i += 1
            continue
        if size > limit:
            _fragment(buf, start, size, limit, tpl, out)
            i += 1
            continue
        total = 1 + 2 + size
        h = p[start]
        nri = h & 0x60
        fbit = h & 0x80
        j = i + 1
        while j < count and total + 2 + nals[order[j]].size <= limit:
            total += 2 + nals[order[j]].size
            h = p[nals[order[j]].start]
            if (h & 0x60) > nri:
                nri = h & 0x60
            fbit |= h & 0x80
            j += 1
        if j - i == 1:
            _emit(tpl, buf, start, size, 0, 0, 0, out)
        else:
            stap = PyBytes_FromStringAndSize(NULL, total)
            q = <unsigned char*>PyBytes_AS_STRING(stap)
            q[0] = fbit | nri | NAL_TYPE_STAP_A
            total = 1
            for k in range(i, j):
                size = nals[order[k]].size
                q[total] = (size >> 8) & 0xFF
                q[total + 1] = size & 0xFF
                memcpy(q + total + 2, p + nals[order[k]].start, size)
                total += 2 + size
            _emit(tpl, stap, 0, total, 0, 0, 0, out)
        i = j
    return 0


def h264_packetize(access_unit, long long timestamp, long long payload_type, long long ssrc,
                   long long sequence_number, long long mtu, long long mode):
    """Packetize one Annex B access unit into RTP packets (RFC 6184).

    ``mtu`` bounds the whole RTP packet (12-byte header included). Mode 1 uses
    single NAL unit packets, STAP-A for runs of small NAL units and FU-A for
    large ones (fragments of near-equal size); mode 0 sends every NAL unit whole
    in its own packet, even when larger than ``mtu``. Sequence numbers start at
    ``sequence_number``; the marker bit is set on the last packet.
    """
    if mode != 0 and mode != 1:
        raise ValueError(f"H.264 packetization mode {mode} is not 0 or 1")
    if not MIN_MTU <= mtu <= 65535:
        raise ValueError(f"mtu {mtu} out of range {MIN_MTU}-65535")
    cdef bytes buf = _as_bytes(access_unit)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef _Nal* nals = NULL
    cdef Py_ssize_t count = _nal_offsets(p, PyBytes_GET_SIZE(buf), &nals)
    cdef Py_ssize_t* order = NULL
    cdef list packets = []
    if count == 0:
        return packets
    cdef _Template tpl
    tpl.payload_type = payload_type
    tpl.seq = sequence_number & 0xFFFF
    tpl.timestamp = timestamp
    tpl.ssrc = ssrc
    try:
        order = <Py_ssize_t*>malloc(2 * count * sizeof(Py_ssize_t))
        if order == NULL:
            raise MemoryError()
        count = _order(p, nals, count, order)
        _payloads(buf, nals, order, count, mtu - RTP_HEADER_SIZE, mode, &tpl, packets)
    finally:
        free(order)
        free(nals)
    if packets:
        (<RtpPacket>packets[len(packets) - 1]).marker = True
    return packets


@cython.freelist(32)
cdef class AccessUnit:
    """One H.264 access unit (a coded picture) in Annex B form.

    ``data``: NAL units each behind a 4-byte start code; ``timestamp``: RTP
    timestamp (90 kHz); ``keyframe``: it holds an IDR slice and SPS/PPS are known
    (in it or earlier in the stream); ``complete``: every packet arrived and every
    fragment was whole. An incomplete unit carries only the NAL units that
    arrived intact.
    """

    def __init__(self, data, long long timestamp, keyframe=False, complete=True):
        self.data = bytes(data)
        self.timestamp = timestamp
        self.keyframe = bool(keyframe)
        self.complete = bool(complete)

    def __repr__(self):
        return (
            f"AccessUnit(ts={self.timestamp}, {len(self.data)} bytes, "
            f"keyframe={self.keyframe}, complete={self.complete})"
        )

    def __eq__(self, other):
        if not isinstance(other, AccessUnit):
            return NotImplemented
        cdef AccessUnit o = <AccessUnit>other
        return (self.data, self.timestamp, self.keyframe, self.complete) == (
            o.data, o.timestamp, o.keyframe, o.complete
        )

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = None


cdef class H264Depacketizer:
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

    def __cinit__(self):
        self._buf = NULL
        self._len = 0
        self._cap = 0
        self._in_fu = False
        self._fu_start = 0
        self._timestamp = -1
        self._expected = -1
        self._broken = False
        self._idr = False
        self._have_sps = False
        self._have_pps = False

    def __init__(self):
        self.packets = 0
        self.lost = 0
        self.late = 0
        self.malformed = 0
        self.unsupported = 0
        self.units = 0
        self.incomplete = 0

    def __dealloc__(self):
        free(self._buf)

    cdef int _reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t need = self._len + extra
        cdef Py_ssize_t cap
        cdef unsigned char* nb
        if need <= self._cap:
            return 0
        cap = self._cap * 2 if self._cap else 65536
        while cap < need:
            cap *= 2
        nb = <unsigned char*>realloc(self._buf, cap)
        if nb == NULL:
            raise MemoryError()
        self._buf = nb
        self._cap = cap
        return 0

    cdef int _append(self, const unsigned char* data, Py_ssize_t n) except -1:
        self._reserve(n + 4)
        self._buf[self._len] = 0
        self._buf[self._len + 1] = 0
        self._buf[self._len + 2] = 0
        self._buf[self._len + 3] = 1
        memcpy(self._buf + self._len + 4, data, n)
        self._len += n + 4
        return 0

    cdef void _add_nal_type(self, int t) noexcept:
        if t == NAL_TYPE_SPS:
            self._have_sps = True
        elif t == NAL_TYPE_PPS:
            self._have_pps = True
        elif t == NAL_TYPE_IDR:
            self._idr = True

    cdef void _drop_fu(self) noexcept:
        if self._in_fu:
            self._len = self._fu_start
            self._in_fu = False
            self._broken = True

    def push(self, RtpPacket packet not None):
        """Add one packet; returns the access units it completes (zero, one or two)."""
        cdef list out = []
        cdef long long seq = packet.sequence_number
        cdef bint gap = False
        cdef int d
        if self._expected >= 0:
            d = c_seq_diff(seq, self._expected)
            if d < 0:
                self.late += 1
                return out
            if d > 0:
                self.lost += d
                gap = True
        self.packets += 1
        self._expected = (seq + 1) & 0xFFFF
        if self._timestamp >= 0 and packet.timestamp != self._timestamp:
            self._broken = True
            out.append(self._finish())
        if gap:
            self._broken = True
            if self._in_fu:
                self._len = self._fu_start
                self._in_fu = False
        self._timestamp = packet.timestamp
        self._payload(packet)
        if packet.marker:
            out.append(self._finish())
        return out

    def flush(self):
        """The unit in progress, if any, as an incomplete unit (end of stream)."""
        if self._timestamp < 0:
            return []
        self._broken = True
        return [self._finish()]

    cdef int _payload(self, RtpPacket packet) except -1:
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(packet._src) + packet._off
        cdef Py_ssize_t n = packet._plen
        cdef Py_ssize_t pos, size
        cdef int header, t
        if packet._prefix_len == 2:  # an FU-A view made by the packetizer: header bytes apart
            return self._fu_a(packet._prefix[0], packet._prefix[1], p, n)
        if packet._prefix_len:  # never made by vcore; handle generally
            p = <const unsigned char*>PyBytes_AS_STRING(packet.payload)
            n = packet._plen
        if n == 0:
            self.malformed += 1
            self._broken = True
            return 0
        header = p[0]
        t = header & 0x1F
        if 1 <= t <= 23:
            self._drop_fu()
            self._append(p, n)
            self._add_nal_type(t)
        elif t == NAL_TYPE_STAP_A:
            self._drop_fu()
            pos = 1
            while pos < n:  # validate the whole aggregate first
                if pos + 2 > n:
                    self.malformed += 1
                    self._broken = True
                    return 0
                size = (p[pos] << 8) | p[pos + 1]
                pos += 2
                if size == 0 or pos + size > n:
                    self.malformed += 1
                    self._broken = True
                    return 0
                pos += size
            if n == 1:
                self.malformed += 1
                self._broken = True
                return 0
            pos = 1
            while pos < n:
                size = (p[pos] << 8) | p[pos + 1]
                self._append(p + pos + 2, size)
                self._add_nal_type(p[pos + 2] & 0x1F)
                pos += 2 + size
        elif t == NAL_TYPE_FU_A:
            if n < 3:
                self.malformed += 1
                self._broken = True
                if self._in_fu:
                    self._len = self._fu_start
                    self._in_fu = False
                return 0
            return self._fu_a(header, p[1], p + 2, n - 2)
        elif t == NAL_TYPE_STAP_B or t == NAL_TYPE_MTAP16 or t == NAL_TYPE_MTAP24 or t == NAL_TYPE_FU_B:
            self.unsupported += 1
            self._broken = True
            if self._in_fu:
                self._len = self._fu_start
                self._in_fu = False
        return 0

    cdef int _fu_a(self, int header, int fu_header, const unsigned char* data, Py_ssize_t size) except -1:
        """One FU-A fragment: ``header`` is the FU indicator, ``data`` the fragment after the FU header."""
        cdef unsigned char nal_header
        if size < 1:
            self.malformed += 1
            self._broken = True
            if self._in_fu:
                self._len = self._fu_start
                self._in_fu = False
            return 0
        if fu_header & 0x80:
            if self._in_fu:
                self._len = self._fu_start
                self._in_fu = False
                self._broken = True
            if fu_header & 0x40:
                self.malformed += 1
                self._broken = True
                return 0
            self._fu_start = self._len
            self._in_fu = True
            self._fu_type = fu_header & 0x1F
            nal_header = (header & 0xE0) | (fu_header & 0x1F)
            self._append(&nal_header, 1)
        elif not self._in_fu:
            self._broken = True
            return 0
        self._reserve(size)
        memcpy(self._buf + self._len, data, size)
        self._len += size
        if fu_header & 0x40:
            self._in_fu = False
            self._add_nal_type(self._fu_type)  # the reassembled header's type, as the twin reads it
        return 0

    cdef AccessUnit _finish(self):
        if self._in_fu:
            self._len = self._fu_start
            self._in_fu = False
            self._broken = True
        cdef AccessUnit unit = AccessUnit.__new__(AccessUnit)
        unit.data = PyBytes_FromStringAndSize(<const char*>self._buf, self._len) if self._len else b""
        unit.timestamp = self._timestamp
        unit.keyframe = self._idr and self._have_sps and self._have_pps
        unit.complete = not self._broken
        self.units += 1
        if self._broken:
            self.incomplete += 1
        self._len = 0
        self._idr = False
        self._broken = False
        self._timestamp = -1
        return unit


# --------------------------------------------------------------------------
# G.711 (ITU-T G.711), bit-exact with FFmpeg's pcm_mulaw / pcm_alaw
# --------------------------------------------------------------------------

cdef short _ulaw_dec[256]
cdef short _alaw_dec[256]
cdef unsigned char _ulaw_enc[16384]
cdef unsigned char _alaw_enc[16384]


cdef int _ulaw_to_linear(int code) noexcept:
    cdef int u = ~code & 0xFF
    cdef int t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


cdef int _alaw_to_linear(int code) noexcept:
    cdef int a = code ^ 0x55
    cdef int mantissa = a & 0x0F
    cdef int segment = (a & 0x70) >> 4
    cdef int t
    if segment:
        t = (2 * mantissa + 33) << (segment + 2)
    else:
        t = (2 * mantissa + 1) << 3
    return t if a & 0x80 else -t


cdef void _build_tables() noexcept:
    cdef int c
    for c in range(256):
        _ulaw_dec[c] = <short>_ulaw_to_linear(c)
        _alaw_dec[c] = <short>_alaw_to_linear(c)
    _build_encode(_ulaw_enc, _ulaw_dec, 0xFF)
    _build_encode(_alaw_enc, _alaw_dec, 0xD5)


cdef void _build_encode(unsigned char* table, short* dec, int mask) noexcept:
    cdef int level, j, lo, hi, threshold
    table[8192] = mask
    j = 1
    for level in range(127):
        lo = dec[level ^ mask]
        hi = dec[(level + 1) ^ mask]
        threshold = (lo + hi + 4) >> 3
        while j < threshold:
            table[8192 - j] = level ^ (mask ^ 0x80)
            table[8192 + j] = level ^ mask
            j += 1
    while j < 8192:
        table[8192 - j] = 127 ^ (mask ^ 0x80)
        table[8192 + j] = 127 ^ mask
        j += 1
    table[0] = table[1]


_build_tables()


cdef object _pcm_view(object pcm):
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise TypeError(f"G.711 encoder needs int16 PCM, got {pcm.dtype}")
        return memoryview(np.ascontiguousarray(pcm).reshape(-1))
    raw = memoryview(pcm).cast("B")
    if raw.nbytes % 2:
        raise ValueError(f"int16 PCM needs an even number of bytes, got {raw.nbytes}")
    return raw.cast("h")


@cython.boundscheck(False)
def g711_encode(pcm, bint alaw):
    """Encode native-endian int16 PCM to G.711 µ-law (``alaw=False``) or A-law codes."""
    cdef const short[::1] samples = _pcm_view(pcm)
    cdef Py_ssize_t n = samples.shape[0], i
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char* q = <unsigned char*>PyBytes_AS_STRING(out)
    cdef const unsigned char* table = _ulaw_enc
    if alaw:
        table = _alaw_enc
    with nogil:
        for i in range(n):
            q[i] = table[(samples[i] + 32768) >> 2]
    return out


@cython.boundscheck(False)
def g711_decode(data, bint alaw):
    """Decode G.711 codes to native-endian int16 PCM bytes."""
    cdef const unsigned char[::1] codes = memoryview(data).cast("B")
    cdef Py_ssize_t n = codes.shape[0], i
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 2 * n)
    cdef short* q = <short*>PyBytes_AS_STRING(out)
    cdef const short* table = _ulaw_dec
    if alaw:
        table = _alaw_dec
    with nogil:
        for i in range(n):
            q[i] = table[codes[i]]
    return out
