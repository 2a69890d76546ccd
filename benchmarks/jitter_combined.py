"""Loss and jitter together (issue 16): decodable frames, delay and freeze distributions.

Usage::

    python benchmarks/jitter_combined.py [--seeds 1 2 3 4 5 6 7 8 9 10] [--rtt 0.06 0.1] [--copies 2]

The discrete-event call leg of ``vcore.testing.jitter_sim`` on the real 720p trace of
``benchmarks/jitter_quality.py`` (10 s, 300 frames), NACK answered by an RFC 4588 RTX
history after the RTT, for 2 % loss + 30 ms jitter and 5 % loss + 60 ms jitter (netem-like:
uniform, reorders). Per row, summed over the seeds: decodable frames (and the worst seed),
mean and 95th-percentile added delay against the goal 2 x jitter + 1 RTT, freezes per run
(count, total, longest) and the 50th/95th percentile of their lengths, retransmitted packets
per packet sent, keyframe requests. ``--copies 1`` answers a repeated NACK with one copy
(the history's default) instead of two (what a call uses).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from jitter_quality import SCENARIOS, emulator  # type: ignore[import-not-found]  # noqa: E402

from vcore import RtpPacket, VideoJitterBuffer  # noqa: E402
from vcore.testing.jitter_sim import SimResult, VcoreReceiver, simulate  # noqa: E402
from vcore.testing.trace import make_h264_trace  # noqa: E402

COMBINED = ("2% + 30 ms", "5% + 60 ms")


def _q(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, int(p * len(ranked)))]


def row(mode: str, name: str, rtt: float, results: list[SimResult]) -> str:
    kw = SCENARIOS[name]
    frames = sum(r.frames for r in results)
    decodable = sum(r.decodable for r in results)
    delays = [d for r in results for d in r.delays]
    freezes = [f for r in results for f in r.freezes]
    sent = sum(r.packets_sent - r.retransmissions for r in results)
    rtx = sum(r.retransmissions for r in results)
    runs = len(results)
    goal = 2 * kw.get("jitter", 0.0) + rtt
    return (
        f"| {mode} | {name} | {1000 * rtt:.0f} | {100 * decodable / frames:.1f}% "
        f"(worst {min(r.decodable for r in results)}/{results[0].frames}) "
        f"| {1000 * sum(delays) / max(len(delays), 1):.0f} / {1000 * _q(delays, 0.95):.0f} | ≤ {1000 * goal:.0f} "
        f"| {len(freezes) / runs:.1f} / {sum(freezes) / runs:.2f} ({max(freezes, default=0.0):.2f}) "
        f"| {1000 * _q(freezes, 0.5):.0f} / {1000 * _q(freezes, 0.95):.0f} | {100 * rtx / sent:.1f}% "
        f"| {sum(r.keyframe_requests for r in results)} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    ap.add_argument("--rtt", type=float, nargs="+", default=[0.06, 0.1])
    ap.add_argument("--copies", type=int, default=2, choices=[1, 2, 3])
    args = ap.parse_args()
    trace = make_h264_trace(seconds=10.0)
    intra = make_h264_trace(seconds=10.0, all_intra=True)
    print(
        "| sender | trace | RTT (ms) | decodable | added delay mean / p95 (ms) | goal (ms) "
        "| freezes per run: count / total s (longest) | freeze length p50 / p95 (ms) | retransmitted / sent "
        "| keyframe requests |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode in ("periodic", "on request"):
        for name in COMBINED:
            for rtt in args.rtt:
                results = [
                    simulate(
                        trace,
                        VcoreReceiver(VideoJitterBuffer, RtpPacket, True, rtt),
                        emulator(SCENARIOS[name], rtt, seed),
                        reverse_delay=rtt / 2,
                        intra=intra,
                        keyframe_on_request=mode == "on request",
                        repeat_copies=args.copies,
                    )
                    for seed in args.seeds
                ]
                print(row(mode, name, rtt, results), flush=True)


if __name__ == "__main__":
    main()
