"""A discrete-event simulation of an H.264 RTP call leg, to measure jitter buffers.

One sender paces a trace's access units at the frame rate through a
:class:`~vcore.testing.netem.NetworkEmulator`; a receiver (a jitter buffer behind
an adapter) gets each packet at its emulated arrival time, is polled every
``tick`` seconds, and may send NACKs and keyframe requests back over a reverse
path of fixed delay. The sender answers NACKs from a
:class:`~vcore.nack.RetransmissionHistory` (RFC 4588 RTX) through the same
emulated link and, when ``keyframe_on_request`` is set, sends its next frame as
an IDR (taken from an all-intra encoding of the same source) after a keyframe
request reached it. Everything is seeded and deterministic.

Quality metrics (:class:`SimResult`): a frame is *decodable* when its coded
slices were delivered whole, the parameter sets it uses reached the decoder (in
it or in an earlier delivered unit) and every frame it references was decodable
(IDR + P chain: each P frame references the previous frame). A *freeze* is a gap between
consecutive decodable frames on screen longer than max(3 frame intervals, one
frame interval + 150 ms) (WebRTC's freeze definition), counted from the time
the first frame would show (its send time + the path's fixed delay + the
receiver's mean added delay) to the same point after the last frame; *added
delay* is release time minus (send time + the path's fixed one-way delay).

Thread-safety: none; run one simulation per thread.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .._fastpath_py import split_annexb
from ..nack import RetransmissionHistory
from ..payload.h264 import H264Packetizer
from ..rtp.packet import RtpPacket
from .netem import NetworkEmulator
from .trace import H264Trace

__all__ = ["Receiver", "VcoreReceiver", "AiortcReceiver", "SimResult", "simulate"]

RTX_PAYLOAD_TYPE = 97
RTX_SSRC = 0x0BADCAFE


class Receiver(Protocol):
    """What the simulation needs from a jitter buffer under test."""

    def push(self, data: bytes, arrival: float) -> None: ...

    def pop(self, now: float) -> list[tuple[int, bytes]]: ...

    def nacks(self, now: float) -> list[int]: ...

    def keyframe_request(self, now: float) -> bool: ...


class VcoreReceiver:
    """Adapter for :class:`vcore.VideoJitterBuffer` (or a kernel class with the same methods)."""

    def __init__(self, factory: Callable[..., object], packet_class: type, nack: bool, rtt: float) -> None:
        from ..nack import unwrap_rtx

        self.jb = factory(90000, 0.0, 0.5, nack=nack, rtt=rtt)
        self._parse = packet_class.parse  # type: ignore[attr-defined]
        self._unwrap = unwrap_rtx
        self._ssrc = -1

    def push(self, data: bytes, arrival: float) -> None:
        pkt = self._parse(data)
        jb = self.jb
        if pkt.ssrc == RTX_SSRC:
            orig = self._unwrap(pkt, self._ssrc, 96)
            jb.push(self._parse(orig.serialize()), arrival, True)  # type: ignore[attr-defined]
        else:
            self._ssrc = pkt.ssrc
            jb.push(pkt, arrival)  # type: ignore[attr-defined]

    def pop(self, now: float) -> list[tuple[int, bytes]]:
        return [(u.timestamp, u.data) for u in self.jb.pop(now)]  # type: ignore[attr-defined]

    def nacks(self, now: float) -> list[int]:
        return list(self.jb.nacks(now))  # type: ignore[attr-defined]

    def keyframe_request(self, now: float) -> bool:
        return self.jb.take_keyframe_request() is not None  # type: ignore[attr-defined]


class AiortcReceiver:
    """Adapter for aiortc's ``JitterBuffer(capacity=128, is_video=True)`` (as its receiver uses it)."""

    def __init__(self, capacity: int = 128) -> None:
        from aiortc.codecs.h264 import h264_depayload
        from aiortc.jitterbuffer import JitterBuffer
        from aiortc.rtp import RtpPacket as AiortcPacket

        self.jb = JitterBuffer(capacity=capacity, is_video=True)
        self._parse = AiortcPacket.parse
        self._depayload = h264_depayload
        self._ready: list[tuple[int, bytes]] = []
        self._pli = False

    def push(self, data: bytes, arrival: float) -> None:
        pkt = self._parse(data)
        if pkt.ssrc == RTX_SSRC:
            return  # aiortc's jitter buffer is not fed RTX here (NACK is off for it)
        setattr(pkt, "_data", self._depayload(pkt.payload))  # what aiortc's receiver does
        pli, frame = self.jb.add(pkt)
        if pli:
            self._pli = True
        if frame is not None:
            self._ready.append((frame.timestamp, frame.data))

    def pop(self, now: float) -> list[tuple[int, bytes]]:
        out, self._ready = self._ready, []
        return out

    def nacks(self, now: float) -> list[int]:
        return []

    def keyframe_request(self, now: float) -> bool:
        pli, self._pli = self._pli, False
        return pli


@dataclass
class SimResult:
    """Quality of one simulated run."""

    frames: int
    delivered: int
    decodable: int
    total_freeze: float
    longest_freeze: float
    mean_added_delay: float
    packets_sent: int
    retransmissions: int
    keyframe_requests: int
    units: list[bytes] = field(default_factory=list, repr=False)  # delivered decodable units, in order
    delays: list[float] = field(default_factory=list, repr=False)  # added delay of each decodable frame (s)
    freezes: list[float] = field(default_factory=list, repr=False)  # each freeze's length (s), in order

    @property
    def decodable_ratio(self) -> float:
        return self.decodable / self.frames if self.frames else 0.0

    def delay_percentile(self, p: float) -> float:
        """The ``p`` quantile (0..1, nearest rank) of the added delay of decodable frames; NaN without any."""
        if not self.delays:
            return float("nan")
        ranked = sorted(self.delays)
        return ranked[min(len(ranked) - 1, max(0, int(p * len(ranked) + 0.5) - 1))]


def _nal_key(data: bytes) -> tuple[tuple[bytes, ...], frozenset[bytes]]:
    """(the coded slices, the parameter sets) of an access unit; SEI and AUD do not matter."""
    try:
        nals = split_annexb(data)
    except ValueError:
        return ((), frozenset())
    slices = tuple(sorted(n for n in nals if 1 <= n[0] & 0x1F <= 5))
    params = frozenset(n for n in nals if n[0] & 0x1F in (7, 8))
    return slices, params


def simulate(
    trace: H264Trace,
    receiver: Receiver,
    emulator: NetworkEmulator,
    *,
    reverse_delay: float = 0.0,
    intra: H264Trace | None = None,
    keyframe_on_request: bool = False,
    tick: float = 0.005,
    packet_spacing: float = 50e-6,
    mtu: int = 1200,
    repeat_copies: int = 2,
) -> SimResult:
    """Run one call leg; see the module docstring. ``intra`` is needed for ``keyframe_on_request``."""
    fps = trace.fps
    base_delay = emulator.base_delay
    packetizer = H264Packetizer(payload_type=trace.payload_type, ssrc=trace.ssrc, mtu=mtu, sequence_number=65000)
    history = RetransmissionHistory(
        4096, rtx_payload_type=RTX_PAYLOAD_TYPE, rtx_ssrc=RTX_SSRC, max_age=2.0, repeat_copies=repeat_copies
    )
    events: list[tuple[float, int, int, object]] = []
    counter = 0

    def schedule(t: float, kind: int, data: object) -> None:
        nonlocal counter
        counter += 1
        heapq.heappush(events, (t, counter, kind, data))

    SEND_FRAME, SEND_PKT, ARRIVE, TICK, AT_SENDER_NACK, AT_SENDER_KF = range(6)
    for k in range(len(trace.frames)):
        schedule(k / fps, SEND_FRAME, k)
    end = len(trace.frames) / fps + 1.0
    schedule(0.0, TICK, None)
    sent: list[tuple[int, bool, tuple[tuple[bytes, ...], frozenset[bytes]], float]] = []  # ts, key, NALs, time
    kf_pending = False
    packets_sent = 0
    retrans = 0
    kf_requests = 0
    released: dict[int, tuple[float, bytes]] = {}

    def collect(now: float) -> None:
        for ts, data in receiver.pop(now):
            if ts not in released:
                released[ts] = (now, data)

    while events:
        now, _, kind, data = heapq.heappop(events)
        if kind == SEND_FRAME:
            assert isinstance(data, int)
            frame = trace.frames[data]
            au, key = frame.data, frame.keyframe
            if kf_pending and keyframe_on_request and intra is not None and not key:
                au, key = intra.frames[data].data, True
            if key:
                kf_pending = False
            pkts = packetizer.packetize(au, frame.timestamp)
            sent.append((frame.timestamp, key, _nal_key(au), now))
            for i, pk in enumerate(pkts):
                schedule(now + i * packet_spacing, SEND_PKT, pk)
        elif kind == SEND_PKT:
            assert isinstance(data, RtpPacket)
            if data.ssrc != RTX_SSRC:
                history.record(data, now)
            packets_sent += 1
            for when, raw in emulator.send(now, data.serialize()):
                schedule(when, ARRIVE, raw)
        elif kind == ARRIVE:
            receiver.push(data, now)  # type: ignore[arg-type]
            collect(now)
        elif kind == TICK:
            collect(now)
            seqs = receiver.nacks(now)
            if seqs:
                schedule(now + reverse_delay, AT_SENDER_NACK, seqs)
            if receiver.keyframe_request(now):
                kf_requests += 1
                schedule(now + reverse_delay, AT_SENDER_KF, None)
            if now + tick <= end:
                schedule(now + tick, TICK, None)
        elif kind == AT_SENDER_NACK:
            for pk in history.resend(data, now):  # type: ignore[arg-type]
                retrans += 1
                schedule(now, SEND_PKT, pk)
        elif kind == AT_SENDER_KF:
            kf_pending = True

    # evaluate
    decodable = 0
    delivered = 0
    chain = False
    shown: list[float] = []
    delays: list[float] = []
    units: list[bytes] = []
    known: set[bytes] = set()  # parameter sets the decoder has seen
    for ts, key, (slices, params), t_send in sent:
        got = released.get(ts)
        ok = False
        if got is not None:
            delivered += 1
            got_slices, got_params = _nal_key(got[1])
            known |= got_params
            ok = got_slices == slices and params <= known  # whole slices, parameter sets known
        chain = ok and (key or chain)
        if chain:
            assert got is not None
            decodable += 1
            shown.append(got[0])
            delays.append(got[0] - (t_send + base_delay))
            units.append(got[1])
    freeze_gap = max(3.0 / fps, 1.0 / fps + 0.150)
    total_freeze = 0.0
    longest = 0.0
    freezes: list[float] = []
    lag = base_delay + (sum(delays) / len(delays) if delays else 0.0)  # steady latency is not a freeze
    marks = [lag] + shown + [sent[-1][3] + lag + 1.0 / fps] if sent else []
    for a, b in zip(marks, marks[1:]):
        gap = b - a
        if gap > freeze_gap:
            freezes.append(gap)
            total_freeze += gap
            longest = max(longest, gap)
    return SimResult(
        frames=len(sent),
        delivered=delivered,
        decodable=decodable,
        total_freeze=total_freeze,
        longest_freeze=longest,
        mean_added_delay=sum(delays) / len(delays) if delays else float("nan"),
        packets_sent=packets_sent,
        retransmissions=retrans,
        keyframe_requests=kf_requests,
        units=units,
        delays=delays,
        freezes=freezes,
    )
