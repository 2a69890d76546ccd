"""SIP transactions (RFC 3261 §17, with the Accepted states of RFC 6026) as pure state machines.

Each transaction takes time as an argument and answers with :class:`Action`
values (send this message, pass this response up, the transaction timed out
or ended); it never reads a clock, sleeps or touches a socket, so the timers
A–K are tested by calling :meth:`on_timer` with chosen times. The asyncio
wrapper that feeds them lives in :mod:`vcore.sip.ua`.

Timer values (RFC 3261 Table 4): T1 0.5 s, T2 4 s, T4 5 s; over a reliable
transport (TCP, TLS) nothing is retransmitted and the wait states last 0 s.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from .message import SipMessage

__all__ = [
    "T1",
    "T2",
    "T4",
    "TIMER_D",
    "Action",
    "ClientTransaction",
    "ServerTransaction",
    "State",
    "make_ack_for_error",
]

T1 = 0.5  # s, RFC 3261 §17.1.1.1: RTT estimate
T2 = 4.0  # s: the longest retransmission interval of non-INVITE requests and INVITE responses
T4 = 5.0  # s: the longest a message stays in the network
TIMER_D = 32.0  # s, RFC 3261 §17.1.1.2: at least 32 s over UDP


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"  # RFC 6026 §7.1/7.2
    TERMINATED = "terminated"


@dataclass(frozen=True)
class Action:
    """What a transaction asks of its owner.

    ``send``: put ``message`` on the wire; ``deliver``: pass ``message`` (a
    response, or a retransmitted 2xx) to the transaction user; ``timeout``: no
    answer in time (RFC 3261 timers B, F, H, L — the TU treats it as 408);
    ``terminated``: forget the transaction.
    """

    kind: Literal["send", "deliver", "timeout", "terminated"]
    message: SipMessage | None = None


def make_ack_for_error(request: SipMessage, response: SipMessage) -> SipMessage:
    """The ACK of a non-2xx final response (RFC 3261 §17.1.1.3): same branch, the response's To tag."""
    assert request.uri is not None
    headers: list[tuple[str, str]] = [("Via", request.get_all("Via")[0])]
    headers += [(n, v) for n, v in request.headers if n in ("Route", "Max-Forwards")]
    headers += [("From", request.get("From") or ""), ("To", response.get("To") or ""),
                ("Call-ID", request.call_id), ("CSeq", f"{request.cseq[0]} ACK")]
    return SipMessage.request("ACK", request.uri, headers)


class ClientTransaction:
    """An INVITE (§17.1.1) or non-INVITE (§17.1.2) client transaction; :meth:`start` sends the request."""

    def __init__(self, request: SipMessage, *, reliable: bool) -> None:
        assert request.method is not None
        self.request = request
        self.invite = request.method == "INVITE"
        self.reliable = reliable
        self.branch = request.top_via.branch or ""
        self.state = State.CALLING if self.invite else State.TRYING
        self.retransmissions = 0
        self._interval = T1
        self._retransmit_at: float | None = None  # timers A / E
        self._timeout_at: float | None = None  # timers B / F, then D / K / M
        self._ack: SipMessage | None = None

    @property
    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` must be called next (None: nothing pending)."""
        times = [t for t in (self._retransmit_at, self._timeout_at) if t is not None]
        return min(times) if times else None

    def start(self, now: float) -> list[Action]:
        if not self.reliable:
            self._retransmit_at = now + T1
        self._timeout_at = now + 64 * T1
        return [Action("send", self.request)]

    def on_response(self, response: SipMessage, now: float) -> list[Action]:
        assert response.status is not None
        status = response.status
        if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            if status < 200:
                self.state = State.PROCEEDING
                if self.invite:
                    self._retransmit_at = None  # timer A stops; B goes on (RFC 3261 §17.1.1.2)
                elif not self.reliable:
                    self._retransmit_at = now + T2
                return [Action("deliver", response)]
            self._retransmit_at = None
            if self.invite and status < 300:
                self.state = State.ACCEPTED  # RFC 6026: absorb the 2xx retransmissions for timer M
                self._timeout_at = now + 64 * T1
                return [Action("deliver", response)]
            self.state = State.COMPLETED
            if self.invite:
                self._ack = make_ack_for_error(self.request, response)
                self._timeout_at = now + (0.0 if self.reliable else TIMER_D)
                return [Action("send", self._ack), Action("deliver", response)]
            self._timeout_at = now + (0.0 if self.reliable else T4)  # timer K
            return [Action("deliver", response)]
        if self.state == State.COMPLETED and self.invite and status >= 300 and self._ack is not None:
            return [Action("send", self._ack)]  # the final response again: our ACK was lost
        if self.state == State.ACCEPTED and 200 <= status < 300:
            return [Action("deliver", response)]  # the TU sends its ACK again
        return []

    def on_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self._timeout_at is not None and now >= self._timeout_at:
            self._timeout_at = self._retransmit_at = None
            if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
                actions.append(Action("timeout"))
            self.state = State.TERMINATED
            actions.append(Action("terminated"))
            return actions
        if self._retransmit_at is not None and now >= self._retransmit_at:
            self.retransmissions += 1
            self._interval = self._interval * 2 if self.invite else min(self._interval * 2, T2)
            if self.state == State.PROCEEDING and not self.invite:
                self._interval = T2
            self._retransmit_at = now + self._interval
            actions.append(Action("send", self.request))
        return actions

    def transport_error(self) -> list[Action]:
        """The request could not be sent (RFC 3261 §17.1.4): the TU sees a 503."""
        self.state = State.TERMINATED
        self._timeout_at = self._retransmit_at = None
        return [Action("timeout"), Action("terminated")]


class ServerTransaction:
    """An INVITE (§17.2.1) or non-INVITE (§17.2.2) server transaction.

    ``respond`` sends the TU's responses; ``on_request`` absorbs
    retransmissions of the request (and the ACK of an error response).
    An INVITE answered 2xx goes to Accepted (RFC 6026): the 2xx is
    retransmitted over UDP (RFC 3261 §13.3.1.4, T1 doubling up to T2) until the
    TU reports the ACK with :meth:`ack_received`, or timer L ends it with
    ``timeout`` (the TU then ends the dialog with a BYE).
    """

    def __init__(self, request: SipMessage, *, reliable: bool) -> None:
        assert request.method is not None
        self.request = request
        self.invite = request.method == "INVITE"
        self.reliable = reliable
        self.state = State.PROCEEDING if self.invite else State.TRYING
        self.last_response: SipMessage | None = None
        self.retransmissions = 0
        self._interval = T1
        self._retransmit_at: float | None = None  # timer G, or the 2xx retransmission
        self._timeout_at: float | None = None  # timers H, I, J, L

    @property
    def next_deadline(self) -> float | None:
        times = [t for t in (self._retransmit_at, self._timeout_at) if t is not None]
        return min(times) if times else None

    def respond(self, response: SipMessage, now: float) -> list[Action]:
        assert response.status is not None
        if self.state not in (State.TRYING, State.PROCEEDING):
            return []  # a final response went already
        self.last_response = response
        status = response.status
        if status < 200:
            self.state = State.PROCEEDING
            return [Action("send", response)]
        if self.invite and status < 300:
            self.state = State.ACCEPTED
            self._timeout_at = now + 64 * T1  # timer L
            self._retransmit_at = None if self.reliable else now + T1
            return [Action("send", response)]
        self.state = State.COMPLETED
        if self.invite:
            self._retransmit_at = None if self.reliable else now + T1  # timer G
            self._timeout_at = now + 64 * T1  # timer H
        else:
            self._timeout_at = now + (0.0 if self.reliable else 64 * T1)  # timer J
        return [Action("send", response)]

    def on_request(self, request: SipMessage, now: float) -> list[Action]:
        """A retransmitted request (or, for an INVITE in Completed, its ACK)."""
        if request.method == "ACK":
            if self.state == State.COMPLETED and self.invite:
                self.state = State.CONFIRMED
                self._retransmit_at = None
                self._timeout_at = now + (0.0 if self.reliable else T4)  # timer I
            return []
        if self.last_response is not None and self.state in (State.PROCEEDING, State.COMPLETED, State.TRYING):
            return [Action("send", self.last_response)]
        return []

    def ack_received(self) -> list[Action]:
        """The TU got the ACK of our 2xx: stop retransmitting it and end (RFC 6026 §7.1)."""
        if self.state != State.ACCEPTED:
            return []
        self.state = State.TERMINATED
        self._retransmit_at = self._timeout_at = None
        return [Action("terminated")]

    def on_timer(self, now: float) -> list[Action]:
        if self._timeout_at is not None and now >= self._timeout_at:
            timed_out = self.state in (State.COMPLETED, State.ACCEPTED) and self.invite
            self.state = State.TERMINATED
            self._timeout_at = self._retransmit_at = None
            return ([Action("timeout")] if timed_out else []) + [Action("terminated")]
        if self._retransmit_at is not None and now >= self._retransmit_at and self.last_response is not None:
            self.retransmissions += 1
            self._interval = min(self._interval * 2, T2)
            self._retransmit_at = now + self._interval
            return [Action("send", self.last_response)]
        return []
