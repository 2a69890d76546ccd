"""Sequence and timestamp arithmetic (RFC 3550 §5.1), both twins."""

from __future__ import annotations

from types import ModuleType

from hypothesis import given
from hypothesis import strategies as st


def test_seq_diff_wraps(fp: ModuleType) -> None:
    assert fp.seq_diff(0, 65535) == 1
    assert fp.seq_diff(65535, 0) == -1
    assert fp.seq_diff(5, 5) == 0
    assert fp.seq_diff(0x8000, 0) == -0x8000
    assert fp.seq_diff(0x7FFF, 0) == 0x7FFF
    assert fp.seq_gt(1, 65535)
    assert not fp.seq_gt(65535, 1)


def test_ts_diff_wraps(fp: ModuleType) -> None:
    assert fp.ts_diff(10, 0xFFFFFFF0) == 26
    assert fp.ts_diff(0xFFFFFFF0, 10) == -26
    assert fp.ts_diff(3000, 0) == 3000


def test_extend_seq(fp: ModuleType) -> None:
    assert fp.extend_seq(2, 65534) == 65536 + 2
    assert fp.extend_seq(65534, 65536 + 2) == 65534
    assert fp.extend_seq(10, 5) == 10
    assert fp.extend_seq(100, (3 << 16) | 90) == (3 << 16) | 100


@given(st.integers(0, 0xFFFF), st.integers(-0x7FFF, 0x7FFF))
def test_seq_diff_inverts_addition(a: int, delta: int) -> None:
    from vcore.rtp.seq import seq_diff

    assert seq_diff((a + delta) & 0xFFFF, a) == delta


@given(st.integers(1 << 16, 1 << 40), st.integers(-0x7FFF, 0x7FFF))
def test_extend_seq_recovers_extended(highest: int, delta: int) -> None:
    from vcore.rtp.seq import extend_seq

    target = highest + delta
    assert extend_seq(target & 0xFFFF, highest) == target


def test_initial_sequence_numbers_leave_room_before_the_wrap() -> None:
    """RFC 3711 §3.3.1: a stream must not wrap before the receiver has seen it (issue 14, finding 4)."""
    from vcore import H264Packetizer
    from vcore.rtp.seq import INITIAL_SEQ_LIMIT, initial_sequence_number

    values = [initial_sequence_number() for _ in range(20000)]
    assert min(values) >= 1 and max(values) < INITIAL_SEQ_LIMIT
    assert max(values) > INITIAL_SEQ_LIMIT * 0.9 and min(values) < INITIAL_SEQ_LIMIT * 0.1  # spread, not fixed
    for _ in range(200):
        assert 1 <= H264Packetizer(96).sequence_number < INITIAL_SEQ_LIMIT
