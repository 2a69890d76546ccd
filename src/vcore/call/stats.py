"""What a call's media measures: statistics snapshots (:meth:`Call.stats`) and degraded streams.

:class:`StatsMeter` turns the counters of a call's senders and receivers into
:class:`~vcore.call.events.StreamStats` (bitrate and frame rate since the
previous snapshot) and a :class:`~vcore.call.events.CallStats`;
:class:`DegradedWatch` says when a received stream gets worse (loss over the
last look, or a stall) or recovers, as :class:`~vcore.call.events.Degraded`
events. Both take the time as an argument and read the media object only;
:class:`vcore.call.Call` owns them and emits what they find.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .events import CallStats, Degraded, StreamStats
from .media import _lip_sync

if TYPE_CHECKING:
    from ..h323.fast_connect import MediaChannel
    from .media import _Media

__all__ = ["DEGRADED_LOSS", "STALL", "DegradedWatch", "StatsMeter"]

DEGRADED_LOSS = 0.05  # fraction lost over the last second that makes a stream "degraded"
STALL = 2.0  # seconds without media that make a stream "degraded" (long before the media timeout)


class StatsMeter:
    """Per-stream snapshots of one call's media; rates are measured between two snapshots."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[float, int, int]] = {}

    def call_stats(self, peer: str | None, media: _Media | None, security: dict[str, Any],
                   connected_at: float | None, now: float) -> CallStats:
        """Per stream: codec, bitrate, fps, loss, jitter, RTT, playout delay, cipher suite (a snapshot)."""
        streams: list[StreamStats] = []
        m = media
        if m is not None:
            for ch in m.channels:
                s = self.stream_stats(m, ch, now, connected_at)
                if s is not None:
                    streams.append(s)
        warnings = []
        if security["signalling"] == "plaintext":
            warnings.append("plaintext signalling: the SRTP keys travel unprotected")
        if any(s.cipher_suite == "plaintext" for s in streams):
            warnings.append("plaintext media: some streams are not encrypted")
        lip = None
        if m is not None and m.video_rx is not None and m.audio_rx is not None:
            lip = _lip_sync(m.audio_rx, m.video_rx)
        hold = m.audio_jitter.sync_delay if m is not None and m.audio_jitter is not None else 0.0
        encrypted = security["signalling"] == "tls" and bool(streams) and all(s.cipher_suite != "plaintext"
                                                                              for s in streams)
        return CallStats(peer, (now - connected_at) if connected_at else 0.0, security["signalling"],
                         encrypted, tuple(streams), lip, tuple(warnings), hold)

    def stream_stats(self, m: _Media, ch: MediaChannel, now: float, connected_at: float | None) -> StreamStats | None:
        """The snapshot of one channel (None: its sender or receiver is not there)."""
        kind, suite = ch.format.kind, ch.suite or "plaintext"
        key = (kind, ch.direction)
        if ch.direction == "send":
            tx: Any = m.video_tx if kind == "video" else m.audio_tx
            if tx is None:
                return None
            frames = tx.frames_encoded if kind == "video" else tx.frames_captured
            bitrate, fps = self._rates(key, now, tx.bytes_sent, frames, connected_at)
            cc = getattr(tx, "congestion", None)
            enc = tx.encoder if kind == "video" else None
            dropper = getattr(tx, "dropper", None)
            return StreamStats(kind, "send", ch.format.name, suite, tx.packets_sent, tx.bytes_sent, bitrate,
                               fps if kind == "video" else None, loss=tx.fraction_lost, rtt=tx.rtt,
                               retransmitted=tx.retransmitted,
                               keyframe_requests=getattr(tx, "keyframe_requests", 0), frames=frames,
                               target_bitrate=cc.target if cc is not None else None,
                               queue_delay=cc.queue_delay if cc is not None else None,
                               size=f"{enc.width}x{enc.height}@{enc.fps:g}" if enc is not None else None,
                               frames_dropped=(dropper.dropped if dropper is not None else 0)
                               + (enc.frames_dropped if enc is not None else 0)
                               + getattr(tx, "frames_held", 0))
        rx: Any = m.video_rx if kind == "video" else m.audio_rx
        if rx is None:
            return None
        bitrate, fps = self._rates(key, now, rx.bytes, rx.frames, connected_at)
        st = rx.stats
        loss = jitter = None
        if st is not None:
            loss = max(0, st.lost) / st.expected if st.expected > 0 else None  # None: nothing expected yet
            jitter = st.jitter
        jb = m.jitter if kind == "video" else m.audio_jitter
        delay = jb.delay if jb is not None else None
        return StreamStats(kind, "receive", ch.format.name, suite, rx.packets, rx.bytes, bitrate,
                           fps if kind == "video" else None, loss=loss, jitter=jitter, playout_delay=delay,
                           latency_p50=rx.latency.percentile(50), latency_p95=rx.latency.percentile(95),
                           dropped=rx.dropped, nacks=getattr(rx, "nacks_sent", 0),
                           keyframe_requests=getattr(rx, "plis_sent", 0), frames=rx.frames,
                           concealed=getattr(rx, "concealed", 0))

    def _rates(self, key: tuple[str, str], now: float, nbytes: int, frames: int,
               connected_at: float | None) -> tuple[float, float]:
        t0, b0, f0 = self._last.get(key, (connected_at or now, 0, 0))
        self._last[key] = (now, nbytes, frames)
        dt = now - t0
        if dt <= 0:
            return 0.0, 0.0
        return (nbytes - b0) * 8 / dt, (frames - f0) / dt


class DegradedWatch:
    """Which received streams of a call are degraded: more than :data:`DEGRADED_LOSS` lost since the last
    look, or no packet for :data:`STALL` seconds."""

    def __init__(self) -> None:
        self._degraded: dict[str, bool] = {}
        self._loss_prev: dict[str, tuple[int, int]] = {}
        self._stream_seen: dict[str, tuple[int, float]] = {}

    def check(self, m: _Media, now: float) -> list[Degraded]:
        """The changes since the last look (a stream degraded or recovered), in stream order."""
        changes: list[Degraded] = []
        for stream, rx in (("video", m.video_rx), ("audio", m.audio_rx)):
            if rx is None or stream not in m.started or rx.stats is None:
                continue
            count, since = self._stream_seen.get(stream, (-1, now))
            if rx.packets != count:
                count, since = rx.packets, now
            self._stream_seen[stream] = (count, since)
            expected, received = rx.stats.expected, rx.stats.received
            e0, r0 = self._loss_prev.get(stream, (expected, received))
            self._loss_prev[stream] = (expected, received)
            loss = (1 - (received - r0) / (expected - e0)) if expected - e0 > 0 else 0.0
            stalled = now - since > STALL
            bad = loss > DEGRADED_LOSS or stalled
            if bad != self._degraded.get(stream, False):
                self._degraded[stream] = bad
                detail = "no media" if stalled else f"{loss:.0%} lost" if bad else "recovered"
                changes.append(Degraded(stream=stream, detail=detail, degraded=bad))
        return changes
