"""The incoming call offered to a terminal (H.323 or SIP alike): answer it, ring, or refuse it."""

from __future__ import annotations

import os
import re
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..callcontrol import CallControl
from ..errors import VcoreError
from ..h323 import signalling as sig
from ..h323.errors import SignallingError
from ..h323.q931 import Cause
from .call import Call
from .events import _REASONS, CallFailed
from .media import _Media

if TYPE_CHECKING:
    from .terminal import Terminal

__all__ = ["IncomingCall"]


class IncomingCall:
    """A call offered to a terminal: ``await answer()`` -> :class:`Call`, or ``await reject("busy")``.

    ``caller``: the caller's certificate name (TLS) or alias; ``aliases``,
    ``display``. With ``auto_answer`` the terminal has already answered it:
    ``answered`` is True and ``answer()`` returns the call.
    """

    def __init__(self, terminal: Terminal, session: CallControl) -> None:
        self.terminal = terminal
        self._session = session
        self.call: Call | None = None
        self.caller = session.peer_name or (session.remote_aliases[0] if session.remote_aliases else None)
        self.aliases = session.remote_aliases
        self.display = session.remote_display
        self.received = time.monotonic()

    def __repr__(self) -> str:
        return f"<IncomingCall from {self.caller!r}{' answered' if self.call else ''}>"

    @property
    def display_name(self) -> str | None:
        """The caller's display name ("Maison des services de Murat"), accents intact; None if it sent none."""
        return self.display

    @property
    def answered(self) -> bool:
        return self.call is not None

    @property
    def gone(self) -> bool:
        """True once the call ended before it was answered (the caller gave up, or it was refused)."""
        return self.call is None and self._session.released is not None

    async def ring(self) -> None:
        """Send Alerting (the caller sees ``ringing``)."""
        await self._session.alert()

    async def answer(self, *, record: str | os.PathLike[str] | None = None) -> Call:
        """Accept the call; ``record``: write what the peer sends (audio + video) to this MP4 file."""
        if self.call is not None:
            return self.call
        if self._session.released is not None:
            r = self._session.released
            raise CallFailed(f"the caller is gone: {r.reason} ({r.detail})", _REASONS.get(r.reason, r.reason))
        t = self.terminal
        if record is None and t.recordings is not None:
            Path(t.recordings).mkdir(parents=True, exist_ok=True)
            who = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.caller or "caller")
            record = Path(t.recordings) / f"call-{time.strftime('%Y%m%d-%H%M%S')}-{who}.mp4"
        admission = None
        if t._gk is not None and isinstance(self._session, sig.CallSession):  # H.323 admission (RAS)
            s = self._session
            try:
                admission = await t._gk.admit(call_id=s.call_id, conference_id=s.conference_id,
                                              call_reference=s.call_reference, destination=t.aliases, answer=True)
            except SignallingError as exc:
                t._pending.discard(s)
                await s.reject("destinationRejection", Cause.CALL_REJECTED)
                raise CallFailed(f"the gatekeeper did not admit the call: {exc}", "rejected") from None
        media = _Media(t, record)
        media.data_channel = isinstance(self._session, sig.CallSession)  # H.224 camera control: H.323 only
        t._pending.discard(self._session)
        try:
            endpoints = await media.open(self._session.local_host, self._session.peer_host)  # closes on failure
        except BaseException:
            await self._session.hangup("undefinedReason", Cause.TEMPORARY_FAILURE)
            raise
        self.call = Call(t, self._session, media, outgoing=False, started=self.received, admission=admission)
        t._calls.add(self.call)
        try:
            channels = await self._session.answer(endpoints)
        except (VcoreError, OSError, ssl.SSLError) as exc:
            await self.call.hangup()
            ended = self._session.released  # the session's own reason when it ended the call (security, timeout)
            why = _REASONS.get(ended.reason, "connection-failed") if ended is not None else "connection-failed"
            raise CallFailed(f"cannot answer: {exc}", why) from None
        for ch in channels:  # receive keys now, before the caller's first packet
            if ch.direction == "receive":
                await media.start_channel(ch)
        return self.call

    async def reject(self, reason: str = "busy") -> None:
        """Refuse: ``busy`` (userBusy, cause 17), ``rejected`` (destinationRejection, cause 21), or an H.225.0 reason."""
        self.terminal._pending.discard(self._session)
        if reason == "busy":
            await self._session.hangup("undefinedReason", Cause.USER_BUSY)
        elif reason == "rejected":
            await self._session.reject("destinationRejection", Cause.CALL_REJECTED)
        else:
            await self._session.reject(reason, Cause.CALL_REJECTED)
