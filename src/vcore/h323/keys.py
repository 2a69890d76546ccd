"""SRTP suites and master keys in H.245, as H.235.8 carries them (secure-channel mode).

**Which suites** (H.235.8 §4.1.2, §5.1): the ``encryptionAuthenticationAndIntegrity``
of an ``h235Media`` data type (capability or OpenLogicalChannel) holds a
``genericH235SecurityCapability``: a ``GenericCapability`` whose identifier is
the standard OID ``0.0.8.235.0.4.90`` and whose ``nonCollapsingRaw`` is the
PER encoding of ``SrtpCryptoCapability`` (one ``SrtpCryptoInfo`` per suite, in
preference order; an OpenLogicalChannel names exactly one).

**The key** (H.235.8 §4.1, §4.3): ``EncryptionSync.h235Key`` of the OpenLogicalChannel
is the PER ``H235Key.secureSharedSecret`` (H.235.0 ``V3KeySyncMaterial``) with
``algorithmOID`` = the suite's OID and ``genericKeyMaterial`` = the PER encoding
of ``SrtpKeys`` (one ``SrtpKeyParameters``: master key and master salt; no MKI,
default lifetime). The keys travel unencrypted inside H.245 because the whole
signalling connection runs over mutually authenticated TLS: H.235.8's
secure-channel mode (with plaintext signalling the keys are exposed, and
``session.security()`` says so).

**Suites.** H.235.8 Table 2 defines ``AES_CM_128_HMAC_SHA1_80`` (``…4.91``) and
``AES_CM_128_HMAC_SHA1_32`` (``…4.92``) (and F8, which vcore does not
implement). It predates the AEAD suites of RFC 7714, so no ITU-T OID names
``AEAD_AES_128_GCM``/``AEAD_AES_256_GCM``: vcore names them, inside the same
standard structures, with UUID-based OIDs under ``2.25`` (ITU-T X.667: no
registration, no collision), which a standard peer skips as unknown suites.
That naming is the only vcore-to-vcore part.

**Older vcore peers** (before H.235.8) listed suites as ``MediaEncryptionAlgorithm``
values in ``encryptionCapability`` (the AES-CM OIDs above, GCM through a
``nonStandard`` H.221 identifier with an invented vendor code) and sent the raw
key in ``genericKeyMaterial`` with the salt in ``clearSaltingKey``. That layout
is still read, and sent (``legacy=True``) only to a peer that offered nothing
else: it carries nothing H.235.8 cannot, and no other stack reads it.

The sender of a media stream generates its key (fresh per call and per
direction, :func:`secrets.token_bytes`) and sends it to the receiver. Key bytes
never appear in ``repr`` or logs. Everything here is thread-safe (pycrate
runs under the codec lock of :mod:`vcore.h323.asn1`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pycrate_core.charpy import Charpy

from . import asn1, h235_srtp
from .errors import SignallingParseError

__all__ = [
    "DEFAULT_SUITES",
    "OID_SRTP_CRYPTO_CAPABILITY",
    "SUITES",
    "SecurityOffer",
    "SrtpKeyMaterial",
    "SrtpSuite",
    "decode_h235_key",
    "decode_srtp_crypto_capability",
    "decode_srtp_keys",
    "encode_h235_key",
    "encode_srtp_crypto_capability",
    "encode_srtp_keys",
    "parse_security_capability",
    "security_capability",
    "suite_from_algorithm",
    "suite_from_oid",
]

OID_SRTP_CRYPTO_CAPABILITY = (0, 0, 8, 235, 0, 4, 90)  # H.235.8 §4.1.2: GenericCapability identifier
OID_AES_CM_128_HMAC_SHA1_80 = (0, 0, 8, 235, 0, 4, 91)  # H.235.8 §4.2 Table 2
OID_AES_CM_128_HMAC_SHA1_32 = (0, 0, 8, 235, 0, 4, 92)  # H.235.8 §4.2 Table 2
# RFC 7714 suites: no ITU-T OID exists; X.667 UUID OIDs (2.25.<UUID as an integer>), fixed for vcore.
OID_VCORE_AEAD_AES_128_GCM = (2, 25, 301399212709587985897320187642001991163)
OID_VCORE_AEAD_AES_256_GCM = (2, 25, 214023081371729032714783057933237604570)

MAX_SUITES = 16  # a capability naming more suites than this is refused (nobody defines that many)
_LEGACY_VENDOR_ID = ("h221NonStandard", {"t35CountryCode": 181, "t35Extension": 0, "manufacturerCode": 0})


@dataclass(frozen=True)
class SrtpSuite:
    """An SRTP protection profile (RFC 4568 §6.2 names, RFC 7714 for AEAD) and its H.235.8 suite OID."""

    name: str
    key_length: int
    salt_length: int
    oid: tuple[int, ...]
    standard: bool  # True: H.235.8 Table 2 defines the OID; False: vcore's X.667 OID

    def algorithm(self) -> Any:
        """The pre-H.235.8 (legacy vcore) ``MediaEncryptionAlgorithm`` value naming this suite."""
        if self.standard:
            return ("algorithm", self.oid)
        return ("nonStandard", {"nonStandardIdentifier": _LEGACY_VENDOR_ID, "data": self.name.encode("ascii")})


SUITES: dict[str, SrtpSuite] = {
    s.name: s
    for s in (
        SrtpSuite("AEAD_AES_128_GCM", 16, 12, OID_VCORE_AEAD_AES_128_GCM, False),  # RFC 7714 §12
        SrtpSuite("AES_CM_128_HMAC_SHA1_80", 16, 14, OID_AES_CM_128_HMAC_SHA1_80, True),  # RFC 3711 §8.2
        SrtpSuite("AES_CM_128_HMAC_SHA1_32", 16, 14, OID_AES_CM_128_HMAC_SHA1_32, True),  # RFC 4568 §6.2.1
        SrtpSuite("AEAD_AES_256_GCM", 32, 12, OID_VCORE_AEAD_AES_256_GCM, False),  # RFC 7714 §12
    )
}
DEFAULT_SUITES = ("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80")
_BY_OID = {s.oid: s for s in SUITES.values()}


def suite_from_oid(oid: Sequence[int]) -> SrtpSuite | None:
    """The suite an H.235.8 ``cryptoSuite`` OID names, or None when vcore does not know it."""
    return _BY_OID.get(tuple(oid))


def suite_from_algorithm(value: Any) -> SrtpSuite | None:
    """The suite a legacy ``MediaEncryptionAlgorithm`` value names, or None when vcore does not know it."""
    kind, body = value
    if kind == "algorithm":
        suite = suite_from_oid(body)
        return suite if suite is not None and suite.standard else None
    if kind == "nonStandard" and isinstance(body, dict) and body.get("nonStandardIdentifier") == _LEGACY_VENDOR_ID:
        data = body.get("data")
        for suite in SUITES.values():
            if not suite.standard and data == suite.name.encode("ascii"):
                return suite
    return None


@dataclass(frozen=True)
class SrtpKeyMaterial:
    """One direction's SRTP master key and salt for ``suite`` (key bytes kept out of ``repr``)."""

    suite: str
    master_key: bytes = field(repr=False)
    master_salt: bytes = field(repr=False)

    def __post_init__(self) -> None:
        spec = SUITES.get(self.suite)
        if spec is None:
            raise SignallingParseError(f"unknown SRTP suite {self.suite!r}")
        if len(self.master_key) != spec.key_length or len(self.master_salt) != spec.salt_length:
            raise SignallingParseError(
                f"{self.suite} needs a {spec.key_length}-byte key and a {spec.salt_length}-byte salt, "
                f"got {len(self.master_key)} and {len(self.master_salt)}"
            )

    @classmethod
    def generate(cls, suite: str) -> SrtpKeyMaterial:
        """Fresh random key material from :func:`secrets.token_bytes`."""
        spec = SUITES.get(suite)
        if spec is None:
            raise SignallingParseError(f"unknown SRTP suite {suite!r}")
        return cls(suite, secrets.token_bytes(spec.key_length), secrets.token_bytes(spec.salt_length))

    @property
    def key_and_salt(self) -> bytes:
        """``master_key || master_salt``, the layout libsrtp and pylibsrtp expect."""
        return self.master_key + self.master_salt


# --------------------------------------------------------------------------- H.235.8 PER


def _encode(name: str, value: Any) -> bytes:
    with asn1._lock:
        obj = h235_srtp.type_object(name)
        codec = _codec()
        depth = len(codec._off)
        try:
            data = obj.to_aper(value)
        except Exception as exc:  # pycrate raises many kinds
            raise SignallingParseError(f"cannot encode {name}: {exc}") from None
        finally:
            del codec._off[depth:]
    if not isinstance(data, bytes):  # pragma: no cover - pycrate returns None for an unset value
        raise SignallingParseError(f"cannot encode {name}: no value")
    return data


def _decode(name: str, data: bytes) -> Any:
    with asn1._lock:
        obj = h235_srtp.type_object(name)
        codec = _codec()
        depth = len(codec._off)
        char = Charpy(bytes(data))
        try:
            obj.from_aper(char)
            value = obj.get_val()
        except Exception as exc:
            text = str(exc) or type(exc).__name__
            raise SignallingParseError(f"malformed {name}: {text[:200]}") from None
        finally:
            del codec._off[depth:]
        if char.len_bit() >= 8:
            raise SignallingParseError(f"malformed {name}: {char.len_bit() // 8} trailing bytes")
    return value


def _codec() -> Any:
    asn1._load(asn1.H235_KEY)  # pycrate loaded and vcore's PER encoder fix installed (caller holds the lock)
    from pycrate_asn1rt.codecs import ASN1CodecPER

    return ASN1CodecPER


def encode_srtp_crypto_capability(suites: Sequence[str]) -> bytes:
    """PER ``SrtpCryptoCapability`` naming ``suites`` in preference order (no MKI, default session parameters)."""
    if not suites:
        raise SignallingParseError("an SrtpCryptoCapability names at least one suite")
    value = []
    for name in suites:
        suite = SUITES.get(name)
        if suite is None:
            raise SignallingParseError(f"unknown SRTP suite {name!r}")
        value.append({"cryptoSuite": suite.oid})
    return _encode(h235_srtp.SRTP_CRYPTO_CAPABILITY, value)


def decode_srtp_crypto_capability(data: bytes) -> tuple[str, ...]:
    """The suites vcore can use from a PER ``SrtpCryptoCapability``, in the sender's order.

    Entries vcore cannot honour are skipped (H.235.8 §5.1: the receiver picks
    among what it supports): an unknown or absent ``cryptoSuite``, session
    parameters that turn encryption or authentication off, or that need FEC
    ordering, a non-default key derivation rate or new parameters.
    """
    value = _decode(h235_srtp.SRTP_CRYPTO_CAPABILITY, data)
    if len(value) > MAX_SUITES:
        raise SignallingParseError(f"SrtpCryptoCapability lists {len(value)} suites, more than {MAX_SUITES}")
    out: list[str] = []
    for info in value:
        oid = info.get("cryptoSuite")
        suite = suite_from_oid(oid) if oid is not None else None
        params = info.get("sessionParams", {})
        unsupported = (params.get("unencryptedSrtp") or params.get("unencryptedSrtcp")
                       or params.get("unauthenticatedSrtp") or params.get("kdr", 0) != 0
                       or "fecOrder" in params or "newParameter" in params)
        if suite is not None and not unsupported and suite.name not in out:
            out.append(suite.name)
    return tuple(out)


def encode_srtp_keys(material: SrtpKeyMaterial) -> bytes:
    """PER ``SrtpKeys`` holding one ``SrtpKeyParameters`` (master key and salt, no lifetime, no MKI)."""
    return _encode(h235_srtp.SRTP_KEYS, [{"masterKey": material.master_key, "masterSalt": material.master_salt}])


def decode_srtp_keys(data: bytes, suite: str) -> SrtpKeyMaterial:
    """The key of a PER ``SrtpKeys`` for a channel protected with ``suite``.

    vcore uses no MKI, so exactly one key is accepted, without an MKI; a
    lifetime is accepted only if it is at least the RFC 3711 maximum
    (2^48 packets), which vcore enforces anyway.
    """
    value = _decode(h235_srtp.SRTP_KEYS, data)
    if len(value) != 1:
        raise SignallingParseError(f"SrtpKeys holds {len(value)} keys; vcore takes exactly one (no MKI)")
    params = value[0]
    if "mki" in params:
        raise SignallingParseError("SrtpKeys uses an MKI, which vcore does not support")
    lifetime = params.get("lifetime")
    if lifetime is not None:
        kind, n = lifetime
        packets = 2 ** n if kind == "powerOfTwo" and 0 <= n <= 64 else n if kind == "specific" else -1
        if packets < 2 ** 48:
            raise SignallingParseError(f"SrtpKeys lifetime {kind} {n} is shorter than vcore's rekey-free call")
    return SrtpKeyMaterial(suite, params["masterKey"], params["masterSalt"])


# --------------------------------------------------------------------------- H.245 carriage


@dataclass(frozen=True)
class SecurityOffer:
    """What an ``encryptionAuthenticationAndIntegrity`` offers: usable suites, and whether only in the legacy form.

    ``suites`` empty with ``encrypted`` True: protected with nothing vcore knows (never usable).
    """

    suites: tuple[str, ...]
    legacy: bool = False
    encrypted: bool = True


def security_capability(suites: Sequence[str], *, legacy: bool = False) -> dict[str, Any]:
    """The H.245 ``EncryptionAuthenticationAndIntegrity`` value offering ``suites`` (H.235.8 §5.1).

    ``legacy``: also list them in ``encryptionCapability`` for a vcore peer older than H.235.8.
    """
    value: dict[str, Any] = {}
    if legacy:
        value["encryptionCapability"] = [SUITES[name].algorithm() for name in suites]
    value["genericH235SecurityCapability"] = {
        "capabilityIdentifier": ("standard", OID_SRTP_CRYPTO_CAPABILITY),
        "nonCollapsingRaw": encode_srtp_crypto_capability(suites),
    }
    return value


def parse_security_capability(value: Any) -> SecurityOffer:
    """Read an H.245 ``EncryptionAuthenticationAndIntegrity`` (H.235.8 first, then the legacy vcore form)."""
    if not isinstance(value, dict):
        raise SignallingParseError("encryptionAuthenticationAndIntegrity is not a SEQUENCE")
    generic = value.get("genericH235SecurityCapability")
    if generic is not None:
        ident = generic.get("capabilityIdentifier")
        raw = generic.get("nonCollapsingRaw")
        if ident == ("standard", OID_SRTP_CRYPTO_CAPABILITY) and raw is not None:
            return SecurityOffer(decode_srtp_crypto_capability(raw))
    legacy = []
    for algorithm in value.get("encryptionCapability", []):
        suite = suite_from_algorithm(algorithm)
        if suite is not None and suite.name not in legacy:
            legacy.append(suite.name)
    return SecurityOffer(tuple(legacy), legacy=bool(legacy))


def encode_h235_key(material: SrtpKeyMaterial, *, legacy: bool = False) -> bytes:
    """PER ``H235Key`` for ``EncryptionSync.h235Key`` (H.235.8 §4.1; ``legacy``: the pre-H.235.8 vcore layout)."""
    suite = SUITES[material.suite]
    body: dict[str, Any] = {}
    if legacy:
        if suite.standard:
            body["algorithmOID"] = suite.oid
        body["paramS"] = {}
        body["clearSaltingKey"] = material.master_salt
        body["genericKeyMaterial"] = material.master_key
    else:
        body["algorithmOID"] = suite.oid
        body["paramS"] = {}
        body["genericKeyMaterial"] = encode_srtp_keys(material)
    return asn1.encode(asn1.H235_KEY, ("secureSharedSecret", body))


def decode_h235_key(data: bytes, suite: str) -> SrtpKeyMaterial:
    """Inverse of :func:`encode_h235_key` (either layout) for a channel protected with ``suite``."""
    spec = SUITES.get(suite)
    if spec is None:
        raise SignallingParseError(f"unknown SRTP suite {suite!r}")
    value = asn1.decode(asn1.H235_KEY, data)
    if value[0] != "secureSharedSecret":
        raise SignallingParseError(f"H235Key {value[0]} is not secureSharedSecret")
    body = value[1]
    oid = body.get("algorithmOID")
    if oid is not None and tuple(oid) != spec.oid:
        raise SignallingParseError(f"H235Key algorithm does not match the channel's suite {suite}")
    material = body.get("genericKeyMaterial")
    if material is None:
        raise SignallingParseError("H235Key lacks the master key")
    salt = body.get("clearSaltingKey")
    if salt is not None:  # legacy vcore layout: raw key, salt beside it
        return SrtpKeyMaterial(suite, material, salt)
    if oid is None:
        raise SignallingParseError("H235Key lacks the suite's algorithmOID")
    return decode_srtp_keys(material, suite)
