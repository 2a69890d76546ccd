"""The caller's side of a SIP call: its INVITE client transaction (RFC 3261 §13.2, §17.1.1).

:class:`InviteClient` is the part of :class:`vcore.sip.SipSession` that sends the INVITE and follows its
responses: provisional ones (ringing, early CANCEL held until one came, RFC 3261 §9.1), a digest
challenge answered once (RFC 8760), a 2xx acknowledged and its SDP answer read (or the call ended with
a BYE if it is unusable, or if a CANCEL lost the race, §15), and final errors mapped to the H.225.0
reasons and Q.850 causes the call layer knows. It shares the session's state; the session is the rest:
the callee's side, the requests inside the dialog, and the release.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from ..callcontrol import Alerting, CallEvent, Connected, Released
from ..h323.fast_connect import MediaChannel, MediaEndpoints
from . import reoffer, sdp, sdp_dtls
from .causes import INCOMPATIBLE_DESTINATION, NORMAL_UNSPECIFIED, RECOVERY_ON_TIMER_EXPIRY, STATUS_TO_RELEASE
from .dialog import Dialog
from .errors import SipError
from .message import NameAddr, SipMessage
from .transport import Flow

if TYPE_CHECKING:
    from ..supervisor import Supervisor
    from .listener import SipConfig, SipListener
    from .session import SipSession

__all__ = ["InviteClient"]

log = logging.getLogger(__name__)


class InviteClient:
    """The caller's INVITE and its responses; a base of :class:`vcore.sip.SipSession`, whose state it uses."""

    if TYPE_CHECKING:  # the session's state and helpers (set and defined by SipSession)
        _listener: SipListener
        config: SipConfig
        _invite: SipMessage
        _flow: Flow
        _tasks: Supervisor
        _offer: sdp.SdpOffer | None
        _local_sdp: bytes
        _dialog_hop: Flow | None
        _alerted: bool
        _cancel_requested: bool
        _provisional: asyncio.Event
        call_reference: int
        dialog: Dialog | None
        channels: list[MediaChannel]
        released: Released | None
        state: str

        def _emit(self, event: CallEvent) -> None: ...
        def _release(self, reason: str, cause: int | None, detail: str, *, by_peer: bool) -> None: ...
        async def _send_bye(self) -> None: ...
        async def _secure_media(self, channels: list[MediaChannel], streams: list[sdp_dtls.DtlsStream],
                                endpoints: MediaEndpoints) -> list[MediaChannel]: ...
        def _via(self) -> str: ...
        def _dialog_flow(self) -> Flow: ...
        def _read_peer(self, who: NameAddr, product: str | None) -> None: ...

    async def _start_invite(self, offer: sdp.SdpOffer) -> None:
        """Caller: send the INVITE built by the listener and follow its responses."""
        self._offer = offer
        self._tasks.spawn(self._run_invite(self._invite), f"call {self.call_reference} INVITE")

    async def _run_invite(self, invite: SipMessage) -> None:
        deadline = self.config.setup_timeout
        authenticated = False
        while True:
            txn = self._listener.core.start_client(invite, self._flow)
            self._invite = invite
            while True:
                try:
                    timeout = deadline if self.state == "calling" else self.config.answer_timeout
                    response = await asyncio.wait_for(txn.response(), timeout)
                except TimeoutError:
                    self._cancel("timeout", RECOVERY_ON_TIMER_EXPIRY,
                                       "no answer to the INVITE in time" if self.state == "calling" else
                                       "not answered in time")
                    return
                status = response.status or 0
                if status < 200:
                    if status > 100:
                        self._provisional.set()
                        if self.state == "calling":
                            self.state = "ringing"
                        if status in (180, 183) and not self._alerted:
                            self._alerted = True
                            self._emit(Alerting())
                    else:
                        self._provisional.set()
                    if self._cancel_requested:
                        self._send_cancel()
                        self._cancel_requested = False
                    continue
                if status < 300:
                    await self._accepted(response)
                    return
                if status in (401, 407) and not authenticated and self._listener.credentials is not None:
                    retry = self._listener.authenticate(invite, response)
                    if retry is not None:
                        authenticated = True
                        invite = retry
                        break
                reason, cause = STATUS_TO_RELEASE.get(status, ("undefinedReason", NORMAL_UNSPECIFIED))
                if status == 487 and self._cancel_requested:
                    reason = "undefinedReason"
                by_peer = status != 408 and txn.failure is None and not (status == 487 and self.state == "cancelling")
                self._release(reason, cause, f"{status} {response.reason}", by_peer=by_peer)
                return

    async def _accepted(self, response: SipMessage) -> None:
        """Caller: a 2xx. ACK it, read the SDP answer, report Connected (or BYE if the answer is unusable)."""
        self.dialog = Dialog.as_uac(self._invite, response)
        self._read_peer(response.to, response.get("Server") or response.get("User-Agent"))
        self._listener._register_dialog(cast("SipSession", self))  # this is a SipSession
        try:
            self._dialog_hop = await self._listener.dialog_flow(self._flow, self.dialog)
        except SipError as exc:  # no way to the remote target: the INVITE's way is the best left
            log.info("SIP call %d: %s; ACK and BYE go the INVITE's way", self.call_reference, exc)
        self._send_ack(response)
        if self.state == "cancelling" or self.released is not None:
            self.state = "connected"
            await self._send_bye()  # RFC 3261 §15: the CANCEL lost the race, the call is ended with BYE
            return
        self.state = "connected"
        assert self._offer is not None
        try:
            if response.content_type != "application/sdp":
                raise sdp.SdpError("the 200 OK carries no SDP answer")
            answer = sdp.SessionDescription.parse(response.body.decode("utf-8", "replace"))
            self.channels = sdp.accept_answer(self._offer, answer)
            self._local_sdp = reoffer.narrowed(self._offer.sdp, self.channels).serialize().encode()
            streams = sdp_dtls.dtls_streams(self._offer.sdp, answer)
        except (sdp.SdpError, SipError) as exc:
            await self._send_bye()
            self._release("protocolError", INCOMPATIBLE_DESTINATION, f"unusable SDP answer: {exc}",
                                by_peer=False)
            return
        if streams:
            try:
                self.channels = await self._secure_media(self.channels, streams, self._offer.endpoints)
            except SipError:
                return  # released with the reason
        self._emit(Connected(tuple(self.channels), True))

    def _send_ack(self, response: SipMessage) -> None:
        assert self.dialog is not None
        ack = self.dialog.request("ACK", self._via(), cseq=self._invite.cseq[0])
        for name in ("Authorization", "Proxy-Authorization"):
            if self._invite.get(name):
                ack.add(name, self._invite.get(name) or "")
        self._listener.core.send_nowait(ack, self._dialog_flow())

    def on_stray_2xx(self, response: SipMessage) -> None:
        """A retransmitted 2xx (our ACK was lost): ACK it again (RFC 3261 §13.2.2.4)."""
        if self.dialog is not None:
            self._send_ack(response)

    def _cancel(self, reason: str, cause: int, detail: str | None = None) -> None:
        if self.state in ("calling", "ringing"):
            if self._provisional.is_set():
                self._send_cancel()
            else:
                self._cancel_requested = True  # RFC 3261 §9.1: CANCEL only after a provisional response
            self.state = "cancelling"
        self._release(reason, cause, detail or f"cancelled locally ({reason})", by_peer=False)

    def _send_cancel(self) -> None:
        invite = self._invite
        assert invite.uri is not None
        headers = [("Via", invite.get_all("Via")[0])] + [(n, v) for n, v in invite.headers if n == "Route"]
        headers += [("Max-Forwards", "70"), ("From", invite.get("From") or ""), ("To", invite.get("To") or ""),
                    ("Call-ID", invite.call_id), ("CSeq", f"{invite.cseq[0]} CANCEL")]
        cancel = SipMessage.request("CANCEL", invite.uri, headers)
        self._listener.core.start_client(cancel, self._flow)  # its 200 matters to nobody
