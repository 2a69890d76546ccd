"""Media formats as H.245 describes them: codecs (G.711, G.722, H.264 after H.241, Opus for SIP), the H.224
data channel, and the H.245 ``DataType`` values that carry them.

References: H.241 §8.3 (H.264 generic capability 0.0.8.241.0.0.1, profile parameter 41, level parameter 42,
packetization OIDs 0.0.8.241.0.0.0.{0,1}), H.245 (v13) AudioCapability / DataApplicationCapability,
H.323 Annex Q (H.224 over RTP), RFC 3551 Table 4 (static payload types). Pure, thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "H264_CAPABILITY_OID",
    "H264_PACKETIZATION_OIDS",
    "H264_PROFILE_BASELINE",
    "H264_PROFILE_MAIN",
    "H264_PROFILE_HIGH",
    "H264_LEVELS",
    "SESSION_AUDIO",
    "SESSION_VIDEO",
    "SESSION_DATA",
    "H224",
    "H224_APPLICATION",
    "H224_CLOCK_RATE",
    "H224_MAX_BITRATE",
    "H224_PAYLOAD_TYPE",
    "is_h224_application",
    "MediaFormat",
    "PCMU",
    "PCMA",
    "G722",
    "OPUS",
    "H264_MODE1",
    "H264_MODE0",
    "DEFAULT_FORMATS",
]

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
SESSION_AUDIO = 1  # H.225.0 §6.2.8.1 / H.245 sessionID: 1 audio, 2 video, 3 data
SESSION_VIDEO = 2
SESSION_DATA = 3
H224_PAYLOAD_TYPE = 100  # dynamic (RFC 3551); H323Plus's default for H.224
H224_MAX_BITRATE = 640  # units of 100 bit/s (64 kbit/s), as H323Plus announces; H.281 uses a few hundred bit/s
H224_CLOCK_RATE = 8000  # H323Plus stamps H.224 packets with milliseconds × 8 (RFC 4573's SDP says 4800; unused)
# H.245 DataApplicationCapability.application for H.224 over RTP (H.323 Annex Q): the frame as an HDLC bit stream
H224_APPLICATION = ("h224", ("hdlcFrameTunnelling", 0))

Value = Any


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
