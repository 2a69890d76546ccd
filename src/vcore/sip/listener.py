"""The SIP user agent of a terminal: listens, accepts calls (:meth:`SipListener.accept`), places them.

Like :class:`vcore.h323.SignallingListener`, a :class:`SipListener` yields
incoming calls as sessions that already answered ``100 Trying``; it also
places calls (:meth:`~SipListener.place_call`) from the same transports, so
that responses, NAT bindings (``rport``) and registrations share one address.

Identity over TLS (mutual, the station's PKI): a caller's certificate must
hold the user part of its ``From`` URI as an alias (``h323:`` or ``sip:``
subjectAltName), pass the allow-list or the role policy, as over H.323; a
callee's certificate must hold the user dialled, or the host of a URI without
user (RFC 5922 §7.2: DNS or ``sip:`` subjectAltName).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .. import pki
from ..callcontrol import RefusedCall
from ..h323.fast_connect import MediaEndpoints, MediaPolicy
from ..h323.messages import DEFAULT_FORMATS
from ..supervisor import Supervisor
from ..transport.dtls import DtlsCertificate
from . import sdp
from .auth import Credentials, authorization, best_challenge
from .causes import warning_text as _warning_text
from .dialog import MAX_FORWARDS, Dialog
from .errors import SipError, SipParseError, SipSecurityError, SipTimeout
from .identity import CallerIdentity, asserted_identity, certificate_sip_names
from .message import NameAddr, SipMessage, SipUri, format_host, new_branch, new_tag
from .session import SipSession
from .transport import DEFAULT_PORTS, TRANSPORTS, Flow, SipTransport
from .ua import ALLOW, USER_AGENT, ServerTxn, SipCore

__all__ = ["CallerIdentity", "SipConfig", "SipListener", "asserted_identity", "certificate_sip_names"]

log = logging.getLogger(__name__)

_REFUSED_KEPT = 256
EndpointsFactory = Callable[[str, str], Awaitable[MediaEndpoints]]


@dataclass(frozen=True)
class SipConfig:
    """A terminal's SIP settings beside its transports.

    ``user``: the user part of this terminal's URI (its alias). ``domain``:
    the host part of its address-of-record (None: its own address).
    ``allow_plaintext_signalling``: permit UDP/TCP (never implied).
    ``sdes_over_plaintext``: put SRTP keys (RFC 4568) in SDP over UDP/TCP too
    (they travel readable; off unless configured, logged). ``dtls``: DTLS-SRTP (RFC 5763/5764,
    :mod:`vcore.sip.sdp_dtls`): ``"answer"`` (default: accepted when a peer offers it),
    ``"offer"`` (offered instead of SDES), ``"off"``. Timeouts in seconds.
    """

    user: str
    policy: MediaPolicy = field(default_factory=lambda: MediaPolicy(DEFAULT_FORMATS))
    display_name: str | None = None
    domain: str | None = None
    allow_list: frozenset[str] | None = None
    accept_roles: frozenset[str] | None = None
    allow_plaintext_signalling: bool = False
    sdes_over_plaintext: bool = False
    legacy_certificates: bool = False
    setup_timeout: float = 10.0
    answer_timeout: float = 180.0
    dtls: str = "answer"
    trusted_proxies: tuple[SipUri, ...] = ()
    """SIP servers (the registrar, the outbound proxy, others configured) whose TLS hop is trusted to relay
    calls and assert the caller's identity (``P-Asserted-Identity``, RFC 3325); see :meth:`SipListener.trusted_hop`."""


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class SipListener:
    """A SIP user agent on ``transport`` (``tls``, ``tcp`` or ``udp``).

    TLS needs ``server_context``/``client_context`` from :mod:`vcore.pki`;
    UDP and TCP need ``config.allow_plaintext_signalling``. ``credentials``
    answer digest challenges (registrar, proxy); ``outbound_proxy``
    (``sip:host[:port][;transport=...]``) receives every out-of-dialog request.
    """

    def __init__(self, config: SipConfig, transport: str = "tls", *, server_context: ssl.SSLContext | None = None,
                 client_context: ssl.SSLContext | None = None, credentials: Credentials | None = None,
                 outbound_proxy: str | None = None,
                 on_refused: Callable[[RefusedCall], None] | None = None) -> None:
        if transport not in TRANSPORTS:
            raise SipError(f"unknown SIP transport {transport!r} (tls, tcp or udp)")
        if transport != "tls" and not config.allow_plaintext_signalling:
            raise SipSecurityError(f"SIP over {transport.upper()} is plaintext signalling, which the configuration "
                                   "does not allow (use tls, or allow plaintext explicitly)")
        if transport != "tls":
            log.warning("SIP over %s: signalling in clear (allowed by configuration)", transport.upper())
        if config.sdes_over_plaintext:
            log.warning("SRTP keys (SDES) may travel in clear in SDP over plaintext SIP (allowed by configuration)")
        self.config = config
        self.kind = transport
        self.server_context = server_context
        self.client_context = client_context
        self.credentials = credentials
        self.outbound_proxy = SipUri.parse(outbound_proxy) if outbound_proxy else None
        self._on_refused = on_refused
        self.refused: deque[RefusedCall] = deque(maxlen=_REFUSED_KEPT)
        self._core: SipCore | None = None
        self.host = ""
        self._incoming: asyncio.Queue[SipSession] = asyncio.Queue()
        self._dialogs: dict[tuple[str, str], SipSession] = {}
        self._early: dict[ServerTxn, SipSession] = {}
        self._sessions: set[SipSession] = set()
        self._nonce_counts: dict[str, int] = {}
        self._tasks = Supervisor("SIP user agent")
        self.public_contact: tuple[str, int] | None = None  # learnt from rport/received (RFC 3581) at REGISTER
        self._dtls_certificate: DtlsCertificate | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def core(self) -> SipCore:
        """The transaction layer (once started)."""
        if self._core is None:
            raise SipError("the SIP listener is not started")
        return self._core

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (port 0: any free port)."""
        self._core = SipCore(self._on_request, self._on_cancel, self._on_stray)
        self.host = host
        await self._transport(self.kind, port)

    async def _transport(self, kind: str, port: int = 0) -> SipTransport:
        name = kind.upper()
        existing = self.core.transports.get(name)
        if existing is not None:
            return existing
        if kind != "tls" and not self.config.allow_plaintext_signalling:
            raise SipSecurityError(f"SIP over {name} is plaintext signalling, which the configuration does not allow")
        t = SipTransport(kind, self.core.on_message, server_context=self.server_context,
                         client_context=self.client_context)
        t.on_tls_failure = lambda peer, detail: self._refuse(peer, None, "tlsFailure", detail)
        await t.start(self.host, port)
        self.core.add_transport(t)
        return t

    @property
    def port(self) -> int:
        """The port of the main transport."""
        if self._core is None or self.kind.upper() not in self._core.transports:
            raise SipError("the SIP listener is not started")
        return self.core.transports[self.kind.upper()].port

    @property
    def uri(self) -> SipUri:
        """This terminal's SIP URI (``sips:user@host:port`` over TLS)."""
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        params: dict[str, str | None] = {"transport": self.kind} if self.kind == "tcp" else {}
        return SipUri("sips" if self.kind == "tls" else "sip", host, self.config.user, self.port, params)

    @property
    def sessions(self) -> int:
        """Calls this user agent still holds (offered, ringing or connected): 0 once they all ended."""
        return len(self._sessions | set(self._dialogs.values()) | set(self._early.values()))

    async def accept(self, timeout: float | None = None) -> SipSession:
        """The next incoming call (INVITE received, 100 Trying sent)."""
        try:
            return await asyncio.wait_for(self._incoming.get(), timeout)
        except TimeoutError:
            raise SipTimeout(f"no incoming SIP call within {timeout} s") from None

    async def close(self) -> None:
        """Hang up every session, stop the transports (idempotent)."""
        for session in list(self._sessions):
            await session.hangup("undefinedReason", 41)
        for session in [s for s in self._dialogs.values() if s.bye_pending]:
            await session._no_ack()  # closing: the BYE waited for an ACK that may never come
        while not self._incoming.empty():
            await self._incoming.get_nowait().hangup("undefinedReason", 41)
        await self._tasks.aclose()
        if self._core is not None:
            await asyncio.sleep(0)  # let the last BYE/CANCEL leave
            self._core.close()
            for t in list(self._core.transports.values()):
                await t.close()

    def set_tls_contexts(self, server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> None:
        """New TLS contexts (a new CRL): for the next connections accepted or opened."""
        self.server_context, self.client_context = server_context, client_context
        if self._core is not None:
            for t in self._core.transports.values():
                if t.kind == "tls":
                    t.server_context, t.client_context = server_context, client_context

    # ------------------------------------------------------------ addressing

    @property
    def dtls_certificate(self) -> DtlsCertificate | None:
        """The self-signed DTLS-SRTP certificate of this user agent (made when first needed); None if DTLS is off."""
        if self.config.dtls == "off":
            return None
        if self._dtls_certificate is None:
            self._dtls_certificate = DtlsCertificate.generate(f"vcore {self.config.user}")
        return self._dtls_certificate

    def transport_of(self, flow: Flow) -> SipTransport:
        return self.core.transport_of(flow)

    def peer_name(self, flow: Flow) -> str | None:
        if flow.connection is None:
            return None
        return pki.peer_common_name(flow.connection.ssl_object)

    def local_host(self, flow: Flow) -> str:
        return self.transport_of(flow).local_address(flow)[0]

    def via(self, flow: Flow, branch: str) -> str:
        host, port = self.transport_of(flow).local_address(flow)
        return f"SIP/2.0/{flow.transport} {format_host(host)}:{port};branch={branch};rport"

    def contact(self, flow: Flow, *, sips: bool = True) -> str:
        """Our Contact on ``flow``. Over TLS: a ``sips:`` URI, or ``sip:...;transport=tls`` when the dialog's
        INVITE named a ``sip:`` URI (``sips=False``; RFC 3261 §12.1.1 asks ``sips:`` only for a ``sips:``
        Request-URI, and baresip 1.0 cannot send to a ``sips:`` Contact)."""
        host, port = self.public_contact or self.transport_of(flow).local_address(flow)
        if flow.transport == "TLS":
            if not sips:
                return f"<sip:{self.config.user}@{format_host(host)}:{port};transport=tls>"
            return f"<sips:{self.config.user}@{format_host(host)}:{port}>"
        suffix = ";transport=tcp" if flow.transport == "TCP" else ""
        return f"<sip:{self.config.user}@{format_host(host)}:{port}{suffix}>"

    def aor(self, flow: Flow) -> NameAddr:
        """This terminal's address-of-record (From of the requests it starts)."""
        host = self.config.domain or self.local_host(flow)
        scheme = "sips" if flow.transport == "TLS" else "sip"
        port = None if self.config.domain else self.transport_of(flow).port
        return NameAddr(SipUri(scheme, host, self.config.user, port), self.config.display_name)

    async def flow_to(self, uri: SipUri) -> Flow:
        """A flow toward ``uri`` (or the outbound proxy): its transport (started if needed), host and port."""
        target = self.outbound_proxy or uri
        kind = target.params.get("transport") or ("tls" if target.secure else self.kind)
        kind = (kind or "").lower()
        if kind not in TRANSPORTS:
            raise SipError(f"unsupported SIP transport {kind!r} in {uri}")
        if uri.secure and kind != "tls":
            raise SipSecurityError(f"{uri} is a sips: URI: it must be reached over TLS")
        transport = await self._transport(kind)
        return await transport.connect(target.host, target.port or DEFAULT_PORTS[kind])

    async def dialog_flow(self, flow: Flow, dialog: Dialog) -> Flow:
        """Where a request inside ``dialog`` goes (RFC 3261 §12.2.1.1, §8.1.2), ``flow`` being the INVITE's.

        With a route set: its first hop. Without: the remote target (Contact) when it names the address the
        peer spoke from (the INVITE's TCP/TLS connection reused while open, as softphones expect), else that
        address itself — the latching of issue 9: a peer behind a NAT announces a private Contact.
        """
        hop = NameAddr.parse(dialog.route_set[0]).uri if dialog.route_set else dialog.remote_target
        if not dialog.route_set and hop.host != flow.remote[0]:
            log.debug("SIP: remote target %s is not where the peer spoke from (%s): latched there", hop,
                      flow.remote[0])
            if flow.open:
                return flow
            hop = SipUri(hop.scheme, flow.remote[0], None, None, dict(hop.params))
        kind = (hop.params.get("transport") or ("tls" if hop.secure else flow.transport)).upper()
        if kind == flow.transport and hop.host == flow.remote[0]:
            if flow.reliable and flow.open:
                return flow
            if not flow.reliable:
                return Flow("UDP", (hop.host, hop.port or DEFAULT_PORTS["udp"]))
        if not _is_ip(hop.host):
            log.info("SIP: next hop %s is a name (no DNS here, RFC 3263): staying on %s:%d", hop, *flow.remote)
            return flow
        transport = await self._transport(kind.lower())
        return await transport.connect(hop.host, hop.port or DEFAULT_PORTS[kind.lower()])

    def check_server(self, server: SipUri, flow: Flow) -> None:
        """Over TLS, the certificate of ``server`` (registrar, outbound proxy) must name its host (RFC 5922
        §7.2: DNS, IP address or ``sip:`` URI subjectAltName): a certificate of the trust anchors issued to
        a station or another server does not get the digest exchange nor the calls. Raises
        :class:`SipSecurityError`."""
        if flow.transport != "TLS":
            return
        cert = self.transport_of(flow).peer_certificate(flow)
        hosts = certificate_sip_names(cert)[1] if cert is not None else ()
        if server.host.lower().strip("[]") not in hosts:
            name = pki.peer_common_name(flow.connection.ssl_object if flow.connection else None)
            raise SipSecurityError(f"SIP server {server.host}:{flow.remote[1]} presented certificate {name!r}, "
                                   f"which does not name host {server.host} (RFC 5922)")

    def trusted_hop(self, flow: Flow) -> SipUri | None:
        """The configured SIP server ``flow`` comes from over TLS, or None.

        A hop is trusted when its certificate chained to the station's trust anchors (the TLS handshake
        checked that) and names a configured server's host (DNS, IP address or ``sip:`` URI
        subjectAltName, RFC 5922 §7.1), and, for a server given by IP address, the connection comes from
        that address. Anything else is an end-to-end caller.
        """
        if flow.transport != "TLS" or not self.config.trusted_proxies:
            return None
        cert = self.transport_of(flow).peer_certificate(flow)
        if cert is None:
            return None
        _, hosts = certificate_sip_names(cert)
        for server in self.config.trusted_proxies:
            host = server.host.lower().strip("[]")
            if host not in hosts:
                continue
            if _is_ip(host) and flow.remote[0] != host:
                continue
            return server
        return None

    # ------------------------------------------------------------ placing calls

    async def place_call(self, uri: SipUri, endpoints: EndpointsFactory, *, expected_name: str | None = None,
                         call_id: str | None = None) -> SipSession:
        """Send an INVITE to ``uri`` with an SDP offer for the endpoints the factory opens.

        ``endpoints(local_host, peer_host)`` binds the media (closed by its
        owner if this raises). Over TLS the callee's certificate must hold the
        user dialled (or the host, for a URI without user) and, with
        ``expected_name``, carry that CN. Raises :class:`SipSecurityError` or
        :class:`SipError`; later failures end the session with ``Released``.
        """
        flow = await self.flow_to(uri)
        self._check_callee(uri, flow, expected_name)
        local = self.local_host(flow)
        media = await endpoints(local, flow.remote[0])
        sdes = flow.transport == "TLS" or self.config.sdes_over_plaintext
        dtls = self.dtls_certificate if self.config.dtls == "offer" and sdes else None
        offer = sdp.make_offer(self.config.policy, media, host=local, sdes=sdes, dtls=dtls)
        body = offer.sdp.serialize().encode()
        frm = self.aor(flow).with_tag(new_tag())
        headers: list[tuple[str, str]] = [("Via", self.via(flow, new_branch())), ("Max-Forwards", str(MAX_FORWARDS))]
        if self.outbound_proxy is not None:
            headers.append(("Route", f"<{self.outbound_proxy.without_params()};lr>"))
        headers += [("From", str(frm)), ("To", str(NameAddr(uri.without_params()))),
                    ("Call-ID", call_id or f"{new_tag()}{new_tag()}"), ("CSeq", "1 INVITE"),
                    ("Contact", self.contact(flow)), ("Allow", ALLOW), ("User-Agent", USER_AGENT),
                    ("Content-Type", "application/sdp")]
        invite = SipMessage.request("INVITE", uri.without_params() if not uri.params.get("transport") else uri,
                                    headers, body)
        session = SipSession(self, caller=True, invite=invite, flow=flow)
        session.remote_aliases = tuple(a for a in (uri.user, str(uri.without_params())) if a)
        self._sessions.add(session)
        await session._start_invite(offer)
        return session

    def _check_callee(self, uri: SipUri, flow: Flow, expected_name: str | None) -> None:
        if flow.transport != "TLS":
            return
        cert = self.transport_of(flow).peer_certificate(flow)
        if cert is None:  # pragma: no cover - the client context requires a certificate
            raise SipSecurityError(f"{uri}: no certificate from the peer")
        name = pki.peer_common_name(flow.connection.ssl_object if flow.connection else None)
        if expected_name is not None:
            if name != expected_name:
                raise SipSecurityError(f"{uri.host}:{flow.remote[1]} presented certificate {name!r}, "
                                       f"not {expected_name!r}")
            return
        if self.outbound_proxy is not None:
            self.check_server(self.outbound_proxy, flow)  # the callee is behind it: the proxy's word
            return
        server = self.trusted_hop(flow)
        if server is not None and server.host.lower() == uri.host.lower():
            log.info("%s: reached through trusted SIP server %s (identity hop by hop, not end to end)", uri, server)
            return
        users, hosts = certificate_sip_names(cert)
        if uri.user:
            if uri.user in users:
                return
            if not users and self.config.legacy_certificates:
                log.warning("%s presented certificate %r with no alias: accepted (legacy_certificates)", uri, name)
                return
            raise SipSecurityError(f"{uri.host}:{flow.remote[1]} presented certificate {name!r} for "
                                   f"{', '.join(users) or 'no alias'}, not for the dialled {uri.user!r}")
        if uri.host.lower() not in hosts:
            raise SipSecurityError(f"{uri.host}:{flow.remote[1]} presented certificate {name!r}, which does not "
                                   f"name host {uri.host} (RFC 5922)")

    def authenticate(self, request: SipMessage, response: SipMessage) -> SipMessage | None:
        """``request`` again with the answer to the response's digest challenge, or None (no usable challenge)."""
        if self.credentials is None or request.uri is None:
            return None
        proxy = response.status == 407
        values = response.get_all("Proxy-Authenticate" if proxy else "WWW-Authenticate")
        try:
            challenge = best_challenge(values, proxy=proxy)
        except SipParseError as exc:
            log.warning("SIP: cannot answer the challenge of %s: %s", response.summary(), exc)
            return None
        if self.credentials.realm is not None and challenge.realm != self.credentials.realm:
            log.warning("SIP: challenge for realm %r, credentials for %r", challenge.realm, self.credentials.realm)
            return None
        if len(self._nonce_counts) > 256:  # old nonces: a registrar issues a new one per challenge
            self._nonce_counts.clear()
        count = self._nonce_counts.get(challenge.nonce, 0) + 1
        self._nonce_counts[challenge.nonce] = count
        retry = SipMessage.request(request.method or "", request.uri, list(request.headers), request.body)
        retry.replace_top_via(request.top_via.__class__(request.top_via.transport, request.top_via.host,
                                                        request.top_via.port,
                                                        {**request.top_via.params, "branch": new_branch()}))
        retry.set("CSeq", f"{request.cseq[0] + 1} {request.method}")
        retry.set("Proxy-Authorization" if proxy else "Authorization",
                  authorization(challenge, self.credentials, request.method or "", str(request.uri), count))
        return retry

    # ------------------------------------------------------------ dispatch (from the core)

    def _register_dialog(self, session: SipSession) -> None:
        assert session.dialog is not None
        self._dialogs[session.dialog.id] = session

    def _forget(self, session: SipSession, *, dialog: bool = True) -> None:
        """``session`` ended; ``dialog=False`` keeps its dialog until the ACK its deferred BYE waits for."""
        if dialog and session.dialog is not None and self._dialogs.get(session.dialog.id) is session:
            del self._dialogs[session.dialog.id]
        for txn, s in list(self._early.items()):
            if s is session:
                del self._early[txn]
        self._sessions.discard(session)

    def _refuse(self, peer: str, name: str | None, reason: str, detail: str) -> None:
        record = RefusedCall(peer, name, reason, detail)
        self.refused.append(record)
        log.warning("SIP: refused %s (%s): %s", peer, name, detail)
        if self._on_refused is not None:
            self._on_refused(record)

    def _on_request(self, request: SipMessage, txn: ServerTxn | None, flow: Flow) -> None:
        to_tag = request.to.tag
        if to_tag is not None:
            session = self._dialogs.get((request.call_id, to_tag))
            if session is None or session.dialog is None or not session.dialog.matches(request):
                if txn is not None:
                    txn.reply(481, "Call/Transaction Does Not Exist")
                return
            if txn is None:
                session.on_ack(request)
            else:
                session.on_request(request, txn)
            return
        if txn is None:
            return  # an ACK outside any dialog
        method = request.method
        if method == "INVITE":
            self._invited(request, txn, flow)
        elif method == "OPTIONS":
            txn.reply(200, "OK", extra=[("Allow", ALLOW), ("Accept", "application/sdp"), ("Contact", self.contact(flow))])
        elif method in ("BYE", "INFO"):
            txn.reply(481, "Call/Transaction Does Not Exist")
        elif method in ("REGISTER", "SUBSCRIBE", "NOTIFY", "MESSAGE", "UPDATE", "PRACK", "REFER", "PUBLISH"):
            txn.reply(405, "Method Not Allowed", extra=[("Allow", ALLOW)])
        else:
            txn.reply(501, "Not Implemented", extra=[("Allow", ALLOW)])

    def _invited(self, request: SipMessage, txn: ServerTxn, flow: Flow) -> None:
        peer = f"{flow.remote[0]}:{flow.remote[1]}"
        name = self.peer_name(flow)
        identity = self._caller_identity(request, flow)
        why = self._relayed_caller_problem(identity, name) if identity.asserted_by is not None \
            else self._caller_problem(request, flow, name)
        if why is not None:
            self._refuse(peer, name, "securityDenied", why)
            txn.reply(403, "Forbidden", to_tag=new_tag())
            return
        if request.contact is None:
            raise SipParseError("INVITE without Contact")
        if request.body and request.content_type != "application/sdp":  # RFC 3261 §8.2.3: 415 and Accept
            txn.reply(415, "Unsupported Media Type", to_tag=new_tag(), extra=[("Accept", "application/sdp")])
            return
        session = SipSession(self, caller=False, invite=request, flow=flow, server_txn=txn, local_tag=new_tag(),
                             identity=identity)
        session._read_offer()  # a malformed SDP raises SipParseError: the core answers 400
        problem = session.offer_problem()
        if problem is not None:  # refused before it rings (RFC 3261 §13.3.1.3: 488, Warning 304/305)
            self._refuse(peer, name, "undefinedReason", f"INVITE refused (488): {problem}")
            txn.reply(488, "Not Acceptable Here", to_tag=session.local_tag,
                      extra=[("Warning", f'305 vcore "{_warning_text(problem)}"')])
            return
        txn.reply(100, "Trying")
        self._early[txn] = session
        self._sessions.add(session)
        self._incoming.put_nowait(session)

    def _caller_identity(self, request: SipMessage, flow: Flow) -> CallerIdentity:
        """The caller: ``P-Asserted-Identity`` (else ``From``) from a trusted SIP server's hop, else ``From``.

        A ``P-Asserted-Identity`` from any other hop is ignored (RFC 3325 §5: only a trusted element's
        assertion counts).
        """
        frm = request.from_
        server = self.trusted_hop(flow)
        if server is None:
            if request.get("P-Asserted-Identity"):
                log.info("SIP: P-Asserted-Identity from %s:%d ignored (not a trusted SIP server)", *flow.remote)
            return CallerIdentity(frm.uri, frm.display)
        asserted = asserted_identity(request)
        who, header = (asserted, "P-Asserted-Identity") if asserted is not None else (frm, "From")
        return CallerIdentity(who.uri, who.display or frm.display, server, header)

    def _relayed_caller_problem(self, identity: CallerIdentity, hop_name: str | None) -> str | None:
        """The allow-list and role rules for a caller a trusted SIP server vouches for (it has no certificate
        of its own here: under a role policy it is admitted only by name, like a certificate without role)."""
        who = identity.uri.without_params()
        log.info("SIP caller %s asserted by trusted SIP server %s (%r, %s): identity hop by hop, not end to end",
                 who, identity.asserted_by, hop_name, identity.header)
        allow = self.config.allow_list
        if allow is not None:
            if identity.names & allow:
                return None
            return f"caller {who} (asserted by {identity.asserted_by}) is not on the allow-list"
        if self.config.accept_roles is not None:
            return (f"caller {who} (asserted by {identity.asserted_by}) has no certificate, hence no role; this "
                    f"terminal answers {', '.join(sorted(self.config.accept_roles))} by certificate "
                    "(put the caller's URI or user on the allow-list)")
        return None

    def _caller_problem(self, request: SipMessage, flow: Flow, name: str | None) -> str | None:
        if not pki.check_allowed(name, self.config.allow_list):
            return f"caller {name!r} is not on the allow-list"
        if flow.transport != "TLS":
            return None
        cert = self.transport_of(flow).peer_certificate(flow)
        if cert is None:  # pragma: no cover - the server context requires a certificate
            return "no client certificate"
        users, _ = certificate_sip_names(cert)
        claimed = request.from_.uri.user
        if not users:
            if self.config.legacy_certificates:
                log.warning("SIP caller %r has a certificate with no alias: accepted (legacy_certificates)", name)
                return None
            return f"caller {name!r} has a certificate with no alias (reissue it with vcore pki issue)"
        if claimed not in users:
            return f"caller {name!r} claims {claimed!r} in From, which its certificate does not hold"
        if self.config.allow_list is None and self.config.accept_roles is not None:
            role = pki.certificate_role(cert)
            if role not in self.config.accept_roles:
                return (f"caller {name!r} has a certificate for role {role or 'none'}; this terminal answers "
                        f"{', '.join(sorted(self.config.accept_roles))} (or put it on the allow-list)")
        return None

    def _on_cancel(self, invite_txn: ServerTxn) -> None:
        session = self._early.get(invite_txn)
        if session is not None:
            session.on_cancel()
        elif not invite_txn.answered:
            invite_txn.reply(487, "Request Terminated")

    def _on_stray(self, response: SipMessage) -> None:
        tag = response.from_.tag or ""
        session = self._dialogs.get((response.call_id, tag))
        if session is not None:
            session.on_stray_2xx(response)

