"""H.264 over RTP (RFC 6184): Annex B splitting, packetizer, depacketizer; both twins."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcore import H264Packetizer, ParseError
from vcore._speedups import load_twin

from .h264_util import decode_file, decode_units, encode_clip

SPS = b"\x67\x42\xc0\x1e" + b"\x11" * 8
PPS = b"\x68\xce\x3c\x80"
IDR = b"\x65" + b"\x88" * 3000
SLICE = b"\x41" + b"\x9a" * 500
SEI = b"\x06\x05\x01\xaa\x80"


def annexb(*nals: bytes, four: bool = True) -> bytes:
    sc = b"\x00\x00\x00\x01" if four else b"\x00\x00\x01"
    return b"".join(sc + n for n in nals)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    path = tmp_path_factory.mktemp("h264") / "clip.h264"
    return path, encode_clip(path)


def test_split_annexb(fp: ModuleType) -> None:
    assert fp.split_annexb(b"") == []
    assert fp.split_annexb(annexb(SPS, PPS)) == [SPS, PPS]
    assert fp.split_annexb(annexb(SPS, PPS, four=False)) == [SPS, PPS]
    # mixed start codes, trailing zero bytes, leading garbage, empty NAL between start codes
    data = b"\xff\xfe" + b"\x00\x00\x01" + SPS + b"\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x00\x01" + PPS + b"\x00\x00\x00"
    assert fp.split_annexb(data) == [SPS, PPS]
    assert fp.split_annexb(bytearray(annexb(IDR))) == [IDR]
    with pytest.raises(ParseError, match="H.264 Annex B data has no start code"):
        fp.split_annexb(b"\x65\x88\x84")


def _split_reference(data: bytes) -> list[bytes]:
    """Annex B splitting the slow, obvious way (the contract of ``split_annexb``)."""
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\x00\x00\x01"]
    nals = []
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(data)
        nal = data[s + 3 : end].rstrip(b"\x00")
        if nal:
            nals.append(nal)
    return nals


def test_split_annexb_finds_start_codes_at_every_offset(fp: ModuleType) -> None:
    """The start-code scan (vectorised in the compiled twin) at every alignment and near the end."""
    import random

    rng = random.Random(7)
    # bytes that look like start codes but are not: 00 01 without a second zero, 00 00 02/03, runs of zeros
    decoys = [b"\x05\x00\x01\x07", b"\x00\x00\x03\x01", b"\x09\x00\x00\x02", b"\x01\x01", b"\x0a\x00\x0b"]
    for trial in range(300):
        parts = []
        for _ in range(rng.randint(1, 4)):
            body = bytearray(rng.randrange(2, 256) for _ in range(rng.randint(1, 140)))
            for _ in range(rng.randint(0, 3)):
                at = rng.randint(1, len(body))
                body[at:at] = rng.choice(decoys)
            body[0] = body[0] or 0x41  # a NAL header is never zero
            parts.append((b"\x00" * rng.randint(0, 2)) + b"\x00\x00\x01" + bytes(body) + b"\x00" * rng.randint(0, 2))
        data = bytes(rng.randrange(2, 256) for _ in range(trial % 70)) + b"".join(parts)
        assert fp.split_annexb(data) == _split_reference(data), data.hex()


def test_mode1_small_nals_go_in_one_stap_a(fp: ModuleType) -> None:
    pkts = fp.h264_packetize(annexb(SPS, PPS, SEI), 1000, 96, 0x1234, 10, 1200, 1)
    assert len(pkts) == 1
    p = pkts[0]
    assert p.payload[0] & 0x1F == 24  # STAP-A
    assert p.payload[0] & 0x60 == 0x60  # highest NRI of the aggregated units (PPS/SPS: 3)
    assert p.marker and p.sequence_number == 10 and p.timestamp == 1000 and p.ssrc == 0x1234
    # no slice in this unit: the parameter sets go after the other NAL units
    assert p.payload[1:3] == len(SEI).to_bytes(2, "big") and p.payload[3 : 3 + len(SEI)] == SEI
    assert p.payload[3 + len(SEI) : 5 + len(SEI)] == len(SPS).to_bytes(2, "big")


def test_mode1_fragments_large_nal_with_fu_a(fp: ModuleType) -> None:
    pkts = fp.h264_packetize(annexb(IDR), 0, 96, 1, 65534, 1200, 1)
    sizes = [len(p.serialize()) for p in pkts]
    assert all(s <= 1200 for s in sizes)
    assert max(sizes) - min(sizes) <= 1  # near-equal fragments
    assert [p.sequence_number for p in pkts] == [65534, 65535, 0]
    assert [p.marker for p in pkts] == [False, False, True]
    heads = [(p.payload[0], p.payload[1]) for p in pkts]
    assert heads[0] == (0x60 | 28, 0x80 | 5)
    assert heads[1] == (0x60 | 28, 5)
    assert heads[2] == (0x60 | 28, 0x40 | 5)
    assert b"".join(p.payload[2:] for p in pkts) == IDR[1:]


def test_parameter_sets_once_before_first_slice(fp: ModuleType) -> None:
    # a GStreamer config-interval=-1 style unit: SPS/PPS repeated before each slice
    au = annexb(SEI, SPS, PPS, IDR[:1000], SPS, PPS, IDR[:900])
    pkts = fp.h264_packetize(au, 0, 96, 1, 0, 1200, 0)
    types = [p.payload[0] & 0x1F for p in pkts]
    assert types == [6, 7, 8, 5, 5]
    au = annexb(IDR[:500], SPS, PPS)  # parameter sets after the slice move in front of it
    assert [p.payload[0] & 0x1F for p in fp.h264_packetize(au, 0, 96, 1, 0, 1200, 0)] == [7, 8, 5]


def test_mode0_sends_each_nal_whole(fp: ModuleType) -> None:
    pkts = fp.h264_packetize(annexb(SPS, PPS, IDR), 90, 97, 5, 7, 1200, 0)
    assert [p.payload for p in pkts] == [SPS, PPS, IDR]  # IDR is larger than the MTU: whole, as ffmpeg does
    assert [p.marker for p in pkts] == [False, False, True]
    assert {p.payload_type for p in pkts} == {97}


def test_packetize_argument_errors(fp: ModuleType) -> None:
    with pytest.raises(ValueError, match="H.264 packetization mode 2 is not 0 or 1"):
        fp.h264_packetize(annexb(SPS), 0, 96, 1, 0, 1200, 2)
    with pytest.raises(ValueError, match="mtu 20 out of range 64-65535"):
        fp.h264_packetize(annexb(SPS), 0, 96, 1, 0, 20, 1)
    with pytest.raises(ParseError):
        fp.h264_packetize(b"no start code", 0, 96, 1, 0, 1200, 1)
    assert fp.h264_packetize(b"", 0, 96, 1, 0, 1200, 1) == []


def _roundtrip(fp: ModuleType, units: list[bytes], mode: int, mtu: int = 1200) -> list[object]:
    dp = fp.H264Depacketizer()
    seq = 65500
    out = []
    for i, au in enumerate(units):
        pkts = fp.h264_packetize(au, i * 3000, 96, 42, seq, mtu, mode)
        seq = (seq + len(pkts)) & 0xFFFF
        for p in pkts:
            out.extend(dp.push(fp.RtpPacket.parse(p.serialize())))
    assert dp.lost == 0 and dp.late == 0 and dp.malformed == 0
    return out


@pytest.mark.parametrize("mode", [0, 1])
def test_real_clip_round_trip_decodes_identically(fp: ModuleType, clip: tuple[Path, list[bytes]], mode: int) -> None:
    path, units = clip
    got = _roundtrip(fp, units, mode)
    assert len(got) == len(units)
    assert all(u.complete for u in got)
    assert [u.timestamp for u in got] == [i * 3000 for i in range(len(units))]
    assert got[0].keyframe and not got[1].keyframe
    assert sum(u.keyframe for u in got) == 3  # keyint 15 over 45 frames
    assert decode_units([u.data for u in got]) == decode_file(path)


def test_depacketizer_marks_loss_incomplete(fp: ModuleType) -> None:
    pk = fp.h264_packetize(annexb(SPS, PPS, IDR), 0, 96, 1, 100, 1200, 1)
    nxt = fp.h264_packetize(annexb(SLICE), 3000, 96, 1, 100 + len(pk), 1200, 1)
    dp = fp.H264Depacketizer()
    out = []
    for p in pk[:2] + pk[3:] + nxt:  # lose the middle FU-A fragment
        out.extend(dp.push(p))
    assert [u.complete for u in out] == [False, True]
    assert out[0].data == b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS  # broken IDR dropped
    assert out[0].keyframe is False
    assert out[1].data == b"\x00\x00\x00\x01" + SLICE
    assert (dp.lost, dp.units, dp.incomplete) == (1, 2, 1)


def test_depacketizer_missing_marker_and_late(fp: ModuleType) -> None:
    a = fp.h264_packetize(annexb(SLICE), 0, 96, 1, 0, 1200, 1)[0]
    b = fp.h264_packetize(annexb(SLICE), 3000, 96, 1, 1, 1200, 1)[0]
    a.marker = False
    dp = fp.H264Depacketizer()
    assert dp.push(a) == []
    out = dp.push(b)
    assert [(u.timestamp, u.complete) for u in out] == [(0, False), (3000, True)]
    assert dp.push(a) == [] and dp.late == 1  # older than the last one accepted
    assert dp.flush() == []


@pytest.mark.parametrize(("start_type", "end_type", "keyframe"), [(5, 1, True), (1, 5, False)])
def test_fu_a_type_comes_from_the_start_fragment(fp: ModuleType, start_type: int, end_type: int,
                                                 keyframe: bool) -> None:
    """A forged FU-A whose fragments disagree on the NAL type: the reassembled header (the start's) decides.

    Both twins read the type the decoder will see (issue 14, finding 11: they used to disagree).
    """
    mk = lambda seq, payload, marker=False: fp.RtpPacket(96, seq, 0, 1, payload, marker)  # noqa: E731
    dp = fp.H264Depacketizer()
    pushes = [mk(0, bytes([0x18, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xCE])),  # STAP-A: SPS + PPS
              mk(1, bytes([0x7C, 0x80 | start_type]) + b"\x88" * 10),
              mk(2, bytes([0x7C, 0x40 | end_type]) + b"\x99" * 10, True)]
    units = [u for p in pushes for u in dp.push(p)]
    assert len(units) == 1 and units[0].complete
    assert units[0].keyframe is keyframe
    assert bytes([0x60 | start_type]) + b"\x88" * 10 + b"\x99" * 10 in units[0].data


def test_depacketizer_rejects_unsupported_and_malformed(fp: ModuleType) -> None:
    dp = fp.H264Depacketizer()
    mk = lambda seq, payload, marker=False: fp.RtpPacket(96, seq, 0, 1, payload, marker)  # noqa: E731
    pushes = [
        mk(0, b"\x19\x00\x01"),  # STAP-B
        mk(1, b"\x1a\x00"),  # MTAP16
        mk(2, b"\x1d\x80\x00"),  # FU-B
        mk(3, b""),  # empty payload
        mk(4, b"\x18\x00\x09\x67"),  # STAP-A size beyond payload
        mk(5, b"\x1c\xc5\x00"),  # FU-A with start and end
        mk(6, b"\x1c\x05\x00"),  # FU-A continuation without start
        mk(7, b"\x1c"),  # FU-A too short
        mk(8, b"\x1e\x00"),  # reserved type 30: ignored
        mk(9, b"\x41\x01", True),
    ]
    out = []
    for p in pushes:
        out.extend(dp.push(p))
    assert len(out) == 1 and out[0].complete is False
    assert out[0].data == b"\x00\x00\x00\x01\x41\x01"
    assert dp.unsupported == 3 and dp.malformed == 4


def test_keyframe_needs_parameter_sets(fp: ModuleType) -> None:
    dp = fp.H264Depacketizer()
    idr_alone = fp.h264_packetize(annexb(IDR[:100]), 0, 96, 1, 0, 1200, 1)
    (u,) = dp.push(idr_alone[0])
    assert u.keyframe is False  # IDR but no SPS/PPS seen yet
    params = fp.h264_packetize(annexb(SPS, PPS, IDR[:100]), 3000, 96, 1, 1, 1200, 1)
    (u,) = dp.push(params[0])
    assert u.keyframe is True
    (u,) = dp.push(fp.h264_packetize(annexb(IDR[:100]), 6000, 96, 1, 2, 1200, 1)[0])
    assert u.keyframe is True  # parameter sets known from earlier in the stream


def test_packetizer_sequence_continues(fp: ModuleType) -> None:
    pk = H264Packetizer(payload_type=96, ssrc=7, mtu=1200, mode=1, sequence_number=65535)
    a = pk.packetize(annexb(IDR), 0)
    b = pk.packetize(annexb(SLICE), 3000)
    seqs = [p.sequence_number for p in a + b]
    assert seqs == [(65535 + i) & 0xFFFF for i in range(len(seqs))]
    assert pk.sequence_number == (65535 + len(seqs)) & 0xFFFF
    with pytest.raises(ValueError):
        H264Packetizer(mode=3)


def _twins() -> list[ModuleType]:
    mods = [load_twin("_fastpath", "py")]
    if not os.environ.get("VCORE_NO_EXTENSIONS"):
        mods.append(load_twin("_fastpath", "c"))
    return mods


nal_strategy = st.builds(
    lambda t, nri, body: bytes(((nri << 5) | t,)) + body,
    st.sampled_from([1, 5, 6, 7, 8, 9]),
    st.integers(0, 3),
    st.binary(min_size=1, max_size=3000).map(lambda b: b.replace(b"\x00\x00", b"\x00\x07")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(nal_strategy, min_size=1, max_size=6), min_size=1, max_size=4), st.sampled_from([0, 1]),
       st.integers(64, 1500))
def test_cross_twin_packetize_depacketize(units: list[list[bytes]], mode: int, mtu: int) -> None:
    mods = _twins()
    for writer in mods:
        for reader in mods:
            dp = reader.H264Depacketizer()
            seq = 65530
            for i, nals in enumerate(units):
                au = annexb(*nals)
                pkts = writer.h264_packetize(au, i * 3000, 96, 1, seq, mtu, mode)
                seq = (seq + len(pkts)) & 0xFFFF
                if mode == 1:
                    assert all(len(p.serialize()) <= mtu for p in pkts)
                out = []
                for p in pkts:
                    out.extend(dp.push(reader.RtpPacket.parse(p.serialize())))
                assert len(out) == 1 and out[0].complete
                expected = writer.split_annexb(au)
                # parameter sets deduplicated and moved before the first slice, as the packetizer documents
                got = reader.split_annexb(out[0].data)
                assert [n for n in got if n[0] & 0x1F not in (7, 8)] == [n for n in expected if n[0] & 0x1F not in (7, 8)]
                assert set(n for n in got if n[0] & 0x1F in (7, 8)) == set(n for n in expected if n[0] & 0x1F in (7, 8))


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.binary(max_size=40), st.booleans(), st.integers(0, 2)), max_size=30))
def test_fuzz_depacketizer_never_raises_and_twins_agree(pushes: list[tuple[int, bytes, bool, int]]) -> None:
    results = []
    for mod in _twins():
        dp = mod.H264Depacketizer()
        out = []
        for seq, payload, marker, ts in pushes:
            for u in dp.push(mod.RtpPacket(96, seq, ts * 3000, 1, payload, marker)):
                out.append((u.data, u.timestamp, u.keyframe, u.complete))
        out.extend((u.data, u.timestamp, u.keyframe, u.complete) for u in dp.flush())
        counters = (dp.packets, dp.lost, dp.late, dp.malformed, dp.unsupported, dp.units, dp.incomplete)
        results.append((out, counters))
    assert all(r == results[0] for r in results)
