"""SIP signalling (RFC 3261) beside :mod:`vcore.h323`, behind the same :class:`vcore.callcontrol.CallControl`.

``message`` (messages, URIs, headers), ``transport`` (UDP, TCP, TLS, rport),
``transaction`` (RFC 3261 §17 state machines, time as an argument), ``ua``
(their asyncio side and the dispatch), ``auth`` (digest, RFC 8760),
``dialog``, ``session`` (:class:`SipSession`, one call), ``reoffer``
(re-INVITEs: hold, resume, moves), ``causes`` (status codes and Q.850
causes), ``identity`` (who is calling: certificates, trusted servers'
``P-Asserted-Identity``), ``listener`` (:class:`SipListener`, the user
agent), ``registration`` (REGISTER with refresh), ``sdp``/``sdes``
(offer/answer, SRTP keys). A
:class:`vcore.Terminal` given ``sip=SipSettings(...)`` runs all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .auth import Credentials
from .errors import SipError, SipParseError, SipRefused, SipSecurityError, SipTimeout
from .listener import SipConfig, SipListener
from .message import NameAddr, SipMessage, SipUri, Via, parse_message
from .registration import Registration
from .session import SipSession
from .transport import DEFAULT_PORTS, TRANSPORTS

__all__ = [
    "DEFAULT_PORTS",
    "TRANSPORTS",
    "Credentials",
    "NameAddr",
    "Registration",
    "SipConfig",
    "SipError",
    "SipListener",
    "SipMessage",
    "SipParseError",
    "SipRefused",
    "SipSecurityError",
    "SipSession",
    "SipSettings",
    "SipTimeout",
    "SipUri",
    "Via",
    "parse_message",
]


@dataclass(frozen=True)
class SipSettings:
    """What a :class:`vcore.Terminal` needs to speak SIP.

    ``transport``: ``tls`` (default; mutual TLS with the station's PKI),
    ``tcp`` or ``udp`` (plaintext: the terminal needs ``allow_plaintext=True``).
    ``port``: 0 for any free port (5061 is the TLS convention, 5060 the others').
    ``registrar``: ``sip:host[:port]`` / ``sips:...`` to REGISTER with, every
    ``register_interval`` seconds at most; ``username``/``password``: digest
    credentials (registrar, proxy); ``outbound_proxy``: where every call goes
    first. ``sdes_over_plaintext``: offer SRTP keys in SDP over UDP/TCP too
    (readable on the line; off by default, logged). ``trusted_proxies``: SIP
    servers (``sips:host[:port]``) trusted, beside the registrar and the
    outbound proxy, to relay calls over TLS and assert the caller's identity
    (``P-Asserted-Identity``, RFC 3325): see docs/sip.md. ``dtls``: DTLS-SRTP
    (RFC 5763/5764) — ``"answer"`` (default: taken when a peer offers it),
    ``"offer"`` (offered instead of SDES keys), ``"off"``.
    """

    transport: str = "tls"
    port: int = 0
    registrar: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    outbound_proxy: str | None = None
    register_interval: int = 3600
    sdes_over_plaintext: bool = False
    trusted_proxies: tuple[str, ...] = ()
    dtls: str = "answer"

    def __post_init__(self) -> None:
        if self.dtls not in ("answer", "offer", "off"):
            raise SipError(f"SIP dtls {self.dtls!r}: answer, offer or off")
        object.__setattr__(self, "trusted_proxies", tuple(str(p) for p in self.trusted_proxies))
        for value in self.trusted_proxies:
            try:
                uri = SipUri.parse(value)
            except SipParseError as exc:
                raise SipError(f"SIP trusted proxy {value!r}: {exc}") from None
            if uri.user:
                raise SipError(f"SIP trusted proxy {value!r} names a user: give the server as sips:HOST[:PORT]")
        if self.transport not in TRANSPORTS:
            raise SipError(f"SIP transport {self.transport!r}: tls, tcp or udp")
        if not 0 <= self.port < 65536:
            raise SipError(f"SIP port {self.port} out of range")
        if (self.username is None) != (self.password is None):
            raise SipError("SIP credentials need both a username and a password")
        for name in ("registrar", "outbound_proxy"):
            value = getattr(self, name)
            if value is not None:
                try:
                    SipUri.parse(value)
                except SipParseError as exc:
                    raise SipError(f"SIP {name.replace('_', ' ')} {value!r}: {exc}") from None

    @property
    def servers(self) -> tuple[SipUri, ...]:
        """The SIP servers trusted as hops: the registrar, the outbound proxy and ``trusted_proxies``."""
        values = [self.registrar, self.outbound_proxy, *self.trusted_proxies]
        return tuple(SipUri.parse(str(v)).without_params() for v in values if v is not None)

    @property
    def credentials(self) -> Credentials | None:
        if self.username is None or self.password is None:
            return None
        return Credentials(self.username, self.password)
