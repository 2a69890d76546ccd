"""H.225.0 call signalling over TCP or mutual TLS, with tunnelled H.245 (asyncio).

One :class:`CallSession` is one call on one signalling connection (H.225.0
§7.1, TPKT + Q.931 + H.225.0 UUIEs). It runs a small Q.931 state machine
(Q.931 §5 as profiled by H.225.0 §7.3/H.323 §8):

caller: ``call_initiated`` -> ``outgoing_proceeding`` -> ``call_delivered``
-> ``active`` -> ``released``; callee: ``call_present`` -> ``incoming_proceeding``
-> ``call_received`` -> ``active`` -> ``released``.

Media is negotiated with Fast Connect (H.323 §8.1.7) when both ends agree,
otherwise with tunnelled H.245 procedures (H.323 §8.2.1: TerminalCapabilitySet,
MasterSlaveDetermination, OpenLogicalChannel). The session carries no media:
it reports :class:`~vcore.h323.fast_connect.MediaChannel` values in its events.

Every failure ends in one :class:`Released` event with a clear ``reason``
and the connection closed: the peer's ReleaseComplete (its H.225.0 reason
and Q.850 cause), a timeout, the peer closing TCP, malformed signalling, or
a TLS/allow-list refusal. Tunnelled H.245 that cannot be decoded is reported
(:class:`ProtocolWarning`) and ignored, so that a peer's exotic H.245 does not
kill a call; malformed TPKT/Q.931/H.225.0 releases the call.

Sessions and listeners are asyncio objects: use them from one event loop,
not from several threads. Every task a session or listener starts, it owns
and cancels on close. Keys are never logged.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import secrets
import socket
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from .. import pki
from ..callcontrol import (
    Alerting,
    BitrateLimited,
    CallEvent,
    ChannelClosed,
    ChannelOpened,
    Connected,
    KeyframeRequested,
    Proceeding,
    ProtocolWarning,
    RefusedCall,
    Released,
    UserInput,
)
from ..supervisor import Supervisor
from ..transport.addresses import unmap
from . import asn1
from .errors import (
    CallRefused,
    PeerClosed,
    SecurityError,
    SignallingError,
    SignallingParseError,
    SignallingTimeout,
)
from .fast_connect import (
    PLAINTEXT,
    FastConnectOffer,
    MediaChannel,
    MediaEndpoints,
    MediaPolicy,
    accept_answer,
    answer_offer,
    choose_transmit,
    decode_proposals,
    encode_proposals,
    make_offer,
)
from .keys import SrtpKeyMaterial
from .messages import (
    DEFAULT_FORMATS,
    RELEASE_REASONS,
    Address,
    H245Pdu,
    OpenChannel,
    UserInformation,
    alerting_uuie,
    call_proceeding_uuie,
    close_logical_channel,
    close_logical_channel_ack,
    connect_uuie,
    encode_h245,
    end_session_command,
    flow_control_command,
    function_not_understood,
    master_slave_determination,
    master_slave_determination_ack,
    master_slave_determination_reject,
    msd_decision,
    open_logical_channel_ack,
    open_logical_channel_pdu,
    open_logical_channel_reject,
    parse_capabilities,
    parse_h245,
    parse_open_logical_channel,
    parse_user_information,
    release_complete_uuie,
    round_trip_delay_response,
    setup_uuie,
    terminal_capability_set,
    terminal_capability_set_ack,
    user_information,
    user_input_indication,
    video_fast_update_picture,
)
from .q931 import (
    IE,
    Cause,
    InformationElement,
    MessageType,
    Q931Message,
    bearer_capability_ie,
    call_state_ie,
    cause_ie,
    display_ie,
    party_number_ie,
    user_user_ie,
)
from .tpkt import TpktDecoder, encode_tpkt

__all__ = [
    "H225_PORT",
    "H225_TLS_PORT",
    "CallState",
    "SignallingConfig",
    "CallEvent",
    "Proceeding",
    "Alerting",
    "Connected",
    "ChannelOpened",
    "ChannelClosed",
    "KeyframeRequested",
    "BitrateLimited",
    "ProtocolWarning",
    "UserInput",
    "Released",
    "RefusedCall",
    "CallSession",
    "SignallingListener",
    "place_call",
]

log = logging.getLogger(__name__)

H225_PORT = 1720  # H.225.0 §7.1 call signalling
H225_TLS_PORT = 1300  # H.235.0 §10.1 / H.323 Annex: TLS-protected call signalling
_TERMINAL_TYPE = 50  # H.323 Table 1: terminal without MC
_READ_SIZE = 65536


class CallState(enum.Enum):
    """Q.931 call states (Q.931 §2.1) a vcore session goes through."""

    CALL_INITIATED = 1
    OUTGOING_PROCEEDING = 3
    CALL_DELIVERED = 4
    CALL_PRESENT = 6
    CALL_RECEIVED = 7
    INCOMING_PROCEEDING = 9
    ACTIVE = 10
    RELEASED = 0


@dataclass(frozen=True)
class SignallingConfig:
    """A terminal's signalling settings.

    ``alias``: this terminal's H.323 alias (h323-ID, or dialledDigits when
    numeric). ``policy``: codecs and SRTP suites. ``allow_list``: caller names
    (TLS certificate CN) a callee accepts; None accepts every certificate that
    chains to the trust anchors. ``allow_plaintext_signalling``: permit TCP
    without TLS (never implied). ``fast_connect``: offer/accept Fast Connect.
    Timeouts in seconds: ``setup_timeout`` for the first answer to Setup (and
    for the Setup itself on an accepted connection), ``answer_timeout`` from
    Alerting/CallProceeding to Connect, ``tls_timeout`` for the handshake.
    Over TLS a caller's certificate must hold (``h323:`` subjectAltName) every
    alias its Setup claims, and without an allow-list its role (subject OU)
    must be in ``accept_roles`` (None: any role). ``legacy_certificates``:
    accept certificates issued before aliases (no ``h323:`` name; logged).
    """

    alias: str
    policy: MediaPolicy = field(default_factory=lambda: MediaPolicy(DEFAULT_FORMATS))
    allow_list: frozenset[str] | None = None
    allow_plaintext_signalling: bool = False
    fast_connect: bool = True
    setup_timeout: float = 10.0
    answer_timeout: float = 180.0
    tls_timeout: float = 10.0
    display_name: str | None = None
    accept_roles: frozenset[str] | None = None
    legacy_certificates: bool = False


# --------------------------------------------------------------------------- connection


_REFUSED_KEPT = 256  # refusals a listener remembers (the newest)
_CLOSE_TIMEOUT = 2.0  # s: the most a hang-up waits for the peer to close its side (TLS close_notify)


class _Connection:
    """TPKT-framed Q.931 over an asyncio stream pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._decoder = TpktDecoder()
        self._pending: deque[bytes] = deque()
        self.closed = False
        _keepalive(writer.get_extra_info("socket"))

    @property
    def peer(self) -> str:
        info = self.writer.get_extra_info("peername")
        return f"{info[0]}:{info[1]}" if info else "?"

    @property
    def tls(self) -> bool:
        return self.writer.get_extra_info("ssl_object") is not None

    @property
    def local_host(self) -> str:
        """This end's IP address on the connection (the address the peer reaches us at)."""
        info = self.writer.get_extra_info("sockname")
        return unmap(str(info[0])) if info else ""

    @property
    def peer_host(self) -> str:
        """The peer's IP address on the connection."""
        info = self.writer.get_extra_info("peername")
        return unmap(str(info[0])) if info else ""

    @property
    def peer_name(self) -> str | None:
        return pki.peer_common_name(self.writer.get_extra_info("ssl_object"))

    async def send(self, message: Q931Message) -> None:
        if self.closed:
            raise PeerClosed("the signalling connection is closed")
        try:
            self.writer.write(encode_tpkt(message.encode()))
            await self.writer.drain()
        except (OSError, ssl.SSLError, RuntimeError) as exc:  # RuntimeError: writing to a closing transport
            raise PeerClosed(f"cannot send on the signalling connection: {exc}") from None

    async def receive(self) -> Q931Message:
        while not self._pending:
            data = await self.reader.read(_READ_SIZE)
            if not data:
                raise PeerClosed("the peer closed the signalling connection")
            self._pending.extend(self._decoder.feed(data))
        return Q931Message.parse(self._pending.popleft())

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.writer.close()
        try:
            # a frozen peer never answers TLS close_notify: asyncio would wait 30 s for it, holding the station
            await asyncio.wait_for(self.writer.wait_closed(), _CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            self.writer.transport.abort()
        except (OSError, ssl.SSLError):
            pass


def _keepalive(sock: Any) -> None:
    """TCP keep-alive so a peer that vanished mid-call (no FIN, no RST) is noticed within about a minute."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError as exc:  # pragma: no cover - exotic platforms
        log.debug("cannot enable TCP keep-alive: %s", exc)


# --------------------------------------------------------------------------- the call


class CallSession:
    """One call's signalling. Create with :func:`place_call` or get from :meth:`SignallingListener.accept`.

    Iterate (``async for event in session``) or ``await next_event()`` to
    follow the call; the last event is always :class:`Released`.
    """

    def __init__(self, conn: _Connection, config: SignallingConfig, *, caller: bool, call_reference: int,
                 call_id: bytes, conference_id: bytes, endpoints: MediaEndpoints | None = None) -> None:
        self._conn = conn
        self.config = config
        self.caller = caller
        self.call_reference = call_reference
        self.call_id = call_id
        self.conference_id = conference_id
        self.state = CallState.CALL_INITIATED if caller else CallState.CALL_PRESENT
        self.remote_aliases: tuple[str, ...] = ()
        self.remote_display: str | None = None
        self.remote_product: bytes | None = None  # the peer's H.225.0 productId (b"vcore" for a vcore peer)
        self.channels: list[MediaChannel] = []
        self.released: Released | None = None
        self.fast_connect = False
        self._endpoints: MediaEndpoints | None = endpoints
        self._events: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._deadline: float | None = None
        self._deadline_what = ""
        self._offer: FastConnectOffer | None = None
        self._proposals: list[OpenChannel] = []  # callee: the caller's fastStart
        self._fast_start_done = False
        self._h245_out: list[bytes] = []
        self._tcs_sequence = 0
        self._msd_number = secrets.randbits(24)
        self._msd_state = "idle"  # H.245 §8.2 MSDSE: idle, outgoing, incoming, done
        self.msd_status: str | None = None  # "master" or "slave" once determined
        self._peer_formats: tuple[Any, ...] | None = None
        self._peer_suites: tuple[str, ...] = ()
        self._h245_opened = False
        self._pending_olc: dict[int, OpenChannel] = {}
        self._next_channel = 64 if caller else 96

    # ---------------------------------------------------------------- public

    def __repr__(self) -> str:
        role = "caller" if self.caller else "callee"
        return f"<CallSession {role} crv={self.call_reference} state={self.state.name} peer={self._conn.peer}>"

    @property
    def peer_name(self) -> str | None:
        """The peer's TLS certificate CN (None on plaintext signalling)."""
        return self._conn.peer_name

    @property
    def local_host(self) -> str:
        """This terminal's IP address on the signalling connection (what it announces for media by default)."""
        return self._conn.local_host

    @property
    def peer_host(self) -> str:
        """The peer's IP address on the signalling connection."""
        return self._conn.peer_host

    @property
    def signalling_encrypted(self) -> bool:
        return self._conn.tls

    @property
    def media_encrypted(self) -> bool:
        """True when every negotiated channel is SRTP (False if any runs plain RTP)."""
        return all(c.encrypted for c in self.channels)

    def security(self) -> dict[str, Any]:
        """A summary for the call's statistics: what is protected and how (never the keys)."""
        return {
            "signalling": "tls" if self.signalling_encrypted else "plaintext",
            "peer_certificate": self.peer_name,
            # SRTP keys travel in H.245, tunnelled in the signalling: only TLS keeps them secret
            "srtp_keys": "tls-protected" if self.signalling_encrypted else "exposed (plaintext signalling)",
            "media": [
                {"direction": c.direction, "codec": c.format.name, "session": c.session_id,
                 "srtp": c.suite or "plaintext"}
                for c in self.channels
            ],
        }

    def __aiter__(self) -> CallSession:
        return self

    async def __anext__(self) -> CallEvent:
        if self.released is not None and self._events.empty():
            raise StopAsyncIteration
        return await self._events.get()

    async def next_event(self, timeout: float | None = None) -> CallEvent:
        """The next event; raises :class:`SignallingTimeout` after ``timeout`` seconds.

        Once the call is released and every event consumed, returns the :class:`Released` event again.
        """
        if self.released is not None and self._events.empty():
            return self.released
        try:
            return await asyncio.wait_for(self._events.get(), timeout)
        except asyncio.TimeoutError:
            raise SignallingTimeout(f"no call event within {timeout} s") from None

    async def wait_connected(self, timeout: float | None = None) -> Connected:
        """Wait for :class:`Connected`; raises :class:`CallRefused` if the call is released first."""
        while True:
            event = await self.next_event(timeout)
            if isinstance(event, Connected):
                return event
            if isinstance(event, Released):
                raise CallRefused(f"call released: {event.reason} ({event.detail})", event.reason, event.cause)

    async def alert(self) -> None:
        """Callee: send Alerting (the terminal is ringing)."""
        self._require_callee(CallState.INCOMING_PROCEEDING)
        await self._send(MessageType.ALERTING, "alerting", alerting_uuie(call_id=self.call_id))
        self.state = CallState.CALL_RECEIVED

    async def answer(self, endpoints: MediaEndpoints) -> list[MediaChannel]:
        """Callee: accept the call; ``endpoints`` are where this terminal receives RTP/RTCP per session.

        Returns the Fast Connect channels (empty when H.245 procedures follow;
        their channels arrive as :class:`ChannelOpened` events).
        """
        self._require_callee(CallState.INCOMING_PROCEEDING, CallState.CALL_RECEIVED)
        self._endpoints = dict(endpoints)
        fast_start: list[bytes] | None = None
        refused = False
        if self._proposals:
            answers: list[OpenChannel] = []
            channels: list[MediaChannel] = []
            if self.config.fast_connect:
                try:
                    answers, channels = answer_offer(self._proposals, self.config.policy, self._endpoints)
                except SecurityError as exc:
                    log.warning("refusing Fast Connect: %s", exc)
            if answers:
                fast_start = encode_proposals(answers)
                self.channels.extend(channels)
                self.fast_connect = True
            else:
                refused = True
        self._fast_start_done = True
        self.state = CallState.ACTIVE
        self._deadline = None
        if not self.fast_connect:
            self._maybe_open_channels()
        body = connect_uuie(call_id=self.call_id, conference_id=self.conference_id, fast_start=fast_start,
                            fast_connect_refused=refused)
        extra = [display_ie(self.config.display_name)] if self.config.display_name else []
        await self._send(MessageType.CONNECT, "connect", body, extra)
        await self._emit(Connected(tuple(self.channels), self.fast_connect))
        return list(self.channels)

    async def reject(self, reason: str = "destinationRejection", cause: int = Cause.CALL_REJECTED) -> None:
        """Callee: refuse the call with a ReleaseComplete (H.225.0 reason, Q.850 cause)."""
        await self.hangup(reason, cause)

    async def hangup(self, reason: str = "undefinedReason", cause: int = Cause.NORMAL_CALL_CLEARING) -> None:
        """End the call (EndSessionCommand + ReleaseComplete) and close the connection. Idempotent."""
        if reason not in RELEASE_REASONS:
            raise SignallingError(f"unknown release reason {reason!r}")
        if self.released is None:
            await self._release(reason, cause, f"released locally ({reason})", by_peer=False, send=True)
        await self._stop_reader()

    async def close(self) -> None:
        """Same as :meth:`hangup` with the default reason."""
        await self.hangup()

    async def __aenter__(self) -> CallSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request_keyframe(self, number: int) -> None:
        """Ask the peer for a keyframe on its video channel ``number`` (videoFastUpdatePicture)."""
        await self._send_h245([encode_h245(video_fast_update_picture(number))])

    async def limit_bitrate(self, bitrate: int | None, number: int | None = None) -> None:
        """Ask the peer to send at most ``bitrate`` bit/s (flowControlCommand); None lifts the limit."""
        await self._send_h245([encode_h245(flow_control_command(bitrate, number))])

    async def send_user_input(self, text: str) -> None:
        """Send a UserInputIndication with an alphanumeric string (H.245 §7.16.2)."""
        await self._send_h245([encode_h245(user_input_indication(text))])

    async def close_channel(self, number: int) -> None:
        """Close one of our send channels (CloseLogicalChannel)."""
        self.channels = [c for c in self.channels if not (c.direction == "send" and c.number == number)]
        await self._send_h245([encode_h245(close_logical_channel(number))])

    # ---------------------------------------------------------------- internals

    def _require_callee(self, *states: CallState) -> None:
        if self.caller:
            raise SignallingError("only the callee can do this")
        if self.state not in states:
            raise SignallingError(f"not possible in state {self.state.name.lower()}")

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"h225-{self.call_reference}")

    def _set_deadline(self, seconds: float, what: str) -> None:
        self._deadline = asyncio.get_running_loop().time() + seconds
        self._deadline_what = what

    async def _emit(self, event: CallEvent) -> None:
        await self._events.put(event)

    async def _send(self, message_type: MessageType, body_name: str, body: Any,
                    extra: Sequence[InformationElement] = (), h245: Sequence[bytes] = ()) -> None:
        control = list(self._h245_out) + list(h245)
        self._h245_out.clear()
        uuie = asn1.encode_uuie(user_information(body_name, body, tunnelling=True, h245_control=control))
        elements = sorted([*extra, user_user_ie(uuie)], key=lambda ie: ie.identifier)
        message = Q931Message(message_type, self.call_reference, not self.caller, tuple(elements))
        log.debug("send %s crv=%d (%d H.245)", message.name, self.call_reference, len(control))
        await self._conn.send(message)

    async def _send_h245(self, pdus: Sequence[bytes]) -> None:
        if self.released is not None:
            raise SignallingError("the call is released")
        self._h245_out.extend(pdus)
        await self._flush_h245()

    async def _flush_h245(self) -> None:
        if self._h245_out and self.released is None:
            await self._send(MessageType.FACILITY, "empty", 0)

    async def _send_status(self, cause: int) -> None:
        elements = (cause_ie(cause), call_state_ie(self.state.value))
        await self._conn.send(Q931Message(MessageType.STATUS, self.call_reference, not self.caller, elements))

    async def _release(self, reason: str, cause: int | None, detail: str, *, by_peer: bool, send: bool) -> None:
        if self.released is not None:
            return
        event = Released(reason, cause, by_peer, detail)
        self.released = event
        self.state = CallState.RELEASED
        if send and not self._conn.closed:
            wire_reason = reason if reason in RELEASE_REASONS else "undefinedReason"
            elements = [cause_ie(cause if cause is not None else Cause.NORMAL_UNSPECIFIED)]
            try:
                uuie = asn1.encode_uuie(user_information(
                    "releaseComplete", release_complete_uuie(call_id=self.call_id, reason=wire_reason),
                    h245_control=[encode_h245(end_session_command())]))
                elements.append(user_user_ie(uuie))
                await self._conn.send(Q931Message(MessageType.RELEASE_COMPLETE, self.call_reference,
                                                  not self.caller, tuple(elements)))
            except (OSError, ssl.SSLError, SignallingError) as exc:
                log.debug("could not send ReleaseComplete: %s", exc)
        log.info("call %d released: %s (cause %s, %s)", self.call_reference, reason, cause, detail)
        await self._conn.close()
        await self._emit(event)

    async def _stop_reader(self) -> None:
        task = self._task
        if task is not None and task is not asyncio.current_task():
            if not task.done():
                task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.released is None:
                timeout = None if self._deadline is None else max(self._deadline - loop.time(), 0.0)
                try:
                    message = await asyncio.wait_for(self._conn.receive(), timeout)
                except asyncio.TimeoutError:
                    cause = Cause.NO_ANSWER if self.state is CallState.CALL_DELIVERED else \
                        Cause.RECOVERY_ON_TIMER_EXPIRY
                    await self._release("timeout", cause, f"no {self._deadline_what} within the timeout",
                                        by_peer=False, send=True)
                    break
                await self._handle(message)
        except PeerClosed as exc:
            if await self._released_meanwhile():
                return
            if self.caller and self._conn.tls and self.state is CallState.CALL_INITIATED:
                # TLS 1.3: the server checks our certificate after our handshake completed, then drops us.
                await self._release("tlsFailure", None, "the peer closed the TLS connection without answering "
                                    "Setup (is this terminal's certificate trusted there?)", by_peer=True, send=False)
            else:
                await self._release("peerClosed", None, str(exc), by_peer=True, send=False)
        except SignallingParseError as exc:
            await self._release("protocolError", Cause.INVALID_MESSAGE, f"malformed signalling: {exc}",
                                by_peer=False, send=True)
        except SecurityError as exc:
            await self._release("securityDenied", Cause.CALL_REJECTED, str(exc), by_peer=False, send=True)
        except SignallingError as exc:
            await self._release("protocolError", Cause.PROTOCOL_ERROR, str(exc), by_peer=False, send=True)
        except ssl.SSLError as exc:
            await self._release("tlsFailure", None, f"TLS failure: {exc.reason or exc}", by_peer=True, send=False)
        except (ConnectionError, OSError) as exc:
            await self._release("peerClosed", None, f"connection lost: {exc}", by_peer=True, send=False)
        except Exception as exc:  # never leave a call half-alive on a message nobody anticipated
            log.exception("call %d: unexpected failure handling the peer's signalling", self.call_reference)
            await self._release("protocolError", Cause.PROTOCOL_ERROR,
                                f"unexpected failure handling the peer's signalling: {exc!r}", by_peer=False,
                                send=True)

    async def _released_meanwhile(self) -> bool:
        """The connection failed (often a send, after the peer closed): its ReleaseComplete may still be unread.

        A station turned us away as busy and closed at once; our reply to its CallProceeding failed before we
        read its ReleaseComplete. Read what is buffered (briefly) so the call ends with the peer's reason.
        """
        try:
            while self.released is None:
                await self._handle(await asyncio.wait_for(self._conn.receive(), _CLOSE_TIMEOUT / 4))
        except (PeerClosed, asyncio.TimeoutError, SignallingError, OSError, ssl.SSLError):
            pass
        return self.released is not None

    async def _handle(self, message: Q931Message) -> None:
        log.debug("recv %s crv=%d", message.name, message.call_reference)
        if message.call_reference != self.call_reference or message.from_destination == (not self.caller):
            await self._emit(ProtocolWarning(f"{message.name} for another call reference ignored"))
            return
        if not message.known_type:
            await self._send_status(Cause.MESSAGE_TYPE_NONEXISTENT)
            await self._emit(ProtocolWarning(f"unknown Q.931 message type {message.name} answered with Status"))
            return
        mtype = MessageType(message.message_type)
        if mtype is MessageType.STATUS_ENQUIRY:
            await self._send_status(30)  # Q.850 30: response to STATUS ENQUIRY
            return
        if mtype is MessageType.STATUS:
            log.debug("peer status: cause %s", message.cause)
            return
        raw = message.user_user
        info = parse_user_information(raw) if raw is not None else None
        if mtype is MessageType.RELEASE_COMPLETE:
            reason = info.release_reason if info is not None else None
            cause = message.cause
            name = reason or "undefinedReason"
            await self._release(name, cause, f"peer released the call: {name}, cause {cause}", by_peer=True,
                                send=False)
            return
        if info is None:
            if mtype in (MessageType.SETUP, MessageType.CONNECT):
                raise SignallingParseError(f"{message.name} without the H.225.0 User-user IE")
            return
        expected = {
            MessageType.CALL_PROCEEDING: "callProceeding", MessageType.ALERTING: "alerting",
            MessageType.CONNECT: "connect", MessageType.SETUP: "setup",
        }.get(mtype)
        if expected is not None and info.body != expected:
            raise SignallingParseError(f"{message.name} carries a {info.body} UUIE")
        if self.caller:
            await self._caller_message(mtype, info)
        else:
            await self._callee_message(mtype, info)
        if self.released is None:
            await self._tunnelled(info)
            await self._flush_h245()

    async def _caller_message(self, mtype: MessageType, info: UserInformation) -> None:
        if mtype in (MessageType.CALL_PROCEEDING, MessageType.ALERTING, MessageType.CONNECT) and info.product:
            self.remote_product = info.product
        if mtype in (MessageType.CALL_PROCEEDING, MessageType.ALERTING, MessageType.CONNECT,
                     MessageType.FACILITY, MessageType.PROGRESS) and info.fast_start and not self._fast_start_done:
            self._accept_fast_start(info.fast_start)
        if mtype is MessageType.CALL_PROCEEDING and self.state is CallState.CALL_INITIATED:
            self.state = CallState.OUTGOING_PROCEEDING
            self._set_deadline(self.config.answer_timeout, "Connect")
            await self._emit(Proceeding())
        elif mtype is MessageType.ALERTING and self.state in (CallState.CALL_INITIATED,
                                                               CallState.OUTGOING_PROCEEDING):
            self.state = CallState.CALL_DELIVERED
            self._set_deadline(self.config.answer_timeout, "Connect")
            await self._emit(Alerting())
        elif mtype is MessageType.CONNECT and self.state is not CallState.ACTIVE:
            self.state = CallState.ACTIVE
            self._deadline = None
            self._fast_start_done = True
            if info.fast_connect_refused or not self.fast_connect:
                self.fast_connect = False
                self.channels = []
            await self._emit(Connected(tuple(self.channels), self.fast_connect))
            if not self.fast_connect:
                self._maybe_open_channels()
        elif mtype is MessageType.SETUP:
            await self._send_status(Cause.MESSAGE_NOT_COMPATIBLE_WITH_STATE)

    def _accept_fast_start(self, items: Sequence[bytes]) -> None:
        assert self._offer is not None
        answers = decode_proposals(items)
        self.channels = accept_answer(self._offer, answers)  # SecurityError releases the call
        self.fast_connect = bool(self.channels)
        self._fast_start_done = True

    async def _callee_message(self, mtype: MessageType, info: UserInformation) -> None:
        if mtype in (MessageType.SETUP, MessageType.CONNECT, MessageType.CALL_PROCEEDING, MessageType.ALERTING):
            await self._send_status(Cause.MESSAGE_NOT_COMPATIBLE_WITH_STATE)
            await self._emit(ProtocolWarning(f"unexpected {mtype.name} from the caller"))

    # ---------------------------------------------------------------- H.245

    def _initial_h245(self) -> list[bytes]:
        self._tcs_sequence += 1
        self._msd_state = "outgoing"
        return [
            encode_h245(terminal_capability_set(self._tcs_sequence, self.config.policy.formats,
                                                self.config.policy.suites)),
            encode_h245(master_slave_determination(_TERMINAL_TYPE, self._msd_number)),
        ]

    async def _tunnelled(self, info: UserInformation) -> None:
        for raw in info.h245_control:
            try:
                pdu = parse_h245(raw)
            except SignallingParseError as exc:
                await self._emit(ProtocolWarning(f"undecodable tunnelled H.245 ignored: {exc}"))
                continue
            try:
                await self._h245(pdu)
            except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
                # decodable but not as vcore expects (e.g. a later H.245 version's extension): ignore it
                await self._emit(ProtocolWarning(f"H.245 {pdu.name} ignored: {exc!r}"))

    async def _h245(self, pdu: H245Pdu) -> None:
        name, body = pdu.name, pdu.body
        if name == "terminalCapabilitySet":
            self._peer_formats, self._peer_suites = parse_capabilities(body)
            self._h245_out.append(encode_h245(terminal_capability_set_ack(body["sequenceNumber"])))
            self._maybe_open_channels()
        elif name == "masterSlaveDetermination":
            decision = msd_decision(_TERMINAL_TYPE, self._msd_number, body["terminalType"],
                                    body["statusDeterminationNumber"])
            if decision is None:
                self._h245_out.append(encode_h245(master_slave_determination_reject()))
            else:
                self.msd_status = decision
                peer = "slave" if decision == "master" else "master"
                self._h245_out.append(encode_h245(master_slave_determination_ack(peer)))
                self._msd_state = "incoming"  # awaiting the peer's Ack (H.245 §8.2)
        elif name == "masterSlaveDeterminationAck":
            decision = body["decision"][0]  # what we are
            if self._msd_state == "outgoing":
                # we initiated and the peer decided: confirm with our own Ack (H.245 §8.2.2, Figure C.2)
                peer = "slave" if decision == "master" else "master"
                self._h245_out.append(encode_h245(master_slave_determination_ack(peer)))
            self.msd_status = decision
            self._msd_state = "done"
        elif name == "openLogicalChannel":
            await self._peer_open(body)
        elif name == "openLogicalChannelAck":
            await self._open_acknowledged(body)
        elif name == "openLogicalChannelReject":
            number = body["forwardLogicalChannelNumber"]
            self._pending_olc.pop(number, None)
            await self._emit(ProtocolWarning(f"peer rejected channel {number}: {body['cause'][0]}"))
        elif name == "closeLogicalChannel":
            number = body["forwardLogicalChannelNumber"]
            self.channels = [c for c in self.channels if not (c.direction == "receive" and c.number == number)]
            self._h245_out.append(encode_h245(close_logical_channel_ack(number)))
            await self._emit(ChannelClosed(number))
        elif name == "endSessionCommand":
            await self._release("undefinedReason", Cause.NORMAL_CALL_CLEARING, "peer ended the H.245 session",
                                by_peer=True, send=True)
        elif name == "miscellaneousCommand" and body["type"][0] == "videoFastUpdatePicture":
            await self._emit(KeyframeRequested(body["logicalChannelNumber"]))
        elif name == "flowControlCommand":
            scope, restriction = body["scope"], body["restriction"]
            number = scope[1] if scope[0] == "logicalChannelNumber" else None
            bitrate = restriction[1] * 100 if restriction[0] == "maximumBitRate" else None
            await self._emit(BitrateLimited(bitrate, number))
        elif name == "userInput":
            if isinstance(body, tuple) and body[0] == "alphanumeric" and isinstance(body[1], str):
                await self._emit(UserInput(body[1]))
        elif name == "roundTripDelayRequest":  # the H.245 keep-alive (H.245 §8.9)
            self._h245_out.append(encode_h245(round_trip_delay_response(body["sequenceNumber"])))
        elif name in ("terminalCapabilitySetAck", "closeLogicalChannelAck",
                      "masterSlaveDeterminationReject", "terminalCapabilitySetReject", "functionNotUnderstood",
                      "roundTripDelayResponse", "openLogicalChannelConfirm", "miscellaneousCommand",
                      "miscellaneousIndication", "vendorIdentification", "functionNotSupported",
                      "masterSlaveDeterminationRelease", "terminalCapabilitySetRelease"):
            pass
        elif pdu.category in ("request", "command"):
            if not name.startswith("_ext_"):  # pycrate cannot re-encode an unknown extension to echo it
                self._h245_out.append(encode_h245(function_not_understood(pdu)))
            await self._emit(ProtocolWarning(f"H.245 {name} not understood"))

    def _maybe_open_channels(self) -> None:
        """H.245 procedures: once the call is answered without Fast Connect and the peer's TCS is known."""
        if self._h245_opened or self.fast_connect or self._peer_formats is None or self._endpoints is None:
            return
        if self.state is not CallState.ACTIVE:
            return
        self._h245_opened = True
        for session, (rtp, rtcp) in sorted(self._endpoints.items()):
            choice = choose_transmit(self._peer_formats, self._peer_suites, self.config.policy, session)
            if choice is None:
                continue
            fmt, suite = choice
            number = self._next_channel
            self._next_channel += 1
            key = SrtpKeyMaterial.generate(suite) if suite != PLAINTEXT else None
            channel = OpenChannel(number, fmt, False, session, media_control=rtcp,
                                  suites=(suite,) if suite else (), key=key)
            self._pending_olc[number] = channel
            self._h245_out.append(encode_h245(open_logical_channel_pdu(channel)))

    async def _peer_open(self, body: Any) -> None:
        number = body.get("forwardLogicalChannelNumber", 0)
        try:
            channel = parse_open_logical_channel(body)
        except SignallingParseError as exc:
            self._h245_out.append(encode_h245(open_logical_channel_reject(number, "unknownDataType")))
            await self._emit(ProtocolWarning(f"rejected channel {number}: {exc}"))
            return
        policy = self.config.policy
        fmt = channel.format
        suite = channel.suites[0] if len(channel.suites) == 1 else (PLAINTEXT if not channel.suites else None)
        local = self._endpoints.get(channel.session_id) if self._endpoints is not None else None
        cause = None
        if channel.reverse or fmt is None or not any(f.compatible(fmt) for f in policy.formats):
            cause = "dataTypeNotSupported"
        elif local is None:
            cause = "invalidSessionID"
        elif suite is None or suite not in policy.suite_choices or (suite and channel.key is None):
            cause = "securityDenied"
        if cause is not None or fmt is None or local is None:
            self._h245_out.append(encode_h245(open_logical_channel_reject(number, cause or "unspecified")))
            await self._emit(ProtocolWarning(f"rejected channel {number}: {cause}"))
            return
        rtp, rtcp = local
        media = MediaChannel("receive", fmt, channel.session_id, number, None, channel.media_control, rtp, rtcp,
                             channel.key if suite else None)
        self.channels.append(media)
        self._h245_out.append(encode_h245(open_logical_channel_ack(number, channel.session_id, rtp, rtcp)))
        await self._emit(ChannelOpened(media))

    async def _open_acknowledged(self, body: Any) -> None:
        number = body["forwardLogicalChannelNumber"]
        channel = self._pending_olc.pop(number, None)
        params = body.get("forwardMultiplexAckParameters")
        if channel is None or channel.format is None or params is None \
                or params[0] != "h2250LogicalChannelAckParameters" or "mediaChannel" not in params[1]:
            await self._emit(ProtocolWarning(f"unusable OpenLogicalChannelAck for channel {number}"))
            return
        ack = params[1]
        remote_rtcp = Address.from_h245(ack["mediaControlChannel"]) if "mediaControlChannel" in ack else None
        local = self._endpoints.get(channel.session_id) if self._endpoints is not None else None
        media = MediaChannel("send", channel.format, channel.session_id, number,
                             Address.from_h245(ack["mediaChannel"]), remote_rtcp,
                             None, local[1] if local else None, channel.key)
        self.channels.append(media)
        await self._emit(ChannelOpened(media))


# --------------------------------------------------------------------------- caller


EndpointsFactory = Callable[[str, str], Awaitable[MediaEndpoints]]
"""``await factory(local_host, peer_host)``: open the media and say where it is received (see place_call)."""


async def place_call(host: str, port: int, config: SignallingConfig,
                     endpoints: MediaEndpoints | EndpointsFactory, *,
                     ssl_context: ssl.SSLContext | None = None, destination: Sequence[str] = (),
                     expected_name: str | None = None, expected_alias: str | None = None,
                     call_id: bytes | None = None,
                     conference_id: bytes | None = None, call_reference: int | None = None) -> CallSession:
    """Connect to ``host:port`` and send Setup (with Fast Connect proposals and tunnelled TCS/MSD).

    ``endpoints``: where this terminal receives each media session, or an async
    factory called once connected with this end's address on the connection and
    the peer's (the media address to announce follows the route to the peer);
    if the factory raises, the connection is closed and the error propagates.
    ``expected_alias``: the alias dialled, which the callee's certificate must hold
    (``h323:`` subjectAltName; see :class:`SignallingConfig` for old certificates).
    ``call_id``/``conference_id``/``call_reference``: the identifiers a gatekeeper
    admitted (ARQ); fresh ones by default.

    ``ssl_context``: a :func:`vcore.pki.client_context`; None means plaintext and
    needs ``config.allow_plaintext_signalling``. ``expected_name``: the CN the
    callee's certificate must carry. Raises :class:`SecurityError` (TLS
    refused, wrong name), :class:`SignallingTimeout` or :class:`SignallingError`
    (cannot connect). The returned session reports the rest as events.
    """
    if ssl_context is None and not config.allow_plaintext_signalling:
        raise SecurityError("plaintext signalling is not allowed by the configuration (give an SSL context)")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl_context, server_hostname=host if ssl_context else None),
            config.setup_timeout)
    except asyncio.TimeoutError:
        raise SignallingTimeout(f"no connection to {host}:{port} within {config.setup_timeout} s") from None
    except ssl.SSLError as exc:
        raise SecurityError(f"TLS handshake with {host}:{port} failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise SignallingError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    conn = _Connection(reader, writer)
    if ssl_context is not None and expected_name is not None and conn.peer_name != expected_name:
        name = conn.peer_name
        await conn.close()
        raise SecurityError(f"{host}:{port} presented certificate {name!r}, not {expected_name!r}")
    if ssl_context is not None and expected_alias is not None:
        cert = pki.peer_certificate(conn.writer.get_extra_info("ssl_object"))
        held = pki.certificate_aliases(cert) if cert is not None else ()
        if not held and config.legacy_certificates:
            log.warning("%s:%d presented certificate %r with no H.323 alias: accepted as %r because "
                        "legacy_certificates is on", host, port, conn.peer_name, expected_alias)
        elif expected_alias not in held:
            name = conn.peer_name
            await conn.close()
            raise SecurityError(f"{host}:{port} presented certificate {name!r} for "
                                f"{', '.join(held) or 'no alias'}, not for the dialled {expected_alias!r}")
    if callable(endpoints):
        if not conn.local_host:  # the peer closed already: with TLS 1.3, it refused our certificate
            await conn.close()
            if ssl_context is not None:
                raise SecurityError(f"TLS: {host}:{port} closed the connection right after the handshake (our "
                                    "certificate was probably refused: revoked, expired, or from another CA)")
            raise SignallingError(f"{host}:{port} closed the connection at once")
        try:
            endpoints = await endpoints(conn.local_host, conn.peer_host)
        except BaseException:
            await conn.close()
            raise
    session = CallSession(conn, config, caller=True,
                          call_reference=call_reference or secrets.randbelow(0x7FFF) + 1,
                          call_id=call_id or os.urandom(16), conference_id=conference_id or os.urandom(16),
                          endpoints=dict(endpoints))
    fast_start = None
    if config.fast_connect:
        session._offer = make_offer(config.policy, endpoints)
        fast_start = encode_proposals(session._offer.proposals)
    local = writer.get_extra_info("sockname")
    body = setup_uuie(call_id=session.call_id, conference_id=session.conference_id,
                      source_aliases=[config.alias], destination_aliases=list(destination),
                      source_address=Address(local[0], local[1]) if local else None,
                      destination_address=Address(host, port) if _is_ip(host) else None,
                      fast_start=fast_start, display_name=config.display_name)
    extra = [bearer_capability_ie()]
    if config.display_name:
        extra.append(display_ie(config.display_name))
    if _digits(config.alias):
        extra.append(party_number_ie(IE.CALLING_PARTY_NUMBER, config.alias))
    number = next((d for d in destination if _digits(d)), None)
    if number is not None:
        extra.append(party_number_ie(IE.CALLED_PARTY_NUMBER, number))
    try:
        await session._send(MessageType.SETUP, "setup", body, extra, session._initial_h245())
    except (OSError, ssl.SSLError, PeerClosed) as exc:
        if ssl_context is not None:
            # TLS 1.3: the server checks our certificate after our handshake ended; its alert is in the stream
            try:
                await asyncio.wait_for(reader.read(1), 1.0)
            except ssl.SSLError as alert:
                await conn.close()
                raise SecurityError(f"TLS: {host}:{port} refused this terminal's certificate "
                                    f"({alert.reason or alert})") from None
            except (OSError, asyncio.TimeoutError):
                pass
            await conn.close()
            raise SecurityError(f"TLS: {host}:{port} closed the connection right after the handshake "
                                f"(our certificate was probably refused): {exc}") from None
        await conn.close()
        raise SignallingError(f"cannot send Setup to {host}:{port}: {exc}") from None
    session._set_deadline(config.setup_timeout, "answer to Setup")
    session._start()
    return session


def _caller_identity_problem(conn: _Connection, claimed: Sequence[str], config: SignallingConfig) -> str | None:
    """Why a TLS caller's certificate does not fit its Setup or this callee's policy, or None."""
    cert = pki.peer_certificate(conn.writer.get_extra_info("ssl_object"))
    if cert is None:  # pragma: no cover - TLS here always requires a verified certificate
        return "no client certificate"
    held = pki.certificate_aliases(cert)
    if not held:
        if config.legacy_certificates:
            log.warning("caller %r has a certificate with no H.323 alias: accepted (legacy_certificates)",
                        conn.peer_name)
            return None
        return (f"caller {conn.peer_name!r} has a certificate with no H.323 alias (issued before aliases): "
                "reissue it with vcore pki issue, or set legacy_certificates")
    foreign = [a for a in claimed if a not in held]
    if foreign:
        return f"caller {conn.peer_name!r} claims alias {foreign[0]!r}, which its certificate does not hold"
    if config.allow_list is None and config.accept_roles is not None:
        role = pki.certificate_role(cert)
        if role not in config.accept_roles:
            return (f"caller {conn.peer_name!r} has a certificate for role {role or 'none'}; this terminal answers "
                    f"{', '.join(sorted(config.accept_roles))} (or put it on the allow-list)")
    return None


def _digits(alias: str) -> bool:
    return bool(alias) and all(c in "0123456789*#" for c in alias)


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- callee


class SignallingListener:
    """Accepts H.225.0 connections (TLS when ``ssl_context`` is given) and yields incoming calls.

    Each accepted caller must present a certificate chaining to the server
    context's trust anchors (checked in the TLS handshake) and, if
    ``config.allow_list`` is set, a CN on it; a refused caller gets a
    ReleaseComplete with reason ``securityDenied`` and nothing else. Refusals
    are recorded in :attr:`refused` (the newest 256). ``await accept()`` returns a
    :class:`CallSession` in state ``incoming_proceeding`` (CallProceeding sent).
    """

    def __init__(self, config: SignallingConfig, ssl_context: ssl.SSLContext | None = None,
                 on_refused: Callable[[RefusedCall], None] | None = None) -> None:
        if ssl_context is None and not config.allow_plaintext_signalling:
            raise SecurityError("plaintext signalling is not allowed by the configuration (give an SSL context)")
        self.config = config
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._incoming: asyncio.Queue[CallSession] = asyncio.Queue()
        self._handlers = Supervisor("H.225.0 listener")  # one task per connection being set up
        self._on_refused = on_refused
        self.refused: deque[RefusedCall] = deque(maxlen=_REFUSED_KEPT)  # the newest; a flood cannot grow it

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the next handshakes; a new one (a new CRL) applies to connections accepted after."""
        return self._ssl

    @ssl_context.setter
    def ssl_context(self, context: ssl.SSLContext | None) -> None:
        if (context is None) != (self._ssl is None):
            raise SecurityError("a listener cannot switch between TLS and plaintext")
        self._ssl = context

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (port 0: any free port, see :attr:`port`).

        Host ``""``: every address of this host, IPv4 and IPv6.
        """
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: _AcceptProtocol(self), host or None, port)
        except OSError as exc:
            raise SignallingError(f"cannot listen on {host or '*'}:{port}: {exc.strerror or exc}") from None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise SignallingError("the listener is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def accept(self, timeout: float | None = None) -> CallSession:
        """The next incoming call (Setup received, CallProceeding sent)."""
        try:
            return await asyncio.wait_for(self._incoming.get(), timeout)
        except asyncio.TimeoutError:
            raise SignallingTimeout(f"no incoming call within {timeout} s") from None

    async def close(self) -> None:
        """Stop listening, drop half-open connections and hang up calls not yet handed out."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._handlers.aclose()
        while not self._incoming.empty():
            await self._incoming.get_nowait().hangup("undefinedReason", Cause.TEMPORARY_FAILURE)

    async def __aenter__(self) -> SignallingListener:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _refuse(self, peer: str, name: str | None, reason: str, detail: str) -> None:
        record = RefusedCall(peer, name, reason, detail)
        self.refused.append(record)
        log.warning("refused %s (%s): %s", peer, name, detail)
        if self._on_refused is not None:
            self._on_refused(record)

    def _accepted(self, transport: asyncio.BaseTransport) -> None:
        if self._handlers.closed:  # a connection racing the close
            transport.close()
            return
        info = transport.get_extra_info("peername")
        self._handlers.spawn(self._on_connection(transport), f"connection from {info[0]}:{info[1]}" if info else
                             "connection")

    async def _on_connection(self, transport: asyncio.BaseTransport) -> None:
        # Reading stays paused until TLS owns the transport, so no ClientHello byte is lost to a plain reader.
        assert isinstance(transport, asyncio.Transport)
        loop = asyncio.get_running_loop()
        info = transport.get_extra_info("peername")
        peer = f"{info[0]}:{info[1]}" if info else "?"
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        if self._ssl is not None:
            try:
                tls = await asyncio.wait_for(
                    loop.start_tls(transport, protocol, self._ssl, server_side=True,
                                   ssl_handshake_timeout=self.config.tls_timeout),
                    self.config.tls_timeout + 1.0)
            except asyncio.CancelledError:
                transport.abort()
                raise
            except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError) as exc:
                transport.abort()
                if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
                    detail = f"TLS handshake failed: {exc.verify_message}"  # "certificate revoked", "CRL has expired"
                elif isinstance(exc, ssl.SSLError):
                    detail = f"TLS handshake failed: {exc.reason or exc}"
                elif isinstance(exc, asyncio.TimeoutError) or "taking longer" in str(exc):
                    detail = "TLS handshake timed out"  # asyncio reports ssl_handshake_timeout as an abort
                else:
                    detail = f"TLS handshake failed: {exc}"
                self._refuse(peer, None, "tlsFailure", detail)
                return
            if tls is None:  # pragma: no cover - the loop closed the transport
                return
            transport = tls
        else:
            transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._ssl is None:
            transport.resume_reading()
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        conn = _Connection(reader, writer)
        try:
            await self._handshake_and_setup(conn, peer)
        except asyncio.CancelledError:
            conn.writer.transport.abort()
            conn.closed = True
            raise
        except Exception as exc:  # a Setup nobody anticipated must not leave a half-open connection
            log.exception("unexpected failure handling a Setup from %s", peer)
            self._refuse(peer, conn.peer_name, "protocolError", f"unexpected failure handling the Setup: {exc!r}")
            await conn.close()

    async def _handshake_and_setup(self, conn: _Connection, peer: str) -> None:
        try:
            message = await asyncio.wait_for(conn.receive(), self.config.setup_timeout)
        except asyncio.TimeoutError:
            self._refuse(peer, conn.peer_name, "timeout", "no Setup within the timeout")
            await conn.close()
            return
        except (SignallingError, ssl.SSLError, OSError) as exc:
            self._refuse(peer, conn.peer_name, "protocolError", f"no valid Setup: {exc}")
            await conn.close()
            return
        try:
            info = parse_user_information(message.user_user or b"") if message.user_user is not None else None
        except SignallingParseError as exc:
            info = None
            bad = str(exc)
        else:
            bad = "no H.225.0 User-user IE"
        if message.message_type != MessageType.SETUP or message.from_destination or info is None \
                or info.body != "setup":
            what = f"{message.name} instead of Setup" if message.message_type != MessageType.SETUP else bad
            self._refuse(peer, conn.peer_name, "protocolError", what)
            await _release_unknown(conn, message, "undefinedReason", Cause.INVALID_MESSAGE,
                                   info.call_id if info else None)
            await conn.close()
            return
        call_id = info.call_id or os.urandom(16)
        name = conn.peer_name
        why = None
        if not pki.check_allowed(name, self.config.allow_list):
            why = f"caller {name!r} is not on the allow-list"
        elif self._ssl is not None:
            why = _caller_identity_problem(conn, info.source_aliases, self.config)
        if why is not None:
            self._refuse(peer, name, "securityDenied", why)
            await _release_unknown(conn, message, "securityDenied", Cause.CALL_REJECTED, call_id)
            await conn.close()
            return
        session = CallSession(conn, self.config, caller=False, call_reference=message.call_reference,
                              call_id=call_id, conference_id=info.conference_id or os.urandom(16))
        session.remote_aliases = info.source_aliases
        session.remote_display = info.display_name or message.display  # H.225.0 displayName: accents intact
        session.remote_product = info.product
        try:
            if info.fast_start:
                session._proposals = decode_proposals(info.fast_start)
        except SignallingParseError as exc:
            session._proposals = []
            await session._emit(ProtocolWarning(f"undecodable fastStart ignored: {exc}"))
        session._h245_out.extend(session._initial_h245())
        await session._tunnelled(info)
        session.state = CallState.INCOMING_PROCEEDING
        await session._send(MessageType.CALL_PROCEEDING, "callProceeding", call_proceeding_uuie(call_id=call_id))
        # no deadline: the callee waits for its user, the caller's timers bound the wait
        session._start()
        await self._incoming.put(session)


class _AcceptProtocol(asyncio.Protocol):
    """Holds a fresh connection paused until the listener has set up TLS (or plain streams) on it."""

    def __init__(self, listener: SignallingListener) -> None:
        self._listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self._listener._accepted(transport)


async def _release_unknown(conn: _Connection, message: Q931Message, reason: str, cause: int,
                           call_id: bytes | None) -> None:
    """ReleaseComplete for a message that never became a call: a reason and nothing else."""
    elements: list[InformationElement] = [cause_ie(cause)]
    if call_id is not None:
        uuie = asn1.encode_uuie(user_information("releaseComplete",
                                                 release_complete_uuie(call_id=call_id, reason=reason)))
        elements.append(user_user_ie(uuie))
    try:
        await conn.send(Q931Message(MessageType.RELEASE_COMPLETE, message.call_reference,
                                    not message.from_destination, tuple(elements)))
    except (OSError, ssl.SSLError, SignallingError):
        pass
