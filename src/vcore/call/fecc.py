"""The H.224 data channel of one call: far-end camera control (H.281) over RTP session 3.

H.323 negotiates it in H.245 (a data logical channel each way, H.323 Annex Q;
:mod:`vcore.h323.h245.control`); each RTP packet carries one H.224 frame
(RFC 4573 for the RTP carriage). :class:`DataChannel` owns the session's
:class:`~vcore.transport.RtpTransport` (its own RTP/RTCP port pair, SRTP like
audio and video, symmetric RTP with latching), a
:class:`~vcore.camera_control.FeccSession` that answers the H.224 CME and runs
H.281 both ways, and the task that hands received frames to it. The local
camera is steered by the peer only with ``Terminal(remote_camera=True)`` and a
camera; everything the peer asked is reported as a
:class:`~vcore.call.events.CameraControl` event through :attr:`DataChannel.on_event`.

Received packets are checked like media: SRTP authentication (when the
channel is protected), the negotiated payload type, and once latched the
source address. No RTCP is sent on this session (a few hundred bit/s of
camera commands need no reception statistics); the peer's is accepted and
ignored. Loop-bound.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..camera_control import (
    CameraAction,
    FarEndCamera,
    FeccSession,
    Focus,
    H281Message,
    Pan,
    Tilt,
    Zoom,
)
from ..supervisor import cancel_and_wait
from ..camera_control.h281 import ActivatePreset, StartAction, StoreAsPreset
from ..errors import VcoreError
from ..h323.fast_connect import MediaChannel
from ..h323.messages import Address
from .events import CameraControl

if TYPE_CHECKING:
    from ..srtp import SrtpSession
    from ..transport import RtpTransport
    from .terminal import Terminal

__all__ = ["DataChannel", "move_name"]

log = logging.getLogger(__name__)

_QUEUE = 64  # received H.224 frames waiting for the camera (H.281 sends a few per second)
_MOVE_NAMES = {
    (0, int(Pan.LEFT)): "left", (0, int(Pan.RIGHT)): "right", (1, int(Tilt.UP)): "up", (1, int(Tilt.DOWN)): "down",
    (2, int(Zoom.IN)): "zoom-in", (2, int(Zoom.OUT)): "zoom-out", (3, int(Focus.IN)): "focus-in",
    (3, int(Focus.OUT)): "focus-out",
}


def move_name(pan: Pan, tilt: Tilt, zoom: Zoom, focus: Focus) -> str:
    """The name a :class:`CameraControl` event gives a move: ``left``, ``zoom-in``, ``up+left``..."""
    order = ((1, tilt), (0, pan), (2, zoom), (3, focus))
    return "+".join(_MOVE_NAMES[(i, int(v))] for i, v in order if v)


class DataChannel:
    """The H.224/H.281 data channel of one call (see the module docstring)."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self.transport: RtpTransport | None = None
        self.fecc: FeccSession | None = None
        self.on_event: Callable[[CameraControl], None] | None = None  # set by the Call
        self.send_channel: MediaChannel | None = None
        self.receive_channel: MediaChannel | None = None
        self.packets_sent = 0
        self.packets_received = 0
        self.dropped = 0  # failed SRTP, another payload type, another source, or a full queue
        self._tx: SrtpSession | None = None
        self._rx: SrtpSession | None = None
        self._rx_pt: int | None = None
        self._seq = secrets.randbits(16)
        self._ssrc = secrets.randbits(32)
        self._t0 = 0.0
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(_QUEUE)
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self.closed = False

    async def open(self, bind: str, peer_host: str, announced: str) -> tuple[Address, Address]:
        """Bind the session's sockets (from ``rtp_ports``); returns the RTP and RTCP addresses to announce."""
        from ..transport import RtpTransport

        t = self.terminal
        self.transport = RtpTransport(bind, ports=t.rtp_ports, latch=True, peer_hosts={peer_host},
                                      unprotect_rtcp=self._unprotect_rtcp, name="data")
        self.transport.hold()  # until the peer's channel (and key) is known
        await self.transport.open()
        self.transport.set_rtp_handler(self._on_rtp)
        camera = None
        if t.remote_camera and t.camera is not None:
            camera = FarEndCamera(t.camera, on_action=self._on_action)
        self.fecc = FeccSession(self._send, camera=camera, on_refused=self._on_refused)
        self._t0 = asyncio.get_running_loop().time()
        self._task = asyncio.get_running_loop().create_task(self._receive(), name="H.224 receive")
        return (Address(announced, self.transport.local_rtp[1]), Address(announced, self.transport.local_rtcp[1]))

    @property
    def peer_has_h281(self) -> bool:
        """The peer announced H.281 on this channel: its camera can be steered with :attr:`remote`."""
        return self.fecc is not None and self.send_channel is not None and self.fecc.peer_has_h281

    async def start_channel(self, ch: MediaChannel) -> None:
        """A data logical channel opened (either direction)."""
        from ..srtp import SrtpSession

        tr = self.transport
        if self.closed or tr is None:
            return
        for a in (ch.remote_rtp, ch.remote_rtcp):
            if a is not None:
                tr.add_peer_host(a.host)
        tr.set_remote(rtp=(ch.remote_rtp.host, ch.remote_rtp.port) if ch.remote_rtp else None,
                      rtcp=(ch.remote_rtcp.host, ch.remote_rtcp.port) if ch.remote_rtcp else None)
        session = SrtpSession(ch.srtp.suite, ch.srtp.key_and_salt) if ch.srtp is not None else None
        if ch.direction == "receive":
            self.receive_channel, self._rx, self._rx_pt = ch, session, ch.format.payload_type
            tr.encrypted = session is not None
            tr.release()
            return
        self.send_channel, self._tx = ch, session
        if not self._started and self.fecc is not None:
            self._started = True
            await self.fecc.start()  # our H.224 clients and H.281 capabilities; ask for the peer's
        log.info("H.224 data channel %d open (%s)", ch.number, ch.suite or "plain RTP")

    async def close(self) -> None:
        """Stop the moves in progress (ours on the peer's camera, the peer's on ours), the task, the sockets."""
        if self.closed:
            return
        try:
            if self.fecc is not None:
                await self.fecc.close()
        finally:
            self.closed = True
            task, self._task = self._task, None
            if task is not None:
                await cancel_and_wait(task)
            if self.transport is not None:
                await self.transport.close()
            self._tx = self._rx = None  # the SRTP contexts do not outlive the call

    # ------------------------------------------------------------ RTP

    async def _send(self, payload: bytes) -> None:
        from ..rtp import RtpPacket

        ch, tr = self.send_channel, self.transport
        if ch is None or tr is None or self.closed:
            log.debug("H.224 frame not sent: no data channel to the peer")
            return
        elapsed = asyncio.get_running_loop().time() - self._t0
        packet = RtpPacket(payload_type=ch.format.payload_type, sequence_number=self._seq,
                           timestamp=int(elapsed * ch.format.clock_rate) & 0xFFFFFFFF, ssrc=self._ssrc,
                           payload=payload, marker=True)  # RFC 4573 §4: M set, one frame per packet
        self._seq = (self._seq + 1) & 0xFFFF
        data = packet.serialize()
        if self._tx is not None:
            data = self._tx.protect(data)
        tr.send_rtp([data])
        self.packets_sent += 1

    def _unprotect_rtcp(self, data: bytes) -> bytes:
        if self._rx is not None:
            return self._rx.unprotect_rtcp(data)
        if self.receive_channel is not None:  # a plain RTP channel
            return data
        raise VcoreError("no key for the data channel yet")

    def _on_rtp(self, data: bytes, addr: Any) -> None:
        from ..rtp import RtpPacket

        tr = self.transport
        if tr is None or self._rx_pt is None:
            self.dropped += 1
            return
        source = (addr[0], addr[1])
        try:
            plain = self._rx.unprotect(data) if self._rx is not None else data
            packet = RtpPacket.parse(plain)
        except VcoreError as exc:
            self.dropped += 1
            log.debug("data channel: packet from %s dropped: %s", source, exc)
            return
        if packet.payload_type != self._rx_pt or (tr.latched and source != tr.remote_rtp):
            self.dropped += 1
            return
        tr.latch_rtp(source)
        try:
            self._queue.put_nowait(bytes(packet.payload))
        except asyncio.QueueFull:
            self.dropped += 1
            return
        self.packets_received += 1

    async def _receive(self) -> None:
        while True:
            payload = await self._queue.get()
            if self.fecc is None:
                continue
            try:
                await self.fecc.receive(payload)
            except Exception:  # camera control is informational: a failure never ends the call
                log.exception("data channel: an H.224 frame could not be handled")

    # ------------------------------------------------------------ events

    def _report(self, event: CameraControl) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _on_action(self, a: CameraAction, error: str) -> None:
        if a.kind == "stop" and not error:
            return  # the end of a move already reported
        move = move_name(a.pan, a.tilt, a.zoom, a.focus) if a.kind in ("move", "stop") else ""
        done = {"move": "moved", "stop": "stopped", "recall": "recalled", "store": "stored"}.get(a.kind, a.kind)
        self._report(CameraControl(preset=a.preset, applied=not error and a.kind != "refuse",
                                   detail=error or done, move=move))

    def _on_refused(self, message: H281Message) -> None:
        t = self.terminal
        why = "no camera" if t.camera is None else "remote camera control is off (remote_camera=False)"
        preset = message.preset if isinstance(message, (ActivatePreset, StoreAsPreset)) else -1
        move = move_name(message.pan, message.tilt, message.zoom, message.focus) \
            if isinstance(message, StartAction) else ""
        self._report(CameraControl(preset=preset, applied=False, detail=why, move=move))
