"""One call's H.224 data channel: CME exchanges, H.281 both ways, on top of RTP payloads.

:class:`FeccSession` is what the call layer plugs between the RTP data
stream (one H.224 frame per RTP packet, either direction) and the cameras:

* received payloads go to :meth:`FeccSession.receive`: CME commands are
  answered (client list, H.281 extra capabilities), the peer's client list
  and capabilities are remembered, H.281 messages drive the local
  :class:`~vcore.camera_control.far_end.FarEndCamera` (when the terminal lets
  the peer steer its camera);
* :attr:`FeccSession.remote` steers the peer's camera.

A malformed frame is logged and counted, never raised: camera control is
informational and must not fail a call. Loop-bound; no I/O of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ..errors import ParseError
from .far_end import FarEndCamera, RemoteCamera
from .h224 import (
    CLIENT_CME,
    CLIENT_H281,
    H323PLUS_MAX_ONES,
    ClientList,
    ClientListCommand,
    ExtraCapabilities,
    ExtraCapabilitiesCommand,
    H224Frame,
    encode_rtp_payload,
    longest_ones_run,
    parse_cme,
    parse_rtp_payload,
)
from .h281 import (
    MAIN_CAMERA,
    ContinueAction,
    H281Capabilities,
    H281Message,
    StopAction,
    VideoSource,
    parse_h281,
)

__all__ = ["FeccSession", "camera_capabilities"]

log = logging.getLogger(__name__)


def camera_capabilities(*, presets: int = 6, controllable: bool = True) -> H281Capabilities:
    """The H.281 extra capabilities of a terminal with one VISCA main camera (``controllable``: PTZF)."""
    main = VideoSource(MAIN_CAMERA, motion=True, pan=controllable, tilt=controllable, zoom=controllable,
                       focus=controllable)
    return H281Capabilities(presets=presets if controllable else 0, sources=(main,))


class FeccSession:
    """The H.224/H.281 endpoint of one call (see the module docstring).

    ``send`` puts one RTP payload on the data channel (the caller adds the RTP
    header, SRTP and the marker bit). ``hdlc``: how to frame what we send
    (H.245 ``hdlcFrameTunnelling``, as H323Plus); it follows the peer's framing once
    the peer sent a frame. ``camera``: the local camera the peer may steer (None: refuse).
    ``on_refused``: told of each request refused for want of ``camera`` (a start or
    a preset, not the continues and stops that follow), for the call's events.
    """

    def __init__(self, send: Callable[[bytes], Awaitable[None]], *, hdlc: bool = True,
                 camera: FarEndCamera | None = None, capabilities: H281Capabilities | None = None,
                 on_refused: Callable[[H281Message], None] | None = None) -> None:
        self._send = send
        self.hdlc = hdlc
        self.camera = camera
        self.on_refused = on_refused
        self.capabilities = capabilities or camera_capabilities(controllable=camera is not None)
        self.peer_clients: ClientList | None = None
        self.peer_capabilities: H281Capabilities | None = None
        self.malformed = 0
        self.remote = RemoteCamera(self._send_h281)

    @property
    def peer_has_h281(self) -> bool:
        """The peer listed the H.281 client (or sent H.281 capabilities): speak H.281 to it."""
        return self.peer_capabilities is not None or (self.peer_clients is not None
                                                       and self.peer_clients.has(CLIENT_H281))

    async def start(self) -> None:
        """Announce our clients and capabilities, and ask the peer for its own (H.224 CME)."""
        await self._send_cme(ClientList(((CLIENT_H281, True),)).encode())
        await self._send_cme(ExtraCapabilities(CLIENT_H281, self.capabilities.encode()).encode())
        await self._send_cme(ClientListCommand().encode())
        await self._send_cme(ExtraCapabilitiesCommand(CLIENT_H281).encode())

    async def close(self) -> None:
        """Stop the remote move in progress and the local camera's (idempotent)."""
        await self.remote.close()
        if self.camera is not None:
            await self.camera.close()

    async def receive(self, payload: bytes) -> None:
        """Handle one RTP payload of the data channel."""
        try:
            frame, hdlc = parse_rtp_payload(payload)
            if frame.client_id == CLIENT_CME:
                await self._on_cme(frame)
            elif frame.client_id == CLIENT_H281:
                if not (frame.begin and frame.end):
                    raise ParseError("segmented H.281 frame (H.281 messages fit one frame)")
                await self._on_h281(parse_h281(frame.data))
            else:
                log.debug("H.224 frame for client %#04x ignored", frame.client_id)
                return
        except ParseError as exc:
            self.malformed += 1
            log.warning("H.224 frame ignored: %s", exc)
            return
        self.hdlc = hdlc

    async def _on_cme(self, frame: H224Frame) -> None:
        if not (frame.begin and frame.end):
            raise ParseError("segmented CME frame (vcore does not reassemble CME messages)")
        msg = parse_cme(frame.data)
        if isinstance(msg, ClientList):
            self.peer_clients = msg
        elif isinstance(msg, ClientListCommand):
            await self._send_cme(ClientList(((CLIENT_H281, True),)).encode())
        elif isinstance(msg, ExtraCapabilitiesCommand):
            if msg.client in (0, CLIENT_H281):
                await self._send_cme(ExtraCapabilities(CLIENT_H281, self.capabilities.encode()).encode())
        elif msg.client == CLIENT_H281:
            self.peer_capabilities = H281Capabilities.parse(msg.data)

    async def _on_h281(self, message: H281Message) -> None:
        if self.camera is None:
            if isinstance(message, (ContinueAction, StopAction)):
                return
            log.info("H.281 %s from the peer refused: no camera control on this terminal", type(message).__name__)
            if self.on_refused is not None:
                self.on_refused(message)
            return
        await self.camera.handle(message)

    async def _send_cme(self, data: bytes) -> None:
        await self._send(encode_rtp_payload(self._frame(CLIENT_CME, data), hdlc=self.hdlc))

    async def _send_h281(self, message: H281Message) -> None:
        await self._send(encode_rtp_payload(self._frame(CLIENT_H281, message.encode()), hdlc=self.hdlc))

    def _frame(self, client: int, data: bytes) -> H224Frame:
        """High priority, as H323Plus sends; normal priority when that dodges H323Plus's HDLC decoder bug.

        The Q.922 address changes the FCS, so one of the two priorities usually keeps every run of ones
        short enough for H323Plus (``h224.longest_ones_run``), e.g. a continue action with all four directions.
        """
        frame = H224Frame(client, data, high_priority=True)
        if self.hdlc and longest_ones_run(frame.encode()) > H323PLUS_MAX_ONES:
            other = H224Frame(client, data, high_priority=False)
            if longest_ones_run(other.encode()) <= H323PLUS_MAX_ONES:
                return other
        return frame
