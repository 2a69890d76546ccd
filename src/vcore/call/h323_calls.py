"""H.323 calls placed by a terminal: the address or alias dialled, gatekeeper admission, the connection.

:func:`place_h323_call` is what :meth:`vcore.call.Terminal.call` does for an
``h323:`` address or a bare ``host[:port]`` (``vcore.call.sip_calls`` does it
for SIP): it finds where to call (through the gatekeeper for a bare alias),
asks admission (ARQ), opens the call's media and places the call
(:func:`vcore.h323.signalling.place_call`); a call that could not be set up
raises :class:`~vcore.call.events.CallFailed` with its reason. A failure to
reach or authenticate the peer raises :class:`Unreached`, which the terminal
logs (the station log shows it) before raising it as a plain ``CallFailed``.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import CallError, TransportError, VcoreError
from ..h323 import signalling as sig
from ..h323.errors import SignallingError
from ..h323.gatekeeper import Admission, GatekeeperLink
from ..h323.messages import Address
from ..h323.ras import RasRejected
from .addresses import _is_ip, parse_address
from .call import Call
from .credentials import tls_hint
from .events import CallFailed
from .media import _Media

if TYPE_CHECKING:
    from .terminal import Terminal

__all__ = ["Target", "Unreached", "find_target", "place_h323_call", "register"]


class Unreached(CallFailed):
    """The peer could not be reached or authenticated (no connection, TLS refused, wrong certificate, no
    answer in time); ``note`` is what OpenSSL said of the peer's certificate, if anything."""

    def __init__(self, message: str, reason: str, note: str) -> None:
        super().__init__(message, reason)
        self.note = note


@dataclass(frozen=True)
class Target:
    """Where an H.323 call goes: the alias dialled, the host and port (after admission, where the
    gatekeeper says), the admission itself and the call's identifiers when a gatekeeper admitted it."""

    alias: str | None
    host: str | None
    port: int
    admission: Admission | None = None
    ids: dict[str, Any] = field(default_factory=dict)


def _dialled(t: Terminal, address: str, tls: bool) -> tuple[str | None, str | None, int]:
    """(alias, host, port) of an address; with a gatekeeper ``h323:ALIAS`` alone is an alias to resolve."""
    if t._gk is not None:
        bare = re.sub(r"^h323s?:", "", address.strip())
        if "@" not in bare and not _is_ip(bare.strip("[]")) and re.fullmatch(r"[^\s:@\[\]]+", bare):
            return bare, None, 0
    return parse_address(address, tls)


async def find_target(t: Terminal, address: str, tls: bool, expect_name: str | None) -> Target:
    """Where to call ``address``: parsed, then admitted by the terminal's gatekeeper (if it has one).

    Raises :class:`CallFailed` when the gatekeeper refuses or fails, :class:`CallError` when the address
    names no host (and no gatekeeper finds one) or, over TLS, no alias and no certificate name to expect.
    """
    alias, host, port = _dialled(t, address, tls)
    admission = None
    ids: dict[str, Any] = {}
    if t._gk is not None:
        ids = {"call_id": os.urandom(16), "conference_id": os.urandom(16),
               "call_reference": secrets.randbelow(0x7FFF) + 1}
        try:
            admission = await t._gk.admit(**ids, destination=[alias] if alias else [],
                                          destination_address=Address(host, port) if host else None)
        except RasRejected as exc:
            raise CallFailed(f"the gatekeeper refused the call: {exc.reason}", "rejected") from None
        except SignallingError as exc:
            raise CallFailed(f"gatekeeper: {exc}", "gatekeeper-failure") from None
        host, port = admission.destination.host, admission.destination.port
    if host is None:
        raise CallError(f"{address!r} names no host: give h323:alias@host, or a gatekeeper= to find the alias")
    if tls and alias is None and expect_name is None:
        raise CallError(f"{address!r} names no alias: over TLS vcore checks that the answering certificate "
                        f"holds the alias dialled; call h323:ALIAS@{address.removeprefix('h323:')} "
                        "(or give the certificate name to expect: expect_name=, --expect NAME)")
    return Target(alias, host, port, admission, ids)


async def place_h323_call(t: Terminal, address: str, *, record: str | os.PathLike[str] | None,
                          expect_name: str | None) -> Call:
    """Place an H.323 call from ``t`` to ``address`` (see :meth:`vcore.call.Terminal.call`)."""
    tls = t._client_ctx is not None
    started = time.monotonic()
    target = await find_target(t, address, tls, expect_name)
    assert target.host is not None
    media = _Media(t, record)
    media.data_channel = True  # the H.224 data channel of far-end camera control
    try:
        session = await sig.place_call(target.host, target.port, t.config, media.open, ssl_context=t._client_ctx,
                                       destination=[target.alias] if target.alias else [],
                                       expected_name=expect_name, expected_alias=target.alias if tls else None,
                                       **target.ids)
    except BaseException as exc:
        await media.close()
        admission = target.admission
        if admission is not None and t._gk is not None:
            await t._gk.disengage(admission, answered=False)  # the admitted call never happened
        if isinstance(exc, TransportError):  # no free media port, or no address the peer can reach
            raise CallFailed(str(exc), "media-unavailable") from None
        if not isinstance(exc, VcoreError):
            raise
        reason = "tls-failure" if "TLS" in str(exc) else "security-denied" if "certificate" in str(exc) \
            else "timeout" if "within" in str(exc) else "connection-failed"
        message = str(exc) + tls_hint(str(exc))
        if admission is not None and tls and t.gatekeeper is not None \
                and admission.destination.host == t.gatekeeper.host:
            message += (" (the gatekeeper admitted the call to its own address: probably a gatekeeper-routed "
                        "call, and this terminal speaks TLS; GnuGk routes plaintext H.225.0: use its direct mode)")
        verify = getattr(exc.__context__, "verify_message", None)  # OpenSSL's why, if it said
        raise Unreached(message, reason, f" ({verify})" if verify else "") from None
    call = Call(t, session, media, outgoing=True, started=started, admission=target.admission)
    t._calls.add(call)
    return call


async def register(t: Terminal, gatekeeper: Address) -> GatekeeperLink:
    """Register ``t``'s aliases with ``gatekeeper`` (RRQ; the link keeps the registration alive); raises
    :class:`CallError` when it cannot."""
    port = t._listener.port if t._listener is not None else (
        sig.H225_TLS_PORT if t._client_ctx is not None else sig.H225_PORT)
    gk = GatekeeperLink(gatekeeper, t.aliases, port, public_address=t.public_address)
    try:
        await gk.start()
    except SignallingError as exc:
        raise CallError(f"cannot register with the gatekeeper {gatekeeper.host}:{gatekeeper.port}: {exc}") from None
    return gk
