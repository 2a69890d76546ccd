"""``vcore linetest``: can this line carry a call? RTT, jitter, loss and bandwidth each way.

One side serves, the other measures::

    vcore linetest --serve [--port 5004] [--key KEY | --key generate]
    vcore linetest HOST[:PORT] [--key KEY] [--json OUT.json]

Probe traffic is RTP-like (RFC 3550 header, payload type 100) and SRTP-protected
(AES_CM_128_HMAC_SHA1_80, RFC 3711) under a pre-shared master key: there is no
signalling to exchange one. ``--key`` takes the 30-byte master key || salt in
base64 (``--key generate`` on the server prints a fresh one to give the client);
without it both sides derive the key from ``--passphrase`` (default
``vcore-linetest``: fine for a test, but anyone who knows the default could
inject probes). Each direction has its own SSRC, so the one key never encrypts
two streams with the same keystream.

No amplification: the server sends probe trains only to an address that proved
it receives there (it echoes the cookie the server put in its pongs, a MAC of the
session and the address), and until then sends back at most three bytes per byte
it received from that address. Requests are validated (a rate must be a positive
finite number, 0 only for a short back-to-back train; at most ten seconds of
sending per request), sessions and trains are capped, idle sessions expire. A
server needs a key (``--key`` or ``--passphrase``): the public default passphrase
is refused for ``--serve``.

Method (client-driven; the server keeps a small state per client session and
forgets it after a minute of silence):

1. ping train at low rate (default 200 pings, 10 ms apart): the server echoes each
   with its receive time -> RTT (min/median/p95), one-way jitter each way
   (mean |D| of RFC 3550 §6.4.1 transit differences, and the RFC's running J),
   loss each way (the server reports how many pings it got);
2. packet trains (24 back-to-back 1,200-byte probes) each way: the receiver fits
   arrival time against cumulative bits (least squares) -> a first capacity estimate;
3. a paced ramp each way at 0.5, 0.75, 0.9, 1.05, 1.25, 1.5, 2x the train estimate,
   ``step`` seconds per rate, until a step shows congestion (received rate under 90 %
   of the sending rate, one-way delay growing by more than 10 ms across the step, or
   extra loss): available bandwidth = the highest received rate (a lower bound when
   no step congested). The server sends for downstream; the client for upstream and
   the server reports what it received.

Rates count IP + UDP headers (28 bytes per datagram), as a line's rate does. Every
exchange has a timeout: a far side that does not answer gives a report saying so,
a line that drops mid-test a partial report. See ``docs/bench.md``.

Thread-safety: none; the server and the client each belong to one event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import math
import os
import random
import statistics
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ParseError, SrtpError, VcoreError
from .srtp import SrtpSession
from .transport.timestamps import StampedSocket, open_stamped

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_PASSPHRASE",
    "LinetestError",
    "LinetestServer",
    "LinetestReport",
    "DirectionResult",
    "Recommendation",
    "analyze_arrivals",
    "key_from_passphrase",
    "recommend",
    "run_linetest",
    "main",
]

_log = logging.getLogger(__name__)

DEFAULT_PORT = 5004
DEFAULT_PASSPHRASE = "vcore-linetest"
SUITE = "AES_CM_128_HMAC_SHA1_80"  # RFC 3711 §5 default suite; 10-byte tag
KEY_LEN = 30  # master key (16) || master salt (14)
PT_PROBE = 100  # dynamic RTP payload type (RFC 3551 §6)
IP_UDP_OVERHEAD = 28  # IPv4 (20) + UDP (8) bytes per datagram
PROBE_SIZE = 1200  # RTP packet bytes of a bandwidth probe (before SRTP's tag)
SRTP_TAG = 10
TRAIN_PACKETS = 24
RAMP = (0.5, 0.75, 0.9, 1.05, 1.25, 1.5, 2.0)
MAX_SERVER_RATE = 50e6  # bit/s a client may ask the server to send
MAX_SERVER_PACKETS = 50_000
MAX_TRAIN_SECONDS = 10.0  # the longest burst a request may ask for (count * size / rate)
MAX_CATCH_UP = 0.005  # s of sending a paced train sends at once after its timer woke late (see _paced)
MAX_SESSIONS = 16  # clients at once; more are ignored until one goes idle
MAX_TESTS = 64  # test ids one session may use (each keeps its arrival records)
MAX_SENDERS = 4  # probe trains the server sends at once (one per session)
AMPLIFICATION = 3  # until an address echoed its cookie, at most this many bytes out per byte in
SESSION_IDLE = 60.0
MAX_STREAMS = 4096  # distinct client SSRCs the server's SRTP context keeps replay state for (~1 MB at most)
COOKIE_LEN = 8

MSG_PING, MSG_PONG, MSG_DATA, MSG_START, MSG_REPORT_REQ, MSG_REPORT, MSG_BYE = range(1, 8)
# type, flags, test id, index, aux, t1, t2
_HDR = struct.Struct("!BBHIIdd")
_RTP = struct.Struct("!BBHII")

TEST_PINGS = 0
TEST_TRAIN_UP = 1
TEST_TRAIN_DOWN = 2
TEST_RAMP_UP = 100  # + step
TEST_RAMP_DOWN = 200  # + step


class LinetestError(VcoreError):
    """A line test could not run (bad key, bad address)."""


def key_from_passphrase(passphrase: str) -> bytes:
    """The 30-byte SRTP master key || salt both sides derive from a passphrase (PBKDF2-HMAC-SHA256)."""
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode(), b"vcore-linetest", 20_000, KEY_LEN)


def parse_key(text: str) -> bytes:
    """A base64 master key || salt of 30 bytes; :class:`LinetestError` otherwise."""
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        raise LinetestError("--key must be base64 (30 bytes: master key || salt)") from None
    if len(key) != KEY_LEN:
        raise LinetestError(f"--key must decode to {KEY_LEN} bytes, not {len(key)}")
    return key


def _now() -> float:
    return time.monotonic()


class _Endpoint:
    """SRTP-protected probe packets for one SSRC (sending side)."""

    def __init__(self, srtp: SrtpSession, ssrc: int) -> None:
        self.srtp = srtp
        self.ssrc = ssrc
        self.seq = random.getrandbits(15)  # RFC 3550 §5.1: random initial sequence number
        self.ts = random.getrandbits(32)

    def packet(self, kind: int, test: int, index: int, aux: int, t1: float, t2: float,
               body: bytes = b"", size: int = 0) -> bytes:
        payload = _HDR.pack(kind, 0, test, index & 0xFFFFFFFF, aux & 0xFFFFFFFF, t1, t2) + body
        rtp = _RTP.pack(0x80, PT_PROBE, self.seq, self.ts, self.ssrc) + payload
        if len(rtp) < size:
            rtp += bytes(size - len(rtp))
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + 90) & 0xFFFFFFFF
        return self.srtp.protect(rtp)


def _open(srtp: SrtpSession, data: bytes) -> tuple[int, tuple[int, int, int, int, int, float, float], bytes] | None:
    """(SSRC, header fields, body) of an authentic probe packet, or None."""
    try:
        rtp = srtp.unprotect(data)
    except (SrtpError, ParseError, ValueError) as exc:
        _log.debug("dropped a datagram: %s", type(exc).__name__)
        return None
    if len(rtp) < _RTP.size + _HDR.size or rtp[0] != 0x80 or rtp[1] & 0x7F != PT_PROBE:
        return None
    ssrc = _RTP.unpack_from(rtp)[4]
    fields = _HDR.unpack_from(rtp, _RTP.size)
    return ssrc, fields, bytes(rtp[_RTP.size + _HDR.size:])


# ---------------------------------------------------------------------------
# analysis shared by both sides
# ---------------------------------------------------------------------------


def analyze_arrivals(records: list[tuple[int, int, float, float]], overhead: int = IP_UDP_OVERHEAD) -> dict[str, Any]:
    """What a receiver saw of one probe stream.

    ``records``: (index, datagram bytes, sender's send time, arrival time) of probes of one
    size, indexed from 0 in send order. Returns ``received``, ``bits`` (with ``overhead``
    bytes per datagram), ``rate`` (bit/s: the least-squares slope of arrival time against
    the bits sent before each probe, ``index * bits per probe``; robust to jitter, and a
    lost probe still counts as sent: on a real line it used its slot), ``send_rate``
    (bit/s: the same fit against the sender's send times: the rate it really sent at,
    which a busy sender may fall short of), ``owd_growth`` (s: median one-way delay of the
    last third minus the first third; the sender's clock offset cancels) and ``span`` (s).
    """
    recs = sorted(records)
    n = len(recs)
    out: dict[str, Any] = {"received": n, "bits": sum((r[1] + overhead) * 8 for r in recs),
                           "rate": None, "send_rate": None, "owd_growth": None, "span": 0.0}
    if n < 3:
        return out
    per = out["bits"] / n
    xs = [r[0] * per for r in recs]
    ys = [r[3] for r in recs]
    out["rate"] = _fit_rate(xs, ys)
    out["send_rate"] = _fit_rate(xs, [r[2] for r in recs])
    owd = [r[3] - r[2] for r in recs]
    k = max(1, n // 3)
    out["owd_growth"] = statistics.median(owd[-k:]) - statistics.median(owd[:k])
    out["span"] = max(ys) - min(ys)
    return out


def _fit_rate(bits: list[float], times: list[float]) -> float | None:
    """bit/s: least-squares fit of cumulative ``bits`` against ``times`` (None when they do not rise together)."""
    n = len(bits)
    mx, my = sum(bits) / n, sum(times) / n
    sxx = sum((x - mx) ** 2 for x in bits)
    sxy = sum((x - mx) * (y - my) for x, y in zip(bits, times))
    return sxx / sxy if sxx > 0 and sxy > 0 else None


def _wilson(lost: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a loss proportion."""
    if total <= 0:
        return (0.0, 1.0)
    p = lost / total
    d = 1 + z * z / total
    c = (p + z * z / (2 * total)) / d
    h = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / d
    return (max(0.0, c - h), min(1.0, c + h))


# ---------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------


@dataclass
class _ServerSession:
    endpoint: _Endpoint
    addr: tuple[Any, ...]
    last_seen: float
    tests: dict[int, list[tuple[int, int, float, float]]] = field(default_factory=dict)
    started: set[int] = field(default_factory=set)
    pings: int = 0
    verified: bool = False  # the address echoed its cookie: it receives what is sent there
    received_bytes: int = 0  # from the current address, while unverified
    sent_bytes: int = 0  # to the current address, while unverified
    sending: bool = False  # a probe train is on its way


class _ServerProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: LinetestServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.server.datagram_received(data, addr, _now())

    def error_received(self, exc: Exception) -> None:
        _log.debug("linetest server socket error: %s", exc)


class LinetestServer:
    """The far end of a line test: echoes pings, reports what it received, sends on request.

    ``async with LinetestServer(key) as s: await s.start(host, port)``; or feed it
    datagrams from another socket with :meth:`datagram_received` and a ``send``
    callable (for a terminal that answers line tests on its call port). Owns its send
    tasks and cancels them on :meth:`close`. Not thread-safe.
    """

    def __init__(self, key: bytes, *, send: Callable[[bytes, tuple[Any, ...]], None] | None = None) -> None:
        self._srtp = SrtpSession(SUITE, key, replay_window=1024)
        self._sessions: dict[int, _ServerSession] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._send_cb = send
        self._tasks: set[asyncio.Task[None]] = set()
        self._secret = os.urandom(32)
        self.dropped = 0  # datagrams that failed authentication or parsing
        self.refused = 0  # authentic requests refused: bad values, no cookie, a limit reached
        self.withheld = 0  # datagrams not sent to an unverified address (the amplification bound)
        # the client SSRCs that passed authentication: each keeps replay state in the SRTP context, which
        # cannot forget one (that would allow replays and, outbound, index reuse under the shared key)
        self._streams: set[int] = set()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on."""
        if self._transport is None:
            raise RuntimeError("LinetestServer is not started")
        a = self._transport.get_extra_info("sockname")
        return (a[0], a[1])

    async def start(self, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> tuple[str, int]:
        """Listen on UDP ``host``:``port`` (0: any free port); returns the address."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _ServerProtocol(self), local_addr=(host, port))
        self._transport = transport
        _log.info("linetest server on %s:%d", *self.address)
        return self.address

    def _send(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self._send_cb is not None:
            self._send_cb(data, addr)
        elif self._transport is not None:
            self._transport.sendto(data, addr)

    def _send_to(self, s: _ServerSession, data: bytes) -> bool:
        """Send to a session's address, within the amplification bound while it is unverified."""
        if not s.verified:
            if s.sent_bytes + len(data) > AMPLIFICATION * s.received_bytes:
                self.withheld += 1
                return False
            s.sent_bytes += len(data)
        self._send(data, s.addr)
        return True

    def cookie(self, ssrc: int, addr: tuple[Any, ...]) -> bytes:
        """What a client at ``addr`` must echo to prove it receives there (a MAC; the server keeps nothing)."""
        msg = f"{ssrc:08x}|{addr[0]}|{addr[1]}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).digest()[:COOKIE_LEN]

    def _refuse(self, why: str, *args: Any) -> None:
        self.refused += 1
        _log.debug("linetest: refused a request: " + why, *args)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...], now: float) -> None:
        """Handle one datagram that arrived at ``now`` (monotonic seconds) from ``addr``."""
        if len(self._streams) >= MAX_STREAMS and int.from_bytes(data[8:12], "big") not in self._streams:
            self._refuse("%d client SSRCs seen: restart the server to take new ones", MAX_STREAMS)
            return  # not even authenticated: a key holder cycling SSRCs cannot grow the SRTP state
        opened = _open(self._srtp, data)
        if opened is None:
            self.dropped += 1
            return
        ssrc, (kind, _flags, test, index, aux, t1, t2), body = opened
        if ssrc not in self._streams:
            self._streams.add(ssrc)
            if len(self._streams) == MAX_STREAMS:
                _log.warning("linetest server: %d client SSRCs seen; new clients are refused until a restart",
                             MAX_STREAMS)
        s = self._sessions.get(ssrc)
        if s is None:
            self._expire(now)
            if len(self._sessions) >= MAX_SESSIONS:
                self._refuse("%d sessions already", MAX_SESSIONS)
                return
            s = _ServerSession(_Endpoint(self._srtp, ssrc ^ 0x5A5A5A5A), addr, now)
            self._sessions[ssrc] = s
            _log.info("linetest session %08x from %s", ssrc, addr)
        if addr != s.addr:  # a new address must prove itself again
            s.addr, s.verified, s.received_bytes, s.sent_bytes = addr, False, 0, 0
        if not s.verified:
            s.received_bytes += len(data)
        s.last_seen = now
        ep = s.endpoint
        if kind == MSG_PING:
            s.pings += 1
            records = s.tests.setdefault(TEST_PINGS, [])
            if len(records) < MAX_SERVER_PACKETS:
                records.append((index, len(data), t1, now))
            self._send_to(s, ep.packet(MSG_PONG, test, index, s.pings, t1, now, self.cookie(ssrc, addr)))
        elif kind == MSG_DATA:
            if test not in s.tests and len(s.tests) >= MAX_TESTS:
                self._refuse("session %08x used %d test ids", ssrc, MAX_TESTS)
                return
            recs = s.tests.setdefault(test, [])
            if len(recs) < MAX_SERVER_PACKETS:
                recs.append((index, len(data), t1, now))
        elif kind == MSG_REPORT_REQ:
            report = analyze_arrivals(s.tests.get(test, []))
            self._send_to(s, ep.packet(MSG_REPORT, test, index, 0, t1, now, json.dumps(report).encode()))
        elif kind == MSG_START:
            self._start(s, ssrc, test, index, aux, t1, body)
        elif kind == MSG_BYE:
            self._sessions.pop(ssrc, None)

    def _start(self, s: _ServerSession, ssrc: int, test: int, count: int, size: int, rate: float,
               body: bytes) -> None:
        """A request for a probe train: checked, then sent only to a verified address."""
        if not hmac.compare_digest(body[:COOKIE_LEN], self.cookie(ssrc, s.addr)):
            self._refuse("START without this address's cookie (ping first)")
            return
        s.verified = True
        if test in s.started or s.sending:
            return  # a repeated request, or one while a train is on its way
        if len(s.started) >= MAX_TESTS:
            self._refuse("session %08x used %d test ids", ssrc, MAX_TESTS)
            return
        size = max(_RTP.size + _HDR.size, min(size, 1400))
        bits = (size + SRTP_TAG + IP_UDP_OVERHEAD) * 8
        count = min(count, MAX_SERVER_PACKETS)
        if not math.isfinite(rate) or rate < 0 or (rate == 0 and count > TRAIN_PACKETS):
            self._refuse("rate %r for %d packets", rate, count)
            return
        if rate > 0:
            rate = min(rate, MAX_SERVER_RATE)
            count = min(count, int(MAX_TRAIN_SECONDS * rate / bits))
        if sum(1 for x in self._sessions.values() if x.sending) >= MAX_SENDERS:
            self._refuse("%d trains on their way already", MAX_SENDERS)
            return
        s.started.add(test)
        s.sending = True
        task = asyncio.get_running_loop().create_task(self._send_train(s, test, count, size, rate))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_train(self, s: _ServerSession, test: int, count: int, size: int, rate: float) -> None:
        """``count`` DATA probes of ``size`` bytes, back to back (rate 0) or paced at ``rate`` bit/s."""
        bits = (size + SRTP_TAG + IP_UDP_OVERHEAD) * 8
        try:
            await _paced(count, bits, rate, lambda i: self._send_to(
                s, s.endpoint.packet(MSG_DATA, test, i, count, _now(), 0.0, size=size)))
        finally:
            s.sending = False

    def _expire(self, now: float) -> None:
        for k in [k for k, s in self._sessions.items() if now - s.last_seen > SESSION_IDLE]:
            del self._sessions[k]

    async def close(self) -> None:
        """Stop sending and close the socket (idempotent)."""
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            try:
                await t
            except asyncio.CancelledError:
                pass
        self._tasks.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> LinetestServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _paced(count: int, bits: int, rate: float, send: Callable[[int], object]) -> None:
    """Call ``send(i)`` for i < count: at once (rate 0) or at ``rate`` bit/s of ``bits``-bit packets.

    Each packet has a deadline (``start + i * interval``): a timer that wakes a little late
    is caught up, so the mean rate holds. A sender held up longer than :data:`MAX_CATCH_UP`
    (a busy machine that did not run it) moves its later deadlines instead of sending what it
    owes in one burst: a burst would queue at the bottleneck and read as congestion (a delay
    growth) at a rate the line carries. The rate actually sent shows in the send times the
    probes carry (:func:`analyze_arrivals`' ``send_rate``).
    """
    if rate <= 0:
        for i in range(count):
            send(i)
        return
    interval = bits / rate
    start = _now()
    i = 0
    while i < count:
        late = _now() - (start + i * interval)
        if late > MAX_CATCH_UP:
            start += late - MAX_CATCH_UP
        due = min(count, int((_now() - start) / interval) + 1)
        while i < due:
            send(i)
            i += 1
        if i < count:
            await asyncio.sleep(max(0.0, start + i * interval - _now()))


# ---------------------------------------------------------------------------
# client
# ---------------------------------------------------------------------------


@dataclass
class DirectionResult:
    """One direction of the line (``up``: client to server; ``down``: server to client)."""

    direction: str
    bandwidth: float | None = None  # bit/s available (IP level)
    lower_bound: bool = False  # True when no ramp step congested: the line may carry more
    train_estimate: float | None = None
    loss: float | None = None
    loss_ci: tuple[float, float] | None = None
    loss_packets: int = 0
    jitter: float | None = None  # s, mean |D| of consecutive transit differences (RFC 3550 §6.4.1)
    jitter_rfc3550: float | None = None  # s, the RFC's running estimate J at the end
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Recommendation:
    """Call settings for one direction's bandwidth."""

    direction: str
    bitrate: int  # bit/s for the whole call in that direction (70 % of the bandwidth)
    video: str  # "720p30", ..., "QCIF 176x144 15 fps" or "audio only"
    width: int
    height: int
    fps: int


@dataclass
class LinetestReport:
    """The outcome of a line test; ``errors`` says what could not be measured and why."""

    server: str
    rtt_min: float | None = None
    rtt_median: float | None = None
    rtt_p95: float | None = None
    pings_sent: int = 0
    pongs: int = 0
    up: DirectionResult = field(default_factory=lambda: DirectionResult("up"))
    down: DirectionResult = field(default_factory=lambda: DirectionResult("down"))
    recommendations: list[Recommendation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    complete: bool = False
    duration: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dataclasses.asdict(self)

    def text(self) -> str:
        """The human report."""
        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v * 1e3:.1f} ms"

        def kb(v: float | None) -> str:
            return "-" if v is None else f"{v / 1e3:.0f} kbit/s"

        def pct(d: DirectionResult) -> str:
            if d.loss is None:
                return "-"
            ci = f" (95% CI {100 * d.loss_ci[0]:.2f}-{100 * d.loss_ci[1]:.2f}%)" if d.loss_ci else ""
            return f"{100 * d.loss:.2f}% of {d.loss_packets}{ci}"

        lines = [f"line test with {self.server} ({'complete' if self.complete else 'PARTIAL'}, "
                 f"{self.duration:.1f} s)",
                 f"RTT: min {ms(self.rtt_min)}, median {ms(self.rtt_median)}, p95 {ms(self.rtt_p95)} "
                 f"({self.pongs}/{self.pings_sent} pings answered)"]
        for d, name in ((self.up, "upstream (this side -> far side)"), (self.down, "downstream (far side -> here)")):
            bw = kb(d.bandwidth) + (" or more" if d.lower_bound and d.bandwidth else "")
            lines.append(f"{name}: bandwidth {bw} (train {kb(d.train_estimate)}), loss {pct(d)}, "
                         f"jitter {ms(d.jitter)} (RFC 3550 J {ms(d.jitter_rfc3550)})")
        for r in self.recommendations:
            lines.append(f"recommended {r.direction}: {r.bitrate / 1e3:.0f} kbit/s, {r.video}")
        for e in self.errors:
            lines.append(f"not measured: {e}")
        return "\n".join(lines)


# Resolution and frame rate for a call bitrate (whole call, one direction), best first.
RECOMMENDATIONS: tuple[tuple[int, str, int, int, int], ...] = (
    (1_200_000, "720p30", 1280, 720, 30),
    (900_000, "720p15", 1280, 720, 15),
    (600_000, "480p30", 854, 480, 30),
    (450_000, "480p15", 854, 480, 15),
    (300_000, "360p15", 640, 360, 15),
    (128_000, "QCIF 176x144 15 fps", 176, 144, 15),
)
USABLE_SHARE = 0.7  # of the measured bandwidth a call may use


def recommend(direction: str, bandwidth: float | None, loss: float | None = None) -> Recommendation:
    """Bitrate (70 % of ``bandwidth``), resolution and frame rate for a call in ``direction``.

    Above 5 % loss the budget is halved (retransmissions and keyframes eat the rest).
    """
    if not bandwidth:
        return Recommendation(direction, 0, "not measured", 0, 0, 0)
    rate = bandwidth * USABLE_SHARE
    if loss is not None and loss > 0.05:
        rate /= 2
    bitrate = int(rate // 10_000 * 10_000)
    for floor, name, w, h, fps in RECOMMENDATIONS:
        if bitrate >= floor:
            return Recommendation(direction, bitrate, name, w, h, fps)
    return Recommendation(direction, bitrate, "audio only", 0, 0, 0)


class _ClientProtocol(asyncio.DatagramProtocol):
    def __init__(self, client: _Client) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.client.received(data, _now())

    def error_received(self, exc: Exception) -> None:
        self.client.socket_errors += 1
        _log.debug("linetest client socket error: %s", exc)


async def _open_client_socket(client: _Client, host: str, port: int) -> asyncio.DatagramTransport | StampedSocket:
    """A UDP socket connected to ``host``:``port`` for ``client``; OSError when it cannot be made.

    With kernel receive timestamps where the platform and the event loop allow
    (:class:`~vcore.transport.timestamps.StampedSocket`: on a busy machine, datagrams queued in the
    socket would otherwise be stamped late, which reads as jitter), else an asyncio datagram
    transport (arrival = the callback's time).
    """
    def error(exc: OSError) -> None:
        client.socket_errors += 1
        _log.debug("linetest client socket error: %s", exc)

    stamped = await open_stamped(lambda data, _addr, when: client.received(data, when), remote=(host, port),
                                 on_error=error, clock=_now)
    if stamped is not None:
        return stamped
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _ClientProtocol(client), remote_addr=(host, port))
    return transport


class _FarSideSilent(Exception):
    pass


class _Client:
    def __init__(self, key: bytes) -> None:
        self.srtp = SrtpSession(SUITE, key, replay_window=1024)
        self.ep = _Endpoint(self.srtp, random.getrandbits(32))
        self.transport: asyncio.DatagramTransport | StampedSocket | None = None
        self.pongs: dict[int, tuple[float, float, float]] = {}  # index -> (t1, server time, arrival)
        self.server_pings = 0
        self.data: dict[int, list[tuple[int, int, float, float]]] = {}
        self.reports: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.last_arrival = 0.0
        self.socket_errors = 0
        self.phase = "start"
        self.cookie = b""  # from the server's pongs: proves we receive at our address

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data)

    def received(self, data: bytes, now: float) -> None:
        opened = _open(self.srtp, data)
        if opened is None or opened[0] != self.ep.ssrc ^ 0x5A5A5A5A:
            return
        _, (kind, _f, test, index, aux, t1, t2), body = opened
        self.last_arrival = now
        if kind == MSG_PONG:
            self.pongs.setdefault(index, (t1, t2, now))
            self.server_pings = max(self.server_pings, aux)
            if len(body) >= COOKIE_LEN:
                self.cookie = body[:COOKIE_LEN]
        elif kind == MSG_DATA:
            self.data.setdefault(test, []).append((index, len(data), t1, now))
        elif kind == MSG_REPORT:
            fut = self.reports.get(test)
            if fut is not None and not fut.done():
                try:
                    fut.set_result(json.loads(body.rstrip(b"\0")))
                except ValueError:
                    pass

    async def report(self, test: int, sent: int, timeout: float, tries: int = 5) -> dict[str, Any]:
        """The server's analysis of what it received of ``test``."""
        for _ in range(tries):
            fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self.reports[test] = fut
            self.send(self.ep.packet(MSG_REPORT_REQ, test, 0, sent, _now(), 0.0))
            try:
                return await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                continue
            finally:
                self.reports.pop(test, None)
        raise _FarSideSilent(f"no report from the far side after {tries} requests")

    async def downstream(self, test: int, count: int, rate: float, expect: float, rtt: float) -> dict[str, Any]:
        """Ask the server for ``count`` probes at ``rate`` (0: back to back); wait for them."""
        got = self.data.setdefault(test, [])
        start = _now()
        wait_first = max(0.3, 3 * rtt)
        tries = 0
        while not got:
            if tries == 3:
                raise _FarSideSilent("the far side sent no probe after 3 requests")
            self.send(self.ep.packet(MSG_START, test, count, PROBE_SIZE, rate, 0.0, self.cookie))
            tries += 1
            until = _now() + wait_first
            while not got and _now() < until:
                await asyncio.sleep(0.01)
        end = start + expect + rtt + 0.3
        hard = start + 2 * expect + 2 * wait_first + 2.0
        while _now() < hard and len(got) < count:
            if _now() > end and _now() - self.last_arrival > 0.25:
                break
            await asyncio.sleep(0.01)
        res = analyze_arrivals(got)
        res["sent"] = count
        return res

    async def upstream(self, test: int, count: int, rate: float, rtt: float) -> dict[str, Any]:
        """Send ``count`` probes at ``rate`` (0: back to back); the server's report of them."""
        bits = (PROBE_SIZE + SRTP_TAG + IP_UDP_OVERHEAD) * 8
        await _paced(count, bits, rate,
                     lambda i: self.send(self.ep.packet(MSG_DATA, test, i, count, _now(), 0.0, size=PROBE_SIZE)))
        await asyncio.sleep(rtt / 2 + 0.25)
        res = await self.report(test, count, max(0.3, 3 * rtt))
        res["sent"] = count
        return res


def _jitter(transits: list[float]) -> tuple[float | None, float | None]:
    """(mean |D|, RFC 3550 running J) of consecutive transit times."""
    if len(transits) < 2:
        return None, None
    ds = [abs(b - a) for a, b in zip(transits, transits[1:])]
    j = 0.0
    for d in ds:
        j += (d - j) / 16
    return sum(ds) / len(ds), j


async def run_linetest(
    host: str,
    port: int = DEFAULT_PORT,
    key: bytes | None = None,
    *,
    pings: int = 200,
    ping_interval: float = 0.01,
    step: float = 1.0,
    timeout: float = 60.0,
    max_rate: float = 100e6,
    progress: Callable[[str], None] = lambda s: None,
) -> LinetestReport:
    """Measure the line to a :class:`LinetestServer` at ``host``:``port``; never raises on a bad line.

    ``timeout`` bounds the whole test: what was not measured by then is listed in
    ``errors`` and the report is marked partial. ``max_rate`` (bit/s) caps the ramp: a line
    faster than that is reported as "at least ``max_rate``".
    """
    key = key_from_passphrase(DEFAULT_PASSPHRASE) if key is None else key
    rep = LinetestReport(f"{host}:{port}")
    t_start = _now()
    client = _Client(key)
    try:
        transport = await _open_client_socket(client, host, port)
    except OSError as exc:
        rep.errors.append(f"cannot reach {host}:{port}: {exc}")
        return rep
    client.transport = transport
    try:
        await asyncio.wait_for(_measure(client, rep, pings, ping_interval, step, max_rate, progress), timeout)
        rep.complete = not rep.errors
    except asyncio.TimeoutError:
        rep.errors.append(f"{client.phase}: the test did not finish within {timeout:.0f} s")
    except _FarSideSilent as exc:
        rep.errors.append(f"the line dropped or the far side stopped answering during {client.phase}: {exc}")
    finally:
        client.send(client.ep.packet(MSG_BYE, 0, 0, 0, _now(), 0.0))
        transport.close()
        rep.duration = _now() - t_start
        for d in (rep.up, rep.down):
            rep.recommendations.append(recommend(d.direction, d.bandwidth, d.loss))
    return rep


async def _measure(client: _Client, rep: LinetestReport, pings: int, interval: float, step: float,
                   max_rate: float, progress: Callable[[str], None]) -> None:
    # 1. pings
    progress(f"ping train: {pings} pings {interval * 1e3:.0f} ms apart")
    client.phase = "ping train"
    for i in range(pings):
        client.send(client.ep.packet(MSG_PING, TEST_PINGS, i, 0, _now(), 0.0))
        await asyncio.sleep(interval)
    rep.pings_sent = pings
    until = _now() + 1.0
    while len(client.pongs) < pings and _now() < until:
        await asyncio.sleep(0.01)
    rep.pongs = len(client.pongs)
    if not client.pongs:
        why = "the far side did not answer"
        if client.socket_errors:
            why += f" ({client.socket_errors} ICMP errors: nothing listens there?)"
        rep.errors.append(f"{why}: no reply to {pings} pings (wrong address, port, key, or a firewall)")
        return
    rtts = sorted(a - t1 for t1, _t2, a in client.pongs.values())
    rep.rtt_min, rep.rtt_median = rtts[0], statistics.median(rtts)
    rep.rtt_p95 = rtts[min(len(rtts) - 1, int(0.95 * len(rtts)))]
    ordered = [client.pongs[i] for i in sorted(client.pongs)]
    rep.up.jitter, rep.up.jitter_rfc3550 = _jitter([t2 - t1 for t1, t2, _ in ordered])
    rep.down.jitter, rep.down.jitter_rfc3550 = _jitter([a - t2 for _, t2, a in ordered])
    rtt = rep.rtt_median
    progress(f"  RTT median {rtt * 1e3:.1f} ms, {len(client.pongs)}/{pings} answered")
    client.phase = "ping report"
    ping_report = await client.report(TEST_PINGS, pings, max(0.3, 3 * rtt))
    server_got = int(ping_report["received"])
    # loss counters: (lost, total) per direction, from traffic below the line's capacity
    up_lost, up_total = pings - server_got, pings
    down_lost, down_total = max(0, server_got - len(client.pongs)), server_got

    # 2. trains
    size_bits = (PROBE_SIZE + SRTP_TAG + IP_UDP_OVERHEAD) * 8
    progress(f"packet trains: {TRAIN_PACKETS} probes of {PROBE_SIZE} bytes each way")
    client.phase = "upstream packet train"
    up_train = await client.upstream(TEST_TRAIN_UP, TRAIN_PACKETS, 0.0, rtt)
    rep.up.train_estimate = up_train["rate"]
    client.phase = "downstream packet train"
    down_train = await client.downstream(TEST_TRAIN_DOWN, TRAIN_PACKETS, 0.0, 1.0, rtt)
    rep.down.train_estimate = down_train["rate"]
    progress(f"  upstream {(up_train['rate'] or 0) / 1e3:.0f} kbit/s, downstream {(down_train['rate'] or 0) / 1e3:.0f} "
             "kbit/s")

    # 3. paced ramps
    for d, est, base_test in ((rep.up, up_train["rate"], TEST_RAMP_UP), (rep.down, down_train["rate"], TEST_RAMP_DOWN)):
        if not est:
            rep.errors.append(f"{d.direction}stream ramp: the packet train gave no estimate")
            continue
        lost = total = 0
        best = 0.0
        congested = False
        for k, factor in enumerate(RAMP):
            if k and est * RAMP[k - 1] >= max_rate:
                break
            rate = min(est * factor, max_rate)
            count = max(8, int(rate * step / size_bits))
            progress(f"{d.direction}stream ramp: {rate / 1e3:.0f} kbit/s for {step:.1f} s")
            client.phase = f"{d.direction}stream ramp"
            if d.direction == "up":
                res = await client.upstream(base_test + k, count, rate, rtt)
            else:
                res = await client.downstream(base_test + k, count, rate, count * size_bits / rate, rtt)
            got_rate = res["rate"] or 0.0
            # what the sender managed (a busy one falls short): the line is judged on what it was given
            sent_rate = min(rate, res.get("send_rate") or rate)
            step_loss = 1 - res["received"] / count
            base_loss = (up_lost / up_total) if d.direction == "up" else (down_lost / max(1, down_total))
            lost_here = count - res["received"]
            hot = (got_rate < 0.9 * sent_rate or (res["owd_growth"] or 0.0) > 0.010
                   or (lost_here >= 3 and step_loss > base_loss + 0.05))
            d.steps.append({"rate": rate, "sent": count, "sent_rate": res.get("send_rate"),
                            "received": res["received"], "received_rate": res["rate"],
                            "owd_growth": res["owd_growth"], "congested": hot})
            progress(f"  received {got_rate / 1e3:.0f} kbit/s, delay growth {(res['owd_growth'] or 0) * 1e3:.1f} ms, "
                     f"loss {100 * step_loss:.1f}%{' (congested)' if hot else ''}")
            best = max(best, got_rate)
            if hot:
                congested = True
                break
            lost += count - res["received"]
            total += count
        d.bandwidth = best or None
        d.lower_bound = not congested
        if d.direction == "up":
            up_lost, up_total = up_lost + lost, up_total + total
        else:
            down_lost, down_total = down_lost + lost, down_total + total
    for d, lost, total in ((rep.up, up_lost, up_total), (rep.down, down_lost, down_total)):
        if total:
            d.loss = max(0, lost) / total
            d.loss_ci = _wilson(max(0, lost), total)
            d.loss_packets = total


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


def _split_address(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` or ``[V6]:PORT`` -> (host, port); ValueError when malformed or the port is out of range."""
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else DEFAULT_PORT
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = int(p)
    else:
        host, port = text, DEFAULT_PORT
    if not host or not 0 < port < 65536:
        raise ValueError(text)
    return host, port


def main(argv: list[str] | None = None) -> int:
    """``vcore linetest``; exit status 0: complete, 3: partial or no answer, 2: bad input (one ``error:`` line)."""
    from .cli import fail, integer, nonempty, number, output_file, port

    p = argparse.ArgumentParser(prog="vcore linetest", description=__doc__.split("\n")[0])
    p.add_argument("address", nargs="?", help="the far side's HOST[:PORT] (it runs vcore linetest --serve)")
    p.add_argument("--serve", action="store_true", help="be the far side: answer line tests")
    p.add_argument("--host", default="0.0.0.0", type=nonempty, help="--serve: address to listen on (default all)")
    p.add_argument("--port", type=port(any_port=True), default=DEFAULT_PORT,
                   help=f"UDP port (default {DEFAULT_PORT}; --serve 0: any free port)")
    p.add_argument("--serve-for", type=number(0, what="seconds"), default=0.0, metavar="S",
                   help="--serve: stop after S seconds")
    p.add_argument("--key", type=nonempty,
                   help="pre-shared SRTP key (base64 of 30 bytes); 'generate' on the server prints one")
    p.add_argument("--passphrase", default=DEFAULT_PASSPHRASE, type=nonempty,
                   help="derive the key from this instead of --key")
    p.add_argument("--quick", action="store_true", help="shorter test (100 pings, 0.5 s ramp steps)")
    p.add_argument("--pings", type=integer(1, 100_000, "pings"), help="pings in the ping train (default 200)")
    p.add_argument("--step", type=number(0, 60, "step", above=True), help="seconds per ramp step (default 1.0)")
    p.add_argument("--max-rate", type=number(0, what="max rate", above=True), default=100e6,
                   help="bit/s the ramp never exceeds (default 100e6)")
    p.add_argument("--timeout", type=number(0, what="timeout", above=True), default=60.0,
                   help="give up after this many seconds (default 60)")
    p.add_argument("--json", metavar="OUT", type=output_file(), help="save the report as JSON")
    args = p.parse_args(argv)
    try:
        if args.key == "generate":
            if not args.serve:
                p.error("--key generate is for the serving side")
            key = os.urandom(KEY_LEN)
            print(f"key: {base64.b64encode(key).decode()}  (give the client --key with this value)")
        elif args.key:
            key = parse_key(args.key)
        else:
            key = key_from_passphrase(args.passphrase)
    except LinetestError as exc:
        return fail(exc)
    if args.serve:
        if not args.key and args.passphrase == DEFAULT_PASSPHRASE:
            return fail("--serve needs a key of its own: --key generate (prints one to give the client), "
                        "--key KEY, or --passphrase TEXT (the default passphrase is public)")
        return _interruptible(_serve(key, args.host, args.port, args.serve_for))
    if not args.address:
        p.error("give the far side's address, or --serve")
    try:
        host, port_ = _split_address(args.address)
    except ValueError:
        return fail(f"bad address {args.address!r}: expected HOST[:PORT] or [IPv6]:PORT, port 1 to 65535")
    if "--port" in (argv if argv is not None else sys.argv):
        port_ = args.port
    if port_ == 0:
        return fail("--port 0 (any port) is for --serve; give the far side's port")
    pings = args.pings or (100 if args.quick else 200)
    step = args.step or (0.5 if args.quick else 1.0)

    def progress(text: str) -> None:
        print(text, flush=True)

    rep = asyncio.run(run_linetest(host, port_, key, pings=pings, step=step, timeout=args.timeout,
                                   max_rate=args.max_rate, progress=progress))
    print()
    print(rep.text())
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(rep.as_dict(), fh, indent=2)
        except OSError as exc:
            return fail(f"cannot save the report: {exc}", 1)
        print(f"report saved to {args.json}")
    return 0 if rep.complete else 3


def _interruptible(coro: Any) -> int:
    try:
        return int(asyncio.run(coro))
    except KeyboardInterrupt:
        return 0


async def _serve(key: bytes, host: str, port: int, serve_for: float) -> int:
    server = LinetestServer(key)
    try:
        addr = await server.start(host, port)
    except OSError as exc:
        from .cli import fail

        return fail(f"cannot listen on UDP {host}:{port}: {exc.strerror or exc} (another linetest server "
                    "there? stop it, or give --port)", 1)
    print(f"serving line tests on UDP {addr[0]}:{addr[1]} (Ctrl-C to stop)", flush=True)
    try:
        if serve_for > 0:
            await asyncio.sleep(serve_for)
        else:
            await asyncio.Event().wait()
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await server.close()
    return 0
