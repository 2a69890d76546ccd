"""The caller's side of H.225.0: connect (TCP or mutual TLS), check the callee's certificate, send Setup."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import ssl
from typing import Awaitable, Callable, Sequence

from .. import pki
from .config import SignallingConfig
from .connection import SignallingConnection
from .errors import PeerClosed, SecurityError, SignallingError, SignallingTimeout
from .fast_connect import FastConnectOffer, MediaEndpoints, encode_proposals, make_offer
from .h245_path import OFF_LOOP_BYTES, off_loop
from .messages import Address, setup_uuie
from .q931 import IE, MessageType, bearer_capability_ie, display_ie, party_number_ie
from .session import CallSession

__all__ = ["EndpointsFactory", "place_call", "is_ip", "digits"]

log = logging.getLogger(__name__)


EndpointsFactory = Callable[[str, str], Awaitable[MediaEndpoints]]
"""``await factory(local_host, peer_host)``: open the media and say where it is received (see place_call)."""


async def place_call(host: str, port: int, config: SignallingConfig,
                     endpoints: MediaEndpoints | EndpointsFactory, *,
                     ssl_context: ssl.SSLContext | None = None, destination: Sequence[str] = (),
                     expected_name: str | None = None, expected_alias: str | None = None,
                     call_id: bytes | None = None,
                     conference_id: bytes | None = None, call_reference: int | None = None) -> CallSession:
    """Connect to ``host:port`` and send Setup (with Fast Connect proposals and tunnelled TCS/MSD).

    ``endpoints``: where this terminal receives each media session, or an async
    factory called once connected with this end's address on the connection and
    the peer's (the media address to announce follows the route to the peer);
    if the factory raises, the connection is closed and the error propagates.
    ``expected_alias``: the alias dialled, which the callee's certificate must hold
    (``h323:`` subjectAltName; see :class:`SignallingConfig` for old certificates).
    ``call_id``/``conference_id``/``call_reference``: the identifiers a gatekeeper
    admitted (ARQ); fresh ones by default.

    ``ssl_context``: a :func:`vcore.pki.client_context`; None means plaintext and
    needs ``config.allow_plaintext_signalling``. ``expected_name``: the CN the
    callee's certificate must carry. Raises :class:`SecurityError` (TLS
    refused, wrong name), :class:`SignallingTimeout` or :class:`SignallingError`
    (cannot connect). The returned session reports the rest as events.
    """
    if ssl_context is None and not config.allow_plaintext_signalling:
        raise SecurityError("plaintext signalling is not allowed by the configuration (give an SSL context)")
    offer: FastConnectOffer | None = None
    fast_start: list[bytes] | None = None
    if not callable(endpoints):  # coded before connecting: nothing waits between the handshake and the Setup
        offer, fast_start = await _offer(config, endpoints)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl_context, server_hostname=host if ssl_context else None),
            config.setup_timeout)
    except asyncio.TimeoutError:
        raise SignallingTimeout(f"no connection to {host}:{port} within {config.setup_timeout} s") from None
    except ssl.SSLError as exc:
        raise SecurityError(f"TLS handshake with {host}:{port} failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise SignallingError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    conn = SignallingConnection(reader, writer)
    if ssl_context is not None and expected_name is not None and conn.peer_name != expected_name:
        name = conn.peer_name
        await conn.close()
        raise SecurityError(f"{host}:{port} presented certificate {name!r}, not {expected_name!r}")
    if ssl_context is not None and expected_alias is not None:
        cert = pki.peer_certificate(conn.writer.get_extra_info("ssl_object"))
        held = pki.certificate_aliases(cert) if cert is not None else ()
        if not held and config.legacy_certificates:
            log.warning("%s:%d presented certificate %r with no H.323 alias: accepted as %r because "
                        "legacy_certificates is on", host, port, conn.peer_name, expected_alias)
        elif expected_alias not in held:
            name = conn.peer_name
            await conn.close()
            raise SecurityError(f"{host}:{port} presented certificate {name!r} for "
                                f"{', '.join(held) or 'no alias'}, not for the dialled {expected_alias!r}")
    if callable(endpoints):
        if not conn.local_host:  # the peer closed already: with TLS 1.3, it refused our certificate
            await conn.close()
            if ssl_context is not None:
                raise SecurityError(f"TLS: {host}:{port} closed the connection right after the handshake (our "
                                    "certificate was probably refused: revoked, expired, or from another CA)")
            raise SignallingError(f"{host}:{port} closed the connection at once")
        try:
            endpoints = await endpoints(conn.local_host, conn.peer_host)
        except BaseException:
            await conn.close()
            raise
    session = CallSession(conn, config, caller=True,
                          call_reference=call_reference or secrets.randbelow(0x7FFF) + 1,
                          call_id=call_id or os.urandom(16), conference_id=conference_id or os.urandom(16),
                          endpoints=dict(endpoints))
    h245_address = None
    try:
        if offer is None and not callable(endpoints):
            offer, fast_start = await _offer(config, endpoints)
        session._offer = offer
        if not session.tunnelling:  # H.245 on its own connection from the start: the callee connects to us
            h245_address = await session._listen_h245()
    except BaseException:
        await session._channel.close()
        await conn.close()
        raise
    session._initial_h245()
    local = writer.get_extra_info("sockname")
    body = setup_uuie(call_id=session.call_id, conference_id=session.conference_id,
                      source_aliases=[config.alias], destination_aliases=list(destination),
                      source_address=Address(local[0], local[1]) if local else None,
                      destination_address=Address(host, port) if is_ip(host) else None,
                      fast_start=fast_start, display_name=config.display_name,
                      h245_address=h245_address)
    extra = [bearer_capability_ie()]
    if config.display_name:
        extra.append(display_ie(config.display_name))
    if digits(config.alias):
        extra.append(party_number_ie(IE.CALLING_PARTY_NUMBER, config.alias))
    number = next((d for d in destination if digits(d)), None)
    if number is not None:
        extra.append(party_number_ie(IE.CALLED_PARTY_NUMBER, number))
    try:
        await session._send(MessageType.SETUP, "setup", body, extra)
    except (OSError, ssl.SSLError, PeerClosed) as exc:
        await session._channel.close()
        if ssl_context is not None:
            # TLS 1.3: the server checks our certificate after our handshake ended; its alert is in the stream
            try:
                await asyncio.wait_for(reader.read(1), 1.0)
            except ssl.SSLError as alert:
                await conn.close()
                raise SecurityError(f"TLS: {host}:{port} refused this terminal's certificate "
                                    f"({alert.reason or alert})") from None
            except (OSError, asyncio.TimeoutError):
                pass
            await conn.close()
            raise SecurityError(f"TLS: {host}:{port} closed the connection right after the handshake "
                                f"(our certificate was probably refused): {exc}") from None
        await conn.close()
        raise SignallingError(f"cannot send Setup to {host}:{port}: {exc}") from None
    session._set_deadline(config.setup_timeout, "answer to Setup")
    session._start()
    return session


async def _offer(config: SignallingConfig, endpoints: MediaEndpoints) -> tuple[FastConnectOffer | None,
                                                                              list[bytes] | None]:
    """The Fast Connect offer and its PER proposals (None without Fast Connect).

    About 1 ms per proposal on a kiosk's CPU (20 proposals with two suites): coded in a worker thread.
    """
    if not config.fast_connect:
        return None, None
    offer = make_offer(config.policy, endpoints)
    return offer, await off_loop(OFF_LOOP_BYTES, encode_proposals, offer.proposals)


def digits(alias: str) -> bool:
    """True for a numeric alias (dialledDigits)."""
    return bool(alias) and all(c in "0123456789*#" for c in alias)


def is_ip(host: str) -> bool:
    """True for an IPv4/IPv6 literal."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
