"""Builders and readers of H.225.0 UUIEs and H.245 PDUs.

Builders return pycrate values (see :mod:`vcore.h323.asn1`) or PER bytes;
readers turn decoded values into small frozen dataclasses. Everything here is
a pure function of its arguments and thread-safe.

References: H.225.0 (v4 protocol identifier) §7.6 H323-UserInformation,
H.245 (v13) §7 (TerminalCapabilitySet §7.2, MasterSlaveDetermination §7.1,
OpenLogicalChannel §7.3.1, CloseLogicalChannel §7.3.3, commands §7.14),
H.241 §8.3 (H.264 generic capability 0.0.8.241.0.0.1, profile parameter 41,
level parameter 42, packetization OIDs 0.0.8.241.0.0.0.{0,1}),
H.323 §8.1.7.1 (Fast Connect proposals and answers).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import asn1
from .errors import SignallingParseError
from .keys import (
    SrtpKeyMaterial,
    decode_h235_key,
    encode_h235_key,
    parse_security_capability,
    security_capability,
)

__all__ = [
    "H225_PROTOCOL_ID",
    "H245_PROTOCOL_ID",
    "H264_CAPABILITY_OID",
    "H264_PROFILE_BASELINE",
    "H264_PROFILE_MAIN",
    "H264_PROFILE_HIGH",
    "H264_LEVELS",
    "SESSION_AUDIO",
    "UNKNOWN_SUITE",
    "SESSION_VIDEO",
    "SESSION_DATA",
    "H224",
    "H224_APPLICATION",
    "H224_CLOCK_RATE",
    "H224_MAX_BITRATE",
    "H224_PAYLOAD_TYPE",
    "is_h224_application",
    "VENDOR",
    "ENDPOINT_TYPE",
    "alias_addresses",
    "Address",
    "MediaFormat",
    "PCMU",
    "PCMA",
    "G722",
    "OPUS",
    "H264_MODE1",
    "H264_MODE0",
    "DEFAULT_FORMATS",
    "OpenChannel",
    "UserInformation",
    "H245Pdu",
    "RELEASE_REASONS",
    "user_information",
    "setup_uuie",
    "call_proceeding_uuie",
    "alerting_uuie",
    "connect_uuie",
    "release_complete_uuie",
    "facility_uuie",
    "parse_user_information",
    "open_logical_channel",
    "parse_open_logical_channel",
    "terminal_capability_set",
    "parse_capabilities",
    "terminal_capability_set_ack",
    "terminal_capability_set_reject",
    "master_slave_determination",
    "master_slave_determination_ack",
    "master_slave_determination_reject",
    "msd_decision",
    "open_logical_channel_pdu",
    "open_logical_channel_ack",
    "open_logical_channel_reject",
    "close_logical_channel",
    "close_logical_channel_ack",
    "end_session_command",
    "user_input_indication",
    "video_fast_update_picture",
    "flow_control_command",
    "encode_h245",
    "parse_h245",
    "function_not_understood",
    "round_trip_delay_request",
    "round_trip_delay_response",
    "master_slave_determination_release",
    "terminal_capability_set_release",
    "parse_capability_table",
    "parse_capability_descriptors",
    "legacy_security_capabilities",
]

H225_PROTOCOL_ID = (0, 0, 8, 2250, 0, 4)  # H.225.0 version 4
H245_PROTOCOL_ID = (0, 0, 8, 245, 0, 13)  # H.245 version 13
H264_CAPABILITY_OID = (0, 0, 8, 241, 0, 0, 1)  # H.241 §8.3.1
H264_PACKETIZATION_OIDS = {
    0: (0, 0, 8, 241, 0, 0, 0, 0),  # H.241 §8.3.2: single NAL unit mode (RFC 6184 packetization-mode=0)
    1: (0, 0, 8, 241, 0, 0, 0, 1),  # non-interleaved mode (packetization-mode=1)
}
_H241_PROFILE = 41  # H.241 Table 8-2 parameter identifiers
_H241_LEVEL = 42
H264_PROFILE_BASELINE = 64  # H.241 Table 8-3 profile bits
H264_PROFILE_MAIN = 32
H264_PROFILE_HIGH = 8
# H.241 Table 8-4: H.264 level -> parameter value
H264_LEVELS = {
    "1": 15, "1b": 19, "1.1": 22, "1.2": 29, "1.3": 36, "2": 43, "2.1": 50, "2.2": 57,
    "3": 64, "3.1": 71, "3.2": 78, "4": 85, "4.1": 92, "4.2": 99, "5": 106, "5.1": 113,
}
UNKNOWN_SUITE = "unknown"  # OpenChannel.suites entry for an encryption algorithm vcore does not know
SESSION_AUDIO = 1  # H.225.0 §6.2.8.1 / H.245 sessionID: 1 audio, 2 video, 3 data
SESSION_VIDEO = 2
SESSION_DATA = 3
H224_PAYLOAD_TYPE = 100  # dynamic (RFC 3551); H323Plus's default for H.224
H224_MAX_BITRATE = 640  # units of 100 bit/s (64 kbit/s), as H323Plus announces; H.281 uses a few hundred bit/s
H224_CLOCK_RATE = 8000  # H323Plus stamps H.224 packets with milliseconds × 8 (RFC 4573's SDP says 4800; unused)
# H.245 DataApplicationCapability.application for H.224 over RTP (H.323 Annex Q): the frame as an HDLC bit stream
H224_APPLICATION = ("h224", ("hdlcFrameTunnelling", 0))

VENDOR = {
    "vendor": {"t35CountryCode": 181, "t35Extension": 0, "manufacturerCode": 0},
    "productId": b"vcore",
    "versionId": b"1",
}
ENDPOINT_TYPE = {"vendor": VENDOR, "terminal": {}, "mc": False, "undefinedNode": False}

Value = Any


# --------------------------------------------------------------------------- addresses


@dataclass(frozen=True)
class Address:
    """An IPv4/IPv6 transport address (host as text, port)."""

    host: str
    port: int

    def _packed(self) -> bytes:
        try:
            return ipaddress.ip_address(self.host).packed
        except ValueError:
            raise SignallingParseError(f"{self.host!r} is not an IP address") from None

    def h225(self) -> Value:
        """H.225.0 ``TransportAddress``."""
        packed = self._packed()
        kind = "ipAddress" if len(packed) == 4 else "ip6Address"
        return (kind, {"ip": packed, "port": self.port})

    def h245(self) -> Value:
        """H.245 ``TransportAddress`` (unicast)."""
        packed = self._packed()
        kind = "iPAddress" if len(packed) == 4 else "iP6Address"
        return ("unicastAddress", (kind, {"network": packed, "tsapIdentifier": self.port}))

    @classmethod
    def from_h225(cls, value: Value) -> Address:
        if value[0] not in ("ipAddress", "ip6Address"):
            raise SignallingParseError(f"H.225.0 address {value[0]} is not IP")
        return cls(str(ipaddress.ip_address(value[1]["ip"])), value[1]["port"])

    @classmethod
    def from_h245(cls, value: Value) -> Address:
        if value[0] != "unicastAddress" or value[1][0] not in ("iPAddress", "iP6Address"):
            raise SignallingParseError("H.245 address is not a unicast IP address")
        inner = value[1][1]
        try:
            host = str(ipaddress.ip_address(inner["network"]))
        except ValueError:
            raise SignallingParseError("H.245 address has a bad network field") from None
        return cls(host, inner["tsapIdentifier"])


# --------------------------------------------------------------------------- media formats


@dataclass(frozen=True)
class MediaFormat:
    """A codec as H.245 describes it.

    ``name``: ``PCMU``, ``PCMA``, ``G722``, ``OPUS`` (SIP only: H.245 has no Opus), ``H264``, or ``H224`` (the
    H.224 data channel of far-end camera control, H.323 Annex Q; ``max_bitrate`` in 100 bit/s). Audio: ``frames`` is the
    G.711/G.722 capability value (milliseconds of audio per packet, H.245
    ``AudioCapability``). H.264: ``profile`` (H.241 profile bits), ``level``
    (H.241 level value), ``packetization_mode`` (0 or 1), ``max_bitrate`` in
    units of 100 bit/s, ``payload_type`` the dynamic RTP payload type.
    """

    name: str
    payload_type: int
    frames: int = 20
    profile: int = 0
    level: int = 0
    packetization_mode: int = 1
    max_bitrate: int = 0

    @property
    def kind(self) -> str:
        return "video" if self.name == "H264" else "data" if self.name == "H224" else "audio"

    @property
    def session_id(self) -> int:
        return {"video": SESSION_VIDEO, "data": SESSION_DATA}.get(self.kind, SESSION_AUDIO)

    @property
    def clock_rate(self) -> int:
        if self.name == "OPUS":
            return 48000  # RFC 7587 §4.1
        if self.name == "H224":
            return H224_CLOCK_RATE
        return 90000 if self.kind == "video" else 8000  # G.722's RTP clock is 8000 too (RFC 3551 §4.5.2)

    def compatible(self, other: MediaFormat) -> bool:
        """Same codec and, for H.264, the same packetization mode (the profile/level answer is the minimum)."""
        if self.name != other.name:
            return False
        if self.name == "H264":
            return self.packetization_mode == other.packetization_mode and bool(self.profile & other.profile)
        return True

    def data_type(self) -> Value:
        """H.245 ``DataType`` (videoData/audioData/data) for an OpenLogicalChannel."""
        if self.name == "H264":
            return ("videoData", ("genericVideoCapability", self._h264_capability()))
        if self.name == "H224":
            return ("data", {"application": H224_APPLICATION, "maxBitRate": self.max_bitrate})
        return ("audioData", (_AUDIO_CHOICE[self.name], self.frames))

    def _h264_capability(self) -> Value:
        cap: dict[str, Value] = {"capabilityIdentifier": ("standard", H264_CAPABILITY_OID)}
        if self.max_bitrate:
            cap["maxBitRate"] = self.max_bitrate
        cap["collapsing"] = [
            {"parameterIdentifier": ("standard", _H241_PROFILE),
             "parameterValue": ("booleanArray", self.profile)},
            {"parameterIdentifier": ("standard", _H241_LEVEL), "parameterValue": ("unsignedMin", self.level)},
        ]
        return cap

    @property
    def dynamic_payload_type(self) -> bool:
        """The payload type is signalled (``dynamicRTPPayloadType``) rather than static (RFC 3551)."""
        return self.name in ("H264", "H224")

    def rtp_payload(self) -> Value | None:
        """H.245 ``RTPPayloadType`` naming the H.264 packetization mode (H.241 §8.3.2)."""
        if self.name != "H264":
            return None
        return {"payloadDescriptor": ("oid", H264_PACKETIZATION_OIDS[self.packetization_mode]),
                "payloadType": self.payload_type}


_AUDIO_CHOICE = {"PCMU": "g711Ulaw64k", "PCMA": "g711Alaw64k", "G722": "g722-64k"}
_AUDIO_BY_CHOICE = {v: k for k, v in _AUDIO_CHOICE.items()}
_STATIC_PT = {"PCMU": 0, "PCMA": 8, "G722": 9}  # RFC 3551 Table 4

PCMU = MediaFormat("PCMU", 0)
PCMA = MediaFormat("PCMA", 8)
G722 = MediaFormat("G722", 9)
OPUS = MediaFormat("OPUS", 111)  # RFC 7587, a dynamic payload type; SIP only, so not in DEFAULT_FORMATS
H264_MODE1 = MediaFormat("H264", 96, profile=H264_PROFILE_BASELINE, level=H264_LEVELS["3.1"],
                         packetization_mode=1, max_bitrate=20000)
H264_MODE0 = MediaFormat("H264", 97, profile=H264_PROFILE_BASELINE, level=H264_LEVELS["3.1"],
                         packetization_mode=0, max_bitrate=20000)
DEFAULT_FORMATS = (H264_MODE1, H264_MODE0, G722, PCMU, PCMA)
H224 = MediaFormat("H224", H224_PAYLOAD_TYPE, max_bitrate=H224_MAX_BITRATE)  # not a media format: see MediaPolicy.h224


def is_h224_application(value: Value) -> bool:
    """Whether a ``DataApplicationCapability`` is H.224 over RTP in the HDLC-tunnelled form (the one H.323 peers use)."""
    try:
        application = value["application"]
        return bool(application[0] == "h224" and application[1][0] == "hdlcFrameTunnelling")
    except (KeyError, TypeError, IndexError, ValueError):
        return False


def _format_from_data_type(data_type: Value, h2250: Value | None) -> MediaFormat | None:
    kind, body = data_type
    if kind == "audioData":
        name = _AUDIO_BY_CHOICE.get(body[0])
        if name is None:
            return None
        return MediaFormat(name, _STATIC_PT[name], frames=int(body[1]))
    if kind == "data":
        if not is_h224_application(body):
            return None
        payload_type = h2250.get("dynamicRTPPayloadType", H224_PAYLOAD_TYPE) if h2250 is not None \
            else H224_PAYLOAD_TYPE
        return MediaFormat("H224", payload_type, max_bitrate=int(body.get("maxBitRate", H224_MAX_BITRATE)))
    if kind == "videoData" and body[0] == "genericVideoCapability":
        cap = body[1]
        if cap["capabilityIdentifier"] != ("standard", H264_CAPABILITY_OID):
            return None
        profile = level = 0
        for param in cap.get("collapsing", []):
            ident, value = param["parameterIdentifier"], param["parameterValue"]
            if ident == ("standard", _H241_PROFILE) and value[0] == "booleanArray":
                profile = value[1]
            elif ident == ("standard", _H241_LEVEL) and value[0] == "unsignedMin":
                level = value[1]
        mode = 0  # H.241 §8.3.2: without a descriptor, single NAL unit mode
        payload_type = 96
        if h2250 is not None:
            payload_type = h2250.get("dynamicRTPPayloadType", payload_type)
            packetization = h2250.get("mediaPacketization")
            if packetization is not None and packetization[0] == "rtpPayloadType":
                descriptor = packetization[1]["payloadDescriptor"]
                for m, oid in H264_PACKETIZATION_OIDS.items():
                    if descriptor == ("oid", oid):
                        mode = m
                payload_type = packetization[1].get("payloadType", payload_type)
        return MediaFormat("H264", payload_type, profile=profile, level=level, packetization_mode=mode,
                           max_bitrate=cap.get("maxBitRate", 0))
    return None


# --------------------------------------------------------------------------- logical channels


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


# --------------------------------------------------------------------------- H.225.0 UUIEs


def alias_addresses(names: Sequence[str]) -> list[Value]:
    """H.225.0 ``AliasAddress`` values: ``dialledDigits`` for numeric names, ``h323-ID`` otherwise."""
    out: list[Value] = []
    for name in names:
        if name and all(c in "0123456789*#," for c in name):
            out.append(("dialledDigits", name))
        else:
            out.append(("h323-ID", name))
    return out


def user_information(body_name: str, body: Value, *, tunnelling: bool = True,
                     h245_control: Sequence[bytes] = ()) -> Value:
    """``H323-UserInformation`` around one UUIE body (H.225.0 §7.6)."""
    pdu: dict[str, Value] = {"h323-message-body": (body_name, body), "h245Tunnelling": tunnelling}
    if h245_control:
        pdu["h245Control"] = list(h245_control)
    return {"h323-uu-pdu": pdu}


def setup_uuie(*, call_id: bytes, conference_id: bytes, source_aliases: Sequence[str] = (),
               destination_aliases: Sequence[str] = (), source_address: Address | None = None,
               destination_address: Address | None = None, fast_start: Sequence[bytes] | None = None,
               display_name: str | None = None, h245_address: Address | None = None) -> Value:
    """Setup-UUIE (H.225.0 §7.6.2 / §8.1.7.1 with ``fastStart``; ``h245Address``: a separate H.245 listener)."""
    body: dict[str, Value] = {"protocolIdentifier": H225_PROTOCOL_ID}
    if h245_address is not None:
        body["h245Address"] = h245_address.h225()
    if source_aliases:
        body["sourceAddress"] = alias_addresses(source_aliases)
    body["sourceInfo"] = ENDPOINT_TYPE
    if destination_aliases:
        body["destinationAddress"] = alias_addresses(destination_aliases)
    if destination_address is not None:
        body["destCallSignalAddress"] = destination_address.h225()
    body["activeMC"] = False
    body["conferenceID"] = conference_id
    body["conferenceGoal"] = ("create", 0)
    body["callType"] = ("pointToPoint", 0)
    if source_address is not None:
        body["sourceCallSignalAddress"] = source_address.h225()
    body["callIdentifier"] = {"guid": call_id}
    if fast_start is not None:
        body["fastStart"] = list(fast_start)
    body["mediaWaitForConnect"] = False
    body["canOverlapSend"] = False
    body["multipleCalls"] = False
    body["maintainConnection"] = False
    name = clean_display(display_name)
    if name:
        body["displayName"] = [{"name": name[:DISPLAY_NAME_MAX]}]  # any script: "Hélène", "Saint-Flour — Mairie"
    return body


DISPLAY_NAME_MAX = 80  # H.225.0 DisplayName.name BMPString (SIZE(1..80))


def clean_display(value: object) -> str | None:
    """A display name from the network, safe to show and log: text only, control characters removed, trimmed.

    None for anything that is not text or nothing is left (a display is informational: never an error).
    """
    if not isinstance(value, str):
        return None
    text = "".join(c for c in value if c.isprintable()).strip()
    return text[:DISPLAY_NAME_MAX] or None


def _reply(call_id: bytes, fast_start: Sequence[bytes] | None, fast_connect_refused: bool,
           extra: dict[str, Value] | None = None, h245_address: Address | None = None) -> dict[str, Value]:
    body: dict[str, Value] = {"protocolIdentifier": H225_PROTOCOL_ID, "destinationInfo": ENDPOINT_TYPE}
    if extra:
        body.update(extra)
    if h245_address is not None:
        body["h245Address"] = h245_address.h225()
    body["callIdentifier"] = {"guid": call_id}
    if fast_start is not None:
        body["fastStart"] = list(fast_start)
    body["multipleCalls"] = False
    body["maintainConnection"] = False
    if fast_connect_refused:
        body["fastConnectRefused"] = 0
    return body


def call_proceeding_uuie(*, call_id: bytes, fast_start: Sequence[bytes] | None = None,
                         fast_connect_refused: bool = False, h245_address: Address | None = None) -> Value:
    """CallProceeding-UUIE (H.225.0 §7.6.3)."""
    return _reply(call_id, fast_start, fast_connect_refused, h245_address=h245_address)


def alerting_uuie(*, call_id: bytes, fast_start: Sequence[bytes] | None = None,
                  fast_connect_refused: bool = False, h245_address: Address | None = None) -> Value:
    """Alerting-UUIE (H.225.0 §7.6.1)."""
    return _reply(call_id, fast_start, fast_connect_refused, h245_address=h245_address)


def connect_uuie(*, call_id: bytes, conference_id: bytes, fast_start: Sequence[bytes] | None = None,
                 fast_connect_refused: bool = False, h245_address: Address | None = None) -> Value:
    """Connect-UUIE (H.225.0 §7.6.4)."""
    body = _reply(call_id, fast_start, fast_connect_refused, {"conferenceID": conference_id}, h245_address)
    # conferenceID precedes callIdentifier in the ASN.1; pycrate orders by the schema, so a dict is fine.
    return body


def release_complete_uuie(*, call_id: bytes, reason: str = "undefinedReason") -> Value:
    """ReleaseComplete-UUIE (H.225.0 §7.6.5) with a ``ReleaseCompleteReason`` name."""
    if reason not in RELEASE_REASONS:
        raise SignallingParseError(f"unknown release reason {reason!r}")
    return {"protocolIdentifier": H225_PROTOCOL_ID, "reason": (reason, 0), "callIdentifier": {"guid": call_id}}


def facility_uuie(*, call_id: bytes, conference_id: bytes, reason: str = "undefinedReason",
                  fast_start: Sequence[bytes] | None = None, h245_address: Address | None = None) -> Value:
    """Facility-UUIE (H.225.0 §7.6.6), e.g. a late fastStart answer, or ``startH245`` with an ``h245Address``."""
    body: dict[str, Value] = {"protocolIdentifier": H225_PROTOCOL_ID, "conferenceID": conference_id,
                              "reason": (reason, 0), "callIdentifier": {"guid": call_id}}
    if h245_address is not None:
        body["h245Address"] = h245_address.h225()
    if fast_start is not None:
        body["fastStart"] = list(fast_start)
    body["multipleCalls"] = False
    body["maintainConnection"] = False
    return body


RELEASE_REASONS = frozenset({
    "noBandwidth", "gatekeeperResources", "unreachableDestination", "destinationRejection", "invalidRevision",
    "noPermission", "unreachableGatekeeper", "gatewayResources", "badFormatAddress", "adaptiveBusy", "inConf",
    "undefinedReason", "facilityCallDeflection", "securityDenied", "calledPartyNotRegistered",
    "callerNotRegistered", "newConnectionNeeded", "replaceWithConferenceInvite", "neededFeatureNotSupported",
    "tunnelledSignallingRejected", "invalidCID", "hopCountExceeded",
})


@dataclass(frozen=True)
class UserInformation:
    """A decoded ``H323-UserInformation``: the UUIE ``body`` name and value, plus tunnelling fields."""

    body: str
    fields: Value
    h245_tunnelling: bool = False
    h245_control: tuple[bytes, ...] = ()

    @property
    def call_id(self) -> bytes | None:
        if isinstance(self.fields, dict):
            cid = self.fields.get("callIdentifier")
            if cid is not None:
                return bytes(cid["guid"])
        return None

    @property
    def conference_id(self) -> bytes | None:
        if isinstance(self.fields, dict) and "conferenceID" in self.fields:
            return bytes(self.fields["conferenceID"])
        return None

    @property
    def fast_start(self) -> tuple[bytes, ...] | None:
        if isinstance(self.fields, dict) and "fastStart" in self.fields:
            return tuple(self.fields["fastStart"])
        return None

    @property
    def display_name(self) -> str | None:
        """The first ``displayName`` (H.225.0 v7 Setup/Connect, a BMPString, so any script), cleaned; or None."""
        names = self.fields.get("displayName") if isinstance(self.fields, dict) else None
        if not isinstance(names, list) or not names or not isinstance(names[0], dict):
            return None
        return clean_display(names[0].get("name"))

    @property
    def h245_address(self) -> Address | None:
        """Where the peer listens for a separate H.245 connection (``h245Address``), if it gave an IP one."""
        value = self.fields.get("h245Address") if isinstance(self.fields, dict) else None
        if value is None:
            return None
        try:
            address = Address.from_h225(value)
        except (SignallingParseError, KeyError, TypeError, IndexError, ValueError):
            return None
        return address if 0 < address.port < 65536 else None

    @property
    def facility_reason(self) -> str | None:
        """A Facility's ``reason`` name (``startH245``, ...)."""
        if self.body == "facility" and isinstance(self.fields, dict) and "reason" in self.fields:
            return str(self.fields["reason"][0])
        return None

    @property
    def fast_connect_refused(self) -> bool:
        return isinstance(self.fields, dict) and "fastConnectRefused" in self.fields

    @property
    def release_reason(self) -> str | None:
        if self.body == "releaseComplete" and isinstance(self.fields, dict) and "reason" in self.fields:
            return str(self.fields["reason"][0])
        return None

    @property
    def source_aliases(self) -> tuple[str, ...]:
        return self._aliases("sourceAddress")

    @property
    def destination_aliases(self) -> tuple[str, ...]:
        return self._aliases("destinationAddress")

    @property
    def product(self) -> bytes | None:
        """The peer's ``productId`` (H.225.0 ``VendorIdentifier``) from ``sourceInfo``/``destinationInfo``, if given."""
        if not isinstance(self.fields, dict):
            return None
        for key in ("sourceInfo", "destinationInfo"):
            info = self.fields.get(key)
            if isinstance(info, dict):
                vendor = info.get("vendor")
                if isinstance(vendor, dict) and isinstance(vendor.get("productId"), (bytes, bytearray)):
                    return bytes(vendor["productId"])[:256]
        return None

    def _aliases(self, key: str) -> tuple[str, ...]:
        if not isinstance(self.fields, dict):
            return ()
        return tuple(str(a[1]) for a in self.fields.get(key, []) if a[0] in ("h323-ID", "dialledDigits", "url-ID"))


def parse_user_information(data: bytes) -> UserInformation:
    """Decode the PER bytes of a User-user IE."""
    value = asn1.decode_uuie(data)
    pdu = value["h323-uu-pdu"]
    body_name, body = pdu["h323-message-body"]
    return UserInformation(body_name, body, bool(pdu.get("h245Tunnelling", False)),
                           tuple(pdu.get("h245Control", ())))


# --------------------------------------------------------------------------- H.245 (moved, names kept importable)
# The H.245 PDU builders and readers live in vcore.h323.h245 (capabilities, pdus); imported last, because they
# build on the names above.
from .h245.capabilities import (
    legacy_security_capabilities,
    parse_capabilities,
    parse_capability_descriptors,
    parse_capability_table,
    terminal_capability_set,
    terminal_capability_set_ack,
    terminal_capability_set_reject,
    terminal_capability_set_release,
)
from .h245.pdus import (
    H245Pdu,
    close_logical_channel,
    close_logical_channel_ack,
    encode_h245,
    end_session_command,
    flow_control_command,
    function_not_understood,
    master_slave_determination,
    master_slave_determination_ack,
    master_slave_determination_reject,
    master_slave_determination_release,
    msd_decision,
    open_logical_channel_ack,
    open_logical_channel_pdu,
    open_logical_channel_reject,
    parse_h245,
    round_trip_delay_request,
    round_trip_delay_response,
    user_input_indication,
    video_fast_update_picture,
)
