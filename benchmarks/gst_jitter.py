"""GStreamer's ``rtpjitterbuffer`` (default settings) on the same impaired traces, in real time.

Used by ``jitter_quality.py --gstreamer``. For each scenario the trace goes through
the same seeded ``NetworkEmulator`` (no NACK: GStreamer's defaults do not request
retransmissions); Python sends each packet to ``udpsrc`` on 127.0.0.1 at its
emulated arrival time, and ``rtpjitterbuffer ! udpsink sync=true`` hands the packets
back when the pipeline would play them (its default 200 ms latency applies at the
sink). A frame is delivered when every one of its packets came back; decodable,
freeze and added delay are computed as in ``vcore.testing.jitter_sim``. Wall-clock
scheduling adds about a millisecond of noise. About 12 s per scenario.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

from vcore.testing import NetworkEmulator
from vcore.testing.trace import H264Trace

LATENCY_MS = 200  # rtpjitterbuffer's default


def _free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def run_scenario(trace: H264Trace, kw: dict[str, float], rtt: float, seed: int) -> dict[str, float]:
    jitter = kw.get("jitter", 0.0)
    base_delay = rtt / 2 + jitter
    em = NetworkEmulator(seed=seed, delay=base_delay, **kw)  # type: ignore[arg-type]
    arrivals = em.apply(trace.packets)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.2)
    out_port = rx.getsockname()[1]
    in_port = _free_port()
    caps = "application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96"
    proc = subprocess.Popen(
        [
            "gst-launch-1.0",
            "-q",
            "udpsrc",
            f"port={in_port}",
            "address=127.0.0.1",
            f"caps={caps}",
            "!",
            "rtpjitterbuffer",
            "!",
            "udpsink",
            "host=127.0.0.1",
            f"port={out_port}",
            "sync=true",
            "async=false",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    got: list[tuple[float, bytes]] = []
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                data = rx.recv(65536)
            except socket.timeout:
                continue
            got.append((time.perf_counter(), data))

    th = threading.Thread(target=receive, daemon=True)
    th.start()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        time.sleep(1.0)  # let the pipeline start
        start = time.perf_counter() + 0.2
        for when, data in arrivals:
            target = start + when
            delay = target - time.perf_counter()
            if delay > 0.002:
                time.sleep(delay - 0.001)
            while time.perf_counter() < target:
                pass
            tx.sendto(data, ("127.0.0.1", in_port))
        time.sleep(1.0)
    finally:
        stop.set()
        th.join()
        proc.terminate()
        proc.wait(5)
        tx.close()
        rx.close()
    # evaluate
    seen: dict[int, float] = {}
    for t, data in got:
        seq = int.from_bytes(data[2:4], "big")
        seen.setdefault(seq, t)
    decodable = 0
    chain = False
    shown: list[float] = []
    delays: list[float] = []
    for f in trace.frames:
        seqs = [(f.first_seq + i) & 0xFFFF for i in range(f.packets)]
        ok = all(s in seen for s in seqs)
        chain = ok and (f.keyframe or chain)
        if chain:
            decodable += 1
            t = max(seen[s] for s in seqs) - start
            shown.append(t)
            delays.append(t - (f.send_time + base_delay))
    fps = trace.fps
    gap_limit = max(3.0 / fps, 1.0 / fps + 0.150)
    lag = base_delay + (sum(delays) / len(delays) if delays else 0.0)  # steady latency is not a freeze
    marks = [lag] + shown + [trace.frames[-1].send_time + lag + 1.0 / fps]
    freezes = [b - a for a, b in zip(marks, marks[1:]) if b - a > gap_limit]
    return {
        "frames": len(trace.frames),
        "decodable": decodable,
        "total_freeze": sum(freezes),
        "longest_freeze": max(freezes, default=0.0),
        "mean_added_delay": sum(delays) / len(delays) if delays else float("nan"),
    }


def gstreamer_rows(trace: H264Trace, rtt: float, seed: int, scenarios: dict[str, dict[str, float]]) -> str:
    """A markdown table of rtpjitterbuffer's results (or a line saying why it was skipped)."""
    if shutil.which("gst-launch-1.0") is None:
        return "GStreamer: skipped (gst-launch-1.0 not installed)"
    lines = [
        f"GStreamer rtpjitterbuffer (defaults: latency {LATENCY_MS} ms, no retransmission), seed {seed}, real time:",
        "",
        "| trace | decodable | total freeze (s) | longest freeze (s) | mean added delay (ms) |",
        "|---|---|---|---|---|",
    ]
    for name, kw in scenarios.items():
        r = run_scenario(trace, kw, rtt, seed)
        lines.append(
            f"| {name} | {100 * r['decodable'] / r['frames']:.1f}% ({int(r['decodable'])}/{int(r['frames'])}) "
            f"| {r['total_freeze']:.2f} | {r['longest_freeze']:.2f} | {1000 * r['mean_added_delay']:.1f} |"
        )
    return "\n".join(lines)
