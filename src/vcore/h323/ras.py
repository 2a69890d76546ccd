"""Gatekeeper RAS (H.225.0 §7.7–§7.11, UDP 1719): discovery, registration, admission, disengage, unregistration.

Builders return ``RasMessage`` values (see :mod:`vcore.h323.asn1`); :class:`RasClient`
is a small asyncio endpoint that registers a terminal's aliases with an existing
gatekeeper, keeps the registration alive with lightweight RRQs (H.225.0 §7.9.1,
``keepAlive``), asks admission for calls (ARQ/ACF: the gatekeeper resolves an alias
to a call signalling address) and reports their end (DRQ). Requests are
retransmitted ``retries`` times after ``timeout`` seconds each (H.225.0 §7.x "the
endpoint may retry"); then :class:`SignallingTimeout`. A reject raises
:class:`RasRejected` with the reject reason's name.

Gatekeeper-initiated URQ and DRQ are confirmed and reported through callbacks;
other gatekeeper requests (IRQ, BRQ, ...) are ignored. The client is an asyncio
object: use it from one event loop.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..transport.addresses import unmap
from . import asn1
from .errors import SignallingError, SignallingParseError, SignallingTimeout
from .messages import ENDPOINT_TYPE, H225_PROTOCOL_ID, VENDOR, Address, alias_addresses

__all__ = [
    "RAS_PORT",
    "RAS_DISCOVERY_PORT",
    "RasRejected",
    "RasMessage",
    "encode_ras",
    "parse_ras",
    "gatekeeper_request",
    "gatekeeper_confirm",
    "registration_request",
    "registration_confirm",
    "registration_reject",
    "admission_request",
    "admission_confirm",
    "admission_reject",
    "disengage_request",
    "disengage_confirm",
    "unregistration_request",
    "unregistration_confirm",
    "Registration",
    "RasClient",
]

log = logging.getLogger(__name__)

RAS_PORT = 1719  # H.225.0 §7.7: gatekeeper RAS channel
RAS_DISCOVERY_PORT = 1718  # multicast discovery (not used: vcore sends GRQ unicast)
Value = Any


class RasRejected(SignallingError):
    """The gatekeeper rejected a request (``reason``: the reject reason's name)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class RasMessage:
    """A decoded RAS message: its choice ``name`` (``registrationConfirm``, ...) and ``body``."""

    name: str
    body: Value

    @property
    def sequence(self) -> int | None:
        seq = self.body.get("requestSeqNum") if isinstance(self.body, dict) else None
        return int(seq) if seq is not None else None


def encode_ras(name: str, body: Value) -> bytes:
    return asn1.encode(asn1.RAS, (name, body))


def parse_ras(data: bytes) -> RasMessage:
    name, body = asn1.decode(asn1.RAS, data)
    return RasMessage(name, body)


# --------------------------------------------------------------------------- builders


def gatekeeper_request(seq: int, ras_address: Address, aliases: Sequence[str] = ()) -> Value:
    """GRQ (H.225.0 §7.8.1)."""
    body: dict[str, Value] = {"requestSeqNum": seq, "protocolIdentifier": H225_PROTOCOL_ID,
                              "rasAddress": ras_address.h225(), "endpointType": ENDPOINT_TYPE}
    if aliases:
        body["endpointAlias"] = alias_addresses(aliases)
    return body


def gatekeeper_confirm(seq: int, ras_address: Address, gatekeeper_id: str | None = None) -> Value:
    body: dict[str, Value] = {"requestSeqNum": seq, "protocolIdentifier": H225_PROTOCOL_ID,
                              "rasAddress": ras_address.h225()}
    if gatekeeper_id:
        body["gatekeeperIdentifier"] = gatekeeper_id
    return body


def registration_request(seq: int, call_signal: Address, ras_address: Address, aliases: Sequence[str], *,
                         gatekeeper_id: str | None = None, endpoint_id: str | None = None,
                         time_to_live: int | None = None, keep_alive: bool = False) -> Value:
    """RRQ (H.225.0 §7.9.1); ``keep_alive`` makes it the lightweight refresh of §7.9.1."""
    body: dict[str, Value] = {
        "requestSeqNum": seq, "protocolIdentifier": H225_PROTOCOL_ID, "discoveryComplete": gatekeeper_id is not None,
        "callSignalAddress": [call_signal.h225()], "rasAddress": [ras_address.h225()],
        "terminalType": ENDPOINT_TYPE, "endpointVendor": VENDOR,
    }
    if aliases and not keep_alive:
        body["terminalAlias"] = alias_addresses(aliases)
    if gatekeeper_id:
        body["gatekeeperIdentifier"] = gatekeeper_id
    if time_to_live is not None:
        body["timeToLive"] = time_to_live
    body["keepAlive"] = keep_alive
    if endpoint_id:
        body["endpointIdentifier"] = endpoint_id
    body["willSupplyUUIEs"] = False
    body["maintainConnection"] = False
    return body


def registration_confirm(seq: int, call_signal: Address, endpoint_id: str, *, gatekeeper_id: str | None = None,
                         time_to_live: int | None = None) -> Value:
    body: dict[str, Value] = {"requestSeqNum": seq, "protocolIdentifier": H225_PROTOCOL_ID,
                              "callSignalAddress": [call_signal.h225()], "endpointIdentifier": endpoint_id}
    if gatekeeper_id:
        body["gatekeeperIdentifier"] = gatekeeper_id
    if time_to_live is not None:
        body["timeToLive"] = time_to_live
    body["willRespondToIRR"] = False
    body["maintainConnection"] = False
    return body


def registration_reject(seq: int, reason: str = "undefinedReason") -> Value:
    return {"requestSeqNum": seq, "protocolIdentifier": H225_PROTOCOL_ID, "rejectReason": (reason, 0)}


def admission_request(seq: int, endpoint_id: str, source_aliases: Sequence[str], *, call_id: bytes,
                      conference_id: bytes, call_reference: int, destination: Sequence[str] = (),
                      destination_address: Address | None = None, answer: bool = False,
                      bandwidth: int = 2560, gatekeeper_id: str | None = None) -> Value:
    """ARQ (H.225.0 §7.10.1); ``bandwidth`` in units of 100 bit/s, both directions."""
    body: dict[str, Value] = {"requestSeqNum": seq, "callType": ("pointToPoint", 0), "callModel": ("direct", 0),
                              "endpointIdentifier": endpoint_id}
    if destination:
        body["destinationInfo"] = alias_addresses(destination)
    if destination_address is not None:
        body["destCallSignalAddress"] = destination_address.h225()
    body.update({"srcInfo": alias_addresses(source_aliases) or [("h323-ID", "vcore")], "bandWidth": bandwidth,
                 "callReferenceValue": call_reference, "conferenceID": conference_id, "activeMC": False,
                 "answerCall": answer, "canMapAlias": False, "callIdentifier": {"guid": call_id},
                 "willSupplyUUIEs": False})
    if gatekeeper_id:
        body["gatekeeperIdentifier"] = gatekeeper_id
    return body


def admission_confirm(seq: int, destination: Address, bandwidth: int = 2560) -> Value:
    return {"requestSeqNum": seq, "bandWidth": bandwidth, "callModel": ("direct", 0),
            "destCallSignalAddress": destination.h225(), "willRespondToIRR": False, "uuiesRequested": {
                "setup": False, "callProceeding": False, "connect": False, "alerting": False, "information": False,
                "releaseComplete": False, "facility": False, "progress": False, "empty": False}}


def admission_reject(seq: int, reason: str = "calledPartyNotRegistered") -> Value:
    return {"requestSeqNum": seq, "rejectReason": (reason, 0)}


def disengage_request(seq: int, endpoint_id: str, *, call_id: bytes, conference_id: bytes, call_reference: int,
                      answered: bool, reason: str = "normalDrop") -> Value:
    """DRQ (H.225.0 §7.11.1)."""
    return {"requestSeqNum": seq, "endpointIdentifier": endpoint_id, "conferenceID": conference_id,
            "callReferenceValue": call_reference, "disengageReason": (reason, 0),
            "callIdentifier": {"guid": call_id}, "answeredCall": answered}


def disengage_confirm(seq: int) -> Value:
    return {"requestSeqNum": seq}


def unregistration_request(seq: int, call_signal: Address, endpoint_id: str | None = None,
                           aliases: Sequence[str] = ()) -> Value:
    """URQ (H.225.0 §7.9.3)."""
    body: dict[str, Value] = {"requestSeqNum": seq, "callSignalAddress": [call_signal.h225()]}
    if aliases:
        body["endpointAlias"] = alias_addresses(aliases)
    if endpoint_id:
        body["endpointIdentifier"] = endpoint_id
    return body


def unregistration_confirm(seq: int) -> Value:
    return {"requestSeqNum": seq}


# --------------------------------------------------------------------------- client


@dataclass(frozen=True)
class Registration:
    """The state an RCF gives: the endpoint identifier, the gatekeeper's identifier and time to live (s)."""

    endpoint_id: str
    gatekeeper_id: str | None
    time_to_live: int | None


class _RasProtocol(asyncio.DatagramProtocol):
    def __init__(self, client: RasClient) -> None:
        self._client = client

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._client._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("RAS socket error: %s", exc)


_CONFIRMS = {
    "gatekeeperRequest": ("gatekeeperConfirm", "gatekeeperReject"),
    "registrationRequest": ("registrationConfirm", "registrationReject"),
    "admissionRequest": ("admissionConfirm", "admissionReject"),
    "disengageRequest": ("disengageConfirm", "disengageReject"),
    "unregistrationRequest": ("unregistrationConfirm", "unregistrationReject"),
}


class RasClient:
    """A terminal's RAS endpoint towards one gatekeeper.

    ``call_signal`` is where this terminal accepts H.225.0 calls; ``aliases``
    its H.323 aliases. ``on_unregistered``/``on_disengage`` are called when the
    gatekeeper unregisters the terminal or drops a call (with the call id).
    Datagrams from any address but the gatekeeper's are dropped (``ignored``).
    """

    def __init__(self, gatekeeper: Address, call_signal: Address, aliases: Sequence[str], *, timeout: float = 3.0,
                 retries: int = 2, on_unregistered: Callable[[], None] | None = None,
                 on_disengage: Callable[[bytes | None], None] | None = None) -> None:
        self.gatekeeper = gatekeeper
        self.call_signal = call_signal
        self.aliases = tuple(aliases)
        self.timeout = timeout
        self.retries = retries
        self.gatekeeper_id: str | None = None
        self.registration: Registration | None = None
        self._on_unregistered = on_unregistered
        self._on_disengage = on_disengage
        self._transport: asyncio.DatagramTransport | None = None
        self._local: Address | None = None
        self._seq = secrets.randbelow(30000) + 1
        self._waiting: dict[int, asyncio.Future[RasMessage]] = {}
        self._keepalive: asyncio.Task[None] | None = None
        self.ignored = 0  # RAS datagrams from anyone but the gatekeeper, dropped

    def _from_gatekeeper(self, addr: tuple[str | Any, int]) -> bool:
        """Only the gatekeeper's own RAS address may confirm, reject, unregister or disengage (H.225.0 §7)."""
        return unmap(str(addr[0])) == unmap(self.gatekeeper.host) and int(addr[1]) == self.gatekeeper.port

    @property
    def ras_address(self) -> Address:
        if self._local is None:
            raise SignallingError("the RAS client is not started")
        return self._local

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind the local RAS socket."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _RasProtocol(self), local_addr=(host, port))
        self._transport = transport
        sock = transport.get_extra_info("sockname")
        self._local = Address(sock[0], sock[1])

    async def close(self) -> None:
        """Stop keep-alives and close the socket (call :meth:`unregister` first to leave the gatekeeper)."""
        if self._keepalive is not None:
            self._keepalive.cancel()
            try:
                await self._keepalive
            except asyncio.CancelledError:
                pass
            self._keepalive = None
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> RasClient:
        if self._transport is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _next_seq(self) -> int:
        self._seq = self._seq % 65535 + 1
        return self._seq

    async def _request(self, name: str, build: Callable[[int], Value]) -> RasMessage:
        if self._transport is None:
            raise SignallingError("the RAS client is not started")
        seq = self._next_seq()
        data = encode_ras(name, build(seq))
        future: asyncio.Future[RasMessage] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = future
        try:
            for attempt in range(self.retries + 1):
                self._transport.sendto(data, (self.gatekeeper.host, self.gatekeeper.port))
                try:
                    reply = await asyncio.wait_for(asyncio.shield(future), self.timeout)
                except asyncio.TimeoutError:
                    log.debug("%s %d: no answer (attempt %d)", name, seq, attempt + 1)
                    continue
                break
            else:
                raise SignallingTimeout(f"the gatekeeper did not answer {name} after {self.retries + 1} attempts")
        finally:
            self._waiting.pop(seq, None)
        confirm, reject = _CONFIRMS[name]
        if reply.name == reject:
            reason = reply.body.get("rejectReason", ("undefinedReason", 0))[0]
            raise RasRejected(f"the gatekeeper rejected {name}: {reason}", str(reason))
        if reply.name != confirm:
            raise SignallingError(f"the gatekeeper answered {name} with {reply.name}")
        return reply

    def _datagram(self, data: bytes, addr: tuple[str | Any, int] | None = None) -> None:
        if addr is not None and not self._from_gatekeeper(addr):
            self.ignored += 1
            (log.warning if self.ignored <= 10 else log.debug)(
                "ignoring a RAS message from %s:%s (not the gatekeeper %s:%d)", addr[0], addr[1],
                self.gatekeeper.host, self.gatekeeper.port)
            return
        try:
            message = parse_ras(data)
        except SignallingParseError as exc:
            log.warning("ignoring a malformed RAS message: %s", exc)
            return
        seq = message.sequence
        if message.name in ("unregistrationRequest", "disengageRequest") and seq is not None:
            self._gatekeeper_request(message, seq)
            return
        future = self._waiting.get(seq) if seq is not None else None
        if future is not None and not future.done():
            future.set_result(message)
        elif message.name == "requestInProgress":
            log.debug("gatekeeper: request %s in progress", seq)

    def _gatekeeper_request(self, message: RasMessage, seq: int) -> None:
        if self._transport is None:
            return
        if message.name == "unregistrationRequest":
            reply = encode_ras("unregistrationConfirm", unregistration_confirm(seq))
            self.registration = None
            if self._keepalive is not None:
                self._keepalive.cancel()
            if self._on_unregistered is not None:
                self._on_unregistered()
        else:
            reply = encode_ras("disengageConfirm", disengage_confirm(seq))
            call = message.body.get("callIdentifier")
            if self._on_disengage is not None:
                self._on_disengage(bytes(call["guid"]) if call else None)
        self._transport.sendto(reply, (self.gatekeeper.host, self.gatekeeper.port))

    async def discover(self) -> str | None:
        """GRQ -> GCF; returns (and remembers) the gatekeeper identifier."""
        reply = await self._request("gatekeeperRequest",
                                    lambda s: gatekeeper_request(s, self.ras_address, self.aliases))
        gk_id = reply.body.get("gatekeeperIdentifier")
        self.gatekeeper_id = str(gk_id) if gk_id is not None else None
        return self.gatekeeper_id

    async def register(self, time_to_live: int | None = None) -> Registration:
        """RRQ -> RCF; keeps the registration alive when the gatekeeper sets a time to live."""
        reply = await self._request("registrationRequest", lambda s: registration_request(
            s, self.call_signal, self.ras_address, self.aliases, gatekeeper_id=self.gatekeeper_id,
            time_to_live=time_to_live))
        ttl = reply.body.get("timeToLive")
        gk_id = reply.body.get("gatekeeperIdentifier", self.gatekeeper_id)
        self.registration = Registration(str(reply.body["endpointIdentifier"]),
                                         str(gk_id) if gk_id is not None else None,
                                         int(ttl) if ttl is not None else None)
        if self.registration.time_to_live and self._keepalive is None:
            self._keepalive = asyncio.get_running_loop().create_task(self._keep_alive())
        return self.registration

    async def _keep_alive(self) -> None:
        while self.registration is not None and self.registration.time_to_live:
            ttl = self.registration.time_to_live
            await asyncio.sleep(max(ttl - 10, ttl / 2))
            registration = self.registration
            if registration is None:
                break
            try:
                await self._request("registrationRequest", lambda s: registration_request(
                    s, self.call_signal, self.ras_address, (), gatekeeper_id=registration.gatekeeper_id,
                    endpoint_id=registration.endpoint_id, time_to_live=ttl, keep_alive=True))
            except SignallingError as exc:
                log.warning("RAS keep-alive failed: %s", exc)

    def _endpoint_id(self) -> str:
        if self.registration is None:
            raise SignallingError("not registered with a gatekeeper")
        return self.registration.endpoint_id

    async def admit(self, *, call_id: bytes, conference_id: bytes, call_reference: int,
                    destination: Sequence[str] = (), answer: bool = False, bandwidth: int = 2560,
                    destination_address: Address | None = None) -> Address:
        """ARQ -> ACF; returns the call signalling address to use (the callee's, for direct calls).

        ``destination_address``: the callee's address when the caller knows it (else the
        gatekeeper resolves ``destination``, the aliases).
        """
        endpoint_id = self._endpoint_id()
        reply = await self._request("admissionRequest", lambda s: admission_request(
            s, endpoint_id, self.aliases, call_id=call_id, conference_id=conference_id,
            call_reference=call_reference, destination=destination,
            destination_address=self.call_signal if answer else destination_address, answer=answer,
            bandwidth=bandwidth, gatekeeper_id=self.gatekeeper_id))
        if "destCallSignalAddress" not in reply.body:
            raise SignallingError("the gatekeeper's ACF names no call signalling address")
        return Address.from_h225(reply.body["destCallSignalAddress"])

    async def disengage(self, *, call_id: bytes, conference_id: bytes, call_reference: int, answered: bool) -> None:
        """DRQ -> DCF at the end of an admitted call."""
        endpoint_id = self._endpoint_id()
        await self._request("disengageRequest", lambda s: disengage_request(
            s, endpoint_id, call_id=call_id, conference_id=conference_id, call_reference=call_reference,
            answered=answered))

    async def unregister(self) -> None:
        """URQ -> UCF; stops the keep-alives."""
        registration = self.registration
        await self._request("unregistrationRequest", lambda s: unregistration_request(
            s, self.call_signal, registration.endpoint_id if registration else None, self.aliases))
        self.registration = None
        if self._keepalive is not None:
            self._keepalive.cancel()
            try:
                await self._keepalive
            except asyncio.CancelledError:
                pass
            self._keepalive = None
