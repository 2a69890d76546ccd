"""One call: its signalling session, media, events and tasks, and the watch over them.

The statistics and the degraded-stream watch are measured in :mod:`vcore.call.stats`; the user-input
strings vcore peers exchange (camera presets and moves, the recording notice) are
:mod:`vcore.call.user_input`; the H.224 data channel of far-end camera control is :mod:`vcore.call.fecc`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..camera_control import Focus, Pan, Tilt, Zoom
from ..errors import CallError, VcoreError
from ..h323 import signalling as sig
from ..h323.errors import SignallingError
from ..h323.fast_connect import MediaChannel
from ..h323.gatekeeper import Admission
from ..h323.messages import VENDOR
from ..h323.q931 import Cause
from ..callcontrol import CallControl, MediaUpdated
from ..supervisor import Supervisor
from .events import (
    _REASONS,
    BitrateChanged,
    CallEvent,
    CallFailed,
    CallStats,
    CameraControl,
    Connected,
    Degraded,
    Ended,
    Held,
    KeyframeRequested,
    MediaStarted,
    RecordingNotice,
    Ringing,
)
from .media import _follow_lips, _Media
from .stats import DegradedWatch, StatsMeter
from .user_input import (
    CAMERA_MOVE_PREFIX,
    CAMERA_MOVES,
    CAMERA_PRESET_PREFIX,
    RECORDING_PREFIX,
    camera_move_text,
    camera_preset_text,
    check_remote_move,
    legacy_move,
    nudge,
    read_camera_request,
    read_recording_notice,
    recording_text,
)

if TYPE_CHECKING:
    from .terminal import Terminal

__all__ = ["CAMERA_MOVES", "CAMERA_MOVE_PREFIX", "CAMERA_PRESET_PREFIX", "RECORDING_PREFIX", "Call"]

_WATCH_INTERVAL = 0.25
_FLOW_CONTROL_FLOOR = 64_000  # bit/s: the lowest video rate a peer's H.245 flow control may impose

log = logging.getLogger(__name__)


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

    def __init__(self, terminal: Terminal, session: CallControl, media: _Media | None, *, outgoing: bool,
                 started: float | None = None, admission: Admission | None = None) -> None:
        self.terminal = terminal
        if media is not None:
            media.peer_is_vcore = lambda: session.remote_product == VENDOR["productId"]
            media.request_fast_update = self._fast_update
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
        self._meter = StatsMeter()
        self._degraded = DegradedWatch()
        self._last_media = time.monotonic()
        self._last_count = 0
        self._finished = asyncio.Event()
        # every task of the call: a failure is logged with its traceback and ends the call (internal-error)
        self._tasks = Supervisor(f"call {session.call_reference}", on_failure=self._task_failed)
        self._pump = self._tasks.spawn(self._run(), "events")
        self._peer: str | None = None
        self._security: dict[str, Any] | None = None
        self._media_detail: str | None = None
        self._held_by_peer = False  # the peer holds the call (its re-INVITE): we send nothing
        self._held_here = False  # Call.hold(): we hold the call
        if media is not None and media.data is not None:  # H.281 requests from the peer, reported as events
            media.data.on_event = self._camera_event
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
        """Where this terminal receives the call's media: ``{"audio": (host, port), "video": ..., "data": ...}``
        (``data``: the H.224 data channel of far-end camera control, H.323 calls only)."""
        m = self._media
        if m is None or m.closed:
            return {}
        out = {k: rx.local_address for k, rx in (("audio", m.audio_rx), ("video", m.video_rx)) if rx is not None}
        if m.data is not None and m.data.transport is not None and not m.data.closed:
            out["data"] = m.data.transport.local_rtp
        return out

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

    def _fast_update(self) -> None:
        """The decoder needs a keyframe (rate-limited by the receiver): videoFastUpdatePicture to the peer."""
        ch = self._channel("receive", "video")
        if ch is not None and self.ended is None and not self._tasks.closed:
            self._tasks.spawn(self._send_fast_update(ch.number), "videoFastUpdatePicture")

    async def _send_fast_update(self, number: int) -> None:
        try:
            await self._session.request_keyframe(number)
        except SignallingError as exc:  # the call is ending
            log.debug("call %s: no videoFastUpdatePicture: %s", self.peer, exc)

    async def limit_bitrate(self, bitrate: int | None) -> None:
        """Ask the peer to send video at most ``bitrate`` bit/s (H.245 flowControlCommand; None lifts it)."""
        ch = self._channel("receive", "video")
        if self.ended is None:
            await self._session.limit_bitrate(bitrate, ch.number if ch else None)

    @property
    def held(self) -> bool:
        """True while the call is on hold, by either side (nothing is sent to the peer)."""
        return self._held_here or self._held_by_peer

    async def hold(self) -> None:
        """Put the call on hold: the peer is asked to stop sending (SIP re-INVITE, ``a=inactive``) and
        nothing is sent to it until :meth:`resume` (a :class:`Held` event either way). Raises
        :class:`CallError` when the signalling protocol has no hold (H.323 here) or the peer refuses."""
        await self._set_hold(True)

    async def resume(self) -> None:
        """Take the call off hold (SIP re-INVITE, ``a=sendrecv``): media flows again, video from a keyframe."""
        await self._set_hold(False)

    async def _set_hold(self, held: bool) -> None:
        change = getattr(self._session, "set_hold", None)
        if change is None:
            raise CallError("hold is not supported on this call's signalling (H.323: no hold in vcore)")
        if self.ended is not None:
            raise CallError("the call is over")
        if held == self._held_here:
            return
        await change(held)  # the answer comes back as MediaUpdated(by_peer=False) before this returns

    async def _renegotiated(self, event: MediaUpdated) -> None:
        before = self._held_by_peer if event.by_peer else self._held_here
        if event.by_peer:
            self._held_by_peer = event.held
        else:
            self._held_here = event.held
        if self._media is not None:
            self._media.renegotiated(event.targets, send=not self.held)
        if before != event.held:
            log.info("call %s: %s %s", self.peer, "held" if event.held else "resumed",
                     "by the peer" if event.by_peer else "here")
            self._last_media = time.monotonic()  # the media timeout starts again from the resume
            await self._emit(Held(held=event.held, by_peer=event.by_peer))

    async def set_bitrate(self, bitrate: int) -> None:
        """Change our own video bitrate (bit/s)."""
        if self._media is not None and self._media.set_bitrate(bitrate) is not None:
            await self._emit(BitrateChanged(bitrate=bitrate, by_peer=False))

    async def camera_preset(self, preset: int) -> None:
        """Recall a preset of this terminal's VISCA camera during the call."""
        await self.terminal.camera_preset(preset)

    @property
    def remote_camera_h281(self) -> bool:
        """The peer offered H.281 far-end camera control on the call's H.224 data channel (the remote-camera
        methods speak H.281 to it; otherwise vcore's user-input strings, which only vcore peers understand)."""
        data = self._media.data if self._media is not None else None
        return data is not None and data.peer_has_h281

    def _fecc_remote(self) -> Any:
        data = self._media.data if self._media is not None else None
        if data is None or not data.peer_has_h281 or data.fecc is None or self.ended is not None:
            return None
        return data.fecc.remote

    def _check_legacy_peer(self) -> None:
        if self._session.remote_product != VENDOR["productId"]:
            raise CallError("the peer offers no far-end camera control (no H.281 on an H.224 data channel)")

    async def remote_camera_preset(self, preset: int) -> None:
        """Ask the peer to recall a preset of its camera.

        H.281 (activate preset, 0..15) when the peer offered it, else the H.245
        UserInputIndication ``vcore:camera-preset=N`` an older vcore peer understands
        (0..255; a peer that is neither raises :class:`CallError`). The peer acts on it only if its terminal has
        ``remote_camera=True`` and a camera; a vcore peer reports a :class:`CameraControl` event either way.
        """
        if not 0 <= preset <= 255:
            raise CallError(f"camera preset {preset} out of range 0..255")
        if self.ended is not None:
            return
        remote = self._fecc_remote()
        if remote is not None:
            if preset > 15:
                raise CallError(f"camera preset {preset}: H.281 presets are 0..15")
            await remote.preset(preset)
            return
        self._check_legacy_peer()
        await self._session.send_user_input(camera_preset_text(preset))

    async def remote_camera_move(self, move: str = "", *, pan: Pan = Pan.NONE, tilt: Tilt = Tilt.NONE,
                                 zoom: Zoom = Zoom.NONE, focus: Focus = Focus.NONE,
                                 duration: float | None = None) -> None:
        """Move the peer's camera: ``move`` (one of :data:`CAMERA_MOVES`) nudges it for a moment (0.3 s), or
        ``pan``/``tilt``/``zoom``/``focus`` directions move it until :meth:`remote_camera_stop` (or for
        ``duration`` seconds).

        H.281 (start, continue every 0.4 s, stop) when the peer offered it; else an older vcore peer gets
        ``vcore:camera-move=MOVE`` (a single-direction nudge only). Same rules as :meth:`remote_camera_preset`.
        """
        request = check_remote_move(move, pan, tilt, zoom, focus, duration)
        if self.ended is not None:
            return
        remote = self._fecc_remote()
        if remote is not None:
            await remote.move(pan=request.pan, tilt=request.tilt, zoom=request.zoom, focus=request.focus,
                              duration=request.duration)
            return
        self._check_legacy_peer()
        await self._session.send_user_input(camera_move_text(legacy_move(move, request)))

    async def remote_camera_stop(self) -> None:
        """Stop a move of the peer's camera started with :meth:`remote_camera_move` (H.281; a nudge of an older
        vcore peer stops by itself)."""
        remote = self._fecc_remote()
        if remote is not None:
            await remote.stop()

    def _camera_event(self, event: CameraControl) -> None:
        if self.ended is None and not self._tasks.closed:
            self._tasks.spawn(self._emit(event), "camera event")

    async def announce_recording(self, recording: bool) -> None:
        """Tell the peer that this side started (True) or stopped recording the call (``vcore:recording=on``).

        A vcore peer reports a :class:`RecordingNotice` event (the kiosk shows it); others see user input.
        """
        if self.ended is None:
            await self._session.send_user_input(recording_text(recording))

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
        security = self.security()
        return self._meter.call_stats(self.peer, self._media, security, self.connected_at, now)

    # ------------------------------------------------------------ internals

    def _channel(self, direction: str, kind: str) -> MediaChannel | None:
        if self._media is None:
            return None
        return next((c for c in self._media.channels if c.direction == direction and c.format.kind == kind), None)

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
                    self._tasks.spawn(self._watch_media(), "media watch")
                elif isinstance(event, sig.ChannelOpened):
                    await self._start(event.channel)
                elif isinstance(event, sig.KeyframeRequested):
                    if self._media is not None:
                        self._media.request_keyframe(by_peer=True)
                    await self._emit(KeyframeRequested(by_peer=True))
                elif isinstance(event, sig.BitrateLimited):
                    # a peer's limit is obeyed down to a floor (a hostile "0" does not freeze the picture)
                    rate = max(_FLOW_CONTROL_FLOOR, min(event.bitrate, self.terminal.bitrate)) if event.bitrate \
                        else self.terminal.bitrate
                    if self._media is not None and self._media.video_tx is not None:
                        if self.terminal.congestion_control:
                            self._media.limit_bitrate(rate if event.bitrate else None)
                        else:
                            self._media.set_bitrate(rate)
                        await self._emit(BitrateChanged(bitrate=rate, by_peer=True))
                elif isinstance(event, sig.UserInput):
                    # a camera move takes seconds: keep the signalling flowing meanwhile
                    self._tasks.spawn(self._user_input(event.text), "user input")
                elif isinstance(event, MediaUpdated):
                    await self._renegotiated(event)
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
        if (recording := read_recording_notice(text)) is not None:
            log.info("call %s: the peer %s recording", self.peer, "started" if recording else "stopped")
            await self._emit(RecordingNotice(recording=recording))
            return
        request = read_camera_request(text)
        if request is None:
            log.debug("call %s: user input ignored", self.peer)
            return
        preset, move = request.preset, request.move
        t = self.terminal
        if not t.remote_camera or t.camera is None:
            why = "no camera" if t.camera is None else "remote camera control is off (remote_camera=False)"
            await self._emit(CameraControl(preset=preset, applied=False, detail=why, move=move))
            return
        try:
            if move:
                await nudge(t.camera, CAMERA_MOVES[move])
            else:
                await t.camera.preset_recall(preset)
        except VcoreError as exc:
            await self._emit(CameraControl(preset=preset, applied=False, detail=str(exc), move=move))
        else:
            await self._emit(CameraControl(preset=preset, applied=True, detail="moved" if move else "recalled",
                                           move=move))

    async def _start(self, ch: MediaChannel) -> None:
        if self._media is not None:
            await self._media.start_channel(ch)

    def _task_failed(self, name: str, exc: BaseException) -> None:
        """A task of the call failed (a vcore bug, not the peer; the supervisor logged it): end the call, say why."""
        if self.ended is not None or self._tasks.closed:
            return
        self._local_reason = self._local_reason or "internal-error"
        self._media_detail = f"internal error in {name}: {exc!r}"
        self._tasks.spawn(self._abort(), "hang up after a failure")

    async def _abort(self) -> None:
        try:
            await self._session.hangup("undefinedReason", Cause.TEMPORARY_FAILURE)
        finally:
            if self._pump.done() and self.ended is None:  # the event task itself failed: finish here
                await self._finish(sig.Released("undefinedReason", Cause.TEMPORARY_FAILURE, False,
                                                self._media_detail or "internal error"))

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
            if self.held:  # on hold the peer may send nothing: neither a stall nor a media timeout
                self._last_media = now
            else:
                for change in self._degraded.check(m, now):
                    await self._emit(change)
            if self.terminal.lip_sync and m.audio_jitter is not None and m.audio_rx and m.video_rx:
                _follow_lips(m.audio_jitter, m.audio_rx, m.video_rx)
            rtt = m.video_tx.rtt if m.video_tx is not None else None
            if rtt is not None and m.jitter is not None:
                m.jitter.rtt = max(rtt, 0.005)  # our path's RTT (from the peer's RRs) paces the buffer's NACKs
            failed = m.failure()
            if failed is not None:  # a media thread or task died: end the call, say why
                self._local_reason = "media-error"
                self._media_detail = failed
                log.error("call %s: %s", self.peer, failed)
                await self._session.hangup("undefinedReason", Cause.TEMPORARY_FAILURE)
                return
            if timeout and now - self._last_media > timeout:
                self._local_reason = "media-timeout"
                detail = f"no RTP or RTCP from the peer for {timeout:g} s"
                self._media_detail = detail
                await self._session.hangup("undefinedReason", Cause.RECOVERY_ON_TIMER_EXPIRY)
                return

    async def _finish(self, released: sig.Released | None) -> None:
        if self.ended is not None:
            return
        try:
            await self._tasks.aclose()  # every task of the call but this one
        finally:
            if self._media is not None:
                try:
                    await self._media.close()
                except Exception:  # a bug in a teardown must not leave the call half ended
                    log.exception("call %s: closing the media failed", self.peer)
                    self._local_reason = self._local_reason or "media-error"
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
