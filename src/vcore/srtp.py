"""SRTP and SRTCP sessions (RFC 3711, RFC 6188, RFC 7714).

``SrtpSession`` protects and unprotects RTP and RTCP under one master key. The
per-packet work (framing, counters, keystream application, replay windows,
rollover counters) is done by the ``_fastpath_srtp`` kernels; the cryptographic
primitives are ``cryptography`` objects created here once per session: an
AES-ECB encryptor context (AES-CM keystream from counter blocks), a keyed
HMAC-SHA1 template, or an ``AESGCM`` object.

Thread-safety: a session is not thread-safe. Use it from one thread (or one
asyncio loop), or serialize calls with a lock. Sessions share nothing.

Key material never appears in a repr, an exception message or a log line.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _chmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import _speedups
from .errors import SrtpAuthError, SrtpReplayError

if TYPE_CHECKING:
    from . import _fastpath_srtp_py as _k

__all__ = [
    "SRTP_SUITES",
    "SrtpSuite",
    "SessionKeys",
    "SrtpStats",
    "SrtpSession",
    "derive_session_keys",
    "SrtpAuthError",
    "SrtpReplayError",
]

_log = logging.getLogger(__name__)

_NULL: Final = 0
_AES_CM: Final = 1
_AES_GCM: Final = 2


@dataclass(frozen=True)
class SrtpSuite:
    """One crypto suite: lengths in octets, as the defining RFC names them."""

    name: str
    cipher: int  # 0 NULL, 1 AES-CM, 2 AES-GCM (the kernel's CIPHER_* values)
    master_key_len: int
    master_salt_len: int
    session_key_len: int  # n_e (0 for the NULL cipher)
    session_salt_len: int  # n_s
    auth_key_len: int  # n_a (0 for AEAD)
    srtp_tag_len: int  # n_tag of SRTP
    srtcp_tag_len: int  # n_tag of SRTCP (80 bits for the _32 suites, RFC 4568 §6.2.1)
    rfc: str


SRTP_SUITES: Final[dict[str, SrtpSuite]] = {
    s.name: s
    for s in (
        SrtpSuite("AES_CM_128_HMAC_SHA1_80", _AES_CM, 16, 14, 16, 14, 20, 10, 10, "RFC 4568 §6.2.1"),
        SrtpSuite("AES_CM_128_HMAC_SHA1_32", _AES_CM, 16, 14, 16, 14, 20, 4, 10, "RFC 4568 §6.2.2"),
        SrtpSuite("AES_192_CM_HMAC_SHA1_80", _AES_CM, 24, 14, 24, 14, 20, 10, 10, "RFC 6188 §3"),
        SrtpSuite("AES_192_CM_HMAC_SHA1_32", _AES_CM, 24, 14, 24, 14, 20, 4, 10, "RFC 6188 §3"),
        SrtpSuite("AES_256_CM_HMAC_SHA1_80", _AES_CM, 32, 14, 32, 14, 20, 10, 10, "RFC 6188 §3"),
        SrtpSuite("AES_256_CM_HMAC_SHA1_32", _AES_CM, 32, 14, 32, 14, 20, 4, 10, "RFC 6188 §3"),
        SrtpSuite("AEAD_AES_128_GCM", _AES_GCM, 16, 12, 16, 12, 0, 16, 16, "RFC 7714 §12"),
        SrtpSuite("AEAD_AES_256_GCM", _AES_GCM, 32, 12, 32, 12, 0, 16, 16, "RFC 7714 §12"),
        # Authentication without encryption, for debugging (libsrtp's null_sha1_80/_32):
        SrtpSuite("NULL_HMAC_SHA1_80", _NULL, 16, 14, 0, 14, 20, 10, 10, "RFC 3711 §4.1.3"),
        SrtpSuite("NULL_HMAC_SHA1_32", _NULL, 16, 14, 0, 14, 20, 4, 10, "RFC 3711 §4.1.3"),
    )
}

# Other spellings of the same suites (RFC 5764 DTLS-SRTP profile names, ffmpeg's).
_ALIASES: Final = {
    "SRTP_AES128_CM_HMAC_SHA1_80": "AES_CM_128_HMAC_SHA1_80",
    "SRTP_AES128_CM_HMAC_SHA1_32": "AES_CM_128_HMAC_SHA1_32",
    "SRTP_AEAD_AES_128_GCM": "AEAD_AES_128_GCM",
    "SRTP_AEAD_AES_256_GCM": "AEAD_AES_256_GCM",
    "SRTP_NULL_HMAC_SHA1_80": "NULL_HMAC_SHA1_80",
    "SRTP_NULL_HMAC_SHA1_32": "NULL_HMAC_SHA1_32",
}

# RFC 3711 §4.3.1 / §4.3.2 key derivation labels
LABEL_SRTP_ENCRYPTION: Final = 0x00
LABEL_SRTP_AUTH: Final = 0x01
LABEL_SRTP_SALT: Final = 0x02
LABEL_SRTCP_ENCRYPTION: Final = 0x03
LABEL_SRTCP_AUTH: Final = 0x04
LABEL_SRTCP_SALT: Final = 0x05


def _suite(name: str) -> SrtpSuite:
    key = _ALIASES.get(name, name)
    try:
        return SRTP_SUITES[key]
    except KeyError:
        raise ValueError(
            f"unknown SRTP suite {name!r}; known: {', '.join(SRTP_SUITES)}"
        ) from None


def _prf(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 §4.3.1/§4.3.3 AES-CM PRF with key derivation rate 0.

    x = (label || 0^48) XOR master salt, the salt right-padded to 14 octets (the 12-octet
    AEAD salts of RFC 7714 §11 too, as libsrtp does); keystream from IV = x * 2^16.
    """
    x = bytearray(master_salt.ljust(14, b"\0"))
    x[7] ^= label
    enc = Cipher(algorithms.AES(master_key), modes.CTR(bytes(x) + b"\0\0")).encryptor()
    return enc.update(b"\0" * length) + enc.finalize()


@dataclass(frozen=True, repr=False)
class SessionKeys:
    """Session keys derived from one master key (RFC 3711 §4.3). repr hides them."""

    srtp_key: bytes
    srtp_auth: bytes
    srtp_salt: bytes
    srtcp_key: bytes
    srtcp_auth: bytes
    srtcp_salt: bytes

    def __repr__(self) -> str:
        return "SessionKeys(<hidden>)"


def derive_session_keys(suite: str, master_key: bytes, master_salt: bytes) -> SessionKeys:
    """The six session keys of ``suite`` for a master key and salt (RFC 3711 §4.3, KDR 0)."""
    s = _suite(suite)
    _check_lengths(s, master_key, master_salt)

    def d(label: int, n: int) -> bytes:
        return _prf(master_key, master_salt, label, n) if n else b""

    return SessionKeys(
        srtp_key=d(LABEL_SRTP_ENCRYPTION, s.session_key_len),
        srtp_auth=d(LABEL_SRTP_AUTH, s.auth_key_len),
        srtp_salt=d(LABEL_SRTP_SALT, s.session_salt_len),
        srtcp_key=d(LABEL_SRTCP_ENCRYPTION, s.session_key_len),
        srtcp_auth=d(LABEL_SRTCP_AUTH, s.auth_key_len),
        srtcp_salt=d(LABEL_SRTCP_SALT, s.session_salt_len),
    )


def _check_lengths(s: SrtpSuite, master_key: bytes, master_salt: bytes) -> None:
    if len(master_key) != s.master_key_len or len(master_salt) != s.master_salt_len:
        raise ValueError(
            f"{s.name} needs a {s.master_key_len}-octet master key and a "
            f"{s.master_salt_len}-octet master salt "
            f"({s.master_key_len + s.master_salt_len} octets together)"
        )


_INLINE = re.compile(
    r"^inline:(?P<b64>[A-Za-z0-9+/=]+)"
    r"(?:\|(?P<life>2\^\d+|\d+))?"
    r"(?:\|(?P<mki>\d+):(?P<mkilen>\d+))?$"
)


def _parse_key(s: SrtpSuite, key: bytes | str) -> tuple[bytes, bytes, int | None, bytes | None]:
    """(master key, master salt, lifetime, MKI) from raw bytes or an RFC 4568 §6.1 key-params."""
    lifetime: int | None = None
    mki: bytes | None = None
    if isinstance(key, str):
        m = _INLINE.match(key.strip())
        if m is None:
            raise ValueError("SRTP key string is not an RFC 4568 'inline:' key-params")
        try:
            raw = base64.b64decode(m.group("b64"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("SRTP inline key is not valid base64") from None
        life = m.group("life")
        if life is not None:
            lifetime = 1 << int(life[2:]) if life.startswith("2^") else int(life)
        if m.group("mki") is not None:
            mlen = int(m.group("mkilen"))
            if not 1 <= mlen <= 128:
                raise ValueError("MKI length must be 1..128 octets (RFC 4568 §6.1)")
            value = int(m.group("mki"))
            if value >= 1 << (8 * mlen):
                raise ValueError("MKI value does not fit its length")
            mki = value.to_bytes(mlen, "big")
    else:
        raw = bytes(key)
    n = s.master_key_len
    if len(raw) != n + s.master_salt_len:
        raise ValueError(
            f"{s.name} needs {n + s.master_salt_len} octets of key material "
            f"(master key {n} + master salt {s.master_salt_len}), got {len(raw)}"
        )
    return raw[:n], raw[n:], lifetime, mki


@dataclass(frozen=True)
class SrtpStats:
    """Counters of one session (a snapshot)."""

    srtp_protected: int
    srtp_unprotected: int
    srtcp_protected: int
    srtcp_unprotected: int
    auth_failures: int
    replays: int
    srtp_key_packets: int  # packets counted against the master key's 2^48 limit
    srtcp_key_packets: int  # packets counted against the master key's 2^31 limit


class SrtpSession:
    """SRTP/SRTCP protection under one master key, both directions.

    ``key`` is master key || master salt (bytes) or an RFC 4568 ``inline:`` key-params string
    (optionally with ``|lifetime`` and ``|MKI:length``). Per-SSRC state is kept separately for
    the protect and unprotect directions; a stream context is created by the first packet
    protected, or by the first authentic packet received (RFC 3711 §3.3.1: ROC 0, unless
    ``set_roc`` said otherwise; a first packet with SEQ < 2^15 that fails is tried once more
    under the next ROC, in case the sender wrapped before it, see docs/srtp.md).

    Failed authentication raises ``SrtpAuthError``, a replayed or too-old packet
    ``SrtpReplayError``, truncated input ``ParseError``, a spent key ``SrtpLimitError``; a
    rejected packet changes no state. ``protect`` refuses an index it already used, or one
    older than the window (``SrtpReplayError``): that would repeat a keystream or, with GCM, a
    nonce (RFC 3711 §9.1). Retransmit the protected bytes instead, as vcore's NACK answers do.

    ``replay_window`` (64..32768, default 1024 as browsers and aiortc; libsrtp's is 128) is the
    number of packets back from the highest index that are remembered: a NACKed packet of a
    60-100 KB keyframe burst can arrive 85 packets late. ``kernel`` selects a kernel twin explicitly
    (``vcore._speedups.load_twin("_fastpath_srtp", "py")``); tests and benchmarks use it.

    Not thread-safe: confine a session to one thread or serialize calls.
    """

    SRTP_MAX_PACKETS: int = 1 << 48  # RFC 3711 §9.2
    SRTCP_MAX_PACKETS: int = 1 << 31  # RFC 3711 §9.2

    def __init__(
        self,
        suite: str,
        key: bytes | str,
        *,
        mki: bytes | None = None,
        replay_window: int = 1024,
        kernel: ModuleType | None = None,
    ) -> None:
        s = _suite(suite)
        master_key, master_salt, lifetime, inline_mki = _parse_key(s, key)
        if mki is not None and inline_mki is not None and bytes(mki) != inline_mki:
            raise ValueError("MKI given twice with different values")
        mki_value = bytes(mki) if mki is not None else (inline_mki or b"")
        if len(mki_value) > 128:
            raise ValueError("MKI length must be 0..128 octets")
        k: Any = kernel if kernel is not None else _speedups.fastpath_srtp
        if not k.MIN_WINDOW <= replay_window <= k.MAX_WINDOW:
            raise ValueError(
                f"replay window must be {k.MIN_WINDOW}..{k.MAX_WINDOW} packets, not {replay_window}"
            )
        self._suite = s
        self._mki_len = len(mki_value)
        self._replay_window = replay_window
        keys = derive_session_keys(s.name, master_key, master_salt)
        srtp_limit = self.SRTP_MAX_PACKETS
        srtcp_limit = self.SRTCP_MAX_PACKETS
        if lifetime is not None:
            srtp_limit = min(srtp_limit, lifetime)
            srtcp_limit = min(srtcp_limit, lifetime)
        self._srtp_usage = k.KeyUsage(srtp_limit, "SRTP")
        self._srtcp_usage = k.KeyUsage(srtcp_limit, "SRTCP")

        def transform(rtcp: bool) -> _k.SrtpTransform:
            ek, ak, salt = (
                (keys.srtcp_key, keys.srtcp_auth, keys.srtcp_salt)
                if rtcp
                else (keys.srtp_key, keys.srtp_auth, keys.srtp_salt)
            )
            crypto: Any = None
            if s.cipher == _AES_CM:
                crypto = Cipher(algorithms.AES(ek), modes.ECB()).encryptor()
            elif s.cipher == _AES_GCM:
                crypto = AESGCM(ek)
            mac = _chmac.HMAC(ak, hashes.SHA1()) if s.auth_key_len else None
            tag_len = s.srtcp_tag_len if rtcp else s.srtp_tag_len
            usage = self._srtcp_usage if rtcp else self._srtp_usage
            t: _k.SrtpTransform = k.SrtpTransform(
                rtcp, s.cipher, crypto, salt, mac, tag_len, mki_value, replay_window, usage
            )
            return t

        self._rtp_tx = transform(False)
        self._rtp_rx = transform(False)
        self._rtcp_tx = transform(True)
        self._rtcp_rx = transform(True)
        self._kernel_name = getattr(k, "__name__", "?")
        # Per-packet calls go straight to the kernel: an instance attribute saves one Python
        # frame per packet. The methods below document them (and a subclass may override them).
        cls = type(self)
        for name, target in (
            ("protect", self._rtp_tx.protect),
            ("unprotect", self._rtp_rx.unprotect),
            ("protect_rtcp", self._rtcp_tx.protect_rtcp),
            ("unprotect_rtcp", self._rtcp_rx.unprotect_rtcp),
            ("protect_many", self._rtp_tx.protect_many),
        ):
            if getattr(cls, name) is getattr(SrtpSession, name):
                setattr(self, name, target)
        _log.debug("SRTP session created: suite %s, MKI length %d", s.name, self._mki_len)

    # -- per packet ------------------------------------------------------------------
    def protect(self, rtp: bytes) -> bytes:
        """SRTP-protect one RTP packet."""
        return self._rtp_tx.protect(rtp)

    def unprotect(self, srtp: bytes) -> bytes:
        """Authenticate, replay-check and decrypt one SRTP packet; returns the RTP packet."""
        return self._rtp_rx.unprotect(srtp)

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        """SRTCP-protect one (compound) RTCP packet."""
        return self._rtcp_tx.protect_rtcp(rtcp)

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        """Authenticate, replay-check and decrypt one SRTCP packet; returns the RTCP packet."""
        return self._rtcp_rx.unprotect_rtcp(srtcp)

    def protect_many(self, rtp_packets: list[bytes]) -> list[bytes]:
        """``[protect(p) for p in rtp_packets]`` with the per-call cost amortized.

        All packets are checked first: if one is malformed, none is protected.
        """
        return self._rtp_tx.protect_many(rtp_packets)

    # -- state -----------------------------------------------------------------------
    @property
    def suite(self) -> str:
        """The suite name (RFC 4568 / RFC 7714 spelling)."""
        return self._suite.name

    def set_roc(self, ssrc: int, roc: int, *, outbound: bool = True) -> None:
        """Set the SRTP rollover counter of ``ssrc`` for protect (``outbound``) or unprotect.

        For a stream not seen yet, its first packet takes this ROC (RFC 3711 §3.3.1), or for
        ``unprotect`` the next one if it authenticates only under that (SEQ < 2^15).
        """
        (self._rtp_tx if outbound else self._rtp_rx).set_roc(ssrc, roc)

    def roc(self, ssrc: int, *, outbound: bool = True) -> int | None:
        """The SRTP rollover counter of ``ssrc`` in one direction, None before its first packet."""
        return (self._rtp_tx if outbound else self._rtp_rx).roc(ssrc)

    def set_srtcp_index(self, ssrc: int, index: int) -> None:
        """Set the next SRTCP index ``protect_rtcp`` uses for ``ssrc`` (0..2^31)."""
        self._rtcp_tx.set_roc(ssrc, index)

    def ssrcs(self, *, outbound: bool = True) -> list[int]:
        """SSRCs with an SRTP stream context in one direction."""
        return list((self._rtp_tx if outbound else self._rtp_rx).ssrcs)

    def stats(self) -> SrtpStats:
        """A snapshot of the session's counters."""
        return SrtpStats(
            srtp_protected=self._rtp_tx.packets,
            srtp_unprotected=self._rtp_rx.packets,
            srtcp_protected=self._rtcp_tx.packets,
            srtcp_unprotected=self._rtcp_rx.packets,
            auth_failures=self._rtp_rx.auth_failures + self._rtcp_rx.auth_failures,
            replays=self._rtp_rx.replays + self._rtcp_rx.replays,
            srtp_key_packets=self._srtp_usage.count,
            srtcp_key_packets=self._srtcp_usage.count,
        )

    def __repr__(self) -> str:
        return (
            f"<SrtpSession {self._suite.name} mki_len={self._mki_len} "
            f"window={self._replay_window} kernel={self._kernel_name}>"
        )
