"""The media of one call: a transport per session, receivers, senders, SRTP keys, lip sync."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import SrtpError, TransportError
from ..h323.fast_connect import MediaChannel, MediaEndpoints
from ..h323.keys import SrtpKeyMaterial
from ..h323.messages import Address

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..media import AudioReceiver, AudioSender, Recorder, VideoReceiver, VideoSender
    from ..srtp import SrtpSession
    from ..transport import RtpTransport
    from ..transport.dtls import DtlsCertificate, DtlsKeys, DtlsRole, DtlsSrtpTransport

from .fecc import DataChannel

if TYPE_CHECKING:
    from .terminal import Terminal

_SRTP_OVERHEAD = 16  # the largest tag (AEAD_AES_128_GCM, RFC 7714 §7); the MTU leaves room for it
_MTU = 1200
_VIDEO_MAX_DELAY = 0.5  # s: the most the video jitter buffer waits for a frame (0.8 measured no better on ADSL)
_START_BITRATE = 300_000  # bit/s a congestion-controlled call starts at (GCC's usual start)
_MIN_BITRATE = 100_000  # the controller's floor: 180p at 15 fps stays watchable
_IDR_INTERVAL = 20.0  # s between periodic IDRs under congestion control (PLI/NACK repair the rest)
_LIP_SYNC_DEADBAND = 0.015  # s: lip-sync errors smaller than this are left alone
_LIP_SYNC_STEP = 0.02  # s: the most the sound's hold-back moves per watch tick
_AUDIO_CODEC = {"PCMU": "pcmu", "PCMA": "pcma", "G722": "g722", "OPUS": "opus"}  # OPUS: SIP only

log = logging.getLogger(__name__)


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
        from ..srtp import SrtpSession

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
        self.rtcp: _SessionKeys | None = None  # DTLS-SRTP without rtcp-mux: the RTCP socket's own keys (RFC 5764)

    def protect_rtcp(self, data: bytes) -> bytes:
        if self.rtcp is not None:
            return self.rtcp.protect_rtcp(data)
        return (self.send if self.send.known else self.receive).protect_rtcp(data)

    def unprotect_rtcp(self, data: bytes) -> bytes:
        if self.rtcp is not None:
            return self.rtcp.unprotect_rtcp(data)
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


class _Endpoints(dict[int, tuple[Address, Address]]):
    """What a call announces (per session: RTP, RTCP address), and DTLS-SRTP on those sockets.

    Implements :class:`vcore.transport.dtls.DtlsMedia` for the signalling that negotiates DTLS-SRTP.
    """

    def __init__(self, endpoints: dict[int, tuple[Address, Address]], media: _Media) -> None:
        super().__init__(endpoints)
        self._media = media

    async def dtls_handshake(self, session_id: int, certificate: DtlsCertificate, role: DtlsRole,
                             fingerprints: Sequence[tuple[str, str]], suites: Sequence[str],
                             remote: tuple[tuple[str, int], tuple[str, int]] | None = None,
                             timeout: float = 10.0) -> DtlsKeys:
        return await self._media.dtls_handshake(session_id, certificate, role, fingerprints, suites, remote, timeout)


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
        self.dtls: dict[tuple[int, bool], DtlsSrtpTransport] = {}  # (session, RTCP socket?): DTLS-SRTP, if asked
        self.channels: list[MediaChannel] = []
        self.jitter: Any = None
        self.audio_jitter: Any = None
        self.started: set[str] = set()
        self.announced: str | None = None
        self.closed = False
        # whether the peer is vcore (its H.225.0 productId): RFC 8888 feedback goes only to a peer that uses it
        self.peer_is_vcore: Callable[[], bool] = lambda: False
        # the decoder needs a keyframe: besides the RTCP PLI, ask through signalling (H.245 videoFastUpdatePicture)
        self.request_fast_update: Callable[[], None] | None = None
        # H.323: the H.224 data channel of far-end camera control (RTP session 3), see call/fecc.py
        self.data_channel = False
        self.data: DataChannel | None = None

    async def open(self, local_host: str, peer_host: str) -> MediaEndpoints:
        """Bind the media of both sessions and return what to announce to ``peer_host``.

        ``local_host``: this terminal's address on the signalling connection (the
        route toward the peer). Sockets bind to ``Terminal(media_host=)`` or the
        wildcard of the peer's family, on ports from ``rtp_ports``.
        """
        from ..jitter import AudioJitterBuffer, VideoJitterBuffer
        from ..media import CAPTURE_TIME_EXT_ID, AudioDecoder, AudioReceiver, Recorder, VideoReceiver
        from ..transport import RtpTransport, announced_host, wildcard_for

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
                self.transports[session].hold()  # until this session has a key: the peer may send first
                await self.transports[session].open()
                self._listen_dtls(session)
            if self.data_channel:
                data = DataChannel(t)
                try:
                    data_endpoint = await data.open(bind, peer_host, self.announced)
                    self.data = data
                except TransportError as exc:  # camera control is not worth failing the call for
                    log.warning("no H.224 data channel (far-end camera control) for this call: %s", exc)
                    await data.close()
            if self.record_path is not None:
                self.recorder = Recorder(self.record_path, audio=True)
            self.video_first = _FirstFrame(t._make_sink("video"))
            self.audio_first = _FirstFrame(t._make_sink("audio"))
            self.jitter = VideoJitterBuffer(nack=True, max_delay=_VIDEO_MAX_DELAY)
            vk, ak = self.keys[2].receive, self.keys[1].receive
            probe = CAPTURE_TIME_EXT_ID if t.latency_probe else None  # an RTP header extension no peer negotiated
            self.video_rx = VideoReceiver(self.video_first, assembler=self.jitter, unprotect=vk.unprotect,
                                          recorder=self.recorder, transport=self.transports[2],
                                          capture_time_ext_id=probe)
            self.video_rx.on_keyframe_request = self._keyframe_needed
            self.audio_jitter = AudioJitterBuffer(8000, 0.02, min_delay=0.02, max_delay=0.3)
            self.audio_rx = AudioReceiver(AudioDecoder("pcmu"), self.audio_first, unprotect=ak.unprotect,
                                          recorder=self.recorder, jitter=self.audio_jitter,
                                          transport=self.transports[1], capture_time_ext_id=probe)
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
        if self.data is not None:
            endpoints[3] = data_endpoint
        log.debug("media for %s: %s announced as %s", peer_host, bind, self.announced)
        return _Endpoints(endpoints, self)

    def _listen_dtls(self, session: int) -> None:
        """Take the DTLS datagrams of this session's sockets from now on (a peer's first flight may be early)."""
        from ..transport.dtls import DtlsSrtpTransport

        tr = self.transports[session]
        self.dtls[(session, False)] = DtlsSrtpTransport(tr)
        if not tr.rtcp_mux:
            self.dtls[(session, True)] = DtlsSrtpTransport(tr, rtcp=True)

    async def dtls_handshake(self, session_id: int, certificate: DtlsCertificate, role: DtlsRole,
                             fingerprints: Sequence[tuple[str, str]], suites: Sequence[str],
                             remote: tuple[tuple[str, int], tuple[str, int]] | None = None,
                             timeout: float = 10.0) -> DtlsKeys:
        """DTLS-SRTP (RFC 5764) on the session's RTP socket and, without rtcp-mux, its RTCP socket.

        ``remote``: the peer's signalled RTP and RTCP addresses (where the first flight goes).

        Returns the RTP socket's keys (the signalling puts them in the channels); the RTCP
        socket's own keys protect the session's RTCP from then on. Raises ``DtlsError``.
        """
        from ..transport.dtls import DtlsError

        legs = [leg for (sid, _), leg in sorted(self.dtls.items()) if sid == session_id]
        if not legs or self.closed:
            raise DtlsError(f"no media socket for session {session_id}")
        if remote is not None:
            self.transports[session_id].set_remote(rtp=remote[0], rtcp=remote[1])
        tasks = [asyncio.ensure_future(leg.handshake(certificate, role, fingerprints, suites, timeout))
                 for leg in legs]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)  # one socket failing fails the call
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        failed = next((t.exception() for t in tasks if not t.cancelled() and t.exception() is not None), None)
        if failed is not None or any(t.cancelled() for t in tasks):
            for leg in legs:
                leg.close()
            raise failed or DtlsError(f"session {session_id}: DTLS handshake cancelled")
        keys = [t.result() for t in tasks]
        if len(keys) > 1:  # the RTCP socket's keys
            rtcp = _SessionKeys()
            rtcp.send.set(SrtpKeyMaterial(keys[1].suite, keys[1].local_key, keys[1].local_salt))
            rtcp.receive.set(SrtpKeyMaterial(keys[1].suite, keys[1].remote_key, keys[1].remote_salt))
            self.keys[session_id].rtcp = rtcp
        return keys[0]

    def _keyframe_needed(self) -> None:
        # vcore peers answer the PLI/FIR; a standard H.323 peer may only honour videoFastUpdatePicture
        if self.request_fast_update is not None and not self.peer_is_vcore():
            self.request_fast_update()

    async def start_channel(self, ch: MediaChannel) -> None:
        if ch.format.kind == "data":  # far-end camera control, not media
            if self.data is not None and not self.closed:
                await self.data.start_channel(ch)
            return
        if self.closed or ch in self.channels:
            return
        dtls = self.dtls.get((ch.session_id, False))
        if ch.srtp is None and dtls is not None and dtls.started:  # never plain RTP on a DTLS-SRTP stream
            raise SrtpError(f"{ch.format.kind} channel {ch.number} negotiated DTLS-SRTP but has no key")
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
            if ch.format.kind == "video" and self.video_rx is not None and self.terminal.congestion_control \
                    and self.peer_is_vcore():
                from ..transport import FeedbackRecorder

                self.video_rx.enable_feedback(FeedbackRecorder())
            if transport is not None:
                transport.encrypted = ch.srtp is not None
            if ch.format.kind == "audio" and self.audio_rx is not None:
                codec = _AUDIO_CODEC.get(ch.format.name, "pcmu")
                if self.audio_rx.decoder.info.name != codec:
                    from ..jitter import AudioJitterBuffer
                    from ..media import AudioDecoder

                    decoder = AudioDecoder(codec)
                    if decoder.info.clock_rate != self.audio_jitter.clock_rate:  # Opus: 48 kHz (RFC 7587)
                        self.audio_jitter = AudioJitterBuffer(decoder.info.clock_rate, 0.02, min_delay=0.02,
                                                              max_delay=0.3)
                    self.audio_rx.set_decoder(decoder, self.audio_jitter)  # before its first packet: no key yet
            if transport is not None:
                transport.release()  # the key is known: what the peer sent meanwhile goes through now
            return
        await self._start_sender(ch)

    async def _start_sender(self, ch: MediaChannel) -> None:
        from ..media import CAPTURE_TIME_EXT_ID, AudioEncoder, AudioSender, H264Encoder, VideoSender
        from ..nack import RetransmissionHistory
        from ..srtp import SrtpSession

        t = self.terminal
        transport = self.transports.get(ch.session_id)
        if ch.remote_rtp is None or transport is None:
            log.warning("send channel %d has no RTP address; not sending", ch.number)
            return
        remote = (ch.remote_rtp.host, ch.remote_rtp.port)
        self.keys[ch.session_id].send.set(ch.srtp)  # our RTCP on this session goes under our own key
        transport.release()  # a session we only send on: the peer's reports about our stream
        hooks: dict[str, Any] = {"transport": transport,
                                 "capture_time_ext_id": CAPTURE_TIME_EXT_ID if t.latency_probe else None}
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
            w, h = _fit_level(ch.format.level, w, h, fps)
            bitrate = t.bitrate
            if ch.format.max_bitrate:
                bitrate = min(bitrate, ch.format.max_bitrate * 100)
            start = min(bitrate, t.start_bitrate or _START_BITRATE) if t.congestion_control else bitrate
            encoder = H264Encoder(w, h, fps, start, codec=t.encoder, max_bitrate=bitrate,
                                  idr_interval=_IDR_INTERVAL if t.congestion_control else 5.0,
                                  max_slice_size=_MTU - _SRTP_OVERHEAD - 100 if ch.format.packetization_mode == 0
                                  else None)
            sender: Any = VideoSender(source, encoder, remote, payload_type=ch.format.payload_type,
                                      mode=ch.format.packetization_mode, mtu=_MTU - _SRTP_OVERHEAD, **hooks)
            sender.history = RetransmissionHistory(1024, max_age=1.0, repeat_copies=2)  # docs/jitter.md
            if t.congestion_control:
                from ..media.adaptation import QualityLadder
                from ..transport import CongestionController

                sender.congestion = CongestionController(start_bitrate=start, max_bitrate=bitrate,
                                                         min_bitrate=min(_MIN_BITRATE, bitrate))
                sender.ladder = QualityLadder(w, h, fps)
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
            t._process_audio(source, self.audio_first.inner)  # a microphone and a speaker: echo cancellation
            sender = AudioSender(source, AudioEncoder(codec), remote,
                                 payload_type=ch.format.payload_type, **hooks)
            self.audio_tx = sender
        sender.cname = t.name
        await sender.start()

    def request_keyframe(self, *, by_peer: bool = False) -> None:
        """A keyframe on our video: ``by_peer`` (H.245 videoFastUpdatePicture) is answered as an RTCP PLI
        is (rate-limited, after a deep modem queue drained); else at once (a resumed stream)."""
        if self.video_tx is None:
            return
        if by_peer:
            self.video_tx.answer_keyframe_request()
        else:
            self.video_tx.request_keyframe()

    def renegotiated(self, targets: Sequence[tuple[int, Address | None, Address | None]], *, send: bool) -> None:
        """Hold, resume or a move (RFC 3264 §8): per session, the peer's new RTP/RTCP addresses (None: do not
        send there) and whether RTP goes out at all (``send`` False: on hold; RTCP goes on). A video stream
        that resumes starts with a keyframe (the peer's decoder lost its reference)."""
        for session, rtp, rtcp in targets:
            transport = self.transports.get(session)
            if transport is None:
                continue
            if rtp is not None:
                transport.relocate((rtp.host, rtp.port), (rtcp.host, rtcp.port) if rtcp is not None else None)
            sending = send and rtp is not None
            if sending and not transport.sending and session == 2:
                self.request_keyframe()
            transport.sending = sending

    def set_bitrate(self, bitrate: int) -> int | None:
        """Our video's bitrate: the ceiling under congestion control, else the encoder's rate."""
        tx = self.video_tx
        if tx is None:
            return None
        if tx.congestion is not None:
            tx.congestion.max_bitrate = max(tx.congestion.min_bitrate, bitrate)
            tx.encoder_ceiling = tx.congestion.max_bitrate
            tx.set_limit(tx.congestion.limit)  # re-clamps and hands the target on
        else:
            tx.encoder.bitrate = bitrate
        return bitrate

    def limit_bitrate(self, bitrate: int | None) -> None:
        """The peer's limit on our video (H.245 flowControlCommand); None lifts it."""
        if self.video_tx is not None:
            self.video_tx.set_limit(bitrate)

    def failure(self) -> str | None:
        """What stopped working in the media (a thread or a task that failed), or None."""
        for what, part in (("video send", self.video_tx), ("audio send", self.audio_tx),
                           ("video receive", self.video_rx), ("audio receive", self.audio_rx)):
            error = getattr(part, "error", None) if part is not None else None
            if error is not None:
                return f"{what}: {error}"
        return None

    def received_packets(self) -> int:
        return sum(rx.packets + rx.rtcp_packets for rx in (self.video_rx, self.audio_rx) if rx is not None)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.data is not None:
            try:
                await self.data.close()  # stops a camera move in progress while the data channel still runs
            except Exception:  # never keep the media running over camera control
                log.exception("closing the data channel failed")
        for tx in (self.video_tx, self.audio_tx):
            if tx is not None:
                await tx.close()
        await asyncio.sleep(0.02)  # the BYEs and last packets in flight
        for rx in (self.video_rx, self.audio_rx):
            if rx is not None:
                await rx.close()
        for leg in self.dtls.values():
            leg.close()
        for transport in self.transports.values():
            await transport.close()
        if self.recorder is not None and self.video_rx is None and self.audio_rx is None:
            self.recorder.close()
        for keys in self.keys.values():  # the call's SRTP contexts do not outlive it
            for slot in (keys.send, keys.receive) + ((keys.rtcp.send, keys.rtcp.receive) if keys.rtcp else ()):
                slot.session = None


def _fit_level(level: int, w: int, h: int, fps: float) -> tuple[int, int]:
    """The source's size, or the largest standard size the peer's H.264 level decodes (MaxFS, MaxMBPS) if smaller."""
    from ..h323.messages import H264_LEVELS
    from ..media.codecs import max_resolution

    name = next((n for n, v in H264_LEVELS.items() if v == level), None)
    if name is None:
        return w, h
    lw, lh = max_resolution(10 if name == "1b" else round(float(name) * 10), fps)  # 1b: level 1's limits
    mbs = ((w + 15) // 16) * ((h + 15) // 16)
    return (w, h) if mbs <= ((lw + 15) // 16) * ((lh + 15) // 16) else (lw, lh)


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
    from ..jitter import MAX_SYNC_DELAY

    skew = _lip_sync(audio, video)
    if skew is None:
        return
    current = audio_jitter.sync_delay
    step = min(MAX_SYNC_DELAY, max(0.0, current + skew)) - current  # to a hold-back within [0, MAX]
    if abs(step) >= _LIP_SYNC_DEADBAND:
        held = current + max(-_LIP_SYNC_STEP, min(_LIP_SYNC_STEP, step))
        audio_jitter.sync_delay = min(MAX_SYNC_DELAY, max(0.0, held))  # float rounding stays in range
