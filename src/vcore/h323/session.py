"""One H.225.0 call (asyncio): the Q.931 call state machine, Fast Connect, and the path of its H.245.

One :class:`CallSession` is one call on one signalling connection (H.225.0
§7.1, TPKT + Q.931 + H.225.0 UUIEs). It runs a small Q.931 state machine
(Q.931 §5 as profiled by H.225.0 §7.3/H.323 §8):

caller: ``call_initiated`` -> ``outgoing_proceeding`` -> ``call_delivered``
-> ``active`` -> ``released``; callee: ``call_present`` -> ``incoming_proceeding``
-> ``call_received`` -> ``active`` -> ``released``.

Media is negotiated with Fast Connect (H.323 §8.1.7) when both ends agree,
otherwise with H.245 procedures (:mod:`vcore.h323.h245`), tunnelled in
H.225.0 (H.323 §8.2.1) or, when the peer refuses tunnelling or asks for it
(``h245Address``, Facility ``startH245``), on a separate H.245 connection
(:mod:`vcore.h323.h245.channel`). The session carries no media: it reports
:class:`~vcore.h323.fast_connect.MediaChannel` values in its events.

Every failure ends in one :class:`Released` event with a clear ``reason``
and the connection closed: the peer's ReleaseComplete (its H.225.0 reason
and Q.850 cause), a timeout (H.225.0 or an H.245 procedure timer), the peer
closing TCP, malformed signalling, or a TLS/allow-list refusal. H.245 that
cannot be decoded is reported (:class:`ProtocolWarning`) and ignored, so that
a peer's exotic H.245 does not kill a call; malformed TPKT/Q.931/H.225.0
releases the call. A local release waits briefly for the peer to close its
side (its own ReleaseComplete), so that neither end resets the connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any, Sequence

from ..callcontrol import (
    Alerting,
    CallEvent,
    EventQueue,
    ChannelClosed,
    ChannelOpened,
    Connected,
    Proceeding,
    ProtocolWarning,
    Released,
)
from ..supervisor import cancel_and_wait
from . import asn1
from .config import CallState, SignallingConfig
from .connection import CLOSE_TIMEOUT, SignallingConnection
from .errors import CallRefused, PeerClosed, SecurityError, SignallingError, SignallingParseError, SignallingTimeout
from .fast_connect import (
    FastConnectOffer,
    MediaChannel,
    MediaEndpoints,
    accept_answer,
    answer_offer,
    decode_proposals,
    encode_proposals,
)
from .h245_path import OFF_LOOP_BYTES, H245Path, off_loop
from .messages import (
    RELEASE_REASONS,
    OpenChannel,
    UserInformation,
    alerting_uuie,
    call_proceeding_uuie,
    connect_uuie,
    parse_user_information,
    release_complete_uuie,
    user_information,
)
from .q931 import Cause, InformationElement, MessageType, Q931Message, call_state_ie, cause_ie, display_ie, user_user_ie

__all__ = ["CallSession"]

log = logging.getLogger(__name__)

class CallSession(H245Path, EventQueue):
    """One call's signalling. Create with :func:`place_call` or get from :meth:`SignallingListener.accept`.

    Iterate (``async for event in session``) or ``await next_event()`` to
    follow the call; the last event is always :class:`Released`.
    """

    _event_timeout = SignallingTimeout

    def __init__(self, conn: SignallingConnection, config: SignallingConfig, *, caller: bool,
                 call_reference: int, call_id: bytes, conference_id: bytes,
                 endpoints: MediaEndpoints | None = None) -> None:
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
        self.released: Released | None = None
        self.fast_connect = False
        self._fast_channels: list[MediaChannel] = []
        self._endpoints: MediaEndpoints | None = endpoints
        self._events: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._timer_task: asyncio.Task[None] | None = None
        self._release_done = asyncio.Event()
        self._deadline: float | None = None
        self._deadline_what = ""
        self._offer: FastConnectOffer | None = None
        self._proposals: list[OpenChannel] = []  # callee: the caller's fastStart
        self._fast_start_done = False
        self._early: list[MediaChannel] = []  # caller: receive channels reported before Connect
        self._init_path(conn, config, caller)
        self.h245.endpoints = endpoints

    # ---------------------------------------------------------------- public

    def __repr__(self) -> str:
        role = "caller" if self.caller else "callee"
        return f"<CallSession {role} crv={self.call_reference} state={self.state.name} peer={self._conn.peer}>"

    @property
    def channels(self) -> list[MediaChannel]:
        """Every open media channel: Fast Connect's and those opened by H.245 procedures."""
        return [*self._fast_channels, *self.h245.channels]

    @property
    def msd_status(self) -> str | None:
        """``master`` or ``slave`` once master/slave determination is done."""
        return self.h245.msd_status

    @property
    def separate_h245(self) -> bool:
        """True when H.245 runs on its own TCP connection."""
        return self._channel.established

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
        if not self.signalling_encrypted:
            keys = "exposed (plaintext signalling)"
        elif self.separate_h245:
            keys = "tls-protected (Fast Connect only: none on the plain H.245 channel)"
        else:
            keys = "tls-protected"  # SRTP keys travel in H.245 tunnelled in the TLS signalling
        return {
            "signalling": "tls" if self.signalling_encrypted else "plaintext",
            "peer_certificate": self.peer_name,
            "h245": "separate" if self.separate_h245 else "tunnelled" if self.tunnelling else "none",
            "srtp_keys": keys,
            "media": [
                {"direction": c.direction, "codec": c.format.name, "session": c.session_id,
                 "srtp": c.suite or "plaintext"}
                for c in self.channels
            ],
        }

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
        await self._send(MessageType.ALERTING, "alerting",
                         alerting_uuie(call_id=self.call_id, h245_address=self._announce()))
        self.state = CallState.CALL_RECEIVED

    async def answer(self, endpoints: MediaEndpoints) -> list[MediaChannel]:
        """Callee: accept the call; ``endpoints`` are where this terminal receives RTP/RTCP per session.

        Returns the Fast Connect channels (empty when H.245 procedures follow;
        their channels arrive as :class:`ChannelOpened` events).
        """
        self._require_callee(CallState.INCOMING_PROCEEDING, CallState.CALL_RECEIVED)
        self._endpoints = dict(endpoints)
        self.h245.endpoints = self._endpoints
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
                fast_start = await off_loop(OFF_LOOP_BYTES * len(answers) // 4, encode_proposals, answers)
                self._fast_channels.extend(channels)
                self.fast_connect = True
            else:
                refused = True
        self._fast_start_done = True
        self.state = CallState.ACTIVE
        self._deadline = None
        self.h245.connected(self._now(), fast_connect=self.fast_connect)
        body = connect_uuie(call_id=self.call_id, conference_id=self.conference_id, fast_start=fast_start,
                            fast_connect_refused=refused, h245_address=self._announce())
        extra = [display_ie(self.config.display_name)] if self.config.display_name else []
        await self._pump(flush=False)
        await self._send(MessageType.CONNECT, "connect", body, extra)
        await self._emit(Connected(tuple(self.channels), self.fast_connect))
        self._check_h245_path()
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
        else:  # a release under way in one of our tasks: let it finish (bounded by its own timeouts)
            try:
                await asyncio.wait_for(self._release_done.wait(), 3 * CLOSE_TIMEOUT)
            except asyncio.TimeoutError:
                log.warning("call %d: the release under way did not finish", self.call_reference)
        await self._stop_tasks()

    async def close(self) -> None:
        """Same as :meth:`hangup` with the default reason."""
        await self.hangup()

    async def __aenter__(self) -> CallSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request_keyframe(self, number: int) -> None:
        """Ask the peer for a keyframe on its video channel ``number`` (videoFastUpdatePicture)."""
        self._require_live()
        self.h245.request_keyframe(number)
        await self._pump()

    async def limit_bitrate(self, bitrate: int | None, number: int | None = None) -> None:
        """Ask the peer to send at most ``bitrate`` bit/s (flowControlCommand); None lifts the limit."""
        self._require_live()
        self.h245.limit_bitrate(bitrate, number)
        await self._pump()

    async def send_user_input(self, text: str) -> None:
        """Send a UserInputIndication with an alphanumeric string (H.245 §7.16.2)."""
        self._require_live()
        self.h245.user_input(text)
        await self._pump()

    async def close_channel(self, number: int) -> None:
        """Close one of our send channels (CloseLogicalChannel)."""
        self._require_live()
        self._fast_channels = [c for c in self._fast_channels if not (c.direction == "send" and c.number == number)]
        self.h245.close_channel(number, self._now())
        await self._pump()

    # ---------------------------------------------------------------- internals

    def _require_live(self) -> None:
        if self.released is not None:
            raise SignallingError("the call is released")

    def _require_callee(self, *states: CallState) -> None:
        if self.caller:
            raise SignallingError("only the callee can do this")
        if self.state not in states:
            raise SignallingError(f"not possible in state {self.state.name.lower()}")

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name=f"h225-{self.call_reference}")
        self._timer_task = loop.create_task(self._timers(), name=f"h245-timers-{self.call_reference}")

    def _set_deadline(self, seconds: float, what: str) -> None:
        self._deadline = self._now() + seconds
        self._deadline_what = what

    async def _send(self, message_type: MessageType, body_name: str, body: Any,
                    extra: Sequence[InformationElement] = ()) -> None:
        control: list[bytes] = []
        if self.tunnelling:
            control, self._h245_out = self._h245_out, []
        uuie = asn1.encode_uuie(user_information(body_name, body, tunnelling=self.tunnelling,
                                                 h245_control=control))
        elements = sorted([*extra, user_user_ie(uuie)], key=lambda ie: ie.identifier)
        message = Q931Message(message_type, self.call_reference, not self.caller, tuple(elements))
        log.debug("send %s crv=%d (%d H.245)", message.name, self.call_reference, len(control))
        await self._conn.send(message)

    async def _send_status(self, cause: int) -> None:
        elements = (cause_ie(cause), call_state_ie(self.state.value))
        await self._conn.send(Q931Message(MessageType.STATUS, self.call_reference, not self.caller, elements))

    async def _release(self, reason: str, cause: int | None, detail: str, *, by_peer: bool, send: bool) -> None:
        if self.released is not None:
            return
        try:
            await self._do_release(Released(reason, cause, by_peer, detail), send)
        finally:
            self._release_done.set()

    async def _do_release(self, event: Released, send: bool) -> None:
        reason, cause, by_peer, detail = event.reason, event.cause, event.by_peer, event.detail
        self.released = event
        self.state = CallState.RELEASED
        self._wake.set()
        reader = self._task
        if reader is not None and reader is not asyncio.current_task() and not reader.done():
            # one reader of the stream at a time: the orderly close below reads what the peer still sends
            await cancel_and_wait(reader)
        end_session = self.h245.end_session()
        if self._channel.established:
            try:
                await self._channel.send([end_session])
            except PeerClosed:
                pass
        await self._channel.close()
        sent = False
        if send and not self._conn.closed:
            wire_reason = reason if reason in RELEASE_REASONS else "undefinedReason"
            elements = [cause_ie(cause if cause is not None else Cause.NORMAL_UNSPECIFIED)]
            try:
                control = [end_session] if self.tunnelling else []
                uuie = asn1.encode_uuie(user_information(
                    "releaseComplete", release_complete_uuie(call_id=self.call_id, reason=wire_reason),
                    tunnelling=self.tunnelling, h245_control=control))
                elements.append(user_user_ie(uuie))
                await self._conn.send(Q931Message(MessageType.RELEASE_COMPLETE, self.call_reference,
                                                  not self.caller, tuple(elements)))
                sent = True
            except (OSError, ssl.SSLError, SignallingError) as exc:
                log.debug("could not send ReleaseComplete: %s", exc)
        log.info("call %d released: %s (cause %s, %s)", self.call_reference, reason, cause, detail)
        if sent and not by_peer:
            await self._conn.wait_eof(CLOSE_TIMEOUT)  # the peer's own ReleaseComplete, then its FIN: no RST
        await self._conn.close()
        await self._emit(event)

    async def _stop_tasks(self) -> None:
        for task in (self._task, self._timer_task):
            if task is not None and task is not asyncio.current_task():
                if not task.done():
                    task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        await self._channel.close()

    async def _run(self) -> None:
        try:
            while self.released is None:
                timeout = None if self._deadline is None else max(self._deadline - self._now(), 0.0)
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
                await self._handle(await asyncio.wait_for(self._conn.receive(), CLOSE_TIMEOUT / 4))
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
        info = await off_loop(len(raw), parse_user_information, raw) if raw is not None else None
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
        await self._h245_path(mtype, info)
        if self.caller:
            await self._caller_message(mtype, info)
        else:
            await self._callee_message(mtype, info)
        if self.released is None:
            await self._tunnelled(info)
            await self._pump()

    async def _caller_message(self, mtype: MessageType, info: UserInformation) -> None:
        if mtype in (MessageType.CALL_PROCEEDING, MessageType.ALERTING, MessageType.CONNECT) and info.product:
            self.remote_product = info.product
        if mtype in (MessageType.CALL_PROCEEDING, MessageType.ALERTING, MessageType.CONNECT,
                     MessageType.FACILITY, MessageType.PROGRESS) and info.fast_start and not self._fast_start_done:
            await self._accept_fast_start(info.fast_start)
            if mtype is not MessageType.CONNECT:
                # early media (H.323 §8.1.7.1): the keys of what we receive are known before Connect
                self._early = [c for c in self._fast_channels if c.direction == "receive"]
                for channel in self._early:
                    await self._emit(ChannelOpened(channel))
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
                self._fast_channels = []
                for channel in self._early:  # withdrawn at Connect after all: those channels never were
                    await self._emit(ChannelClosed(channel.number))
            self.h245.connected(self._now(), fast_connect=self.fast_connect)
            await self._emit(Connected(tuple(self.channels), self.fast_connect))
            await self._caller_h245_fallback()
            self._check_h245_path()
        elif mtype is MessageType.SETUP:
            await self._send_status(Cause.MESSAGE_NOT_COMPATIBLE_WITH_STATE)

    async def _accept_fast_start(self, items: Sequence[bytes]) -> None:
        assert self._offer is not None
        answers = await off_loop(sum(map(len, items)), decode_proposals, items)
        self._fast_channels = accept_answer(self._offer, answers)  # SecurityError releases the call
        self.fast_connect = bool(self._fast_channels)
        self._fast_start_done = True

    async def _callee_message(self, mtype: MessageType, info: UserInformation) -> None:
        if mtype in (MessageType.SETUP, MessageType.CONNECT, MessageType.CALL_PROCEEDING, MessageType.ALERTING):
            await self._send_status(Cause.MESSAGE_NOT_COMPATIBLE_WITH_STATE)
            await self._emit(ProtocolWarning(f"unexpected {mtype.name} from the caller"))

    async def _received_setup(self, info: UserInformation) -> None:
        """Callee: take the caller's Setup (Fast Connect proposals, the H.245 path) and send CallProceeding."""
        try:
            if info.fast_start:
                self._proposals = await off_loop(sum(map(len, info.fast_start)), decode_proposals, info.fast_start)
        except SignallingParseError as exc:
            self._proposals = []
            await self._emit(ProtocolWarning(f"undecodable fastStart ignored: {exc}"))
        if info.h245_control:
            self._peer_tunnelled = True
        self.tunnelling = self.tunnelling and info.h245_tunnelling  # the caller's choice holds (H.323 §8.2.1)
        if not self.tunnelling and self._conn.tls:
            self.h245.keys_protected = False
            log.warning("call %d: H.245 is not tunnelled in the TLS signalling: no SRTP key is sent or accepted "
                        "on the plain H.245 channel", self.call_reference)
        self._initial_h245()
        await self._h245_path(MessageType.SETUP, info)
        if not self.tunnelling and self._peer_h245 is None:
            await self._listen_h245()  # the caller connects to the h245Address of our CallProceeding
        await self._tunnelled(info)
        self.state = CallState.INCOMING_PROCEEDING
        await self._pump(flush=False)
        await self._send(MessageType.CALL_PROCEEDING, "callProceeding",
                         call_proceeding_uuie(call_id=self.call_id, h245_address=self._announce()))
