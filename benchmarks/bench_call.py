"""Call benchmarks: set-up time with and without TLS, CPU per call, capture-to-decoded latency.

Both terminals run in this process on 127.0.0.1 (one heavy process at a time):

    python benchmarks/bench_call.py [--calls 10] [--seconds 10]

- set-up time: ``Terminal.call()`` invoked (TCP connect, TLS handshake, Setup) -> first video frame decoded by
  the caller; the callee auto-answers and sends 720p30; median and p95 over ``--calls`` calls per mode.
- CPU per call: ``time.process_time()`` (every thread) over a ``--seconds`` call, kiosk -> agent 720p30
  1.5 Mbit/s H.264 + G.722 audio both ways (the agent sends audio only), TLS + SRTP (AEAD_AES_128_GCM), jitter
  buffer with NACK, RTCP; per frame, after subtracting the CPU of a call of ``--short`` seconds (start-up).
  The kiosk reads bench_media.py's raw testsrc2 clip (generating ``TestPattern`` at 720p costs 5.6 ms per frame
  by itself), so the number compares with the media loopback of docs/media.md (same pictures, same encoder).
- latency: capture-to-decoded p50/p95 of the agent's received video over that call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

W, H, FPS, BITRATE = 1280, 720, 30.0, 1_500_000


def _pki(base: Path) -> Path:
    from vcore import pki

    ca = pki.CertificateAuthority.init(base / "ca", "Bench CA")
    ca.issue("kiosk", role="kiosk").save(base / "kiosk.pem")
    ca.issue("agent", role="agent").save(base / "agent.pem")
    return base


def _opts(base: Path | None, name: str) -> dict[str, Any]:
    if base is None:
        return {"allow_plaintext": True}
    return {"identity": base / f"{name}.pem", "trust": [base / "ca" / "ca.cert.pem"]}


async def _setup_times(base: Path | None, calls: int) -> list[float]:
    import vcore
    from vcore.media import TestPattern, Tone

    times: list[float] = []
    agent = vcore.Terminal("agent", video=lambda: TestPattern(W, H, FPS), audio=lambda: Tone(sample_rate=16000),
                           auto_answer=True, bitrate=BITRATE, encoder="libx264", latency_probe=True,
                           **_opts(base, "agent"))
    async with agent:
        for _ in range(calls):
            kiosk = vcore.Terminal("kiosk", listen=False, bitrate=BITRATE, encoder="libx264", latency_probe=True,
                                   **_opts(base, "kiosk"))
            async with kiosk:
                t0 = time.monotonic()
                call = await kiosk.call(agent.uri)
                while call.first_frame_at is None and call.ended is None:
                    await asyncio.sleep(0.001)
                if call.first_frame_at is None:
                    raise SystemExit(f"call ended: {call.ended}")
                times.append(call.first_frame_at - t0)
                await call.hangup()
            await asyncio.sleep(0.2)
    return times


def _clip_source(clip: str) -> Any:
    """The raw 720p testsrc2 clip of bench_media.py, read in real time (the same pictures as that benchmark)."""
    from vcore.media.sources import Source

    src = Source(clip, "rawvideo", {"video_size": f"{W}x{H}", "pixel_format": "yuv420p", "framerate": str(int(FPS))})
    src.width, src.height, src.fps = W, H, FPS  # type: ignore[attr-defined]
    return src


async def _cpu_call(base: Path, seconds: float, clip: str) -> tuple[float, int, Any]:
    import vcore
    from vcore.media import Tone

    agent = vcore.Terminal("agent", audio=lambda: Tone(sample_rate=16000), auto_answer=True, bitrate=BITRATE,
                           encoder="libx264", latency_probe=True, **_opts(base, "agent"))
    kiosk = vcore.Terminal("kiosk", video=_clip_source(clip), audio=Tone(sample_rate=16000), listen=False,
                           bitrate=BITRATE, encoder="libx264", latency_probe=True, **_opts(base, "kiosk"))
    async with agent, kiosk:
        cpu0 = time.process_time()
        call = await kiosk.call(agent.uri)
        await call.connected
        await asyncio.sleep(seconds)
        answered = agent.calls[0]
        stats = answered.stats().stream("video", "receive")
        sent = call.stats().stream("video", "send")
        await call.hangup()
        cpu = time.process_time() - cpu0
    return cpu, sent.frames if sent is not None else 0, stats


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--short", type=float, default=1.0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = _pki(Path(tmp))
        for label, b in (("TLS", base), ("plain TCP", None)):
            times = asyncio.run(_setup_times(b, args.calls))
            print(f"set-up {label:9}: median {statistics.median(times) * 1000:6.1f} ms, "
                  f"p95 {_pct(times, 95) * 1000:6.1f} ms, min {min(times) * 1000:6.1f} ms over {len(times)} calls",
                  flush=True)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_media import make_clip

        clip = str(Path(tmp) / "clip.yuv")
        make_clip(clip, int(args.seconds * FPS) + 60)
        cpu_short, frames_short, _ = asyncio.run(_cpu_call(base, args.short, clip))
        cpu_long, frames_long, stats = asyncio.run(_cpu_call(base, args.seconds, clip))
        per_frame = (cpu_long - cpu_short) / max(frames_long - frames_short, 1)
        print(f"CPU per call: {cpu_long:.2f} s over {args.seconds:g} s ({frames_long} frames sent); "
              f"steady state {per_frame * 1000:.2f} ms CPU per frame "
              f"({per_frame * FPS * 100:.0f} % of one core at {FPS:g} fps)")
        if stats is not None:
            print(f"latency capture -> decoded (agent): p50 {(stats.latency_p50 or 0) * 1000:.1f} ms, "
                  f"p95 {(stats.latency_p95 or 0) * 1000:.1f} ms; loss {(stats.loss or 0):.2%}, "
                  f"dropped {stats.dropped}")
    return 0


try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
    def test_call_setup(benchmark: Any, tmp_path: Path, tls: bool) -> None:
        """pytest-benchmark face of the set-up: one call per round, including starting and closing both terminals."""
        base = _pki(tmp_path) if tls else None
        benchmark.pedantic(lambda: asyncio.run(_setup_times(base, 1)), rounds=3, iterations=1)


if __name__ == "__main__":
    sys.exit(main())
