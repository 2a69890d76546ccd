"""The path of a call's H.245: tunnelled in H.225.0, or on a separate connection (H.323 §8.2), and its timers.

:class:`H245Path` is the part of :class:`~vcore.h323.session.CallSession`
that moves H.245 between the procedures (:class:`~vcore.h323.h245.H245Control`)
and the wire: PDUs ride in the next H.225.0 message (``h245Control``) while
tunnelling, go on the separate H.245 connection once it exists, and wait for
it in between. It follows the peer: ``h245Tunnelling`` FALSE stops tunnelling
(the procedures start over on the separate connection), an ``h245Address``
is connected to, and a caller whose callee refused tunnelling without giving
an address offers its own (Facility ``startH245``). Keys never travel on a
plain TCP H.245 connection beside TLS signalling (see docs/h323.md). It also
runs the H.245 timers. PER coding of large messages runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from typing import Any, Callable, Sequence, TypeVar

from ..callcontrol import CallEvent, ProtocolWarning, Released
from .config import SignallingConfig
from .connection import SignallingConnection
from .errors import PeerClosed, SignallingError, SignallingParseError
from .h245 import H245Control
from .h245.channel import H245Channel, usable_h245_address
from .messages import Address, H245Pdu, UserInformation, facility_uuie, parse_h245
from .q931 import Cause, InformationElement, MessageType

__all__ = ["H245Path", "OFF_LOOP_BYTES", "off_loop"]

log = logging.getLogger(__name__)

OFF_LOOP_BYTES = 512  # PER messages from this size on are coded in a worker thread (a 20-proposal Setup: ~15 ms)
T = TypeVar("T")



async def off_loop(size: int, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a thread of its own when ``size`` (bytes coded) makes it slow, else here (cheap).

    One short-lived thread per large message (a few per call set-up; starting one costs ~0.1 ms against
    ~15 ms of coding) rather than a pool: nothing outlives the work, so a station's thread count stays flat
    between calls. The coding itself holds the ASN.1 module lock (:mod:`vcore.h323.asn1`); the caller awaits
    each result before its next message, so a session's messages keep their order.
    """
    if size < OFF_LOOP_BYTES:
        return fn(*args)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result: T | None = fn(*args)
            error: BaseException | None = None
        except BaseException as exc:  # handed to the awaiting task, raised there
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop closed meanwhile: nobody waits for the result
            pass

    worker = threading.Thread(target=work, name="vcore-per", daemon=True)
    worker.start()
    result = await done  # cancelled: the thread finishes its message on its own and ends
    worker.join(0.05)  # it has settled the future, so it is returning: this takes microseconds
    return result


def _parse_h245_or_error(raw: bytes) -> H245Pdu | SignallingParseError:
    try:
        return parse_h245(raw)
    except SignallingParseError as exc:
        return exc

# messages whose h245Tunnelling field says whether the peer tunnels (H.323 §8.2.1)
_TUNNELLING_SAYS = frozenset({MessageType.SETUP, MessageType.CALL_PROCEEDING, MessageType.ALERTING,
                              MessageType.PROGRESS, MessageType.CONNECT, MessageType.FACILITY})
_H245_ADDRESS_IN = _TUNNELLING_SAYS


class H245Path:
    """The H.245 half of a call session (a base class of :class:`~vcore.h323.session.CallSession`)."""

    _conn: SignallingConnection
    config: SignallingConfig
    call_reference: int
    call_id: bytes
    conference_id: bytes
    released: Released | None
    fast_connect: bool
    h245: H245Control
    tunnelling: bool
    _h245_out: list[bytes]
    _held: list[bytes]
    _peer_tunnelled: bool
    _peer_h245: Address | None
    _channel: H245Channel
    _events: asyncio.Queue[CallEvent]
    _wake: asyncio.Event

    def _init_path(self, conn: SignallingConnection, config: SignallingConfig, caller: bool) -> None:
        self.h245 = H245Control(config.policy, caller=caller, timers=config.h245_timers)
        self._h245_out = []  # tunnelled H.245 waiting for the next H.225.0 message
        self._held = []  # H.245 waiting for a separate channel
        self.tunnelling = config.h245_tunnelling  # H.245 tunnelled in H.225.0 (H.323 §8.2.1)
        self._peer_tunnelled = False  # the peer sent tunnelled H.245: it accepted tunnelling
        self._peer_h245 = None
        self._wake = asyncio.Event()
        self._channel = H245Channel(f"crv={self.call_reference}", conn.peer_host,
                                    connect_timeout=config.setup_timeout, on_pdu=self._h245_received,
                                    on_established=self._h245_established, on_closed=self._h245_closed)
        if not self.tunnelling and conn.tls:
            self.h245.keys_protected = False  # H.245 on plain TCP beside TLS signalling carries no SRTP key

    # what the session provides
    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _emit(self, event: CallEvent) -> None:
        await self._events.put(event)

    async def _send(self, message_type: MessageType, body_name: str, body: Any,
                    extra: Sequence[InformationElement] = ()) -> None:
        raise NotImplementedError

    async def _release(self, reason: str, cause: int | None, detail: str, *, by_peer: bool, send: bool) -> None:
        raise NotImplementedError

    async def _pump(self, *, flush: bool = True) -> None:
        """Report the H.245 events, send its PDUs on the current path, end the call if H.245 failed."""
        out, events = self.h245.take()
        for event in events:
            await self._emit(event)
        if out and self.released is None:
            if self._channel.established:
                try:
                    await self._channel.send(out)
                except PeerClosed as exc:
                    await self._release("peerClosed", None, f"H.245 channel lost: {exc}", by_peer=True, send=True)
            elif self.tunnelling:
                self._h245_out.extend(out)
            else:
                self._held.extend(out)
        if flush and self._h245_out and self.tunnelling and self.released is None:
            await self._send(MessageType.FACILITY, "empty", 0)
        self._wake.set()  # the H.245 deadlines may have moved
        if self.released is None and self.h245.peer_ended:
            await self._release("undefinedReason", Cause.NORMAL_CALL_CLEARING, "peer ended the H.245 session",
                                by_peer=True, send=True)
        failure = self.h245.failure
        if self.released is None and failure is not None:
            log.warning("call %d: H.245 failed: %s", self.call_reference, failure.detail)
            await self._release("timeout" if failure.timeout else "protocolError",
                                Cause.RECOVERY_ON_TIMER_EXPIRY if failure.timeout else Cause.PROTOCOL_ERROR,
                                f"H.245: {failure.detail}", by_peer=False, send=True)

    async def _timers(self) -> None:
        """Run the H.245 procedure timers (woken whenever the deadlines may have changed)."""
        while self.released is None:
            self._wake.clear()
            deadline = self.h245.deadline()
            try:
                await asyncio.wait_for(self._wake.wait(), None if deadline is None else
                                       max(deadline - self._now(), 0.0))
            except asyncio.TimeoutError:
                if self.released is None:
                    self.h245.expire(self._now())
                    try:
                        await self._pump()
                    except (PeerClosed, SignallingError, OSError, ssl.SSLError) as exc:
                        await self._release("peerClosed", None, f"connection lost: {exc}", by_peer=True, send=False)

    def _initial_h245(self) -> None:
        """Queue our TerminalCapabilitySet and MasterSlaveDetermination on the current path."""
        self.h245.start(self._now())
        out, events = self.h245.take()
        (self._h245_out if self.tunnelling else self._held).extend(out)
        for event in events:
            self._events.put_nowait(event)

    def _announce(self) -> Address | None:
        """Our H.245 listener's address, for the next H.225.0 message, while no H.245 channel exists."""
        return self._channel.local if not self._channel.established else None

    async def _h245_path(self, mtype: MessageType, info: UserInformation) -> None:
        """Follow the peer: tunnelling refused (h245Tunnelling FALSE) and its ``h245Address`` (H.323 §8.2)."""
        if mtype not in _TUNNELLING_SAYS:
            return
        if info.h245_control:
            self._peer_tunnelled = True
        if self.tunnelling and not info.h245_tunnelling and not self._peer_tunnelled:
            log.info("call %d: the peer does not tunnel H.245: using a separate H.245 connection",
                     self.call_reference)
            self._stop_tunnelling()
        address = info.h245_address if mtype in _H245_ADDRESS_IN else None
        if address is None or self._channel.established:
            return
        if not usable_h245_address(address):
            await self._emit(ProtocolWarning(f"unusable h245Address {address.host}:{address.port} ignored"))
            return
        self._peer_h245 = address
        if not self.tunnelling or info.facility_reason == "startH245":
            self._channel.connect(address)

    def _stop_tunnelling(self) -> None:
        self.tunnelling = False
        self._h245_out.clear()  # never read by the peer: the procedures start over on the separate channel
        self._held.clear()
        self.h245.restart(self._now())
        self._held.extend(self.h245.take()[0])
        if self._conn.tls:
            self.h245.keys_protected = False
            log.warning("call %d: H.245 leaves the TLS signalling for plain TCP: no SRTP key is sent or "
                        "accepted on it", self.call_reference)

    async def _listen_h245(self) -> Address | None:
        try:
            return await self._channel.listen(self._conn.local_host)
        except SignallingError as exc:
            await self._emit(ProtocolWarning(str(exc)))
            return None

    async def _caller_h245_fallback(self) -> None:
        """Caller, at Connect: the peer refused tunnelling and gave no h245Address: offer ours (startH245)."""
        if self.tunnelling or self._channel.established or self._peer_h245 is not None:
            return
        address = await self._listen_h245()
        if address is not None:
            await self._send(MessageType.FACILITY, "facility",
                             facility_uuie(call_id=self.call_id, conference_id=self.conference_id,
                                           reason="startH245", h245_address=address))

    def _check_h245_path(self) -> None:
        if not self.fast_connect and not self.tunnelling and not self._channel.established \
                and self._peer_h245 is None and self._channel.local is None:
            self._events.put_nowait(ProtocolWarning(
                "connected without Fast Connect, H.245 tunnelling or an H.245 address: no media channel can "
                f"open; the call ends after {self.config.h245_timers.media:g} s"))

    async def _h245_established(self) -> None:
        if self.released is not None:
            return
        if self.tunnelling:  # switching from tunnelling (H.323 §8.2.3): what was queued goes on the new channel
            self.tunnelling = False
            self._held[:0] = self._h245_out
            self._h245_out.clear()
            if self._conn.tls:
                self.h245.keys_protected = False
        held, self._held = self._held, []
        if held:
            try:
                await self._channel.send(held)
            except PeerClosed as exc:
                await self._release("peerClosed", None, f"H.245 channel lost: {exc}", by_peer=True, send=True)
                return
        await self._pump()

    async def _h245_received(self, raw: bytes) -> None:
        pdu = await off_loop(len(raw), _parse_h245_or_error, raw)
        if self.released is None:
            self.h245.receive(pdu, self._now())
            await self._pump()

    async def _h245_closed(self, why: str) -> None:
        if self.released is None:
            await self._release("peerClosed", None, f"the H.245 channel ended: {why}", by_peer=True, send=True)

    async def _tunnelled(self, info: UserInformation) -> None:
        if not self.tunnelling or self._channel.established:
            if info.h245_control:
                await self._emit(ProtocolWarning("tunnelled H.245 ignored: H.245 is not tunnelled in this call"))
            return
        for raw in info.h245_control:
            pdu = await off_loop(len(raw), _parse_h245_or_error, raw)
            self.h245.receive(pdu, self._now(), tunnelled=True)
