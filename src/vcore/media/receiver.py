"""The RTP receivers: transport -> [SRTP] -> RTP -> jitter buffer -> decoder -> sink.

:class:`VideoReceiver` and :class:`AudioReceiver` on an
:class:`~vcore.transport.RtpTransport` (one decode thread each); see
:mod:`vcore.media.pipeline` for the thread model. Thread-safety: ``start``/
``close`` belong to the event loop's thread; counters may be read from anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from fractions import Fraction
from typing import Any, Callable, Self

from av.audio.frame import AudioFrame

from ..supervisor import cancel_and_wait
from ..errors import SrtpReplayError, VcoreError
from ..payload.h264 import AccessUnit
from ..rtp.packet import RtpPacket
from ..rtp.rtcp import RtcpBye, RtcpCcfb, RtcpNack, RtcpPli, RtcpReceiverReport, RtcpSdes, RtcpSenderReport
from ..rtp.stats import ReceiverStats, ntp_from_unix, ntp_middle32
from ..transport import RtpTransport
from ..transport.feedback import FEEDBACK_INTERVAL, FeedbackRecorder
from ..transport.rtp import Protect
from .clock import WALL_ANCHOR, RemoteClock
from .codecs import VIDEO_CLOCK_RATE, AudioDecoder, H264Decoder
from .errors import MediaError, PipelineClosed
from .pipeline import (
    CAPTURE_TIME_EXT_ID,
    InOrderAssembler,
    LatencyStats,
    UnitAssembler,
    _join,
    _Worker,
    decode_capture_time,
    rtcp_delay,
)
from .sinks import FrameQueue, NullSink, Recorder, as_sink

_log = logging.getLogger(__name__)

__all__ = ["VideoReceiver", "AudioReceiver"]


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
        self.dropped = 0  # packets that failed SRTP authentication or RTP parsing, or of another payload type
        self.replayed = 0  # authentic SRTP packets rejected as copies of one already received
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
        # set before start() to send RFC 8888 per-packet feedback (for the sender's congestion control)
        self.feedback: FeedbackRecorder | None = None
        self.probe_feedback: FeedbackRecorder | None = None  # the sender's probe clusters (their own SSRC)
        self.probe_packets = 0
        self.feedback_interval = FEEDBACK_INTERVAL
        self.feedback_sent = 0
        self._feedback_handle: asyncio.TimerHandle | None = None

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
        if self.feedback is not None:
            if self.probe_feedback is None:
                self.probe_feedback = FeedbackRecorder()
            self._feedback_handle = self._loop.call_later(self.feedback_interval, self._feedback_tick)

    def enable_feedback(self, recorder: FeedbackRecorder) -> None:
        """Send RFC 8888 feedback from now on (event loop; idempotent)."""
        if self.feedback is not None:
            return
        self.feedback = recorder
        if self.probe_feedback is None:
            self.probe_feedback = FeedbackRecorder()
        if self._loop is not None and not self._closed:
            self._feedback_handle = self._loop.call_later(self.feedback_interval, self._feedback_tick)

    def _feedback_tick(self) -> None:
        self._feedback_handle = None
        if self._closed or self._loop is None or self.feedback is None:
            return
        try:
            now = time.monotonic()
            ntp = ntp_middle32(ntp_from_unix(WALL_ANCHOR[1] + (now - WALL_ANCHOR[0])))
            report = self.feedback.report(self.ssrc, now, ntp)
            probe = self.probe_feedback.report(self.ssrc, now, ntp) if self.probe_feedback is not None else None
            if probe is not None:  # one report, a block per SSRC (RFC 8888 §3.1)
                report = probe if report is None else RtcpCcfb(report.sender_ssrc, report.blocks + probe.blocks, ntp)
            # compound: an empty RR first (RFC 3550 §6.1), the feedback after it
            if report is not None and self._send_rtcp_to_peer([RtcpReceiverReport(self.ssrc, []), report]):
                self.feedback_sent += 1
        finally:
            self._feedback_handle = self._loop.call_later(self.feedback_interval, self._feedback_tick)

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
        except SrtpReplayError as exc:
            # authentic, but a copy of one already received: most often a retransmission that crossed
            # its late original (the receiver NACKed it on a loaded machine); rejected, counted apart
            self.replayed += 1
            _log.debug("dropping RTP from %s: %s", addr, exc)
            return
        except VcoreError as exc:
            self.dropped += 1
            _log.debug("dropping RTP from %s: %s", addr, exc)
            return
        if self._pt is not None and packet.payload_type != self._pt:
            self.dropped += 1
            return
        arrival = time.monotonic()
        if packet.padding_size and not packet.payload and self._remote_ssrc is not None \
                and packet.ssrc != self._remote_ssrc:
            # a padding-only packet on an SSRC of its own: a bandwidth probe (the sender's congestion
            # control). Only its arrival matters: the media stages never see it
            if self.probe_feedback is not None:
                self.probe_packets += 1
                self.probe_feedback.on_packet(packet.ssrc, packet.sequence_number, arrival)
            else:
                self.dropped += 1
            return
        if self.transport is not None:
            self.transport.latch_rtp(addr)
        self.last_timestamp = packet.timestamp
        self.packets += 1
        self.bytes += len(data)
        if self.stats is None or self._remote_ssrc != packet.ssrc:
            self._remote_ssrc = packet.ssrc
            self.stats = ReceiverStats(packet.ssrc, self.clock_rate)
        self.stats.update(packet.sequence_number, packet.timestamp, arrival)
        if self.feedback is not None:
            self.feedback.on_packet(packet.ssrc, packet.sequence_number, arrival)
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
        if self._feedback_handle is not None:
            self._feedback_handle.cancel()
            self._feedback_handle = None
        if self._report_task is not None:
            await cancel_and_wait(self._report_task)
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
        # also ask through signalling (H.245 videoFastUpdatePicture), at the PLI's rate; called on the event loop
        self.on_keyframe_request: Callable[[], None] | None = None
        self._last_fast_update = -1e9
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
        hook = self.on_keyframe_request
        if hook is not None and now - self._last_fast_update >= self._pli_interval:
            self._last_fast_update = now
            hook()
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
    frame faded out; counted in ``concealed``, and in ``expanded`` when the slot
    only grows the buffer's delay).
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
        self.expanded = 0
        self.jitter = jitter
        self._jitter_poll = jitter_poll
        self._jitter_handle: asyncio.TimerHandle | None = None
        self._concealer: Any = None
        self._time_base = Fraction(1, decoder.info.clock_rate)

    def set_decoder(self, decoder: AudioDecoder, jitter: Any = None) -> None:
        """Switch to the negotiated codec before the first packet: decoder, RTP clock and (if given) jitter buffer."""
        if self.packets:
            raise MediaError("the audio codec can change only before the first packet")
        self.decoder = decoder
        self.clock_rate = decoder.info.clock_rate
        self.remote_clock = RemoteClock(self.clock_rate)
        self._time_base = Fraction(1, self.clock_rate)
        if jitter is not None:
            self.jitter = jitter

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
            from ..jitter import AudioFrameKind

            if item.kind is AudioFrameKind.EXPAND:
                self.expanded += 1  # the buffer grew (jitter, lip sync): nothing was lost
            else:
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
