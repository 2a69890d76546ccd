"""The H.235.8 ASN.1 module ``H235-SRTP`` (H.235.8 §7) on pycrate's PER runtime.

pycrate ships H.225.0, H.245 and H.235.0 compiled, not H.235.8, so this
module declares its five types with pycrate's runtime classes, exactly as
``pycrate_asn1c`` would have generated them (``newParameter`` refers to the
compiled H.225.0 ``GenericData``)::

    SrtpCryptoCapability ::= SEQUENCE OF SrtpCryptoInfo
    SrtpCryptoInfo ::= SEQUENCE {
        cryptoSuite   OBJECT IDENTIFIER OPTIONAL,
        sessionParams SrtpSessionParameters OPTIONAL,
        allowMKI      BOOLEAN OPTIONAL, ... }
    SrtpKeys ::= SEQUENCE OF SrtpKeyParameters
    SrtpKeyParameters ::= SEQUENCE {
        masterKey  OCTET STRING,
        masterSalt OCTET STRING,
        lifetime   CHOICE { powerOfTwo INTEGER, specific INTEGER, ... } OPTIONAL,
        mki        SEQUENCE { length INTEGER (1..128), value OCTET STRING, ... } OPTIONAL, ... }
    SrtpSessionParameters ::= SEQUENCE {
        kdr INTEGER (0..24) OPTIONAL,
        unencryptedSrtp BOOLEAN OPTIONAL, unencryptedSrtcp BOOLEAN OPTIONAL,
        unauthenticatedSrtp BOOLEAN OPTIONAL, fecOrder FecOrder OPTIONAL,
        windowSizeHint INTEGER (64..65535) OPTIONAL,
        newParameter SEQUENCE OF GenericData OPTIONAL, ... }
    FecOrder ::= SEQUENCE { fecBeforeSrtp NULL OPTIONAL, fecAfterSrtp NULL OPTIONAL, ... }

(The ``DEFAULT FALSE`` booleans of the Recommendation are written OPTIONAL:
PER encodes both alike, a presence bit; vcore never sends them.) The field
layout and extensibility are those Wireshark's H.235 dissector decodes
(``packet-h235.c``, built from the ITU-T module), which the tests check.

Importing this module registers ``GLOBAL.MOD["H235-SRTP"]``; use it through
:mod:`vcore.h323.keys`, which holds the codec lock.
"""

from __future__ import annotations

from typing import Any

from pycrate_asn1dir import H225  # noqa: F401  (GenericData must be registered first)
from pycrate_asn1rt.asnobj_basic import BOOL, INT, NULL, OID
from pycrate_asn1rt.asnobj_construct import CHOICE, SEQ, SEQ_OF
from pycrate_asn1rt.asnobj_str import OCT_STR
from pycrate_asn1rt.dictobj import ASN1Dict
from pycrate_asn1rt.glob import GLOBAL
from pycrate_asn1rt.init import init_modules
from pycrate_asn1rt.refobj import ASN1RefType
from pycrate_asn1rt.setobj import ASN1RangeInt, ASN1Set
from pycrate_asn1rt.utils import MODE_TYPE, TAG_CONTEXT_SPEC, TAG_EXPLICIT, TAG_IMPLICIT

__all__ = ["MODULE", "SRTP_CRYPTO_CAPABILITY", "SRTP_KEYS", "type_object"]

MODULE = "H235-SRTP"
SRTP_CRYPTO_CAPABILITY = "SrtpCryptoCapability"
SRTP_KEYS = "SrtpKeys"


def _tag(n: int) -> tuple[int, int, int]:
    return (n, TAG_CONTEXT_SPEC, TAG_IMPLICIT)


def _range(lb: int, ub: int) -> Any:
    return ASN1Set(rv=[], rr=[ASN1RangeInt(lb=lb, ub=ub)], ev=None, er=[])


class H235_SRTP:  # pycrate's generated-module layout
    _name_ = MODULE
    _oid_: list[int] = [0, 0, 8, 235, 0, 4, 1]
    _obj_ = ["SrtpCryptoCapability", "SrtpCryptoInfo", "SrtpKeys", "SrtpKeyParameters",
             "SrtpSessionParameters", "FecOrder"]
    _type_ = list(_obj_)
    _set_: list[str] = []
    _val_: list[str] = []
    _class_: list[str] = []
    _param_: list[str] = []

    FecOrder = SEQ(name="FecOrder", mode=MODE_TYPE)
    _FecOrder_fecBeforeSrtp = NULL(name="fecBeforeSrtp", mode=MODE_TYPE, tag=_tag(0), opt=True)
    _FecOrder_fecAfterSrtp = NULL(name="fecAfterSrtp", mode=MODE_TYPE, tag=_tag(1), opt=True)
    FecOrder._cont = ASN1Dict([("fecBeforeSrtp", _FecOrder_fecBeforeSrtp),
                               ("fecAfterSrtp", _FecOrder_fecAfterSrtp)])
    FecOrder._ext = []

    SrtpSessionParameters = SEQ(name="SrtpSessionParameters", mode=MODE_TYPE)
    _SSP_kdr = INT(name="kdr", mode=MODE_TYPE, tag=_tag(0), opt=True)
    _SSP_kdr._const_val = _range(0, 24)
    _SSP_unencryptedSrtp = BOOL(name="unencryptedSrtp", mode=MODE_TYPE, tag=_tag(1), opt=True)
    _SSP_unencryptedSrtcp = BOOL(name="unencryptedSrtcp", mode=MODE_TYPE, tag=_tag(2), opt=True)
    _SSP_unauthenticatedSrtp = BOOL(name="unauthenticatedSrtp", mode=MODE_TYPE, tag=_tag(3), opt=True)
    _SSP_fecOrder = SEQ(name="fecOrder", mode=MODE_TYPE, tag=_tag(4), typeref=ASN1RefType((MODULE, "FecOrder")),
                        opt=True)
    _SSP_windowSizeHint = INT(name="windowSizeHint", mode=MODE_TYPE, tag=_tag(5), opt=True)
    _SSP_windowSizeHint._const_val = _range(64, 65535)
    _SSP_newParameter = SEQ_OF(name="newParameter", mode=MODE_TYPE, tag=_tag(6), opt=True)
    __SSP_newParameter__item_ = SEQ(name="_item_", mode=MODE_TYPE,
                                    typeref=ASN1RefType(("H323-MESSAGES", "GenericData")))
    _SSP_newParameter._cont = __SSP_newParameter__item_
    SrtpSessionParameters._cont = ASN1Dict([
        ("kdr", _SSP_kdr),
        ("unencryptedSrtp", _SSP_unencryptedSrtp),
        ("unencryptedSrtcp", _SSP_unencryptedSrtcp),
        ("unauthenticatedSrtp", _SSP_unauthenticatedSrtp),
        ("fecOrder", _SSP_fecOrder),
        ("windowSizeHint", _SSP_windowSizeHint),
        ("newParameter", _SSP_newParameter),
    ])
    SrtpSessionParameters._ext = []

    SrtpCryptoInfo = SEQ(name="SrtpCryptoInfo", mode=MODE_TYPE)
    _SCI_cryptoSuite = OID(name="cryptoSuite", mode=MODE_TYPE, tag=_tag(0), opt=True)
    _SCI_sessionParams = SEQ(name="sessionParams", mode=MODE_TYPE, tag=_tag(1),
                             typeref=ASN1RefType((MODULE, "SrtpSessionParameters")), opt=True)
    _SCI_allowMKI = BOOL(name="allowMKI", mode=MODE_TYPE, tag=_tag(2), opt=True)
    SrtpCryptoInfo._cont = ASN1Dict([("cryptoSuite", _SCI_cryptoSuite), ("sessionParams", _SCI_sessionParams),
                                     ("allowMKI", _SCI_allowMKI)])
    SrtpCryptoInfo._ext = []

    SrtpCryptoCapability = SEQ_OF(name="SrtpCryptoCapability", mode=MODE_TYPE)
    _SrtpCryptoCapability__item_ = SEQ(name="_item_", mode=MODE_TYPE, typeref=ASN1RefType((MODULE, "SrtpCryptoInfo")))
    SrtpCryptoCapability._cont = _SrtpCryptoCapability__item_

    SrtpKeyParameters = SEQ(name="SrtpKeyParameters", mode=MODE_TYPE)
    _SKP_masterKey = OCT_STR(name="masterKey", mode=MODE_TYPE, tag=_tag(0))
    _SKP_masterSalt = OCT_STR(name="masterSalt", mode=MODE_TYPE, tag=_tag(1))
    _SKP_lifetime = CHOICE(name="lifetime", mode=MODE_TYPE, tag=(2, TAG_CONTEXT_SPEC, TAG_EXPLICIT), opt=True)
    __SKP_lifetime_powerOfTwo = INT(name="powerOfTwo", mode=MODE_TYPE, tag=_tag(0))
    __SKP_lifetime_specific = INT(name="specific", mode=MODE_TYPE, tag=_tag(1))
    _SKP_lifetime._cont = ASN1Dict([("powerOfTwo", __SKP_lifetime_powerOfTwo),
                                    ("specific", __SKP_lifetime_specific)])
    _SKP_lifetime._ext = []
    _SKP_mki = SEQ(name="mki", mode=MODE_TYPE, tag=_tag(3), opt=True)
    __SKP_mki_length = INT(name="length", mode=MODE_TYPE, tag=_tag(0))
    __SKP_mki_length._const_val = _range(1, 128)
    __SKP_mki_value = OCT_STR(name="value", mode=MODE_TYPE, tag=_tag(1))
    _SKP_mki._cont = ASN1Dict([("length", __SKP_mki_length), ("value", __SKP_mki_value)])
    _SKP_mki._ext = []
    SrtpKeyParameters._cont = ASN1Dict([("masterKey", _SKP_masterKey), ("masterSalt", _SKP_masterSalt),
                                        ("lifetime", _SKP_lifetime), ("mki", _SKP_mki)])
    SrtpKeyParameters._ext = []

    SrtpKeys = SEQ_OF(name="SrtpKeys", mode=MODE_TYPE)
    _SrtpKeys__item_ = SEQ(name="_item_", mode=MODE_TYPE, typeref=ASN1RefType((MODULE, "SrtpKeyParameters")))
    SrtpKeys._cont = _SrtpKeys__item_

    _all_ = [
        _FecOrder_fecBeforeSrtp, _FecOrder_fecAfterSrtp, FecOrder,
        _SSP_kdr, _SSP_unencryptedSrtp, _SSP_unencryptedSrtcp, _SSP_unauthenticatedSrtp, _SSP_fecOrder,
        _SSP_windowSizeHint, __SSP_newParameter__item_, _SSP_newParameter, SrtpSessionParameters,
        _SCI_cryptoSuite, _SCI_sessionParams, _SCI_allowMKI, SrtpCryptoInfo,
        _SrtpCryptoCapability__item_, SrtpCryptoCapability,
        _SKP_masterKey, _SKP_masterSalt, __SKP_lifetime_powerOfTwo, __SKP_lifetime_specific, _SKP_lifetime,
        __SKP_mki_length, __SKP_mki_value, _SKP_mki, SrtpKeyParameters,
        _SrtpKeys__item_, SrtpKeys,
    ]


if MODULE not in GLOBAL.MOD:
    init_modules(H235_SRTP)


def type_object(name: str) -> Any:
    """The pycrate object of H.235.8 type ``name`` (``SrtpCryptoCapability`` or ``SrtpKeys``)."""
    return GLOBAL.MOD[MODULE][name]
