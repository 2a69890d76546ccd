"""Gatekeeper RAS (H.225.0 §7.7–§7.11, UDP 1719): discovery, registration, admission, disengage, unregistration.

Builders return ``RasMessage`` values (see :mod:`vcore.h323.asn1`); :class:`RasClient`
is a small asyncio endpoint that registers a terminal's aliases with an existing
gatekeeper, keeps the registration alive with lightweight RRQs (H.225.0 §7.9.1,
``keepAlive``), asks admission for calls (ARQ/ACF: the gatekeeper resolves an alias
to a call signalling address) and reports their end (DRQ). Requests are
retransmitted ``retries`` times after ``timeout`` seconds each (H.225.0 §7.x "the
endpoint may retry"); a RequestInProgress (RIP) from the gatekeeper lets the
attempt wait its ``delay`` more (H.225.0 Appendix II); then :class:`SignallingTimeout`.
A reject raises :class:`RasRejected` with the reject reason's name
(``undefinedReason`` when it is missing or unknown).

Gatekeeper-initiated URQ and DRQ are confirmed and reported through callbacks;
other gatekeeper requests (IRQ, BRQ, ...) are ignored. The client is an asyncio
object: use it from one event loop.

Only the gatekeeper's address is listened to (``ignored`` counts the others), and
every value vcore takes from its messages is checked against its H.225.0 type
before use: sequence numbers, identifiers (1..128 printable characters, they
are logged), ``timeToLive`` (a longer one than a day is taken as a day), the
ACF's ``bandWidth`` and call signalling address (a unicast IPv4/IPv6 host and a
port other than 0), the RIP ``delay``, a DRQ's call identifier (16 bytes). A
confirm that fails a check makes its request raise :class:`SignallingParseError`
(or :class:`SignallingError` for an unusable address); any other message that
fails one, or that answers no pending request, is dropped and counted
(``dropped``), so no state changes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..supervisor import cancel_and_wait
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

# Ranges of the H.225.0 ASN.1 types (H323-MESSAGES) whose values vcore uses.
_SEQ_MAX = 65535  # RequestSeqNum ::= INTEGER (1..65535)
_TTL_MAX = 4294967295  # TimeToLive ::= INTEGER (1..4294967295), seconds
_BANDWIDTH_MAX = 4294967295  # BandWidth ::= INTEGER (0..4294967295), units of 100 bit/s
_DELAY_MAX = 65535  # RequestInProgress.delay INTEGER (1..65535), milliseconds
_PORT_MAX = 65535  # TransportAddress ipAddress/ip6Address port INTEGER (0..65535); vcore refuses 0
_ID_MAX = 128  # EndpointIdentifier, GatekeeperIdentifier ::= BMPString (SIZE(1..128))
_GUID_LEN = 16  # GloballyUniqueID ::= OCTET STRING (SIZE(16)), CallIdentifier.guid
_KEEPALIVE_TTL_MAX = 86400  # vcore: a longer timeToLive is taken as one day (refreshing sooner is allowed)
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")  # RFC 1122 §3.2.1.3 "this network": never a destination


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
        """``requestSeqNum`` when it is an int in 1..65535, else None."""
        seq = self.body.get("requestSeqNum") if isinstance(self.body, dict) else None
        return seq if type(seq) is int and 1 <= seq <= _SEQ_MAX else None


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


# --------------------------------------------------------------------------- checks of received values


def _show(value: Value) -> str:
    """A received value, short, for an error message (``repr`` of a huge int or a deep list may fail)."""
    try:
        text = repr(value)
    except Exception:  # ValueError (the int digits limit), RecursionError...
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


def _number(body: Value, key: str, low: int, high: int, what: str) -> int:
    """``body[key]`` if it is an int in ``low..high``, else (absent too) :class:`SignallingParseError`."""
    value = body.get(key)
    if type(value) is not int or not low <= value <= high:  # bool, float (NaN), str... are refused too
        raise SignallingParseError(f"the gatekeeper's {what}: {key} {_show(value)} is not an integer in {low}..{high}")
    return value


def _identifier(body: Value, key: str, what: str) -> str | None:
    """``body[key]``, an endpoint/gatekeeper identifier: 1..128 printable characters (it is logged); None if absent."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= _ID_MAX or not value.isprintable():
        raise SignallingParseError(f"the gatekeeper's {what}: {key} {_show(value)} is not 1..{_ID_MAX} "
                                   "printable characters")
    return value


def _reject_reason(body: Value) -> str:
    """A reject's ``rejectReason`` name; ``undefinedReason`` if missing, unknown (an extension) or malformed."""
    reason = body.get("rejectReason") if isinstance(body, dict) else None
    name = reason[0] if isinstance(reason, tuple) and len(reason) == 2 else None
    if isinstance(name, str) and len(name) <= 64 and name.isidentifier() and not name.startswith("_"):
        return name
    return "undefinedReason"


def _call_address(value: Value, what: str) -> Address:
    """An H.225.0 ``TransportAddress`` vcore may connect to: IPv4/IPv6, a unicast host, port 1..65535."""
    if value is None:
        raise SignallingError(f"the gatekeeper's {what} names no call signalling address")
    kind, inner = value if isinstance(value, tuple) and len(value) == 2 else (None, None)
    if kind not in ("ipAddress", "ip6Address") or not isinstance(inner, dict):
        raise SignallingParseError(f"the gatekeeper's {what}: the call signalling address is not IP ({_show(kind)})")
    raw = inner.get("ip")
    if not isinstance(raw, bytes) or len(raw) != (4 if kind == "ipAddress" else 16):
        raise SignallingParseError(f"the gatekeeper's {what}: {kind} ip {_show(raw)} is not "
                                   f"{4 if kind == 'ipAddress' else 16} bytes")
    port = _number(inner, "port", 1, _PORT_MAX, what)
    ip = ipaddress.ip_address(raw)
    host = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
    # IPv4 is_reserved: 240.0.0.0/4, the limited broadcast 255.255.255.255 included
    if host.is_unspecified or host.is_multicast or (
            isinstance(host, ipaddress.IPv4Address) and (host.is_reserved or host in _THIS_NETWORK)):
        raise SignallingError(f"the gatekeeper's {what} names {ip} (port {port}): not a unicast host address")
    return Address(str(ip), port)


# --------------------------------------------------------------------------- client


@dataclass(frozen=True)
class Registration:
    """The state an RCF gives: the endpoint identifier, the gatekeeper's identifier and time to live (s, ≤ 1 day)."""

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
    Datagrams from any address but the gatekeeper's are dropped (``ignored``);
    the gatekeeper's messages that are malformed, out of range or answer no
    pending request are dropped too (``dropped``).
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
        self._waiting: dict[int, tuple[str, asyncio.Future[RasMessage]]] = {}  # seq -> (request, its answer)
        self._in_progress: dict[int, float] = {}  # seq -> the delay (s) a RequestInProgress asked for
        self._keepalive: asyncio.Task[None] | None = None
        self.ignored = 0  # RAS datagrams from anyone but the gatekeeper, dropped
        self.dropped = 0  # the gatekeeper's RAS datagrams that were malformed, out of range or unexpected

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
            await cancel_and_wait(self._keepalive)
            self._keepalive = None
        for _, future in self._waiting.values():
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
        self._waiting[seq] = (name, future)
        try:
            for attempt in range(self.retries + 1):
                self._transport.sendto(data, (self.gatekeeper.host, self.gatekeeper.port))
                reply = await self._answer(seq, future)
                if reply is not None:
                    break
                log.debug("%s %d: no answer (attempt %d)", name, seq, attempt + 1)
            else:
                raise SignallingTimeout(f"the gatekeeper did not answer {name} after {self.retries + 1} attempts")
        finally:
            self._waiting.pop(seq, None)
            self._in_progress.pop(seq, None)
        if reply.name == _CONFIRMS[name][1]:
            reason = _reject_reason(reply.body)
            raise RasRejected(f"the gatekeeper rejected {name}: {reason}", reason)
        return reply  # _message resolves the future only with this request's confirm or reject

    async def _answer(self, seq: int, future: asyncio.Future[RasMessage]) -> RasMessage | None:
        """The reply within ``timeout``, or within the delay of a RIP that came meanwhile (once per attempt)."""
        wait = self.timeout
        for _ in range(2):
            try:
                return await asyncio.wait_for(asyncio.shield(future), wait)
            except asyncio.TimeoutError:
                wait = self._in_progress.pop(seq, 0.0)
                if not wait:
                    break
        return None

    def _datagram(self, data: bytes, addr: tuple[str | Any, int] | None = None) -> None:
        if addr is not None and not self._from_gatekeeper(addr):
            self.ignored += 1
            (log.warning if self.ignored <= 10 else log.debug)(
                "ignoring a RAS message from %s:%s (not the gatekeeper %s:%d)", addr[0], addr[1],
                self.gatekeeper.host, self.gatekeeper.port)
            return
        try:
            self._message(parse_ras(data))
        except SignallingError as exc:  # checks fail before any state changes
            self.dropped += 1
            (log.warning if self.dropped <= 10 else log.debug)("dropping a RAS message from the gatekeeper: %s", exc)

    def _message(self, message: RasMessage) -> None:
        """Route a gatekeeper's message: its own requests, a RIP, or the answer to a pending request."""
        seq = message.sequence
        if seq is None:
            raise SignallingParseError(f"{message.name:.40} without a requestSeqNum in 1..{_SEQ_MAX}")
        if message.name in ("unregistrationRequest", "disengageRequest"):
            self._gatekeeper_request(message, seq)
            return
        name, future = self._waiting.get(seq, ("", None))
        if future is None or future.done():  # late (a retransmission's answer), or unsolicited
            self.dropped += 1
            log.debug("dropping the gatekeeper's %.40s %d: it answers no pending request", message.name, seq)
            return
        if message.name == "requestInProgress":
            delay = _number(message.body, "delay", 1, _DELAY_MAX, "RIP")
            self._in_progress[seq] = delay / 1000
            log.debug("gatekeeper: %s %d in progress, %s ms", name, seq, delay)
        elif message.name in _CONFIRMS[name]:
            future.set_result(message)
        else:
            raise SignallingError(f"{message.name:.40} {seq} does not answer {name}")

    def _gatekeeper_request(self, message: RasMessage, seq: int) -> None:
        """Confirm the gatekeeper's URQ or DRQ once its fields are checked, then report it."""
        body, what = message.body, message.name
        endpoint_id = _identifier(body, "endpointIdentifier", what)
        if endpoint_id is not None and self.registration is not None \
                and endpoint_id != self.registration.endpoint_id:
            raise SignallingError(f"{what} for endpoint {_show(endpoint_id)}, not this one")
        guid: bytes | None = None
        if what == "disengageRequest":
            if endpoint_id is None:
                raise SignallingParseError("disengageRequest without an endpointIdentifier")
            call = body.get("callIdentifier")
            if call is not None:
                guid = call.get("guid") if isinstance(call, dict) else None
                if not isinstance(guid, bytes) or len(guid) != _GUID_LEN:
                    raise SignallingParseError(f"disengageRequest: callIdentifier guid {_show(guid)} is not "
                                               f"{_GUID_LEN} bytes")
        if self._transport is None:
            return
        if what == "unregistrationRequest":
            self._transport.sendto(encode_ras("unregistrationConfirm", unregistration_confirm(seq)),
                                   (self.gatekeeper.host, self.gatekeeper.port))
            self.registration = None
            if self._keepalive is not None:
                self._keepalive.cancel()
                self._keepalive = None  # a later register() starts keep-alives again
            if self._on_unregistered is not None:
                self._on_unregistered()
        else:
            self._transport.sendto(encode_ras("disengageConfirm", disengage_confirm(seq)),
                                   (self.gatekeeper.host, self.gatekeeper.port))
            if self._on_disengage is not None:
                self._on_disengage(guid)

    async def discover(self) -> str | None:
        """GRQ -> GCF; returns (and remembers) the gatekeeper identifier."""
        reply = await self._request("gatekeeperRequest",
                                    lambda s: gatekeeper_request(s, self.ras_address, self.aliases))
        self.gatekeeper_id = _identifier(reply.body, "gatekeeperIdentifier", "GCF")
        return self.gatekeeper_id

    async def register(self, time_to_live: int | None = None) -> Registration:
        """RRQ -> RCF; keeps the registration alive when the gatekeeper sets a time to live."""
        reply = await self._request("registrationRequest", lambda s: registration_request(
            s, self.call_signal, self.ras_address, self.aliases, gatekeeper_id=self.gatekeeper_id,
            time_to_live=time_to_live))
        endpoint_id = _identifier(reply.body, "endpointIdentifier", "RCF")
        if endpoint_id is None:
            raise SignallingParseError("the gatekeeper's RCF has no endpointIdentifier")
        gk_id = _identifier(reply.body, "gatekeeperIdentifier", "RCF") or self.gatekeeper_id
        ttl = _number(reply.body, "timeToLive", 1, _TTL_MAX, "RCF") if "timeToLive" in reply.body else None
        if ttl is not None and ttl > _KEEPALIVE_TTL_MAX:
            log.warning("the gatekeeper's timeToLive %d s is taken as %d s (one day)", ttl, _KEEPALIVE_TTL_MAX)
            ttl = _KEEPALIVE_TTL_MAX
        self.registration = Registration(endpoint_id, gk_id, ttl)
        if self.registration.time_to_live and self._keepalive is None:
            self._keepalive = asyncio.get_running_loop().create_task(self._keep_alive())
        return self.registration

    async def _keep_alive(self) -> None:
        while self.registration is not None and self.registration.time_to_live:
            ttl = self.registration.time_to_live  # 1 s .. 1 day (register): sleeps 0.5 s .. a day less 10 s
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
        gatekeeper resolves ``destination``, the aliases). An ACF without a usable
        address (unspecified, multicast, broadcast, port 0) raises :class:`SignallingError`;
        with ``answer`` (the callee asking) its address is not used: this terminal's is returned.
        The granted ``bandWidth`` is checked, not enforced.
        """
        endpoint_id = self._endpoint_id()
        reply = await self._request("admissionRequest", lambda s: admission_request(
            s, endpoint_id, self.aliases, call_id=call_id, conference_id=conference_id,
            call_reference=call_reference, destination=destination,
            destination_address=self.call_signal if answer else destination_address, answer=answer,
            bandwidth=bandwidth, gatekeeper_id=self.gatekeeper_id))
        granted = _number(reply.body, "bandWidth", 0, _BANDWIDTH_MAX, "ACF")
        if answer:  # the callee connects nowhere: GnuGk's ACF to an answering endpoint names port 0
            address = self.call_signal
        else:
            address = _call_address(reply.body.get("destCallSignalAddress"), "ACF")
        if granted < bandwidth:
            log.debug("the gatekeeper granted %d00 bit/s of the %d00 asked (not enforced)", granted, bandwidth)
        return address

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
            await cancel_and_wait(self._keepalive)
            self._keepalive = None
