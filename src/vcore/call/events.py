"""Call events, the call's failure exception and statistics snapshots (pure data)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import CallError

log = logging.getLogger(__name__)


class CallFailed(CallError):
    """A call could not be placed (no connection, TLS refused, wrong certificate name); ``reason`` says why."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class CallEvent:
    """Base of a call's events; ``kind`` is the short name (``ringing``, ``connected``, ...)."""

    kind: ClassVar[str] = "event"


@dataclass(frozen=True)
class Ringing(CallEvent):
    """The callee is alerting its user."""

    kind: ClassVar[str] = "ringing"


@dataclass(frozen=True)
class Connected(CallEvent):
    """The call is answered; ``security`` is what protects it (as in :meth:`Call.stats`)."""

    kind: ClassVar[str] = "connected"
    security: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class MediaStarted(CallEvent):
    """The first frame of ``stream`` (``audio`` or ``video``) from the peer was decoded."""

    kind: ClassVar[str] = "media-started"
    stream: str = ""


@dataclass(frozen=True)
class Degraded(CallEvent):
    """A received stream got worse (``degraded`` True: loss or a stall) or recovered (False)."""

    kind: ClassVar[str] = "degraded"
    stream: str = ""
    detail: str = ""
    degraded: bool = True


@dataclass(frozen=True)
class KeyframeRequested(CallEvent):
    """A keyframe was requested: by the peer (H.245 videoFastUpdatePicture) or by us."""

    kind: ClassVar[str] = "keyframe-requested"
    by_peer: bool = True


@dataclass(frozen=True)
class BitrateChanged(CallEvent):
    """The video encoder's bitrate changed (``by_peer``: the peer's H.245 flow control)."""

    kind: ClassVar[str] = "bitrate-changed"
    bitrate: int = 0
    by_peer: bool = True


@dataclass(frozen=True)
class Held(CallEvent):
    """The call went on hold (``held`` True) or was resumed; ``by_peer``: the peer did it (SIP re-INVITE),
    else this side (:meth:`Call.hold`). While held, nothing is sent to the peer (RTCP goes on)."""

    kind: ClassVar[str] = "held"
    held: bool = True
    by_peer: bool = True


@dataclass(frozen=True)
class CameraControl(CallEvent):
    """The peer asked to recall preset ``preset`` of this terminal's camera; ``applied`` says if it was done."""

    kind: ClassVar[str] = "camera-control"
    preset: int = 0
    applied: bool = False
    detail: str = ""
    move: str = ""  # a nudge asked by the peer (``left``, ``zoom-in``...) instead of a preset (then ``preset`` is -1)


@dataclass(frozen=True)
class RecordingNotice(CallEvent):
    """The peer says it started (``recording`` True) or stopped recording the call (H.245 user input)."""

    kind: ClassVar[str] = "recording"
    recording: bool = False


@dataclass(frozen=True)
class Ended(CallEvent):
    """The call is over; always the last event.

    ``reason``: ``hangup``, ``busy``, ``rejected``, ``security-denied``,
    ``tls-failure``, ``timeout``, ``peer-closed``, ``protocol-error``,
    ``media-timeout``, ``media-error`` (a media thread or task failed), ``internal-error``
    (a vcore task failed: logged with its traceback), ``terminal-closed``, or the peer's H.225.0 release
    reason. ``h225_reason``/``cause``: what went over the wire (Q.850 cause);
    ``by_peer``: who ended it; ``detail``: a sentence for the log.
    """

    kind: ClassVar[str] = "ended"
    reason: str = ""
    detail: str = ""
    by_peer: bool = False
    h225_reason: str = ""
    cause: int | None = None


_REASONS = {
    "userBusy": "busy", "adaptiveBusy": "busy", "destinationRejection": "rejected", "securityDenied": "security-denied",
    "tlsFailure": "tls-failure", "timeout": "timeout", "peerClosed": "peer-closed", "protocolError": "protocol-error",
    "connectionFailed": "connection-failed",
}


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class StreamStats:
    """One one-way stream of a call.

    ``bitrate`` (bit/s) and ``fps`` are measured since the previous
    :meth:`Call.stats` (or the start). ``loss``: fraction lost — for a received
    stream what we counted (RFC 3550 A.3), for a sent stream the peer's last
    report. ``jitter`` (s, RFC 3550 A.8, received streams), ``rtt`` (s, from
    the peer's reports about our stream), ``playout_delay`` (s, the
    jitter buffer's current delay), ``latency_p50``/``latency_p95`` (s,
    capture to decoded, only meaningful when both terminals share a clock),
    ``cipher_suite`` (``plaintext`` when unprotected), ``dropped`` (packets
    that failed SRTP authentication or parsing, bogus packets included),
    ``frames`` (encoded when sending, decoded when receiving), ``concealed``
    (received audio frames played as concealment: lost or late).
    Sent video under congestion control: ``target_bitrate`` (bit/s, the
    controller's estimate of what the line takes), ``queue_delay`` (s, the
    queueing delay it measures), ``size`` (``"WxH@fps"`` the encoder runs at)
    and ``frames_dropped`` (frames skipped to hold the target, or held while a
    deep modem queue drains).
    """

    stream: str
    direction: str
    codec: str
    cipher_suite: str
    packets: int
    bytes: int
    bitrate: float
    fps: float | None = None
    loss: float | None = None
    jitter: float | None = None
    rtt: float | None = None
    playout_delay: float | None = None
    latency_p50: float | None = None
    latency_p95: float | None = None
    dropped: int = 0
    nacks: int = 0
    retransmitted: int = 0
    keyframe_requests: int = 0
    frames: int = 0
    concealed: int = 0
    target_bitrate: int | None = None
    queue_delay: float | None = None
    size: str | None = None
    frames_dropped: int = 0


@dataclass(frozen=True)
class CallStats:
    """A snapshot of a call: who, how protected, how long, and its streams.

    ``lip_sync`` (s): how much later the received pictures reach their sink than
    the received sound captured at the same instant (from the sender's SRs;
    positive: the picture is late), None until both streams had an SR and a
    frame. ``lip_sync_delay`` (s): how long the received sound is held back to
    match (see ``Terminal(lip_sync=...)``).
    """

    peer: str | None
    duration: float
    signalling: str
    media_encrypted: bool
    streams: tuple[StreamStats, ...]
    lip_sync: float | None = None
    warnings: tuple[str, ...] = ()
    lip_sync_delay: float = 0.0

    def stream(self, stream: str, direction: str) -> StreamStats | None:
        return next((s for s in self.streams if s.stream == stream and s.direction == direction), None)
