"""A terminal's identity and TLS credentials: its aliases, whom it answers, its trust anchors and CRL.

:class:`Credentials` holds a terminal's :class:`~vcore.pki.Identity`, its trust
anchors and the CRL it checks peers against (:mod:`vcore.revocation`), and the
TLS server and client contexts built from them, rebuilt when the CRL file
changes. :func:`own_aliases` and :func:`accept_roles` decide the terminal's
H.323 aliases and the certificate roles it answers; :func:`tls_hint` explains
a TLS alert in the message of a failed call. The terminal
(:mod:`vcore.call.terminal`) pushes rebuilt contexts to its listeners.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

from .. import pki
from ..errors import CallError
from ..revocation import CrlWatch, open_crl
from .addresses import _anchors

__all__ = ["Credentials", "accept_roles", "own_aliases", "tls_hint", "utcnow"]

log = logging.getLogger(__name__)


def utcnow() -> dt.datetime:
    """The time certificates and CRLs are checked against (aware, UTC)."""
    return dt.datetime.now(dt.timezone.utc)


def tls_hint(error: str) -> str:
    """What an alert from the peer's TLS stack most likely means, for the message of a failed call."""
    if "ALERT_CERTIFICATE_EXPIRED" in error:
        return (" (the peer found this terminal's certificate expired, or its own CRL is out of date: "
                "check both with `vcore pki list` on the CA machine)")
    if "ALERT_CERTIFICATE_REVOKED" in error:
        return " (the peer's CRL says this terminal's certificate is revoked)"
    if "ALERT_UNKNOWN_CA" in error or "ALERT_BAD_CERTIFICATE" in error:
        return " (the peer does not trust this terminal's certificate: issued by another CA?)"
    return ""


def own_aliases(name: str, identity: pki.Identity | None, aliases: Sequence[str] | None,
                legacy: bool) -> tuple[str, ...]:
    """A terminal's H.323 aliases: given, else its certificate's; over TLS each must be in the certificate."""
    if identity is None:
        return tuple(aliases) if aliases else (pki.default_alias(name) or name,)
    held = identity.aliases
    if not held:
        if not legacy:
            raise CallError(f"the certificate of {identity.name!r} holds no H.323 alias (issued before aliases): "
                            "reissue it with `vcore pki issue --role …`, or pass legacy_certificates=True")
        log.warning("%s: certificate without H.323 aliases accepted (legacy_certificates): callers "
                    "cannot check they reach this terminal", identity.name)
        return tuple(aliases) if aliases else (pki.default_alias(identity.name),)
    if aliases:
        foreign = [a for a in aliases if a not in held]
        if foreign and not legacy:
            raise CallError(f"alias {foreign[0]!r} is not in the certificate of {identity.name!r} "
                            f"({', '.join(held)}): reissue it with --alias {foreign[0]}")
        return tuple(aliases)
    return held


def accept_roles(identity: pki.Identity | None, roles: Iterable[str] | None | str) -> frozenset[str] | None:
    """The certificate roles a terminal answers: ``"auto"``: an agent answers kiosks, a kiosk answers agents
    (nobody by role without an identity or a role); None: no role policy."""
    if roles == "auto":
        role = identity.role if identity is not None else None
        return frozenset({{"agent": "kiosk", "kiosk": "agent"}[role]}) if role else None
    return frozenset(roles) if roles is not None else None


class Credentials:
    """A terminal's identity, trust anchors and CRL, and the TLS contexts made of them.

    Raises :class:`CallError` without trust anchors and :class:`~vcore.pki.PkiError` for a certificate
    that is not valid at ``now`` (expired, or not yet valid: every peer would refuse it); one that
    expires soon is logged. ``crl``: see :func:`vcore.revocation.open_crl`.
    """

    def __init__(self, name: str, identity: pki.Identity, trust: Sequence[str | os.PathLike[str]],
                 crl: str | os.PathLike[str] | None, now: dt.datetime) -> None:
        self.name = name
        self.identity = identity
        self.anchors: list[Any] = _anchors(trust)
        if not self.anchors:
            raise CallError("a terminal with an identity needs trust anchors (trust=['ca.cert.pem'])")
        problem = pki.validity_problem(identity, now)
        if problem is not None and problem[0] >= logging.ERROR:
            raise pki.PkiError(problem[1])
        if problem is not None:
            log.warning("%s: %s", name, problem[1])
        self.crl: CrlWatch | None = open_crl(crl, trust, self.anchors, name, now)
        self.server_context: ssl.SSLContext
        self.client_context: ssl.SSLContext
        self.rebuild()

    def rebuild(self) -> None:
        """(Re)build the TLS contexts from the identity, the anchors and the CRL last read."""
        crl = self.crl.state.data if self.crl is not None else None
        self.server_context = pki.server_context(self.identity, self.anchors, crl)
        self.client_context = pki.client_context(self.identity, self.anchors, crl)

    def reload(self) -> bool:
        """Take a changed CRL file (the contexts are rebuilt); True when it changed."""
        if self.crl is None or not self.crl.poll():
            return False
        self.rebuild()
        return True

    def report(self, now: dt.datetime) -> str | None:
        """Why calls are refused at ``now`` (an expired CRL), or None; an old CRL is logged."""
        return self.crl.report(now) if self.crl is not None else None

    def say_validity(self, now: dt.datetime) -> None:
        """Log when this terminal's own certificate expires soon, or has expired (the terminal says it daily)."""
        problem = pki.validity_problem(self.identity, now)
        if problem is not None:
            log.log(problem[0], "%s: %s", self.name, problem[1])
