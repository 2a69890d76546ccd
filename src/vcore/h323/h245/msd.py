"""Master/slave determination signalling entity (MSDSE, H.245 §8.2 and §C.2)."""

from __future__ import annotations

import enum
import secrets
from typing import Any, Callable

from .pdus import (
    master_slave_determination,
    master_slave_determination_ack,
    master_slave_determination_reject,
    master_slave_determination_release,
    msd_decision,
)

__all__ = ["MsdState", "MasterSlaveDetermination", "TERMINAL_TYPE"]

TERMINAL_TYPE = 50  # H.323 Table 1: a terminal without MC
_MASK = 0xFFFFFF  # H.245 §C.2.5: statusDeterminationNumber, 24 bits

Value = Any


class MsdState(enum.Enum):
    """H.245 §C.2.3: the MSDSE states."""

    IDLE = 0
    OUTGOING_AWAITING_RESPONSE = 1
    INCOMING_AWAITING_RESPONSE = 2


def _opposite(status: str) -> str:
    return "slave" if status == "master" else "master"


class MasterSlaveDetermination:
    """One MSDSE. Each method returns the H.245 PDUs (values) to send.

    ``status`` is ``master``/``slave`` once determined; ``failure`` says why the
    procedure failed (T106 expired, indeterminate or rejected ``n100`` times,
    inconsistent acknowledgement) — the session then ends the call.
    """

    def __init__(self, *, timeout: float, retries: int, terminal_type: int = TERMINAL_TYPE,
                 random: Callable[[], int] = lambda: secrets.randbits(24)) -> None:
        self.timeout = timeout
        self.retries = retries
        self.terminal_type = terminal_type
        self._random = random
        self.number = random() & _MASK
        self.state = MsdState.IDLE
        self.status: str | None = None
        self.failure: str | None = None
        self.deadline: float | None = None
        self._count = 0  # N100 counter

    def _send(self, now: float) -> list[Value]:
        self.state = MsdState.OUTGOING_AWAITING_RESPONSE
        self.deadline = now + self.timeout
        return [master_slave_determination(self.terminal_type, self.number)]

    def _fail(self, why: str) -> None:
        self.state = MsdState.IDLE
        self.deadline = None
        self.status = None
        self.failure = why

    def start(self, now: float) -> list[Value]:
        """Determine (again): send MasterSlaveDetermination, unless one is already under way."""
        if self.state is not MsdState.IDLE or self.failure is not None:
            return []
        self._count = 0
        return self._send(now)

    def reset(self) -> None:
        """Forget the procedure (the H.245 channel changed before it completed)."""
        self.state = MsdState.IDLE
        self.deadline = None
        self.status = None
        self._count = 0

    def on_request(self, body: Value, now: float) -> list[Value]:
        """The peer's MasterSlaveDetermination."""
        decision = msd_decision(self.terminal_type, self.number, int(body["terminalType"]),
                                int(body["statusDeterminationNumber"]))
        if decision is None:  # indeterminate (§C.2.5): identical numbers or exactly half the range apart
            if self.state is MsdState.OUTGOING_AWAITING_RESPONSE:
                self._count += 1
                if self._count >= self.retries:
                    self._fail(f"master/slave determination indeterminate {self._count} times (N100)")
                    return [master_slave_determination_reject()]
                self.number = self._random() & _MASK
                return self._send(now)
            return [master_slave_determination_reject()]
        self.status = decision
        self.state = MsdState.INCOMING_AWAITING_RESPONSE
        self.deadline = now + self.timeout
        return [master_slave_determination_ack(_opposite(decision))]

    def on_ack(self, body: Value, now: float) -> list[Value]:
        """The peer's MasterSlaveDeterminationAck (``decision``: what we are)."""
        decision = str(body["decision"][0])
        if self.state is MsdState.OUTGOING_AWAITING_RESPONSE:
            # the peer decided: confirm with our own Ack (H.245 §8.2.2, Figure C.2)
            self.status = decision
            self.state = MsdState.IDLE
            self.deadline = None
            return [master_slave_determination_ack(_opposite(decision))]
        if self.state is MsdState.INCOMING_AWAITING_RESPONSE:
            if decision != self.status:
                self._fail(f"the peer acknowledged {decision} where the determination gave {self.status}")
                return []
            self.state = MsdState.IDLE
            self.deadline = None
        return []

    def on_reject(self, now: float) -> list[Value]:
        """The peer's MasterSlaveDeterminationReject: retry with a new number up to N100 times."""
        if self.state is not MsdState.OUTGOING_AWAITING_RESPONSE:
            return []
        self._count += 1
        if self._count >= self.retries:
            self._fail(f"master/slave determination rejected {self._count} times (N100)")
            return []
        self.number = self._random() & _MASK
        return self._send(now)

    def on_release(self) -> None:
        """The peer's MasterSlaveDeterminationRelease: its T106 expired."""
        if self.state is MsdState.INCOMING_AWAITING_RESPONSE:
            self._fail("the peer released the master/slave determination (its T106 expired)")

    def expire(self, now: float) -> list[Value]:
        """T106."""
        if self.deadline is None or now < self.deadline:
            return []
        outgoing = self.state is MsdState.OUTGOING_AWAITING_RESPONSE
        self._fail(f"no answer to master/slave determination within {self.timeout:g} s (T106)")
        return [master_slave_determination_release()] if outgoing else []
