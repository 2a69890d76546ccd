"""A seeded, deterministic network emulator (in the spirit of Linux ``netem``).

:class:`NetworkEmulator` impairs a stream of datagrams: random or Gilbert–Elliott
burst loss, a rate limit with a drop-tail queue (an ADSL uplink), delay with
jitter (which reorders, as netem does), explicit reordering and duplication.
The same model runs in-process on lists (:meth:`NetworkEmulator.apply`), one
datagram at a time (:meth:`NetworkEmulator.send`), and behind a UDP relay on
127.0.0.1 (:class:`UdpRelay`). Every random draw comes from one seeded
``random.Random``: the same seed and input give the same output.

The relay is a user-space emulator: it forwards each datagram from an event-loop
timer, and on a busy machine a timer fires late (by a scheduling quantum, or far
more when the process is starved of CPU). The line it really emulated then had
more delay, and more delay variation, than it was configured with. A test that
measures such a line compares against what the relay did, not the nominal
figures: ``UdpRelay(..., record=True)`` keeps a :class:`RelayRecord` per datagram
(when it arrived, when the emulator meant it to leave, when it left).

Thread-safety: none; an emulator belongs to one thread or event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..transport.timestamps import StampedSocket, open_stamped

__all__ = ["NetemStats", "NetworkEmulator", "RelayRecord", "UdpRelay"]

_log = logging.getLogger(__name__)


@dataclass
class NetemStats:
    """What the emulator did to the datagrams it was given."""

    sent: int = 0
    delivered: int = 0
    lost: int = 0
    queue_drops: int = 0
    duplicated: int = 0
    reordered: int = 0


@dataclass
class NetworkEmulator:
    """Impairments applied to each datagram, in this order: loss, rate limit, delay, duplication.

    - ``loss``: probability of independent random loss.
    - Gilbert–Elliott burst loss (used when ``ge_p`` > 0): ``ge_p`` good->bad and
      ``ge_r`` bad->good transition probabilities per datagram, loss probability
      ``ge_loss_bad`` in the bad state and ``ge_loss_good`` in the good one. The
      mean loss rate is ``(ge_p * ge_loss_bad + ge_r * ge_loss_good) / (ge_p + ge_r)``
      and the mean burst length ``1 / ge_r`` (with ``ge_loss_bad=1``).
    - ``rate``: link rate in bit/s (0: unlimited) with a drop-tail queue of
      ``queue_bytes``; ``overhead`` bytes are added to each datagram (IP+UDP: 28).
    - ``delay`` ± ``jitter`` seconds (uniform); with ``jitter`` the order can
      change, as with netem. ``delay`` defaults to ``jitter`` so that no datagram
      arrives before it was sent.
    - ``reorder``: probability that a datagram is held back ``reorder_delay`` more.
    - ``duplicate``: probability that a datagram arrives twice (``duplicate_delay`` apart).
    """

    seed: int = 0
    loss: float = 0.0
    ge_p: float = 0.0
    ge_r: float = 1.0
    ge_loss_bad: float = 1.0
    ge_loss_good: float = 0.0
    rate: float = 0.0
    queue_bytes: int = 64_000
    overhead: int = 28
    delay: float | None = None
    jitter: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.010
    duplicate: float = 0.0
    duplicate_delay: float = 0.001
    stats: NetemStats = field(default_factory=NetemStats)

    def __post_init__(self) -> None:
        for name in ("loss", "ge_p", "ge_r", "ge_loss_bad", "ge_loss_good", "reorder", "duplicate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} {value} is not a probability")
        if self.jitter < 0 or self.rate < 0 or (self.delay is not None and self.delay < 0):
            raise ValueError("delay, jitter and rate must not be negative")
        self._rng = random.Random(self.seed)
        self._bad = False
        self._link_free = float("-inf")
        self._queue: list[tuple[float, int]] = []  # (departure time, size) of queued datagrams

    @property
    def base_delay(self) -> float:
        """The fixed one-way delay (``delay``, or ``jitter`` when not given)."""
        return self.jitter if self.delay is None else self.delay

    def _lost(self) -> bool:
        rng = self._rng
        if self.ge_p > 0.0:
            if self._bad:
                if rng.random() < self.ge_r:
                    self._bad = False
            elif rng.random() < self.ge_p:
                self._bad = True
            p = self.ge_loss_bad if self._bad else self.ge_loss_good
            return rng.random() < p
        return self.loss > 0.0 and rng.random() < self.loss

    def send(self, send_time: float, data: bytes) -> list[tuple[float, bytes]]:
        """Arrivals ``(time, data)`` of one datagram sent at ``send_time`` (zero, one or two).

        Datagrams must be given in order of ``send_time``.
        """
        st = self.stats
        st.sent += 1
        rng = self._rng
        if self._lost():
            st.lost += 1
            return []
        t = send_time
        if self.rate > 0.0:
            q = self._queue
            while q and q[0][0] <= send_time:
                q.pop(0)
            size = len(data) + self.overhead
            if sum(s for _, s in q) + size > self.queue_bytes:
                st.queue_drops += 1
                return []
            start = self._link_free if self._link_free > send_time else send_time
            t = start + size * 8.0 / self.rate
            self._link_free = t
            q.append((t, size))
        t += self.base_delay
        if self.jitter > 0.0:
            t += rng.uniform(-self.jitter, self.jitter)
            if t < send_time:
                t = send_time
        if self.reorder > 0.0 and rng.random() < self.reorder:
            t += self.reorder_delay
            st.reordered += 1
        out = [(t, data)]
        if self.duplicate > 0.0 and rng.random() < self.duplicate:
            out.append((t + self.duplicate_delay, data))
            st.duplicated += 1
        st.delivered += len(out)
        return out

    def apply(self, datagrams: Iterable[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
        """Impair a list of ``(send_time, data)``; returns ``(arrival_time, data)`` by arrival."""
        out: list[tuple[float, bytes]] = []
        for send_time, data in datagrams:
            out.extend(self.send(send_time, data))
        out.sort(key=lambda a: a[0])  # stable: equal times keep their order
        return out


@dataclass
class RelayRecord:
    """One datagram through a :class:`UdpRelay` (kept with ``record=True``); times on the loop's clock.

    ``sent - received`` is the delay the datagram really had on the emulated line (the
    ground truth for that run), ``due - received`` the delay the emulator meant to apply:
    they differ by how late the relay's timer fired. A duplicated datagram has two records.
    """

    upstream: bool  # towards the relay's target
    data: bytes
    received: float  # when it reached the relay (the kernel's receive time where the platform gives it)
    due: float | None  # when the emulator meant to forward it (None: lost)
    sent: float | None = None  # when the relay forwarded it (None: lost, or never sent)

    @property
    def delay(self) -> float | None:
        """The delay the datagram really had (None: not delivered)."""
        return None if self.sent is None else self.sent - self.received

    @property
    def planned_delay(self) -> float | None:
        """The delay the emulator drew for it (None: lost)."""
        return None if self.due is None else self.due - self.received


class _RelayProtocol(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay) -> None:
        self._relay = relay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._relay._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self._relay._received(data, addr)  # type: ignore[arg-type]


class UdpRelay:
    """A UDP relay on 127.0.0.1 that impairs datagrams with a :class:`NetworkEmulator`.

    Datagrams from anyone but ``target`` go to ``target`` through ``emulator``;
    datagrams from ``target`` go back to the last other sender, through
    ``reverse`` when given (unimpaired otherwise). Use as
    ``async with UdpRelay(target, emulator) as relay: relay.address``.
    With ``record=True`` every datagram leaves a :class:`RelayRecord` in :attr:`log`
    (which grows without bound: for tests). Owns one transport and the timers it
    schedules; :meth:`close` cancels them. Not thread-safe: use it from its event loop.
    """

    def __init__(
        self,
        target: tuple[str, int],
        emulator: NetworkEmulator,
        reverse: NetworkEmulator | None = None,
        host: str = "127.0.0.1",
        *,
        record: bool = False,
    ) -> None:
        self.target = target
        self.emulator = emulator
        self.reverse = reverse
        self._host = host
        self._transport: asyncio.DatagramTransport | StampedSocket | None = None
        self._peer: tuple[str, int] | None = None
        self._last_received = float("-inf")
        self._timers: set[asyncio.TimerHandle] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.record = record
        self.log: list[RelayRecord] = []  # with ``record``: every datagram, in the order the relay read them

    @property
    def address(self) -> tuple[str, int]:
        """The relay's own (host, port): send here to reach ``target``."""
        if self._transport is None:
            raise RuntimeError("UdpRelay is not started")
        addr = self._transport.get_extra_info("sockname")
        return (addr[0], addr[1])

    async def start(self) -> tuple[str, int]:
        """Bind to an ephemeral port; returns :attr:`address`."""
        self._loop = loop = asyncio.get_running_loop()
        # kernel receive times: on a busy machine the emulated delay starts when the datagram arrived,
        # not when the relay got round to reading it
        self._transport = await open_stamped(self._received, local=(self._host, 0))
        if self._transport is not None:
            return self.address
        await loop.create_datagram_endpoint(lambda: _RelayProtocol(self), local_addr=(self._host, 0))
        return self.address

    def _received(self, data: bytes, addr: tuple[str, int], at: float | None = None) -> None:
        """Impair and schedule a datagram that reached the relay ``at`` (loop clock; default now)."""
        assert self._loop is not None
        now = self._loop.time() if at is None else at
        now = self._last_received = max(now, self._last_received)  # the emulator takes them in order
        upstream = addr != self.target
        if not upstream:
            if self._peer is None:
                return
            dest = self._peer
            arrivals = self.reverse.send(now, data) if self.reverse is not None else [(now, data)]
        else:
            self._peer = addr
            dest = self.target
            arrivals = self.emulator.send(now, data)
        if self.record and not arrivals:
            self.log.append(RelayRecord(upstream, data, now, None))
        for when, payload in arrivals:
            rec = None
            if self.record:
                rec = RelayRecord(upstream, payload, now, when)
                self.log.append(rec)
            holder: list[asyncio.TimerHandle] = []
            holder.append(self._loop.call_at(when, self._deliver, payload, dest, holder, rec))
            self._timers.add(holder[0])

    def _deliver(self, payload: bytes, dest: tuple[str, int], holder: list[asyncio.TimerHandle],
                 rec: RelayRecord | None = None) -> None:
        self._timers.discard(holder[0])
        if self._transport is not None:
            if rec is not None and self._loop is not None:
                rec.sent = self._loop.time()
            self._transport.sendto(payload, dest)

    def close(self) -> None:
        """Cancel pending deliveries and close the socket (idempotent)."""
        for h in self._timers:
            h.cancel()
        self._timers.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> UdpRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
