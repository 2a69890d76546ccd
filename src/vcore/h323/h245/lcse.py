"""Uni-directional logical channel signalling entities (LCSE, H.245 §8.4 and §C.4), outgoing side.

An outgoing channel is ``awaiting establishment`` from its OpenLogicalChannel
until the Ack or Reject, ``awaiting release`` from its CloseLogicalChannel
until the Ack; T103 bounds both. An OpenLogicalChannel left unanswered is
closed (CloseLogicalChannel, source ``lcse``) and reported.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ..messages import OpenChannel
from .pdus import close_logical_channel, open_logical_channel_pdu

__all__ = ["LcseState", "OutgoingChannels"]

Value = Any


class LcseState(enum.Enum):
    """H.245 §C.4.2: the outgoing LCSE states (established channels are tracked by the session)."""

    RELEASED = 0
    AWAITING_ESTABLISHMENT = 1
    ESTABLISHED = 2
    AWAITING_RELEASE = 3


@dataclass
class _Entry:
    channel: OpenChannel | None  # None: a channel established by Fast Connect
    state: LcseState
    deadline: float | None


class OutgoingChannels:
    """The outgoing LCSEs of one H.245 session, by forward logical channel number."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self._entries: dict[int, _Entry] = {}

    def state(self, number: int) -> LcseState:
        entry = self._entries.get(number)
        return entry.state if entry is not None else LcseState.RELEASED

    @property
    def pending(self) -> int:
        """Channels still awaiting establishment."""
        return sum(e.state is LcseState.AWAITING_ESTABLISHMENT for e in self._entries.values())

    def open(self, channel: OpenChannel, now: float) -> list[Value]:
        self._entries[channel.number] = _Entry(channel, LcseState.AWAITING_ESTABLISHMENT, now + self.timeout)
        return [open_logical_channel_pdu(channel)]

    def on_ack(self, number: int) -> OpenChannel | None:
        """The channel the Ack establishes, or None (unknown number, or not awaiting establishment)."""
        entry = self._entries.get(number)
        if entry is None or entry.state is not LcseState.AWAITING_ESTABLISHMENT:
            return None
        entry.state, entry.deadline = LcseState.ESTABLISHED, None
        return entry.channel

    def on_reject(self, number: int) -> OpenChannel | None:
        entry = self._entries.get(number)
        if entry is None or entry.state is not LcseState.AWAITING_ESTABLISHMENT:
            return None
        del self._entries[number]
        return entry.channel

    def close(self, number: int, now: float) -> list[Value]:
        """Close an established channel (opened here or by Fast Connect)."""
        entry = self._entries.get(number)
        if entry is not None and entry.state is LcseState.AWAITING_RELEASE:
            return []
        self._entries[number] = _Entry(None, LcseState.AWAITING_RELEASE, now + self.timeout)
        return [close_logical_channel(number)]

    def on_close_ack(self, number: int) -> None:
        entry = self._entries.get(number)
        if entry is not None and entry.state is LcseState.AWAITING_RELEASE:
            del self._entries[number]

    def deadline(self) -> float | None:
        return min((e.deadline for e in self._entries.values() if e.deadline is not None), default=None)

    def expire(self, now: float) -> tuple[list[Value], list[str]]:
        """T103: PDUs to send and what to report."""
        pdus: list[Value] = []
        notes: list[str] = []
        for number, entry in list(self._entries.items()):
            if entry.deadline is None or now < entry.deadline:
                continue
            if entry.state is LcseState.AWAITING_ESTABLISHMENT:
                pdus.append(close_logical_channel(number, "lcse"))
                notes.append(f"channel {number}: no answer to OpenLogicalChannel within {self.timeout:g} s (T103)")
            else:
                notes.append(f"channel {number}: no answer to CloseLogicalChannel within {self.timeout:g} s (T103)")
            del self._entries[number]
        return pdus, notes
