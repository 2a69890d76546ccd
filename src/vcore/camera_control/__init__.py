"""Far-end camera control: H.224 frames, H.281 messages, the controlled and the controlling side.

Protocol-neutral: H.323 negotiates the H.224 data channel in H.245
(:mod:`vcore.h323.h224`), SIP would in SDP (``application/h224``, RFC 4573);
both carry one H.224 frame per RTP packet. See docs/h281.md.
"""

from __future__ import annotations

from .far_end import (
    CONTINUE_INTERVAL,
    CameraAction,
    FarEndCamera,
    FeccReceiver,
    FeccSender,
    RemoteCamera,
)
from .h224 import (
    CLIENT_CME,
    CLIENT_H281,
    ClientList,
    ClientListCommand,
    ExtraCapabilities,
    ExtraCapabilitiesCommand,
    H224Error,
    H224Frame,
    encode_rtp_payload,
    hdlc_decode,
    hdlc_encode,
    longest_ones_run,
    parse_cme,
    parse_rtp_payload,
)
from .h281 import (
    ActivatePreset,
    ContinueAction,
    Focus,
    H281Capabilities,
    H281Error,
    H281Message,
    Pan,
    SelectVideoSource,
    StartAction,
    StopAction,
    StoreAsPreset,
    Tilt,
    VideoMode,
    VideoSource,
    VideoSourceSwitched,
    Zoom,
    parse_h281,
)
from .session import FeccSession, camera_capabilities

__all__ = [
    "CLIENT_CME",
    "CLIENT_H281",
    "CONTINUE_INTERVAL",
    "ActivatePreset",
    "CameraAction",
    "ClientList",
    "ClientListCommand",
    "ContinueAction",
    "ExtraCapabilities",
    "ExtraCapabilitiesCommand",
    "FarEndCamera",
    "FeccReceiver",
    "FeccSender",
    "FeccSession",
    "Focus",
    "H224Error",
    "H224Frame",
    "H281Capabilities",
    "H281Error",
    "H281Message",
    "Pan",
    "RemoteCamera",
    "SelectVideoSource",
    "StartAction",
    "StopAction",
    "StoreAsPreset",
    "Tilt",
    "VideoMode",
    "VideoSource",
    "VideoSourceSwitched",
    "Zoom",
    "camera_capabilities",
    "encode_rtp_payload",
    "hdlc_decode",
    "hdlc_encode",
    "longest_ones_run",
    "parse_cme",
    "parse_h281",
    "parse_rtp_payload",
]
