"""One SIP call (RFC 3261 INVITE dialog) behind the protocol-neutral :class:`vcore.callcontrol.CallControl`.

The caller's session comes from :meth:`vcore.sip.SipListener.place_call`, the
callee's from :meth:`~vcore.sip.SipListener.accept`. Either reports the same
events as an H.323 :class:`~vcore.h323.CallSession` (``Alerting``,
``Connected`` with the channels negotiated in SDP, ``KeyframeRequested`` from
an RFC 5168 INFO, ``UserInput``, ``Released`` last). SIP final responses map to
the H.225.0 reason names and Q.850 causes the call layer already knows
(486 -> ``userBusy``/17, 603 -> ``destinationRejection``/21, ...), and back.

The caller's INVITE and its responses are :mod:`vcore.sip.invite_client` (a base of :class:`SipSession`);
what INFO requests carry is :mod:`vcore.sip.info`; re-INVITEs are answered with :mod:`vcore.sip.reoffer`.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import TYPE_CHECKING, Any

from ..callcontrol import (
    NORMAL_CALL_CLEARING,
    CallEvent,
    EventQueue,
    Connected,
    MediaUpdated,
    ProtocolWarning,
    Released,
)
from ..h323.fast_connect import MediaChannel, MediaEndpoints
from ..h323.messages import Address
from ..supervisor import Supervisor
from . import reoffer, sdp, sdp_dtls, transaction
from .causes import (
    CALL_REJECTED,
    NORMAL_UNSPECIFIED,
    RECOVERY_ON_TIMER_EXPIRY,
    STATUS_TO_RELEASE,
    release_to_status,
)
from .causes import warning_text as _quoted
from .dialog import Dialog
from .errors import SipError, SipParseError, SipSecurityError, SipTimeout
from .info import MEDIA_CONTROL_TYPE as MEDIA_CONTROL_TYPE
from .info import USER_INPUT_TYPE as USER_INPUT_TYPE
from .info import FAST_UPDATE, MAX_USER_INPUT, answer_info
from .invite_client import InviteClient
from .message import NameAddr, SipMessage, new_branch
from .transaction import State
from .transport import Flow
from .ua import ALLOW, USER_AGENT, ClientTxn, ServerTxn

if TYPE_CHECKING:
    from .identity import CallerIdentity
    from .listener import SipListener

__all__ = ["STATUS_TO_RELEASE", "SipSession", "release_to_status"]

log = logging.getLogger(__name__)



class SipSession(InviteClient, EventQueue):
    """One call's SIP signalling (caller or callee); implements :class:`vcore.callcontrol.CallControl`.

    Iterate (``async for event in session``) or ``await next_event()``; the
    last event is always :class:`Released`.
    """

    _event_timeout = SipTimeout

    def __init__(self, listener: SipListener, *, caller: bool, invite: SipMessage, flow: Flow,
                 server_txn: ServerTxn | None = None, local_tag: str | None = None,
                 identity: CallerIdentity | None = None) -> None:
        self._listener = listener
        self.config = listener.config
        self.caller = caller
        self._invite = invite
        self._flow = flow
        self._server_txn = server_txn
        self.call_id = invite.call_id
        self.call_reference = zlib.crc32(self.call_id.encode()) & 0x7FFF or 1  # a small number for logs
        self.dialog: Dialog | None = None
        self.local_tag = local_tag or (invite.from_.tag if caller else None) or ""
        self.remote_aliases: tuple[str, ...] = ()
        self.remote_display: str | None = None
        self.remote_product: bytes | None = None
        self.channels: list[MediaChannel] = []
        self.released: Released | None = None
        self.state = "calling" if caller else "incoming"
        self._events: asyncio.Queue[CallEvent] = asyncio.Queue()
        # the INVITE's follower outlives a hang-up (a CANCEL still to send, a 200 racing it to ACK and BYE):
        # the user agent owns it, and cancels it when it closes
        self._tasks: Supervisor = listener._tasks
        self._offer: sdp.SdpOffer | None = None
        self._remote_offer: sdp.SessionDescription | None = None
        self._local_sdp: bytes = b""
        self._dialog_hop: Flow | None = None
        self._alerted = False
        self._bye_after_ack = False
        self._reoffering = False  # our re-INVITE is pending: the peer's gets 491
        self._cancel_requested = False
        self._provisional = asyncio.Event()
        self._peer_name = listener.peer_name(flow)
        self._local_host = listener.local_host(flow)
        self._peer_host = flow.remote[0]
        self.secure = flow.transport == "TLS"
        self.dtls = False  # media keyed by DTLS-SRTP (RFC 5764) rather than SDES
        self.identity = identity
        if not caller:
            who = NameAddr(identity.uri, identity.display) if identity is not None else invite.from_
            self._read_peer(who, invite.get("User-Agent"))

    def __repr__(self) -> str:
        return f"<SipSession {'caller' if self.caller else 'callee'} {self.call_id[:12]} {self.state}>"

    # ---------------------------------------------------------------- CallControl

    @property
    def peer_name(self) -> str | None:
        """The peer's TLS certificate CN (None on plaintext signalling); for a caller a trusted SIP server
        relayed, its asserted URI and the server's CN (``sip:bob@pbx (via SIP server)``)."""
        if self.identity is not None and self.identity.asserted_by is not None:
            return f"{self.identity.uri.without_params()} (via {self._peer_name})"
        return self._peer_name

    @property
    def local_host(self) -> str:
        return self._local_host

    @property
    def peer_host(self) -> str:
        return self._peer_host

    def security(self) -> dict[str, Any]:
        """What protects the call (never the keys)."""
        info: dict[str, Any] = {
            "signalling": "tls" if self.secure else "plaintext",
            "peer_certificate": self._peer_name,
            "srtp_keys": ("DTLS-SRTP" + (" (fingerprints on TLS)" if self.secure else " (fingerprints unauthenticated)"))
            if self.dtls else "tls-protected (SDES)" if self.secure else "exposed (plaintext signalling)",
            "media": [{"direction": c.direction, "codec": c.format.name, "session": c.session_id,
                       "srtp": c.suite or "plaintext"} for c in self.channels],
        }
        if self.identity is not None and self.identity.asserted_by is not None:
            info["caller_identity"] = {"uri": str(self.identity.uri.without_params()),
                                       "asserted_by": str(self.identity.asserted_by), "header": self.identity.header,
                                       "end_to_end": False}
            if self.secure:  # the server relays the SDP: it could read the keys
                info["srtp_keys"] = "tls-protected hop by hop (SDES; readable by the SIP server)"
        elif not self.caller:
            info["caller_identity"] = {"uri": str(self.identity.uri.without_params()) if self.identity else None,
                                       "asserted_by": None, "header": "From", "end_to_end": self.secure}
        return info

    async def alert(self) -> None:
        """Callee: send 180 Ringing."""
        txn = self._server_txn
        if self.caller or txn is None or txn.answered or self.released is not None:
            return
        txn.reply(180, "Ringing", to_tag=self.local_tag, extra=self._contact_headers())
        self._alerted = True

    async def answer(self, endpoints: MediaEndpoints) -> list[MediaChannel]:
        """Callee: answer the SDP offer with ``endpoints`` (200 OK); returns the negotiated channels."""
        txn = self._server_txn
        if self.caller or txn is None:
            raise SipError("only the callee answers")
        if self.released is not None or txn.answered:
            raise SipError("the call is over" if self.released else "already answered")
        if self._remote_offer is None:
            self._refuse(488, "Not Acceptable Here", "the INVITE carried no SDP offer (not supported)")
            raise SipError("the INVITE carried no SDP offer")
        try:
            answer, channels = sdp.answer_offer(self._remote_offer, self.config.policy, endpoints,
                                                host=self._local_host, sdes=self._sdes_allowed(),
                                                dtls=self._listener.dtls_certificate)
            streams = sdp_dtls.dtls_streams(answer, self._remote_offer)
        except sdp.SdpNegotiationError as exc:
            self._refuse(488, "Not Acceptable Here", f"no acceptable media: {exc}")
            raise SipError(f"no acceptable media in the offer: {exc}") from None
        self._local_sdp = answer.serialize().encode()
        self.channels = list(channels)
        self.dialog = Dialog.as_uas(self._invite, self.local_tag)
        self._listener._register_dialog(self)
        txn.on_timeout = self._ack_timer_expired
        txn.reply(200, "OK", to_tag=self.local_tag, body=self._local_sdp,
                  extra=self._contact_headers() + [("Content-Type", "application/sdp")])
        self.state = "connected"
        if streams:
            self.channels = await self._secure_media(self.channels, streams, endpoints)
        self._emit(Connected(tuple(self.channels), True))
        return list(self.channels)

    async def reject(self, reason: str = "destinationRejection", cause: int = CALL_REJECTED) -> None:
        """Callee: refuse the call (486, 603, 403, 488 or 480 after the reason and cause)."""
        await self.hangup(reason, cause)

    async def hangup(self, reason: str = "undefinedReason", cause: int = NORMAL_CALL_CLEARING) -> None:
        """End the call: BYE once answered, CANCEL while calling, a final error response while offered."""
        if self.released is None:
            if self.state == "connected" and self._unacknowledged():
                # RFC 3261 §15: no BYE before the ACK of our 2xx (or timer L); the 200 goes on until then
                self._bye_after_ack = True
                self._release(reason, cause, f"released locally ({reason}); BYE after the ACK", by_peer=False)
            elif self.state == "connected":
                await self._send_bye()
                self._release(reason, cause, f"released locally ({reason})", by_peer=False)
            elif self.caller:
                self._cancel(reason, cause)
            else:
                status, text = release_to_status(reason, cause)
                self._refuse(status, text, f"refused locally ({reason})", reason, cause)

    async def close(self) -> None:
        await self.hangup()

    async def request_keyframe(self, number: int) -> None:
        """Ask the peer for a keyframe (RFC 5168 INFO; RTCP PLI/FIR go too, from the media layer)."""
        if self.state == "connected":
            await self._info(MEDIA_CONTROL_TYPE, FAST_UPDATE)

    async def limit_bitrate(self, bitrate: int | None, number: int | None = None) -> None:
        """SIP has no in-dialog bitrate command: the media layer's RTCP (TMMBR, REMB) carries it."""
        log.debug("SIP call %d: bitrate limit %s left to RTCP", self.call_reference, bitrate)

    async def send_user_input(self, text: str) -> None:
        """Send user input (an INFO with vcore's own body type; other peers may answer 415, ignored)."""
        if len(text.encode()) > MAX_USER_INPUT:
            raise SipError(f"user input longer than {MAX_USER_INPUT} bytes")
        if self.state == "connected":
            await self._info(USER_INPUT_TYPE, text.encode())

    # ---------------------------------------------------------------- callee

    def _read_offer(self) -> None:
        """Callee: parse the INVITE's SDP (raises :class:`SipParseError` -> 400)."""
        invite = self._invite
        if invite.body:
            if invite.content_type != "application/sdp":
                raise SipParseError(f"INVITE body of type {invite.content_type} (only application/sdp)")
            try:
                self._remote_offer = sdp.SessionDescription.parse(invite.body.decode("utf-8", "replace"))
            except sdp.SdpError as exc:
                raise SipParseError(f"SDP offer: {exc}") from None

    def offer_problem(self) -> str | None:
        """Callee, before ringing: why the INVITE's offer cannot be answered (None: it can).

        The offer is negotiated against placeholder endpoints shaped like the call's (an audio and a video
        session, RTCP on its own port): the codecs, SRTP keying, transports and directions decide, not the
        ports, so a call vcore would refuse with 488 at its answer is refused before it rings.
        """
        if self._remote_offer is None:
            return "the INVITE carried no SDP offer (not supported)"
        host = self._local_host
        placeholder = {session: (Address(host, 9), Address(host, 10)) for session in (1, 2)}  # RFC 863 discard
        try:
            sdp.answer_offer(self._remote_offer, self.config.policy, placeholder, host=host,
                             sdes=self._sdes_allowed(), dtls=self._listener.dtls_certificate)
        except sdp.SdpNegotiationError as exc:
            return f"no acceptable media: {exc}"
        return None

    def on_cancel(self) -> None:
        """The caller cancelled before we answered: 487 to the INVITE, released by the peer."""
        if self._server_txn is not None and not self._server_txn.answered:
            self._server_txn.reply(487, "Request Terminated", to_tag=self.local_tag)
            self._release("undefinedReason", NORMAL_CALL_CLEARING, "CANCEL", by_peer=True)

    def on_ack(self, ack: SipMessage) -> None:
        if self._server_txn is not None:
            self._server_txn.ack_received()  # the 200 OK is no longer retransmitted
        if self._bye_after_ack:
            self._bye_after_ack = False
            if not self._tasks.closed:
                self._tasks.spawn(self._deferred_bye(), f"call {self.call_reference} BYE after ACK")

    def _unacknowledged(self) -> bool:
        """Callee: our 2xx is still waiting for its ACK (the INVITE server transaction is Accepted)."""
        txn = self._server_txn
        return not self.caller and txn is not None and txn.txn.state == State.ACCEPTED

    @property
    def bye_pending(self) -> bool:
        """Hung up before the caller's ACK: the BYE leaves when the ACK comes (or timer L fires)."""
        return self._bye_after_ack

    def _ack_timer_expired(self) -> None:
        if not self._tasks.closed:
            self._tasks.spawn(self._no_ack(), f"call {self.call_reference} without ACK")

    async def _no_ack(self) -> None:
        """Timer L: the 200 OK is no longer retransmitted (the transaction ended); the dialog ends with a BYE."""
        if self._bye_after_ack:
            self._bye_after_ack = False
            await self._deferred_bye()
        elif self.released is None:
            await self._send_bye()
            self._release("timeout", RECOVERY_ON_TIMER_EXPIRY, "no ACK for the 200 OK", by_peer=False)

    async def _deferred_bye(self) -> None:
        try:
            await self._send_bye()
        finally:
            self._listener._forget(self, dialog=True)

    def _refuse(self, status: int, text: str, detail: str, reason: str = "undefinedReason",
                      cause: int = NORMAL_UNSPECIFIED) -> None:
        if self._server_txn is not None and not self._server_txn.answered:
            self._server_txn.reply(status, text, to_tag=self.local_tag)
        self._release(reason, cause, detail, by_peer=False)

    # ---------------------------------------------------------------- in the dialog

    def on_request(self, request: SipMessage, txn: ServerTxn) -> None:
        """A request inside the dialog (the listener matched Call-ID and tags)."""
        method = request.method
        assert self.dialog is not None
        if not self.dialog.accept_remote_seq(request.cseq[0]):
            txn.reply(500, "Server Internal Error - CSeq out of order", extra=[("Retry-After", "1")])
            return
        if method == "BYE":
            txn.reply(200, "OK")
            if self._bye_after_ack:  # the caller ended the dialog first: our deferred BYE is moot
                self._bye_after_ack = False
                self._listener._forget(self, dialog=True)
            self._release("undefinedReason", NORMAL_CALL_CLEARING, "BYE", by_peer=True)
        elif method == "INVITE":
            self._reinvite(request, txn)
        elif method == "OPTIONS":
            txn.reply(200, "OK", extra=[("Allow", ALLOW), ("Accept", "application/sdp")])
        elif method == "INFO":
            self._on_info(request, txn)
        else:
            txn.reply(405, "Method Not Allowed", extra=[("Allow", ALLOW)])

    def _reinvite(self, request: SipMessage, txn: ServerTxn) -> None:
        """A re-INVITE (RFC 3264 §8): hold, resume or a move, answered with the call's streams (see
        :mod:`vcore.sip.reoffer`) and applied to the media (:class:`MediaUpdated`); a change vcore cannot
        make mid-call is refused (488), and 491 while our own re-INVITE is pending (RFC 3261 §14.2). Without
        SDP the re-INVITE is a session refresh, answered with our SDP as it stands."""
        if self._reoffering:
            txn.reply(491, "Request Pending", extra=[("Retry-After", "1")])
            return
        body = self._local_sdp
        update: reoffer.Reoffer | None = None
        if request.body:
            try:
                if request.content_type != "application/sdp":
                    raise sdp.SdpError(f"body of type {request.content_type}")
                offer = sdp.SessionDescription.parse(request.body.decode("utf-8", "replace"))
                current = sdp.SessionDescription.parse(self._local_sdp.decode("utf-8", "replace"))
                update = reoffer.answer_reoffer(offer, current, self.channels)
            except (sdp.SdpError, sdp.SdpNegotiationError) as exc:
                txn.reply(488, "Not Acceptable Here", extra=[("Warning", f'305 vcore "{_quoted(str(exc))}"')])
                self._warn(f"re-INVITE refused (488): {exc}")
                return
            body = self._local_sdp = update.answer.serialize().encode()
        txn.reply(200, "OK", extra=self._contact_headers() + [("Content-Type", "application/sdp")], body=body)
        if update is not None:
            if update.changes:
                log.info("SIP call %d: the peer's re-INVITE: %s", self.call_reference, ", ".join(update.changes))
            self._emit(MediaUpdated(update.targets, update.held, by_peer=True))

    async def set_hold(self, held: bool) -> None:
        """Hold (``a=inactive``) or resume (``a=sendrecv``) the call with a re-INVITE; the peer's answer comes
        back as :class:`MediaUpdated` (``by_peer=False``). Raises :class:`SipError` when the call is not
        connected, a renegotiation is under way, or the peer refuses (the call goes on as it was)."""
        if self.state != "connected" or self.dialog is None or self.released is not None:
            raise SipError("the call is not connected")
        if self._reoffering:
            raise SipError("a renegotiation is already under way")
        self._reoffering = True
        try:
            current = sdp.SessionDescription.parse(self._local_sdp.decode("utf-8", "replace"))
            offer = reoffer.hold_offer(current, held)
            body = offer.serialize().encode()
            hop = await self._next_hop()
            invite = self.dialog.request("INVITE", self._via(), contact=self._contact_headers()[0][1], body=body,
                                         content_type="application/sdp")
            txn = self._listener.core.start_client(invite, hop)
            response = await asyncio.wait_for(txn.final(), self.config.setup_timeout)
            status = response.status or 0
            if not 200 <= status < 300:
                raise SipError(f"the peer refused to {'hold' if held else 'resume'} the call: {status} "
                               f"{response.reason}")
            ack = self.dialog.request("ACK", self._via(), cseq=invite.cseq[0])
            self._listener.core.send_nowait(ack, hop)
            if not hop.reliable and not self._tasks.closed:
                self._tasks.spawn(self._ack_again(txn, ack, hop), f"call {self.call_reference} re-INVITE ACK")
            try:
                if response.content_type != "application/sdp":
                    raise sdp.SdpNegotiationError("the 200 OK to our re-INVITE carries no SDP answer")
                answer = sdp.SessionDescription.parse(response.body.decode("utf-8", "replace"))
                targets = reoffer.read_hold_answer(offer, answer, self.channels)
            except (sdp.SdpError, sdp.SdpNegotiationError) as exc:
                raise SipError(f"unusable answer to our re-INVITE: {exc}") from None
            self._local_sdp = body
            self._emit(MediaUpdated(targets, held, by_peer=False))
        except TimeoutError:
            raise SipTimeout(f"no answer to our re-INVITE within {self.config.setup_timeout} s") from None
        finally:
            self._reoffering = False

    async def _ack_again(self, txn: ClientTxn, ack: SipMessage, hop: Flow) -> None:
        """Our re-INVITE's 2xx again (our ACK was lost): the same ACK again (RFC 3261 §13.2.2.4), while the
        transaction absorbs retransmissions (64 × T1)."""
        try:
            while not txn.done:
                response = await asyncio.wait_for(txn.response(), 64 * transaction.T1)
                if 200 <= (response.status or 0) < 300:
                    self._listener.core.send_nowait(ack, hop)
        except TimeoutError:
            return

    def _on_info(self, request: SipMessage, txn: ServerTxn) -> None:
        answer = answer_info(request.content_type, request.body, self.channels)
        if answer.extra:
            txn.reply(answer.status, answer.reason, extra=list(answer.extra))
        else:
            txn.reply(answer.status, answer.reason)
        if answer.event is not None:
            self._emit(answer.event)

    async def _info(self, content_type: str, body: bytes) -> None:
        if self.dialog is None or self.released is not None:
            return
        try:
            hop = await self._next_hop()
            info = self.dialog.request("INFO", self._via(), content_type=content_type, body=body)
            self._listener.core.start_client(info, hop)
        except SipError as exc:
            log.info("SIP call %d: INFO: %s", self.call_reference, exc)

    async def _send_bye(self) -> None:
        if self.dialog is None:
            return
        try:  # sent now; its transaction retransmits and ends on its own (nobody waits for the 200)
            hop = await self._next_hop()
            self._listener.core.start_client(self.dialog.request("BYE", self._via()), hop)
        except SipError as exc:
            log.info("SIP call %d: BYE: %s", self.call_reference, exc)

    # ---------------------------------------------------------------- helpers

    async def _secure_media(self, channels: list[MediaChannel], streams: list[sdp_dtls.DtlsStream],
                            endpoints: MediaEndpoints) -> list[MediaChannel]:
        """DTLS-SRTP (RFC 5763): the channels keyed by the handshake; on failure released (BYE) and raised."""
        certificate = self._listener.dtls_certificate
        self.dtls = True
        if not self.secure:
            log.warning("SIP call %d: DTLS-SRTP fingerprints came over plaintext signalling: unauthenticated "
                        "(allowed by sdes_over_plaintext)", self.call_reference)
        try:
            if certificate is None:
                raise SipSecurityError("DTLS-SRTP negotiated while DTLS is off")
            keyed = await sdp_dtls.secure_channels(channels, streams, endpoints, certificate, self.config.policy.suites)
        except SipError as exc:
            if self.released is None:
                if self._unacknowledged():
                    self._bye_after_ack = True  # RFC 3261 §15: the BYE waits for the ACK
                else:
                    await self._send_bye()
                timeout = isinstance(exc, SipTimeout)
                self._release("timeout" if timeout else "securityDenied",
                              RECOVERY_ON_TIMER_EXPIRY if timeout else CALL_REJECTED, str(exc), by_peer=False)
            raise
        if self.released is not None:
            raise SipError("the call ended during the DTLS-SRTP handshake")
        return keyed

    def _sdes_allowed(self) -> bool:
        return self.secure or self.config.sdes_over_plaintext

    def _via(self) -> str:
        return self._listener.via(self._dialog_flow(), new_branch())

    def _dialog_flow(self) -> Flow:
        """The flow in-dialog requests last went on (the INVITE's until one is chosen)."""
        return self._dialog_hop or self._flow

    async def _next_hop(self) -> Flow:
        assert self.dialog is not None
        self._dialog_hop = await self._listener.dialog_flow(self._flow, self.dialog)
        return self._dialog_hop

    def _contact_headers(self) -> list[tuple[str, str]]:
        sips = self._invite.uri is None or self._invite.uri.scheme == "sips"  # the dialog's INVITE decides
        contact = self._listener.contact(self._flow, sips=sips)
        return [("Contact", contact), ("Allow", ALLOW), ("User-Agent", USER_AGENT)]

    def _read_peer(self, who: NameAddr, product: str | None) -> None:
        uri = who.uri
        self.remote_aliases = tuple(a for a in (uri.user, str(uri.without_params())) if a)
        self.remote_display = who.display
        if product is not None:
            self.remote_product = b"vcore" if product.split("/")[0].strip() == USER_AGENT else product.encode()[:256]

    def _warn(self, detail: str) -> None:
        log.warning("SIP call %d: %s", self.call_reference, detail)
        self._events.put_nowait(ProtocolWarning(detail))

    def _emit(self, event: CallEvent) -> None:
        if self.released is None:
            self._events.put_nowait(event)

    def _release(self, reason: str, cause: int | None, detail: str, *, by_peer: bool) -> None:
        if self.released is not None:
            return
        event = Released(reason, cause, by_peer, detail)
        self.released = event
        if self.state != "cancelling":
            self.state = "released"
        log.info("SIP call %d released: %s (cause %s, %s)", self.call_reference, reason, cause, detail)
        self._listener._forget(self, dialog=not self._bye_after_ack)  # the dialog waits for the ACK, then BYE
        self._events.put_nowait(event)
