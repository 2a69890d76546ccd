# cython: language_level=3
"""Compiled kernels: RTP header, H.264 (RFC 6184), G.711, sequence arithmetic.

Twin of ``vcore._fastpath_py``: same names, results, exceptions and messages.
"""

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32


cpdef int seq_diff(int a, int b):
    """Signed distance ``a - b`` between two 16-bit sequence numbers, in [-32768, 32767]."""
    cdef int d = (a - b) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


cpdef bint seq_gt(int a, int b):
    """True when sequence number ``a`` comes after ``b`` (modulo 2^16)."""
    return seq_diff(a, b) > 0


cpdef long long ts_diff(long long a, long long b):
    """Signed distance ``a - b`` between two 32-bit RTP timestamps."""
    cdef long long d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d


cpdef long long extend_seq(int seq, long long highest_ext):
    """Extend a 16-bit ``seq`` to the extended number closest to ``highest_ext``."""
    cdef long long ext = (highest_ext & ~0xFFFF) | seq
    cdef long long d = ext - highest_ext
    if d > 0x8000:
        ext -= 0x10000
    elif d < -0x8000:
        ext += 0x10000
    return ext
