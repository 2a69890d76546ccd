"""Machine facts, the per-call CPU share and the verdict of ``vcore bench``.

The verdict rule (see ``docs/bench.md``):

- CPU per second of call (in cores) = encode + decode + packet path (send and receive)
  CPU seconds per second of a call at a profile's frame rate and bitrate;
- CPU share of a call = that / the machine's cores;
- a profile is sustainable when its encoder keeps real time and its share leaves at least
  30 % of the machine free (share <= 0.7);
- simultaneous calls an agent station can hold = floor(0.7 * cores / CPU per second of call)
  = floor(0.7 / share).

Pure functions on plain data: thread-safe.
"""

from __future__ import annotations

import math
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from .workloads import CALL_PROFILES, EncodeResult, call_profile

__all__ = [
    "HEADROOM",
    "SCHEMA",
    "AUDIO_PACKETS_PER_SECOND",
    "CallCost",
    "Verdict",
    "usable_cores",
    "machine_facts",
    "packets_per_second",
    "call_cost",
    "verdict",
]

SCHEMA = "vcore-bench/1"
HEADROOM = 0.30  # the machine keeps at least this share of its CPU free during calls
AUDIO_PACKETS_PER_SECOND = 50  # 20 ms frames each way
PAYLOAD_PER_PACKET = 1100  # bytes of H.264 per RTP packet at an MTU of 1200 (measured: 1,050-1,180)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name") or line.startswith("Model"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def usable_cores() -> int:
    """CPUs this process may run on (affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def machine_facts(encoders: list[str] | None = None) -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python, vcore, fast path, PyAV and FFmpeg versions."""
    from .. import __version__, fastpath_enabled

    facts: dict[str, Any] = {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cores": usable_cores(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "vcore": __version__,
        "fast_path": "compiled" if fastpath_enabled() else "pure-Python",
    }
    try:
        import av

        facts["pyav"] = av.__version__
        facts["ffmpeg"] = {k: ".".join(map(str, v)) for k, v in sorted(av.library_versions.items())}
    except Exception as exc:  # PyAV missing or broken: say so, measure the rest
        facts["pyav"] = None
        facts["pyav_error"] = str(exc)
    try:
        import pylibsrtp

        facts["pylibsrtp"] = getattr(pylibsrtp, "__version__", "installed")
    except ImportError:
        facts["pylibsrtp"] = None
    if encoders is not None:
        facts["encoders"] = list(encoders)
    return facts


def packets_per_second(bitrate: int) -> float:
    """Video RTP packets per second at ``bitrate`` (about 1,100 bytes of payload each)."""
    return bitrate / 8 / PAYLOAD_PER_PACKET


@dataclass
class CallCost:
    """CPU cost of one call at one profile with one encoder."""

    profile: str
    codec: str
    preset: str
    realtime: bool
    encode: float  # CPU seconds per second of call (cores)
    decode: float
    packets: float  # send + receive packet path, video and audio
    cores: int
    latency_mean: float = 0.0
    error: str | None = None

    @property
    def cpu_per_second(self) -> float:
        """All of the call's CPU, in cores."""
        return self.encode + self.decode + self.packets

    @property
    def share(self) -> float:
        """Fraction of the whole machine one call takes."""
        return self.cpu_per_second / max(1, self.cores)

    @property
    def sustainable(self) -> bool:
        """Real time, and at least ``HEADROOM`` of the machine left free."""
        return self.error is None and self.realtime and self.share <= 1.0 - HEADROOM

    @property
    def agent_calls(self) -> int:
        """Simultaneous calls an agent station holds at this profile: floor(0.7 * cores / CPU per call)."""
        if self.error is not None or not self.realtime or self.cpu_per_second <= 0:
            return 0
        return math.floor((1.0 - HEADROOM) * self.cores / self.cpu_per_second + 1e-9)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(cpu_per_second=self.cpu_per_second, share=self.share, sustainable=self.sustainable,
                 agent_calls=self.agent_calls)
        return d


def call_cost(enc: EncodeResult, decode_cpu_per_frame: float | None, send_cpu_per_packet: float,
              receive_cpu_per_packet: float, cores: int) -> CallCost:
    """The whole CPU of a call at ``enc``'s profile: its encoder, the decoder for the far side's
    video at the same profile, and the packet paths for video and audio both ways."""
    prof = call_profile(enc.profile)
    pps = packets_per_second(prof.bitrate) + AUDIO_PACKETS_PER_SECOND
    dec = (decode_cpu_per_frame or 0.0) * prof.fps
    error = enc.error or (None if decode_cpu_per_frame is not None else "decode not measured")
    return CallCost(
        profile=prof.name,
        codec=enc.codec,
        preset=enc.preset,
        realtime=enc.realtime,
        encode=enc.cpu_per_second,
        decode=dec,
        packets=pps * (send_cpu_per_packet + receive_cpu_per_packet),
        cores=cores,
        latency_mean=enc.latency_mean,
        error=error,
    )


@dataclass
class Verdict:
    """The best sustainable profile (or none) and the agent station's capacity."""

    profile: str | None
    codec: str | None
    preset: str | None
    share: float | None
    headroom: float | None
    agent_calls: int
    agent_calls_profile: str | None
    text: str
    reasons: list[str] = field(default_factory=list)


_ORDER = {p.name: i for i, p in enumerate(CALL_PROFILES)}


def verdict(costs: list[CallCost], agent_profile: str = "720p30") -> Verdict:
    """The best profile (largest picture, then frame rate) some encoder sustains with >= 30 % headroom.

    Among encoders that sustain it, the cheapest wins. ``agent_calls``: how many calls of
    ``agent_profile`` (else of the best profile) the machine holds at once.
    """
    ok = [c for c in costs if c.sustainable]
    reasons = [f"{c.profile} {c.codec}/{c.preset}: {c.error}" for c in costs if c.error]
    reasons += [f"{c.profile} {c.codec}/{c.preset}: not real time" for c in costs if not c.error and not c.realtime]
    if not ok:
        return Verdict(None, None, None, None, None, 0, None,
                       "no call profile is sustainable on this machine with 30% CPU headroom", reasons)
    top = max(_ORDER[c.profile] for c in ok)
    best = min((c for c in ok if _ORDER[c.profile] == top), key=lambda c: c.cpu_per_second)
    at_agent = [c for c in costs if c.profile == agent_profile and c.agent_calls > 0]
    ref = min(at_agent, key=lambda c: c.cpu_per_second) if at_agent else best
    text = (f"best call profile: {best.profile} with {best.codec} ({best.preset}), "
            f"{100 * best.share:.1f}% of the machine per call, {100 * (1 - best.share):.0f}% headroom; "
            f"an agent station holds {ref.agent_calls} simultaneous {ref.profile} calls")
    return Verdict(best.profile, best.codec, best.preset, best.share, 1 - best.share, ref.agent_calls,
                   ref.profile, text, reasons)
