"""The H.224 data channel in H.245: capability, OpenLogicalChannel, and their parsers (pure functions).

H.323 endpoints negotiate far-end camera control as a data application
(H.323 Annex Q): ``DataApplicationCapability`` with ``application =
h224(hdlcFrameTunnelling)`` in the capability set, then a unidirectional data
logical channel each way whose data type is that capability (or
``h235Media`` around it when the call's media are SRTP-protected, H.235.8),
on RTP session 3 with a dynamic payload type (H323Plus uses 100). Over that
channel each RTP packet carries one H.224 frame
(:mod:`vcore.camera_control.h224`); "hdlcFrameTunnelling" means the frame
goes as an HDLC bit stream.

These are pure builders/parsers of pycrate values; the H.245 procedures
(capability exchange, logical channel signalling) and the media plane use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import SignallingParseError
from .keys import SecurityOffer, parse_security_capability, security_capability
from .messages import (
    H224_APPLICATION,
    H224_MAX_BITRATE,
    H224_PAYLOAD_TYPE,
    SESSION_DATA,
    Address,
    is_h224_application,
)

__all__ = [
    "H224_MAX_BITRATE",
    "H224_PAYLOAD_TYPE",
    "H224_SESSION_ID",
    "H224Channel",
    "capability",
    "data_application_capability",
    "data_type",
    "is_h224_capability",
    "open_logical_channel",
    "parse_open_logical_channel",
]

H224_SESSION_ID = SESSION_DATA  # H.225.0: RTP session 3 is data


def data_application_capability(max_bitrate: int = H224_MAX_BITRATE) -> dict[str, Any]:
    """H.245 ``DataApplicationCapability`` for H.224 over RTP with HDLC tunnelling."""
    if not 0 <= max_bitrate <= 0xFFFFFFFF:
        raise SignallingParseError(f"maxBitRate {max_bitrate} is not a 32-bit unsigned value")
    return {"application": H224_APPLICATION, "maxBitRate": max_bitrate}


def capability(max_bitrate: int = H224_MAX_BITRATE) -> Any:
    """The capability table entry value: ``receiveAndTransmitDataApplicationCapability`` for H.224."""
    return ("receiveAndTransmitDataApplicationCapability", data_application_capability(max_bitrate))


def is_h224_capability(value: Any) -> bool:
    """Whether an H.245 ``Capability`` (or a bare ``DataApplicationCapability``) offers H.224 over RTP.

    Only the HDLC-tunnelled form is known to H.323 peers; anything else is not H.224 vcore can speak.
    """
    try:
        if isinstance(value, tuple):
            kind, value = value
            if kind not in ("receiveDataApplicationCapability", "transmitDataApplicationCapability",
                            "receiveAndTransmitDataApplicationCapability"):
                return False
        return is_h224_application(value)
    except (TypeError, ValueError):
        return False


def data_type(suites: Sequence[str] = (), *, legacy: bool = False) -> Any:
    """The OpenLogicalChannel ``DataType``: ``data``, or ``h235Media`` around it when ``suites`` are given."""
    data = data_application_capability()
    if not suites:
        return ("data", data)
    return ("h235Media", {"encryptionAuthenticationAndIntegrity": security_capability(suites, legacy=legacy),
                          "mediaType": ("data", data)})


@dataclass(frozen=True)
class H224Channel:
    """An H.224 logical channel as read from (or written to) an OpenLogicalChannel."""

    number: int
    media_control: Address | None = None
    media: Address | None = None
    payload_type: int = H224_PAYLOAD_TYPE
    session_id: int = H224_SESSION_ID
    security: SecurityOffer | None = None  # None: plain RTP


def open_logical_channel(number: int, *, media_control: Address, payload_type: int = H224_PAYLOAD_TYPE,
                         session_id: int = H224_SESSION_ID, suite: str | None = None,
                         legacy: bool = False) -> dict[str, Any]:
    """An ``OpenLogicalChannel`` for our H.224 stream (forward: we send; the peer answers with its RTP address).

    ``suite``: the SRTP suite protecting it (the key goes in ``encryptionSync``,
    added by the caller with :func:`vcore.h323.keys.encode_h235_key`).
    """
    if not 1 <= number <= 65535:
        raise SignallingParseError(f"logical channel number {number} is not in 1..65535")
    if not 96 <= payload_type <= 127:
        raise SignallingParseError(f"H.224 payload type {payload_type} is not dynamic (96..127)")
    params = {
        "sessionID": session_id,
        "mediaGuaranteedDelivery": False,
        "mediaControlChannel": media_control.h245(),
        "dynamicRTPPayloadType": payload_type,
    }
    return {
        "forwardLogicalChannelNumber": number,
        "forwardLogicalChannelParameters": {
            "dataType": data_type((suite,) if suite else (), legacy=legacy),
            "multiplexParameters": ("h2250LogicalChannelParameters", params),
        },
    }


def parse_open_logical_channel(olc: Any) -> H224Channel | None:
    """The H.224 channel an ``OpenLogicalChannel`` opens, or None when it is not an H.224 data channel."""
    try:
        number = olc["forwardLogicalChannelNumber"]
        params = olc["forwardLogicalChannelParameters"]
        kind, body = params["dataType"]
        security = None
        if kind == "h235Media":
            security = parse_security_capability(body["encryptionAuthenticationAndIntegrity"])
            kind, body = body["mediaType"]
        if kind != "data" or not is_h224_capability(body):
            return None
        mux_kind, h2250 = params["multiplexParameters"]
        if mux_kind != "h2250LogicalChannelParameters":
            raise SignallingParseError(f"H.224 channel {number} is not carried on RTP ({mux_kind})")
        payload_type = h2250.get("dynamicRTPPayloadType", H224_PAYLOAD_TYPE)
        control = h2250.get("mediaControlChannel")
        media = h2250.get("mediaChannel")
        return H224Channel(number, Address.from_h245(control) if control is not None else None,
                           Address.from_h245(media) if media is not None else None, payload_type,
                           h2250["sessionID"], security)
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        if isinstance(exc, SignallingParseError):
            raise
        raise SignallingParseError(f"H.224 OpenLogicalChannel lacks {exc}") from None
