"""RtpPacket (RFC 3550 §5.1, RFC 8285): vectors, every field, exact round trips, bad input, fuzz."""

from __future__ import annotations

import os
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcore import ParseError
from vcore._speedups import load_twin

SIMPLE = bytes.fromhex("80e01f400000bb80deadbeef") + b"hello"
# V=2 P=1 X=1 CC=2, PT=8, seq=0xffff, ts=0xffffffff, two CSRC, one-byte extension with
# elements id1=ab, id3=010203 and two padding bytes, 4 payload bytes, 4 bytes of padding
FULL = bytes.fromhex(
    "b208ffff" "ffffffff" "01020304" "11111111" "22222222"
    "bede0002" "10ab3201" "02030000"
    "cafef00d"
    "00000004"
)
TWO_BYTE = bytes.fromhex("9000" "0001" "00000002" "00000003" "10000002" "0f02aabb" "10000000") + b"\x01"


def test_simple_vector_every_field(fp: ModuleType) -> None:
    p = fp.RtpPacket.parse(SIMPLE)
    assert p.version == 2
    assert p.padding is False and p.padding_size == 0
    assert p.extension is False and p.extensions == []
    assert p.marker is True
    assert p.payload_type == 96
    assert p.sequence_number == 8000
    assert p.timestamp == 48000
    assert p.ssrc == 0xDEADBEEF
    assert p.csrc == ()
    assert p.payload == b"hello"
    assert p.serialize() == SIMPLE


def test_full_vector_every_field(fp: ModuleType) -> None:
    p = fp.RtpPacket.parse(FULL)
    assert (p.version, p.padding, p.extension, p.marker) == (2, True, True, False)
    assert p.payload_type == 8
    assert p.sequence_number == 0xFFFF
    assert p.timestamp == 0xFFFFFFFF
    assert p.ssrc == 0x01020304
    assert p.csrc == (0x11111111, 0x22222222)
    assert p.extension_profile == 0xBEDE
    assert p.extension_data == bytes.fromhex("10ab320102030000")
    assert p.extensions == [(1, b"\xab"), (3, b"\x01\x02\x03")]
    assert p.payload == bytes.fromhex("cafef00d")
    assert p.padding_size == 4
    assert p.serialize() == FULL


def test_two_byte_extension_vector(fp: ModuleType) -> None:
    p = fp.RtpPacket.parse(TWO_BYTE)
    assert p.extension_profile == 0x1000
    assert p.extensions == [(15, b"\xaa\xbb"), (16, b"")]
    assert p.payload == b"\x01"
    assert p.serialize() == TWO_BYTE


def test_build_and_set_extensions(fp: ModuleType) -> None:
    p = fp.RtpPacket(payload_type=111, sequence_number=1, timestamp=2, ssrc=3, payload=b"x")
    p.extensions = [(1, b"\x01\x02"), (14, b"z" * 16)]
    assert p.extension_profile == 0xBEDE
    again = fp.RtpPacket.parse(p.serialize())
    assert again.extensions == [(1, b"\x01\x02"), (14, b"z" * 16)]
    p.extensions = [(200, b"long" * 10), (2, b"")]  # needs the two-byte form
    assert p.extension_profile == 0x1000
    assert fp.RtpPacket.parse(p.serialize()).extensions == [(200, b"long" * 10), (2, b"")]
    p.extensions = []
    assert p.extension is False
    assert len(p.serialize()) == 13


def test_unknown_extension_profile_kept_raw(fp: ModuleType) -> None:
    data = bytes.fromhex("900000010000000200000003" "abcd0001" "01020304") + b"pl"
    p = fp.RtpPacket.parse(data)
    assert p.extension_profile == 0xABCD
    assert p.extension_data == b"\x01\x02\x03\x04"
    with pytest.raises(ParseError, match="profile 0xabcd is not RFC 8285"):
        p.extensions
    assert p.serialize() == data


BAD = [
    (b"", "RTP packet too short: 0 bytes, the fixed header needs 12"),
    (SIMPLE[:11], "RTP packet too short: 11 bytes, the fixed header needs 12"),
    (b"\x40" + SIMPLE[1:], "RTP version 1 is not 2"),
    (b"\x00" + SIMPLE[1:], "RTP version 0 is not 2"),
    (b"\x83" + SIMPLE[1:12] + b"\x00" * 8, "RTP packet truncated: 3 CSRC need 24 header bytes, packet has 20"),
    (b"\x90" + SIMPLE[1:12] + b"\xbe\xde", "RTP header extension truncated: header needs 16 bytes, packet has 14"),
    (
        b"\x90" + SIMPLE[1:12] + b"\xbe\xde\x00\x02" + b"\x10\xab\x00\x00",
        "RTP header extension truncated: 2 words need 24 bytes, packet has 20",
    ),
    (
        b"\x90" + SIMPLE[1:12] + b"\xbe\xde\x00\x01" + b"\x13\xab\x00\x00",
        "RTP header extension element 1 truncated: needs 4 bytes, has 3",
    ),
    (b"\xa0" + SIMPLE[1:12] + b"ab\x00", "RTP padding count is zero"),
    (b"\xa0" + SIMPLE[1:12] + b"ab\x04", "RTP padding count 4 exceeds the 3 bytes after the header"),
]


@pytest.mark.parametrize("data,message", BAD)
def test_bad_input_message(fp: ModuleType, data: bytes, message: str) -> None:
    with pytest.raises(ParseError) as info:
        fp.RtpPacket.parse(data)
    assert str(info.value) == message


def test_serialize_range_checks(fp: ModuleType) -> None:
    cases = [
        ({"payload_type": 128}, "RTP payload_type 128 out of range 0-127"),
        ({"sequence_number": 65536}, "RTP sequence_number 65536 out of range 0-65535"),
        ({"timestamp": -1}, "RTP timestamp -1 out of range 0-4294967295"),
        ({"ssrc": 1 << 32}, "RTP ssrc 4294967296 out of range 0-4294967295"),
        ({"csrc": list(range(16))}, "RTP packet has 16 CSRC, at most 15 fit"),
        ({"extension_profile": 0xBEDE, "extension_data": b"abc"}, "RTP header extension data is 3 bytes, not a multiple of 4"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError) as info:
            fp.RtpPacket(**kwargs).serialize()
        assert str(info.value) == message


def test_equality_and_repr(fp: ModuleType) -> None:
    a = fp.RtpPacket.parse(FULL)
    b = fp.RtpPacket.parse(FULL)
    assert a == b
    b.marker = True
    assert a != b
    assert "seq=65535" in repr(a) and "pt=8" in repr(a)
    assert fp.RtpPacket.parse(bytearray(SIMPLE)) == fp.RtpPacket.parse(memoryview(SIMPLE))


def _both() -> tuple[ModuleType, ModuleType] | None:
    if os.environ.get("VCORE_NO_EXTENSIONS"):
        return None
    return load_twin("_fastpath", "c"), load_twin("_fastpath", "py")


packet_fields = st.fixed_dictionaries(
    {
        "payload_type": st.integers(0, 127),
        "sequence_number": st.integers(0, 0xFFFF),
        "timestamp": st.integers(0, 0xFFFFFFFF),
        "ssrc": st.integers(0, 0xFFFFFFFF),
        "payload": st.binary(max_size=64),
        "marker": st.booleans(),
        "csrc": st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
        "padding_size": st.integers(0, 255),
    }
)
extension_elements = st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=20)), max_size=4)


@settings(max_examples=300)
@given(packet_fields, extension_elements)
def test_cross_twin_round_trip(fields: dict[str, object], elements: list[tuple[int, bytes]]) -> None:
    both = _both()
    mods = both if both else (load_twin("_fastpath", "py"),) * 2
    for writer, reader in (mods, mods[::-1]):
        p = writer.RtpPacket(**fields)
        p.extensions = elements
        data = p.serialize()
        q = reader.RtpPacket.parse(data)
        assert q.serialize() == data
        assert (q.payload_type, q.sequence_number, q.timestamp, q.ssrc) == (
            fields["payload_type"], fields["sequence_number"], fields["timestamp"], fields["ssrc"]
        )
        assert q.payload == fields["payload"] and q.marker == fields["marker"]
        assert list(q.csrc) == list(fields["csrc"])  # type: ignore[call-overload]
        assert q.extensions == [(i, v) for i, v in elements] if elements else q.extensions == []


def _parse_outcome(mod: ModuleType, data: bytes) -> object:
    try:
        return mod.RtpPacket.parse(data).serialize()
    except ParseError as exc:
        return ("ParseError", str(exc))


@settings(max_examples=3000)
@given(st.binary(max_size=80))
def test_fuzz_random_bytes(data: bytes) -> None:
    mods = _both() or (load_twin("_fastpath", "py"),)
    outcomes = {repr(_parse_outcome(m, data)) for m in mods}
    assert len(outcomes) == 1  # both twins agree, and only ParseError escapes


@settings(max_examples=3000)
@given(st.sampled_from([SIMPLE, FULL, TWO_BYTE]), st.integers(0, 60), st.integers(0, 255), st.integers(0, 60))
def test_fuzz_mutated_vectors(base: bytes, pos: int, value: int, cut: int) -> None:
    data = bytearray(base)
    data[pos % len(data)] = value
    data = data[: len(data) - (cut % len(data))]
    mods = _both() or (load_twin("_fastpath", "py"),)
    outcomes = {repr(_parse_outcome(m, bytes(data))) for m in mods}
    assert len(outcomes) == 1
