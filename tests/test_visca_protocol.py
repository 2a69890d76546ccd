"""VISCA kernels (both twins) and the pure protocol layer: vectors, bad input, fuzz."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcore._speedups import fastpath_visca, is_compiled, load_twin
from vcore.errors import ParseError, VcoreError
from vcore.visca import protocol as p
from vcore.visca.errors import (
    CameraBufferFull,
    CameraCancelled,
    CameraMessageLengthError,
    CameraNoSocket,
    CameraNotExecutable,
    CameraProtocolError,
    CameraReplyError,
    CameraSyntaxError,
    CameraValueError,
    error_for_code,
)

K = "_fastpath_visca"

# a valid message: header 0x81-0xFE, 1..14 body bytes without 0xFF, terminator
valid_messages = st.builds(
    lambda h, body: bytes([h]) + body + b"\xff",
    st.integers(0x80, 0xFE),
    st.binary(min_size=1, max_size=14).map(lambda b: b.replace(b"\xff", b"\x00")),
)


def test_compiled_twin_is_built() -> None:
    if os.environ.get("VCORE_NO_EXTENSIONS"):
        assert not is_compiled(fastpath_visca)
    else:
        assert is_compiled(fastpath_visca), "a normal build must compile _fastpath_visca"


# ---------------------------------------------------------------- framer


def test_framer_vectors(twin) -> None:
    k = twin(K)
    f = k.ViscaFramer()
    assert f.feed(b"\x81\x01\x04\x00\x02\xff") == [b"\x81\x01\x04\x00\x02\xff"]
    # ack and completion in one read
    assert f.feed(b"\x90\x41\xff\x90\x51\xff") == [b"\x90\x41\xff", b"\x90\x51\xff"]
    # split anywhere
    out = []
    for b in b"\x90\x50\x02\x00\x00\x00\xff":
        out += f.feed(bytes([b]))
    assert out == [b"\x90\x50\x02\x00\x00\x00\xff"]
    assert f.messages == 4
    assert f.garbage_bytes == 0
    assert f.pending == 0


def test_framer_resync(twin) -> None:
    k = twin(K)
    f = k.ViscaFramer()
    # noise (no header bit) before a message is skipped
    assert f.feed(b"\x00\x12\x7f\x90\x41\xff") == [b"\x90\x41\xff"]
    assert f.garbage_bytes == 3
    # a lone terminator and a two-byte "message" are garbage
    assert f.feed(b"\xff\x90\xff\x90\x51\xff") == [b"\x90\x51\xff"]
    assert f.garbage_bytes == 3 + 1 + 2
    # a partial message cut short and its tail: the tail up to 0xFF is dropped
    assert f.feed(b"\x02\x03\xff\x90\x42\xff") == [b"\x90\x42\xff"]
    assert f.garbage_bytes == 6 + 3


def test_framer_bounded(twin) -> None:
    k = twin(K)
    f = k.ViscaFramer()
    f.feed(b"\x90" + b"\x01" * 40)
    assert f.pending <= 16
    assert f.feed(b"\x90\x41\xff") == [b"\x90\x41\xff"]
    f.feed(b"\x90\x01")
    assert f.pending == 2
    f.reset()
    assert f.pending == 0
    big = k.ViscaFramer(max_length=64)
    msg = b"\x81" + b"\x01" * 30 + b"\xff"
    assert big.feed(msg) == [msg]
    assert big.max_length == 64


def test_framer_bad_length(twin) -> None:
    k = twin(K)
    with pytest.raises(ValueError, match=r"^max_length must be in \[3, 64\], got 2$"):
        k.ViscaFramer(max_length=2)
    with pytest.raises(ValueError, match=r"^max_length must be in \[3, 64\], got 65$"):
        k.ViscaFramer(max_length=65)


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=80), msg=valid_messages, twin_name=st.sampled_from(["c", "py"]))
def test_framer_never_loses_message_after_terminated_garbage(garbage: bytes, msg: bytes, twin_name: str) -> None:
    k = _load(twin_name)
    f = k.ViscaFramer()
    out = f.feed(garbage + b"\xff" + msg)
    assert out[-1] == msg


@settings(max_examples=300, deadline=None)
@given(noise=st.binary(max_size=80).map(lambda b: bytes(x & 0x7F for x in b)), msg=valid_messages,
       twin_name=st.sampled_from(["c", "py"]))
def test_framer_skips_noise_without_header_bytes(noise: bytes, msg: bytes, twin_name: str) -> None:
    k = _load(twin_name)
    f = k.ViscaFramer()
    assert f.feed(noise + msg) == [msg]
    assert f.garbage_bytes == len(noise)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 200), max_size=10))
def test_framer_twins_agree_and_chunking_does_not_matter(data: bytes, cuts: list[int]) -> None:
    results = []
    for name in _twins():
        k = _load(name)
        whole = k.ViscaFramer()
        a = whole.feed(data)
        pieces = k.ViscaFramer()
        b: list[bytes] = []
        last = 0
        for c in sorted(set(min(c, len(data)) for c in cuts)) + [len(data)]:
            b += pieces.feed(data[last:c])
            last = c
        assert a == b
        assert whole.garbage_bytes == pieces.garbage_bytes
        for m in a:
            assert 3 <= len(m) <= 16 and m[-1] == 0xFF and m[0] >= 0x80 and 0xFF not in m[:-1]
        results.append((a, whole.garbage_bytes, whole.pending))
    assert all(r == results[0] for r in results)
    # every byte is accounted for: in a message, discarded, or pending
    a, garbage, pending = results[0]
    assert sum(map(len, a)) + garbage + pending == len(data)


def _twins() -> list[str]:
    return ["py"] if os.environ.get("VCORE_NO_EXTENSIONS") else ["c", "py"]


def _load(name: str):  # type: ignore[no-untyped-def]
    if name == "c" and os.environ.get("VCORE_NO_EXTENSIONS"):
        name = "py"
    return load_twin(K, name)  # type: ignore[arg-type]


# ---------------------------------------------------------------- nibbles


def test_nibble_vectors(twin) -> None:
    k = twin(K)
    assert k.pack_nibbles(0x2000, 4) == b"\x02\x00\x00\x00"
    assert k.pack_nibbles(-1, 4) == b"\x0f\x0f\x0f\x0f"
    assert k.pack_nibbles(-0x990, 4) == b"\x0f\x06\x07\x00"
    assert k.pack_nibbles(0xA, 1) == b"\x0a"
    assert k.pack_nibbles(1, 8) == b"\x00" * 7 + b"\x01"  # 32 bits: no C int overflow
    assert k.pack_nibbles(-(1 << 31), 8) == b"\x08" + b"\x00" * 7
    assert k.unpack_nibbles(b"\x0f" * 8, 0, 8) == 0xFFFFFFFF
    assert k.unpack_nibbles(b"\x0f" * 8, 0, 8, True) == -1
    assert k.unpack_nibbles(b"\x90\x50\x02\x00\x00\x00\xff", 2, 4) == 0x2000
    assert k.unpack_nibbles(b"\x0f\x06\x07\x00", 0, 4, True) == -0x990
    assert k.unpack_nibbles(b"\x0f\x06\x07\x00", 0, 4) == 0xF670
    assert k.unpack_nibbles(memoryview(b"\x01\x02"), 0, 2) == 0x12


def test_nibble_errors(twin) -> None:
    k = twin(K)
    with pytest.raises(ValueError, match=r"^value 65536 does not fit in 4 nibbles$"):
        k.pack_nibbles(0x10000, 4)
    with pytest.raises(ValueError, match=r"^value -32769 does not fit in 4 nibbles$"):
        k.pack_nibbles(-0x8001, 4)
    with pytest.raises(ValueError, match=r"^nibble count must be in \[1, 8\], got 9$"):
        k.pack_nibbles(1, 9)
    with pytest.raises(ParseError, match=r"^byte 0x12 at offset 1 is not a nibble \(0x00-0x0f\)$"):
        k.unpack_nibbles(b"\x01\x12", 0, 2)
    with pytest.raises(ParseError, match=r"^need 4 nibble bytes at offset 1, have 4 bytes$"):
        k.unpack_nibbles(b"\x01\x02\x03\x04", 1, 4)


@given(count=st.integers(1, 8), data=st.data(), signed=st.booleans())
def test_nibble_round_trip_across_twins(count: int, data: st.DataObject, signed: bool) -> None:
    bits = 4 * count
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    value = data.draw(st.integers(lo, hi))
    names = _twins()
    packed = _load(names[0]).pack_nibbles(value, count)
    assert len(packed) == count and all(b <= 0x0F for b in packed)
    assert _load(names[-1]).unpack_nibbles(packed, 0, count, signed) == value


# ---------------------------------------------------------------- VISCA over IP header


def test_ip_header_vectors(twin) -> None:
    k = twin(K)
    hdr = k.pack_ip_header(0x0100, 5, 1)
    assert hdr == bytes.fromhex("0100000500000001")
    datagram = hdr + b"\x81\x09\x04\x00\xff"
    assert k.parse_ip_header(datagram) == (0x0100, 5, 1)
    # the reset control message the visca-over-ip library sends
    assert k.parse_ip_header(bytes.fromhex("020000010000000101")) == (0x0200, 1, 1)
    assert k.pack_ip_header(0x0111, 3, 0xFFFFFFFF) == bytes.fromhex("01110003ffffffff")


def test_ip_header_errors(twin) -> None:
    k = twin(K)
    with pytest.raises(ParseError, match=r"^VISCA-over-IP datagram of 7 bytes is shorter than its 8-byte header$"):
        k.parse_ip_header(b"\x01" * 7)
    with pytest.raises(ParseError, match=r"^VISCA-over-IP length field 5 does not match payload of 3 bytes$"):
        k.parse_ip_header(bytes.fromhex("0100000500000001") + b"\x90\x41\xff")
    with pytest.raises(ValueError, match=r"^sequence number 4294967296 out of range$"):
        k.pack_ip_header(0x0100, 1, 1 << 32)
    with pytest.raises(ValueError, match=r"^payload type 65536 out of range$"):
        k.pack_ip_header(0x10000, 1, 1)


@given(ptype=st.integers(0, 0xFFFF), seq=st.integers(0, 0xFFFFFFFF), payload=st.binary(max_size=32))
def test_ip_header_round_trip_across_twins(ptype: int, seq: int, payload: bytes) -> None:
    names = _twins()
    datagram = _load(names[0]).pack_ip_header(ptype, len(payload), seq) + payload
    assert _load(names[-1]).parse_ip_header(datagram) == (ptype, len(payload), seq)


@given(st.binary(max_size=40))
def test_ip_header_fuzz(data: bytes) -> None:
    for name in _twins():
        try:
            _load(name).parse_ip_header(data)
        except VcoreError:
            pass


# ---------------------------------------------------------------- command table

SONY_VECTORS = [
    ("power_on", {}, "81 01 04 00 02 ff"),
    ("power_off", {}, "81 01 04 00 03 ff"),
    ("zoom_stop", {}, "81 01 04 07 00 ff"),
    ("zoom_tele_var", {"speed": 5}, "81 01 04 07 25 ff"),
    ("zoom_wide_var", {"speed": 7}, "81 01 04 07 37 ff"),
    ("zoom_direct", {"position": 0x2000}, "81 01 04 47 02 00 00 00 ff"),
    ("focus_auto", {}, "81 01 04 38 02 ff"),
    ("focus_one_push", {}, "81 01 04 18 01 ff"),
    ("focus_near_var", {"speed": 2}, "81 01 04 08 32 ff"),
    ("focus_direct", {"position": 0x1234}, "81 01 04 48 01 02 03 04 ff"),
    ("pan_tilt_up_left", {"pan_speed": 0x18, "tilt_speed": 0x14}, "81 01 06 01 18 14 01 01 ff"),
    ("pan_tilt_stop", {"pan_speed": 1, "tilt_speed": 1}, "81 01 06 01 01 01 03 03 ff"),
    ("pan_tilt_absolute", {"pan_speed": 0x10, "tilt_speed": 0x10, "pan": -0x10, "tilt": 0x120},
     "81 01 06 02 10 10 0f 0f 0f 00 00 01 02 00 ff"),
    ("pan_tilt_relative", {"pan_speed": 1, "tilt_speed": 2, "pan": 1, "tilt": -1},
     "81 01 06 03 01 02 00 00 00 01 0f 0f 0f 0f ff"),
    ("pan_tilt_home", {}, "81 01 06 04 ff"),
    ("pan_tilt_reset", {}, "81 01 06 05 ff"),
    ("pan_tilt_limit_set", {"corner": 1, "pan": 0x500, "tilt": 0x100},
     "81 01 06 07 00 01 00 05 00 00 00 01 00 00 ff"),
    ("pan_tilt_limit_clear", {"corner": 0}, "81 01 06 07 01 00 07 0f 0f 0f 07 0f 0f 0f ff"),
    ("memory_set", {"preset": 3}, "81 01 04 3f 01 03 ff"),
    ("memory_recall", {"preset": 2}, "81 01 04 3f 02 02 ff"),
    ("memory_reset", {"preset": 0}, "81 01 04 3f 00 00 ff"),
    ("white_balance", {"mode": 4}, "81 01 04 35 04 ff"),
    ("exposure_mode", {"mode": 0xB}, "81 01 04 39 0b ff"),
    ("backlight", {"state": 2}, "81 01 04 33 02 ff"),
    ("if_clear", {}, "81 01 00 01 ff"),
    ("power_inq", {}, "81 09 04 00 ff"),
    ("zoom_position_inq", {}, "81 09 04 47 ff"),
    ("focus_position_inq", {}, "81 09 04 48 ff"),
    ("focus_mode_inq", {}, "81 09 04 38 ff"),
    ("pan_tilt_position_inq", {}, "81 09 06 12 ff"),
    ("version_inq", {}, "81 09 00 02 ff"),
]


@pytest.mark.parametrize("name,params,wire", SONY_VECTORS)
def test_command_vectors(name: str, params: dict[str, int], wire: str) -> None:
    msg = p.encode_command(name, 1, **params)
    assert msg.hex(" ") == wire
    spec, decoded = p.SONY_TABLE.match(msg[1:-1])  # type: ignore[misc]
    assert spec.name == name
    assert decoded == params


def test_table_covers_every_spec_with_a_round_trip() -> None:
    for spec in p.SONY_TABLE:
        params = {f.name: (f.choices[0] if f.choices else max(f.lo, 0)) for f in spec.fields}
        body = spec.encode_body(params)
        assert p.SONY_TABLE.match(body) == (spec, params), spec.name
        assert spec.body_length + 2 <= 16


def test_addresses_and_special_messages() -> None:
    assert p.encode_command("power_on", 7).hex(" ") == "87 01 04 00 02 ff"
    assert p.encode_cancel(1, 2).hex(" ") == "81 22 ff"
    assert p.encode_address_set().hex(" ") == "88 30 01 ff"
    assert p.encode_if_clear_broadcast().hex(" ") == "88 01 00 01 ff"
    assert p.encode_ack(1, 1).hex(" ") == "90 41 ff"
    assert p.encode_completion(2, 0, b"\x02").hex(" ") == "a0 50 02 ff"
    assert p.encode_error(7, 0, 0x41).hex(" ") == "f0 60 41 ff"
    assert p.encode_network_change(1).hex(" ") == "90 38 ff"


def test_encoding_errors() -> None:
    with pytest.raises(CameraValueError, match=r"^preset=200 out of range: must be in \[0, 127\]$"):
        p.encode_command("memory_recall", 1, preset=200)
    with pytest.raises(CameraValueError, match=r"^pan_speed=25 out of range"):
        p.encode_command("pan_tilt_absolute", 1, pan_speed=25, tilt_speed=1, pan=0, tilt=0)
    with pytest.raises(CameraValueError, match=r"^memory_set: missing parameter 'preset'$"):
        p.encode_command("memory_set", 1)
    with pytest.raises(CameraValueError, match=r"^zoom_stop: unknown parameter\(s\) \['speed'\]$"):
        p.encode_command("zoom_stop", 1, speed=1)
    with pytest.raises(CameraValueError, match=r"^unknown VISCA command 'fly'$"):
        p.encode_command("fly", 1)
    with pytest.raises(CameraValueError, match=r"^camera address must be in \[1, 8\], got 0$"):
        p.encode_message(0, b"\x01")
    with pytest.raises(CameraValueError, match=r"^message of 17 bytes is longer than VISCA's 16$"):
        p.encode_message(1, b"\x01" * 15)
    with pytest.raises(CameraValueError, match=r"^mode=4 out of range: must be one of \[0, 3, 10, 11, 13\]$"):
        p.encode_command("exposure_mode", 1, mode=4)
    assert issubclass(CameraValueError, ValueError)


def test_table_is_extensible() -> None:
    t = p.SONY_TABLE.copy()
    t.add(p.CommandSpec("flip", (b"\x01\x04\x66", p.Field("state", lo=2, hi=3))))
    assert t.encode("flip", 1, state=2).hex(" ") == "81 01 04 66 02 ff"
    assert "flip" not in p.SONY_TABLE and "flip" in t
    assert len(t) == len(p.SONY_TABLE) + 1
    with pytest.raises(CameraValueError):
        t.add(p.CommandSpec("huge", (b"\x01\x04" + b"\x00" * 14,)))


# ---------------------------------------------------------------- replies

REPLY_VECTORS = [
    ("90 41 ff", p.Reply(p.ReplyKind.ACK, 1, socket=1)),
    ("90 52 ff", p.Reply(p.ReplyKind.COMPLETION, 1, socket=2)),
    ("b0 50 02 00 00 00 ff", p.Reply(p.ReplyKind.COMPLETION, 3, data=b"\x02\x00\x00\x00")),
    ("90 60 01 ff", p.Reply(p.ReplyKind.ERROR, 1, code=1)),
    ("90 60 02 ff", p.Reply(p.ReplyKind.ERROR, 1, code=2)),
    ("90 60 03 ff", p.Reply(p.ReplyKind.ERROR, 1, code=3)),
    ("90 61 04 ff", p.Reply(p.ReplyKind.ERROR, 1, socket=1, code=4)),
    ("90 62 05 ff", p.Reply(p.ReplyKind.ERROR, 1, socket=2, code=5)),
    ("90 61 41 ff", p.Reply(p.ReplyKind.ERROR, 1, socket=1, code=0x41)),
    ("90 38 ff", p.Reply(p.ReplyKind.NETWORK_CHANGE, 1)),
    ("88 30 04 ff", p.Reply(p.ReplyKind.ADDRESS_SET, 4)),
    ("88 01 00 01 ff", p.Reply(p.ReplyKind.IF_CLEAR, 8)),
    ("83 01 04 00 02 ff", p.Reply(p.ReplyKind.UNDELIVERED, 3, data=b"\x01\x04\x00\x02")),
]


@pytest.mark.parametrize("wire,reply", REPLY_VECTORS)
def test_reply_vectors(wire: str, reply: p.Reply) -> None:
    assert p.parse_reply(bytes.fromhex(wire)) == reply


@pytest.mark.parametrize("wire", ["90 ff", "90 41", "90 41 00 ff", "90 77 ff", "91 41 ff", "88 30 ff",
                                  "90 60 ff", "90 ff 41 ff", "10 41 ff"])
def test_reply_errors(wire: str) -> None:
    with pytest.raises(CameraProtocolError):
        p.parse_reply(bytes.fromhex(wire))


@given(st.binary(max_size=20))
def test_reply_fuzz_raises_only_vcore_errors(data: bytes) -> None:
    try:
        p.parse_reply(data)
    except CameraProtocolError as exc:
        assert isinstance(exc, ParseError)


@given(st.binary(max_size=16))
def test_table_match_fuzz(body: bytes) -> None:
    found = p.SONY_TABLE.match(body)
    if found is not None:
        spec, params = found
        assert spec.encode_body(params) == body


def test_error_classes() -> None:
    assert isinstance(error_for_code(0x01), CameraMessageLengthError)
    assert isinstance(error_for_code(0x02), CameraSyntaxError)
    assert isinstance(error_for_code(0x03), CameraBufferFull)
    assert isinstance(error_for_code(0x04, 1), CameraCancelled)
    assert isinstance(error_for_code(0x05, 2), CameraNoSocket)
    e = error_for_code(0x41, 1)
    assert isinstance(e, CameraNotExecutable) and e.code == 0x41 and e.socket == 1
    assert str(e) == "command not executable (VISCA error 0x41, socket 1)"
    assert type(error_for_code(0x77)) is CameraReplyError


def test_inquiry_answers() -> None:
    spec = p.SONY_TABLE.get("pan_tilt_position_inq")
    assert spec.decode_reply(bytes.fromhex("0f 0f 0f 00 00 01 02 00")) == {"pan": -16, "tilt": 0x120}
    with pytest.raises(CameraProtocolError):
        spec.decode_reply(b"\x00")
    with pytest.raises(CameraProtocolError):
        spec.decode_reply(bytes.fromhex("1f 0f 0f 00 00 01 02 00"))
    v = p.SONY_TABLE.get("version_inq").decode_reply(bytes.fromhex("00 01 05 19 01 00 02"))
    assert v == {"vendor": 1, "model": 0x519, "rom": 0x100, "max_socket": 2}


@given(value=st.integers(-(1 << 70), 1 << 70) | st.integers(-(1 << 33), 1 << 33), count=st.integers(-1, 10))
def test_nibble_pack_errors_match_across_twins(value: int, count: int) -> None:
    outcomes = []
    for name in _twins():
        try:
            outcomes.append(("ok", _load(name).pack_nibbles(value, count)))
        except ValueError as exc:
            outcomes.append((type(exc).__name__, str(exc)))
    assert all(o == outcomes[0] for o in outcomes)


def test_public_names() -> None:
    import vcore.visca as visca

    for name in visca.__all__:
        assert hasattr(visca, name), name
    assert issubclass(visca.CameraError, VcoreError)
    assert issubclass(visca.CameraTimeout, TimeoutError)
