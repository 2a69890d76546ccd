"""H.225.0 / H.245 / H.235 ASN.1 PER codec, on pycrate's compiled modules.

pycrate (``pycrate_asn1dir.H225``) ships the ITU-T ASN.1 of H.225.0
(H323-MESSAGES, v7 protocol identifier 0.0.8.2250.0.7), H.245
(MULTIMEDIA-SYSTEM-CONTROL) and H.235 (H235-SECURITY-MESSAGES) compiled to
Python. Every H.323 structure is ALIGNED PER (X.691), H.225.0 §6 and H.245 §9.

Values are pycrate's Python representation: SEQUENCE -> ``dict``, CHOICE ->
``(name, value)``, SEQUENCE OF -> ``list``, OCTET STRING -> ``bytes``,
OBJECT IDENTIFIER -> ``tuple[int, ...]``, BMPString -> ``str``.

pycrate keeps codec state in class attributes, so every encode/decode runs
under one module lock: the functions here are thread-safe, and a failed
decode leaves pycrate's state clean. Decoding is strict: the whole buffer
must be consumed (up to the final octet's padding bits), and any pycrate
failure becomes :class:`SignallingParseError`.
"""

from __future__ import annotations

import threading
from typing import Any

from .errors import SignallingParseError

__all__ = [
    "UUIE",
    "H245",
    "OLC",
    "H235_KEY",
    "RAS",
    "encode",
    "decode",
    "encode_uuie",
    "decode_uuie",
    "encode_h245",
    "decode_h245",
    "encode_olc",
    "decode_olc",
]

UUIE = "H323-UserInformation"
H245 = "MultimediaSystemControlMessage"
OLC = "OpenLogicalChannel"
H235_KEY = "H235Key"
RAS = "RasMessage"

_MODULES = {
    UUIE: "H323-MESSAGES",
    RAS: "H323-MESSAGES",
    H245: "MULTIMEDIA-SYSTEM-CONTROL",
    OLC: "MULTIMEDIA-SYSTEM-CONTROL",
    H235_KEY: "H235-SECURITY-MESSAGES",
}

_lock = threading.Lock()
_types: dict[str, Any] = {}
_codec: Any = None

Value = Any


def _load(name: str) -> Any:
    global _codec
    obj = _types.get(name)
    if obj is None:
        try:
            from pycrate_asn1dir import H225  # noqa: F401  (registers the three modules in GLOBAL)
            from pycrate_asn1rt.codecs import ASN1CodecPER
            from pycrate_asn1rt.glob import GLOBAL
        except ImportError as exc:  # pragma: no cover - dependency missing
            raise SignallingParseError("pycrate is not installed (pip install pycrate)") from exc
        _codec = ASN1CodecPER
        _patch_extension_alignment(ASN1CodecPER)
        try:
            obj = GLOBAL.MOD[_MODULES[name]][name]
        except KeyError as exc:
            raise SignallingParseError(f"ASN.1 type {name} is not known") from exc
        _types[name] = obj
    return obj


def _patch_extension_alignment(codec: Any) -> None:
    """Work around a pycrate (0.8.1, and upstream master) ALIGNED PER encoder bug in SEQUENCE extension additions.

    pycrate encodes a SEQUENCE's (or SET's) extension additions (each an open
    type, X.691 §19.9) *before* it writes the extension bitmap and realigns,
    so the octet-alignment check inside ``encode_unconst_open`` sees the bit
    offset before the bitmap and may insert spurious padding bits. The bytes
    are then wrong (Wireshark: "open type length 0"; pycrate cannot decode
    them either). Example: a ReleaseComplete-UUIE whose reason is a root
    alternative (``undefinedReason``) followed by ``callIdentifier``.

    The fix is targeted by what is encoded, not by who calls: an extension
    addition of a SEQUENCE/SET (a component whose parent is that SEQUENCE/SET
    and which is listed among its extensions) always starts octet-aligned
    right after the bitmap (X.691 §19.7-19.9), so for it the alignment check is
    made at offset 0. Every other open type (CHOICE extensions, open types of
    information object classes) keeps pycrate's behaviour. Extension groups
    (``[[ ]]``) would need the same treatment; the H.225.0/H.245/H.235 modules
    have none (checked by the tests). pycrate's decoder is correct and is not touched.
    """
    if getattr(codec, "_vcore_patched", False):
        return
    from pycrate_asn1rt.asnobj_construct import SEQ, SET

    original = codec.encode_unconst_open.__func__

    def encode_unconst_open(cla: Any, wrapped: Any) -> Any:
        parent = getattr(wrapped, "_parent", None)
        if cla.ALIGNED and isinstance(parent, (SEQ, SET)) and parent._ext and wrapped._name in parent._ext:
            offset = cla._off[-1]
            cla._off[-1] = 0
            try:
                return original(cla, wrapped)
            finally:
                cla._off[-1] += offset
        return original(cla, wrapped)

    codec.encode_unconst_open = classmethod(encode_unconst_open)
    codec._vcore_patched = True


def encode(type_name: str, value: Value) -> bytes:
    """ALIGNED PER encoding of ``value`` as ``type_name``."""
    with _lock:
        obj = _load(type_name)
        depth = len(_codec._off)
        try:
            data = obj.to_aper(value)
        except Exception as exc:  # pycrate raises many kinds (ASN1Err, KeyError, TypeError, ...)
            raise SignallingParseError(f"cannot encode {type_name}: {exc}") from None
        finally:
            del _codec._off[depth:]
        if not isinstance(data, bytes):  # pragma: no cover - pycrate returns None for an unset value
            raise SignallingParseError(f"cannot encode {type_name}: no value")
        return data


def decode(type_name: str, data: bytes) -> Value:
    """Decode ALIGNED PER bytes as ``type_name``; the whole buffer must be used."""
    from pycrate_core.charpy import Charpy

    with _lock:
        obj = _load(type_name)
        depth = len(_codec._off)
        char = Charpy(bytes(data))
        try:
            obj.from_aper(char)
            value = obj.get_val()
        except Exception as exc:
            raise SignallingParseError(f"malformed {type_name}: {_short(exc)}") from None
        finally:
            del _codec._off[depth:]
        left = char.len_bit()
        if left >= 8:
            raise SignallingParseError(f"malformed {type_name}: {left // 8} trailing bytes")
        return value


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def encode_uuie(value: Value) -> bytes:
    return encode(UUIE, value)


def decode_uuie(data: bytes) -> Value:
    return decode(UUIE, data)


def encode_h245(value: Value) -> bytes:
    return encode(H245, value)


def decode_h245(data: bytes) -> Value:
    return decode(H245, data)


def encode_olc(value: Value) -> bytes:
    return encode(OLC, value)


def decode_olc(data: bytes) -> Value:
    return decode(OLC, data)
