"""SDES: SRTP master keys in SDP ``a=crypto`` attributes (RFC 4568, AEAD suites RFC 7714 §12).

``a=crypto:<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>] [<session-params>]``

The key in an ``a=crypto`` line is the one its *sender* protects its own media
with (RFC 4568 §5.1.1, §6.1): an offer's keys protect the offerer's streams, the
answer's key the answerer's. vcore generates a fresh key per offered suite and
per call (:meth:`SrtpKeyMaterial.generate`) and keeps it out of ``repr`` and logs.

What vcore refuses, precisely (each refusal is a :class:`CryptoRefused` naming
the reason, and the negotiation moves on to the peer's next ``a=crypto`` line):

- suites vcore's SRTP does not implement (``F8_128_HMAC_SHA1_80``, ``AES_192_CM_...``,
  ``NULL_...``);
- more than one master key (RFC 4568 §6.1 key lists need an MKI) and any MKI:
  vcore's SRTP packets carry no MKI field;
- a key lifetime below 2^31 packets: vcore cannot re-key within a call, and
  2^31 packets last more than 24 days at 1,000 packets/s, so a longer lifetime
  never binds a call (``|2^31`` and above are accepted and otherwise ignored);
- the session parameters ``UNENCRYPTED_SRTP``, ``UNENCRYPTED_SRTCP``,
  ``UNAUTHENTICATED_SRTP`` (unsafe), ``KDR`` other than 0, ``FEC_ORDER``,
  ``FEC_KEY`` and any unknown one; ``WSH`` (a window-size hint, §6.3.6) is accepted.

Malformed lines raise :class:`vcore.sip.sdp.SdpError` (through the ``error``
factory the caller passes: this module sits below :mod:`vcore.sip.sdp_syntax`).
:func:`redact_keys` takes the keys out of an SDP body or a SIP message before it
is logged.
Pure functions and values; thread-safe.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..h323.keys import SUITES, SrtpKeyMaterial
from .errors import SipError

__all__ = [
    "MIN_KEY_LIFETIME",
    "CryptoAttribute",
    "CryptoRefused",
    "format_crypto",
    "parse_crypto",
]

MIN_KEY_LIFETIME = 2**31  # packets: the shortest lifetime vcore accepts (it cannot re-key mid-call)
_MAX_TAG = 999_999_999  # RFC 4568 §9.1: tag = 1*9DIGIT
_TAG = re.compile(r"^[0-9]{1,9}$")
_SUITE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_LIFETIME = re.compile(r"^(?:2\^([0-9]{1,2})|([0-9]{1,20}))$")
_MKI = re.compile(r"^[0-9]{1,20}:[0-9]{1,3}$")
_B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_INLINE = re.compile(r"inline:[^|\s;]*")
_UNSAFE_PARAMS = ("UNENCRYPTED_SRTP", "UNENCRYPTED_SRTCP", "UNAUTHENTICATED_SRTP")  # RFC 4568 §6.3.3–6.3.5


class CryptoRefused(SipError):
    """A well-formed ``a=crypto`` line that vcore will not use (the reason is the message)."""


@dataclass(frozen=True)
class CryptoAttribute:
    """One ``a=crypto`` line that vcore can use: ``tag`` and the key material (``suite`` inside it)."""

    tag: int
    key: SrtpKeyMaterial = field(repr=False)
    lifetime: int | None = None
    wsh: int | None = None

    @property
    def suite(self) -> str:
        return self.key.suite


def _b64decode(text: str) -> bytes:
    if not _B64.match(text):
        raise ValueError("not base64")
    padded = text + "=" * (-len(text) % 4)  # some peers leave the padding out
    return base64.b64decode(padded, validate=True)


def parse_crypto(value: str, error: Callable[[str], Exception]) -> CryptoAttribute:
    """Parse the value of an ``a=crypto`` attribute (after ``crypto:``).

    Raises ``error(message)`` for a malformed line and :class:`CryptoRefused`
    for a well-formed one that vcore does not accept (see the module docstring).
    """
    fields = value.split(" ")
    if len(fields) < 3 or any(not f for f in fields):
        raise error(f"a=crypto:{redact_keys(value)!r} needs '<tag> <suite> <key-params>' separated by single spaces")
    tag_text, suite, key_params, *session_params = fields
    if not _TAG.match(tag_text):
        raise error(f"a=crypto tag {tag_text!r} is not 1 to 9 digits (RFC 4568 §9.1)")
    tag = int(tag_text)
    if not _SUITE.match(suite):
        raise error(f"a=crypto:{tag} suite {suite!r} is not a suite name")
    keys = key_params.split(";")
    for item in keys:
        if not item.startswith("inline:"):
            raise error(f"a=crypto:{tag} key-params {item.partition(':')[0]!r}... do not start with 'inline:' "
                        "(RFC 4568 §6.1)")
    spec = SUITES.get(suite)
    if spec is None:
        raise CryptoRefused(f"a=crypto:{tag}: suite {suite} is not one vcore's SRTP implements "
                            f"({', '.join(SUITES)})")
    if len(keys) > 1:
        raise CryptoRefused(f"a=crypto:{tag}: {len(keys)} master keys; vcore takes one (no MKI)")
    parts = keys[0][len("inline:"):].split("|")
    if len(parts) > 3:
        raise error(f"a=crypto:{tag} key has more than key|lifetime|MKI")
    try:
        material = _b64decode(parts[0])
    except (ValueError, binascii.Error):
        raise error(f"a=crypto:{tag} key is not valid base64") from None
    need = spec.key_length + spec.salt_length
    if len(material) != need:
        raise error(f"a=crypto:{tag} {suite} key||salt is {len(material)} bytes, not {need}")
    lifetime: int | None = None
    for extra in parts[1:]:
        if _MKI.match(extra):
            raise CryptoRefused(f"a=crypto:{tag}: an MKI ({extra}); vcore's SRTP carries none")
        m = _LIFETIME.match(extra)
        if m is None or lifetime is not None:
            raise error(f"a=crypto:{tag} key parameter {extra!r} is neither a lifetime nor MKI:length")
        lifetime = 2 ** int(m.group(1)) if m.group(1) is not None else int(m.group(2))
        if lifetime < MIN_KEY_LIFETIME:
            raise CryptoRefused(f"a=crypto:{tag}: key lifetime {lifetime} packets is below 2^31; "
                                "vcore cannot re-key during a call")
    wsh: int | None = None
    for param in session_params:
        name, _, arg = param.partition("=")
        if name in _UNSAFE_PARAMS:
            raise CryptoRefused(f"a=crypto:{tag}: {name} turns protection off; vcore refuses it")
        if name == "KDR":
            if arg != "0":
                raise CryptoRefused(f"a=crypto:{tag}: KDR={arg}; vcore's SRTP derives session keys once")
        elif name == "WSH":
            if not arg.isdigit() or len(arg) > 9 or int(arg) < 64:
                raise error(f"a=crypto:{tag} WSH={arg!r} is not a window size of at least 64 (RFC 4568 §6.3.6)")
            wsh = int(arg)
        else:
            raise CryptoRefused(f"a=crypto:{tag}: session parameter {param[:40]!r} is not supported")
    material_ = SrtpKeyMaterial(suite, material[:spec.key_length], material[spec.key_length:])
    return CryptoAttribute(tag, material_, lifetime, wsh)


def format_crypto(tag: int, key: SrtpKeyMaterial) -> str:
    """The value of an ``a=crypto`` attribute offering or answering ``key`` (padded base64)."""
    if not 0 <= tag <= _MAX_TAG:
        raise ValueError(f"a=crypto tag {tag} is out of range")
    inline = base64.b64encode(key.key_and_salt).decode("ascii")
    return f"{tag} {key.suite} inline:{inline}"


def redact_keys(text: str) -> str:
    """``text`` (an SDP body, a SIP message, a log line) with every ``inline:`` key replaced by ``inline:...``."""
    return _INLINE.sub("inline:...", text)
