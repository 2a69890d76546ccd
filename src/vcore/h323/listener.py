"""The callee's side of H.225.0: accept connections (mutual TLS or TCP), check the caller, hand out calls."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections import deque
from typing import Callable, Sequence

from .. import pki
from ..callcontrol import RefusedCall
from ..supervisor import Supervisor
from ..transport.accept import PausedAccept
from . import asn1
from .config import SignallingConfig
from .connection import SignallingConnection
from .errors import SecurityError, SignallingError, SignallingParseError, SignallingTimeout
from .messages import parse_user_information, release_complete_uuie, user_information
from .q931 import Cause, InformationElement, MessageType, Q931Message, cause_ie, user_user_ie
from .session import CallSession

__all__ = ["SignallingListener", "caller_identity_problem"]

log = logging.getLogger(__name__)

_REFUSED_KEPT = 256  # refusals a listener remembers (the newest)


class SignallingListener:
    """Accepts H.225.0 connections (TLS when ``ssl_context`` is given) and yields incoming calls.

    Each accepted caller must present a certificate chaining to the server
    context's trust anchors (checked in the TLS handshake) and, if
    ``config.allow_list`` is set, a CN on it; a refused caller gets a
    ReleaseComplete with reason ``securityDenied`` and nothing else. Refusals
    are recorded in :attr:`refused` (the newest 256). ``await accept()`` returns a
    :class:`CallSession` in state ``incoming_proceeding`` (CallProceeding sent).
    """

    def __init__(self, config: SignallingConfig, ssl_context: ssl.SSLContext | None = None,
                 on_refused: Callable[[RefusedCall], None] | None = None) -> None:
        if ssl_context is None and not config.allow_plaintext_signalling:
            raise SecurityError("plaintext signalling is not allowed by the configuration (give an SSL context)")
        self.config = config
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._incoming: asyncio.Queue[CallSession] = asyncio.Queue()
        self._handlers = Supervisor("H.225.0 listener")  # one task per connection being set up
        self._on_refused = on_refused
        self.refused: deque[RefusedCall] = deque(maxlen=_REFUSED_KEPT)  # the newest; a flood cannot grow it

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the next handshakes; a new one (a new CRL) applies to connections accepted after."""
        return self._ssl

    @ssl_context.setter
    def ssl_context(self, context: ssl.SSLContext | None) -> None:
        if (context is None) != (self._ssl is None):
            raise SecurityError("a listener cannot switch between TLS and plaintext")
        self._ssl = context

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (port 0: any free port, see :attr:`port`).

        Host ``""``: every address of this host, IPv4 and IPv6.
        """
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: PausedAccept(self._accepted), host or None, port)
        except OSError as exc:
            raise SignallingError(f"cannot listen on {host or '*'}:{port}: {exc.strerror or exc}") from None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise SignallingError("the listener is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def accept(self, timeout: float | None = None) -> CallSession:
        """The next incoming call (Setup received, CallProceeding sent)."""
        try:
            return await asyncio.wait_for(self._incoming.get(), timeout)
        except asyncio.TimeoutError:
            raise SignallingTimeout(f"no incoming call within {timeout} s") from None

    async def close(self) -> None:
        """Stop listening, drop half-open connections and hang up calls not yet handed out."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._handlers.aclose()
        while not self._incoming.empty():
            await self._incoming.get_nowait().hangup("undefinedReason", Cause.TEMPORARY_FAILURE)

    async def __aenter__(self) -> SignallingListener:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _refuse(self, peer: str, name: str | None, reason: str, detail: str) -> None:
        record = RefusedCall(peer, name, reason, detail)
        self.refused.append(record)
        log.warning("refused %s (%s): %s", peer, name, detail)
        if self._on_refused is not None:
            self._on_refused(record)

    def _accepted(self, transport: asyncio.BaseTransport) -> None:
        if self._handlers.closed:  # a connection racing the close
            transport.close()
            return
        info = transport.get_extra_info("peername")
        self._handlers.spawn(self._on_connection(transport), f"connection from {info[0]}:{info[1]}" if info else
                             "connection")

    async def _on_connection(self, transport: asyncio.BaseTransport) -> None:
        # Reading stays paused until TLS owns the transport, so no ClientHello byte is lost to a plain reader.
        assert isinstance(transport, asyncio.Transport)
        loop = asyncio.get_running_loop()
        info = transport.get_extra_info("peername")
        peer = f"{info[0]}:{info[1]}" if info else "?"
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        if self._ssl is not None:
            try:
                tls = await asyncio.wait_for(
                    loop.start_tls(transport, protocol, self._ssl, server_side=True,
                                   ssl_handshake_timeout=self.config.tls_timeout),
                    self.config.tls_timeout + 1.0)
            except asyncio.CancelledError:
                transport.abort()
                raise
            except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError) as exc:
                transport.abort()
                if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
                    detail = f"TLS handshake failed: {exc.verify_message}"  # "certificate revoked", "CRL has expired"
                elif isinstance(exc, ssl.SSLError):
                    detail = f"TLS handshake failed: {exc.reason or exc}"
                elif isinstance(exc, asyncio.TimeoutError) or "taking longer" in str(exc):
                    detail = "TLS handshake timed out"  # asyncio reports ssl_handshake_timeout as an abort
                else:
                    detail = f"TLS handshake failed: {exc}"
                self._refuse(peer, None, "tlsFailure", detail)
                return
            if tls is None:  # pragma: no cover - the loop closed the transport
                return
            transport = tls
        else:
            transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._ssl is None:
            transport.resume_reading()
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        conn = SignallingConnection(reader, writer)
        try:
            await self._handshake_and_setup(conn, peer)
        except asyncio.CancelledError:
            conn.writer.transport.abort()
            conn.closed = True
            raise
        except Exception as exc:  # a Setup nobody anticipated must not leave a half-open connection
            log.exception("unexpected failure handling a Setup from %s", peer)
            self._refuse(peer, conn.peer_name, "protocolError", f"unexpected failure handling the Setup: {exc!r}")
            await conn.close()

    async def _handshake_and_setup(self, conn: SignallingConnection, peer: str) -> None:
        try:
            message = await asyncio.wait_for(conn.receive(), self.config.setup_timeout)
        except asyncio.TimeoutError:
            self._refuse(peer, conn.peer_name, "timeout", "no Setup within the timeout")
            await conn.close()
            return
        except (SignallingError, ssl.SSLError, OSError) as exc:
            self._refuse(peer, conn.peer_name, "protocolError", f"no valid Setup: {exc}")
            await conn.close()
            return
        try:
            info = parse_user_information(message.user_user or b"") if message.user_user is not None else None
        except SignallingParseError as exc:
            info = None
            bad = str(exc)
        else:
            bad = "no H.225.0 User-user IE"
        if message.message_type != MessageType.SETUP or message.from_destination or info is None \
                or info.body != "setup":
            what = f"{message.name} instead of Setup" if message.message_type != MessageType.SETUP else bad
            self._refuse(peer, conn.peer_name, "protocolError", what)
            await _release_unknown(conn, message, "undefinedReason", Cause.INVALID_MESSAGE,
                                   info.call_id if info else None)
            await conn.close()
            return
        call_id = info.call_id or os.urandom(16)
        name = conn.peer_name
        why = None
        if not pki.check_allowed(name, self.config.allow_list):
            why = f"caller {name!r} is not on the allow-list"
        elif self._ssl is not None:
            why = caller_identity_problem(conn, info.source_aliases, self.config)
        if why is not None:
            self._refuse(peer, name, "securityDenied", why)
            await _release_unknown(conn, message, "securityDenied", Cause.CALL_REJECTED, call_id)
            await conn.close()
            return
        session = CallSession(conn, self.config, caller=False, call_reference=message.call_reference,
                              call_id=call_id, conference_id=info.conference_id or os.urandom(16))
        session.remote_aliases = info.source_aliases
        session.remote_display = info.display_name or message.display  # H.225.0 displayName: accents intact
        session.remote_product = info.product
        try:
            await session._received_setup(info)
        except BaseException:
            await session._channel.close()
            raise
        # no deadline: the callee waits for its user, the caller's timers bound the wait
        session._start()
        await self._incoming.put(session)


async def _release_unknown(conn: SignallingConnection, message: Q931Message, reason: str, cause: int,
                           call_id: bytes | None) -> None:
    """ReleaseComplete for a message that never became a call: a reason and nothing else."""
    elements: list[InformationElement] = [cause_ie(cause)]
    if call_id is not None:
        uuie = asn1.encode_uuie(user_information("releaseComplete",
                                                 release_complete_uuie(call_id=call_id, reason=reason)))
        elements.append(user_user_ie(uuie))
    try:
        await conn.send(Q931Message(MessageType.RELEASE_COMPLETE, message.call_reference,
                                    not message.from_destination, tuple(elements)))
    except (OSError, ssl.SSLError, SignallingError):
        pass


def caller_identity_problem(conn: SignallingConnection, claimed: Sequence[str], config: SignallingConfig) -> str | None:
    """Why a TLS caller's certificate does not fit its Setup or this callee's policy, or None."""
    cert = pki.peer_certificate(conn.writer.get_extra_info("ssl_object"))
    if cert is None:  # pragma: no cover - TLS here always requires a verified certificate
        return "no client certificate"
    held = pki.certificate_aliases(cert)
    if not held:
        if config.legacy_certificates:
            log.warning("caller %r has a certificate with no H.323 alias: accepted (legacy_certificates)",
                        conn.peer_name)
            return None
        return (f"caller {conn.peer_name!r} has a certificate with no H.323 alias (issued before aliases): "
                "reissue it with vcore pki issue, or set legacy_certificates")
    foreign = [a for a in claimed if a not in held]
    if foreign:
        return f"caller {conn.peer_name!r} claims alias {foreign[0]!r}, which its certificate does not hold"
    if config.allow_list is None and config.accept_roles is not None:
        role = pki.certificate_role(cert)
        if role not in config.accept_roles:
            return (f"caller {conn.peer_name!r} has a certificate for role {role or 'none'}; this terminal answers "
                    f"{', '.join(sorted(config.accept_roles))} (or put it on the allow-list)")
    return None
