"""H.235.8 SRTP key transport: PER vectors derived by hand (X.691), the H.245 carriage, tshark, strict parsing."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcore.h323 import asn1
from vcore.h323.errors import SignallingParseError
from vcore.h323.keys import (
    OID_SRTP_CRYPTO_CAPABILITY,
    SUITES,
    SecurityOffer,
    SrtpKeyMaterial,
    decode_h235_key,
    decode_srtp_crypto_capability,
    decode_srtp_keys,
    encode_h235_key,
    encode_srtp_crypto_capability,
    encode_srtp_keys,
    parse_security_capability,
    security_capability,
)

from .conftest import require_tool

KEY = SrtpKeyMaterial("AES_CM_128_HMAC_SHA1_80", bytes(range(16)), bytes(range(0x10, 0x1E)))

# SrtpCryptoCapability { {cryptoSuite 0.0.8.235.0.4.91}, {cryptoSuite 0.0.8.235.0.4.92} }
#   02                      SEQUENCE OF length (unconstrained, X.691 §11.9)
#   40                      SrtpCryptoInfo: extension bit 0, presence bits cryptoSuite 1, sessionParams 0, allowMKI 0
#   07 00 08 81 6b 00 04 5b OBJECT IDENTIFIER, BER contents (0.0 -> 00, 8, 235 -> 81 6b, 0, 4, 91)
CAPABILITY_80_32 = bytes.fromhex("02" "40" "070008816b00045b" "40" "070008816b00045c")
# SrtpKeys { {masterKey 00..0f, masterSalt 10..1d} }
#   01 count, 00 (extension bit 0, lifetime absent, mki absent), 10 + 16 octets, 0e + 14 octets
SRTP_KEYS = bytes.fromhex("01" "00" "10" + bytes(range(16)).hex() + "0e" + bytes(range(0x10, 0x1E)).hex())
# H235Key.secureSharedSecret (first extension alternative: 1 0 000000 = 80), open type length 2f,
#   V3KeySyncMaterial a0 (extension bit 1, only algorithmOID present), OID .91, paramS {} and the one-addition
#   extension bitmap (00 20), open type length 23, genericKeyMaterial: OCTET STRING length 22 + SrtpKeys
H235_KEY = bytes.fromhex("80" "2f" "a0" "070008816b00045b" "0020" "23" "22") + SRTP_KEYS


def test_crypto_capability_vector() -> None:
    data = encode_srtp_crypto_capability(["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
    assert data == CAPABILITY_80_32
    assert decode_srtp_crypto_capability(data) == ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")


def test_srtp_keys_and_h235_key_vectors() -> None:
    assert encode_srtp_keys(KEY) == SRTP_KEYS
    assert decode_srtp_keys(SRTP_KEYS, KEY.suite) == KEY
    assert encode_h235_key(KEY) == H235_KEY
    assert decode_h235_key(H235_KEY, KEY.suite) == KEY
    # the same bytes read through H.235.0 alone: the suite OID and SrtpKeys in genericKeyMaterial
    kind, body = asn1.decode(asn1.H235_KEY, H235_KEY)
    assert kind == "secureSharedSecret"
    assert body["algorithmOID"] == (0, 0, 8, 235, 0, 4, 91) and body["genericKeyMaterial"] == SRTP_KEYS
    assert "clearSaltingKey" not in body


@pytest.mark.parametrize("name", list(SUITES))
def test_every_suite_round_trips(name: str) -> None:
    key = SrtpKeyMaterial.generate(name)
    assert decode_h235_key(encode_h235_key(key), name) == key
    assert decode_h235_key(encode_h235_key(key, legacy=True), name) == key  # older vcore peers
    offer = parse_security_capability(security_capability([name]))
    assert offer == SecurityOffer((name,))


def test_gcm_suites_use_x667_oids_inside_the_standard_structures() -> None:
    for name in ("AEAD_AES_128_GCM", "AEAD_AES_256_GCM"):
        assert not SUITES[name].standard and SUITES[name].oid[:2] == (2, 25)
    assert SUITES["AES_CM_128_HMAC_SHA1_32"].standard
    value = security_capability(["AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"])
    assert "encryptionCapability" not in value  # nothing vcore-only outside H.235.8 unless asked (legacy=True)
    generic = value["genericH235SecurityCapability"]
    assert generic["capabilityIdentifier"] == ("standard", OID_SRTP_CRYPTO_CAPABILITY)


def test_legacy_offer_is_read_and_flagged() -> None:
    legacy = security_capability(["AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_32"], legacy=True)
    del legacy["genericH235SecurityCapability"]
    assert parse_security_capability(legacy) == SecurityOffer(("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_32"),
                                                              legacy=True)
    assert parse_security_capability({"encryptionCapability": [("algorithm", (1, 2, 3))]}) == SecurityOffer(())


def test_unknown_and_unsupported_entries_are_skipped() -> None:
    from vcore.h323 import h235_srtp

    obj = h235_srtp.type_object(h235_srtp.SRTP_CRYPTO_CAPABILITY)
    obj.set_val([
        {"cryptoSuite": (0, 0, 8, 235, 0, 4, 93)},  # F8_128_HMAC_SHA1_80: not implemented
        {"cryptoSuite": (0, 0, 8, 235, 0, 4, 91), "sessionParams": {"unencryptedSrtp": True}},
        {"cryptoSuite": (0, 0, 8, 235, 0, 4, 91), "sessionParams": {"kdr": 10}},
        {"sessionParams": {"windowSizeHint": 128}},
        {"cryptoSuite": (0, 0, 8, 235, 0, 4, 92), "sessionParams": {"windowSizeHint": 128}, "allowMKI": True},
    ])
    assert decode_srtp_crypto_capability(obj.to_aper()) == ("AES_CM_128_HMAC_SHA1_32",)


def _srtp_keys(value: list[dict[str, object]]) -> bytes:
    from vcore.h323 import h235_srtp

    obj = h235_srtp.type_object(h235_srtp.SRTP_KEYS)
    obj.set_val(value)
    data = obj.to_aper()
    assert isinstance(data, bytes)
    return data


def test_strict_key_parsing() -> None:
    one = {"masterKey": bytes(16), "masterSalt": bytes(14)}
    with pytest.raises(SignallingParseError, match=r"SrtpKeys holds 2 keys; vcore takes exactly one \(no MKI\)"):
        decode_srtp_keys(_srtp_keys([one, one]), "AES_CM_128_HMAC_SHA1_80")
    with pytest.raises(SignallingParseError, match="SrtpKeys uses an MKI"):
        decode_srtp_keys(_srtp_keys([{**one, "mki": {"length": 1, "value": b"\x01"}}]), "AES_CM_128_HMAC_SHA1_80")
    with pytest.raises(SignallingParseError, match="lifetime powerOfTwo 31 is shorter"):
        decode_srtp_keys(_srtp_keys([{**one, "lifetime": ("powerOfTwo", 31)}]), "AES_CM_128_HMAC_SHA1_80")
    assert decode_srtp_keys(_srtp_keys([{**one, "lifetime": ("powerOfTwo", 48)}]), "AES_CM_128_HMAC_SHA1_80")
    with pytest.raises(SignallingParseError, match="needs a 16-byte key and a 12-byte salt, got 16 and 14"):
        decode_srtp_keys(_srtp_keys([one]), "AEAD_AES_128_GCM")
    with pytest.raises(SignallingParseError, match="malformed SrtpKeys: 1 trailing bytes"):
        decode_srtp_keys(SRTP_KEYS + b"\x00", KEY.suite)
    with pytest.raises(SignallingParseError, match="malformed SrtpKeys"):
        decode_srtp_keys(SRTP_KEYS[:-3], KEY.suite)
    with pytest.raises(SignallingParseError, match="does not match the channel's suite AES_CM_128_HMAC_SHA1_32"):
        decode_h235_key(H235_KEY, "AES_CM_128_HMAC_SHA1_32")
    with pytest.raises(SignallingParseError, match="unknown SRTP suite 'NULL'"):
        decode_h235_key(H235_KEY, "NULL")
    with pytest.raises(SignallingParseError, match="at least one suite"):
        encode_srtp_crypto_capability([])


def test_capability_with_too_many_entries_is_refused() -> None:
    data = encode_srtp_crypto_capability(["AES_CM_128_HMAC_SHA1_80"] * 17)
    with pytest.raises(SignallingParseError, match="lists 17 suites, more than 16"):
        decode_srtp_crypto_capability(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=80))
def test_fuzz_decoders_raise_only_parse_errors(data: bytes) -> None:
    for decode in (decode_srtp_crypto_capability, lambda d: decode_srtp_keys(d, KEY.suite),
                   lambda d: decode_h235_key(d, KEY.suite)):
        try:
            decode(data)
        except SignallingParseError:
            pass


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=len(H235_KEY) * 8 - 1))
def test_fuzz_bit_flips_in_a_valid_key(bit: int) -> None:
    data = bytearray(H235_KEY)
    data[bit // 8] ^= 0x80 >> (bit % 8)
    try:
        key = decode_h235_key(bytes(data), KEY.suite)
    except SignallingParseError:
        return
    assert key.suite == KEY.suite  # a flip inside the key bytes gives another, still well-formed, key


def test_tshark_decodes_the_carriage(tmp_path: Path) -> None:
    """tshark 4.0 names the H.235.8 capability by its OID and carries our exact bytes.

    (Wireshark 4.0 has the SrtpCryptoCapability dissector but never reaches it:
    its H.245 dissector looks up ``nonCollapsingRaw`` with an empty key, which its
    own debug field shows; the PER bytes are checked against the hand vectors above.)
    """
    tshark = require_tool("tshark")
    olc = {
        "forwardLogicalChannelNumber": 1,
        "forwardLogicalChannelParameters": {
            "dataType": ("h235Media", {
                "encryptionAuthenticationAndIntegrity": security_capability(["AES_CM_128_HMAC_SHA1_80",
                                                                            "AES_CM_128_HMAC_SHA1_32"]),
                "mediaType": ("audioData", ("g711Ulaw64k", 20)),
            }),
            "multiplexParameters": ("h2250LogicalChannelParameters", {"sessionID": 1}),
        },
        "encryptionSync": {"synchFlag": 0, "h235Key": encode_h235_key(KEY)},
    }
    pdu = asn1.encode_h245(("request", ("openLogicalChannel", olc)))
    pcap = tmp_path / "h245.pcap"
    pcap.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 147)  # DLT 147: USER0
                     + struct.pack("<IIII", 0, 0, len(pdu), len(pdu)) + pdu)
    out = subprocess.run(
        [tshark, "-r", str(pcap), "-o", 'uat:user_dlts:"User 0 (DLT=147)","h245dg","0","","0",""',
         "-T", "fields", "-E", "separator=|", "-e", "h245.standardOid", "-e", "h245.nonCollapsingRaw",
         "-e", "h245.h235Key", "-e", "_ws.malformed", "-e", "_ws.expert"],
        capture_output=True, timeout=60, check=True).stdout.decode().strip()
    oid, raw, key, malformed, expert = out.split("|")
    assert oid == "0.0.8.235.0.4.90"
    assert bytes.fromhex(raw) == CAPABILITY_80_32
    assert bytes.fromhex(key) == H235_KEY
    assert malformed == "" and expert == ""
