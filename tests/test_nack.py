"""Sender-side loss recovery: RFC 4588 RTX wrap/unwrap and the retransmission history."""

from __future__ import annotations

import pytest

from vcore import ParseError, RtpPacket
from vcore.nack import RetransmissionHistory, unwrap_rtx, wrap_rtx
from vcore.rtp.rtcp import RtcpNack, nack_fci_from_seqs, seqs_from_nack_fci


def packet(seq: int, payload: bytes = b"\x41\x9a" + b"\x5a" * 50) -> RtpPacket:
    return RtpPacket(96, seq, 123456, 0xAABBCCDD, payload, marker=seq % 3 == 0)


def test_rtx_round_trip_keeps_everything() -> None:
    p = RtpPacket(96, 65535, 123456, 0xAABBCCDD, b"\x41\x9a", True, (7, 8), 0xBEDE, b"\x11\x01\x02\x00")
    rtx = wrap_rtx(p, rtx_ssrc=0x11223344, rtx_payload_type=97, rtx_sequence_number=70000)
    assert rtx.ssrc == 0x11223344 and rtx.payload_type == 97 and rtx.sequence_number == 70000 & 0xFFFF
    assert rtx.payload[:2] == b"\xff\xff"  # OSN, RFC 4588 §4
    wire = RtpPacket.parse(rtx.serialize())
    back = unwrap_rtx(wire, media_ssrc=0xAABBCCDD, media_payload_type=96)
    assert back.serialize() == p.serialize()


def test_unwrap_needs_an_osn() -> None:
    with pytest.raises(ParseError) as exc:
        unwrap_rtx(RtpPacket(97, 1, 2, 3, b"\x01"), 5, 96)
    assert str(exc.value) == "RTX payload is 1 bytes, too short for the original sequence number"


def test_history_answers_with_rtx() -> None:
    h = RetransmissionHistory(128, rtx_payload_type=97, rtx_ssrc=0x5555, rtx_sequence_number=10)
    for s in range(65530, 65536):
        h.record(packet(s), 0.0)
    for s in range(0, 10):
        h.record(packet(s), 0.01)
    assert h.rtx
    out = h.resend([65534, 3, 200], 0.1)
    assert [unwrap_rtx(p, 0xAABBCCDD, 96).sequence_number for p in out] == [65534, 3]
    assert [p.sequence_number for p in out] == [10, 11]
    assert h.requested == 3 and h.resent == 2 and h.missing == 1


def test_history_plain_retransmission_throttle_and_age() -> None:
    h = RetransmissionHistory(64, max_age=0.5, min_interval=0.05)
    p = packet(7)
    h.record(p, 0.0)
    assert h.get(7) is p and h.get(8) is None
    assert h.resend([7], 0.1) == [p]  # the very same packet (same SSRC and sequence number)
    assert h.resend([7], 0.12) == []  # asked again within min_interval
    assert h.throttled == 1
    assert h.resend([7], 0.2) == [p]
    assert h.resend([7], 0.6) == []  # too old
    assert h.missing == 1


def test_history_is_bounded_and_overwrites() -> None:
    h = RetransmissionHistory(16)
    for s in range(100):
        h.record(packet(s), 0.0)
    assert h.get(99) is not None and h.get(50) is None
    assert len(h.resend(list(range(100)), 0.1)) == 16


def test_history_validates_rtx_arguments() -> None:
    with pytest.raises(ValueError):
        RetransmissionHistory(16, rtx_payload_type=97)
    with pytest.raises(ValueError):
        RetransmissionHistory(0)
    with pytest.raises(ValueError, match="repeat_copies 0 must be between 1 and 3"):
        RetransmissionHistory(16, repeat_copies=0)
    with pytest.raises(ValueError, match="repeat_copies 4 must be between 1 and 3"):
        RetransmissionHistory(16, repeat_copies=4)


def test_history_sends_copies_when_asked_again() -> None:
    h = RetransmissionHistory(64, rtx_payload_type=97, rtx_ssrc=0x5555, rtx_sequence_number=100, repeat_copies=2)
    h.record(packet(7), 0.0)
    h.record(packet(8), 0.0)
    first = h.resend([7], 0.1)
    assert [p.sequence_number for p in first] == [100]  # the first answer: one copy
    again = h.resend([7, 8], 0.3)  # 7 again: its retransmission was lost too; 8 for the first time
    assert [unwrap_rtx(p, 0xAABBCCDD, 96).sequence_number for p in again] == [7, 7, 8]
    assert [p.sequence_number for p in again] == [101, 102, 103]  # every copy has its own RTX number
    assert h.resent == 4 and h.requested == 3
    plain = RetransmissionHistory(64, repeat_copies=2)
    p7 = packet(7)
    plain.record(p7, 0.0)
    assert plain.resend([7], 0.1) == [p7]
    assert plain.resend([7], 0.3) == [p7, p7]


def test_nack_round_trip_from_buffer_to_history() -> None:
    from vcore import VideoJitterBuffer
    from vcore._speedups import fastpath

    seqs = [65534, 65535, 0, 5]
    fci = nack_fci_from_seqs(seqs)
    msg = RtcpNack(sender_ssrc=1, media_ssrc=0xAABBCCDD, lost=seqs)
    assert sorted(seqs_from_nack_fci(fci)) == sorted(seqs) and msg.lost == seqs
    h = RetransmissionHistory(64)
    sent = [fastpath.RtpPacket(96, s & 0xFFFF, 0, 1, b"\x41\x9a") for s in range(65530, 65546)]
    for p in sent:
        h.record(p, 0.0)
    assert [p.sequence_number for p in h.resend(seqs_from_nack_fci(fci), 0.05)] == sorted(
        seqs, key=lambda s: (s - 65534) & 0xFFFF
    )
    assert VideoJitterBuffer(nack=False).nacks(1.0) == []
