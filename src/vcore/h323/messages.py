"""Builders and readers of H.225.0 UUIEs (the H.323-UserInformation of Q.931 messages).

Builders return pycrate values (see :mod:`vcore.h323.asn1`); readers turn
decoded values into small frozen dataclasses. Everything here is a pure
function of its arguments and thread-safe.

This module is also where the H.323 message vocabulary is imported from: the
transport address (:mod:`vcore.h323.address`), the media formats
(:mod:`vcore.h323.formats`), the logical channels (:mod:`vcore.h323.logical_channels`)
and the H.245 PDUs (:mod:`vcore.h323.h245.capabilities`, :mod:`vcore.h323.h245.pdus`)
are re-exported here under the names they always had.

References: H.225.0 (v4 protocol identifier) §7.6 H323-UserInformation,
§7.6.1-§7.6.6 (Setup, CallProceeding, Alerting, Connect, ReleaseComplete, Facility UUIEs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import asn1
from .address import Address as Address
from .errors import SignallingParseError
from .formats import _AUDIO_CHOICE as _AUDIO_CHOICE
from .formats import H264_PACKETIZATION_OIDS as H264_PACKETIZATION_OIDS
from .formats import _format_from_data_type as _format_from_data_type
from .formats import (
    DEFAULT_FORMATS,
    G722,
    H224,
    H224_APPLICATION,
    H224_CLOCK_RATE,
    H224_MAX_BITRATE,
    H224_PAYLOAD_TYPE,
    H264_CAPABILITY_OID,
    H264_LEVELS,
    H264_MODE0,
    H264_MODE1,
    H264_PROFILE_BASELINE,
    H264_PROFILE_HIGH,
    H264_PROFILE_MAIN,
    OPUS,
    PCMA,
    PCMU,
    SESSION_AUDIO,
    SESSION_DATA,
    SESSION_VIDEO,
    MediaFormat,
    is_h224_application,
)
from .logical_channels import UNKNOWN_SUITE, OpenChannel, open_logical_channel, parse_open_logical_channel

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

VENDOR = {
    "vendor": {"t35CountryCode": 181, "t35Extension": 0, "manufacturerCode": 0},
    "productId": b"vcore",
    "versionId": b"1",
}
ENDPOINT_TYPE = {"vendor": VENDOR, "terminal": {}, "mc": False, "undefinedNode": False}

Value = Any


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
