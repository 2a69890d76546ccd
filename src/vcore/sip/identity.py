"""Who is calling over SIP: what a TLS certificate vouches for, and whom a trusted SIP server asserts.

Between stations a caller is bound end to end by its certificate (its ``h323:``/``sip:`` aliases); a call a
configured SIP server relays names its caller in ``P-Asserted-Identity`` (RFC 3325), which only such a hop
may assert (:meth:`vcore.sip.SipListener.trusted_hop`). Pure functions and values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import pki
from .errors import SipParseError
from .message import NameAddr, SipMessage, SipUri

__all__ = ["CallerIdentity", "asserted_identity", "certificate_sip_names"]


def certificate_sip_names(cert: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(users, hosts) a certificate vouches for: its ``h323:`` aliases and ``sip:`` URI users; DNS, IP address
    and URI hosts (RFC 5922 §7.1)."""
    from cryptography import x509

    users = list(pki.certificate_aliases(cert))
    hosts: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return tuple(users), ()
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(("sip:", "sips:")):
            try:
                parsed = SipUri.parse(uri)
            except SipParseError:
                continue
            if parsed.user:
                users.append(parsed.user)
            hosts.append(parsed.host.lower())
    hosts += [h.lower() for h in san.get_values_for_type(x509.DNSName)]
    hosts += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return tuple(users), tuple(hosts)


@dataclass(frozen=True)
class CallerIdentity:
    """Who an incoming call says it is from, and who vouches for it.

    ``uri``: the caller's URI (the ``From``, or a trusted proxy's ``P-Asserted-Identity``). ``asserted_by``:
    None when the identity is bound end to end (the caller's own TLS certificate holds it, or plaintext
    signalling, where nothing is bound), else the trusted SIP server whose hop asserted it (RFC 3325).
    """

    uri: SipUri
    display: str | None
    asserted_by: SipUri | None = None
    header: str = "From"

    @property
    def names(self) -> frozenset[str]:
        """What an allow-list entry may name for this caller: its URI (without parameters) or its user."""
        return frozenset(n for n in (str(self.uri.without_params()), self.uri.user) if n)


def asserted_identity(request: SipMessage) -> NameAddr | None:
    """The first ``sip:``/``sips:`` ``P-Asserted-Identity`` of ``request`` (RFC 3325 §9.1), or None."""
    for value in request.get_all("P-Asserted-Identity"):
        try:
            return NameAddr.parse(value)
        except SipParseError:
            continue  # a tel: URI or garbage: the next one, else From
    return None
