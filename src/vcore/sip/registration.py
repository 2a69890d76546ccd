"""REGISTER with refresh (RFC 3261 §10) and digest authentication (RFC 8760).

A :class:`Registration` binds the terminal's contact to its address-of-record
at a registrar, refreshes the binding before it expires (at half the granted
time, at least 5 s before the end), answers digest challenges with the
listener's credentials, follows ``423 Interval Too Brief`` (``Min-Expires``)
and, when the registrar saw us at another address (``received``/``rport`` of
RFC 3581: a kiosk behind a NAT), registers that address as the contact.
``close()`` removes the binding (``Expires: 0``).
"""

from __future__ import annotations

import asyncio
import logging

from ..supervisor import Supervisor
from .dialog import MAX_FORWARDS
from .errors import SipError, SipParseError, SipRefused, SipTimeout
from .listener import SipListener
from .message import NameAddr, SipMessage, SipUri, new_branch, new_tag
from .transport import Flow
from .ua import ALLOW, USER_AGENT

__all__ = ["DEFAULT_INTERVAL", "MIN_INTERVAL", "Registration"]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 3600  # s, RFC 3261 §10.2.1.1 suggests an hour
MIN_INTERVAL = 60  # s: vcore does not ask for less (a registrar may impose more with 423)
_RETRY = 30.0  # s between attempts after a failed refresh
_UNREGISTER_WAIT = 4.0  # s: the most closing waits for the registrar to confirm


class Registration:
    """The binding of ``listener``'s contact at ``registrar`` (a ``sip:``/``sips:`` URI of the registrar).

    ``aor``: the address-of-record (default ``sip:<user>@<registrar host>``).
    ``await start()`` registers once (raises :class:`SipRefused`, :class:`SipTimeout`
    or :class:`SipError`) then keeps the binding fresh in a task it owns.
    """

    def __init__(self, listener: SipListener, registrar: str, *, aor: str | None = None,
                 interval: int = DEFAULT_INTERVAL) -> None:
        self.listener = listener
        self.registrar = SipUri.parse(registrar)
        if self.registrar.user:
            raise SipError(f"registrar URI {registrar!r} names a user: give sip:host[:port]")
        user = listener.credentials.username if listener.credentials else listener.config.user
        self.aor = SipUri.parse(aor) if aor else SipUri(self.registrar.scheme, self.registrar.host, user)
        if interval < MIN_INTERVAL:
            raise SipError(f"register interval {interval} s is below {MIN_INTERVAL} s")
        self.interval = interval
        self.expires: int | None = None  # granted, once registered
        self.registered = False
        self._call_id = f"{new_tag()}{new_tag()}"
        self._cseq = 0
        self._tag = new_tag()
        self._tasks = Supervisor(f"registration {self.aor}")

    def __repr__(self) -> str:
        return f"<Registration {self.aor} at {self.registrar.host} {'ok' if self.registered else 'not registered'}>"

    async def start(self) -> None:
        """Register now, then refresh in the background."""
        await self._register(self.interval)
        self._tasks.spawn(self._refresh(), "refresh")

    async def close(self) -> None:
        """Stop refreshing and remove the binding (bounded by the transaction timers; errors logged)."""
        await self._tasks.aclose()
        if self.registered:
            try:  # a registrar gone silent must not hold a closing station for timer F (32 s)
                await asyncio.wait_for(self._register(0), _UNREGISTER_WAIT)
            except (TimeoutError, SipError) as exc:
                log.info("unregistering %s: %s", self.aor, exc or "no answer")
            self.registered = False

    async def _refresh(self) -> None:
        while True:
            granted = self.expires or self.interval
            await asyncio.sleep(max(min(granted / 2, granted - 5), 1))
            try:
                await self._register(self.interval)
            except SipError as exc:
                log.warning("SIP registration of %s failed: %s; retrying in %g s", self.aor, exc, _RETRY)
                self.registered = False
                await asyncio.sleep(_RETRY)

    async def _register(self, expires: int) -> None:
        listener = self.listener
        flow = await listener.flow_to(self.registrar)
        listener.check_server(self.registrar, flow)  # over TLS: the registrar's certificate names its host
        authenticated = False
        request = self._request(flow, expires)
        for _ in range(6):  # the first, after a challenge, after 423, after a NAT discovery (challenged again)
            response = await listener.core.start_client(request, flow).final()
            status = response.status or 0
            if status in (401, 407) and not authenticated:
                retry = listener.authenticate(request, response)
                if retry is None:
                    raise SipRefused(f"registrar {self.registrar.host} asks for credentials vcore does not have "
                                     f"({status} {response.reason})", status, response.reason)
                authenticated = True
                self._cseq += 1
                request = retry
                continue
            if status == 423:
                minimum = response.get("Min-Expires") or ""
                if not minimum.isdigit() or int(minimum) > 86400:
                    raise SipRefused(f"423 without a usable Min-Expires ({minimum[:10]!r})", 423, response.reason)
                self.interval = expires = int(minimum)
                request = self._request(flow, expires, request)
                continue
            if status == 408:
                raise SipTimeout(f"no answer from the registrar {self.registrar.host}")
            if not 200 <= status < 300:
                raise SipRefused(f"registrar {self.registrar.host} refused the registration: {status} "
                                 f"{response.reason}", status, response.reason)
            if expires and self._learn_public_address(response, flow):
                request = self._request(flow, expires)  # a fresh challenge answers it (nonce counts move on)
                authenticated = False
                continue
            self.expires = self._granted(response, expires)
            self.registered = expires > 0
            log.info("SIP %s %s at %s (%s s)", self.aor, "registered" if expires else "unregistered",
                     self.registrar.host, self.expires)
            return
        raise SipRefused(f"registrar {self.registrar.host} keeps refusing the registration", 403, "Forbidden")

    def _request(self, flow: Flow, expires: int, previous: SipMessage | None = None) -> SipMessage:
        listener = self.listener
        self._cseq += 1
        target = SipUri(self.registrar.scheme, self.registrar.host, None, self.registrar.port,
                        dict(self.registrar.params))
        aor = str(NameAddr(self.aor, listener.config.display_name))
        headers: list[tuple[str, str]] = [("Via", listener.via(flow, new_branch())),
                                          ("Max-Forwards", str(MAX_FORWARDS)), ("From", f"{aor};tag={self._tag}"),
                                          ("To", aor), ("Call-ID", self._call_id),
                                          ("CSeq", f"{self._cseq} REGISTER"),
                                          ("Contact", listener.contact(flow)),
                                          ("Expires", str(expires)), ("Allow", ALLOW), ("User-Agent", USER_AGENT)]
        if listener.outbound_proxy is not None:  # RFC 3261 §8.1.2: the outbound proxy as a loose route
            headers.insert(2, ("Route", f"<{listener.outbound_proxy.without_params()};lr>"))
        if previous is not None:  # keep the answer to the challenge (the nonce is still good)
            for name in ("Authorization", "Proxy-Authorization"):
                value = previous.get(name)
                if value is not None:
                    headers.append((name, value))
        return SipMessage.request("REGISTER", target, headers)

    def _learn_public_address(self, response: SipMessage, flow: Flow) -> bool:
        """RFC 3581: the registrar saw us at another address; True when the contact must change."""
        try:
            via = response.top_via
        except SipParseError:
            return False
        received, rport = via.params.get("received"), via.params.get("rport")
        if not received or not rport or not rport.isdigit():
            return False
        public = (received, int(rport))
        local = self.listener.transport_of(flow).local_address(flow)
        if public == local or public == self.listener.public_contact:
            return False
        log.info("SIP: the registrar sees this terminal at %s:%d (NAT): registering that contact", *public)
        self.listener.public_contact = public
        return True

    @staticmethod
    def _granted(response: SipMessage, asked: int) -> int:
        for value in response.get_all("Contact"):
            try:
                contact = NameAddr.parse(value)
            except SipParseError:
                continue
            granted = contact.params.get("expires")
            if granted and granted.isdigit():
                return int(granted)
        header = response.get("Expires")
        return int(header) if header and header.isdigit() else asked
