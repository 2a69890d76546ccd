"""SRTP master keys carried inside the (TLS-protected) H.245, H.235.8 style.

Which suite: the OpenLogicalChannel's data type is ``h235Media`` whose
``encryptionAuthenticationAndIntegrity.encryptionCapability`` lists the SRTP
protection profiles (H.245 ``H235Media``, H.235.0 §8.6). The AES-CM suites use
the H.235.8 §4.2 Table 2 object identifiers (``0.0.8.235.0.4.91`` and ``.92``);
H.235.8 predates the AEAD suites of RFC 7714, so vcore names those with the
H.245 non-standard escape: ``MediaEncryptionAlgorithm.nonStandard`` with an
H.221 vendor identifier (country 181, manufacturer 0) and the RFC 7714 suite
name as data.

The key: ``EncryptionSync.h235Key`` of the OpenLogicalChannel (H.245 §7.3.1,
H.235.0 §8.5) holds the PER encoding of ``H235Key.secureSharedSecret``
(``V3KeySyncMaterial``) with ``genericKeyMaterial`` = the SRTP master key,
``clearSaltingKey`` = the master salt and, for the AES-CM suites,
``algorithmOID`` = the suite's OID. H.235.8 itself encodes ``SrtpKeys``
(a module no maintained ASN.1 library ships); this layout is vcore's own and
only vcore reads it. The keys travel unencrypted inside H.245 because the
whole signalling connection runs over mutually authenticated TLS (the
"secure channel" mode of H.235.8 §5).

The sender of a media stream generates its key (fresh per call and per
direction, :func:`secrets.token_bytes`) and sends it to the receiver.
Key bytes never appear in ``repr`` or logs. All of this is thread-safe.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from . import asn1
from .errors import SignallingParseError

__all__ = [
    "SrtpSuite",
    "SUITES",
    "DEFAULT_SUITES",
    "suite_from_algorithm",
    "SrtpKeyMaterial",
    "encode_h235_key",
    "decode_h235_key",
]

_VENDOR_ID = ("h221NonStandard", {"t35CountryCode": 181, "t35Extension": 0, "manufacturerCode": 0})


@dataclass(frozen=True)
class SrtpSuite:
    """An SRTP protection profile (RFC 4568 §6.2 names, RFC 7714 for AEAD) and its H.245 identifier."""

    name: str
    key_length: int
    salt_length: int
    oid: tuple[int, ...] | None = None  # H.235.8 Table 2; None: named through nonStandard

    def algorithm(self) -> Any:
        """The H.245 ``MediaEncryptionAlgorithm`` value naming this suite."""
        if self.oid is not None:
            return ("algorithm", self.oid)
        return ("nonStandard", {"nonStandardIdentifier": _VENDOR_ID, "data": self.name.encode("ascii")})


SUITES: dict[str, SrtpSuite] = {
    s.name: s
    for s in (
        SrtpSuite("AEAD_AES_128_GCM", 16, 12),  # RFC 7714 §12
        SrtpSuite("AES_CM_128_HMAC_SHA1_80", 16, 14, (0, 0, 8, 235, 0, 4, 91)),  # RFC 3711 §8.2
        SrtpSuite("AES_CM_128_HMAC_SHA1_32", 16, 14, (0, 0, 8, 235, 0, 4, 92)),  # RFC 4568 §6.2.1
        SrtpSuite("AEAD_AES_256_GCM", 32, 12),  # RFC 7714 §12
    )
}
DEFAULT_SUITES = ("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80")


def suite_from_algorithm(value: Any) -> SrtpSuite | None:
    """The suite a ``MediaEncryptionAlgorithm`` value names, or None when vcore does not know it."""
    kind, body = value
    for suite in SUITES.values():
        if kind == "algorithm" and suite.oid is not None and tuple(body) == suite.oid:
            return suite
        if (kind == "nonStandard" and suite.oid is None and body.get("nonStandardIdentifier") == _VENDOR_ID
                and body.get("data") == suite.name.encode("ascii")):
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


def encode_h235_key(material: SrtpKeyMaterial) -> bytes:
    """PER ``H235Key`` for ``EncryptionSync.h235Key``."""
    body: dict[str, Any] = {}
    oid = SUITES[material.suite].oid
    if oid is not None:
        body["algorithmOID"] = oid
    body["paramS"] = {}
    body["clearSaltingKey"] = material.master_salt
    body["genericKeyMaterial"] = material.master_key
    return asn1.encode(asn1.H235_KEY, ("secureSharedSecret", body))


def decode_h235_key(data: bytes, suite: str) -> SrtpKeyMaterial:
    """Inverse of :func:`encode_h235_key` for a channel protected with ``suite``."""
    value = asn1.decode(asn1.H235_KEY, data)
    if value[0] != "secureSharedSecret":
        raise SignallingParseError(f"H235Key {value[0]} is not secureSharedSecret")
    body = value[1]
    spec = SUITES.get(suite)
    if spec is None:
        raise SignallingParseError(f"unknown SRTP suite {suite!r}")
    oid = body.get("algorithmOID")
    if oid is not None and tuple(oid) != spec.oid:
        raise SignallingParseError(f"H235Key algorithm does not match the channel's suite {suite}")
    key = body.get("genericKeyMaterial")
    salt = body.get("clearSaltingKey")
    if key is None or salt is None:
        raise SignallingParseError("H235Key lacks the master key or salt")
    return SrtpKeyMaterial(suite, key, salt)
