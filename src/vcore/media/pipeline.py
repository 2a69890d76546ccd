"""Threads, bounded queues and the RTP senders and receivers (video and audio) over asyncio UDP.

Capture, encode and decode run in their own threads (PyAV releases the GIL),
joined by :class:`~vcore.media.sinks.FrameQueue` objects that drop the oldest
item instead of building latency. The asyncio event loop carries RTCP and the
incoming datagrams; outgoing RTP leaves straight from the encode thread.

Video sender: source -> [capture thread for live devices] -> queue -> [encode
thread] -> encoder -> packetizer -> optional ``protect`` hook (SRTP) -> UDP. It
answers PLI/FIR with a keyframe and sends RTCP sender reports whose (NTP, RTP)
pair comes from the encoder's :class:`~vcore.media.clock.MediaClock`.

Video receiver: UDP -> optional ``unprotect`` hook -> RTP parse -> an assembler
("packets -> access units": :class:`InOrderAssembler` now, a jitter buffer
later) -> queue -> [decode thread] -> decoder -> sink. It sends PLI when the
decoder needs a keyframe and learns the sender's clock from its SRs.

Audio: :class:`AudioSender` (one thread: read, encode 20 ms payloads, send) and
:class:`AudioReceiver` (decode thread) follow the same pattern and clock model.

Latency test mode: the sender puts each frame's capture time (monotonic
microseconds, 8 bytes) into an RFC 8285 one-byte header extension (id
``capture_time_ext_id``, default 1) on the first packet of the frame; the
receiver measures capture-to-decoded latency (meaningful when both ends share
a clock, as on one machine) into :class:`LatencyStats`.

Every thread and task a component starts, it owns and stops in ``close()``.
Thread-safety: ``start``/``close`` belong to the event loop's thread; counters
may be read from anywhere; ``request_keyframe`` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import struct
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Protocol, Self

from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from ..errors import VcoreError
from ..payload.h264 import AccessUnit, H264Depacketizer, H264Packetizer
from ..rtp.packet import RtpPacket
from ..nack import RetransmissionHistory
from ..rtp.rtcp import (
    RtcpBye,
    RtcpFir,
    RtcpNack,
    RtcpPli,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpSenderReport,
)
from ..rtp.stats import ReceiverStats, SenderStats, rtt_from_report
from ..rtp.seq import initial_sequence_number, ts_diff
from ..transport import RtpTransport
from ..transport.rtp import Protect
from .clock import WALL_ANCHOR, MediaClock, RemoteClock
from .codecs import VIDEO_CLOCK_RATE, AudioDecoder, AudioEncoder, H264Decoder, H264Encoder
from .errors import MediaError, PipelineClosed, SourceEnded
from .sinks import FrameQueue, NullSink, Recorder, as_sink
from .sources import Source, capture_time

_log = logging.getLogger(__name__)

__all__ = [
    "Protect",
    "UnitAssembler",
    "InOrderAssembler",
    "LatencyStats",
    "VideoSender",
    "VideoReceiver",
    "AudioSender",
    "AudioReceiver",
    "CAPTURE_TIME_EXT_ID",
    "encode_capture_time",
    "decode_capture_time",
]

CAPTURE_TIME_EXT_ID = 1
_JOIN_TIMEOUT = 5.0


def rtcp_delay(interval: float) -> float:
    """The next RTCP report delay: ``interval`` randomized to [0.5, 1.5] times itself (RFC 3550 §6.3.1)."""
    return interval * random.uniform(0.5, 1.5)




def encode_capture_time(t: float) -> bytes:
    """8-byte header-extension value: monotonic capture time in microseconds."""
    return struct.pack("!Q", round(t * 1_000_000))


def decode_capture_time(value: bytes) -> float | None:
    """The capture time in a header-extension value, or None when malformed."""
    if len(value) != 8:
        return None
    return struct.unpack("!Q", value)[0] / 1_000_000  # type: ignore[no-any-return]


class LatencyStats:
    """Latency samples (seconds): all-time and per-window percentiles. Thread-safe."""

    def __init__(self, keep: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._all: list[float] = []
        self._window: list[float] = []
        self._keep = keep

    def add(self, seconds: float) -> None:
        with self._lock:
            if len(self._all) < self._keep:
                self._all.append(seconds)
            self._window.append(seconds)

    @property
    def count(self) -> int:
        return len(self._all)

    @staticmethod
    def _pct(samples: list[float], q: float) -> float | None:
        if not samples:
            return None
        s = sorted(samples)
        return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile of every sample so far (None without samples)."""
        with self._lock:
            return self._pct(self._all, q)

    def window(self) -> dict[str, float | None]:
        """p50/p95/max of the samples since the last call, and their count; starts a new window."""
        with self._lock:
            w, self._window = self._window, []
        return {"count": len(w), "p50": self._pct(w, 50), "p95": self._pct(w, 95), "max": max(w) if w else None}


class UnitAssembler(Protocol):
    """The receive stage that turns RTP packets into access units (a reorder buffer or jitter buffer).

    ``push`` may return units at once; ``pop(now)`` returns units that became
    due. ``keyframe_needed`` asks the sender for a keyframe (PLI). An assembler
    with a ``poll_interval`` attribute (seconds) is polled that often.
    """

    def push(self, packet: RtpPacket, arrival: float) -> list[AccessUnit] | None: ...

    def pop(self, now: float) -> list[AccessUnit]: ...

    @property
    def keyframe_needed(self) -> bool: ...


class InOrderAssembler:
    """The simplest assembler: packets in arrival order through :class:`H264Depacketizer`; never waits."""

    def __init__(self) -> None:
        self.depacketizer = H264Depacketizer()

    def push(self, packet: RtpPacket, arrival: float) -> list[AccessUnit]:
        return self.depacketizer.push(packet)

    def pop(self, now: float) -> list[AccessUnit]:
        return []

    @property
    def keyframe_needed(self) -> bool:
        return False


class _Worker(threading.Thread):
    def __init__(self, name: str, target: Callable[[], None], on_exit: Callable[[BaseException | None], None]):
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self._on_exit = on_exit

    def run(self) -> None:
        error: BaseException | None = None
        try:
            self._target_fn()
        except BaseException as exc:  # reported to the owner, never lost
            error = exc
        self._on_exit(error)


async def _join(threads: list[threading.Thread], timeout: float = _JOIN_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    for t in threads:
        while t.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if t.is_alive():  # pragma: no cover - a device that ignores its read timeout
            _log.warning("thread %s did not stop within %.1f s", t.name, timeout)


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
        self.fraction_lost = 0.0  # the peer's last reported fraction lost (0..1)
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
        if history is None or nack.media_ssrc != self.ssrc:
            return
        with self._history_lock:
            resend = history.resend(list(nack.lost), time.monotonic())
            wires = [self._wire.get(p.sequence_number % history.capacity) for p in resend]
        datagrams = [w for w in wires if w is not None]
        self.retransmitted += len(datagrams)
        self._send(datagrams)

    def _on_rtcp_packets(self, packets: list[Any], addr: Any) -> None:
        for p in packets:
            if isinstance(p, (RtcpReceiverReport, RtcpSenderReport)):
                for block in p.reports:
                    if block.ssrc == self.ssrc:
                        self.fraction_lost = block.fraction_lost / 256.0
                        rtt = rtt_from_report(block, self.clock.ntp_timestamp(time.monotonic()))
                        if rtt is not None:
                            self.rtt = rtt
            elif isinstance(p, RtcpNack):
                self._on_nack(p)
            self._on_feedback(p)

    def _on_feedback(self, packet: Any) -> None:
        pass

    async def close(self) -> None:
        """Stop the threads, send SR + BYE, close the socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop_threads()
        if self._rtcp_task is not None:
            self._rtcp_task.cancel()
            try:
                await self._rtcp_task
            except asyncio.CancelledError:
                pass
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

    @property
    def ssrc(self) -> int:
        return self.packetizer.ssrc

    def _make_threads(self) -> list[threading.Thread]:
        if not self._capture_thread:
            return [_Worker("vcore-encode", self._read_encode_loop, self._thread_exit)]
        return [
            _Worker("vcore-capture", self._capture_loop, self._thread_exit),
            _Worker("vcore-encode", self._encode_loop, self._thread_exit),
        ]

    def _stop_threads(self) -> None:
        self.source.close()
        self.queue.close()

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
        while True:
            try:
                frame = self.queue.get()
            except PipelineClosed:
                return
            if not self._encode_and_send(frame):
                return

    def _read_encode_loop(self) -> None:
        # One thread for a source that paces itself and skips stale frames (TestPattern,
        # FileSource): the picture stays in this core's cache from read to encode.
        while True:
            try:
                frame = self.source.read()
            except SourceEnded:
                return
            self.frames_captured += 1
            if not self._encode_and_send(frame):  # type: ignore[arg-type]
                return

    def _encode_and_send(self, frame: VideoFrame) -> bool:
        t = capture_time(frame)
        units = self.encoder.encode(frame, t)
        if not units:
            return True
        protect, ext_id, stats = self._protect, self._ext_id, self.stats
        datagrams = []
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
        return self._queue_send(datagrams)

    def _on_feedback(self, packet: Any) -> None:
        if (isinstance(packet, RtcpPli) and packet.media_ssrc == self.ssrc) or isinstance(packet, RtcpFir):
            self.keyframe_requests += 1
            self.encoder.request_keyframe()

    def request_keyframe(self) -> None:
        """Make the next picture an IDR (thread-safe)."""
        self.encoder.request_keyframe()

    async def close(self) -> None:
        """Stop the threads, send SR + BYE, close the socket (idempotent)."""
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


class _RtpReceiver:
    """What every receiver shares: the transport, unprotect, RTCP (SR, BYE), statistics, one worker thread.

    With ``transport`` (shared with the session's sender) RTCP is protected and
    unprotected by the transport's own hooks; without one the receiver opens a
    private transport on ``local`` (RTCP multiplexed) that answers whoever sends.
    An accepted packet (authenticated, right payload type) latches the
    transport's targets to its source (symmetric RTP).
    """

    queue: FrameQueue[Any]  # the decode thread's input, made by each subclass

    def __init__(
        self,
        clock_rate: int,
        *,
        local: tuple[str, int],
        unprotect: Protect | None,
        unprotect_rtcp: Protect | None,
        protect_rtcp: Protect | None,
        payload_type: int | None,
        capture_time_ext_id: int | None,
        ssrc: int | None,
        transport: RtpTransport | None = None,
    ) -> None:
        self.clock_rate = clock_rate
        self.remote_clock = RemoteClock(clock_rate)
        self.latency = LatencyStats()
        self.stats: ReceiverStats | None = None
        self.error: MediaError | None = None
        self.packets = 0
        self.bytes = 0
        self.dropped = 0
        self.ssrc = ssrc if ssrc is not None else secrets.randbits(32)
        self.bye = asyncio.Event()
        self._local = local
        self._unprotect = unprotect
        self._unprotect_rtcp = unprotect_rtcp
        self._protect_rtcp = protect_rtcp
        self._pt = payload_type
        self._ext_id = capture_time_ext_id
        self._capture_times: dict[int, float] = {}
        self._remote_ssrc: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.transport = transport
        self._owns_transport = transport is None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.last_timestamp: int | None = None  # RTP timestamp of the newest packet (lip sync with the SRs)
        self.presentation_delay: float | None = None  # smoothed; see _presented
        self.rtcp_packets = 0  # RTCP compound packets from the sender of the stream received here
        self.rtcp_interval = 0.0  # set before start() to send RR (+ SDES) about every this many seconds
        self.cname: str | None = None
        self._report_task: asyncio.Task[None] | None = None

    @property
    def local_address(self) -> tuple[str, int]:
        """The local (host, port) the RTP arrives on."""
        if self.transport is None or self._loop is None:
            raise PipelineClosed("receiver is not started")
        return self.transport.local_rtp

    @property
    def rtcp_dropped(self) -> int:
        """RTCP that failed unprotect or parsing on this receiver's transport (``dropped`` counts RTP)."""
        return self.transport.rtcp_dropped if self.transport is not None else 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _make_thread(self) -> threading.Thread:
        raise NotImplementedError

    async def start(self) -> None:
        """Open the transport (unless shared) and start the worker thread."""
        self._loop = asyncio.get_running_loop()
        if self.transport is None:
            self.transport = RtpTransport(self._local[0], port=self._local[1], rtcp_mux=True, latch=True,
                                          protect_rtcp=self._protect_rtcp, unprotect_rtcp=self._unprotect_rtcp,
                                          name=type(self).__name__)
        await self.transport.open()
        self.transport.set_rtp_handler(self._on_datagram)
        self.transport.add_rtcp_listener(self._on_rtcp_packets)
        self._thread = self._make_thread()
        self._thread.start()
        if self.rtcp_interval > 0:
            self._report_task = asyncio.create_task(self._report_loop())

    def receiver_report(self, now: float | None = None) -> RtcpReceiverReport:
        """An RR about the stream received so far (RFC 3550 §6.4.2; no block before the first packet)."""
        blocks = [self.stats.report_block(time.monotonic() if now is None else now)] if self.stats else []
        return RtcpReceiverReport(self.ssrc, blocks)

    async def _report_loop(self) -> None:
        try:
            while True:
                await asyncio.sleep(rtcp_delay(self.rtcp_interval))
                packets: list[Any] = [self.receiver_report()]
                if self.cname:
                    packets.append(RtcpSdes.cname(self.ssrc, self.cname))
                self._send_rtcp_to_peer(packets)  # False without a key or an address yet: the next one goes
        except Exception as exc:  # never a silent death: the owner sees ``error`` (a call ends on it)
            _log.exception("%s: RTCP task failed", type(self).__name__)
            self.error = MediaError(f"RTCP receiver reports stopped: {exc!r}")

    def _on_datagram(self, data: bytes, addr: Any) -> None:
        try:
            if self._unprotect is not None:
                data = self._unprotect(data)
            packet = RtpPacket.parse(data)
        except VcoreError as exc:
            self.dropped += 1
            _log.debug("dropping RTP from %s: %s", addr, exc)
            return
        if self._pt is not None and packet.payload_type != self._pt:
            self.dropped += 1
            return
        arrival = time.monotonic()
        if self.transport is not None:
            self.transport.latch_rtp(addr)
        self.last_timestamp = packet.timestamp
        self.packets += 1
        self.bytes += len(data)
        if self.stats is None or self._remote_ssrc != packet.ssrc:
            self._remote_ssrc = packet.ssrc
            self.stats = ReceiverStats(packet.ssrc, self.clock_rate)
        self.stats.update(packet.sequence_number, packet.timestamp, arrival)
        if self._ext_id is not None and packet.extension:
            for ext_id, value in packet.extensions:
                if ext_id == self._ext_id:
                    t = decode_capture_time(value)
                    if t is not None:
                        self._capture_times[packet.timestamp] = t
                        if len(self._capture_times) > 256:
                            for k in list(self._capture_times)[:128]:
                                del self._capture_times[k]
        self._on_rtp(packet, arrival)

    def _on_rtp(self, packet: RtpPacket, arrival: float) -> None:
        raise NotImplementedError

    def _presented(self, rtp_timestamp: int) -> None:
        """From the decode thread: a frame with this RTP timestamp goes to the sink now.

        ``presentation_delay`` follows (EWMA, 1/16) this host's wall clock at hand-over
        minus the sender's wall-clock capture time from its SRs: network, buffering
        and decoding, plus the offset between the two hosts' clocks. The offset is
        the same for the audio and the video of one sender (one clock anchor per
        process, see :mod:`vcore.media.clock`), so the difference of the two
        receivers' values is the lip-sync error. Stays None until an SR arrived.
        """
        sent = self.remote_clock.unix_time(rtp_timestamp)
        if sent is None:
            return
        d = WALL_ANCHOR[1] + (time.monotonic() - WALL_ANCHOR[0]) - sent
        old = self.presentation_delay
        self.presentation_delay = d if old is None else old + (d - old) / 16.0

    def _on_rtcp_packets(self, packets: list[Any], addr: Any) -> None:
        # counts the RTCP of the stream received here (SR, BYE); the reports about what we send go to the sender
        if any(isinstance(p, (RtcpSenderReport, RtcpBye)) for p in packets):
            self.rtcp_packets += 1
        for p in packets:
            if isinstance(p, RtcpSenderReport):
                self.remote_clock.update(p)
                if self.stats is not None:
                    self.stats.on_sender_report(p, time.monotonic())
            elif isinstance(p, RtcpBye):
                self.bye.set()

    def _send_rtcp_to_peer(self, packets: list[Any]) -> bool:
        if self.transport is None or self._closed:
            return False
        return self.transport.send_rtcp(packets)

    def _thread_exit(self, error: BaseException | None) -> None:
        if error is not None:
            self.error = error if isinstance(error, MediaError) else MediaError(f"receiver thread failed: {error!r}")
            _log.error("%s: %s", type(self).__name__, self.error)
            self._stop_thread()

    def _stop_thread(self) -> None:
        self.queue.close()

    def _close_sinks(self) -> None:
        pass

    async def close(self) -> None:
        """Stop the worker thread, close the socket and the sinks (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._report_task is not None:
            self._report_task.cancel()
            try:
                await self._report_task
            except asyncio.CancelledError:
                pass
            self._report_task = None
        if self.transport is not None:
            self.transport.set_rtp_handler(None)
            self.transport.remove_rtcp_listener(self._on_rtcp_packets)
            if self._owns_transport:
                await self.transport.close()
        self._stop_thread()
        if self._thread is not None:
            await _join([self._thread])
        self._close_sinks()


class VideoReceiver(_RtpReceiver):
    """UDP -> [unprotect] -> RTP -> assembler -> [decode thread] -> H.264 decoder -> sink.

    ``sink`` gets each decoded ``VideoFrame`` in the decode thread (a callable or
    a sink object; default :class:`NullSink`). ``recorder`` (optional) gets every
    access unit before decoding (a remux, see :class:`Recorder`). ``assembler``
    defaults to :class:`InOrderAssembler`; any other assembler (a jitter buffer)
    is also polled with ``pop(now)`` every ``poll_interval`` seconds (default:
    its own ``poll_interval`` attribute, else 5 ms). ``decode=False`` skips
    decoding: the sink then gets the access units themselves (record-only or
    relay use; ``frames`` stays 0 and ``latency`` measures capture to reassembly). ``unprotect`` / ``unprotect_rtcp``
    transform incoming packets (SRTP), ``protect_rtcp`` outgoing PLIs; a hook
    that raises a ``VcoreError`` drops the packet (counted in ``dropped``).

    Counters: ``packets``, ``bytes``, ``dropped``, ``units``, ``frames``,
    ``plis_sent``; ``latency`` (:class:`LatencyStats`, capture to decoded, when
    the sender stamps capture times); ``remote_clock`` (from the sender's SRs);
    ``presentation_delay`` (s, smoothed: this host's clock when a frame goes to
    the sink minus the sender's capture time from its SRs; minus the audio
    receiver's value it is the lip-sync error); ``stats`` (RFC 3550
    :class:`ReceiverStats`, after the first packet);
    ``bye`` is set when the sender said goodbye. A recorder that fails is
    closed and dropped (``recorder_error``) while the call goes on; an
    exception from the sink ends the decode thread (``error``).
    """

    def __init__(
        self,
        sink: Any = None,
        *,
        local: tuple[str, int] = ("127.0.0.1", 0),
        decoder: H264Decoder | None = None,
        assembler: UnitAssembler | None = None,
        unprotect: Protect | None = None,
        unprotect_rtcp: Protect | None = None,
        protect_rtcp: Protect | None = None,
        recorder: Recorder | None = None,
        payload_type: int | None = None,
        capture_time_ext_id: int | None = CAPTURE_TIME_EXT_ID,
        queue_size: int = 8,
        pli_interval: float = 0.3,
        ssrc: int | None = None,
        poll_interval: float | None = None,
        decode: bool = True,
        transport: RtpTransport | None = None,
    ) -> None:
        super().__init__(
            VIDEO_CLOCK_RATE,
            local=local,
            unprotect=unprotect,
            unprotect_rtcp=unprotect_rtcp,
            protect_rtcp=protect_rtcp,
            payload_type=payload_type,
            capture_time_ext_id=capture_time_ext_id,
            ssrc=ssrc,
            transport=transport,
        )
        self.sink = as_sink(sink) if sink is not None else NullSink()
        self.decoder = decoder if decoder is not None else H264Decoder()
        self._decode = decode
        self.assembler: UnitAssembler = assembler if assembler is not None else InOrderAssembler()
        self.recorder = recorder
        if recorder is not None:
            recorder.attach()
        self.recorder_error: MediaError | None = None
        self.queue: FrameQueue[tuple[AccessUnit, float]] = FrameQueue(queue_size)
        self.units = 0
        self.frames = 0
        self.plis_sent = 0
        self.nacks_sent = 0
        self._pli_interval = pli_interval
        self._last_pli = -1e9
        self._poll_handle: asyncio.TimerHandle | None = None
        if poll_interval is None:
            poll_interval = getattr(self.assembler, "poll_interval", None)
        if poll_interval is None and not isinstance(self.assembler, InOrderAssembler):
            poll_interval = 0.005  # a jitter buffer releases units on time, not only on arrivals
        self._poll_interval = poll_interval

    async def start(self) -> None:
        await super().start()
        if self._poll_interval:
            assert self._loop is not None
            self._poll_handle = self._loop.call_later(float(self._poll_interval), self._poll_tick)

    def _make_thread(self) -> threading.Thread:
        return _Worker("vcore-decode", self._decode_loop, self._thread_exit)

    def _on_rtp(self, packet: RtpPacket, arrival: float) -> None:
        units = self.assembler.push(packet, arrival) or []
        units += self.assembler.pop(arrival)
        self._deliver(units, arrival)

    def _deliver(self, units: list[AccessUnit], now: float) -> None:
        for u in units:
            self.units += 1
            try:
                self.queue.write((u, now))
            except PipelineClosed:
                return
        nacks = getattr(self.assembler, "nacks", None)
        if nacks is not None and self._remote_ssrc is not None:
            lost = nacks(now)
            if lost and self._send_rtcp_to_peer([RtcpNack(self.ssrc, self._remote_ssrc, lost)]):
                self.nacks_sent += 1
        if self.assembler.keyframe_needed:
            take = getattr(self.assembler, "take_keyframe_request", None)
            if take is not None:
                take()  # the buffer rate-limits its own requests; the PLI below is also rate-limited
            self._send_pli()

    def _poll_tick(self) -> None:
        # A timer rather than a task: a tick every 5 ms costs a few microseconds instead of a coroutine wake-up.
        self._poll_handle = None
        if self._closed or self._loop is None:
            return
        now = time.monotonic()
        try:
            self._deliver(self.assembler.pop(now), now)
        finally:
            self._poll_handle = self._loop.call_later(float(self._poll_interval or 0.005), self._poll_tick)

    def _send_pli(self) -> None:
        now = time.monotonic()
        if self._remote_ssrc is None or now - self._last_pli < self._pli_interval:
            return
        if self._send_rtcp_to_peer([RtcpPli(self.ssrc, self._remote_ssrc)]):
            self._last_pli = now
            self.plis_sent += 1

    def _decode_loop(self) -> None:
        decoder, sink, queue, loop = self.decoder, self.sink, self.queue, self._loop
        assert loop is not None
        dropped = 0
        while True:
            try:
                unit, released = queue.get()
            except PipelineClosed:
                return
            if queue.dropped != dropped:  # units were lost in the queue: the references are gone
                dropped = queue.dropped
                decoder.mark_gap("decode queue overflow")
            if self.recorder is not None:
                self._record(unit, released)
            t = self._capture_times.pop(unit.timestamp, None)
            if not self._decode:  # record-only: units go to the recorder and the sink as they are
                if t is not None:
                    self.latency.add(time.monotonic() - t)
                sink.write(unit)
                continue
            frames = decoder.decode(unit)
            for f in frames:
                if t is not None:
                    self.latency.add(time.monotonic() - t)
                self.frames += 1
                self._presented(unit.timestamp)
                sink.write(f)
            if decoder.keyframe_needed:
                try:
                    loop.call_soon_threadsafe(self._send_pli)
                except RuntimeError:
                    return

    def _record(self, unit: AccessUnit, at: float) -> None:
        # A recording that fails (disk full, unwritable file) must not end the call: report it,
        # keep what was written, and go on without recording.
        assert self.recorder is not None
        try:
            self.recorder.write_video(unit, at)
        except MediaError as exc:
            self.recorder_error = exc
            _log.error("recording stopped: %s", exc)
            recorder, self.recorder = self.recorder, None
            try:
                recorder.close()
            except MediaError:
                pass

    async def close(self) -> None:
        """Stop the decode thread and close the socket, the sink and the recorder (idempotent)."""
        if self._poll_handle is not None:
            self._poll_handle.cancel()
            self._poll_handle = None
        await super().close()

    def _close_sinks(self) -> None:
        self.decoder.close()
        self.sink.close()
        if self.recorder is not None:
            self.recorder.detach()


def _s16_frame(pcm: Any, rate: int) -> AudioFrame:
    frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    return frame


class AudioReceiver(_RtpReceiver):
    """UDP -> [unprotect] -> RTP -> [decode thread] -> speech decoder -> sink (mono s16 ``AudioFrame``).

    Packets are decoded in arrival order, or, with ``jitter`` (a
    :class:`vcore.jitter.AudioJitterBuffer`), at their playout time: the buffer is
    polled every ``jitter_poll`` s (10 ms) on the event loop, and a missing frame is
    concealed (``concealer``, default :class:`vcore.jitter.FadeConcealer`: the last
    frame faded out; counted in ``concealed``).
    Each decoded frame's ``pts`` is its RTP timestamp (``time_base`` 1/clock
    rate); ``remote_clock.unix_time(frame.pts)`` is the sender's wall-clock time
    of that sample once an SR arrived, which with the video receiver's remote
    clock gives the lip-sync offset (:func:`~vcore.media.clock.sync_offset`).
    ``recorder`` (optional, ``audio=True``) records the decoded audio.
    Counters: ``packets``, ``frames``, ``dropped``; ``latency`` and
    ``presentation_delay`` as for video.
    """

    def __init__(
        self,
        decoder: AudioDecoder,
        sink: Any = None,
        *,
        local: tuple[str, int] = ("127.0.0.1", 0),
        unprotect: Protect | None = None,
        unprotect_rtcp: Protect | None = None,
        protect_rtcp: Protect | None = None,
        recorder: Recorder | None = None,
        payload_type: int | None = None,
        capture_time_ext_id: int | None = CAPTURE_TIME_EXT_ID,
        queue_size: int = 16,
        ssrc: int | None = None,
        jitter: Any = None,
        jitter_poll: float = 0.01,
        transport: RtpTransport | None = None,
    ) -> None:
        super().__init__(
            decoder.info.clock_rate,
            local=local,
            unprotect=unprotect,
            unprotect_rtcp=unprotect_rtcp,
            protect_rtcp=protect_rtcp,
            payload_type=payload_type,
            capture_time_ext_id=capture_time_ext_id,
            ssrc=ssrc,
            transport=transport,
        )
        self.decoder = decoder
        self.sink = as_sink(sink) if sink is not None else NullSink()
        self.recorder = recorder
        if recorder is not None:
            recorder.attach()
        self.queue: FrameQueue[tuple[Any, float]] = FrameQueue(queue_size)
        self.frames = 0
        self.concealed = 0
        self.jitter = jitter
        self._jitter_poll = jitter_poll
        self._jitter_handle: asyncio.TimerHandle | None = None
        self._concealer: Any = None
        self._time_base = Fraction(1, decoder.info.clock_rate)

    async def start(self) -> None:
        await super().start()
        if self.jitter is not None:
            assert self._loop is not None
            self._jitter_handle = self._loop.call_later(self._jitter_poll, self._jitter_tick)

    def _jitter_tick(self) -> None:
        self._jitter_handle = None
        if self._closed or self._loop is None:
            return
        try:
            for slot in self.jitter.pop(time.monotonic()):
                self.queue.write((slot, time.monotonic()))
        except PipelineClosed:
            return
        self._jitter_handle = self._loop.call_later(self._jitter_poll, self._jitter_tick)

    async def close(self) -> None:
        """Stop the decode thread and close the socket and the sinks (idempotent)."""
        if self._jitter_handle is not None:
            self._jitter_handle.cancel()
            self._jitter_handle = None
        await super().close()

    def _make_thread(self) -> threading.Thread:
        return _Worker("vcore-audio-decode", self._decode_loop, self._thread_exit)

    def _on_rtp(self, packet: RtpPacket, arrival: float) -> None:
        if self.jitter is not None:
            self.jitter.push(packet, arrival)
            return
        try:
            self.queue.write((packet, arrival))
        except PipelineClosed:
            pass

    def _decode_slot(self, item: Any) -> tuple[int, list[AudioFrame]]:
        """Decode a packet (no jitter buffer) or a jitter buffer slot (missing: concealed)."""
        if isinstance(item, RtpPacket):
            return item.timestamp, self.decoder.decode(item.payload)
        rate = self.decoder.info.sample_rate
        if self._concealer is None:
            from ..jitter import FadeConcealer

            self._concealer = FadeConcealer(int(round(rate * self.jitter.frame_duration)))
        if item.payload is None:  # lost or an expansion slot: the last frame, faded out
            pcm = self._concealer.process(None)
            self.concealed += 1
            return item.timestamp, [_s16_frame(pcm, rate)]
        frames = []
        for f in self.decoder.decode(item.payload):
            pcm = f.to_ndarray().reshape(-1)
            out = self._concealer.process(pcm)  # remembers the frame; fades in after a loss
            frames.append(f if out is pcm else _s16_frame(out, f.sample_rate))
        return item.timestamp, frames

    def _decode_loop(self) -> None:
        while True:
            try:
                item, arrival = self.queue.get()
            except PipelineClosed:
                return
            timestamp, frames = self._decode_slot(item)
            t = self._capture_times.pop(timestamp, None)
            for f in frames:
                f.pts = timestamp
                f.time_base = self._time_base
                if t is not None:
                    self.latency.add(time.monotonic() - t)
                    t = None
                self.frames += 1
                if self.recorder is not None:
                    self.recorder.write_audio(f, arrival)
                self._presented(timestamp)
                self.sink.write(f)

    def _close_sinks(self) -> None:
        self.sink.close()
        if self.recorder is not None:
            self.recorder.detach()
