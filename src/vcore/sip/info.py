"""What a call says in SIP INFO requests (RFC 6086): keyframe requests, user input, DTMF.

vcore sends and takes three bodies: the RFC 5168 ``application/media_control+xml``
``picture_fast_update`` (a keyframe request), vcore's own
``application/vnd.vcore.user-input`` (UTF-8 text: camera presets and moves, the
recording notice), and takes the de-facto Cisco ``application/dtmf-relay``
(``Signal=5``). :func:`answer_info` says how to answer an INFO and what it
means for the call; :class:`vcore.sip.SipSession` sends and receives them. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..callcontrol import CallEvent, KeyframeRequested, UserInput
from ..h323.fast_connect import MediaChannel

__all__ = ["FAST_UPDATE", "MAX_USER_INPUT", "MEDIA_CONTROL_TYPE", "USER_INPUT_TYPE", "InfoAnswer", "answer_info"]

USER_INPUT_TYPE = "application/vnd.vcore.user-input"  # vcore's own INFO body for user input (UTF-8 text)
MEDIA_CONTROL_TYPE = "application/media_control+xml"  # RFC 5168
FAST_UPDATE = (b'<?xml version="1.0" encoding="utf-8" ?><media_control><vc_primitive><to_encoder>'
               b"<picture_fast_update/></to_encoder></vc_primitive></media_control>")
MAX_USER_INPUT = 1024  # bytes of user input sent or read in one INFO
_DTMF_RELAY = "application/dtmf-relay"
_SIGNAL = re.compile(rb"Signal\s*=\s*([0-9A-D*#])")


@dataclass(frozen=True)
class InfoAnswer:
    """The response to an INFO (``status``, ``reason``, ``extra`` headers) and the call event it carries."""

    status: int
    reason: str
    event: CallEvent | None = None
    extra: tuple[tuple[str, str], ...] = ()


def answer_info(content_type: str | None, body: bytes, channels: Sequence[MediaChannel]) -> InfoAnswer:
    """How to answer an INFO of ``content_type`` carrying ``body`` in a call with ``channels``: a keyframe
    request for the video we send, user input, a DTMF digit, or 415 with the types vcore takes."""
    body = body[:MAX_USER_INPUT]
    if content_type == MEDIA_CONTROL_TYPE and b"picture_fast_update" in body:
        video = next((c for c in channels if c.direction == "send" and c.format.kind == "video"), None)
        return InfoAnswer(200, "OK", KeyframeRequested(video.number) if video is not None else None)
    if content_type == USER_INPUT_TYPE:
        return InfoAnswer(200, "OK", UserInput(body.decode("utf-8", "replace")))
    if content_type == _DTMF_RELAY:  # the de-facto Cisco format: Signal=5
        m = _SIGNAL.search(body)
        if m is None:
            return InfoAnswer(400, "Bad Request")
        return InfoAnswer(200, "OK", UserInput(m.group(1).decode()))
    return InfoAnswer(415, "Unsupported Media Type",
                      extra=(("Accept", f"{MEDIA_CONTROL_TYPE}, {USER_INPUT_TYPE}, {_DTMF_RELAY}"),))
