"""H.225.0 / H.245 PER through pycrate: round trips, vectors, key transport, Fast Connect choice, fuzzing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcore.errors import VcoreError
from vcore.h323 import asn1, h235_srtp
from vcore.h323.errors import SecurityError, SignallingError, SignallingParseError
from vcore.h323.fast_connect import (
    MediaPolicy,
    accept_answer,
    answer_offer,
    choose_transmit,
    decode_proposals,
    encode_proposals,
    make_offer,
)
from vcore.h323.keys import SUITES, SrtpKeyMaterial, decode_h235_key, encode_h235_key, suite_from_algorithm
from vcore.h323.messages import (
    DEFAULT_FORMATS,
    G722,
    H264_LEVELS,
    H264_MODE0,
    H264_MODE1,
    PCMA,
    PCMU,
    UNKNOWN_SUITE,
    Address,
    MediaFormat,
    OpenChannel,
    alerting_uuie,
    call_proceeding_uuie,
    close_logical_channel,
    close_logical_channel_ack,
    connect_uuie,
    encode_h245,
    end_session_command,
    facility_uuie,
    flow_control_command,
    function_not_understood,
    master_slave_determination,
    master_slave_determination_ack,
    master_slave_determination_reject,
    msd_decision,
    open_logical_channel,
    open_logical_channel_ack,
    open_logical_channel_pdu,
    open_logical_channel_reject,
    parse_capabilities,
    parse_h245,
    parse_open_logical_channel,
    parse_user_information,
    release_complete_uuie,
    setup_uuie,
    terminal_capability_set,
    terminal_capability_set_ack,
    terminal_capability_set_reject,
    user_information,
    video_fast_update_picture,
)

CALL_ID = bytes(range(16))
CONF_ID = bytes(range(16, 32))
LOCAL = {1: (Address("127.0.0.1", 5000), Address("127.0.0.1", 5001)),
         2: (Address("127.0.0.1", 5002), Address("127.0.0.1", 5003))}
REMOTE = {1: (Address("::1", 6000), Address("::1", 6001)), 2: (Address("::1", 6002), Address("::1", 6003))}


def _olcs() -> list[bytes]:
    return encode_proposals(make_offer(MediaPolicy(DEFAULT_FORMATS, allow_plaintext=True), LOCAL).proposals)


UUIES = [
    ("setup", lambda: setup_uuie(call_id=CALL_ID, conference_id=CONF_ID, source_aliases=["kiosk-1", "100"],
                                 destination_aliases=["agent"], source_address=Address("127.0.0.1", 40000),
                                 destination_address=Address("::1", 1720), fast_start=_olcs())),
    ("callProceeding", lambda: call_proceeding_uuie(call_id=CALL_ID)),
    ("alerting", lambda: alerting_uuie(call_id=CALL_ID, fast_connect_refused=True)),
    ("connect", lambda: connect_uuie(call_id=CALL_ID, conference_id=CONF_ID, fast_start=_olcs()[:2])),
    ("releaseComplete", lambda: release_complete_uuie(call_id=CALL_ID, reason="securityDenied")),
    ("releaseComplete", lambda: release_complete_uuie(call_id=CALL_ID, reason="undefinedReason")),
    ("facility", lambda: facility_uuie(call_id=CALL_ID, conference_id=CONF_ID)),
    ("empty", lambda: 0),
]


@pytest.mark.parametrize(("name", "build"), UUIES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(UUIES)])
@pytest.mark.parametrize("tunnelled", [(), (b"\x01\x02",)])
def test_uuie_roundtrip(name: str, build: object, tunnelled: tuple[bytes, ...]) -> None:
    value = user_information(name, build(), h245_control=tunnelled)  # type: ignore[operator]
    data = asn1.encode_uuie(value)
    assert asn1.decode_uuie(data) == value
    info = parse_user_information(data)
    assert info.body == name and info.h245_tunnelling and info.h245_control == tunnelled
    if name != "empty":
        assert info.call_id == CALL_ID


def test_uuie_accessors() -> None:
    info = parse_user_information(asn1.encode_uuie(user_information("setup", UUIES[0][1]())))  # type: ignore[operator]
    assert info.source_aliases == ("kiosk-1", "100") and info.destination_aliases == ("agent",)
    assert info.conference_id == CONF_ID and info.fast_start is not None and len(info.fast_start) == 30
    rc = parse_user_information(asn1.encode_uuie(user_information(
        "releaseComplete", release_complete_uuie(call_id=CALL_ID, reason="securityDenied"))))
    assert rc.release_reason == "securityDenied"
    al = parse_user_information(asn1.encode_uuie(user_information("alerting", alerting_uuie(
        call_id=CALL_ID, fast_connect_refused=True))))
    assert al.fast_connect_refused and al.fast_start is None


def test_release_complete_root_reason_vector() -> None:
    """pycrate 0.8 padded the open type after a root CHOICE wrongly; vcore's patch gives X.691 bytes."""
    value = user_information("releaseComplete", release_complete_uuie(call_id=b"\x11" * 16,
                                                                      reason="undefinedReason"))
    assert asn1.encode_uuie(value).hex() == (
        "25c0060008914a0004"  # UU-PDU/body choice, ReleaseComplete preamble, protocolIdentifier
        "58a800"  # reason undefinedReason (root index 11), extension bitmap, realignment
        "1100" + "11" * 16 +  # open type of 17 octets: callIdentifier
        "10800180")  # H323-UU-PDU extensions: h245Tunnelling TRUE
    assert asn1.decode_uuie(asn1.encode_uuie(value)) == value


def test_release_reason_must_be_known() -> None:
    with pytest.raises(SignallingParseError, match="unknown release reason 'bogus'"):
        release_complete_uuie(call_id=CALL_ID, reason="bogus")


H245_PDUS = [
    terminal_capability_set(1, DEFAULT_FORMATS, ("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80")),
    terminal_capability_set(2, (PCMU,)),
    terminal_capability_set_ack(1),
    terminal_capability_set_reject(1),
    master_slave_determination(50, 0xABCDEF),
    master_slave_determination_ack("master"),
    master_slave_determination_ack("slave"),
    master_slave_determination_reject(),
    open_logical_channel_pdu(OpenChannel(5, H264_MODE1, media_control=LOCAL[2][1], suites=("AEAD_AES_128_GCM",),
                                         key=SrtpKeyMaterial.generate("AEAD_AES_128_GCM"))),
    open_logical_channel_ack(5, 2, REMOTE[2][0], REMOTE[2][1]),
    open_logical_channel_reject(5, "securityDenied"),
    close_logical_channel(5),
    close_logical_channel(5, "lcse"),
    close_logical_channel_ack(5),
    end_session_command(),
    video_fast_update_picture(5),
    flow_control_command(384_000, 5),
    flow_control_command(None),
]


@pytest.mark.parametrize("pdu", H245_PDUS, ids=lambda p: f"{p[0]}-{p[1][0]}")
def test_h245_roundtrip(pdu: tuple[str, tuple[str, object]]) -> None:
    back = parse_h245(encode_h245(pdu))
    assert (back.category, (back.name, back.body)) == pdu


def test_function_not_understood_roundtrip() -> None:
    request = parse_h245(encode_h245(master_slave_determination(50, 7)))
    pdu = function_not_understood(request)
    assert parse_h245(encode_h245(pdu)).name == "functionNotUnderstood"


def test_capabilities_parse_back() -> None:
    body = parse_h245(encode_h245(terminal_capability_set(1, DEFAULT_FORMATS, ("AES_CM_128_HMAC_SHA1_80",)))).body
    formats, suites = parse_capabilities(body)
    assert suites == ("AES_CM_128_HMAC_SHA1_80",)
    assert {(f.name, f.packetization_mode if f.name == "H264" else None) for f in formats} == {
        ("H264", 1), ("H264", 0), ("G722", None), ("PCMU", None), ("PCMA", None)}
    h264 = [f for f in formats if f.name == "H264"]
    assert all(f.level == H264_LEVELS["3.1"] and f.profile == 64 for f in h264)


FORMATS = [PCMU, PCMA, G722, H264_MODE0, H264_MODE1,
           MediaFormat("H264", 100, profile=8, level=H264_LEVELS["4"], packetization_mode=1, max_bitrate=40000)]


@pytest.mark.parametrize(("fmt", "reverse", "suite"),
                         list(itertools.product(FORMATS, [False, True], ["", *SUITES])))
def test_olc_roundtrip(fmt: MediaFormat, reverse: bool, suite: str) -> None:
    key = SrtpKeyMaterial.generate(suite) if suite else None
    channel = OpenChannel(7, fmt, reverse, media=LOCAL[fmt.session_id][0] if reverse else None,
                          media_control=LOCAL[fmt.session_id][1], suites=(suite,) if suite else (), key=key)
    back = parse_open_logical_channel(asn1.decode_olc(asn1.encode_olc(open_logical_channel(channel))))
    assert back == channel
    assert back.key == key  # key bytes are excluded from ==/repr of the channel


def test_olc_unknown_codec_and_suite() -> None:
    olc = open_logical_channel(OpenChannel(3, PCMU, suites=("AES_CM_128_HMAC_SHA1_80",)))
    olc["forwardLogicalChannelParameters"]["dataType"][1]["mediaType"] = ("audioData", ("g728", 20))
    # H.235.8 §5.1: an SrtpCryptoCapability naming a suite vcore does not know (OID 1.2.3)
    unknown = h235_srtp.type_object(h235_srtp.SRTP_CRYPTO_CAPABILITY)
    with asn1._lock:
        unknown.set_val([{"cryptoSuite": (1, 2, 3)}])
        raw = unknown.to_aper()
    eai = olc["forwardLogicalChannelParameters"]["dataType"][1]["encryptionAuthenticationAndIntegrity"]
    assert "encryptionCapability" not in eai  # H.235.8 only, nothing vcore-specific
    eai["genericH235SecurityCapability"]["nonCollapsingRaw"] = raw
    back = parse_open_logical_channel(asn1.decode_olc(asn1.encode_olc(olc)))
    assert back.format is None and back.suites == (UNKNOWN_SUITE,) and not back.legacy_keys


def test_olc_h235_8_and_legacy_layouts() -> None:
    """Our OLCs carry H.235.8 (SrtpCryptoCapability + SrtpKeys); a pre-H.235.8 vcore proposal is read and answered
    in its own layout."""
    key = SrtpKeyMaterial.generate("AEAD_AES_128_GCM")
    olc = open_logical_channel(OpenChannel(3, PCMU, suites=("AEAD_AES_128_GCM",), key=key))
    eai = olc["forwardLogicalChannelParameters"]["dataType"][1]["encryptionAuthenticationAndIntegrity"]
    assert set(eai) == {"genericH235SecurityCapability"}
    kind, body = asn1.decode(asn1.H235_KEY, olc["encryptionSync"]["h235Key"])
    assert "clearSaltingKey" not in body and body["algorithmOID"] == SUITES["AEAD_AES_128_GCM"].oid
    back = parse_open_logical_channel(asn1.decode_olc(asn1.encode_olc(olc)))
    assert back.suites == ("AEAD_AES_128_GCM",) and back.key == key and not back.legacy_keys
    old = open_logical_channel(OpenChannel(3, PCMU, suites=("AEAD_AES_128_GCM",), key=key, legacy_keys=True))
    old_eai = old["forwardLogicalChannelParameters"]["dataType"][1]["encryptionAuthenticationAndIntegrity"]
    del old_eai["genericH235SecurityCapability"]  # what an older vcore sent: encryptionCapability only
    kind, body = asn1.decode(asn1.H235_KEY, old["encryptionSync"]["h235Key"])
    assert body["clearSaltingKey"] == key.master_salt and body["genericKeyMaterial"] == key.master_key
    back = parse_open_logical_channel(asn1.decode_olc(asn1.encode_olc(old)))
    assert back.suites == ("AEAD_AES_128_GCM",) and back.key == key and back.legacy_keys
    # the callee answers an older vcore caller in its layout, and anyone else in H.235.8
    policy = MediaPolicy((PCMU,), ("AEAD_AES_128_GCM",))
    endpoints = {1: (Address("192.0.2.1", 5000), Address("192.0.2.1", 5001))}
    for legacy in (True, False):
        proposals = [OpenChannel(1, PCMU, False, 1, media_control=Address("192.0.2.2", 5003),
                                 suites=("AEAD_AES_128_GCM",), key=key, legacy_keys=legacy),
                     OpenChannel(2, PCMU, True, 1, media=Address("192.0.2.2", 5002),
                                 media_control=Address("192.0.2.2", 5003), suites=("AEAD_AES_128_GCM",),
                                 legacy_keys=legacy)]
        answers, _ = answer_offer(proposals, policy, endpoints)
        assert [a.legacy_keys for a in answers] == [legacy, legacy]
        sent = open_logical_channel(answers[1])
        kind, body = asn1.decode(asn1.H235_KEY, sent["encryptionSync"]["h235Key"])
        assert ("clearSaltingKey" in body) is legacy


def test_h235_key_transport_and_redaction() -> None:
    for name in SUITES:
        key = SrtpKeyMaterial.generate(name)
        assert decode_h235_key(encode_h235_key(key), name) == key
        assert key.master_key.hex() not in repr(key) and "master_key" not in repr(key)
        assert len(key.key_and_salt) == SUITES[name].key_length + SUITES[name].salt_length
        assert suite_from_algorithm(SUITES[name].algorithm()) == SUITES[name]
    with pytest.raises(SignallingParseError, match="does not match the channel's suite"):
        decode_h235_key(encode_h235_key(SrtpKeyMaterial.generate("AES_CM_128_HMAC_SHA1_80")),
                        "AES_CM_128_HMAC_SHA1_32")
    with pytest.raises(SignallingParseError, match="needs a 16-byte key and a 12-byte salt, got 16 and 14"):
        SrtpKeyMaterial("AEAD_AES_128_GCM", bytes(16), bytes(14))
    with pytest.raises(SignallingParseError, match="unknown SRTP suite 'NULL'"):
        SrtpKeyMaterial.generate("NULL")


def test_keys_are_fresh() -> None:
    a, b = (SrtpKeyMaterial.generate("AEAD_AES_128_GCM") for _ in range(2))
    assert a.master_key != b.master_key and a.master_salt != b.master_salt


def test_msd_decision() -> None:
    assert msd_decision(50, 1, 40, 2) == "master"
    assert msd_decision(40, 1, 50, 2) == "slave"
    # H.245 §C.2.5 (as H323Plus and ooh323c compute it): (remote - local) mod 2^24 below 2^23 makes the local
    # terminal master. vcore had it backwards, unseen between vcore peers; H323Plus and vcore both became slave.
    assert msd_decision(50, 1, 50, 2) == "master"
    assert msd_decision(50, 2, 50, 1) == "slave"
    assert msd_decision(50, 0xFFFFFF, 50, 1) == "master"  # wraps: 1 - 0xFFFFFF = 2 (mod 2^24)
    assert msd_decision(50, 0x1D46E7, 50, 0x5F9029) == "master"  # the numbers of a call with H323Plus 1.28
    assert msd_decision(50, 5, 50, 5) is None
    assert msd_decision(50, 0, 50, 0x800000) is None


# --------------------------------------------------------------------------- Fast Connect


def _negotiate(caller: MediaPolicy, callee: MediaPolicy):  # type: ignore[no-untyped-def]
    offer = make_offer(caller, LOCAL)
    answers, callee_channels = answer_offer(decode_proposals(encode_proposals(offer.proposals)), callee, REMOTE)
    caller_channels = accept_answer(offer, decode_proposals(encode_proposals(answers)))
    return caller_channels, callee_channels


def test_fast_connect_both_directions_keys_and_addresses() -> None:
    caller, callee = _negotiate(MediaPolicy(DEFAULT_FORMATS), MediaPolicy((PCMA, H264_MODE0),
                                                                          ("AES_CM_128_HMAC_SHA1_80",)))
    mine = {(c.direction, c.session_id): c for c in caller}
    theirs = {(c.direction, c.session_id): c for c in callee}
    assert set(mine) == set(theirs) == {("send", 1), ("receive", 1), ("send", 2), ("receive", 2)}
    for session in (1, 2):
        send, recv = mine["send", session], mine["receive", session]
        assert send.srtp == theirs["receive", session].srtp and recv.srtp == theirs["send", session].srtp
        assert send.srtp is not None and recv.srtp is not None and send.srtp.master_key != recv.srtp.master_key
        assert send.suite == "AES_CM_128_HMAC_SHA1_80" and send.encrypted
        assert send.remote_rtp == REMOTE[session][0] and send.remote_rtcp == REMOTE[session][1]
        assert theirs["send", session].remote_rtp == LOCAL[session][0]
    assert mine["send", 1].format.name == "PCMA"
    assert mine["send", 2].format.packetization_mode == 0 and mine["receive", 2].format.packetization_mode == 0


def test_fast_connect_prefers_callee_order_and_gcm() -> None:
    caller, _ = _negotiate(MediaPolicy(DEFAULT_FORMATS), MediaPolicy((PCMU, H264_MODE1)))
    assert {c.format.name for c in caller} == {"PCMU", "H264"}
    assert {c.suite for c in caller} == {"AEAD_AES_128_GCM"}


def test_fast_connect_no_common_suite_gives_nothing() -> None:
    offer = make_offer(MediaPolicy((PCMU,), ("AEAD_AES_128_GCM",)), LOCAL)
    answers, channels = answer_offer(offer.proposals, MediaPolicy((PCMU,), ("AES_CM_128_HMAC_SHA1_80",)), REMOTE)
    assert answers == [] and channels == []


def test_fast_connect_plaintext_only_when_both_allow() -> None:
    offer = make_offer(MediaPolicy((PCMU,), ("AEAD_AES_128_GCM",), allow_plaintext=True), LOCAL)
    answers, channels = answer_offer(offer.proposals, MediaPolicy((PCMU,), (), allow_plaintext=True), REMOTE)
    assert channels and all(not c.encrypted and c.suite is None for c in channels)
    assert all(not c.encrypted for c in accept_answer(offer, answers))
    strict = make_offer(MediaPolicy((PCMU,), ("AEAD_AES_128_GCM",)), LOCAL)
    with pytest.raises(SecurityError, match="picks plain RTP, which vcore did not offer"):
        accept_answer(strict, answers)


def test_fast_connect_answer_for_unproposed_channel() -> None:
    offer = make_offer(MediaPolicy((PCMU,)), LOCAL)
    bogus = OpenChannel(999, PCMU, False, 1, media=REMOTE[1][0], suites=("AEAD_AES_128_GCM",))
    with pytest.raises(SignallingError, match="accepts channel 999, which was not proposed"):
        accept_answer(offer, [bogus])


def test_fast_connect_reverse_answer_without_key() -> None:
    offer = make_offer(MediaPolicy((PCMU,)), LOCAL)
    nokey = OpenChannel(40, PCMU, True, 1, media=LOCAL[1][0], media_control=REMOTE[1][1], suites=("AEAD_AES_128_GCM",))
    with pytest.raises(SecurityError, match="carries no AEAD_AES_128_GCM key"):
        accept_answer(offer, [nokey])


def test_choose_transmit() -> None:
    policy = MediaPolicy(DEFAULT_FORMATS)
    assert choose_transmit((PCMA, PCMU), ("AES_CM_128_HMAC_SHA1_80",), policy, 1) == (PCMU,
                                                                                     "AES_CM_128_HMAC_SHA1_80")
    assert choose_transmit((PCMA,), (), policy, 1) is None
    assert choose_transmit((PCMA,), (), MediaPolicy((PCMA,), allow_plaintext=True), 1) == (PCMA, "")
    assert choose_transmit((PCMA,), ("AEAD_AES_128_GCM",), policy, 2) is None


# --------------------------------------------------------------------------- fuzzing the PER decoders


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120))
@pytest.mark.parametrize("decode", [parse_user_information, parse_h245, asn1.decode_olc],
                         ids=["uuie", "h245", "olc"])
def test_per_decoders_fuzz_only_vcore_errors(decode: object, data: bytes) -> None:
    try:
        decode(data)  # type: ignore[operator]
    except VcoreError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_uuie_bitflip_fuzz(data: st.DataObject) -> None:
    raw = bytearray(asn1.encode_uuie(user_information("setup", UUIES[0][1]())))  # type: ignore[operator]
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= 1 << data.draw(st.integers(0, 7))
    try:
        info = parse_user_information(bytes(raw))
        if info.fast_start:
            decode_proposals(info.fast_start)
    except VcoreError:
        pass


def test_decode_rejects_trailing_bytes() -> None:
    data = encode_h245(end_session_command())
    with pytest.raises(SignallingParseError, match="2 trailing bytes"):
        parse_h245(data + b"\x00\x00")


_ADDRESSES = st.one_of(
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str)).flatmap(
    lambda host: st.integers(0, 65535).map(lambda port: Address(host, port)))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 65535), st.sampled_from(FORMATS), st.booleans(), st.one_of(st.none(), _ADDRESSES),
       st.one_of(st.none(), _ADDRESSES), st.sampled_from(["", *SUITES]), st.booleans())
def test_olc_roundtrip_property(number: int, fmt: MediaFormat, reverse: bool, media: Address | None,
                                control: Address | None, suite: str, with_key: bool) -> None:
    key = SrtpKeyMaterial.generate(suite) if suite and with_key else None
    channel = OpenChannel(number, fmt, reverse, media=media, media_control=control,
                          suites=(suite,) if suite else (), key=key)
    back = parse_open_logical_channel(asn1.decode_olc(asn1.encode_olc(open_logical_channel(channel))))
    assert back == channel and back.key == key


def test_h245_unknown_category_is_a_parse_error() -> None:
    """Found by the fuzzer: pycrate returns an unknown CHOICE extension as ('_ext_0', bytes)."""
    with pytest.raises(SignallingParseError, match="H.245 message of a category vcore does not know"):
        parse_h245(b"\x80\x0c" + bytes(12))
