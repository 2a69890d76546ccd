"""Call control shared by every signalling protocol: the events a session reports and the session interface.

``vcore.h323`` (and, beside it, ``vcore.sip``) turn their protocol's messages
into these events; the call layer (:mod:`vcore.call`) consumes them and drives
the session through :class:`CallControl`, and never sees a protocol message.
Pure data; the dataclasses are immutable and thread-safe.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .h323.fast_connect import MediaChannel, MediaEndpoints
    from .h323.messages import Address

__all__ = [
    "NORMAL_CALL_CLEARING",
    "CallEvent",
    "Proceeding",
    "Alerting",
    "Connected",
    "ChannelOpened",
    "ChannelClosed",
    "KeyframeRequested",
    "BitrateLimited",
    "UserInput",
    "ProtocolWarning",
    "MediaUpdated",
    "Released",
    "RefusedCall",
    "CallControl",
    "EventQueue",
]

NORMAL_CALL_CLEARING = 16  # Q.850 cause 16: normal call clearing (SIP BYE maps to it too)


@dataclass(frozen=True)
class CallEvent:
    """Base class of the events a call-control session (H.323 or SIP) reports."""


@dataclass(frozen=True)
class Proceeding(CallEvent):
    """The callee sent CallProceeding."""


@dataclass(frozen=True)
class Alerting(CallEvent):
    """The callee is ringing."""


@dataclass(frozen=True)
class Connected(CallEvent):
    """The call is active. ``channels``: the Fast Connect channels (empty when H.245 procedures follow)."""

    channels: tuple[MediaChannel, ...]
    fast_connect: bool


@dataclass(frozen=True)
class ChannelOpened(CallEvent):
    """A channel opened through H.245 procedures (OpenLogicalChannel/Ack)."""

    channel: MediaChannel


@dataclass(frozen=True)
class ChannelClosed(CallEvent):
    """The peer closed logical channel ``number`` (CloseLogicalChannel)."""

    number: int


@dataclass(frozen=True)
class KeyframeRequested(CallEvent):
    """The peer asked for a keyframe on channel ``number`` (videoFastUpdatePicture)."""

    number: int


@dataclass(frozen=True)
class BitrateLimited(CallEvent):
    """The peer's flowControlCommand: ``bitrate`` in bit/s (None: no limit) on ``number`` (None: all)."""

    bitrate: int | None
    number: int | None


@dataclass(frozen=True)
class UserInput(CallEvent):
    """The peer's UserInputIndication, alphanumeric (H.245 §7.16.2): keys pressed, or an application's string."""

    text: str


@dataclass(frozen=True)
class ProtocolWarning(CallEvent):
    """Something the peer sent was ignored (unknown message type, undecodable H.245, ...)."""

    detail: str


@dataclass(frozen=True)
class MediaUpdated(CallEvent):
    """The call's media was renegotiated mid-call (a SIP re-INVITE, RFC 3264 §8): hold, resume, a move.

    ``targets``: per media session (1 audio, 2 video) the peer's RTP and RTCP addresses to send to, or
    ``None`` for both when we must not send (the peer holds the call: ``sendonly``, ``inactive``, or the
    RFC 2543 ``c=0.0.0.0``). ``held``: the peer holds the call; ``by_peer``: the peer's offer (False: the
    answer to our own hold or resume).
    """

    targets: tuple[tuple[int, Address | None, Address | None], ...]
    held: bool
    by_peer: bool = True


@dataclass(frozen=True)
class Released(CallEvent):
    """The call ended; always the last event.

    ``reason``: the H.225.0 ReleaseCompleteReason name when a ReleaseComplete
    was exchanged (``securityDenied``, ``destinationRejection``,
    ``undefinedReason``, ...), else one of vcore's: ``timeout``,
    ``peerClosed``, ``protocolError``, ``tlsFailure``, ``connectionFailed``.
    ``cause``: the Q.850 cause (if any); ``by_peer``: who ended the call.
    """

    reason: str
    cause: int | None
    by_peer: bool
    detail: str

    @property
    def normal(self) -> bool:
        """True for an ordinary hang-up (Q.850 cause 16, normal call clearing)."""
        return self.cause == NORMAL_CALL_CLEARING


@dataclass(frozen=True)
class RefusedCall:
    """A connection a listener refused before any call existed (kept in ``SignallingListener.refused``)."""

    peer: str
    name: str | None
    reason: str
    detail: str


@runtime_checkable
class CallControl(Protocol):
    """What the call layer needs of a signalling session, whatever the protocol.

    Implemented by :class:`vcore.h323.CallSession` (and the SIP session).
    Events come from ``next_event``/``async for``; :class:`Released` is always
    the last one. ``number`` arguments name a channel (``MediaChannel.number``).
    """

    @property
    def peer_name(self) -> str | None: ...

    @property
    def local_host(self) -> str: ...

    @property
    def peer_host(self) -> str: ...

    call_reference: int
    """A small number naming the call in logs (the Q.931 call reference, or one derived from the SIP Call-ID)."""
    released: Released | None
    """The :class:`Released` event once the call has ended, else None."""
    remote_aliases: tuple[str, ...]
    """The peer's aliases (H.323 aliases, or the SIP URI's user part and URI)."""
    remote_display: str | None
    """The peer's display name as it sent it (lenient decode), if any."""
    remote_product: bytes | None
    """The peer's product identification (H.225.0 productId, SIP User-Agent/Server); ``b"vcore"`` for vcore."""

    def security(self) -> dict[str, Any]: ...

    def __aiter__(self) -> AsyncIterator[CallEvent]: ...

    async def next_event(self, timeout: float | None = None) -> CallEvent: ...

    async def alert(self) -> None: ...

    async def answer(self, endpoints: MediaEndpoints) -> list[MediaChannel]: ...

    async def reject(self, reason: str = ..., cause: int = ...) -> None: ...

    async def hangup(self, reason: str = ..., cause: int = ...) -> None: ...

    async def request_keyframe(self, number: int) -> None: ...

    async def limit_bitrate(self, bitrate: int | None, number: int | None = None) -> None: ...

    async def send_user_input(self, text: str) -> None: ...


class EventQueue:
    """The event side of a session, shared by the H.323 and SIP sessions: a queue ending with :class:`Released`.

    A subclass creates ``self._events`` and sets ``self.released`` once the call is over; ``_event_timeout``
    is the exception its :meth:`next_event` raises on a timeout (the protocol's own timeout error).
    """

    _events: asyncio.Queue[CallEvent]
    released: Released | None
    _event_timeout: type[Exception] = TimeoutError

    def __aiter__(self) -> EventQueue:
        return self

    async def __anext__(self) -> CallEvent:
        if self.released is not None and self._events.empty():
            raise StopAsyncIteration
        return await self._events.get()

    async def next_event(self, timeout: float | None = None) -> CallEvent:
        """The next event; raises ``_event_timeout`` after ``timeout`` seconds.

        Once the call is released and every event consumed, returns the :class:`Released` event again.
        """
        if self.released is not None and self._events.empty():
            return self.released
        try:
            return await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            raise self._event_timeout(f"no call event within {timeout} s") from None
