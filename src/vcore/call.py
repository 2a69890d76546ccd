"""Terminal, Call and IncomingCall: H.323 signalling, SRTP media and the kiosk's features in one object.

```python
async with Terminal("Murat kiosk", video=TestPattern(), audio=Tone(), identity="kiosk.pem",
                    trust=["ca.pem"]) as t:
    call = await t.call("h323:caf-agent@192.0.2.10")      # or t.call(card=12)
    await call.connected
    async for event in call.events(): ...
    await call.hangup()
```

Per call the terminal opens two UDP sockets (audio and video receivers, RTCP
multiplexed on the RTP port), announces them in Fast Connect (or H.245
OpenLogicalChannelAck), and when channels open starts the senders with SRTP
sessions built from each channel's key material (ours for what we send, the
peer's for what we receive; fresh per call and per direction). Video arrives
through a :class:`~vcore.jitter.VideoJitterBuffer` with NACK; the sender answers
NACKs from a :class:`~vcore.nack.RetransmissionHistory`. H.245 keyframe requests
make the encoder send an IDR; flow control sets its bitrate. No RTP/RTCP from
the peer for ``media_timeout`` seconds ends the call (``media-timeout``).

Everything here is an asyncio object: use a terminal and its calls from one
event loop. Every task, thread and socket a call opens it closes when it ends;
the terminal closes its calls and its listener on ``close()``. Keys are never
logged. See ``docs/calls.md``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from . import pki
from .directory import Card, Directory
from .errors import CallError, SrtpError, TransportError, VcoreError
from .h323 import signalling as sig
from .h323.errors import SignallingError
from .h323.fast_connect import MediaChannel, MediaEndpoints, MediaPolicy
from .h323.gatekeeper import Admission, GatekeeperLink, parse_gatekeeper
from .h323.ras import RasRejected
from .h323.keys import DEFAULT_SUITES, SrtpKeyMaterial
from .h323.messages import DEFAULT_FORMATS, Address, MediaFormat
from .h323.q931 import Cause

if TYPE_CHECKING:
    from .media import AudioReceiver, AudioSender, Recorder, Source, VideoReceiver, VideoSender
    from .srtp import SrtpSession
    from .transport import PortRange, RtpTransport
    from .visca import ViscaCamera

__all__ = [
    "Terminal",
    "Call",
    "IncomingCall",
    "CallFailed",
    "CallEvent",
    "Ringing",
    "Connected",
    "MediaStarted",
    "Degraded",
    "KeyframeRequested",
    "BitrateChanged",
    "CameraControl",
    "Ended",
    "StreamStats",
    "CallStats",
    "parse_address",
]

log = logging.getLogger(__name__)

_SRTP_OVERHEAD = 16  # the largest tag (AEAD_AES_128_GCM, RFC 7714 §7); the MTU leaves room for it
_MTU = 1200
_WATCH_INTERVAL = 0.25
_LIP_SYNC_DEADBAND = 0.015  # s: lip-sync errors smaller than this are left alone
_LIP_SYNC_STEP = 0.02  # s: the most the sound's hold-back moves per watch tick
_DEGRADED_LOSS = 0.05  # fraction lost over the last second that makes a stream "degraded"
_STALL = 2.0  # seconds without media that make a stream "degraded" (long before the media timeout)
_AUDIO_CODEC = {"PCMU": "pcmu", "PCMA": "pcma", "G722": "g722"}
CAMERA_PRESET_PREFIX = "vcore:camera-preset="  # H.245 UserInputIndication alphanumeric, vcore's own convention
_CAMERA_PRESET = re.compile(r"^vcore:camera-preset=(\d{1,3})$")


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
class CameraControl(CallEvent):
    """The peer asked to recall preset ``preset`` of this terminal's camera; ``applied`` says if it was done."""

    kind: ClassVar[str] = "camera-control"
    preset: int = 0
    applied: bool = False
    detail: str = ""


@dataclass(frozen=True)
class Ended(CallEvent):
    """The call is over; always the last event.

    ``reason``: ``hangup``, ``busy``, ``rejected``, ``security-denied``,
    ``tls-failure``, ``timeout``, ``peer-closed``, ``protocol-error``,
    ``media-timeout``, ``terminal-closed``, or the peer's H.225.0 release
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


# --------------------------------------------------------------------------- addresses


_ADDRESS = re.compile(r"^(?:(?P<scheme>h323s?):)?(?:(?P<alias>[^@]+)@)?(?P<host>\[[^\]]+\]|[^:@]+)(?::(?P<port>\d+))?$")


def parse_address(address: str, tls: bool) -> tuple[str | None, str, int]:
    """``h323:alias@host[:port]``, ``h323s:...``, ``host[:port]`` -> (alias, host, port).

    The default port is 1300 with TLS (H.235.0), 1720 without (H.225.0 §7.1).
    """
    m = _ADDRESS.match(address.strip())
    if m is None:
        raise CallError(f"cannot read address {address!r} (expected h323:alias@host[:port] or host[:port])")
    host = m.group("host").strip("[]")
    port = int(m.group("port")) if m.group("port") else (sig.H225_TLS_PORT if tls else sig.H225_PORT)
    if not 0 < port < 65536:
        raise CallError(f"port {port} out of range in {address!r}")
    return m.group("alias"), host, port


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _anchors(trust: Iterable[str | os.PathLike[str]]) -> list[Any]:
    from cryptography import x509

    certs: list[Any] = []
    for path in trust:
        try:
            certs += x509.load_pem_x509_certificates(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise CallError(f"cannot read trust anchors from {path}: {exc}") from None
    return certs


# --------------------------------------------------------------------------- media of one call


class _KeySlot:
    """An SRTP session that arrives after the socket: packets before the key are dropped."""

    def __init__(self) -> None:
        self.session: SrtpSession | None = None
        self.plaintext = False

    @property
    def known(self) -> bool:
        return self.session is not None or self.plaintext

    def set(self, key: SrtpKeyMaterial | None) -> None:
        if key is None:
            self.plaintext = True
            return
        from .srtp import SrtpSession

        self.session = SrtpSession(key.suite, key.key_and_salt)

    def _get(self) -> SrtpSession | None:
        if self.session is None and not self.plaintext:
            raise SrtpError("no key for this stream yet")
        return self.session

    def unprotect(self, data: bytes) -> bytes:
        s = self._get()
        return data if s is None else s.unprotect(data)

    def unprotect_rtcp(self, data: bytes) -> bytes:
        s = self._get()
        return data if s is None else s.unprotect_rtcp(data)

    def protect_rtcp(self, data: bytes) -> bytes:
        s = self._get()
        return data if s is None else s.protect_rtcp(data)


class _SessionKeys:
    """The SRTP keys of one media session (audio or video): what we send under, what the peer sends under.

    Each side protects everything it sends on the session — its RTP and the RTCP
    about the stream it receives (RR, NACK, PLI) — with its own send key, so the
    two parties never share a key (a session where we do not send falls back to
    the receive key for our reports, and the peer's reports arrive under ours).
    RTCP is handled on the event loop; RTP is protected by the sender's own
    session in its thread.
    """

    def __init__(self) -> None:
        self.send = _KeySlot()
        self.receive = _KeySlot()

    def protect_rtcp(self, data: bytes) -> bytes:
        return (self.send if self.send.known else self.receive).protect_rtcp(data)

    def unprotect_rtcp(self, data: bytes) -> bytes:
        return (self.receive if self.receive.known else self.send).unprotect_rtcp(data)


class _FirstFrame:
    """A sink wrapper that notes when the first frame came (for ``media-started`` and set-up timing)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.first: float | None = None

    def write(self, frame: Any) -> None:
        if self.first is None:
            self.first = time.monotonic()
        if self.inner is not None:
            self.inner.write(frame)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()


class _Media:
    """The transports, receivers, senders and SRTP sessions of one call."""

    def __init__(self, terminal: Terminal, record: str | os.PathLike[str] | None) -> None:
        self.terminal = terminal
        self.record_path = os.fspath(record) if record is not None else None
        self.recorder: Recorder | None = None
        self.video_rx: VideoReceiver | None = None
        self.audio_rx: AudioReceiver | None = None
        self.video_tx: VideoSender | None = None
        self.audio_tx: AudioSender | None = None
        self.video_first = _FirstFrame(None)
        self.audio_first = _FirstFrame(None)
        self.keys: dict[int, _SessionKeys] = {1: _SessionKeys(), 2: _SessionKeys()}
        self.transports: dict[int, RtpTransport] = {}
        self.channels: list[MediaChannel] = []
        self.jitter: Any = None
        self.audio_jitter: Any = None
        self.started: set[str] = set()
        self.announced: str | None = None
        self.closed = False

    async def open(self, local_host: str, peer_host: str) -> MediaEndpoints:
        """Bind the media of both sessions and return what to announce to ``peer_host``.

        ``local_host``: this terminal's address on the signalling connection (the
        route toward the peer). Sockets bind to ``Terminal(media_host=)`` or the
        wildcard of the peer's family, on ports from ``rtp_ports``.
        """
        from .jitter import AudioJitterBuffer, VideoJitterBuffer
        from .media import AudioDecoder, AudioReceiver, Recorder, VideoReceiver
        from .transport import RtpTransport, announced_host, wildcard_for

        t = self.terminal
        bind = t.media_host or wildcard_for(peer_host)
        try:
            self.announced = announced_host(bind_host=bind, signalling_local=local_host, peer_host=peer_host,
                                            public_address=t.public_address)
            for session, name in ((1, "audio"), (2, "video")):
                keys = self.keys[session]
                self.transports[session] = RtpTransport(
                    bind, ports=t.rtp_ports, latch=True, peer_hosts={peer_host},
                    protect_rtcp=keys.protect_rtcp, unprotect_rtcp=keys.unprotect_rtcp, name=name)
                await self.transports[session].open()
            if self.record_path is not None:
                self.recorder = Recorder(self.record_path, audio=True)
            self.video_first = _FirstFrame(t._make_sink("video"))
            self.audio_first = _FirstFrame(t._make_sink("audio"))
            self.jitter = VideoJitterBuffer(nack=True, max_delay=0.5)
            vk, ak = self.keys[2].receive, self.keys[1].receive
            self.video_rx = VideoReceiver(self.video_first, assembler=self.jitter, unprotect=vk.unprotect,
                                          recorder=self.recorder, transport=self.transports[2])
            self.audio_jitter = AudioJitterBuffer(8000, 0.02, min_delay=0.02, max_delay=0.3)
            self.audio_rx = AudioReceiver(AudioDecoder("pcmu"), self.audio_first, unprotect=ak.unprotect,
                                          recorder=self.recorder, jitter=self.audio_jitter,
                                          transport=self.transports[1])
            for rx in (self.video_rx, self.audio_rx):
                rx.rtcp_interval = t.rtcp_interval
                rx.cname = t.name
                await rx.start()
        except BaseException:
            await self.close()
            raise
        endpoints: dict[int, tuple[Address, Address]] = {}
        for session, tr in self.transports.items():
            endpoints[session] = (Address(self.announced, tr.local_rtp[1]), Address(self.announced, tr.local_rtcp[1]))
        log.debug("media for %s: %s announced as %s", peer_host, bind, self.announced)
        return endpoints

    async def start_channel(self, ch: MediaChannel) -> None:
        if self.closed or ch in self.channels:
            return
        self.channels.append(ch)
        transport = self.transports.get(ch.session_id)
        if transport is not None:
            for a in (ch.remote_rtp, ch.remote_rtcp):
                if a is not None:
                    transport.add_peer_host(a.host)  # plaintext media from the signalled address may latch
            transport.set_remote(rtp=(ch.remote_rtp.host, ch.remote_rtp.port) if ch.remote_rtp else None,
                                 rtcp=(ch.remote_rtcp.host, ch.remote_rtcp.port) if ch.remote_rtcp else None)
        if ch.direction == "receive":
            self.keys[ch.session_id].receive.set(ch.srtp)
            if transport is not None:
                transport.encrypted = ch.srtp is not None
            if ch.format.kind == "audio" and self.audio_rx is not None:
                codec = _AUDIO_CODEC.get(ch.format.name, "pcmu")
                if self.audio_rx.decoder.info.name != codec:
                    from .media import AudioDecoder

                    self.audio_rx.decoder = AudioDecoder(codec)  # before its first packet: the key was not set
            return
        await self._start_sender(ch)

    async def _start_sender(self, ch: MediaChannel) -> None:
        from .media import AudioEncoder, AudioSender, H264Encoder, VideoSender
        from .nack import RetransmissionHistory
        from .srtp import SrtpSession

        t = self.terminal
        transport = self.transports.get(ch.session_id)
        if ch.remote_rtp is None or transport is None:
            log.warning("send channel %d has no RTP address; not sending", ch.number)
            return
        remote = (ch.remote_rtp.host, ch.remote_rtp.port)
        self.keys[ch.session_id].send.set(ch.srtp)  # our RTCP on this session goes under our own key
        hooks: dict[str, Any] = {"transport": transport}
        if ch.srtp is not None:
            # SrtpSession is not thread-safe: RTP is protected in the encode thread with its own session
            hooks["protect"] = SrtpSession(ch.srtp.suite, ch.srtp.key_and_salt).protect
        if ch.format.kind == "video":
            source = t._make_source("video")
            if source is None or self.video_tx is not None:
                return
            w = int(getattr(source, "width", 1280))
            h = int(getattr(source, "height", 720))
            fps = float(getattr(source, "fps", 30.0))
            bitrate = t.bitrate
            if ch.format.max_bitrate:
                bitrate = min(bitrate, ch.format.max_bitrate * 100)
            encoder = H264Encoder(w, h, fps, bitrate, codec=t.encoder,
                                  max_slice_size=_MTU - _SRTP_OVERHEAD - 100 if ch.format.packetization_mode == 0
                                  else None)
            sender: Any = VideoSender(source, encoder, remote, payload_type=ch.format.payload_type,
                                      mode=ch.format.packetization_mode, mtu=_MTU - _SRTP_OVERHEAD, **hooks)
            sender.history = RetransmissionHistory(1024, max_age=1.0)
            self.video_tx = sender
        else:
            source = t._make_source("audio")
            if source is None or self.audio_tx is not None:
                return
            codec = _AUDIO_CODEC.get(ch.format.name)
            if codec is None:
                source.close()
                log.warning("no audio encoder for %s", ch.format.name)
                return
            sender = AudioSender(source, AudioEncoder(codec), remote,
                                 payload_type=ch.format.payload_type, **hooks)
            self.audio_tx = sender
        sender.cname = t.name
        await sender.start()

    def request_keyframe(self) -> None:
        if self.video_tx is not None:
            self.video_tx.request_keyframe()

    def set_bitrate(self, bitrate: int) -> int | None:
        if self.video_tx is None:
            return None
        self.video_tx.encoder.bitrate = bitrate
        return bitrate

    def received_packets(self) -> int:
        return sum(rx.packets + rx.rtcp_packets for rx in (self.video_rx, self.audio_rx) if rx is not None)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for tx in (self.video_tx, self.audio_tx):
            if tx is not None:
                await tx.close()
        await asyncio.sleep(0.02)  # the BYEs and last packets in flight
        for rx in (self.video_rx, self.audio_rx):
            if rx is not None:
                await rx.close()
        for transport in self.transports.values():
            await transport.close()
        if self.recorder is not None and self.video_rx is None and self.audio_rx is None:
            self.recorder.close()


# --------------------------------------------------------------------------- the call


class Call:
    """One call of a :class:`Terminal` (placed with :meth:`Terminal.call` or answered).

    ``await call.connected`` waits until it is answered (raises
    :class:`CallFailed` if it ends first); ``async for event in
    call.events()`` follows it (every iterator sees every event from the start;
    the last is :class:`Ended`); ``call.stats()`` is a snapshot;
    ``await call.hangup()`` ends it (idempotent). ``ended`` is the
    :class:`Ended` event once over. Use from the terminal's event loop.
    """

    def __init__(self, terminal: Terminal, session: sig.CallSession, media: _Media | None, *, outgoing: bool,
                 started: float | None = None, admission: Admission | None = None) -> None:
        self.terminal = terminal
        self.admission = admission
        self.outgoing = outgoing
        self._session = session
        self._media = media
        self._history: list[CallEvent] = []
        self._changed = asyncio.Condition()
        loop = asyncio.get_running_loop()
        self.connected: asyncio.Future[None] = loop.create_future()
        self.connected.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: no GC warning
        self.ended: Ended | None = None
        self.setup_started = started if started is not None else time.monotonic()
        self.connected_at: float | None = None
        self._local_reason: str | None = None
        self._degraded: dict[str, bool] = {}
        self._last: dict[tuple[str, str], tuple[float, int, int]] = {}
        self._loss_prev: dict[str, tuple[int, int]] = {}
        self._stream_seen: dict[str, tuple[int, float]] = {}
        self._last_media = time.monotonic()
        self._last_count = 0
        self._finished = asyncio.Event()
        self._pump = loop.create_task(self._run(), name=f"vcore-call-{session.call_reference}")
        self._watch: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._peer: str | None = None
        self._security: dict[str, Any] | None = None
        self._media_detail: str | None = None
        _ = self.peer  # the connection's certificate is gone once it closes: read it now

    def __repr__(self) -> str:
        state = self.ended.reason if self.ended else ("connected" if self.connected.done() else "setting up")
        return f"<Call {'to' if self.outgoing else 'from'} {self.peer!r}: {state}>"

    # ------------------------------------------------------------ public

    @property
    def peer(self) -> str | None:
        """The peer's certificate name (TLS), else its alias or display name."""
        if self._peer is None and self.ended is None:
            s = self._session
            self._peer = s.peer_name or (s.remote_aliases[0] if s.remote_aliases else None) or s.remote_display
        return self._peer

    @property
    def recording(self) -> str | None:
        return self._media.record_path if self._media else None

    @property
    def local_media(self) -> dict[str, tuple[str, int]]:
        """Where this terminal receives the call's media: ``{"audio": (host, port), "video": ...}``."""
        m = self._media
        if m is None or m.closed:
            return {}
        return {k: rx.local_address for k, rx in (("audio", m.audio_rx), ("video", m.video_rx)) if rx is not None}

    @property
    def first_frame_at(self) -> float | None:
        """Monotonic time the first video frame from the peer was decoded (None so far)."""
        return self._media.video_first.first if self._media else None

    async def events(self) -> AsyncIterator[CallEvent]:
        """Every event of the call, from the first; ends after :class:`Ended`."""
        i = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self._history) > i)
                batch = self._history[i:]
            for event in batch:
                i += 1
                yield event
                if isinstance(event, Ended):
                    return

    async def wait_ended(self, timeout: float | None = None) -> Ended:
        await asyncio.wait_for(self._finished.wait(), timeout)
        assert self.ended is not None
        return self.ended

    async def hangup(self) -> None:
        """End the call (ReleaseComplete, normal clearing) and tear the media down; idempotent."""
        if self.ended is None:
            if self._local_reason is None:
                self._local_reason = "hangup"
            await self._session.hangup("undefinedReason", Cause.NORMAL_CALL_CLEARING)
        try:
            await asyncio.shield(self._pump)
        except Exception:  # pragma: no cover - the pump handles its own failures; never leave media running
            log.exception("call %s: event handling failed", self.peer)
        if self.ended is None:  # pragma: no cover - see above
            await self._finish(sig.Released("undefinedReason", None, False, "event handling failed"))

    async def request_keyframe(self) -> None:
        """Ask the peer for a keyframe (H.245 videoFastUpdatePicture on its video channel)."""
        ch = self._channel("receive", "video")
        if ch is not None and self.ended is None:
            await self._session.request_keyframe(ch.number)
            await self._emit(KeyframeRequested(by_peer=False))

    async def limit_bitrate(self, bitrate: int | None) -> None:
        """Ask the peer to send video at most ``bitrate`` bit/s (H.245 flowControlCommand; None lifts it)."""
        ch = self._channel("receive", "video")
        if self.ended is None:
            await self._session.limit_bitrate(bitrate, ch.number if ch else None)

    async def set_bitrate(self, bitrate: int) -> None:
        """Change our own video bitrate (bit/s)."""
        if self._media is not None and self._media.set_bitrate(bitrate) is not None:
            await self._emit(BitrateChanged(bitrate=bitrate, by_peer=False))

    async def camera_preset(self, preset: int) -> None:
        """Recall a preset of this terminal's VISCA camera during the call."""
        await self.terminal.camera_preset(preset)

    async def remote_camera_preset(self, preset: int) -> None:
        """Ask the peer to recall a preset of its camera (H.245 UserInputIndication ``vcore:camera-preset=N``).

        The peer acts on it only if its terminal has ``remote_camera=True`` and a camera; it reports a
        :class:`CameraControl` event either way. Peers other than vcore see the string as user input.
        """
        if not 0 <= preset <= 255:
            raise CallError(f"camera preset {preset} out of range 0..255")
        if self.ended is None:
            await self._session.send_user_input(f"{CAMERA_PRESET_PREFIX}{preset}")

    def security(self) -> dict[str, Any]:
        """What protects the call (signalling, peer certificate, per-stream SRTP suite); never the keys."""
        if self._security is None or self.ended is None:
            try:
                self._security = self._session.security()
            except (AttributeError, OSError):  # the connection is gone: the last snapshot stands
                pass
        return dict(self._security or {"signalling": "unknown", "media": []})

    def stats(self) -> CallStats:
        """Per stream: codec, bitrate, fps, loss, jitter, RTT, playout delay, cipher suite (a snapshot)."""
        now = time.monotonic()
        streams: list[StreamStats] = []
        m = self._media
        sec = self.security()
        if m is not None:
            for ch in m.channels:
                s = self._stream_stats(ch, now)
                if s is not None:
                    streams.append(s)
        warnings = []
        if sec["signalling"] == "plaintext":
            warnings.append("plaintext signalling: the SRTP keys travel unprotected")
        if any(s.cipher_suite == "plaintext" for s in streams):
            warnings.append("plaintext media: some streams are not encrypted")
        lip = None
        if m is not None and m.video_rx is not None and m.audio_rx is not None:
            lip = _lip_sync(m.audio_rx, m.video_rx)
        hold = m.audio_jitter.sync_delay if m is not None and m.audio_jitter is not None else 0.0
        encrypted = sec["signalling"] == "tls" and bool(streams) and all(s.cipher_suite != "plaintext"
                                                                         for s in streams)
        return CallStats(self.peer, (now - self.connected_at) if self.connected_at else 0.0, sec["signalling"],
                         encrypted, tuple(streams), lip, tuple(warnings), hold)

    # ------------------------------------------------------------ internals

    def _channel(self, direction: str, kind: str) -> MediaChannel | None:
        if self._media is None:
            return None
        return next((c for c in self._media.channels if c.direction == direction and c.format.kind == kind), None)

    def _stream_stats(self, ch: MediaChannel, now: float) -> StreamStats | None:
        m = self._media
        assert m is not None
        kind, suite = ch.format.kind, ch.suite or "plaintext"
        key = (kind, ch.direction)
        if ch.direction == "send":
            tx: Any = m.video_tx if kind == "video" else m.audio_tx
            if tx is None:
                return None
            frames = tx.frames_encoded if kind == "video" else tx.frames_captured
            bitrate, fps = self._rates(key, now, tx.bytes_sent, frames)
            return StreamStats(kind, "send", ch.format.name, suite, tx.packets_sent, tx.bytes_sent, bitrate,
                               fps if kind == "video" else None, loss=tx.fraction_lost, rtt=tx.rtt,
                               retransmitted=tx.retransmitted,
                               keyframe_requests=getattr(tx, "keyframe_requests", 0), frames=frames)
        rx: Any = m.video_rx if kind == "video" else m.audio_rx
        if rx is None:
            return None
        bitrate, fps = self._rates(key, now, rx.bytes, rx.frames)
        st = rx.stats
        loss = jitter = None
        if st is not None:
            loss = max(0, st.lost) / st.expected if st.expected > 0 else 0.0
            jitter = st.jitter
        jb = m.jitter if kind == "video" else m.audio_jitter
        delay = jb.delay if jb is not None else None
        return StreamStats(kind, "receive", ch.format.name, suite, rx.packets, rx.bytes, bitrate,
                           fps if kind == "video" else None, loss=loss, jitter=jitter, playout_delay=delay,
                           latency_p50=rx.latency.percentile(50), latency_p95=rx.latency.percentile(95),
                           dropped=rx.dropped, nacks=getattr(rx, "nacks_sent", 0),
                           keyframe_requests=getattr(rx, "plis_sent", 0), frames=rx.frames,
                           concealed=getattr(rx, "concealed", 0))

    def _rates(self, key: tuple[str, str], now: float, nbytes: int, frames: int) -> tuple[float, float]:
        t0, b0, f0 = self._last.get(key, (self.connected_at or now, 0, 0))
        self._last[key] = (now, nbytes, frames)
        dt = now - t0
        if dt <= 0:
            return 0.0, 0.0
        return (nbytes - b0) * 8 / dt, (frames - f0) / dt

    async def _emit(self, event: CallEvent) -> None:
        async with self._changed:
            self._history.append(event)
            self._changed.notify_all()
        if isinstance(event, (Connected, MediaStarted, Degraded, Ended)):
            log.info("call %s: %s %s", self.peer, event.kind, getattr(event, "reason", "") or
                     getattr(event, "stream", ""))

    async def _run(self) -> None:
        session = self._session
        try:
            async for event in session:
                if isinstance(event, sig.Alerting):
                    await self._emit(Ringing())
                elif isinstance(event, sig.Connected):
                    self._security = session.security()
                    # keys for what we receive first: the peer may already be sending
                    for ch in sorted(event.channels, key=lambda c: c.direction != "receive"):
                        await self._start(ch)
                    self.connected_at = time.monotonic()
                    self._last_media = self.connected_at
                    if not self.connected.done():
                        self.connected.set_result(None)
                    await self._emit(Connected(security=self._security))
                    self._watch = asyncio.get_running_loop().create_task(self._watch_media())
                elif isinstance(event, sig.ChannelOpened):
                    await self._start(event.channel)
                elif isinstance(event, sig.KeyframeRequested):
                    if self._media is not None:
                        self._media.request_keyframe()
                    await self._emit(KeyframeRequested(by_peer=True))
                elif isinstance(event, sig.BitrateLimited):
                    rate = min(event.bitrate, self.terminal.bitrate) if event.bitrate else self.terminal.bitrate
                    if self._media is not None and self._media.set_bitrate(rate) is not None:
                        await self._emit(BitrateChanged(bitrate=rate, by_peer=True))
                elif isinstance(event, sig.UserInput):
                    # a camera move takes seconds: keep the signalling flowing meanwhile
                    task = asyncio.get_running_loop().create_task(self._user_input(event.text))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif isinstance(event, sig.ProtocolWarning):
                    log.warning("call %s: %s", self.peer, event.detail)
                elif isinstance(event, sig.Released):
                    await self._finish(event)
                    return
        except asyncio.CancelledError:
            await self._finish(None)
            raise
        except Exception as exc:  # a failure in the media set-up must not leave a call half alive
            log.exception("call %s failed", self.peer)
            self._local_reason = self._local_reason or "media-error"
            await session.hangup("undefinedReason", Cause.TEMPORARY_FAILURE)
            await self._finish(sig.Released("undefinedReason", Cause.TEMPORARY_FAILURE, False, repr(exc)))

    async def _user_input(self, text: str) -> None:
        m = _CAMERA_PRESET.match(text)
        if m is None:
            log.debug("call %s: user input ignored", self.peer)
            return
        preset = int(m.group(1))
        t = self.terminal
        if not t.remote_camera or t.camera is None:
            why = "no camera" if t.camera is None else "remote camera control is off (remote_camera=False)"
            await self._emit(CameraControl(preset=preset, applied=False, detail=why))
            return
        try:
            await t.camera.preset_recall(preset)
        except VcoreError as exc:
            await self._emit(CameraControl(preset=preset, applied=False, detail=str(exc)))
        else:
            await self._emit(CameraControl(preset=preset, applied=True, detail="recalled"))

    async def _start(self, ch: MediaChannel) -> None:
        if self._media is not None:
            await self._media.start_channel(ch)

    async def _watch_media(self) -> None:
        """Media timeout, ``media-started`` and ``degraded`` (every 250 ms)."""
        m = self._media
        if m is None:
            return
        timeout = self.terminal.media_timeout
        while self.ended is None:
            await asyncio.sleep(_WATCH_INTERVAL)
            now = time.monotonic()
            count = m.received_packets()
            if count != self._last_count:
                self._last_count, self._last_media = count, now
            for stream, first in (("video", m.video_first), ("audio", m.audio_first)):
                if first.first is not None and stream not in m.started:
                    m.started.add(stream)
                    await self._emit(MediaStarted(stream=stream))
            await self._check_degraded(now)
            if self.terminal.lip_sync and m.audio_jitter is not None and m.audio_rx and m.video_rx:
                _follow_lips(m.audio_jitter, m.audio_rx, m.video_rx)
            rtt = m.video_tx.rtt if m.video_tx is not None else None
            if rtt is not None and m.jitter is not None:
                m.jitter.rtt = max(rtt, 0.005)  # our path's RTT (from the peer's RRs) paces the buffer's NACKs
            if timeout and now - self._last_media > timeout:
                self._local_reason = "media-timeout"
                detail = f"no RTP or RTCP from the peer for {timeout:g} s"
                self._media_detail = detail
                await self._session.hangup("undefinedReason", Cause.RECOVERY_ON_TIMER_EXPIRY)
                return

    async def _check_degraded(self, now: float) -> None:
        m = self._media
        assert m is not None
        for stream, rx in (("video", m.video_rx), ("audio", m.audio_rx)):
            if rx is None or stream not in m.started or rx.stats is None:
                continue
            count, since = self._stream_seen.get(stream, (-1, now))
            if rx.packets != count:
                count, since = rx.packets, now
            self._stream_seen[stream] = (count, since)
            expected, received = rx.stats.expected, rx.stats.received
            e0, r0 = self._loss_prev.get(stream, (expected, received))
            self._loss_prev[stream] = (expected, received)
            loss = (1 - (received - r0) / (expected - e0)) if expected - e0 > 0 else 0.0
            stalled = now - since > _STALL
            bad = loss > _DEGRADED_LOSS or stalled
            if bad != self._degraded.get(stream, False):
                self._degraded[stream] = bad
                detail = "no media" if stalled else f"{loss:.0%} lost" if bad else "recovered"
                await self._emit(Degraded(stream=stream, detail=detail, degraded=bad))

    async def _finish(self, released: sig.Released | None) -> None:
        if self.ended is not None:
            return
        for task in [self._watch, *self._tasks]:
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        if self._media is not None:
            await self._media.close()
        if released is None:
            released = sig.Released("undefinedReason", None, False, "the terminal closed")
            self._local_reason = self._local_reason or "terminal-closed"
        reason = self._local_reason or _REASONS.get(released.reason, released.reason)
        if self._local_reason is None and released.by_peer:
            if released.cause == Cause.NORMAL_CALL_CLEARING:
                reason = "hangup"
            elif released.cause == Cause.USER_BUSY:
                reason = "busy"
        detail = self._media_detail or released.detail
        self.ended = Ended(reason=reason, detail=detail, by_peer=released.by_peer and self._local_reason is None,
                           h225_reason=released.reason, cause=released.cause)
        if not self.connected.done():
            self.connected.set_exception(CallFailed(f"call ended before it was answered: {reason} ({detail})",
                                                    reason))
        try:
            await self._session.hangup()  # idempotent: makes sure the session's reader task is gone
        except SignallingError:
            pass
        gk = self.terminal._gk
        if self.admission is not None and gk is not None:
            await gk.disengage(self.admission, answered=self.connected_at is not None)  # bounded, never raises
        self.terminal._forget(self)
        await self._emit(self.ended)
        self._finished.set()


def _lip_sync(audio: Any, video: Any) -> float | None:
    """How much later (s) pictures reach their sink than sound of the same capture instant (from the SRs)."""
    a, v = audio.presentation_delay, video.presentation_delay
    if a is None or v is None:
        return None
    return float(v - a)


def _follow_lips(audio_jitter: Any, audio: Any, video: Any) -> None:
    """Hold the sound back (``sync_delay`` of its jitter buffer) by as much as the pictures are late.

    Moves at most one 20 ms step per call and ignores errors under 15 ms: ITU-R
    BT.1359 finds sound 45 ms early, or 125 ms late, noticeable. A picture that is
    early is not held back (sound a little late is natural; the video path has no
    playout buffer of its own).
    """
    from .jitter import MAX_SYNC_DELAY

    skew = _lip_sync(audio, video)
    if skew is None:
        return
    current = audio_jitter.sync_delay
    step = min(MAX_SYNC_DELAY, max(0.0, current + skew)) - current  # to a hold-back within [0, MAX]
    if abs(step) >= _LIP_SYNC_DEADBAND:
        held = current + max(-_LIP_SYNC_STEP, min(_LIP_SYNC_STEP, step))
        audio_jitter.sync_delay = min(MAX_SYNC_DELAY, max(0.0, held))  # float rounding stays in range


class IncomingCall:
    """A call offered to a terminal: ``await answer()`` -> :class:`Call`, or ``await reject("busy")``.

    ``caller``: the caller's certificate name (TLS) or alias; ``aliases``,
    ``display``. With ``auto_answer`` the terminal has already answered it:
    ``answered`` is True and ``answer()`` returns the call.
    """

    def __init__(self, terminal: Terminal, session: sig.CallSession) -> None:
        self.terminal = terminal
        self._session = session
        self.call: Call | None = None
        self.caller = session.peer_name or (session.remote_aliases[0] if session.remote_aliases else None)
        self.aliases = session.remote_aliases
        self.display = session.remote_display
        self.received = time.monotonic()

    def __repr__(self) -> str:
        return f"<IncomingCall from {self.caller!r}{' answered' if self.call else ''}>"

    @property
    def answered(self) -> bool:
        return self.call is not None

    async def ring(self) -> None:
        """Send Alerting (the caller sees ``ringing``)."""
        await self._session.alert()

    async def answer(self, *, record: str | os.PathLike[str] | None = None) -> Call:
        """Accept the call; ``record``: write what the peer sends (audio + video) to this MP4 file."""
        if self.call is not None:
            return self.call
        if self._session.released is not None:
            r = self._session.released
            raise CallFailed(f"the caller is gone: {r.reason} ({r.detail})", _REASONS.get(r.reason, r.reason))
        t = self.terminal
        if record is None and t.recordings is not None:
            Path(t.recordings).mkdir(parents=True, exist_ok=True)
            who = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.caller or "caller")
            record = Path(t.recordings) / f"call-{time.strftime('%Y%m%d-%H%M%S')}-{who}.mp4"
        admission = None
        if t._gk is not None:
            s = self._session
            try:
                admission = await t._gk.admit(call_id=s.call_id, conference_id=s.conference_id,
                                              call_reference=s.call_reference, destination=t.aliases, answer=True)
            except SignallingError as exc:
                t._pending.discard(s)
                await s.reject("destinationRejection", Cause.CALL_REJECTED)
                raise CallFailed(f"the gatekeeper did not admit the call: {exc}", "rejected") from None
        media = _Media(t, record)
        t._pending.discard(self._session)
        try:
            endpoints = await media.open(self._session.local_host, self._session.peer_host)  # closes on failure
        except BaseException:
            await self._session.hangup("undefinedReason", Cause.TEMPORARY_FAILURE)
            raise
        self.call = Call(t, self._session, media, outgoing=False, started=self.received, admission=admission)
        t._calls.add(self.call)
        try:
            channels = await self._session.answer(endpoints)
        except (VcoreError, OSError, ssl.SSLError) as exc:
            await self.call.hangup()
            raise CallFailed(f"cannot answer: {exc}", "connection-failed") from None
        for ch in channels:  # receive keys now, before the caller's first packet
            if ch.direction == "receive":
                await media.start_channel(ch)
        return self.call

    async def reject(self, reason: str = "busy") -> None:
        """Refuse: ``busy`` (userBusy, cause 17), ``rejected`` (destinationRejection, cause 21), or an H.225.0 reason."""
        self.terminal._pending.discard(self._session)
        if reason == "busy":
            await self._session.hangup("undefinedReason", Cause.USER_BUSY)
        elif reason == "rejected":
            await self._session.reject("destinationRejection", Cause.CALL_REJECTED)
        else:
            await self._session.reject(reason, Cause.CALL_REJECTED)


# --------------------------------------------------------------------------- the terminal


SourceSpec = Any  # a Source, or a zero-argument callable returning a fresh Source per call


class Terminal:
    """An H.323 terminal: places and answers calls with SRTP media, over mutual TLS.

    ``video``/``audio``: a source for the next call (closed when that call
    ends) or a zero-argument callable that makes a fresh one per call (what an
    agent station answering all day needs). ``identity``: a
    :class:`~vcore.pki.Identity` or the path of its PEM; ``trust``: PEM files
    of the trust anchors; ``crl``: an optional CRL file. Without an identity the
    terminal runs plaintext, which needs ``allow_plaintext=True`` and shows in
    every call's stats. ``auto_answer`` answers every admitted call;
    ``allow``: certificate names admitted (others get ``securityDenied``).
    ``directory``: ``cards.toml`` (path or :class:`Directory`) for
    ``call(card=n)``. ``camera``: a :class:`~vcore.visca.ViscaCamera` whose
    presets calls can recall. ``listen``: accept calls on ``host:port``
    (port 0: any free port, see :attr:`port`; host ``""``: every address).
    ``media_host``: bind the media sockets to this address (default: every
    address of the peer's family); the media address announced to a peer is
    the one this terminal uses toward it (the signalling connection's local
    address), or ``public_address`` for a station behind a port-forwarding
    router (static NAT). ``rtp_ports``: the UDP range (``(16384, 16483)`` or
    ``"16384-16483"``) media takes its RTP (even) / RTCP (odd) pairs from; two
    pairs per call. Media goes back to where the peer's authenticated packets
    come from (symmetric RTP), so a peer behind a NAT gets its media. ``max_calls``: further callers
    get ``busy``. ``recordings``: a directory where answered calls are
    recorded. ``video_sink``/``audio_sink``: zero-argument callables making a
    sink (or callable) per call for the decoded frames. ``remote_camera``: let the
    peer recall this camera's presets (:meth:`Call.remote_camera_preset`).
    ``lip_sync``: hold the received sound back (up to 1 s) when the received
    pictures reach their sink later than the sound captured with them
    (:attr:`CallStats.lip_sync`). ``gatekeeper``: ``"HOST[:1719]"``: register
    ``aliases`` (default: the certificate's name) on start, ask admission (ARQ)
    before every call placed or answered, disengage (DRQ) after it, unregister
    on close; ``call("h323:ALIAS")`` then finds the alias through it.

    Use from one event loop; ``async with`` starts and closes it.
    """

    def __init__(
        self,
        name: str,
        *,
        video: SourceSpec = None,
        audio: SourceSpec = None,
        camera: ViscaCamera | None = None,
        identity: pki.Identity | str | os.PathLike[str] | None = None,
        trust: Sequence[str | os.PathLike[str]] = (),
        crl: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        listen: bool = True,
        media_host: str | None = None,
        rtp_ports: PortRange | tuple[int, int] | str | None = None,
        public_address: str | None = None,
        gatekeeper: str | None = None,
        aliases: Sequence[str] | None = None,
        auto_answer: bool = False,
        allow: Iterable[str] | None = None,
        directory: Directory | str | os.PathLike[str] | None = None,
        allow_plaintext: bool = False,
        formats: Sequence[MediaFormat] = DEFAULT_FORMATS,
        suites: Sequence[str] = DEFAULT_SUITES,
        fast_connect: bool = True,
        bitrate: int = 1_500_000,
        encoder: str = "auto",
        media_timeout: float = 10.0,
        rtcp_interval: float = 1.0,
        setup_timeout: float = 10.0,
        max_calls: int = 1,
        recordings: str | os.PathLike[str] | None = None,
        video_sink: Callable[[], Any] | None = None,
        audio_sink: Callable[[], Any] | None = None,
        remote_camera: bool = False,
        lip_sync: bool = True,
    ) -> None:
        self.name = name
        self.lip_sync = lip_sync
        self._video = video
        self._audio = audio
        self.camera = camera
        self.remote_camera = remote_camera
        self.host = host
        self.listen_port = port
        self.listen = listen
        from .transport import check_host, is_wildcard, parse_port_range

        self.media_host = check_host(media_host) if media_host and not is_wildcard(media_host) else None
        self.rtp_ports = parse_port_range(rtp_ports) if rtp_ports is not None else None
        self.public_address = check_host(public_address) if public_address else None
        self.auto_answer = auto_answer
        self.allow = frozenset(allow) if allow is not None else None
        if isinstance(directory, (str, os.PathLike)):
            directory = Directory.load(directory)
        self.directory = directory
        self.bitrate = bitrate
        self.encoder = encoder
        self.media_timeout = media_timeout
        self.rtcp_interval = rtcp_interval
        self.max_calls = max_calls
        self.recordings = recordings
        self._sinks = {"video": video_sink, "audio": audio_sink}
        if identity is not None and not isinstance(identity, pki.Identity):
            identity = pki.Identity.load(identity)
        self.identity = identity
        self._server_ctx: ssl.SSLContext | None = None
        self._client_ctx: ssl.SSLContext | None = None
        if identity is not None:
            anchors = _anchors(trust)
            if not anchors:
                raise CallError("a terminal with an identity needs trust anchors (trust=[ca.pem])")
            self._server_ctx = pki.server_context(identity, anchors, crl)
            self._client_ctx = pki.client_context(identity, anchors, crl)
        elif not allow_plaintext:
            raise CallError("no identity: give identity= and trust= (TLS), or allow_plaintext=True")
        policy = MediaPolicy(tuple(formats), tuple(suites), allow_plaintext=allow_plaintext)
        self.config = sig.SignallingConfig(name if identity is None else identity.name, policy=policy,
                                           allow_list=self.allow, allow_plaintext_signalling=allow_plaintext,
                                           fast_connect=fast_connect, setup_timeout=setup_timeout,
                                           display_name=name)
        self.aliases = tuple(aliases) if aliases else (self.config.alias,)
        self.gatekeeper = parse_gatekeeper(gatekeeper) if gatekeeper else None
        self._gk: GatekeeperLink | None = None
        self._listener: sig.SignallingListener | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._incoming: asyncio.Queue[IncomingCall | None] = asyncio.Queue()
        self._calls: set[Call] = set()
        self._pending: set[sig.CallSession] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"<Terminal {self.name!r} {'TLS' if self.identity else 'plaintext'} calls={len(self._calls)}>"

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen for calls (``listen``) and register with the gatekeeper (``gatekeeper``)."""
        if self.listen and self._listener is None:
            self._listener = sig.SignallingListener(self.config, self._server_ctx)
            await self._listener.start(self.host, self.listen_port)
            self._accept_task = asyncio.get_running_loop().create_task(self._accept_loop(), name="vcore-accept")
        if self.gatekeeper is not None and self._gk is None:
            port = self._listener.port if self._listener is not None else (
                sig.H225_TLS_PORT if self._client_ctx is not None else sig.H225_PORT)
            gk = GatekeeperLink(self.gatekeeper, self.aliases, port, public_address=self.public_address)
            try:
                await gk.start()
            except SignallingError as exc:
                await self.close()
                raise CallError(f"cannot register with the gatekeeper {self.gatekeeper.host}:"
                                f"{self.gatekeeper.port}: {exc}") from None
            self._gk = gk

    async def close(self) -> None:
        """Hang up every call, stop listening (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._accept_task is not None:
            self._accept_task.cancel()
            try:
                await self._accept_task
            except asyncio.CancelledError:
                pass
        for call in list(self._calls):
            if call.ended is None:
                call._local_reason = call._local_reason or "terminal-closed"
            await call.hangup()
        for session in list(self._pending):
            await session.hangup("undefinedReason", Cause.TEMPORARY_FAILURE)
        if self._gk is not None:
            await self._gk.close()  # URQ, bounded
            self._gk = None
        if self._listener is not None:
            await self._listener.close()
        await self._incoming.put(None)

    async def __aenter__(self) -> Terminal:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The port this terminal accepts calls on."""
        if self._listener is None:
            raise CallError("the terminal is not listening (start it, with listen=True)")
        return self._listener.port

    @property
    def address(self) -> str:
        """``host:port`` to call this terminal at."""
        host = self.host or "127.0.0.1"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def refused(self) -> list[sig.RefusedCall]:
        """Callers refused before a call existed (untrusted certificate, not on the allow-list)."""
        return list(self._listener.refused) if self._listener else []

    @property
    def calls(self) -> list[Call]:
        return [c for c in self._calls if c.ended is None]

    # ------------------------------------------------------------ calls

    async def call(self, address: str | None = None, *, card: int | None = None,
                   record: str | os.PathLike[str] | None = None, expect_name: str | None = None) -> Call:
        """Call ``address`` (``h323:alias@host[:port]`` or ``host[:port]``) or directory card ``card``.

        ``expect_name``: the certificate name the callee must present (a card's ``certificate``).
        ``record``: write what the peer sends to this MP4. Raises :class:`CallFailed` when no call
        could be set up (no connection, TLS refused); later failures end the call with a reason.
        """
        if self._closed:
            raise CallError("the terminal is closed")
        if card is not None:
            if self.directory is None:
                raise CallError("this terminal has no directory (directory=cards.toml)")
            entry: Card = self.directory[card]
            address = entry.address
            expect_name = expect_name or entry.certificate
        if address is None:
            raise CallError("give an address or a card number")
        if len(self.calls) >= self.max_calls:
            raise CallError(f"already in {len(self.calls)} call(s) (max_calls={self.max_calls})")
        tls = self._client_ctx is not None
        started = time.monotonic()
        alias, host, port = self._target(address, tls)
        admission = None
        ids: dict[str, Any] = {}
        if self._gk is not None:
            ids = {"call_id": os.urandom(16), "conference_id": os.urandom(16),
                   "call_reference": secrets.randbelow(0x7FFF) + 1}
            try:
                admission = await self._gk.admit(**ids, destination=[alias] if alias else [],
                                                 destination_address=Address(host, port) if host else None)
            except RasRejected as exc:
                raise CallFailed(f"the gatekeeper refused the call: {exc.reason}", "rejected") from None
            except SignallingError as exc:
                raise CallFailed(f"gatekeeper: {exc}", "gatekeeper-failure") from None
            host, port = admission.destination.host, admission.destination.port
        if host is None:
            raise CallError(f"{address!r} names no host: give h323:alias@host, or a gatekeeper= to find the alias")
        media = _Media(self, record)
        try:
            session = await sig.place_call(host, port, self.config, media.open, ssl_context=self._client_ctx,
                                           destination=[alias] if alias else [], expected_name=expect_name,
                                           **ids)
        except TransportError as exc:  # no free media port, or no address the peer can reach
            await media.close()
            raise CallFailed(str(exc), "media-unavailable") from None
        except VcoreError as exc:
            await media.close()
            reason = "tls-failure" if "TLS" in str(exc) else "security-denied" if "certificate" in str(exc) \
                else "timeout" if "within" in str(exc) else "connection-failed"
            raise CallFailed(str(exc), reason) from None
        except BaseException:
            await media.close()
            raise
        call = Call(self, session, media, outgoing=True, started=started, admission=admission)
        self._calls.add(call)
        return call

    def _target(self, address: str, tls: bool) -> tuple[str | None, str | None, int]:
        """(alias, host, port) of an address; with a gatekeeper ``h323:ALIAS`` alone is an alias to resolve."""
        if self._gk is not None:
            bare = re.sub(r"^h323s?:", "", address.strip())
            if "@" not in bare and not _is_ip(bare.strip("[]")) and re.fullmatch(r"[^\s:@\[\]]+", bare):
                return bare, None, 0
        return parse_address(address, tls)

    async def incoming(self) -> AsyncIterator[IncomingCall]:
        """Calls offered to this terminal (already answered with ``auto_answer``); ends when it closes."""
        while True:
            item = await self._incoming.get()
            if item is None:
                await self._incoming.put(None)  # other iterators end too
                return
            yield item

    async def camera_preset(self, preset: int) -> None:
        """Recall a preset of the local VISCA camera."""
        if self.camera is None:
            raise CallError("this terminal has no camera")
        await self.camera.preset_recall(preset)

    # ------------------------------------------------------------ internals

    def _make_source(self, kind: str) -> Source | None:
        spec = self._video if kind == "video" else self._audio
        if spec is None:
            return None
        if callable(spec) and not hasattr(spec, "read"):
            return spec()  # type: ignore[no-any-return]
        # a source object serves one call: it is closed when that call's sender closes
        if kind == "video":
            self._video = None
        else:
            self._audio = None
        return spec  # type: ignore[no-any-return]

    def _make_sink(self, kind: str) -> Any:
        factory = self._sinks[kind]
        if factory is None:
            return None
        from .media.sinks import as_sink

        return as_sink(factory())

    def _forget(self, call: Call) -> None:
        self._calls.discard(call)

    async def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            session = await self._listener.accept()
            try:
                await self._offer(session)
            except (VcoreError, OSError) as exc:
                log.warning("incoming call from %s failed: %s", session.peer_name, exc)

    async def _offer(self, session: sig.CallSession) -> None:
        waiting = [s for s in self._pending if s.released is None]
        self._pending = set(waiting)
        if len(self.calls) + len(waiting) >= self.max_calls:
            log.info("busy: refusing a call from %s", session.peer_name)
            await session.hangup("undefinedReason", Cause.USER_BUSY)
            return
        self._pending.add(session)  # until answered or rejected; hung up if the terminal closes first
        incoming = IncomingCall(self, session)
        if self.auto_answer:
            await incoming.answer()
        else:
            await incoming.ring()
        await self._incoming.put(incoming)
