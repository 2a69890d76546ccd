"""Capability exchange signalling entity (CESE, H.245 §8.3 and §C.3), and the choice of what to transmit.

The peer's TerminalCapabilitySet gives its receive capabilities and, in
``capabilityDescriptors``, which of them it can receive at the same time
(H.245 §7.2.1.3): each descriptor is a list of alternative sets, one channel
per set. :func:`choose_channels` picks a format per media session within one
descriptor.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..fast_connect import PLAINTEXT, MediaPolicy, choose_transmit
from ..messages import MediaFormat
from .capabilities import (
    legacy_security_capabilities,
    parse_capabilities,
    parse_capability_descriptors,
    parse_capability_table,
    terminal_capability_set,
    terminal_capability_set_ack,
    terminal_capability_set_release,
)

__all__ = ["CeseState", "PeerCapabilities", "CapabilityExchange", "choose_channels"]

Value = Any


@dataclass(frozen=True)
class PeerCapabilities:
    """What a peer's TerminalCapabilitySet says it receives.

    ``formats``/``suites``: every format and SRTP suite announced; ``table``: the
    formats of each capability table entry; ``descriptors``: the simultaneous
    capabilities (None when the peer sent no descriptor: every format is taken as usable alone).
    """

    formats: tuple[MediaFormat, ...]
    suites: tuple[str, ...]
    table: Mapping[int, tuple[MediaFormat, ...]]
    descriptors: tuple[tuple[tuple[int, ...], ...], ...] | None
    legacy_keys: bool = False  # suites offered only in the pre-H.235.8 vcore form (an older vcore peer)

    @classmethod
    def parse(cls, tcs: Value) -> PeerCapabilities:
        formats, suites = parse_capabilities(tcs)
        return cls(formats, suites, parse_capability_table(tcs), parse_capability_descriptors(tcs),
                   legacy_security_capabilities(tcs))

    @property
    def h224(self) -> MediaFormat | None:
        """The peer's H.224 data capability (far-end camera control), if it offers one."""
        return next((f for f in self.formats if f.kind == "data"), None)


def choose_channels(peer: PeerCapabilities, policy: MediaPolicy, sessions: Sequence[int],
                    allowed_suites: Sequence[str] | None = None) -> dict[int, tuple[MediaFormat, str]]:
    """The format and suite of a send channel per media session, within the peer's simultaneous capabilities.

    Each alternative set of a descriptor carries at most one channel; the
    descriptor that carries the most sessions wins (the first on a tie).
    ``allowed_suites``: restrict the suites (None: the policy's choices).
    """
    suites = peer.suites if allowed_suites is None else tuple(s for s in peer.suites if s in allowed_suites)
    if allowed_suites is not None:
        policy = MediaPolicy(policy.formats, tuple(s for s in policy.suites if s in allowed_suites),
                             policy.allow_plaintext and PLAINTEXT in allowed_suites, policy.h224)
    if peer.descriptors is None:
        return {s: c for s in sessions if (c := choose_transmit(peer.formats, suites, policy, s)) is not None}
    best: dict[int, tuple[MediaFormat, str]] = {}
    for descriptor in peer.descriptors:
        used: set[int] = set()
        chosen: dict[int, tuple[MediaFormat, str]] = {}
        for session in sessions:
            for index, alternatives in enumerate(descriptor):
                if index in used:
                    continue
                formats = [f for n in alternatives for f in peer.table.get(n, ())]
                choice = choose_transmit(formats, suites, policy, session)
                if choice is not None:
                    used.add(index)
                    chosen[session] = choice
                    break
        if len(chosen) > len(best):
            best = chosen
    return best


class CeseState(enum.Enum):
    """H.245 §C.3.2: the outgoing CESE states."""

    IDLE = 0
    AWAITING_RESPONSE = 1


class CapabilityExchange:
    """Outgoing and incoming CESE. Each method returns the H.245 PDUs (values) to send.

    ``peer``: the peer's capabilities once received; ``acknowledged``: the peer
    accepted ours; ``failure``: T101 expired or the peer rejected our set.
    """

    def __init__(self, policy: MediaPolicy, *, timeout: float) -> None:
        self.policy = policy
        self.timeout = timeout
        self.state = CeseState.IDLE
        self.sequence = 0
        self.deadline: float | None = None
        self.acknowledged = False
        self.peer: PeerCapabilities | None = None
        self.failure: str | None = None

    def start(self, now: float) -> list[Value]:
        """Send our TerminalCapabilitySet (a new sequence number) and start T101."""
        self.sequence = (self.sequence + 1) % 256
        self.state = CeseState.AWAITING_RESPONSE
        self.deadline = now + self.timeout
        self.acknowledged = False
        return [terminal_capability_set(self.sequence, self.policy.formats, self.policy.suites, h224=self.policy.h224)]

    def reset(self) -> None:
        """Forget the procedure (the H.245 channel changed before it completed)."""
        self.state = CeseState.IDLE
        self.deadline = None
        self.acknowledged = False
        self.peer = None

    def on_request(self, body: Value) -> list[Value]:
        """The peer's TerminalCapabilitySet: record it and acknowledge."""
        self.peer = PeerCapabilities.parse(body)
        return [terminal_capability_set_ack(int(body["sequenceNumber"]))]

    def on_ack(self, body: Value) -> list[Value]:
        if self.state is CeseState.AWAITING_RESPONSE and int(body["sequenceNumber"]) == self.sequence:
            self.state = CeseState.IDLE
            self.deadline = None
            self.acknowledged = True
        return []

    def on_reject(self, body: Value) -> list[Value]:
        if self.state is CeseState.AWAITING_RESPONSE and int(body["sequenceNumber"]) == self.sequence:
            self.state = CeseState.IDLE
            self.deadline = None
            cause = body.get("cause", ("unspecified", 0))[0]
            self.failure = f"the peer rejected our capabilities ({cause})"
        return []

    def expire(self, now: float) -> list[Value]:
        """T101."""
        if self.deadline is None or now < self.deadline:
            return []
        self.state = CeseState.IDLE
        self.deadline = None
        self.failure = f"no answer to our capabilities within {self.timeout:g} s (T101)"
        return [terminal_capability_set_release()]
