"""TPKT (RFC 1006) and Q.931 (H.225.0 §7) framing: vectors, strict parsing, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcore.errors import CallError, ParseError, VcoreError
from vcore.h323.errors import SignallingParseError
from vcore.h323.q931 import (
    IE,
    Cause,
    InformationElement,
    MessageType,
    Q931Message,
    bearer_capability_ie,
    call_state_ie,
    cause_ie,
    display_ie,
    party_number_ie,
    user_user_ie,
)
from vcore.h323.tpkt import TpktDecoder, encode_tpkt

# A Setup as an H.323 terminal sends it: call reference 0x1234, Bearer capability, Display,
# Called party number, User-user (2-byte length, protocol discriminator 5, 3 bytes of "UUIE").
SETUP_VECTOR = bytes.fromhex(
    "0802123405"  # PD, CR length 2, CR 0x1234 (flag 0), SETUP
    "04038893a5"  # Bearer capability: unrestricted digital, multirate, H.221/H.242
    "28056b696f736b"  # Display "kiosk"
    "700581"  "31323334"  # Called party number: unknown type, ISDN plan, "1234"
    "7e0004" "05aabbcc"  # User-user, length 4, X.208 coded
)


# --------------------------------------------------------------------------- TPKT


def test_tpkt_encode_header() -> None:
    assert encode_tpkt(b"\x08\x02") == b"\x03\x00\x00\x06\x08\x02"


def test_tpkt_decoder_incremental_byte_by_byte() -> None:
    stream = encode_tpkt(b"first") + encode_tpkt(b"second message") + encode_tpkt(b"x")
    decoder = TpktDecoder()
    out: list[bytes] = []
    for i in range(len(stream)):
        out.extend(decoder.feed(stream[i:i + 1]))
    assert out == [b"first", b"second message", b"x"]
    assert decoder.pending == 0


def test_tpkt_decoder_many_in_one_read() -> None:
    decoder = TpktDecoder()
    assert decoder.feed(encode_tpkt(b"a") + encode_tpkt(b"bc") + b"\x03\x00") == [b"a", b"bc"]
    assert decoder.pending == 2
    assert decoder.feed(b"\x00\x05z") == [b"z"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x04\x00\x00\x06ab", "TPKT version 4 is not 3"),
        (b"GET / HTTP/1.1\r\n", "TPKT version 71 is not 3"),
        (b"\x03\x01\x00\x06ab", "TPKT reserved byte is 1, not 0"),
        (b"\x03\x00\x00\x02", "TPKT length 2 is shorter than its header"),
        (b"\x03\x00\x00\x00", "TPKT length 0 is shorter than its header"),
    ],
)
def test_tpkt_garbage(data: bytes, message: str) -> None:
    decoder = TpktDecoder()
    with pytest.raises(SignallingParseError) as info:
        decoder.feed(data)
    assert str(info.value) == message
    assert isinstance(info.value, CallError) and isinstance(info.value, ParseError)
    with pytest.raises(SignallingParseError, match=message):  # the decoder stays poisoned
        decoder.feed(encode_tpkt(b"ok"))


def test_empty_tpkt_is_a_keepalive() -> None:
    """GnuGk and H323Plus send ``03 00 00 04`` on an idle connection: skipped, not a protocol error (issue 15, 9)."""
    decoder = TpktDecoder()
    keepalive = b"\x03\x00\x00\x04"
    assert decoder.feed(keepalive + encode_tpkt(b"a") + keepalive + keepalive[:2]) == [b"a"]
    assert decoder.feed(keepalive[2:] + encode_tpkt(b"b")) == [b"b"]
    assert decoder.keepalives == 3 and decoder.pending == 0


@pytest.mark.parametrize(("raw", "text"), [
    ("Hélène Müller".encode(), "Hélène Müller"),  # UTF-8, as most stacks send it
    ("Hélène".encode("latin-1"), "Hélène"),  # Latin-1
    (b"Saint-Flour \xe2\x80\x94 Mairie", "Saint-Flour — Mairie"),
    (b"\x1b[31mred\x07", "[31mred"),  # control characters removed: the name is logged and shown
    (b"\x00\x01", None),
])
def test_q931_display_is_read_leniently(raw: bytes, text: str | None) -> None:
    msg = Q931Message.parse(b"\x08\x02\x00\x01\x05" + b"\x28" + bytes([len(raw)]) + raw)
    assert msg.display == text


def test_outgoing_display_keeps_letters() -> None:
    from vcore.h323.q931 import display_ie, ia5_text

    assert ia5_text("Hélène Müller — Saint-Flour, l’Œuvre") == "Helene Muller - Saint-Flour, l'OEuvre"
    assert display_ie("Maison des services de Murat").contents == b"Maison des services de Murat"
    assert len(display_ie("é" * 200).contents) == 82


def test_tpkt_size_limits() -> None:
    with pytest.raises(SignallingParseError, match="exceeds 65531"):
        encode_tpkt(bytes(65532))
    assert len(encode_tpkt(bytes(65531))) == 65535
    decoder = TpktDecoder(max_size=100)
    with pytest.raises(SignallingParseError, match="TPKT length 200 exceeds the limit of 100"):
        decoder.feed(b"\x03\x00\x00\xc8")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_tpkt_fuzz_only_vcore_errors(chunks: list[bytes]) -> None:
    decoder = TpktDecoder()
    try:
        for chunk in chunks:
            decoder.feed(chunk)
    except SignallingParseError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=5), st.integers(1, 17))
def test_tpkt_roundtrip_any_split(payloads: list[bytes], step: int) -> None:
    stream = b"".join(encode_tpkt(p) for p in payloads)
    decoder = TpktDecoder()
    out: list[bytes] = []
    for i in range(0, len(stream), step):
        out.extend(decoder.feed(stream[i:i + step]))
    assert out == payloads


# --------------------------------------------------------------------------- Q.931


def test_q931_setup_vector_fields_and_roundtrip() -> None:
    msg = Q931Message.parse(SETUP_VECTOR)
    assert msg.message_type == MessageType.SETUP and msg.name == "SETUP" and msg.known_type
    assert msg.call_reference == 0x1234 and msg.from_destination is False
    assert msg.get(IE.BEARER_CAPABILITY) == b"\x88\x93\xa5"
    assert msg.display == "kiosk"
    assert msg.called_party_number == "1234"
    assert msg.calling_party_number is None
    assert msg.user_user == b"\xaa\xbb\xcc"
    assert msg.cause is None
    assert msg.encode() == SETUP_VECTOR


def test_q931_builders_roundtrip() -> None:
    elements = (
        bearer_capability_ie(),
        cause_ie(Cause.CALL_REJECTED),
        call_state_ie(10),
        display_ie("agent"),
        party_number_ie(IE.CALLING_PARTY_NUMBER, "100"),
        party_number_ie(IE.CALLED_PARTY_NUMBER, "*12#"),
        user_user_ie(bytes(300)),  # longer than 255: the two-octet length of H.225.0
    )
    msg = Q931Message(MessageType.RELEASE_COMPLETE, 32767, True, elements)
    data = msg.encode()
    assert data[:5] == b"\x08\x02\xff\xff\x5a"
    back = Q931Message.parse(data)
    assert back == msg
    assert back.cause == 21 and back.calling_party_number == "100" and back.called_party_number == "*12#"
    assert back.user_user == bytes(300)
    assert back.from_destination is True and back.call_reference == 32767


def test_q931_cause_with_octet_3a() -> None:
    msg = Q931Message.parse(b"\x08\x02\x00\x01\x5a" + b"\x08\x03\x00\x80\x90")
    assert msg.cause == 16


def test_q931_unknown_type_and_ie_are_kept() -> None:
    msg = Q931Message.parse(b"\x08\x02\x00\x01\x33" + b"\x55\x02ab" + b"\xa1")
    assert msg.name == "0x33" and not msg.known_type
    assert msg.elements == (InformationElement(0x55, b"ab"), InformationElement(0xA1))


def test_q931_codeset_shift_keeps_short_length_for_7e() -> None:
    # a locking shift to codeset 6, then IE 0x7e in codeset 6 has a one-octet length
    msg = Q931Message.parse(b"\x08\x02\x00\x01\x62" + b"\x96" + b"\x7e\x01z")
    assert msg.elements[-1] == InformationElement(0x7E, b"z", codeset=6)
    assert msg.user_user is None  # not the codeset-0 User-user IE


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x08\x02\x00", "Q.931 message of 3 bytes is shorter than 5"),
        (b"\x09\x02\x00\x01\x05", "Q.931 protocol discriminator 0x09 is not 0x08"),
        (b"\x08\x01\x01\x05\x00", "Q.931 call reference length 1 is not 2 (H.225.0 §7.2.2)"),
        (b"\x08\x02\x00\x01\x85", "Q.931 message type octet 0x85 has bit 8 set"),
        (b"\x08\x02\x00\x01\x05\x28", "Q.931 IE 0x28 length is truncated at offset 5"),
        (b"\x08\x02\x00\x01\x05\x28\x05abc", "Q.931 IE 0x28 claims 5 bytes but 3 remain"),
        (b"\x08\x02\x00\x01\x05\x7e\x00", "Q.931 User-user IE length is truncated at offset 5"),
        (b"\x08\x02\x00\x01\x05\x7e\x01\x00\x05", "Q.931 IE 0x7e claims 256 bytes but 1 remain"),
        (b"\x08\x02\x00\x01\x05\x96\x95", "Q.931 locking shift from codeset 6 to 5 is not allowed (Q.931 §4.5.3)"),
        (b"\x08\x02\x00\x01\x05\x90", "Q.931 locking shift from codeset 0 to 0 is not allowed (Q.931 §4.5.3)"),
    ],
)
def test_q931_malformed(data: bytes, message: str) -> None:
    with pytest.raises(SignallingParseError) as info:
        Q931Message.parse(data)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("tail", "accessor", "message"),
    [
        (b"\x7e\x00\x00", "user_user", "Q.931 User-user IE is empty"),
        (b"\x7e\x00\x02\x04x", "user_user", "Q.931 User-user protocol discriminator 0x04 is not 0x05 (X.208/X.209 coded)"),
        (b"\x08\x01\x00", "cause", "Q.931 Cause IE of 1 bytes has no cause value"),
        (b"\x70\x00", "called_party_number", "Q.931 Called party number IE is empty"),
    ],
)
def test_q931_malformed_ie_contents(tail: bytes, accessor: str, message: str) -> None:
    msg = Q931Message.parse(b"\x08\x02\x00\x01\x05" + tail)
    with pytest.raises(SignallingParseError) as info:
        getattr(msg, accessor)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("msg", "message"),
    [
        (Q931Message(5, 40000), "Q.931 call reference 40000 is not in 0..32767"),
        (Q931Message(200, 1), "Q.931 message type 200 is not in 0..127"),
        (Q931Message(5, 1, False, (InformationElement(0x28, bytes(256)),)), "Q.931 IE 0x28 of 256 bytes exceeds 255"),
        (Q931Message(5, 1, False, (InformationElement(0xA1, b"x"),)),
         "Q.931 single-octet IE 0xa1 cannot have contents"),
    ],
)
def test_q931_unencodable(msg: Q931Message, message: str) -> None:
    with pytest.raises(SignallingParseError) as info:
        msg.encode()
    assert str(info.value) == message


def test_q931_builder_validation() -> None:
    with pytest.raises(SignallingParseError, match="Q.850 cause 300"):
        cause_ie(300)
    with pytest.raises(SignallingParseError, match="is not made of 0-9"):
        party_number_ie(IE.CALLED_PARTY_NUMBER, "12a")
    assert display_ie("x" * 100).contents == b"x" * 82


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_q931_fuzz_only_vcore_errors(data: bytes) -> None:
    try:
        msg = Q931Message.parse(data)
        for accessor in ("user_user", "cause", "display", "called_party_number", "calling_party_number"):
            getattr(msg, accessor)
    except VcoreError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 0x7F), st.integers(0, 0x7FFF), st.booleans(),
    st.lists(st.tuples(st.integers(1, 0x7D).filter(lambda i: i != 0x7E), st.binary(max_size=40)), max_size=5),
    st.one_of(st.none(), st.binary(max_size=400)),
)
def test_q931_roundtrip(mtype: int, crv: int, flag: bool, ies: list[tuple[int, bytes]], uu: bytes | None) -> None:
    elements = [InformationElement(i, c) for i, c in ies]
    if uu is not None:
        elements.append(user_user_ie(uu))
    msg = Q931Message(mtype, crv, flag, tuple(elements))
    assert Q931Message.parse(msg.encode()) == msg
