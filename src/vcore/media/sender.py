"""The RTP senders: source -> encoder -> packetizer -> [SRTP] -> pacer -> transport.

:class:`VideoSender` (capture and encode threads, a pacer thread when congestion
control is on) and :class:`AudioSender` (one thread) on an
:class:`~vcore.transport.RtpTransport`; see :mod:`vcore.media.pipeline` for the
thread model. Thread-safety: ``start``/``close`` belong to the event loop's
thread; counters may be read from anywhere; ``request_keyframe`` may be called
from any thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import threading
import time
from collections import deque
from typing import Any, Self

from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from ..supervisor import cancel_and_wait
from ..errors import VcoreError
from ..nack import RetransmissionHistory
from ..payload.h264 import H264Packetizer
from ..rtp.packet import RtpPacket
from ..rtp.rtcp import (
    RtcpBye,
    RtcpCcfb,
    RtcpFir,
    RtcpNack,
    RtcpPli,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpSenderReport,
    RtcpTmmbn,
    RtcpTmmbr,
)
from ..rtp.seq import initial_sequence_number, ts_diff
from ..rtp.stats import SenderStats, rtt_from_report
from ..transport import RtpTransport
from ..transport.congestion import CongestionController
from ..transport.probe import PROBE_DURATION, PROBE_MIN_PACKETS
from ..transport.feedback import SendLog
from ..transport.pacer import PacedSender, Pacer
from ..transport.rtp import Protect
from .clock import MediaClock
from .codecs import AudioEncoder, H264Encoder
from .errors import MediaError, PipelineClosed, SourceEnded
from .adaptation import FrameDropper, QualityLadder, RateAdjuster
from .pipeline import CAPTURE_TIME_EXT_ID, _join, _Worker, encode_capture_time, rtcp_delay
from .sinks import FrameQueue
from .sources import Source, capture_time

_log = logging.getLogger(__name__)

__all__ = ["VideoSender", "AudioSender"]

PEAK_FACTOR = 2.0  # under congestion control the encoder's VBV peak is this many times the target (or
# 1.2 × the highest target of the last PEAK_MEMORY s): the rate moves in place below the peak, while
# raising the peak reopens the encoder, an IDR, which on a thin line is a burst of queue
PEAK_MEMORY = 30.0  # s
KEYFRAME_QUEUE_LIMIT = 0.1  # s of modem queue above which a keyframe request waits for the queue to drain...
KEYFRAME_DEFER_MAX = 1.0  # s ...at most this long (any hold of the pictures, see below)
HOLD_QUEUE = 0.3  # s of modem queue (as it stands now) at a decrease above which no picture is encoded until it
# drained: most ADSL modems buffer 100-300 ms, so a queue this deep overflows and what is sent into it is lost
DRAINED = 0.03  # s of estimated queue under which a hold ends...
HOLD_MIN = 0.2  # s ...once it lasted this long
HOLD_TICK = 0.05  # s between two looks at the estimate while pictures are held
VBV_SECONDS = 0.3  # the VBV buffer is this many seconds of the target: a keyframe is at most ~0.3 s of the line
DROPPER_WINDOW = 0.2  # s of the target the encoder may run ahead before frames are skipped
REFRESH_INTERVAL = 10.0  # s: the least time between two reopens to raise the peak
MAX_RTT = 10.0  # s: a longer round trip read from a report is not believed
PROBE_PADDING = 255  # bytes of padding per probe packet (the most RFC 3550's one-byte count allows)
LIMIT_FLOOR = 64_000  # bit/s: the lowest a peer's TMMBR may push the video without congestion control


class _RtpSender:
    """What every sender shares: the transport, RTCP (SR, BYE, feedback), thread bookkeeping, close.

    With ``transport`` (an :class:`~vcore.transport.RtpTransport` the call shares
    between a session's sender and receiver) RTP goes out on it and its own
    SRTCP hooks apply; without one the sender opens a private transport on
    ``local`` that sends RTP and RTCP to ``remote`` with ``protect_rtcp`` /
    ``unprotect_rtcp``.
    """

    def __init__(
        self,
        source: Source,
        remote: tuple[str, int],
        clock: MediaClock,
        *,
        local: tuple[str, int],
        protect: Protect | None,
        protect_rtcp: Protect | None,
        unprotect_rtcp: Protect | None,
        rtcp_interval: float,
        transport: RtpTransport | None = None,
    ) -> None:
        self.source = source
        self._remote = remote
        self.clock = clock
        self.error: MediaError | None = None
        self.stats = SenderStats()
        self._local = local
        self._protect = protect
        self._protect_rtcp = protect_rtcp
        self._unprotect_rtcp = unprotect_rtcp
        self._rtcp_interval = rtcp_interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self.transport = transport
        self._owns_transport = transport is None
        self._threads: list[threading.Thread] = []
        self._rtcp_task: asyncio.Task[None] | None = None
        self._finished: asyncio.Event | None = None
        self._closed = False
        self.cname: str | None = None  # set before start() to send SDES CNAME with each SR (RFC 3550 §6.5.1)
        self.rtt: float | None = None  # round-trip time from the peer's reception reports (RFC 3550 §6.4.1)
        # the peer's last reported fraction lost (0..1); None until a reception report about our stream came
        # (so "no report" is not shown as "0 % loss")
        self.fraction_lost: float | None = None
        self.history: RetransmissionHistory | None = None  # set before start() to answer generic NACKs
        self.retransmitted = 0
        self._history_lock = threading.Lock()
        self._wire: dict[int, bytes] = {}

    @property
    def ssrc(self) -> int:
        raise NotImplementedError

    @property
    def packets_sent(self) -> int:
        return self.stats.packet_count

    @property
    def bytes_sent(self) -> int:
        return self.stats.octet_count

    @property
    def local_address(self) -> tuple[str, int]:
        """The local (host, port) RTP leaves from (and the peer's RTP is received on, when shared)."""
        if self.transport is None or self._loop is None:
            raise PipelineClosed("sender is not started")
        return self.transport.local_rtp

    @property
    def remote(self) -> tuple[str, int]:
        """Where RTP goes now (the transport's latched or signalled peer address)."""
        if self.transport is not None and self.transport.remote_rtp is not None:
            return self.transport.remote_rtp
        return self._remote

    @property
    def finished(self) -> asyncio.Event:
        """Set when the source ended or failed (see ``error``), or on close."""
        if self._finished is None:
            raise PipelineClosed("sender is not started")
        return self._finished

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _make_threads(self) -> list[threading.Thread]:
        raise NotImplementedError

    async def start(self) -> None:
        """Open the transport (unless shared) and start the threads."""
        self._loop = asyncio.get_running_loop()
        self._finished = asyncio.Event()
        if self.transport is None:
            self.transport = RtpTransport(self._local[0], port=self._local[1], rtcp_mux=True,
                                          remote_rtp=self._remote, latch=False, protect_rtcp=self._protect_rtcp,
                                          unprotect_rtcp=self._unprotect_rtcp, name=type(self).__name__)
        if self.transport.remote_rtp is None:
            self.transport.set_remote(rtp=self._remote)
        await self.transport.open()
        self.transport.add_rtcp_listener(self._on_rtcp_packets)
        self._threads = self._make_threads()
        for t in self._threads:
            t.start()
        if self._rtcp_interval > 0:
            self._rtcp_task = asyncio.create_task(self._rtcp_loop())

    def _stop_threads(self) -> None:
        self.source.close()

    def _thread_exit(self, error: BaseException | None) -> None:
        if error is not None:
            if isinstance(error, MediaError):
                self.error = error
            else:
                self.error = MediaError(f"sender thread failed: {error!r}")
                self.error.__cause__ = error
            _log.error("%s: %s", type(self).__name__, self.error)
            self._stop_threads()
        loop = self._loop
        if loop is not None and self._finished is not None:
            try:
                loop.call_soon_threadsafe(self._check_finished)
            except RuntimeError:  # the loop is closed
                pass

    def _check_finished(self) -> None:
        if self._finished is None or self._loop is None:
            return
        if all(not t.is_alive() for t in self._threads):
            self._finished.set()
        else:
            self._loop.call_later(0.005, self._check_finished)

    def _send(self, datagrams: list[bytes]) -> None:
        if self.transport is not None:
            self.transport.send_rtp(datagrams)

    def _queue_send(self, datagrams: list[bytes]) -> bool:
        """From a worker thread: send datagrams (False once the sender is closing)."""
        transport = self.transport
        if transport is None:
            return False
        return transport.send_rtp_threadsafe(datagrams)

    def _send_rtcp(self, packets: list[Any]) -> None:
        if self.transport is not None:
            self.transport.send_rtcp(packets)

    def sender_report(self, now: float | None = None) -> RtcpSenderReport:
        """The SR describing this stream at ``now`` (monotonic; default: now), from the stream's clock."""
        ntp, rtp = self.clock.sender_report_times(time.monotonic() if now is None else now)
        return RtcpSenderReport(self.ssrc, ntp, rtp, self.stats.packet_count, self.stats.octet_count)

    def _report_packets(self) -> list[Any]:
        packets: list[Any] = [self.sender_report()]
        if self.cname:
            packets.append(RtcpSdes.cname(self.ssrc, self.cname))
        return packets

    async def _rtcp_loop(self) -> None:
        try:
            while True:
                await asyncio.sleep(rtcp_delay(self._rtcp_interval))
                if self.stats.packet_count:
                    self._send_rtcp(self._report_packets())
        except Exception as exc:  # never a silent death: the owner sees ``error`` (a call ends on it)
            _log.exception("%s: RTCP task failed", type(self).__name__)
            self.error = MediaError(f"RTCP sender reports stopped: {exc!r}")

    def _remember(self, packet: RtpPacket, wire: bytes) -> None:
        """From the sending thread: keep a sent packet (and its protected bytes) for NACKs."""
        history = self.history
        if history is None:
            return
        with self._history_lock:
            history.record(packet, time.monotonic())
            self._wire[packet.sequence_number % history.capacity] = wire

    def _on_nack(self, nack: RtcpNack) -> None:
        # Lost packets are resent as they went out (same SRTP index: the receiver never saw it, so
        # its replay window accepts it); RFC 4585 §6.2.1, without RTX (H.245 negotiates no RTX type).
        history = self.history
        if history is None or nack.media_ssrc != self.ssrc or self._nack_paused():
            return
        with self._history_lock:
            resend = history.resend(list(nack.lost), time.monotonic())
            wires = [self._wire.get(p.sequence_number % history.capacity) for p in resend]
        self._resend([(w, p.sequence_number) for w, p in zip(wires, resend) if w is not None])

    def _nack_paused(self) -> bool:
        return False

    def _resend(self, packets: list[tuple[bytes, int]]) -> None:
        self.retransmitted += len(packets)
        self._send([w for w, _ in packets])

    def _on_rtcp_packets(self, packets: list[Any], addr: Any) -> None:
        for p in packets:
            if isinstance(p, (RtcpReceiverReport, RtcpSenderReport)):
                for block in p.reports:
                    if block.ssrc == self.ssrc:
                        fraction = block.fraction_lost / 256.0
                        self.fraction_lost = fraction
                        rtt = rtt_from_report(block, self.clock.ntp_timestamp(time.monotonic()))
                        if rtt is not None and rtt > MAX_RTT:
                            rtt = None  # a forged or broken LSR/DLSR: no path takes that long
                        if rtt is not None:
                            self.rtt = rtt
                        self._on_report_block(fraction, rtt)
            elif isinstance(p, RtcpNack):
                self._on_nack(p)
            self._on_feedback(p)

    def _on_report_block(self, fraction_lost: float, rtt: float | None) -> None:
        pass

    def _on_feedback(self, packet: Any) -> None:
        pass

    async def close(self) -> None:
        """Stop the threads, send SR + BYE, close the socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop_threads()
        if self._rtcp_task is not None:
            await cancel_and_wait(self._rtcp_task)
        await _join(self._threads)
        if self.transport is not None:
            if self.stats.packet_count:
                try:
                    self._send_rtcp([*self._report_packets(), RtcpBye([self.ssrc])])
                except VcoreError as exc:  # the goodbye failed (see ``error``): the cleanup goes on
                    _log.warning("%s: no final SR/BYE: %s", type(self).__name__, exc)
            self.transport.remove_rtcp_listener(self._on_rtcp_packets)
            if self._owns_transport:
                await self.transport.close()
        self._protect = None  # the threads are gone: the stream's SRTP context (its key) goes with them
        if self._finished is not None:
            self._finished.set()


class VideoSender(_RtpSender):
    """Source -> H.264 encoder -> RTP packetizer -> [protect] -> UDP to ``remote``.

    ``await start()`` (or ``async with``) opens the socket and starts the two
    threads (capture, encode); ``await close()`` stops them (idempotent).
    ``finished`` is set when the source ended or failed (``error`` then holds
    the :class:`MediaError`, None for a normal end). Counters:
    ``frames_captured``, ``frames_encoded``, ``packets_sent``, ``bytes_sent``,
    ``keyframe_requests``, ``queue.dropped``. ``request_keyframe()`` and the
    encoder's ``bitrate``/``fps`` may be changed at any time, from any thread.
    PLI and FIR from the receiver make the next picture an IDR.

    ``protect`` / ``protect_rtcp`` transform outgoing RTP / RTCP packets (SRTP),
    ``unprotect_rtcp`` incoming RTCP. ``mtu`` bounds the packets before
    protection: leave room for the SRTP tag.

    ``capture_thread``: read the source in its own thread, joined to the encode
    thread by a one-frame queue that drops the older frame (the default for
    live devices, which produce frames at their own pace), or read and encode in
    one thread (the default for sources vcore paces itself: they skip stale
    frames, and one thread spares a hand-over per frame, about 0.4 ms CPU at 720p).

    Congestion control (``congestion``, a
    :class:`~vcore.transport.CongestionController`, set before ``start``): the
    packets of each frame go through a pacer thread
    (:class:`~vcore.transport.PacedSender`) at a multiple of the controller's
    target, retransmissions first and capped; RFC 8888 reports from the
    receiver (or, from other peers, its receiver reports), TMMBR (RFC 5104) and
    :meth:`set_limit` move the target, which sets the encoder's bitrate and,
    through ``ladder`` (a :class:`~vcore.media.adaptation.QualityLadder`), its
    picture size and frame rate; a :class:`~vcore.media.adaptation.FrameDropper`
    skips frames while the encoder runs ahead of the target. Keyframe requests (PLI/FIR, or
    :meth:`answer_keyframe_request` for H.245's) are answered at most every ``keyframe_min_interval``
    seconds. While a deep modem queue drains (a keyframe request with more than 100 ms of it, or a
    capacity drop with more than 300 ms), no picture is encoded (``frames_held``) and a keyframe's
    retransmissions wait (``nacks_ignored``); see docs/congestion.md.
    """

    def __init__(
        self,
        source: Source,
        encoder: H264Encoder,
        remote: tuple[str, int],
        *,
        local: tuple[str, int] = ("127.0.0.1", 0),
        payload_type: int = 96,
        ssrc: int | None = None,
        mtu: int = 1200,
        mode: int = 1,
        protect: Protect | None = None,
        protect_rtcp: Protect | None = None,
        unprotect_rtcp: Protect | None = None,
        capture_time_ext_id: int | None = CAPTURE_TIME_EXT_ID,
        queue_size: int = 1,
        rtcp_interval: float = 1.0,
        capture_thread: bool | None = None,
        transport: RtpTransport | None = None,
    ) -> None:
        super().__init__(
            source,
            remote,
            encoder.clock,
            local=local,
            protect=protect,
            protect_rtcp=protect_rtcp,
            unprotect_rtcp=unprotect_rtcp,
            rtcp_interval=rtcp_interval,
            transport=transport,
        )
        self.encoder = encoder
        self.packetizer = H264Packetizer(payload_type, ssrc, mtu, mode)
        self.queue: FrameQueue[VideoFrame] = FrameQueue(queue_size)
        self.frames_captured = 0
        self.frames_encoded = 0
        self.keyframe_requests = 0
        self._ext_id = capture_time_ext_id
        self._capture_thread = source.live if capture_thread is None else capture_thread
        self.congestion: CongestionController | None = None
        self.ladder: QualityLadder | None = None
        self.dropper: FrameDropper | None = None
        self.adjuster: RateAdjuster | None = None
        self.keyframe_min_interval = 0.5
        self.keyframe_requests_ignored = 0
        self.tmmbr_limit: int | None = None
        self.pacer: PacedSender | None = None
        self.send_log: SendLog | None = None
        # probe clusters (CongestionController.probe_rate): padding-only packets on an SSRC of their own
        self.probe_ssrc = secrets.randbits(32)
        while self.probe_ssrc == self.packetizer.ssrc:
            self.probe_ssrc = secrets.randbits(32)
        self.probe_log: SendLog | None = None
        self._probe_seq = initial_sequence_number()
        self._probe_request: tuple[int, int] | None = None  # (rate, padding packets): the encode thread sends it
        self._probe_pause_until = 0.0  # no picture is encoded before (a probe's queue drains)
        self.overhead_share = 0.1  # of the target left for packet headers and retransmissions
        self._last_keyframe_answer = -1e9
        self._last_refresh = -1e9
        self._video_target = 0
        self.encoder_ceiling = encoder.max_bitrate  # the configured maximum video bitrate
        self._held_since: float | None = None  # pictures are held (not encoded) while a deep queue drains
        self._hold_timer: asyncio.TimerHandle | None = None  # ends the hold when the queue should be gone
        self._keyframe_owed = False  # a keyframe request waits for the hold's end
        self._hold_min = HOLD_MIN  # s the current hold lasts at least
        self.frames_held = 0  # pictures not encoded while a deep queue drained
        self.nacks_ignored = 0  # NACKs not answered while a keyframe waited for the queue
        self._recent_targets: deque[tuple[float, int]] = deque()  # (second, highest video target in it)

    @property
    def ssrc(self) -> int:
        return self.packetizer.ssrc

    def _make_threads(self) -> list[threading.Thread]:
        threads: list[threading.Thread] = []
        if self.congestion is not None and self.transport is not None:
            self.send_log = SendLog()
            self.probe_log = SendLog()
            if self.dropper is None:
                self.dropper = FrameDropper(self.congestion.target, window=DROPPER_WINDOW)
            if self.adjuster is None:
                self.adjuster = RateAdjuster()
            self.pacer = PacedSender(Pacer(self.congestion.target), self.transport.send_rtp_threadsafe,
                                     log=self.send_log, on_exit=self._thread_exit, probe_log=self.probe_log)
            threads.append(self.pacer.thread)
            self._apply_target(time.monotonic(), initial=True)
        if not self._capture_thread:
            return [*threads, _Worker("vcore-encode", self._read_encode_loop, self._thread_exit)]
        return [
            *threads,
            _Worker("vcore-capture", self._capture_loop, self._thread_exit),
            _Worker("vcore-encode", self._encode_loop, self._thread_exit),
        ]

    def _stop_threads(self) -> None:
        self.source.close()
        self.queue.close()
        if self.pacer is not None:
            self.pacer.close()

    def _capture_loop(self) -> None:
        try:
            while True:
                try:
                    frame = self.source.read()
                except SourceEnded:
                    return
                self.frames_captured += 1
                try:
                    self.queue.write(frame)  # type: ignore[arg-type]
                except PipelineClosed:
                    return
        finally:
            self.queue.close()

    def _encode_loop(self) -> None:
        try:
            while True:
                try:
                    frame = self.queue.get()
                except PipelineClosed:
                    return
                if not self._encode_and_send(frame):
                    return
        finally:
            if self.pacer is not None:
                self.pacer.finish()  # what is queued still goes

    def _read_encode_loop(self) -> None:
        # One thread for a source that paces itself and skips stale frames (TestPattern,
        # FileSource): the picture stays in this core's cache from read to encode.
        try:
            while True:
                try:
                    frame = self.source.read()
                except SourceEnded:
                    return
                self.frames_captured += 1
                if not self._encode_and_send(frame):  # type: ignore[arg-type]
                    return
        finally:
            if self.pacer is not None:
                self.pacer.finish()

    def _encode_and_send(self, frame: VideoFrame) -> bool:
        t = capture_time(frame)
        if self._probe_request is not None:
            request, self._probe_request = self._probe_request, None
            self._send_probe(*request)
        if self._held_since is not None or time.monotonic() < self._probe_pause_until:
            self.frames_held += 1  # a deep modem queue drains first
            return True
        dropper = self.dropper
        if dropper is not None and not self.encoder.keyframe_pending and dropper.drop(time.monotonic()):
            return True  # the encoder is ahead of the target: skip a frame rather than fill the line
        units = self.encoder.encode(frame, t)
        if not units:
            return True
        if dropper is not None or self.adjuster is not None:
            size, now = sum(len(u.data) for u in units), time.monotonic()
            if dropper is not None:
                dropper.on_frame(size, now)
            if self.adjuster is not None:
                self.adjuster.on_frame(size, now)
        protect, ext_id, stats = self._protect, self._ext_id, self.stats
        datagrams = []
        paced: list[tuple[bytes, int]] = []
        for unit in units:
            self.frames_encoded += 1
            packets = self.packetizer.packetize(unit.data, unit.timestamp)
            if ext_id is not None and packets:
                packets[0].extensions = [(ext_id, encode_capture_time(t))]
            for p in packets:
                stats.on_send(len(p.payload))
                data = p.serialize()
                wire = protect(data) if protect is not None else data
                if self.history is not None:
                    self._remember(p, wire)
                datagrams.append(wire)
                paced.append((wire, p.sequence_number))
        if self.pacer is not None:
            return self.pacer.push(paced)
        return self._queue_send(datagrams)

    def _send_probe(self, rate: int, count: int) -> None:
        """From the encode thread (SRTP's owner): a probe cluster of ``count`` padding-only packets at ``rate``."""
        if self.pacer is None:
            return
        protect, pt = self._protect, self.packetizer.payload_type
        padding = []
        for _ in range(count):
            seq = self._probe_seq
            self._probe_seq = (seq + 1) & 0xFFFF
            data = RtpPacket(pt, seq, 0, self.probe_ssrc, b"", padding_size=PROBE_PADDING).serialize()
            padding.append((protect(data) if protect is not None else data, seq))
        self.pacer.push_probe(padding, rate)

    def _on_feedback(self, packet: Any) -> None:
        if (isinstance(packet, RtcpPli) and packet.media_ssrc == self.ssrc) or \
                (isinstance(packet, RtcpFir) and any(ssrc == self.ssrc for ssrc, _ in packet.entries)):
            self.answer_keyframe_request()
        elif isinstance(packet, RtcpCcfb) and self.congestion is not None and self.send_log is not None:
            now = time.monotonic()
            results = self.send_log.results(packet, self.ssrc, now)
            cc = self.congestion
            probes = self.probe_log.results(packet, self.probe_ssrc, now) if self.probe_log is not None else []
            if results:
                decreases = cc.decreases
                send_log = self.send_log
                cc.on_feedback(results, now, lambda t: send_log.bits_sent_after(t, now))
                if cc.decreases > decreases and max(cc.queue_delay or 0.0, cc.queue_now or 0.0) > cc.queue_high \
                        and self._held_since is None:
                    # a deep queue (a capacity drop): what is encoded now waits behind it or is lost at
                    # its tail; hold the pictures while it drains (the encoder skips them: no picture
                    # depends on one that was not sent), then go on at the new rate
                    queue = self._queue_now(now)
                    if queue is not None and queue > HOLD_QUEUE:
                        self._hold(queue)
            if probes:  # after the media results of the same report: a cluster's verdict counts both
                before = cc.target
                cc.on_probe_feedback(probes, now)
                if cc.target != before:
                    _log.debug("probe cluster went through: target %d -> %d bit/s", before, cc.target)
                debt = cc.take_probe_debt()
                if debt > 0:  # the line did not carry it: let the queue it left drain before the next picture
                    self._probe_pause_until = now + debt
            if results or probes:
                self._apply_target(now)
            self._ask_probe(now)
        elif isinstance(packet, RtcpTmmbr) and not isinstance(packet, RtcpTmmbn):
            for ssrc, bitrate, overhead in packet.entries:
                if ssrc == self.ssrc:
                    self._on_tmmbr(packet.sender_ssrc, bitrate, overhead)

    def _ask_probe(self, now: float) -> None:
        """Hand the encode thread a probe cluster when the controller wants one (event loop)."""
        cc = self.congestion
        if cc is None or self._held_since is not None:
            return
        rate = cc.probe_rate(now)
        if rate is not None:
            self.probe(rate)

    def probe(self, rate: int) -> bool:
        """Send a probe cluster at ``rate`` bit/s now; the controller judges it from the receiver's reports.

        The controller asks for clusters itself (:meth:`CongestionController.probe_rate`); this
        is the same step on demand (a line test). False without congestion control and a pacer,
        or while a cluster is on its way (event loop).
        """
        if rate <= 0:
            raise ValueError("a probe rate must be positive")
        cc = self.congestion
        if cc is None or self.pacer is None or self._probe_request is not None or self.pacer.pacer.probing:
            return False
        wire = 12 + PROBE_PADDING + 16 + 28  # header, padding, SRTP tag, IP + UDP
        # the media goes in the cluster too: the padding fills what it leaves of PROBE_DURATION at the rate
        fill = max(rate - (cc.received_rate or 0.0), rate / 2)
        count = max(PROBE_MIN_PACKETS, math.ceil(fill * PROBE_DURATION / 8 / wire))
        cc.probe_sent(rate, count, time.monotonic())
        self._probe_request = (rate, count)  # the encode thread owns SRTP: it makes the padding
        return True

    def _on_tmmbr(self, requester: int, bitrate: int, overhead: int) -> None:
        # RFC 5104 §3.5.4: obey a limit (0 pauses, which vcore reads as "as low as allowed"), answer with TMMBN
        self.tmmbr_limit = max(1, bitrate)
        _log.info("peer limits our video to %d bit/s (TMMBR)", bitrate)
        self.set_limit(self.tmmbr_limit)
        self._send_rtcp([*self._report_packets(), RtcpTmmbn(self.ssrc, [(requester, bitrate, overhead)])])

    def _on_report_block(self, fraction_lost: float, rtt: float | None) -> None:
        if self.congestion is not None:
            now = time.monotonic()
            self.congestion.on_receiver_report(fraction_lost, rtt, now)
            self._apply_target(now)

    def set_limit(self, bitrate: int | None) -> None:
        """Cap our video bitrate (a peer's TMMBR or H.245 flow control); None lifts the cap (event loop)."""
        if self.congestion is not None:
            self.congestion.set_limit(bitrate)
            self._apply_target(time.monotonic())
        elif bitrate is not None:  # never below the floor: a hostile "0" must not freeze the picture
            self.encoder.bitrate = max(LIMIT_FLOOR, min(bitrate, self.encoder.max_bitrate))

    def _apply_target(self, now: float, *, initial: bool = False) -> None:
        """Hand the controller's target to the pacer, the encoder and the ladder."""
        cc = self.congestion
        if cc is None:
            return
        if self._held_since is not None and self._hold_over(now):
            self._end_hold()
            return
        target = cc.target
        if self.pacer is not None:
            self.pacer.set_target(target)
        video = max(50_000, int(target * (1 - self.overhead_share)))
        if self.dropper is not None:
            self.dropper.set_target(video)
        self._video_target = video
        self._note_target(video, now)
        enc = self.encoder
        ladder = self.ladder
        if ladder is not None:
            rung = ladder.start_at(video) if initial else ladder.update(video, now, growing=cc.grew)
            if rung is not None:
                w, h = ladder.size(rung)
                enc.fps = rung.fps  # before the reopen: x264's rate control shares the rate among these frames
                if (w, h) != (enc.width, enc.height):
                    enc.max_bitrate = self._peak_for(video)  # the resize reopens the encoder with this peak
                    enc.resize(w, h)
                elif not initial:
                    enc.reopen(video, self._peak_for(video))
                self._last_refresh = now
                if self.adjuster is not None:
                    self.adjuster.reset()
        if initial:
            enc.reopen(video, self._peak_for(video))
            self._last_refresh = now
        elif video > 0.9 * enc.peak and now - self._last_refresh > REFRESH_INTERVAL:
            self._refresh_encoder(now)  # the line takes more than the encoder's peak allows: a new peak
        ask = self.adjuster.ask(video, now) if self.adjuster is not None else video
        enc.bitrate = max(1, min(ask, enc.peak))

    def _nack_paused(self) -> bool:
        # a keyframe waiting for a deep queue replaces every picture before it: the receiver asked
        # for it because it gave those up, and a retransmission would only slow the drain
        if self._held_since is not None and self._keyframe_owed:
            self.nacks_ignored += 1
            return True
        return False

    def _queue_now(self, now: float) -> float | None:
        """The modem queue's delay as it stands now (s), estimated from the feedback and what left since."""
        cc = self.congestion
        if cc is None:
            return None
        queue = cc.queue_delay
        if self.send_log is not None and queue is not None:
            # what the queue holds now, not a queue ago when the newest report's packet left
            estimate = cc.drain_time(self.send_log.bits_sent_after(cc.newest_reported, now), now)
            if estimate is not None:
                queue = estimate
        return queue

    def _hold(self, queue: float) -> None:
        """Encode no picture until the modem queue (``queue`` s now) drained.

        The estimate is checked every HOLD_TICK (feedback may not come: what is in the queue may
        all be lost at its tail) and on each report; the hold lasts HOLD_MIN at least (the
        estimate is low while a capacity drop is young) and KEYFRAME_DEFER_MAX at most.
        """
        if self._held_since is not None:
            return
        self._held_since = time.monotonic()
        # at least as long as the newest reported packet queued: the queue was that deep when it
        # left, and the sender filled it since (the estimate undercounts a young drop's queue)
        newest = self.congestion.newest_queue if self.congestion is not None else None
        self._hold_min = min(KEYFRAME_DEFER_MAX, max(HOLD_MIN, newest or 0.0))
        self._hold_timer = asyncio.get_running_loop().call_later(HOLD_TICK, self._hold_tick)

    def _hold_tick(self) -> None:
        self._hold_timer = None
        if self._held_since is None:
            return
        now = time.monotonic()
        if self._hold_over(now):
            self._end_hold()
        else:
            self._hold_timer = asyncio.get_running_loop().call_later(HOLD_TICK, self._hold_tick)

    def _hold_over(self, now: float) -> bool:
        assert self._held_since is not None
        held = now - self._held_since
        if held >= KEYFRAME_DEFER_MAX:
            return True
        queue = self._queue_now(now)
        return held >= self._hold_min and (queue is None or queue <= DRAINED)

    def _end_hold(self) -> None:
        """The queue should be gone: encode again, starting with the keyframe asked for meanwhile (event loop)."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        if self._held_since is None:
            return
        self._held_since = None
        now = time.monotonic()
        self._apply_target(now)  # the rate first: the keyframe's VBV is sized from it
        if self._keyframe_owed:
            self._keyframe_owed = False
            self._refresh_encoder(now)

    def _peak_for(self, video: int) -> int:
        """The VBV peak to reopen with for ``video`` bit/s; also sizes the VBV buffer from ``video``."""
        high = max((v for _, v in self._recent_targets), default=video)
        self.encoder.vbv_bits = max(1000, int(VBV_SECONDS * video))  # the keyframe's bound: the line now
        return max(video, min(max(int(PEAK_FACTOR * video), int(1.2 * high)), self.encoder_ceiling))

    def _note_target(self, video: int, now: float) -> None:
        targets = self._recent_targets
        if not targets or now - targets[-1][0] >= 1.0:
            targets.append((now, video))
        elif video > targets[-1][1]:
            targets[-1] = (targets[-1][0], video)
        while targets and now - targets[0][0] > PEAK_MEMORY:
            targets.popleft()

    def _refresh_encoder(self, now: float) -> None:
        """Reopen the encoder at the current target (an IDR whose size the new VBV bounds)."""
        video = self._video_target or self.encoder.bitrate
        self.encoder.reopen(min(video, self.encoder_ceiling), self._peak_for(min(video, self.encoder_ceiling)))
        self._last_refresh = now
        if self.adjuster is not None:
            self.adjuster.reset()

    def _resend(self, packets: list[tuple[bytes, int]]) -> None:
        if self.pacer is None:
            super()._resend(packets)
            return
        for packet in packets:
            if self.pacer.push_retransmission(packet):
                self.retransmitted += 1

    def request_keyframe(self) -> None:
        """Make the next picture an IDR (thread-safe; no rate limit: for our own needs, such as a resume)."""
        self.encoder.request_keyframe()

    def answer_keyframe_request(self) -> None:
        """The receiver asked for a keyframe (RTCP PLI/FIR, or H.245 videoFastUpdatePicture) (event loop).

        At most one per ``keyframe_min_interval`` (and RTT); under congestion control it waits
        for a deep modem queue to drain and comes with a VBV sized for the line now.
        """
        now = time.monotonic()
        # one keyframe per interval: on a lossy line every receiver-side gap asks for one, and
        # keyframes are the largest pictures (an IDR storm is what makes a thin line collapse)
        if now - self._last_keyframe_answer < max(self.keyframe_min_interval, min(self.rtt or 0.0, 2.0)):
            self.keyframe_requests_ignored += 1
            return
        self._last_keyframe_answer = now
        self.keyframe_requests += 1
        if self.congestion is None:
            self.encoder.request_keyframe()
            return
        if self._held_since is not None:
            self._keyframe_owed = True  # the hold ends with it
            return
        queue = self._queue_now(now)
        if queue is not None and queue > KEYFRAME_QUEUE_LIMIT:
            # a keyframe sent into a deep modem queue (a capacity drop) arrives late or is
            # dropped at the queue's tail: send it once the queue has drained. Until then no
            # picture is encoded (the receiver cannot decode one before the keyframe, and each
            # would slow the drain), so the queue is gone in about its own delay
            self._keyframe_owed = True
            self._hold(queue)
            return
        self._refresh_encoder(now)  # the keyframe comes with a VBV sized for the line now

    async def close(self) -> None:
        """Stop the threads, send SR + BYE, close the socket (idempotent)."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        await super().close()
        self.encoder.close()


class AudioSender(_RtpSender):
    """Audio source -> speech encoder (20 ms payloads) -> RTP -> [protect] -> UDP to ``remote``.

    One thread reads and encodes (speech codecs cost microseconds). RTP
    timestamps advance by the samples of each payload and are tied to capture
    time through ``clock`` (a :class:`MediaClock` at the codec's RTP clock rate,
    sharing the process-wide NTP anchor with the video clock: that is what makes
    the SRs of both streams usable for lip sync). After a gap in capture of more
    than three payloads the timestamps re-anchor to the capture time and the
    packet carries the marker bit (RFC 3551 §4.1). ``payload_type`` defaults to
    the codec's static type (PCMU 0, PCMA 8, G.722 9), else 111.
    Counters as for :class:`VideoSender`: ``frames_captured``, ``packets_sent``...
    """

    def __init__(
        self,
        source: Source,
        encoder: AudioEncoder,
        remote: tuple[str, int],
        *,
        local: tuple[str, int] = ("127.0.0.1", 0),
        payload_type: int | None = None,
        ssrc: int | None = None,
        clock: MediaClock | None = None,
        protect: Protect | None = None,
        protect_rtcp: Protect | None = None,
        unprotect_rtcp: Protect | None = None,
        capture_time_ext_id: int | None = CAPTURE_TIME_EXT_ID,
        rtcp_interval: float = 1.0,
        transport: RtpTransport | None = None,
    ) -> None:
        super().__init__(
            source,
            remote,
            clock if clock is not None else MediaClock(encoder.info.clock_rate),
            local=local,
            protect=protect,
            protect_rtcp=protect_rtcp,
            unprotect_rtcp=unprotect_rtcp,
            rtcp_interval=rtcp_interval,
            transport=transport,
        )
        self.encoder = encoder
        pt = payload_type if payload_type is not None else encoder.info.payload_type
        self.payload_type = 111 if pt is None else pt
        self._ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self._seq = initial_sequence_number()
        self._ext_id = capture_time_ext_id
        self._step = round(encoder.info.clock_rate * encoder.samples_per_frame / encoder.info.sample_rate)
        self.frames_captured = 0

    @property
    def ssrc(self) -> int:
        return self._ssrc

    def _make_threads(self) -> list[threading.Thread]:
        return [_Worker("vcore-audio-send", self._send_loop, self._thread_exit)]

    def _send_loop(self) -> None:
        next_ts: int | None = None
        step, clock, protect, stats = self._step, self.clock, self._protect, self.stats
        while True:
            try:
                frame = self.source.read()
            except SourceEnded:
                return
            self.frames_captured += 1
            if not isinstance(frame, AudioFrame):
                raise MediaError(f"AudioSender needs an audio source, {self.source!r} gave {frame!r}")
            t = capture_time(frame)
            payloads = self.encoder.encode(frame)
            if not payloads:
                continue
            # the first payload's first sample was captured this long before the frame's end
            first = clock.rtp_timestamp(t) - step * (len(payloads) - 1)
            marker = False
            if next_ts is None or abs(ts_diff(first & 0xFFFFFFFF, next_ts)) > 3 * step:
                next_ts = first & 0xFFFFFFFF
                marker = True
            datagrams = []
            for i, payload in enumerate(payloads):
                pkt = RtpPacket(self.payload_type, self._seq, next_ts, self._ssrc, payload, marker and i == 0)
                if self._ext_id is not None and i == 0:
                    pkt.extensions = [(self._ext_id, encode_capture_time(t))]
                self._seq = (self._seq + 1) & 0xFFFF
                next_ts = (next_ts + step) & 0xFFFFFFFF
                stats.on_send(len(payload))
                data = pkt.serialize()
                datagrams.append(protect(data) if protect is not None else data)
            if not self._queue_send(datagrams):
                return
