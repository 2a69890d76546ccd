"""RTCP compound packets (RFC 3550 §6, RFC 4585, RFC 5104, RFC 5506) and receiver statistics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcore import ParseError
from vcore.rtp import (
    ReceiverStats,
    ReportBlock,
    RtcpApp,
    RtcpBye,
    RtcpFir,
    RtcpNack,
    RtcpPli,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpSenderReport,
    RtcpTmmbn,
    RtcpTmmbr,
    RtcpUnknown,
    is_rtcp,
    ntp_from_unix,
    parse_rtcp,
    rtt_from_report,
    serialize_rtcp,
)
from vcore.rtp.rtcp import nack_fci_from_seqs, seqs_from_nack_fci

# SR with one report block + SDES CNAME "ab", as a compound (RFC 3550 §6.1)
SR_SDES = bytes.fromhex(
    "81c8000c" "11223344"
    "e1a2b3c4" "80000000" "00015f90" "0000000a" "00000640"
    "55667788" "05fffffe" "0001ffff" "00000020" "b3c48000" "00010000"
    "81ca0003" "11223344" "01026162" "00000000"
)


def test_sr_sdes_vector_every_field() -> None:
    sr, sdes = parse_rtcp(SR_SDES)
    assert isinstance(sr, RtcpSenderReport) and isinstance(sdes, RtcpSdes)
    assert sr.ssrc == 0x11223344
    assert sr.ntp_timestamp == 0xE1A2B3C480000000
    assert (sr.rtp_timestamp, sr.packet_count, sr.octet_count) == (90000, 10, 1600)
    (rb,) = sr.reports
    assert rb == ReportBlock(0x55667788, 5, -2, 0x0001FFFF, 32, 0xB3C48000, 65536)
    assert sdes.chunks == [(0x11223344, [(1, b"ab")])]
    assert serialize_rtcp([sr, sdes]) == SR_SDES
    assert is_rtcp(SR_SDES) and not is_rtcp(bytes.fromhex("80600001"))


def test_every_type_round_trips() -> None:
    packets = [
        RtcpReceiverReport(1, [ReportBlock(2, 10, 100, 70000, 5, 6, 7)]),
        RtcpSdes.cname(1, "kiosk@vcore"),
        RtcpBye([1, 2], b"hangup"),
        RtcpApp(3, 1, b"VCOR", b"\x00\x01\x02\x03"),
        RtcpNack(1, 2, [100, 101, 103, 117, 118, 65535, 0]),
        RtcpTmmbr(1, [(2, 512_000, 40)]),
        RtcpTmmbn(1, [(2, 256_000, 28)]),
        RtcpPli(1, 2),
        RtcpFir(1, [(2, 7), (3, 255)]),
        RtcpUnknown(207, 0, b"\x00\x00\x00\x01"),  # XR, kept raw
    ]
    data = serialize_rtcp(packets)
    again = parse_rtcp(data)
    assert serialize_rtcp(again) == data
    nack = again[4]
    assert isinstance(nack, RtcpNack)
    assert sorted(nack.lost) == sorted([100, 101, 103, 117, 118, 65535, 0])
    assert again[5] == RtcpTmmbr(1, [(2, 512_000, 40)])
    assert isinstance(again[6], RtcpTmmbn) and again[6].entries == [(2, 256_000, 28)]
    assert again[7] == RtcpPli(1, 2)
    assert again[8] == RtcpFir(1, [(2, 7), (3, 255)])
    assert again[2] == RtcpBye([1, 2], b"hangup")


def test_reduced_size_rtcp_accepted() -> None:
    # RFC 5506: a lone PLI, no SR/RR first
    (pli,) = parse_rtcp(bytes.fromhex("81ce0002" "00000001" "00000002"))
    assert pli == RtcpPli(1, 2)


def test_nack_bitmask() -> None:
    assert nack_fci_from_seqs([5, 6, 8, 21]) == [(5, 0b1000000000000101)]
    assert nack_fci_from_seqs([5, 22]) == [(5, 0), (22, 0)]
    assert nack_fci_from_seqs([65535, 0, 1]) == [(65535, 0b11)]  # wraps
    assert seqs_from_nack_fci([(65535, 0b11)]) == [65535, 0, 1]
    assert nack_fci_from_seqs([]) == []


@given(st.lists(st.integers(0, 0xFFFF), max_size=40))
def test_nack_compress_expand(seqs: list[int]) -> None:
    assert set(seqs_from_nack_fci(nack_fci_from_seqs(seqs))) == set(seqs)


def test_tmmbr_mantissa_exponent() -> None:
    (pkt,) = parse_rtcp(serialize_rtcp([RtcpTmmbr(1, [(9, 10_000_000, 60)])]))
    assert isinstance(pkt, RtcpTmmbr)
    ssrc, bitrate, overhead = pkt.entries[0]
    assert ssrc == 9 and overhead == 60
    assert 10_000_000 - bitrate < 10_000_000 >> 16  # 17-bit mantissa precision


BAD = [
    (b"\x81\xc8", "RTCP packet too short: 2 bytes, the header needs 4"),
    (b"\x41\xc8\x00\x00", "RTCP version 1 is not 2 at offset 0"),
    (b"\x81\xc8\x00\x06" + b"\x00" * 12, "RTCP packet type 200 truncated: needs 28 bytes at offset 0, has 16"),
    (b"\x81\xc9\x00\x01" + b"\x00" * 4, "RTCP RR truncated: needs 28 bytes, has 4"),
    (b"\x80\xc9\x00\x01" + b"\x00" * 4 + b"\x80", "RTCP compound truncated: 1 trailing bytes at offset 8"),
    (b"\xa0\xc9\x00\x01" + b"\x00" * 4 + b"\x80\xc9\x00\x01" + b"\x00" * 4,
     "RTCP padding bit set on a packet that is not the last of the compound"),
    (b"\xa0\xc9\x00\x01" + b"\x00\x00\x00\x09", "RTCP padding count inconsistent with the packet length"),
    (b"\x81\xca\x00\x02" + b"\x00\x00\x00\x01" + b"\x01\x09ab", "RTCP SDES item truncated"),
    (b"\x81\xca\x00\x02" + b"\x00\x00\x00\x01" + b"\x01\x02ab", "RTCP SDES chunk has no end item"),
    (b"\x84\xce\x00\x03" + b"\x00" * 12, "RTCP FIR FCI is not a multiple of 8 bytes"),
    (b"\x83\xcd\x00\x03" + b"\x00" * 12, "RTCP TMMBR/TMMBN FCI is not a multiple of 8 bytes"),
]


@pytest.mark.parametrize("data,message", BAD)
def test_bad_input(data: bytes, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_rtcp(data)
    assert str(info.value) == message


@settings(max_examples=3000)
@given(st.binary(max_size=120))
def test_fuzz_only_parse_error(data: bytes) -> None:
    try:
        parse_rtcp(data)
    except ParseError:
        pass


@settings(max_examples=2000)
@given(st.integers(0, len(SR_SDES) - 1), st.integers(0, 255))
def test_fuzz_mutations(pos: int, value: int) -> None:
    data = bytearray(SR_SDES)
    data[pos] = value
    try:
        parse_rtcp(bytes(data))
    except ParseError:
        pass


def test_receiver_stats_loss_and_fraction() -> None:
    st_ = ReceiverStats(ssrc=5, clock_rate=90000)
    t = 0.0
    seqs = [65530 + i for i in range(20)]
    for i, s in enumerate(seqs):
        if i in (7, 8, 12):  # three losses, across the wrap
            continue
        st_.update(s & 0xFFFF, i * 3000, t + i / 30)
    assert st_.extended_highest == (1 << 16) + ((65530 + 19) & 0xFFFF)
    assert st_.expected == 19  # RFC 3550 A.1 probation: counting starts at the second packet
    rb = st_.report_block(now=1.0)
    assert rb.packets_lost == 3
    assert rb.fraction_lost == (3 << 8) // st_.expected
    assert st_.report_block(now=1.1).fraction_lost == 0  # new interval, nothing lost


def test_receiver_stats_jitter_rfc3550_a8() -> None:
    st_ = ReceiverStats(ssrc=5, clock_rate=8000)
    # packets every 20 ms, every other one 5 ms late: |D| = 5 ms each time, J converges to 5 ms
    for i in range(400):
        st_.update(i, i * 160, i * 0.020 + (0.005 if i % 2 else 0.0))
    assert st_.jitter == pytest.approx(0.005, rel=0.01)


def test_rtt_from_lsr_dlsr() -> None:
    sent = 1_700_000_000.0
    ntp_sent = ntp_from_unix(sent)
    lsr = (ntp_sent >> 16) & 0xFFFFFFFF
    rb = ReportBlock(1, 0, 0, 0, 0, lsr, int(0.5 * 65536))  # peer held the SR for 0.5 s
    rtt = rtt_from_report(rb, ntp_from_unix(sent + 0.5 + 0.040))
    assert rtt == pytest.approx(0.040, abs=0.001)
    assert rtt_from_report(ReportBlock(1, 0, 0, 0, 0, 0, 0), ntp_sent) is None


def test_receiver_stats_source_restart() -> None:
    st_ = ReceiverStats(ssrc=5, clock_rate=90000)
    for i in range(10):
        st_.update(100 + i, i, i * 0.01)
    assert not st_.update(30000, 0, 1.0)  # big jump: held back
    assert st_.update(30001, 0, 1.01)  # two in a row: the source restarted
    assert st_.extended_highest == 30001
