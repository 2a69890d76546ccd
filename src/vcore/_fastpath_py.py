"""Pure-Python twin of ``vcore._fastpath`` (see ``_fastpath.pyx``)."""

from __future__ import annotations

SEQ_MOD = 1 << 16  # RFC 3550 §5.1: 16-bit sequence number
TS_MOD = 1 << 32  # RFC 3550 §5.1: 32-bit timestamp


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

    ``highest_ext`` is the highest extended sequence number seen so far (cycles << 16 | seq).
    """
    ext = (highest_ext & ~0xFFFF) | seq
    d = ext - highest_ext
    if d > 0x8000:
        ext -= 0x10000
    elif d < -0x8000:
        ext += 0x10000
    return ext
