"""The transaction layer's asyncio side and the dispatch of messages to their transaction or dialog.

:class:`SipCore` owns the transports, runs the pure transactions of
:mod:`vcore.sip.transaction` on the event loop (timers through
``loop.call_at``, time from ``loop.time()``), matches responses to client
transactions (RFC 3261 §17.1.3) and requests to server transactions
(§17.2.3), answers what no dialog wants (CANCEL of an unknown INVITE 481,
OPTIONS 200, unknown methods 405 / 501) and hands the rest to ``handler``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .errors import SipError, SipParseError
from .message import BRANCH_COOKIE, SipMessage
from .transaction import Action, ClientTransaction, ServerTransaction, State
from .transport import Flow, SipTransport

__all__ = ["ALLOW", "USER_AGENT", "ClientTxn", "ServerTxn", "SipCore", "response_to"]

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"
USER_AGENT = "vcore"
_NO_ANSWER = (408, "Request Timeout")  # RFC 3261 §17.1.1.2: timer B fires as a 408 to the TU


def response_to(request: SipMessage, status: int, reason: str, *, to_tag: str | None = None,
                extra: list[tuple[str, str]] | None = None, body: bytes = b"") -> SipMessage:
    """A response copying Via, From, To (plus ``to_tag`` when it has none), Call-ID and CSeq (§8.2.6.2)."""
    headers = [(n, v) for n, v in request.headers if n in ("Via", "Record-Route") and (n == "Via" or status < 300)]
    to = request.get("To") or ""
    if to_tag is not None and request.to.tag is None and status > 100:
        to = str(request.to.with_tag(to_tag))
    headers += [("From", request.get("From") or ""), ("To", to), ("Call-ID", request.call_id),
                ("CSeq", request.get("CSeq") or ""), ("Server", USER_AGENT)]
    headers += extra or []
    return SipMessage.response(status, reason, headers, body)


class _TxnBase:
    def __init__(self, core: SipCore, flow: Flow) -> None:
        self.core = core
        self.flow = flow
        self.handle: asyncio.TimerHandle | None = None

    def _apply(self, actions: list[Action]) -> None:
        raise NotImplementedError


class ClientTxn(_TxnBase):
    """A running client transaction: :meth:`response` yields its responses (a 408 when it times out)."""

    def __init__(self, core: SipCore, txn: ClientTransaction, flow: Flow) -> None:
        super().__init__(core, flow)
        self.txn = txn
        self.responses: asyncio.Queue[SipMessage] = asyncio.Queue()
        self.done = False
        self.failure: str | None = None

    @property
    def request(self) -> SipMessage:
        return self.txn.request

    async def response(self) -> SipMessage:
        """The next response (provisional or final); the transaction's timers bound the wait."""
        return await self.responses.get()

    async def final(self) -> SipMessage:
        """The final response, skipping provisional ones."""
        while True:
            r = await self.response()
            if r.status is not None and r.status >= 200:
                return r

    def fail(self, why: str) -> None:
        """The transport failed: the TU sees a 503 (RFC 3261 §8.1.3.1) naming ``why``."""
        self.failure = why
        self._apply(self.txn.transport_error())

    def _apply(self, actions: list[Action]) -> None:
        for a in actions:
            if a.kind == "send" and a.message is not None:
                why = self.core.send_nowait(a.message, self.flow)
                if why is not None and a.message is self.txn.request and self.flow.reliable:
                    self.fail(why)  # nothing will ever answer on a closed connection
                    return
            elif a.kind == "deliver" and a.message is not None:
                self.responses.put_nowait(a.message)
            elif a.kind == "timeout" and self.failure is not None:
                self.responses.put_nowait(response_to(self.txn.request, 503, f"Service Unavailable - {self.failure}"))
            elif a.kind == "timeout":
                self.responses.put_nowait(response_to(self.txn.request, *_NO_ANSWER))
            elif a.kind == "terminated":
                self.done = True
                self.core._forget_client(self)
        self.core._schedule(self, self.txn.next_deadline)


class ServerTxn(_TxnBase):
    """A running server transaction: :meth:`respond` sends through it (retransmitted over UDP as needed)."""

    def __init__(self, core: SipCore, txn: ServerTransaction, flow: Flow, key: tuple[str, str, str]) -> None:
        super().__init__(core, flow)
        self.txn = txn
        self.key = key
        self.on_timeout: Callable[[], None] | None = None

    @property
    def request(self) -> SipMessage:
        return self.txn.request

    @property
    def answered(self) -> bool:
        return self.txn.last_response is not None and (self.txn.last_response.status or 0) >= 200

    def respond(self, response: SipMessage) -> None:
        self._apply(self.txn.respond(response, self.core.now()))

    def reply(self, status: int, reason: str, **kw: Any) -> None:
        """Respond with a response built by :func:`response_to`."""
        self.respond(response_to(self.txn.request, status, reason, **kw))

    def ack_received(self) -> None:
        self._apply(self.txn.ack_received())

    def _apply(self, actions: list[Action]) -> None:
        for a in actions:
            if a.kind == "send" and a.message is not None:
                self.core.send_nowait(a.message, self.flow)
            elif a.kind == "timeout" and self.on_timeout is not None:
                self.on_timeout()
            elif a.kind == "terminated":
                self.core._forget_server(self)
        self.core._schedule(self, self.txn.next_deadline)


Handler = Callable[[SipMessage, "ServerTxn | None", Flow], None]


class SipCore:
    """Transports + transactions. ``handler(request, server_txn, flow)`` gets every new request
    (``server_txn`` None for an ACK of a 2xx and for a CANCEL, which comes with the INVITE's transaction
    through ``on_cancel``) and ``on_stray(response)`` the 2xx retransmissions no transaction holds."""

    def __init__(self, handler: Handler, on_cancel: Callable[[ServerTxn], None],
                 on_stray: Callable[[SipMessage], None]) -> None:
        self.handler = handler
        self.on_cancel = on_cancel
        self.on_stray = on_stray
        self.transports: dict[str, SipTransport] = {}
        self._client: dict[tuple[str, str], ClientTxn] = {}
        self._server: dict[tuple[str, str, str], ServerTxn] = {}
        self._loop = asyncio.get_running_loop()
        self.closed = False

    def now(self) -> float:
        return self._loop.time()

    def add_transport(self, transport: SipTransport) -> None:
        self.transports[transport.name] = transport
        transport.on_connection_lost = self._connection_lost

    def _connection_lost(self, connection: object) -> None:
        """A TCP/TLS connection closed: its pending client transactions fail now (RFC 3261 §17.1.4), not at timer B."""
        for w in list(self._client.values()):
            if w.flow.connection is connection and not w.done:
                w.fail("the connection closed")

    def transport_of(self, flow: Flow) -> SipTransport:
        t = self.transports.get(flow.transport)
        if t is None:
            raise SipError(f"no SIP/{flow.transport} transport")
        return t

    def send_nowait(self, message: SipMessage, flow: Flow) -> str | None:
        """Send now; returns why it could not (logged), or None."""
        try:
            self.transport_of(flow).send_nowait(message, flow)
        except SipError as exc:
            log.info("SIP: cannot send %s: %s", message.summary(), exc)
            return str(exc)
        return None

    async def send(self, message: SipMessage, flow: Flow) -> None:
        await self.transport_of(flow).send(message, flow)

    def start_client(self, request: SipMessage, flow: Flow) -> ClientTxn:
        """Send ``request`` (its top Via carries a fresh branch) in a new client transaction."""
        txn = ClientTransaction(request, reliable=flow.reliable)
        w = ClientTxn(self, txn, flow)
        assert request.method is not None
        self._client[(txn.branch, "INVITE" if request.method == "ACK" else request.method)] = w
        w._apply(txn.start(self.now()))
        return w

    def _schedule(self, w: _TxnBase, deadline: float | None) -> None:
        if w.handle is not None:
            w.handle.cancel()
            w.handle = None
        if deadline is not None and not self.closed:
            w.handle = self._loop.call_at(deadline, self._fire, w)

    def _fire(self, w: _TxnBase) -> None:
        w.handle = None
        txn = w.txn  # type: ignore[attr-defined]
        w._apply(txn.on_timer(self.now()))

    def _forget_client(self, w: ClientTxn) -> None:
        key = (w.txn.branch, w.txn.request.method or "")
        if self._client.get(key) is w:
            del self._client[key]

    def _forget_server(self, w: ServerTxn) -> None:
        if self._server.get(w.key) is w:
            del self._server[w.key]

    def close(self) -> None:
        """Stop every timer (the transports are closed by their owner)."""
        self.closed = True
        for w in [*self._client.values(), *self._server.values()]:
            if w.handle is not None:
                w.handle.cancel()
        for c in self._client.values():
            c.responses.put_nowait(response_to(c.txn.request, 503, "Service Unavailable"))
        self._client.clear()
        self._server.clear()

    # ------------------------------------------------------------ dispatch

    def on_message(self, message: SipMessage, flow: Flow) -> None:
        """The transports' callback."""
        if self.closed:
            return
        if not message.is_request:
            via = message.top_via
            key = (via.branch or "", message.cseq[1])
            client = self._client.get(key)
            if client is not None:
                client._apply(client.txn.on_response(message, self.now()))
            elif message.cseq[1] == "INVITE" and 200 <= (message.status or 0) < 300:
                self.on_stray(message)
            else:
                log.debug("SIP: stray response %s dropped", message.summary())
            return
        via = message.top_via
        branch = via.branch or ""
        method = message.method or ""
        if not branch.startswith(BRANCH_COOKIE):
            if method != "ACK":
                self.send_nowait(response_to(message, 400, "Bad Request - Via branch lacks the RFC 3261 cookie"),
                                 flow)
            return
        sent_by = f"{via.host}:{via.port or ''}"
        if method == "ACK":
            server = self._server.get((branch, sent_by, "INVITE"))
            if server is not None and server.txn.state == State.COMPLETED:  # the ACK of an error response
                server._apply(server.txn.on_request(message, self.now()))
                return
            self.handler(message, None, flow)
            return
        skey = (branch, sent_by, method)
        existing = self._server.get(skey)
        if existing is not None:
            existing._apply(existing.txn.on_request(message, self.now()))
            return
        server = ServerTxn(self, ServerTransaction(message, reliable=flow.reliable), flow, skey)
        self._server[skey] = server
        forwards = message.get("Max-Forwards")
        if forwards is not None and int(forwards) == 0 and method != "OPTIONS":
            server.reply(483, "Too Many Hops")
            return
        required = [r for r in message.get_all("Require") if r.lower() != "sec-agree"] if method != "CANCEL" else []
        if required:
            server.reply(420, "Bad Extension", extra=[("Unsupported", ", ".join(required))])
            return
        if method == "CANCEL":
            invite = self._server.get((branch, sent_by, "INVITE"))
            if invite is None:
                server.reply(481, "Call/Transaction Does Not Exist")
                return
            server.reply(200, "OK")
            self.on_cancel(invite)
            return
        try:
            self.handler(message, server, flow)
        except SipParseError as exc:
            if not server.answered:
                server.reply(400, "Bad Request - " + str(exc)[:100])
