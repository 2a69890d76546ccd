"""SRTP/SRTCP: RFC vectors, libsrtp (pylibsrtp) round trips, tampering, replay, limits.

Every test runs on both kernel twins (compiled and pure Python).
"""

from __future__ import annotations

import base64
import random
import struct
from types import ModuleType
from typing import Any, Callable

import pylibsrtp
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

import vcore
from vcore import ParseError, SrtpAuthError, SrtpLimitError, SrtpReplayError, SrtpSession
from vcore.errors import VcoreError
from vcore.srtp import SRTP_SUITES, derive_session_keys

H = bytes.fromhex


@pytest.fixture
def k(twin: Callable[[str], ModuleType]) -> ModuleType:
    """The SRTP kernel module, compiled or pure Python."""
    return twin("_fastpath_srtp")


def rtp(seq: int, ssrc: int = 0x12345678, payload: bytes = b"", pt: int = 96, ts: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts, ssrc) + payload


def rtcp_sr(ssrc: int = 0x12345678, extra: bytes = b"") -> bytes:
    body = struct.pack("!IIIII", 0xDEADBEEF, 0x12345678, 1000, 10, 1000) + extra
    return struct.pack("!BBHI", 0x80, 200, (len(body) + 4) // 4, ssrc) + body


def key_for(suite: str, seed: int = 1) -> bytes:
    s = SRTP_SUITES[suite]
    return random.Random(seed).randbytes(s.master_key_len + s.master_salt_len)


# -- kernels -------------------------------------------------------------------------


def test_compiled_twin_is_built() -> None:
    import os

    if os.environ.get("VCORE_NO_EXTENSIONS"):
        pytest.skip("compiled twin disabled by VCORE_NO_EXTENSIONS=1")
    from vcore._speedups import fastpath_srtp, is_compiled

    assert is_compiled(fastpath_srtp)


def test_rtp_header_length(k: ModuleType) -> None:
    assert k.rtp_header_length(rtp(1)) == 12
    # two CSRCs
    p = bytes([0x82, 96]) + rtp(1)[2:] + b"\0" * 8
    assert k.rtp_header_length(p) == 20
    # one-byte header extension (RFC 8285) of 2 words after one CSRC
    p = bytes([0x91, 96]) + rtp(1)[2:] + b"\0" * 4 + b"\xbe\xde\x00\x02" + b"\0" * 8 + b"pl"
    assert k.rtp_header_length(p) == 12 + 4 + 4 + 8


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (b"\x80\x60", "RTP packet too short (2 bytes, header needs 12)"),
        (b"\x40" + b"\0" * 11, "not an RTP version 2 packet (version 1)"),
        (b"\x81" + b"\0" * 11, "RTP packet too short for its header (12 bytes, header 16)"),
        (b"\x90" + b"\0" * 13, "RTP packet too short for its header extension (14 bytes)"),
        (b"\x90" + b"\0" * 13 + b"\x00\x01", "RTP packet too short for its header (16 bytes, header 20)"),
    ],
)
def test_rtp_header_errors(k: ModuleType, packet: bytes, message: str) -> None:
    with pytest.raises(ParseError) as e:
        k.rtp_header_length(packet)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("seq", "highest", "expected"),
    [
        (5, 4, 5),
        (4, 5, 4),
        (0, 0xFFFF, 0x10000),  # wrap forward: ROC + 1
        (0xFFFF, 0x10000, 0xFFFF),  # late packet from before the wrap: ROC - 1
        (0x8002, 0x10001, 0x8002),  # s_l < 2^15, SEQ - s_l > 2^15: previous ROC
        (0x8001, 0x10001, 0x18001),  # SEQ - s_l == 2^15: same ROC
        (0x7FFF, 0x1C000, 0x17FFF),
        (0x1000, 0x1C000, 0x21000),  # s_l >= 2^15, s_l - 2^15 > SEQ: next ROC
        (0xFFF0, 10, 0xFFF0),  # would be ROC -1: stays at ROC 0 (libsrtp)
        (7, (0xFFFFFFFF << 16) | 0xFFF0, 1 << 48 | 7),  # past 2^48: caller refuses
    ],
)
def test_estimate_index_appendix_a(k: ModuleType, seq: int, highest: int, expected: int) -> None:
    assert k.estimate_index(seq, highest) == expected


def test_replay_window(k: ModuleType) -> None:
    w = k.ReplayWindow(64)
    assert w.size == 64 and w.highest == -1
    assert w.check(1000) == k.REPLAY_OK
    w.add(1000)
    assert w.check(1000) == k.REPLAY_SEEN
    assert w.check(999) == k.REPLAY_OK
    assert w.check(1000 - 63) == k.REPLAY_OK
    assert w.check(1000 - 64) == k.REPLAY_TOO_OLD
    w.add(990)
    assert w.check(990) == k.REPLAY_SEEN
    w.add(1010)  # slide by 20: 990 and 1000 still inside
    assert (w.check(990), w.check(1000), w.check(1005)) == (k.REPLAY_SEEN, k.REPLAY_SEEN, k.REPLAY_OK)
    w.add(1010 + 63)
    assert w.check(1010) == k.REPLAY_SEEN and w.check(1009) == k.REPLAY_TOO_OLD
    w.add(5000)  # a jump past the whole window forgets everything
    assert w.check(5000 - 1) == k.REPLAY_OK and w.highest == 5000
    for bad in (63, 32769):
        with pytest.raises(ValueError, match="replay window must be 64..32768 packets"):
            k.ReplayWindow(bad)


@pytest.mark.parametrize("size", [64, 100, 128, 1000])
def test_replay_window_matches_a_set(k: ModuleType, size: int) -> None:
    w = k.ReplayWindow(size)
    rnd = random.Random(size)
    seen: set[int] = set()
    highest = -1
    for _ in range(3000):
        i = max(0, highest + rnd.randint(-size - 20, 40))
        if highest < 0 or i > highest:
            want = k.REPLAY_OK
        elif highest - i >= size:
            want = k.REPLAY_TOO_OLD
        else:
            want = k.REPLAY_SEEN if i in seen else k.REPLAY_OK
        assert w.check(i) == want
        if want == k.REPLAY_OK:
            w.add(i)
            seen.add(i)
            highest = max(highest, i)


def test_rfc3711_b2_aes_cm_keystream(k: ModuleType) -> None:
    """RFC 3711 Appendix B.2 (session key 2B7E..., salt F0F1...FCFD, SSRC 0, index 0)."""
    ecb = Cipher(algorithms.AES(H("2B7E151628AED2A6ABF7158809CF4F3C")), modes.ECB()).encryptor()
    ks = k.cm_keystream(ecb, H("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"), 0, 0, 1044512)
    assert len(ks) == 1044512  # 65282 AES blocks
    assert ks[:48] == H(
        "E03EAD0935C95E80E166B16DD92B4EB4"
        "D23513162B02D0F72A43A2FE4A5F97AB"
        "41E95B3BB0A2E8DD477901E4FCA894C0"
    )
    assert ks[0xFEFF * 16 :] == H(
        "EC8CDF7398607CB0F2D21675EA9EA1E4"
        "362B7C3C6773516318A077D7FC5073AE"
        "6A2CC3787889374FBEB4C81B17BA6C44"
    )


def test_rfc3711_b3_key_derivation() -> None:
    keys = derive_session_keys(
        "AES_CM_128_HMAC_SHA1_80", H("E1F97A0D3E018BE0D64FA32C06DE4139"), H("0EC675AD498AFEEBB6960B3AABE6")
    )
    assert keys.srtp_key == H("C61E7A93744F39EE10734AFE3FF7A087")
    assert keys.srtp_salt == H("30CBBC08863D8C85D49DB34A9AE1")
    assert keys.srtp_auth == H("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    assert "C61E" not in repr(keys).upper()


def test_rfc6188_key_derivation() -> None:
    """RFC 6188 §7.2 (AES-256) and §7.4 (AES-192) PRF test cases."""
    k256 = derive_session_keys(
        "AES_256_CM_HMAC_SHA1_80",
        H("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6"),
        H("3b04803de51ee7c96423ab5b78d2"),
    )
    assert k256.srtp_key == H("5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4")
    assert k256.srtp_salt == H("fa31791685ca444a9e07c6c64e93")
    assert k256.srtp_auth == H("fd9c32d39ed5fbb5a9dc96b30818454d1313dc05")
    k192 = derive_session_keys(
        "AES_192_CM_HMAC_SHA1_80",
        H("73edc66c4fa15776fb57f9505c17136550ffda71f3e8e5f1"),
        H("c8522f3acd4ce86d5add78edbb11"),
    )
    assert k192.srtp_key == H("31874736a8f1143870c26e4857d8a5b2c4a354407faadabb")
    assert k192.srtp_salt == H("2372b82d639b6d8503a47adc0a6c")
    assert k192.srtp_auth == H("355b10973cd95b9eacf4061c7e1a7151e7cfbfcb")


# RFC 7714 §16 / §17: session key and salt given directly (no key derivation).
RFC7714_SALT = H("517569642070726f2071756f")
RFC7714_RTP = H(
    "8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573"
)
RFC7714_RTCP = H(
    "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
)
RFC7714 = {
    16: (
        H("8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf"
          "8833899d7f27beb16a9152cf765ee4390cce"),
        H("81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded"
          "0bb9275bc84aa45896cf4d2fc5abf87245d9eade800005d4"),
    ),
    32: (
        H("8040f17b8041f8d35501a0b232b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799"
          "b87b7aa3db36dfffd6b0f9bb7878d7a76c13"),
        H("81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be8415f658c61de047"
          "6f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be800005d4"),
    ),
}


def _gcm_transform(k: ModuleType, keylen: int, rtcp: bool) -> Any:
    key = bytes(range(keylen))
    usage = k.KeyUsage((1 << 31) if rtcp else (1 << 48), "SRTCP" if rtcp else "SRTP")
    return k.SrtpTransform(rtcp, k.CIPHER_AES_GCM, AESGCM(key), RFC7714_SALT, None, 16, b"", 128, usage)


@pytest.mark.parametrize("keylen", [16, 32])
def test_rfc7714_gcm_vectors(k: ModuleType, keylen: int) -> None:
    srtp, srtcp = RFC7714[keylen]
    assert _gcm_transform(k, keylen, False).protect(RFC7714_RTP) == srtp
    assert _gcm_transform(k, keylen, False).unprotect(srtp) == RFC7714_RTP
    tx = _gcm_transform(k, keylen, True)
    tx.set_roc(0x4D617273, 0x5D4)  # next SRTCP index of SSRC "Mars"
    assert tx.protect_rtcp(RFC7714_RTCP) == srtcp
    assert _gcm_transform(k, keylen, True).unprotect_rtcp(srtcp) == RFC7714_RTCP


@pytest.mark.parametrize(
    ("suite", "key", "expected"),
    [
        # libsrtp test/srtp_driver.c known answers (also reproduced by pylibsrtp below)
        ("AES_CM_128_HMAC_SHA1_80", "e1f97a0d3e018be0d64fa32c06de41390ec675ad498afeebb6960b3aabe6",
         "4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb"),
        ("AES_256_CM_HMAC_SHA1_80",
         "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b63b04803de51ee7c96423ab5b78d2",
         "f1d9de17ff251ff1aa007774b0b4b40da08d9d9a5b3a55d8873b"),
    ],
)
def test_libsrtp_known_answers(k: ModuleType, suite: str, key: str, expected: str) -> None:
    plain = H("800f1234decafbadcafebabe") + b"\xab" * 16
    s = SrtpSession(suite, H(key), kernel=k)
    assert s.protect(plain) == plain[:12] + H(expected)
    assert SrtpSession(suite, H(key), kernel=k).unprotect(plain[:12] + H(expected)) == plain


# -- pylibsrtp round trips -----------------------------------------------------------

P = pylibsrtp.Policy
LIBSRTP_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": P.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": P.SRTP_PROFILE_AES128_CM_SHA1_32,
    "AEAD_AES_128_GCM": P.SRTP_PROFILE_AEAD_AES_128_GCM,
    "AEAD_AES_256_GCM": P.SRTP_PROFILE_AEAD_AES_256_GCM,
    "NULL_HMAC_SHA1_80": 5,  # libsrtp's srtp_profile_null_sha1_80 (pylibsrtp names no constant)
}


def libsrtp_pair(suite: str, key: bytes) -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    prof = LIBSRTP_PROFILES[suite]
    tx = pylibsrtp.Session(P(key=key, ssrc_type=P.SSRC_ANY_OUTBOUND, srtp_profile=prof))
    rx = pylibsrtp.Session(P(key=key, ssrc_type=P.SSRC_ANY_INBOUND, srtp_profile=prof))
    return tx, rx


def _traffic(ssrcs: list[int], start: int, count: int, seed: int) -> list[bytes]:
    """RTP packets of several SSRCs, sequence numbers crossing the 16-bit wrap."""
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        for n, ssrc in enumerate(ssrcs):
            seq = (start + n * 7 + i) & 0xFFFF
            out.append(rtp(seq, ssrc, rnd.randbytes(rnd.randint(0, 300)), ts=i * 3000))
    return out


def _lossy_reordered(packets: list[bytes], seed: int) -> list[bytes]:
    """Drop about 10 %, swap neighbours within a few places (RFC 3711 App. A must cope)."""
    rnd = random.Random(seed)
    kept = [p for p in packets if rnd.random() > 0.1]
    for i in range(0, len(kept) - 4, 3):
        j = i + rnd.randint(1, 3)
        kept[i], kept[j] = kept[j], kept[i]
    return kept


@pytest.mark.parametrize("suite", list(LIBSRTP_PROFILES))
def test_libsrtp_to_vcore_rtp(k: ModuleType, suite: str) -> None:
    key = key_for(suite)
    tx, _ = libsrtp_pair(suite, key)
    ssrcs = [0x11111111, 0x22222222, 0xCAFEBABE]
    plain = _traffic(ssrcs, 65500, 80, seed=1)
    protected = {p: tx.protect(p) for p in plain}
    s = SrtpSession(suite, key, kernel=k)
    for p in _lossy_reordered(plain, seed=2):
        assert s.unprotect(protected[p]) == p
    for ssrc in ssrcs:
        assert s.roc(ssrc, outbound=False) == 1
    assert s.ssrcs(outbound=False) == sorted(ssrcs)


@pytest.mark.parametrize("suite", list(LIBSRTP_PROFILES))
def test_vcore_to_libsrtp_rtp(k: ModuleType, suite: str) -> None:
    key = key_for(suite)
    tx, rx = libsrtp_pair(suite, key)
    s = SrtpSession(suite, key, kernel=k)
    plain = _traffic([0x01020304, 0xFEEDFACE], 65510, 70, seed=3)
    sent = [s.protect(p) for p in plain]
    # byte-identical to libsrtp's own output
    assert sent == [tx.protect(p) for p in plain]
    order = list(range(len(plain)))
    rnd = random.Random(4)
    for i in range(0, len(order) - 4, 3):
        j = i + rnd.randint(1, 3)
        order[i], order[j] = order[j], order[i]
    for i in order:
        assert rx.unprotect(sent[i]) == plain[i]
    assert s.roc(0x01020304) == 1


@pytest.mark.parametrize("suite", list(LIBSRTP_PROFILES))
def test_libsrtp_rtcp_both_directions(k: ModuleType, suite: str) -> None:
    key = key_for(suite, seed=5)
    tx, rx = libsrtp_pair(suite, key)
    s = SrtpSession(suite, key, kernel=k)
    for i in range(20):
        for ssrc in (0xAAAA0001, 0xBBBB0002):
            pkt = rtcp_sr(ssrc, bytes([i]) * (4 * (i % 3)))
            assert s.unprotect_rtcp(tx.protect_rtcp(pkt)) == pkt
            assert rx.unprotect_rtcp(s.protect_rtcp(pkt)) == pkt


@pytest.mark.parametrize("suite", list(LIBSRTP_PROFILES))
def test_libsrtp_protect_many(k: ModuleType, suite: str) -> None:
    key = key_for(suite, seed=6)
    tx, _ = libsrtp_pair(suite, key)
    plain = _traffic([1, 2], 65530, 40, seed=7)
    s = SrtpSession(suite, key, kernel=k)
    out = s.protect_many(plain[:33]) + s.protect_many(plain[33:])
    assert out == [tx.protect(p) for p in plain]
    assert s.stats().srtp_protected == len(plain)


# -- session behaviour ---------------------------------------------------------------

ALL_SUITES = list(SRTP_SUITES)


@pytest.mark.parametrize("suite", ALL_SUITES)
@pytest.mark.parametrize("mki", [None, b"\x00\x00\x00\x01"])
def test_round_trip_every_suite(k: ModuleType, suite: str, mki: bytes | None) -> None:
    key = key_for(suite, seed=8)
    a = SrtpSession(suite, key, mki=mki, kernel=k)
    b = SrtpSession(suite, key, mki=mki, kernel=k)
    ext = bytes([0x92, 96]) + rtp(1)[2:] + b"\x01\x02\x03\x04" * 2 + b"\xbe\xde\x00\x01\x10\xff\0\0"
    for i, p in enumerate([rtp(65534), rtp(65535, payload=b"x" * 100), rtp(0, payload=b"y"), ext]):
        sp = a.protect(p)
        s = SRTP_SUITES[suite]
        assert len(sp) == len(p) + s.srtp_tag_len + (len(mki) if mki else 0)
        if s.cipher != 0 and len(p) > k.rtp_header_length(p):
            assert sp[k.rtp_header_length(p) : len(p)] != p[k.rtp_header_length(p) :]
        assert b.unprotect(sp) == p, i
        c = rtcp_sr(extra=b"abcd")
        assert b.unprotect_rtcp(a.protect_rtcp(c)) == c
    assert b.roc(0x12345678, outbound=False) == 1


def test_twins_agree() -> None:
    """Cross-twin: protect with one twin, unprotect with the other; identical bytes."""
    from vcore._speedups import load_twin

    try:
        kc = load_twin("_fastpath_srtp", "c")
    except ImportError:
        pytest.skip("compiled twin not built")
    kp = load_twin("_fastpath_srtp", "py")
    for suite in ALL_SUITES:
        key = key_for(suite, seed=9)
        a = SrtpSession(suite, key, mki=b"\x07", kernel=kc)
        b = SrtpSession(suite, key, mki=b"\x07", kernel=kp)
        plain = _traffic([5, 6], 65530, 12, seed=10)
        out_a = a.protect_many(plain)
        assert out_a == [b.protect(p) for p in plain]
        assert [b.unprotect(x) for x in out_a] == plain
        c = rtcp_sr(7)
        assert a.protect_rtcp(c) == b.protect_rtcp(c)


TAMPER_SUITES = ALL_SUITES


@pytest.mark.parametrize("suite", TAMPER_SUITES)
@pytest.mark.parametrize("mki", [None, b"\x01\x02"])
def test_every_byte_tampered_is_rejected(k: ModuleType, suite: str, mki: bytes | None) -> None:
    key = key_for(suite, seed=11)
    tx = SrtpSession(suite, key, mki=mki, kernel=k)
    rx = SrtpSession(suite, key, mki=mki, kernel=k)
    good = tx.protect(rtp(1000, payload=b"payload bytes"))
    good_rtcp = tx.protect_rtcp(rtcp_sr())
    for pkt, unprotect in ((good, rx.unprotect), (good_rtcp, rx.unprotect_rtcp)):
        for pos in range(len(pkt)):
            for flip in (0x01, 0x80):
                bad = bytearray(pkt)
                bad[pos] ^= flip
                if pos == 0 and flip == 0x80:
                    continue  # the version field: that is a ParseError (below)
                with pytest.raises(SrtpAuthError):
                    unprotect(bytes(bad))
        with pytest.raises(ParseError):
            unprotect(bytes([pkt[0] ^ 0x80]) + pkt[1:])
    st_ = rx.stats()
    assert st_.auth_failures > 0 and st_.srtp_unprotected == 0 and st_.srtcp_unprotected == 0
    assert rx.ssrcs(outbound=False) == []  # no stream context from unauthentic packets
    # nothing moved: the genuine packets still pass
    assert rx.unprotect(good) == rtp(1000, payload=b"payload bytes")
    assert rx.unprotect_rtcp(good_rtcp) == rtcp_sr()


@pytest.mark.parametrize("suite", TAMPER_SUITES)
def test_every_replay_is_rejected(k: ModuleType, suite: str) -> None:
    key = key_for(suite, seed=12)
    tx = SrtpSession(suite, key, kernel=k)
    rx = SrtpSession(suite, key, replay_window=64, kernel=k)
    sent = [tx.protect(rtp(s)) for s in range(65500, 65500 + 100)]
    sent_rtcp = [tx.protect_rtcp(rtcp_sr()) for _ in range(100)]
    for i in range(100):
        rx.unprotect(sent[i])
        rx.unprotect_rtcp(sent_rtcp[i])
        for j in range(max(0, i - 70), i + 1):  # the window and a little beyond
            with pytest.raises(SrtpReplayError):
                rx.unprotect(sent[j])
            with pytest.raises(SrtpReplayError):
                rx.unprotect_rtcp(sent_rtcp[j])
    with pytest.raises(SrtpReplayError, match=r"replayed SRTP packet \(SSRC 0x12345678, index 65599\)"):
        rx.unprotect(sent[-1])
    with pytest.raises(SrtpReplayError, match="SRTP packet too old for the replay window"):
        rx.unprotect(sent[0])
    assert rx.stats().replays > 0


def test_late_packets_inside_window_accepted_once(k: ModuleType) -> None:
    tx = SrtpSession("AES_CM_128_HMAC_SHA1_80", key_for("AES_CM_128_HMAC_SHA1_80"), kernel=k)
    rx = SrtpSession("AES_CM_128_HMAC_SHA1_80", key_for("AES_CM_128_HMAC_SHA1_80"), kernel=k)
    sent = [tx.protect(rtp(s)) for s in range(1300)]
    rx.unprotect(sent[1200])
    rx.unprotect(sent[1200 - 1023])  # default window 1024 (browsers', aiortc's): a NACKed packet 85 behind is fine
    with pytest.raises(SrtpReplayError, match="too old"):
        rx.unprotect(sent[1200 - 1024])
    with pytest.raises(SrtpReplayError, match="replayed"):
        rx.unprotect(sent[1200 - 1023])
    small = SrtpSession("AES_CM_128_HMAC_SHA1_80", key_for("AES_CM_128_HMAC_SHA1_80"), kernel=k, replay_window=128)
    small.unprotect(sent[200])
    with pytest.raises(SrtpReplayError, match="too old"):  # libsrtp's 128, when asked for
        small.unprotect(sent[200 - 128])


def test_rejected_packet_changes_no_state(k: ModuleType) -> None:
    suite = "AES_CM_128_HMAC_SHA1_80"
    tx = SrtpSession(suite, key_for(suite), kernel=k)
    rx = SrtpSession(suite, key_for(suite), kernel=k)
    sent = [tx.protect(rtp(s)) for s in range(65530, 65536)]
    for p in sent[:3]:
        rx.unprotect(p)
    # a forged packet far ahead (it would move the ROC and the window) is dropped
    forged = bytearray(tx.protect(rtp(20000)))  # index 1:20000
    forged[-1] ^= 1
    with pytest.raises(SrtpAuthError):
        rx.unprotect(bytes(forged))
    assert rx.roc(0x12345678, outbound=False) == 0
    for p in sent[3:]:
        rx.unprotect(p)
    assert rx.stats().srtp_unprotected == 6


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM"])
def test_truncated_input_is_parse_error(k: ModuleType, suite: str) -> None:
    key = key_for(suite)
    tx = SrtpSession(suite, key, kernel=k)
    p = tx.protect(rtp(1))
    c = tx.protect_rtcp(rtcp_sr())
    rx = SrtpSession(suite, key, kernel=k)
    tag = SRTP_SUITES[suite].srtp_tag_len
    for n in range(12 + tag):
        with pytest.raises(ParseError):
            rx.unprotect(p[:n])
        with pytest.raises(ParseError):
            tx.protect(p[: min(n, 11)])
    for n in range(8 + 4 + SRTP_SUITES[suite].srtcp_tag_len):
        with pytest.raises(ParseError):
            rx.unprotect_rtcp(c[:n])
    with pytest.raises(ParseError, match=r"RTP packet too short \(3 bytes, header needs 12\)"):
        rx.unprotect(p[:3])


def test_protect_many_is_all_or_nothing(k: ModuleType) -> None:
    s = SrtpSession("AES_CM_128_HMAC_SHA1_80", key_for("AES_CM_128_HMAC_SHA1_80"), kernel=k)
    with pytest.raises(ParseError):
        s.protect_many([rtp(1), rtp(2), b"\x80\x00"])
    assert s.stats().srtp_protected == 0 and s.ssrcs() == []
    assert s.protect_many([]) == []


def test_roc_and_limits(k: ModuleType) -> None:
    suite = "AES_CM_128_HMAC_SHA1_80"
    key = key_for(suite)
    tx = SrtpSession(suite, key, kernel=k)
    rx = SrtpSession(suite, key, kernel=k)
    tx.set_roc(0x12345678, 0xFFFFFFFF)
    rx.set_roc(0x12345678, 0xFFFFFFFF, outbound=False)
    p = tx.protect(rtp(0xFFFF))
    assert rx.unprotect(p) == rtp(0xFFFF)
    assert tx.roc(0x12345678) == 0xFFFFFFFF
    with pytest.raises(SrtpLimitError, match="would pass 2\\^48"):
        tx.protect(rtp(0))
    with pytest.raises(SrtpLimitError, match="would pass 2\\^48"):
        tx.protect_many([rtp(0)])
    tx.set_srtcp_index(0x12345678, 0x7FFFFFFF)
    c = tx.protect_rtcp(rtcp_sr())
    assert rx.unprotect_rtcp(c) == rtcp_sr()
    with pytest.raises(SrtpLimitError, match="would pass 2\\^31"):
        tx.protect_rtcp(rtcp_sr())
    with pytest.raises(ValueError):
        tx.set_roc(1, 1 << 32)


def test_key_packet_limit(k: ModuleType) -> None:
    class Small(SrtpSession):
        SRTP_MAX_PACKETS = 3
        SRTCP_MAX_PACKETS = 2

    s = Small("AEAD_AES_128_GCM", key_for("AEAD_AES_128_GCM"), kernel=k)
    s.protect(rtp(1))
    s.protect_many([rtp(2), rtp(3)])
    with pytest.raises(SrtpLimitError, match="limit of 3 SRTP packets"):
        s.protect(rtp(4))
    with pytest.raises(SrtpLimitError):
        s.protect_many([rtp(4)])
    s.protect_rtcp(rtcp_sr())
    s.protect_rtcp(rtcp_sr())
    with pytest.raises(SrtpLimitError, match="limit of 2 SRTCP packets"):
        s.protect_rtcp(rtcp_sr())
    st_ = s.stats()
    assert (st_.srtp_protected, st_.srtcp_protected, st_.srtp_key_packets) == (3, 2, 3)


def test_inline_key_and_mki(k: ModuleType) -> None:
    raw = key_for("AES_CM_128_HMAC_SHA1_32", seed=13)
    b64 = base64.b64encode(raw).decode()
    a = SrtpSession("AES_CM_128_HMAC_SHA1_32", f"inline:{b64}|2^20|1:4", kernel=k)
    b = SrtpSession("AES_CM_128_HMAC_SHA1_32", raw, mki=b"\0\0\0\1", kernel=k)
    p = a.protect(rtp(9, payload=b"abc"))
    assert p[-8:-4] == b"\0\0\0\1"  # MKI between payload and the 32-bit tag
    assert b.unprotect(p) == rtp(9, payload=b"abc")
    other = SrtpSession("AES_CM_128_HMAC_SHA1_32", raw, mki=b"\0\0\0\2", kernel=k)
    with pytest.raises(SrtpAuthError):
        other.unprotect(p)
    assert SrtpSession("AES_CM_128_HMAC_SHA1_32", f"inline:{b64}", kernel=k).protect(rtp(1)) == SrtpSession(
        "AES_CM_128_HMAC_SHA1_32", raw, kernel=k
    ).protect(rtp(1))
    # lifetime from the key-params
    short = SrtpSession("AES_CM_128_HMAC_SHA1_80", "inline:" + base64.b64encode(raw).decode() + "|2", kernel=k)
    short.protect(rtp(1))
    short.protect(rtp(2))
    with pytest.raises(SrtpLimitError):
        short.protect(rtp(3))


def test_bad_configuration_never_shows_the_key(k: ModuleType) -> None:
    raw = key_for("AES_CM_128_HMAC_SHA1_80", seed=14)
    b64 = base64.b64encode(raw).decode()
    for args in (
        ("NO_SUCH_SUITE", raw),
        ("AEAD_AES_128_GCM", raw),
        ("AES_CM_128_HMAC_SHA1_80", "inline:" + b64[:-4] + "!!!!"),
        ("AES_CM_128_HMAC_SHA1_80", "inline:" + b64 + "x"),
        ("AES_CM_128_HMAC_SHA1_80", b64),
    ):
        with pytest.raises(ValueError) as e:
            SrtpSession(*args, kernel=k)
        text = str(e.value)
        assert b64 not in text and raw.hex() not in text.lower() and repr(raw) not in text
    with pytest.raises(ValueError, match="replay window"):
        SrtpSession("AES_CM_128_HMAC_SHA1_80", raw, replay_window=63, kernel=k)
    s = SrtpSession("AES_CM_128_HMAC_SHA1_80", raw, kernel=k)
    for text in (repr(s), str(s), repr(s.stats())):
        assert b64 not in text and raw.hex() not in text.lower()
    with pytest.raises(SrtpAuthError) as e2:
        s.unprotect(rtp(1, payload=b"\0" * 20))
    assert raw.hex() not in str(e2.value)


def test_aliases_and_public_api() -> None:
    assert "SrtpSession" in vcore.__all__ and vcore.SrtpSession is SrtpSession
    raw = key_for("AES_CM_128_HMAC_SHA1_80")
    assert SrtpSession("SRTP_AES128_CM_HMAC_SHA1_80", raw).suite == "AES_CM_128_HMAC_SHA1_80"
    assert issubclass(SrtpAuthError, VcoreError) and issubclass(SrtpReplayError, VcoreError)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=120), rtcp=st.booleans())
def test_fuzz_unprotect_only_vcore_errors(data: bytes, rtcp: bool) -> None:
    from vcore._speedups import load_twin

    for t in ("py", "c"):
        try:
            kern = load_twin("_fastpath_srtp", t)  # type: ignore[arg-type]
        except ImportError:
            continue
        for suite in ("AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"):
            s = SrtpSession(suite, key_for(suite), mki=b"\x01", kernel=kern)
            try:
                (s.unprotect_rtcp if rtcp else s.unprotect)(data)
            except (ParseError, SrtpAuthError, SrtpReplayError, SrtpLimitError):
                pass


def test_hmac_template_is_the_only_mac(k: ModuleType) -> None:
    """The kernel uses the HMAC it is given: a session built by hand matches SrtpSession."""
    suite = "AES_CM_128_HMAC_SHA1_80"
    raw = key_for(suite)
    keys = derive_session_keys(suite, raw[:16], raw[16:])
    t = k.SrtpTransform(
        False, k.CIPHER_AES_CM, Cipher(algorithms.AES(keys.srtp_key), modes.ECB()).encryptor(),
        keys.srtp_salt, chmac.HMAC(keys.srtp_auth, hashes.SHA1()), 10, b"", 128, k.KeyUsage(1 << 48, "SRTP"),
    )
    assert t.protect(rtp(77, payload=b"z" * 33)) == SrtpSession(suite, raw, kernel=k).protect(
        rtp(77, payload=b"z" * 33)
    )


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=80))
def test_fuzz_protect_only_vcore_errors(data: bytes) -> None:
    from vcore._speedups import load_twin

    outs = []
    for t in ("py", "c"):
        try:
            kern = load_twin("_fastpath_srtp", t)  # type: ignore[arg-type]
        except ImportError:
            continue
        s = SrtpSession("AES_CM_128_HMAC_SHA1_80", key_for("AES_CM_128_HMAC_SHA1_80"), kernel=kern)
        r: list[object] = []
        for f in (s.protect, s.protect_rtcp, lambda d: s.protect_many([d])):
            try:
                r.append(f(data))
            except (ParseError, SrtpReplayError) as e:  # the batch repeats protect's index: refused
                r.append(str(e))
        outs.append(r)
    assert all(o == outs[0] for o in outs)  # same bytes, same error messages


def test_too_long_packet(k: ModuleType) -> None:
    s = SrtpSession("AES_CM_128_HMAC_SHA1_80", key_for("AES_CM_128_HMAC_SHA1_80"), kernel=k)
    huge = rtp(1, payload=b"\0" * 70000)
    with pytest.raises(ParseError, match=r"RTP packet too long \(70012 bytes\)"):
        s.protect(huge)
    with pytest.raises(ParseError, match="RTCP packet too long"):
        s.protect_rtcp(rtcp_sr(extra=b"\0" * 70000))
    big = rtp(2, payload=b"\1" * 65000)  # the largest UDP payloads still work
    assert SrtpSession("AES_CM_128_HMAC_SHA1_80", key_for("AES_CM_128_HMAC_SHA1_80"), kernel=k).unprotect(
        s.protect(big)
    ) == big


def test_null_cipher_leaves_payload_and_clears_e_flag(k: ModuleType) -> None:
    s = SrtpSession("NULL_HMAC_SHA1_80", key_for("NULL_HMAC_SHA1_80"), kernel=k)
    p = rtp(1, payload=b"visible")
    assert s.protect(p)[: len(p)] == p
    c = s.protect_rtcp(rtcp_sr())
    assert c[: len(rtcp_sr())] == rtcp_sr()
    assert c[len(rtcp_sr())] & 0x80 == 0  # E flag clear: SRTCP index 0, unencrypted


def test_buffer_types(k: ModuleType) -> None:
    s = SrtpSession("AEAD_AES_128_GCM", key_for("AEAD_AES_128_GCM"), kernel=k)
    r = SrtpSession("AEAD_AES_128_GCM", key_for("AEAD_AES_128_GCM"), kernel=k)
    p = rtp(3, payload=b"abc")
    for i, conv in enumerate((bytes, bytearray, memoryview)):
        q = rtp(3 + i, payload=b"abc")
        assert r.unprotect(conv(s.protect(conv(q)))) == q
    assert s.protect_many([bytearray(rtp(10))])[0] == SrtpSession(
        "AEAD_AES_128_GCM", key_for("AEAD_AES_128_GCM"), kernel=k
    ).protect(rtp(10))
    del p


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.integers(-300, 40000)), min_size=1, max_size=40),
    split=st.integers(0, 40),
)
def test_protect_many_equals_protect(steps: list[tuple[int, int]], split: int) -> None:
    """Batches number packets exactly as one-by-one protect does (reordering, wraps, SSRCs)."""
    from vcore._speedups import load_twin

    seqs = {1: 65000, 2: 10, 3: 40000}
    packets = []
    for ssrc, delta in steps:
        seqs[ssrc] = (seqs[ssrc] + delta) & 0xFFFF
        packets.append(rtp(seqs[ssrc], ssrc, b"p"))
    suite = "AES_CM_128_HMAC_SHA1_32"
    for t in ("py", "c"):
        try:
            kern = load_twin("_fastpath_srtp", t)  # type: ignore[arg-type]
        except ImportError:
            continue
        one = SrtpSession(suite, key_for(suite), kernel=kern)
        many = SrtpSession(suite, key_for(suite), kernel=kern)
        expected, kept = [], []
        for p in packets:
            try:
                expected.append(one.protect(p))
            except SrtpReplayError:  # an index protect already used: refused, as protect_many must too
                with pytest.raises(SrtpReplayError, match="refusing to protect SRTP index"):
                    SrtpSession(suite, key_for(suite), kernel=kern).protect_many(kept + [p])
                continue
            kept.append(p)
        got = many.protect_many(kept[:split]) + many.protect_many(kept[split:])
        assert got == expected
        assert [many.roc(s) for s in (1, 2, 3)] == [one.roc(s) for s in (1, 2, 3)]


@pytest.mark.parametrize("suite", ["AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"])
def test_protect_refuses_a_repeated_index(k: ModuleType, suite: str) -> None:
    """Issue 14, finding 3: protecting an index twice would reuse a keystream (a GCM nonce): refused, no state moved."""
    s = SrtpSession(suite, key_for(suite), kernel=k)
    first = s.protect(rtp(100, payload=b"hello"))
    s.protect(rtp(101, payload=b"next"))
    for again in (lambda: s.protect(rtp(100, payload=b"other")), lambda: s.protect_many([rtp(102), rtp(102)]),
                  lambda: s.protect_many([rtp(103), rtp(101)])):
        with pytest.raises(SrtpReplayError, match=r"refusing to protect SRTP index 10[0-2] of SSRC 0x12345678 again"):
            again()
    assert s.roc(0x12345678) == 0 and s.protect(rtp(102)) != first  # the refused batches changed nothing
    receiver = SrtpSession(suite, key_for(suite), kernel=k)
    assert receiver.unprotect(first) == rtp(100, payload=b"hello")


# -- a new stream first seen right after the wrap (issue 14, finding 4) ----------------

WRAP_SUITES = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM", "NULL_HMAC_SHA1_80"]


def _sender_packets(suite: str, start: int, count: int, ssrc: int = 0x12345678, roc: int = 0) -> list[bytes]:
    """``count`` SRTP packets from a sender whose first sequence number is ``start`` (at ``roc``)."""
    tx = SrtpSession(suite, key_for(suite, seed=21))
    if roc:
        tx.set_roc(ssrc, roc)
    return [tx.protect(rtp(start + i, ssrc, payload=bytes([i & 0xFF]) * 20)) for i in range(count)]


@pytest.mark.parametrize("suite", WRAP_SUITES)
def test_new_stream_right_after_the_wrap_tries_the_next_roc(k: ModuleType, suite: str) -> None:
    """Finding 4: the sender starts at 65530, its first 10 packets (before the wrap) are lost; the
    receiver's first packet is SEQ 4 under the sender's ROC 1. It failed under ROC 0, and so did
    every later packet (0 of 190); now ROC 1 is tried and all 190 pass."""
    sent = _sender_packets(suite, 65530, 200)
    rx = SrtpSession(suite, key_for(suite, seed=21), kernel=k)
    for i, p in enumerate(sent[10:], start=10):
        assert rx.unprotect(p) == rtp(65530 + i, payload=bytes([i]) * 20), i
    st_ = rx.stats()
    assert (st_.srtp_unprotected, st_.auth_failures) == (190, 0)
    assert rx.roc(0x12345678, outbound=False) == 1
    # the lost packets, late: those before the wrap are ROC 0 again (RFC 3711 App. A), inside the window
    for i, p in enumerate(sent[:10]):
        assert rx.unprotect(p) == rtp(65530 + i, payload=bytes([i]) * 20)
    with pytest.raises(SrtpReplayError, match=r"replayed SRTP packet \(SSRC 0x12345678, index 65540\)"):
        rx.unprotect(sent[10])  # index 1:4, as adopted


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"])
def test_forged_packet_on_a_new_ssrc_leaves_no_state(k: ModuleType, suite: str) -> None:
    """A packet that fails under ROC and ROC + 1 is an SrtpAuthError (one failure counted), and no
    stream context, ROC or window is left behind; only one extra ROC is ever tried."""
    rx = SrtpSession(suite, key_for(suite, seed=21), kernel=k)
    genuine_roc1 = _sender_packets(suite, 65530, 20)[10]  # SEQ 4 at ROC 1
    forged = bytearray(genuine_roc1)
    forged[-1] ^= 1
    at_roc2 = _sender_packets(suite, 4, 1, roc=2)[0]  # genuine, but two wraps ahead: not tried
    for bad in (bytes(forged), at_roc2):
        with pytest.raises(SrtpAuthError) as e:
            rx.unprotect(bad)
        assert str(e.value) == "SRTP authentication failed"
    st_ = rx.stats()
    assert (st_.auth_failures, st_.srtp_unprotected) == (2, 0)
    assert rx.ssrcs(outbound=False) == [] and rx.roc(0x12345678, outbound=False) is None
    # nothing moved: a genuine stream at ROC 0 (SEQ 5 onwards) still starts at ROC 0 ...
    fresh = _sender_packets(suite, 5, 3)
    assert [rx.unprotect(p) for p in fresh] == [rtp(5 + i, payload=bytes([i]) * 20) for i in range(3)]
    assert rx.roc(0x12345678, outbound=False) == 0
    # ... and the tampered packet is still refused once the stream exists
    with pytest.raises(SrtpAuthError, match="^SRTP authentication failed$"):
        rx.unprotect(bytes(forged))
    # SRTCP carries its index: a tampered SRTCP packet is one failure, as before
    c = bytearray(SrtpSession(suite, key_for(suite, seed=21)).protect_rtcp(rtcp_sr()))
    c[-1] ^= 1
    with pytest.raises(SrtpAuthError, match="^SRTCP authentication failed$"):
        rx.unprotect_rtcp(bytes(c))
    assert rx.stats().auth_failures == 4


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"])
def test_established_stream_never_jumps_roc(k: ModuleType, suite: str) -> None:
    """Once a packet of the SSRC authenticated, only RFC 3711 App. A numbers its packets: a genuine
    packet one ROC ahead of the estimate (more than 2^15 packets lost) is refused, the ROC stays."""
    sent = _sender_packets(suite, 100, 1)[0]  # 0:100
    ahead = _sender_packets(suite, 200, 1, roc=1)[0]  # 1:200, estimated 0:200
    rx = SrtpSession(suite, key_for(suite, seed=21), kernel=k)
    assert rx.unprotect(sent) == rtp(100, payload=b"\0" * 20)
    with pytest.raises(SrtpAuthError, match="^SRTP authentication failed$"):
        rx.unprotect(ahead)
    assert rx.roc(0x12345678, outbound=False) == 0 and rx.stats().auth_failures == 1
    assert rx.unprotect(_sender_packets(suite, 101, 1)[0]) == rtp(101, payload=b"\0" * 20)


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"])
def test_next_roc_probe_bounds(k: ModuleType, suite: str) -> None:
    """The probe is for SEQ < 2^15 only (``ROC_PROBE_SEQ_LIMIT``); it starts from a ROC given
    to ``set_roc``; and never past ROC 2^32 - 1."""
    assert k.ROC_PROBE_SEQ_LIMIT == 0x8000
    key = key_for(suite, seed=21)
    last_low = _sender_packets(suite, 0x7FFF, 1, roc=1)[0]
    first_high = _sender_packets(suite, 0x8000, 1, roc=1)[0]
    rx = SrtpSession(suite, key, kernel=k)
    with pytest.raises(SrtpAuthError, match="^SRTP authentication failed$"):
        rx.unprotect(first_high)
    assert rx.ssrcs(outbound=False) == []
    assert rx.unprotect(last_low) == rtp(0x7FFF, payload=b"\0" * 20)
    assert rx.roc(0x12345678, outbound=False) == 1
    # from a signalled ROC: 5 is tried, then 6
    rx2 = SrtpSession(suite, key, kernel=k)
    rx2.set_roc(0x12345678, 5, outbound=False)
    assert rx2.unprotect(_sender_packets(suite, 3, 1, roc=6)[0]) == rtp(3, payload=b"\0" * 20)
    assert rx2.roc(0x12345678, outbound=False) == 6
    # at ROC 2^32 - 1 there is no next ROC: a failure is an authentication failure, not a limit
    rx3 = SrtpSession(suite, key, kernel=k)
    rx3.set_roc(0x12345678, 0xFFFFFFFF, outbound=False)
    with pytest.raises(SrtpAuthError, match="^SRTP authentication failed$"):
        rx3.unprotect(last_low)
    assert rx3.ssrcs(outbound=False) == [] and rx3.stats().auth_failures == 1


@pytest.mark.parametrize("suite", list(LIBSRTP_PROFILES))
def test_libsrtp_stream_first_seen_after_the_wrap(k: ModuleType, suite: str) -> None:
    """libsrtp sends from SEQ 65530; its first 10 packets are lost; vcore takes the other 190."""
    key = key_for(suite, seed=22)
    tx, _ = libsrtp_pair(suite, key)
    plain = [rtp(65530 + i, 0xCAFEBABE, payload=bytes([i]) * 50, ts=i * 3000) for i in range(200)]
    sent = [tx.protect(p) for p in plain]
    rx = SrtpSession(suite, key, kernel=k)
    assert [rx.unprotect(p) for p in sent[10:]] == plain[10:]
    assert rx.roc(0xCAFEBABE, outbound=False) == 1 and rx.stats().auth_failures == 0


@settings(max_examples=80, deadline=None)
@given(
    start=st.one_of(st.integers(65000, 65535), st.integers(0, 65535)),
    missed=st.one_of(st.integers(0, 600), st.integers(0, 140000)),
    suite=st.sampled_from(["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"]),
)
def test_first_packet_after_losses_property(start: int, missed: int, suite: str) -> None:
    """A receiver that missed the first ``missed`` packets takes all later ones exactly when the
    first one it sees is at ROC 0, or at ROC 1 with SEQ < 2^15; otherwise none (no state left).
    Both twins agree, byte for byte and message for message."""
    from vcore._speedups import load_twin

    first = start + missed
    tx = SrtpSession(suite, key_for(suite, seed=23))
    tx.set_roc(0x12345678, first >> 16)
    plain = [rtp(first + i, payload=bytes([i])) for i in range(12)]
    sent = [tx.protect(p) for p in plain]
    roc, seq = first >> 16, first & 0xFFFF
    expect_all = roc == 0 or (roc == 1 and seq < 0x8000)
    results = []
    for t in ("py", "c"):
        try:
            kern = load_twin("_fastpath_srtp", t)  # type: ignore[arg-type]
        except ImportError:
            continue
        rx = SrtpSession(suite, key_for(suite, seed=23), kernel=kern)
        got: list[object] = []
        for p in sent:
            try:
                got.append(rx.unprotect(p))
            except SrtpAuthError as e:
                got.append(str(e))
        assert got == (plain if expect_all else ["SRTP authentication failed"] * len(sent))
        assert rx.roc(0x12345678, outbound=False) == ((first + len(sent) - 1) >> 16 if expect_all else None)
        results.append(got)
    assert all(r == results[0] for r in results)
