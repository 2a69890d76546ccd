# cython: language_level=3
"""Compiled SRTP/SRTCP packet kernels.

Twin of ``vcore._fastpath_srtp_py``: same names, results, exceptions and messages.
RTP/RTCP header scanning, counter blocks and nonces, keystream XOR, rollover-counter
estimation (RFC 3711 Appendix A), replay windows, tag comparison and per-SSRC
bookkeeping. The cryptographic primitives are ``cryptography`` objects handed in by
``vcore.srtp``: an AES-ECB encryptor context (its ``update_into`` turns a buffer of
counter blocks into AES-CM keystream, for one packet or a whole batch), a keyed
HMAC-SHA1 template (``copy``/``update``/``finalize``) or an ``AESGCM`` object
(``encrypt_into``/``decrypt_into``). Nothing here implements a cipher or a hash.
"""

cimport cython
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, realloc
from libc.string cimport memcmp, memcpy, memset
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

from cryptography.exceptions import InvalidTag

from .errors import ParseError, SrtpAuthError, SrtpLimitError, SrtpReplayError


cdef extern from "Python.h":
    object PyMemoryView_FromMemory(char *mem, Py_ssize_t size, int flags)
    int PyBUF_READ
    int PyBUF_WRITE


CIPHER_NULL = 0
CIPHER_AES_CM = 1
CIPHER_AES_GCM = 2

REPLAY_OK = 0
REPLAY_SEEN = 1
REPLAY_TOO_OLD = 2

MIN_WINDOW = 64
MAX_WINDOW = 32768

SRTP_INDEX_MAX = (1 << 48) - 1
ROC_PROBE_SEQ_LIMIT = 0x8000
SRTCP_INDEX_MAX = (1 << 31) - 1
SRTCP_E_BIT = 0x80000000

RTP_HEADER_MIN = 12
RTCP_HEADER_MIN = 8
MAX_PACKET = 65535 + 64
GCM_TAG_LEN = 16

cdef enum:
    C_NULL = 0
    C_CM = 1
    C_GCM = 2
    C_MAX_PACKET = 65535 + 64
    C_SRTCP_INDEX_MAX = 0x7FFFFFFF
    C_ROC_PROBE_SEQ_LIMIT = 0x8000  # see unprotect: a new SSRC right after a wrap tries ROC + 1

cdef int64_t C_INDEX_MAX = 0xFFFFFFFFFFFF


# -- small helpers -------------------------------------------------------------------

cdef inline uint32_t _be32(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline void _put32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


cdef inline bint _ct_equal(const uint8_t *a, const uint8_t *b, Py_ssize_t n) noexcept nogil:
    """Constant-time comparison of two tags."""
    cdef uint8_t acc = 0
    cdef Py_ssize_t i
    for i in range(n):
        acc |= a[i] ^ b[i]
    return acc == 0


@cython.boundscheck(False)
cdef inline void _xor(uint8_t *dst, const uint8_t *src, const uint8_t *ks, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint64_t a, b
    cdef Py_ssize_t words = n >> 3
    for i in range(words):
        memcpy(&a, src + 8 * i, 8)
        memcpy(&b, ks + 8 * i, 8)
        a ^= b
        memcpy(dst + 8 * i, &a, 8)
    for i in range(words * 8, n):
        dst[i] = src[i] ^ ks[i]


@cython.boundscheck(False)
cdef inline void _counter_blocks(uint8_t *out, const uint8_t *salt, uint32_t ssrc,
                                 uint64_t index, Py_ssize_t nblocks) noexcept nogil:
    """RFC 3711 §4.1.1: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16), then IV + j."""
    cdef uint8_t iv[16]
    cdef Py_ssize_t j
    cdef int k
    cdef uint32_t c
    memcpy(iv, salt, 14)
    iv[14] = 0
    iv[15] = 0
    iv[4] ^= <uint8_t>(ssrc >> 24)
    iv[5] ^= <uint8_t>(ssrc >> 16)
    iv[6] ^= <uint8_t>(ssrc >> 8)
    iv[7] ^= <uint8_t>ssrc
    for k in range(6):
        iv[8 + k] ^= <uint8_t>(index >> (40 - 8 * k))
    for j in range(nblocks):
        memcpy(out + 16 * j, iv, 16)
        if j:
            # the low 16 bits of the IV are zero and j < 2^16 within one packet; a carry
            # into the upper bytes only happens for the long test keystreams
            c = <uint32_t>j
            k = 15
            while c and k >= 0:
                c += out[16 * j + k]
                out[16 * j + k] = <uint8_t>c
                c >>= 8
                k -= 1


cdef object _ParseError = ParseError


cdef Py_ssize_t _rtp_hlen(const uint8_t *p, Py_ssize_t n) except -1:
    cdef Py_ssize_t hlen
    if n < 12:
        raise ParseError(f"RTP packet too short ({n} bytes, header needs 12)")
    if p[0] >> 6 != 2:
        raise ParseError(f"not an RTP version 2 packet (version {p[0] >> 6})")
    hlen = 12 + 4 * (p[0] & 0x0F)
    if p[0] & 0x10:
        if n < hlen + 4:
            raise ParseError(f"RTP packet too short for its header extension ({n} bytes)")
        hlen += 4 + 4 * ((<Py_ssize_t>p[hlen + 2] << 8) | p[hlen + 3])
    if n < hlen:
        raise ParseError(f"RTP packet too short for its header ({n} bytes, header {hlen})")
    return hlen


cdef inline int64_t _estimate(uint32_t seq, int64_t highest) noexcept nogil:
    cdef int64_t roc = highest >> 16
    cdef int64_t s_l = highest & 0xFFFF
    if s_l < 0x8000:
        if <int64_t>seq - s_l > 0x8000 and roc > 0:
            roc -= 1
    elif s_l - 0x8000 > <int64_t>seq:
        roc += 1
    return (roc << 16) | seq


def rtp_header_length(packet):
    """Length of the RTP header (fixed part, CSRCs, extension) that SRTP leaves in clear."""
    cdef Py_buffer pb
    PyObject_GetBuffer(packet, &pb, PyBUF_SIMPLE)
    try:
        return _rtp_hlen(<const uint8_t *>pb.buf, pb.len)
    finally:
        PyBuffer_Release(&pb)


def estimate_index(long long seq, long long highest):
    """RFC 3711 Appendix A: the 48-bit index of ``seq`` given the highest index seen."""
    return _estimate(<uint32_t>seq, highest)


def cm_keystream(crypto, salt, unsigned int ssrc, unsigned long long index, Py_ssize_t length):
    """AES-CM keystream (RFC 3711 §4.1.1) of ``length`` octets for one packet."""
    cdef bytes s = bytes(salt)
    cdef Py_ssize_t nblocks = (length + 15) >> 4
    cdef bytearray ctr = bytearray(nblocks * 16)
    _counter_blocks(<uint8_t *>(<char *>ctr), <const uint8_t *>PyBytes_AS_STRING(s), ssrc,
                    index, nblocks)
    return crypto.update(bytes(ctr))[:length]


# -- replay window -------------------------------------------------------------------

@cython.final
cdef class ReplayWindow:
    """Sliding replay window (RFC 3711 §3.3.2) over packet indices; a ring of bits.

    ``size`` indices back from the highest one seen are remembered; older ones are
    too old. Not thread-safe.
    """

    cdef uint64_t *_bits
    cdef int _size
    cdef int64_t _mask
    cdef public long long highest

    def __cinit__(self, int size=128):
        cdef int64_t nbits = 64
        if not MIN_WINDOW <= size <= MAX_WINDOW:
            raise ValueError(f"replay window must be {MIN_WINDOW}..{MAX_WINDOW} packets, not {size}")
        while nbits < size:
            nbits <<= 1
        self._size = size
        self._mask = nbits - 1
        self._bits = <uint64_t *>calloc(nbits // 64, 8)
        if self._bits == NULL:
            raise MemoryError()
        self.highest = -1

    def __dealloc__(self):
        free(self._bits)

    @property
    def size(self):
        return self._size

    cpdef ReplayWindow copy(self):
        """An independent window in the same state."""
        cdef ReplayWindow w = ReplayWindow(self._size)
        memcpy(w._bits, self._bits, ((self._mask + 1) >> 6) * 8)
        w.highest = self.highest
        return w

    cdef inline bint _bit(self, int64_t index) noexcept:
        cdef int64_t pos = index & self._mask
        return (self._bits[pos >> 6] >> (pos & 63)) & 1

    cpdef int check(self, long long index):
        """``REPLAY_OK``, ``REPLAY_SEEN`` or ``REPLAY_TOO_OLD`` for ``index``; changes nothing."""
        cdef int64_t h = self.highest
        if h < 0 or index > h:
            return 0
        if h - index >= self._size:
            return 2
        if self._bit(index):
            return 1
        return 0

    cpdef void add(self, long long index):
        """Record ``index`` as received (after it authenticated)."""
        cdef int64_t h = self.highest
        cdef int64_t i, pos
        if h < 0 or index - h > self._mask:
            memset(self._bits, 0, ((self._mask + 1) >> 6) * 8)
            self.highest = index
        elif index > h:
            i = h + 1
            while i < index:
                pos = i & self._mask
                self._bits[pos >> 6] &= ~(<uint64_t>1 << (pos & 63))
                i += 1
            self.highest = index
        elif h - index >= self._size:
            return  # older than the window: nothing to remember
        pos = index & self._mask
        self._bits[pos >> 6] |= <uint64_t>1 << (pos & 63)


@cython.final
cdef class KeyUsage:
    """Packets counted against one master key's limit (RFC 3711 §9.2), shared by both
    directions of a session. Not thread-safe."""

    cdef public long long count
    cdef public long long limit
    cdef public str what

    def __init__(self, long long limit, str what):
        self.count = 0
        self.limit = limit
        self.what = what

    cdef int check(self, long long n) except -1:
        if self.count + n > self.limit:
            raise SrtpLimitError(
                f"master key reached its limit of {self.limit} {self.what} packets "
                "(RFC 3711 §9.2); re-key the session"
            )
        return 0

    def _check(self, long long n):
        self.check(n)


cdef object _reuse_error(uint32_t ssrc, int64_t index):
    return SrtpReplayError(
        f"refusing to protect SRTP index {index} of SSRC 0x{ssrc:08x} again: its keystream is used (RFC 3711 §9.1)"
    )


cdef object _index_limit_error(uint32_t ssrc):
    return SrtpLimitError(
        f"SRTP index of SSRC 0x{ssrc:08x} would pass 2^48 (rollover counter exhausted); re-key"
    )


# -- the transform -------------------------------------------------------------------

cdef class SrtpTransform:
    """One direction (protect or unprotect) of SRTP or SRTCP under one master key.

    ``cipher`` is ``CIPHER_AES_CM`` (``crypto`` an AES-ECB encryptor context), ``CIPHER_AES_GCM``
    (``crypto`` an ``AESGCM``) or ``CIPHER_NULL`` (``crypto`` is None). ``mac`` is a keyed
    ``cryptography`` HMAC-SHA1 template (None for GCM). Per-SSRC state is created on the first
    packet protected, or on the first authentic packet received. Not thread-safe.
    """

    cdef bint _rtcp
    cdef int _cipher
    cdef object _crypto
    cdef object _update_into
    cdef object _mac_copy
    cdef uint8_t _salt[14]
    cdef int _tag_len
    cdef bytes _mki
    cdef Py_ssize_t _mki_len
    cdef int _window
    cdef KeyUsage _usage
    cdef dict _streams
    cdef dict _pending
    cdef public long long packets
    cdef public long long auth_failures
    cdef public long long replays
    # the last stream used (most sessions carry one SSRC per direction)
    cdef ReplayWindow _last
    cdef uint32_t _last_ssrc
    # scratch: counter blocks, keystream, MAC input
    cdef uint8_t *_ctr
    cdef uint8_t *_ks
    cdef Py_ssize_t _cap
    cdef object _ks_view
    cdef uint8_t *_scratch
    cdef Py_ssize_t _scratch_cap

    def __cinit__(self):
        self._ctr = NULL
        self._ks = NULL
        self._scratch = NULL
        self._cap = 0
        self._scratch_cap = 0

    def __init__(self, bint rtcp, int cipher, crypto, salt, mac, int tag_len, mki, int window,
                 KeyUsage usage):
        cdef bytes s = bytes(salt)
        if cipher == C_GCM:
            if len(s) != 12:
                raise ValueError("AES-GCM needs a 12-octet session salt")
            tag_len = 16
        elif len(s) != 14:
            raise ValueError("AES-CM needs a 14-octet session salt")
        if not MIN_WINDOW <= window <= MAX_WINDOW:
            raise ValueError(f"replay window must be {MIN_WINDOW}..{MAX_WINDOW} packets, not {window}")
        self._rtcp = rtcp
        self._cipher = cipher
        self._crypto = crypto
        memset(self._salt, 0, 14)
        memcpy(self._salt, PyBytes_AS_STRING(s), len(s))
        self._update_into = crypto.update_into if cipher == C_CM else None
        self._mac_copy = mac.copy if mac is not None else None
        self._tag_len = tag_len
        self._mki = bytes(mki)
        self._mki_len = len(self._mki)
        self._window = window
        self._usage = usage
        self._streams = {}
        self._pending = {}
        self.packets = 0
        self.auth_failures = 0
        self.replays = 0
        self._last = None
        self._last_ssrc = 0
        self._reserve(1500 + 64)

    def __dealloc__(self):
        free(self._ctr)
        free(self._ks)
        free(self._scratch)

    cdef int _reserve(self, Py_ssize_t nbytes) except -1:
        """Room for ``nbytes`` of counter blocks and keystream (whole blocks)."""
        cdef Py_ssize_t cap = ((nbytes + 15) & ~15) + 16
        cdef uint8_t *a
        cdef uint8_t *b
        if cap <= self._cap:
            return 0
        a = <uint8_t *>realloc(self._ctr, cap)
        if a == NULL:
            raise MemoryError()
        self._ctr = a
        b = <uint8_t *>realloc(self._ks, cap + 16)
        if b == NULL:
            raise MemoryError()
        self._ks = b
        self._cap = cap
        self._ks_view = PyMemoryView_FromMemory(<char *>self._ks, cap + 16, PyBUF_WRITE)
        return 0

    cdef uint8_t *_scratch_for(self, Py_ssize_t n) except NULL:
        cdef uint8_t *a
        if n > self._scratch_cap:
            a = <uint8_t *>realloc(self._scratch, n + 64)
            if a == NULL:
                raise MemoryError()
            self._scratch = a
            self._scratch_cap = n + 64
        return self._scratch

    # -- bookkeeping -----------------------------------------------------------------
    @property
    def ssrcs(self):
        """SSRCs with a stream context in this direction."""
        return sorted(self._streams)

    def roc(self, ssrc):
        """The rollover counter of ``ssrc`` (SRTP), or its highest SRTCP index; None if unknown."""
        w = self._streams.get(ssrc)
        if w is None:
            return None
        return (<ReplayWindow>w).highest if self._rtcp else (<ReplayWindow>w).highest >> 16

    def set_roc(self, ssrc, roc):
        """Set the rollover counter of ``ssrc`` (RFC 3711 §3.3.1: signalled out of band).

        For an SRTCP transform, sets the next SRTCP index to send instead.
        """
        cdef ReplayWindow w
        if self._rtcp:
            if not 0 <= roc <= SRTCP_INDEX_MAX + 1:
                raise ValueError("SRTCP index must be in 0..2^31")
            w = self._streams.get(ssrc)
            if w is None:
                self._pending[ssrc] = roc
            else:
                w.highest = roc - 1
            return
        if not 0 <= roc <= 0xFFFFFFFF:
            raise ValueError("ROC must be a 32-bit unsigned integer")
        w = self._streams.get(ssrc)
        if w is None:
            self._pending[ssrc] = roc << 16
        else:
            w.highest = (roc << 16) | (w.highest & 0xFFFF)

    cdef inline ReplayWindow _stream(self, uint32_t ssrc):
        cdef object w
        if self._last is not None and self._last_ssrc == ssrc:
            return self._last
        w = self._streams.get(ssrc)
        if w is None:
            return None
        self._last = <ReplayWindow>w
        self._last_ssrc = ssrc
        return self._last

    cdef ReplayWindow _new_stream(self, uint32_t ssrc):
        cdef ReplayWindow w = ReplayWindow(self._window)
        self._streams[ssrc] = w
        if self._pending:
            self._pending.pop(ssrc, None)
        self._last = w
        self._last_ssrc = ssrc
        return w

    cdef object _replay_error(self, uint32_t ssrc, int64_t index, int result):
        self.replays += 1
        kind = "SRTCP" if self._rtcp else "SRTP"
        if result == 1:
            return SrtpReplayError(f"replayed {kind} packet (SSRC 0x{ssrc:08x}, index {index})")
        return SrtpReplayError(
            f"{kind} packet too old for the replay window (SSRC 0x{ssrc:08x}, index {index})"
        )

    cdef object _auth_error(self):
        self.auth_failures += 1
        return SrtpAuthError(f"{'SRTCP' if self._rtcp else 'SRTP'} authentication failed")

    cdef int _mac_into(self, const uint8_t *data, Py_ssize_t n, uint8_t *tag_out) except -1:
        """HMAC-SHA1 over data[0:n] truncated to the tag length, into tag_out."""
        h = self._mac_copy()
        h.update(PyMemoryView_FromMemory(<char *>data, n, PyBUF_READ))
        cdef bytes d = h.finalize()
        memcpy(tag_out, PyBytes_AS_STRING(d), self._tag_len)
        return 0

    cdef const uint8_t *_keystream(self, uint32_t ssrc, uint64_t index, Py_ssize_t n) except NULL:
        cdef Py_ssize_t nblocks = (n + 15) >> 4
        if nblocks == 0:
            return self._ks
        self._reserve(nblocks * 16)
        _counter_blocks(self._ctr, self._salt, ssrc, index, nblocks)
        self._update_into(PyMemoryView_FromMemory(<char *>self._ctr, nblocks * 16, PyBUF_READ),
                          self._ks_view)
        return self._ks

    # -- SRTP ------------------------------------------------------------------------
    cdef int64_t _next_index(self, uint32_t ssrc, uint32_t seq, ReplayWindow w) except -1:
        cdef int64_t index
        if w is None:
            if self._pending:
                pend = self._pending.get(ssrc)
                index = seq if pend is None else (<int64_t>pend | seq)
            else:
                index = seq
        else:
            index = _estimate(seq, w.highest)
        if index > C_INDEX_MAX:
            raise _index_limit_error(ssrc)
        return index

    cdef inline int _commit(self, uint32_t ssrc, int64_t index, ReplayWindow w) except -1:
        if w is None:
            w = self._new_stream(ssrc)
        w.add(index)
        return 0

    cdef bytes _protect_one(self, const uint8_t *p, Py_ssize_t n, Py_ssize_t hlen, uint32_t ssrc,
                            int64_t index, const uint8_t *ks):
        cdef Py_ssize_t plen = n - hlen
        cdef bytes out
        cdef uint8_t *o
        cdef uint8_t nonce[12]
        cdef int k
        if self._cipher == C_GCM:
            out = PyBytes_FromStringAndSize(NULL, n + 16 + self._mki_len)
            o = <uint8_t *>PyBytes_AS_STRING(out)
            memcpy(o, p, hlen)
            self._gcm_nonce(nonce, ssrc, index)
            self._crypto.encrypt_into(
                PyBytes_FromStringAndSize(<char *>nonce, 12),
                PyMemoryView_FromMemory(<char *>p + hlen, plen, PyBUF_READ),
                PyMemoryView_FromMemory(<char *>p, hlen, PyBUF_READ),
                PyMemoryView_FromMemory(<char *>o + hlen, plen + 16, PyBUF_WRITE),
            )
            if self._mki_len:
                memcpy(o + n + 16, PyBytes_AS_STRING(self._mki), self._mki_len)
            return out
        out = PyBytes_FromStringAndSize(NULL, n + self._mki_len + self._tag_len)
        o = <uint8_t *>PyBytes_AS_STRING(out)
        if self._cipher == C_CM:
            if ks == NULL:
                ks = self._keystream(ssrc, index, plen)
            memcpy(o, p, hlen)
            _xor(o + hlen, p + hlen, ks, plen)
        else:
            memcpy(o, p, n)
        # RFC 3711 §4.2: the tag covers header || encrypted payload || ROC
        _put32(o + n, <uint32_t>(index >> 16))
        self._mac_into(o, n + 4, o + n + self._mki_len)
        if self._mki_len:
            memcpy(o + n, PyBytes_AS_STRING(self._mki), self._mki_len)
        return out

    cdef inline void _gcm_nonce(self, uint8_t *nonce, uint32_t ssrc, int64_t index) noexcept:
        """RFC 7714 §8.1 / §9.1: (SSRC * 2^48 + index) XOR the 12-octet salt."""
        cdef int k
        nonce[0] = self._salt[0]
        nonce[1] = self._salt[1]
        for k in range(4):
            nonce[2 + k] = self._salt[2 + k] ^ <uint8_t>(ssrc >> (24 - 8 * k))
        for k in range(6):
            nonce[6 + k] = self._salt[6 + k] ^ <uint8_t>(index >> (40 - 8 * k))

    cpdef bytes protect(self, packet):
        """SRTP-protect one RTP packet (RFC 3711 §3.3); a repeated index is refused (:class:`SrtpReplayError`)."""
        cdef Py_buffer pb
        cdef const uint8_t *p
        cdef Py_ssize_t n, hlen
        cdef uint32_t ssrc, seq
        cdef int64_t index
        cdef ReplayWindow w
        cdef bytes out
        PyObject_GetBuffer(packet, &pb, PyBUF_SIMPLE)
        try:
            p = <const uint8_t *>pb.buf
            n = pb.len
            if n > C_MAX_PACKET:
                raise ParseError(f"RTP packet too long ({n} bytes)")
            hlen = _rtp_hlen(p, n)
            seq = (<uint32_t>p[2] << 8) | p[3]
            ssrc = _be32(p + 8)
            self._usage.check(1)
            w = self._stream(ssrc)
            index = self._next_index(ssrc, seq, w)
            if w is not None and w.check(index) != 0:  # REPLAY_OK
                raise _reuse_error(ssrc, index)
            out = self._protect_one(p, n, hlen, ssrc, index, NULL)
            self._commit(ssrc, index, w)
            self._usage.count += 1
            self.packets += 1
            return out
        finally:
            PyBuffer_Release(&pb)

    def protect_many(self, packets):
        """``[protect(p) for p in packets]``, checked first so that a bad packet changes nothing."""
        cdef list pkts = [x if type(x) is bytes else bytes(x) for x in packets]
        cdef Py_ssize_t count = len(pkts)
        cdef Py_ssize_t i, n, hlen, total_blocks = 0, nb
        cdef const uint8_t *p
        cdef uint32_t ssrc, seq
        cdef int64_t index
        cdef dict highest = {}
        cdef dict trial = {}  # SSRC -> a copy of its window, advanced packet by packet as protect() would
        cdef ReplayWindow tw
        cdef uint32_t cur_ssrc = 0
        cdef int64_t cur_h = -1, h64
        cdef bint have_cur = False
        cdef ReplayWindow w
        cdef list out
        cdef bytes b
        cdef int64_t *idx
        cdef Py_ssize_t *hl
        cdef Py_ssize_t *off
        if count == 0:
            return []
        idx = <int64_t *>calloc(count, sizeof(int64_t))
        hl = <Py_ssize_t *>calloc(count, sizeof(Py_ssize_t))
        off = <Py_ssize_t *>calloc(count, sizeof(Py_ssize_t))
        if idx == NULL or hl == NULL or off == NULL:
            free(idx)
            free(hl)
            free(off)
            raise MemoryError()
        try:
            # 1. scan and number every packet without touching the streams
            for i in range(count):
                b = <bytes>pkts[i]
                p = <const uint8_t *>PyBytes_AS_STRING(b)
                n = len(b)
                if n > C_MAX_PACKET:
                    raise ParseError(f"RTP packet too long ({n} bytes)")
                hlen = _rtp_hlen(p, n)
                seq = (<uint32_t>p[2] << 8) | p[3]
                ssrc = _be32(p + 8)
                if have_cur and ssrc == cur_ssrc:
                    h64 = cur_h
                else:
                    if have_cur:
                        highest[cur_ssrc] = cur_h
                    h = highest.get(ssrc)
                    h64 = -1 if h is None else <int64_t>h
                    cur_ssrc = ssrc
                    have_cur = True
                if h64 >= 0:
                    index = _estimate(seq, h64)
                    if index > C_INDEX_MAX:
                        raise _index_limit_error(ssrc)
                else:
                    # first packet of this SSRC in the batch: number it as protect() would
                    w = self._stream(ssrc)
                    index = self._next_index(ssrc, seq, w)
                    if w is not None and w.highest > index:
                        h64 = w.highest
                cur_h = index if index > h64 else h64
                tw = trial.get(ssrc)
                if tw is None:
                    w = self._stream(ssrc)
                    tw = w.copy() if w is not None else ReplayWindow(self._window)
                    trial[ssrc] = tw
                if tw.check(index) != 0:  # REPLAY_OK
                    raise _reuse_error(ssrc, index)
                tw.add(index)
                idx[i] = index
                hl[i] = hlen
                off[i] = total_blocks * 16
                total_blocks += (n - hlen + 15) >> 4
            self._usage.check(count)
            # 2. one AES call for the keystream of the whole batch
            if self._cipher == C_CM and total_blocks:
                self._reserve(total_blocks * 16)
                for i in range(count):
                    b = <bytes>pkts[i]
                    p = <const uint8_t *>PyBytes_AS_STRING(b)
                    nb = (len(b) - hl[i] + 15) >> 4
                    _counter_blocks(self._ctr + off[i], self._salt, _be32(p + 8), idx[i], nb)
                self._update_into(
                    PyMemoryView_FromMemory(<char *>self._ctr, total_blocks * 16, PyBUF_READ),
                    self._ks_view)
            # 3. XOR, tag, commit
            out = [None] * count
            for i in range(count):
                b = <bytes>pkts[i]
                p = <const uint8_t *>PyBytes_AS_STRING(b)
                out[i] = self._protect_one(p, len(b), hl[i], _be32(p + 8), idx[i],
                                           self._ks + off[i])
            for i in range(count):
                b = <bytes>pkts[i]
                ssrc = _be32(<const uint8_t *>PyBytes_AS_STRING(b) + 8)
                self._commit(ssrc, idx[i], self._stream(ssrc))
            self._usage.count += count
            self.packets += count
            return out
        finally:
            free(idx)
            free(hl)
            free(off)

    cdef object _open(self, const uint8_t *p, Py_ssize_t n, Py_ssize_t hlen, Py_ssize_t end,
                      uint32_t ssrc, int64_t index):
        """Authenticate and decrypt one SRTP packet under ``index``: the RTP packet, or None if
        the tag does not verify. Changes nothing."""
        cdef bytes out
        cdef uint8_t *o
        cdef uint8_t *sc
        cdef uint8_t tag[20]
        cdef uint8_t nonce[12]
        if self._cipher == C_GCM:
            out = PyBytes_FromStringAndSize(NULL, end)
            o = <uint8_t *>PyBytes_AS_STRING(out)
            memcpy(o, p, hlen)
            self._gcm_nonce(nonce, ssrc, index)
            try:
                self._crypto.decrypt_into(
                    PyBytes_FromStringAndSize(<char *>nonce, 12),
                    PyMemoryView_FromMemory(<char *>p + hlen, end - hlen + 16, PyBUF_READ),
                    PyMemoryView_FromMemory(<char *>p, hlen, PyBUF_READ),
                    PyMemoryView_FromMemory(<char *>o + hlen, end - hlen, PyBUF_WRITE),
                )
            except InvalidTag:
                return None
            return out
        sc = self._scratch_for(end + 4)
        memcpy(sc, p, end)
        _put32(sc + end, <uint32_t>(index >> 16))
        self._mac_into(sc, end + 4, tag)
        if not _ct_equal(tag, p + n - self._tag_len, self._tag_len):
            return None
        out = PyBytes_FromStringAndSize(NULL, end)
        o = <uint8_t *>PyBytes_AS_STRING(out)
        if self._cipher == C_CM:
            memcpy(o, p, hlen)
            _xor(o + hlen, p + hlen, self._keystream(ssrc, index, end - hlen), end - hlen)
        else:
            memcpy(o, p, end)
        return out

    cpdef bytes unprotect(self, packet):
        """Verify and decrypt one SRTP packet (RFC 3711 §3.3); state moves only on success.

        A packet of an SSRC with no authenticated packet yet that fails under its estimated
        index (ROC 0, or the ROC given to ``set_roc``) and has SEQ < ``ROC_PROBE_SEQ_LIMIT`` is
        tried once more under ROC + 1: the sender may have wrapped before the receiver's first
        packet (RFC 3711 §3.3.1). If that verifies, the stream starts there.
        """
        cdef Py_buffer pb
        cdef const uint8_t *p
        cdef Py_ssize_t n, hlen, end
        cdef uint32_t ssrc, seq
        cdef int64_t index
        cdef int r
        cdef ReplayWindow w
        cdef object out
        PyObject_GetBuffer(packet, &pb, PyBUF_SIMPLE)
        try:
            p = <const uint8_t *>pb.buf
            n = pb.len
            if n > C_MAX_PACKET:
                raise ParseError(f"RTP packet too long ({n} bytes)")
            hlen = _rtp_hlen(p, n)
            seq = (<uint32_t>p[2] << 8) | p[3]
            ssrc = _be32(p + 8)
            end = n - self._tag_len - self._mki_len
            if end < hlen:
                raise ParseError(f"SRTP packet too short ({n} bytes) for header and tag")
            w = self._stream(ssrc)
            index = self._next_index(ssrc, seq, w)
            if w is not None:
                r = w.check(index)
                if r != 0:
                    raise self._replay_error(ssrc, index, r)
            if self._mki_len and memcmp(p + end + (16 if self._cipher == C_GCM else 0),
                                        PyBytes_AS_STRING(self._mki), self._mki_len) != 0:
                raise self._auth_error()
            out = self._open(p, n, hlen, end, ssrc, index)
            if out is None:
                # one more try, only for a stream not established yet, right after a wrap
                if w is not None or seq >= C_ROC_PROBE_SEQ_LIMIT or (index >> 16) >= 0xFFFFFFFF:
                    raise self._auth_error()
                index += 0x10000
                out = self._open(p, n, hlen, end, ssrc, index)
                if out is None:
                    raise self._auth_error()
            self._usage.check(1)
            self._commit(ssrc, index, w)
            self._usage.count += 1
            self.packets += 1
            return <bytes>out
        finally:
            PyBuffer_Release(&pb)

    # -- SRTCP -----------------------------------------------------------------------
    cdef uint32_t _scan_rtcp(self, const uint8_t *p, Py_ssize_t n) except? 0xFFFFFFFF:
        if n < 8:
            raise ParseError(f"RTCP packet too short ({n} bytes, header needs 8)")
        if n > C_MAX_PACKET:
            raise ParseError(f"RTCP packet too long ({n} bytes)")
        if p[0] >> 6 != 2:
            raise ParseError(f"not an RTCP version 2 packet (version {p[0] >> 6})")
        return _be32(p + 4)

    def protect_rtcp(self, packet):
        """SRTCP-protect one compound RTCP packet (RFC 3711 §3.4, RFC 7714 §9)."""
        cdef Py_buffer pb
        cdef const uint8_t *p
        cdef Py_ssize_t n, blen
        cdef uint32_t ssrc, word
        cdef int64_t index
        cdef ReplayWindow w
        cdef bytes out
        cdef uint8_t *o
        cdef uint8_t nonce[12]
        cdef uint8_t aad[12]
        PyObject_GetBuffer(packet, &pb, PyBUF_SIMPLE)
        try:
            p = <const uint8_t *>pb.buf
            n = pb.len
            ssrc = self._scan_rtcp(p, n)
            w = self._stream(ssrc)
            if w is not None:
                index = w.highest + 1
            elif self._pending:
                index = self._pending.get(ssrc, 0)
            else:
                index = 0
            if index > C_SRTCP_INDEX_MAX:
                raise SrtpLimitError(f"SRTCP index of SSRC 0x{ssrc:08x} would pass 2^31; re-key")
            self._usage.check(1)
            blen = n - 8
            if self._cipher == C_GCM:
                word = 0x80000000 | <uint32_t>index
                out = PyBytes_FromStringAndSize(NULL, n + 16 + 4 + self._mki_len)
                o = <uint8_t *>PyBytes_AS_STRING(out)
                memcpy(o, p, 8)
                memcpy(aad, p, 8)
                _put32(aad + 8, word)
                self._gcm_nonce(nonce, ssrc, index)
                self._crypto.encrypt_into(
                    PyBytes_FromStringAndSize(<char *>nonce, 12),
                    PyMemoryView_FromMemory(<char *>p + 8, blen, PyBUF_READ),
                    PyBytes_FromStringAndSize(<char *>aad, 12),
                    PyMemoryView_FromMemory(<char *>o + 8, blen + 16, PyBUF_WRITE),
                )
                _put32(o + n + 16, word)
                if self._mki_len:
                    memcpy(o + n + 20, PyBytes_AS_STRING(self._mki), self._mki_len)
            else:
                out = PyBytes_FromStringAndSize(NULL, n + 4 + self._mki_len + self._tag_len)
                o = <uint8_t *>PyBytes_AS_STRING(out)
                memcpy(o, p, 8)
                if self._cipher == C_CM:
                    word = 0x80000000 | <uint32_t>index
                    _xor(o + 8, p + 8, self._keystream(ssrc, index, blen), blen)
                else:
                    word = <uint32_t>index
                    memcpy(o + 8, p + 8, blen)
                _put32(o + n, word)
                self._mac_into(o, n + 4, o + n + 4 + self._mki_len)
                if self._mki_len:
                    memcpy(o + n + 4, PyBytes_AS_STRING(self._mki), self._mki_len)
            if w is None:
                w = self._new_stream(ssrc)
            w.add(index)
            self._usage.count += 1
            self.packets += 1
            return out
        finally:
            PyBuffer_Release(&pb)

    def unprotect_rtcp(self, packet):
        """Verify and decrypt one SRTCP packet; state moves only on success."""
        cdef Py_buffer pb
        cdef const uint8_t *p
        cdef Py_ssize_t n, e_at, tag_at
        cdef uint32_t ssrc, word
        cdef int64_t index
        cdef bint encrypted, gcm
        cdef int r
        cdef ReplayWindow w
        cdef bytes out
        cdef uint8_t *o
        cdef uint8_t *sc
        cdef uint8_t tag[20]
        cdef uint8_t nonce[12]
        cdef uint8_t aad[12]
        PyObject_GetBuffer(packet, &pb, PyBUF_SIMPLE)
        try:
            p = <const uint8_t *>pb.buf
            n = pb.len
            ssrc = self._scan_rtcp(p, n)
            gcm = self._cipher == C_GCM
            if gcm:
                if n < 8 + 16 + 4 + self._mki_len:
                    raise ParseError(f"SRTCP packet too short ({n} bytes) for its trailer")
                e_at = n - self._mki_len - 4
            else:
                if n < 8 + 4 + self._mki_len + self._tag_len:
                    raise ParseError(f"SRTCP packet too short ({n} bytes) for its trailer")
                e_at = n - self._tag_len - self._mki_len - 4
            word = _be32(p + e_at)
            index = word & 0x7FFFFFFF
            encrypted = (word & 0x80000000) != 0
            w = self._stream(ssrc)
            if w is not None:
                r = w.check(index)
                if r != 0:
                    raise self._replay_error(ssrc, index, r)
            if self._mki_len and memcmp(p + e_at + 4, PyBytes_AS_STRING(self._mki),
                                        self._mki_len) != 0:
                raise self._auth_error()
            if gcm:
                self._gcm_nonce(nonce, ssrc, index)
                try:
                    if encrypted:
                        out = PyBytes_FromStringAndSize(NULL, e_at - 16)
                        o = <uint8_t *>PyBytes_AS_STRING(out)
                        memcpy(o, p, 8)
                        memcpy(aad, p, 8)
                        _put32(aad + 8, word)
                        self._crypto.decrypt_into(
                            PyBytes_FromStringAndSize(<char *>nonce, 12),
                            PyMemoryView_FromMemory(<char *>p + 8, e_at - 8, PyBUF_READ),
                            PyBytes_FromStringAndSize(<char *>aad, 12),
                            PyMemoryView_FromMemory(<char *>o + 8, e_at - 24, PyBUF_WRITE),
                        )
                    else:
                        tag_at = e_at - 16
                        sc = self._scratch_for(tag_at + 4)
                        memcpy(sc, p, tag_at)
                        _put32(sc + tag_at, word)
                        self._crypto.decrypt(
                            PyBytes_FromStringAndSize(<char *>nonce, 12),
                            PyBytes_FromStringAndSize(<char *>p + tag_at, 16),
                            PyBytes_FromStringAndSize(<char *>sc, tag_at + 4),
                        )
                        out = PyBytes_FromStringAndSize(<char *>p, tag_at)
                except InvalidTag:
                    raise self._auth_error() from None
            else:
                self._mac_into(p, e_at + 4, tag)
                if not _ct_equal(tag, p + n - self._tag_len, self._tag_len):
                    raise self._auth_error()
                out = PyBytes_FromStringAndSize(NULL, e_at)
                o = <uint8_t *>PyBytes_AS_STRING(out)
                memcpy(o, p, 8)
                if encrypted and self._cipher == C_CM:
                    _xor(o + 8, p + 8, self._keystream(ssrc, index, e_at - 8), e_at - 8)
                else:
                    memcpy(o + 8, p + 8, e_at - 8)
            self._usage.check(1)
            if w is None:
                w = self._new_stream(ssrc)
            w.add(index)
            self._usage.count += 1
            self.packets += 1
            return out
        finally:
            PyBuffer_Release(&pb)
