"""Receive-side quality on impaired traces: vcore's VideoJitterBuffer vs aiortc (and GStreamer).

Usage::

    python benchmarks/jitter_quality.py [--seconds 10] [--rtt 0.1] [--seeds 1 2 3 4 5]
                                                       [--no-decode] [--gstreamer]

A real 720p H.264 RTP trace (FFmpeg testsrc, libx264 ultrafast/zerolatency/baseline,
IDR every 2 s, RFC 6184 mode 1, MTU 1200, paced at 30 fps) goes through
``vcore.testing.NetworkEmulator`` (seeded) into each receiver, in the discrete-event
simulation of ``vcore.testing.jitter_sim`` (RTT = 2 x one-way delay, NACKs answered
by an RFC 4588 RTX history). Two sender behaviours: *periodic* (keyframes only every
2 s) and *on request* (a keyframe request reaching the sender makes its next frame
an IDR, taken from an all-intra encoding of the same source).

Columns: frames decodable (delivered whole with every reference decodable), total
and longest freeze (WebRTC's definition), mean added delay (release time - send time
- the path's fixed one-way delay), retransmissions, keyframe requests. With
``--decode`` (default) vcore's delivered units are also decoded with PyAV's h264
decoder and the frames it returns are counted (``pyav`` column).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from vcore import RtpPacket, VideoJitterBuffer  # noqa: E402
from vcore.testing import NetworkEmulator  # noqa: E402
from vcore.testing.jitter_sim import AiortcReceiver, Receiver, SimResult, VcoreReceiver, simulate  # noqa: E402
from vcore.testing.trace import H264Trace, make_h264_trace  # noqa: E402

SCENARIOS: dict[str, dict[str, float]] = {
    "clean": {},
    "loss 2%": {"loss": 0.02},
    "loss 5%": {"loss": 0.05},
    "burst 5% (GE)": {"ge_p": 0.0125, "ge_r": 0.25},  # mean loss 4.8 %, mean burst 4 packets
    "jitter 30 ms": {"jitter": 0.03},
    "jitter 60 ms": {"jitter": 0.06},
    "reorder 1%": {"reorder": 0.01},
    "2% + 30 ms": {"loss": 0.02, "jitter": 0.03},  # issue 16: loss and jitter together
    "5% + 60 ms": {"loss": 0.05, "jitter": 0.06},
}


@dataclass
class Row:
    scenario: str
    receiver: str
    mode: str
    result: SimResult
    decoded: int | None
    seconds: float


def emulator(kw: dict[str, float], rtt: float, seed: int) -> NetworkEmulator:
    jitter = kw.get("jitter", 0.0)
    return NetworkEmulator(seed=seed, delay=rtt / 2 + jitter, **kw)  # type: ignore[arg-type]


def receiver(name: str, rtt: float) -> Receiver:
    if name == "aiortc":
        return AiortcReceiver(capacity=128)
    return VcoreReceiver(VideoJitterBuffer, RtpPacket, name.endswith("NACK"), rtt)


def pyav_decoded(units: list[bytes]) -> int:
    import av

    ctx = av.CodecContext.create("h264", "r")
    count = 0
    for data in units:
        try:
            count += len(ctx.decode(av.Packet(data)))
        except av.error.FFmpegError:
            pass
    try:
        count += len(ctx.decode(None))
    except av.error.FFmpegError:
        pass
    return count


def run(
    trace: H264Trace, intra: H264Trace, rtt: float, seeds: list[int], decode: bool
) -> list[Row]:
    rows: list[Row] = []
    for mode in ("periodic", "on request"):
        for scenario, kw in SCENARIOS.items():
            for name in ("aiortc", "vcore", "vcore NACK"):
                agg: list[SimResult] = []
                decoded = 0
                t0 = time.perf_counter()
                for seed in seeds:
                    r = simulate(
                        trace,
                        receiver(name, rtt),
                        emulator(kw, rtt, seed),
                        reverse_delay=rtt / 2,
                        intra=intra,
                        keyframe_on_request=mode == "on request",
                    )
                    agg.append(r)
                    if decode and name.startswith("vcore"):
                        decoded += pyav_decoded(r.units)
                total = SimResult(
                    frames=sum(r.frames for r in agg),
                    delivered=sum(r.delivered for r in agg),
                    decodable=sum(r.decodable for r in agg),
                    total_freeze=sum(r.total_freeze for r in agg) / len(agg),
                    longest_freeze=max(r.longest_freeze for r in agg),
                    mean_added_delay=_mean([r.mean_added_delay for r in agg], [r.decodable for r in agg]),
                    packets_sent=sum(r.packets_sent for r in agg),
                    retransmissions=sum(r.retransmissions for r in agg),
                    keyframe_requests=sum(r.keyframe_requests for r in agg),
                )
                rows.append(
                    Row(
                        scenario,
                        name,
                        mode,
                        total,
                        decoded if decode and name.startswith("vcore") else None,
                        time.perf_counter() - t0,
                    )
                )
    return rows


def _mean(values: list[float], weights: list[int]) -> float:
    pairs = [(v, w) for v, w in zip(values, weights) if w and not math.isnan(v)]
    if not pairs:
        return float("nan")
    return sum(v * w for v, w in pairs) / sum(w for _, w in pairs)


def table(rows: list[Row], seeds: int) -> str:
    head = (
        "| sender | trace | receiver | decodable | total freeze (s, per run) | longest freeze (s) "
        "| mean added delay (ms) | retransmissions | keyframe requests | PyAV decoded |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        res = r.result
        lines.append(
            f"| {r.mode} | {r.scenario} | {r.receiver} | {100 * res.decodable_ratio:.1f}% ({res.decodable}/{res.frames}) "
            f"| {res.total_freeze:.2f} | {res.longest_freeze:.2f} | {1000 * res.mean_added_delay:.1f} "
            f"| {res.retransmissions} | {res.keyframe_requests} | {'' if r.decoded is None else r.decoded} |"
        )
    return head + "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rtt", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--no-decode", action="store_true")
    ap.add_argument("--gstreamer", action="store_true", help="also run GStreamer's rtpjitterbuffer (real time)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    trace = make_h264_trace(seconds=args.seconds)
    intra = make_h264_trace(seconds=args.seconds, all_intra=True)
    rate = sum(len(b) for _, b in trace.packets) * 8 / args.seconds
    print(
        f"trace: {len(trace.frames)} frames, {len(trace.packets)} packets, {rate / 1e6:.2f} Mbit/s, "
        f"{sum(f.keyframe for f in trace.frames)} IDR; RTT {1000 * args.rtt:.0f} ms; seeds {args.seeds} "
        f"(built in {time.perf_counter() - t0:.1f} s)"
    )
    rows = run(trace, intra, args.rtt, args.seeds, not args.no_decode)
    print(table(rows, len(args.seeds)))
    if args.gstreamer:
        from gst_jitter import gstreamer_rows  # type: ignore[import-not-found]

        print()
        print(gstreamer_rows(trace, args.rtt, args.seeds[0], SCENARIOS))
        print()
        print(f"The same seed ({args.seeds[0]}), periodic keyframes, in the simulation:")
        rows = run(trace, intra, args.rtt, args.seeds[:1], False)
        print(table([r for r in rows if r.mode == "periodic" and r.receiver != "vcore NACK"], 1))


if __name__ == "__main__":
    main()
