"""H.245 capability exchange PDUs (H.245 §7.2): the TerminalCapabilitySet we send and what the peer's says.

Pure functions of their arguments (pycrate values in, pycrate values out); the
capability exchange procedure (CESE) is :mod:`vcore.h323.h245.cese`. SRTP
suites are H.235.8 ``h235SecurityCapability`` entries (:mod:`vcore.h323.keys`);
the H.224 data channel of far-end camera control is a data application
capability (H.323 Annex Q). The names are also importable from
:mod:`vcore.h323.messages`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import SignallingParseError
from ..keys import parse_security_capability, security_capability
from ..messages import (
    _AUDIO_CHOICE,
    H224,
    H224_MAX_BITRATE,
    H224_PAYLOAD_TYPE,
    H245_PROTOCOL_ID,
    H264_PACKETIZATION_OIDS,
    MediaFormat,
    _format_from_data_type,
    is_h224_application,
)

__all__ = [
    "legacy_security_capabilities",
    "parse_capabilities",
    "parse_capability_descriptors",
    "parse_capability_table",
    "terminal_capability_set",
    "terminal_capability_set_ack",
    "terminal_capability_set_reject",
    "terminal_capability_set_release",
]

Value = Any


def _multipoint() -> Value:
    return {
        "multicastCapability": False,
        "multiUniCastConference": False,
        "mediaDistributionCapability": [{
            "centralizedControl": False, "distributedControl": False, "centralizedAudio": False,
            "distributedAudio": False, "centralizedVideo": False, "distributedVideo": False,
        }],
    }


def terminal_capability_set(sequence_number: int, formats: Sequence[MediaFormat],
                            suites: Sequence[str] = (), *, h224: bool = False) -> Value:
    """TerminalCapabilitySet request (H.245 §7.2.1): receive capabilities for ``formats``.

    With ``suites`` each media capability gets an ``h235SecurityCapability``
    entry naming the SRTP suites it may be protected with (H.235.0 §8.6.1).
    ``h224``: also the H.224 data channel of far-end camera control (H.323
    Annex Q), in its own alternative set of the descriptor (simultaneous with audio and video).
    """
    table: list[Value] = []
    audio_alt: list[int] = []
    video_alt: list[int] = []
    modes: dict[int, int] = {}
    security = security_capability(suites) if suites else None  # H.235.8 only: no legacy form in what we offer
    for fmt in formats:
        number = len(table) + 1
        if fmt.name == "H264":
            capability = ("receiveVideoCapability", ("genericVideoCapability", fmt._h264_capability()))
            video_alt.append(number)
            modes[fmt.packetization_mode] = fmt.payload_type
        else:
            capability = ("receiveAudioCapability", (_AUDIO_CHOICE[fmt.name], fmt.frames))
            audio_alt.append(number)
        _capability_entry(table, number, capability, security)
    data_alt: list[int] = []
    if h224:
        number = len(table) + 1
        data_alt.append(number)
        _capability_entry(table, number, ("receiveAndTransmitDataApplicationCapability", H224.data_type()[1]),
                          security)
    packetization: dict[str, Value] = {"h261aVideoPacketization": False}
    if modes:
        packetization["rtpPayloadType"] = [
            {"payloadDescriptor": ("oid", H264_PACKETIZATION_OIDS[m]), "payloadType": pt}
            for m, pt in sorted(modes.items(), reverse=True)
        ]
    h2250 = {
        "maximumAudioDelayJitter": 60,
        "receiveMultipointCapability": _multipoint(),
        "transmitMultipointCapability": _multipoint(),
        "receiveAndTransmitMultipointCapability": _multipoint(),
        "mcCapability": {"centralizedConferenceMC": False, "decentralizedConferenceMC": False},
        "rtcpVideoControlCapability": True,
        "mediaPacketizationCapability": packetization,
    }
    simultaneous = [alt for alt in (audio_alt, video_alt, data_alt) if alt]
    tcs: dict[str, Value] = {
        "sequenceNumber": sequence_number,
        "protocolIdentifier": H245_PROTOCOL_ID,
        "multiplexCapability": ("h2250Capability", h2250),
    }
    if table:
        tcs["capabilityTable"] = table
        tcs["capabilityDescriptors"] = [{"capabilityDescriptorNumber": 0, "simultaneousCapabilities": simultaneous}]
    return ("request", ("terminalCapabilitySet", tcs))


def _capability_entry(table: list[Value], number: int, capability: Value, security: Value | None) -> None:
    table.append({"capabilityTableEntryNumber": number, "capability": capability})
    if security is not None:
        table.append({
            "capabilityTableEntryNumber": number + 1,
            "capability": ("h235SecurityCapability", {
                "encryptionAuthenticationAndIntegrity": security,
                "mediaCapability": number,
            }),
        })


def parse_capabilities(tcs: Value) -> tuple[tuple[MediaFormat, ...], tuple[str, ...]]:
    """The receive formats and SRTP suites a TerminalCapabilitySet announces (unknown ones skipped)."""
    formats: list[MediaFormat] = []
    suites: list[str] = []
    modes: dict[int, int] = {}
    mux = tcs.get("multiplexCapability")
    if mux is not None and mux[0] == "h2250Capability":
        for entry in mux[1].get("mediaPacketizationCapability", {}).get("rtpPayloadType", []):
            for m, oid in H264_PACKETIZATION_OIDS.items():
                if entry["payloadDescriptor"] == ("oid", oid):
                    modes[m] = entry.get("payloadType", 96 + (1 - m))
    for entry in tcs.get("capabilityTable", []):
        try:
            _read_capability(entry, formats, suites, modes)
        except (KeyError, TypeError, IndexError, ValueError, AttributeError):
            continue  # a capability vcore cannot read is one it does not use
    return tuple(dict.fromkeys(formats)), tuple(suites)


_DATA_CAPABILITIES = ("receiveDataApplicationCapability", "receiveAndTransmitDataApplicationCapability",
                      "transmitDataApplicationCapability")


def _read_capability(entry: Value, formats: list[MediaFormat], suites: list[str], modes: dict[int, int]) -> None:
    capability = entry.get("capability")
    if capability is not None:
        kind, body = capability
        if kind in ("receiveAudioCapability", "receiveAndTransmitAudioCapability"):
            fmt = _format_from_data_type(("audioData", body), None)
            if fmt is not None:
                formats.append(fmt)
        elif kind in ("receiveVideoCapability", "receiveAndTransmitVideoCapability"):
            base = _format_from_data_type(("videoData", body), None)
            if base is not None:
                for mode, pt in sorted((modes or {0: 96}).items(), reverse=True):
                    formats.append(MediaFormat("H264", pt, profile=base.profile, level=base.level,
                                               packetization_mode=mode, max_bitrate=base.max_bitrate))
        elif kind in _DATA_CAPABILITIES:
            if is_h224_application(body):
                formats.append(MediaFormat("H224", H224_PAYLOAD_TYPE,
                                           max_bitrate=int(body.get("maxBitRate", H224_MAX_BITRATE))))
        elif kind == "h235SecurityCapability":
            for name in parse_security_capability(body["encryptionAuthenticationAndIntegrity"]).suites:
                if name not in suites:
                    suites.append(name)


def legacy_security_capabilities(tcs: Value) -> bool:
    """Whether a TerminalCapabilitySet offers SRTP suites only in the pre-H.235.8 vcore form (an older vcore peer):
    the channels we open to it then carry their suite and key in that form."""
    legacy = False
    for entry in tcs.get("capabilityTable", []):
        try:
            kind, body = entry["capability"]
            if kind == "h235SecurityCapability":
                offer = parse_security_capability(body["encryptionAuthenticationAndIntegrity"])
                if offer.suites and not offer.legacy:
                    return False
                legacy = legacy or offer.legacy
        except (KeyError, TypeError, IndexError, ValueError, AttributeError, SignallingParseError):
            continue
    return legacy


def parse_capability_table(tcs: Value) -> dict[int, tuple[MediaFormat, ...]]:
    """The media formats of each ``capabilityTableEntryNumber`` of a TerminalCapabilitySet (unknown ones: empty)."""
    modes: dict[int, int] = {}
    mux = tcs.get("multiplexCapability")
    if mux is not None and mux[0] == "h2250Capability":
        for entry in mux[1].get("mediaPacketizationCapability", {}).get("rtpPayloadType", []):
            for m, oid in H264_PACKETIZATION_OIDS.items():
                if entry["payloadDescriptor"] == ("oid", oid):
                    modes[m] = entry.get("payloadType", 96 + (1 - m))
    table: dict[int, tuple[MediaFormat, ...]] = {}
    for entry in tcs.get("capabilityTable", []):
        formats: list[MediaFormat] = []
        try:
            _read_capability(entry, formats, [], modes)
            table[int(entry["capabilityTableEntryNumber"])] = tuple(formats)
        except (KeyError, TypeError, IndexError, ValueError, AttributeError):
            continue
    return table


def parse_capability_descriptors(tcs: Value) -> tuple[tuple[tuple[int, ...], ...], ...] | None:
    """The ``capabilityDescriptors`` of a TerminalCapabilitySet (H.245 §7.2.1.3): for each descriptor, its
    ``simultaneousCapabilities`` as alternative sets of capability table entry numbers; None when absent."""
    descriptors = tcs.get("capabilityDescriptors")
    if not isinstance(descriptors, list):
        return None
    out: list[tuple[tuple[int, ...], ...]] = []
    for descriptor in descriptors:
        sets = descriptor.get("simultaneousCapabilities", []) if isinstance(descriptor, dict) else []
        out.append(tuple(tuple(int(n) for n in alternatives) for alternatives in sets))
    return tuple(out)


def terminal_capability_set_ack(sequence_number: int) -> Value:
    return ("response", ("terminalCapabilitySetAck", {"sequenceNumber": sequence_number}))


def terminal_capability_set_reject(sequence_number: int) -> Value:
    return ("response", ("terminalCapabilitySetReject",
                         {"sequenceNumber": sequence_number, "cause": ("unspecified", 0)}))


def terminal_capability_set_release() -> Value:
    """TerminalCapabilitySetRelease (H.245 §7.2.4): our capability set was not answered (T101)."""
    return ("indication", ("terminalCapabilitySetRelease", {}))
