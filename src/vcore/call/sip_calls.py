"""A terminal's SIP side: its user agent, registration, and calls to ``sip:``/``sips:`` URIs.

The call layer stays protocol-neutral: a SIP call is a :class:`~vcore.call.Call`
around a :class:`vcore.sip.SipSession`, an incoming one an
:class:`~vcore.call.IncomingCall` like any other. This module only builds the
SIP objects from the terminal's settings and maps SIP failures to
:class:`CallFailed` reasons.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from ..errors import CallError, TransportError, VcoreError
from ..sip import Registration, SipConfig, SipListener, SipSettings, SipUri
from ..sip.errors import SipError, SipParseError, SipSecurityError
from .call import Call
from .events import CallFailed
from .media import _Media

if TYPE_CHECKING:
    from ..h323.fast_connect import MediaPolicy
    from .terminal import Terminal

__all__ = ["is_sip_address", "place_sip_call", "sip_config", "start_sip"]

log = logging.getLogger(__name__)


def is_sip_address(address: str) -> bool:
    """True for a ``sip:`` or ``sips:`` dial string."""
    return address.strip().lower().startswith(("sip:", "sips:"))


def check_settings(settings: SipSettings, *, tls: bool, allow_plaintext: bool) -> None:
    """Refuse settings the terminal cannot honour (raises :class:`CallError`)."""
    if settings.transport == "tls" and not tls:
        raise CallError("SIP over TLS needs the terminal's identity (identity= and trust=), "
                        "or a plaintext transport (tcp, udp) with allow_plaintext=True")
    if settings.transport != "tls" and not allow_plaintext:
        raise CallError(f"SIP over {settings.transport.upper()} is plaintext signalling: it needs allow_plaintext=True")


def sip_config(t: Terminal, settings: SipSettings, policy: MediaPolicy) -> SipConfig:
    """The user agent's configuration from the terminal's (user: the SIP username, else the first alias).

    The terminal's formats with Opus first among the audio ones (:func:`vcore.sip.sdp.sip_policy`: H.245 has no
    Opus, SIP peers such as baresip prefer it).
    """
    from ..sip.sdp import sip_policy

    domain = SipUri.parse(settings.registrar).host if settings.registrar else None
    return SipConfig(settings.username or t.aliases[0], sip_policy(policy), display_name=t.name, domain=domain,
                     allow_list=t.allow, accept_roles=t.accept_roles,
                     allow_plaintext_signalling=t.config.allow_plaintext_signalling,
                     sdes_over_plaintext=settings.sdes_over_plaintext, dtls=settings.dtls,
                     legacy_certificates=t.config.legacy_certificates, setup_timeout=t.config.setup_timeout,
                     trusted_proxies=settings.servers)


async def start_sip(t: Terminal, settings: SipSettings, config: SipConfig) -> tuple[SipListener, Registration | None]:
    """Start the terminal's user agent on ``t.host`` and register (when a registrar is set)."""
    listener = SipListener(config, settings.transport, server_context=t._server_ctx, client_context=t._client_ctx,
                           credentials=settings.credentials, outbound_proxy=settings.outbound_proxy)
    try:
        await listener.start(t.host, settings.port)
    except SipError as exc:
        await listener.close()
        raise CallError(f"cannot start SIP: {exc}") from None
    registration = None
    if settings.registrar is not None:
        registration = Registration(listener, settings.registrar, interval=settings.register_interval)
        try:
            await registration.start()
        except SipError as exc:
            await registration.close()
            await listener.close()
            raise CallError(f"cannot register with {settings.registrar}: {exc}") from None
    return listener, registration


async def place_sip_call(t: Terminal, listener: SipListener, address: str, *,
                         record: str | os.PathLike[str] | None, expect_name: str | None) -> Call:
    """Call a ``sip:``/``sips:`` URI (``;transport=tcp|udp|tls`` honoured) with a fresh media set."""
    try:
        uri = SipUri.parse(address.strip())
    except SipParseError as exc:
        raise CallError(f"cannot read SIP address {address!r}: {exc}") from None
    started = time.monotonic()
    media = _Media(t, record)
    try:
        session = await listener.place_call(uri, media.open, expected_name=expect_name)
    except BaseException as exc:
        await media.close()
        if isinstance(exc, TransportError):
            raise CallFailed(str(exc), "media-unavailable") from None
        if not isinstance(exc, VcoreError):
            raise
        reason = "security-denied" if isinstance(exc, SipSecurityError) and "certificate" in str(exc) \
            else "tls-failure" if "TLS" in str(exc) else "connection-failed"
        log.warning("SIP call to %s failed (%s): %s", address, reason, exc)
        raise CallFailed(str(exc), reason) from None
    call = Call(t, session, media, outgoing=True, started=started)
    t._calls.add(call)
    return call
