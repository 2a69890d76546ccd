"""One H.245 logical channel (``OpenLogicalChannel``) as vcore reads and writes it, in Fast Connect and in
the H.245 procedures: its format, media addresses, SRTP suites and key material.

References: H.245 (v13) §7.3.1 OpenLogicalChannel, H.225.0 §6.2.8.1 H2250LogicalChannelParameters,
H.235.8 §5.1 (``h235Media``, ``EncryptionSync``), H.323 §8.1.7.1 (forward and reverse parameters in
Fast Connect). Pure, thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .address import Address
from .errors import SignallingParseError
from .formats import MediaFormat, _format_from_data_type
from .keys import SrtpKeyMaterial, decode_h235_key, encode_h235_key, parse_security_capability, security_capability

__all__ = ["UNKNOWN_SUITE", "OpenChannel", "open_logical_channel", "parse_open_logical_channel"]

UNKNOWN_SUITE = "unknown"  # OpenChannel.suites entry for an encryption algorithm vcore does not know

Value = Any


@dataclass(frozen=True)
class OpenChannel:
    """One OpenLogicalChannel, as used in Fast Connect and in H.245 procedures.

    ``reverse`` False: the format sits in ``forwardLogicalChannelParameters``
    (media flows from the OLC's sender); True: in ``reverseLogicalChannelParameters``
    (H.323 §8.1.7.1, media flows towards the OLC's sender). ``media`` and
    ``media_control`` are the H.225.0 session's RTP and RTCP addresses as
    carried in the H2250 parameters (either may be absent). ``suites`` lists
    the SRTP suites of an ``h235Media`` data type (empty: plain RTP) and
    ``key`` is the sender's ``EncryptionSync`` key material (H.235.8 ``SrtpKeys``).
    ``legacy_keys``: the peer offered its suites only in the pre-H.235.8 vcore
    form, so the suites and key are written in that form too (:mod:`vcore.h323.keys`).
    ``format`` is None when the peer proposed a codec vcore does not know.
    """

    number: int
    format: MediaFormat | None
    reverse: bool = False
    session_id: int = 0
    media: Address | None = None
    media_control: Address | None = None
    suites: tuple[str, ...] = ()
    key: SrtpKeyMaterial | None = field(default=None, repr=False)
    legacy_keys: bool = False

    def __post_init__(self) -> None:
        if not self.session_id and self.format is not None:
            object.__setattr__(self, "session_id", self.format.session_id)


def _h2250_parameters(channel: OpenChannel, fmt: MediaFormat) -> Value:
    params: dict[str, Value] = {"sessionID": channel.session_id}
    if channel.media is not None:
        params["mediaChannel"] = channel.media.h245()
    if channel.media_control is not None:
        params["mediaControlChannel"] = channel.media_control.h245()
    if fmt.kind == "audio":
        params["silenceSuppression"] = False
    if fmt.kind == "data":
        params["mediaGuaranteedDelivery"] = False
    if fmt.dynamic_payload_type:
        params["dynamicRTPPayloadType"] = fmt.payload_type
    if fmt.name == "H264":
        params["mediaPacketization"] = ("rtpPayloadType", fmt.rtp_payload())
    return ("h2250LogicalChannelParameters", params)


def _channel_data_type(channel: OpenChannel, fmt: MediaFormat) -> Value:
    data_type = fmt.data_type()
    if not channel.suites:
        return data_type
    return ("h235Media", {  # H.235.8 §5.1 (an unknown suite name: SignallingParseError)
        "encryptionAuthenticationAndIntegrity": security_capability(channel.suites, legacy=channel.legacy_keys),
        "mediaType": data_type,
    })


def open_logical_channel(channel: OpenChannel) -> Value:
    """The ``OpenLogicalChannel`` value for ``channel``."""
    if channel.format is None:
        raise SignallingParseError("cannot build an OpenLogicalChannel without a format")
    if not 1 <= channel.number <= 65535:
        raise SignallingParseError(f"logical channel number {channel.number} is not in 1..65535")
    fmt = channel.format
    olc: dict[str, Value] = {"forwardLogicalChannelNumber": channel.number}
    params = {"dataType": _channel_data_type(channel, fmt), "multiplexParameters": _h2250_parameters(channel, fmt)}
    if channel.reverse:
        olc["forwardLogicalChannelParameters"] = {
            "dataType": ("nullData", 0),
            "multiplexParameters": ("none", 0),
        }
        olc["reverseLogicalChannelParameters"] = params
    else:
        olc["forwardLogicalChannelParameters"] = params
    if channel.key is not None:
        olc["encryptionSync"] = {"synchFlag": fmt.payload_type,
                                 "h235Key": encode_h235_key(channel.key, legacy=channel.legacy_keys)}
    return olc


def parse_open_logical_channel(olc: Value) -> OpenChannel:
    """Read an ``OpenLogicalChannel`` value; unknown codecs give ``format=None``."""
    try:
        number = olc["forwardLogicalChannelNumber"]
        forward = olc["forwardLogicalChannelParameters"]
        reverse_params = olc.get("reverseLogicalChannelParameters")
        reverse = reverse_params is not None and forward["dataType"][0] == "nullData"
        params = reverse_params if reverse else forward
        data_type = params["dataType"]
        suites: list[str] = []
        legacy = False
        if data_type[0] == "h235Media":
            offer = parse_security_capability(data_type[1]["encryptionAuthenticationAndIntegrity"])
            # encrypted with nothing vcore knows: never usable
            suites = list(offer.suites) or [UNKNOWN_SUITE]
            legacy = offer.legacy
            data_type = data_type[1]["mediaType"]
        mux = params["multiplexParameters"]
        h2250 = mux[1] if mux[0] == "h2250LogicalChannelParameters" else None
        fmt = _format_from_data_type(data_type, h2250)
        media = media_control = None
        session = 0
        if h2250 is not None:
            session = h2250["sessionID"]
            if "mediaChannel" in h2250:
                media = Address.from_h245(h2250["mediaChannel"])
            if "mediaControlChannel" in h2250:
                media_control = Address.from_h245(h2250["mediaControlChannel"])
        key = None
        sync = olc.get("encryptionSync")
        if sync is not None and len(suites) == 1 and suites[0] != UNKNOWN_SUITE:
            key = decode_h235_key(sync["h235Key"], suites[0])
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        if isinstance(exc, SignallingParseError):
            raise
        raise SignallingParseError(f"OpenLogicalChannel lacks {exc}") from None
    return OpenChannel(number, fmt, reverse, session, media, media_control, tuple(suites), key, legacy)
