"""Whole calls over an emulated ADSL line, vcore beside its peers: ``python benchmarks/bench_adsl.py``.

Three network namespaces: the kiosk (192.0.2.10), the line, the agent
(192.0.2.20). The kiosk's uplink is a kernel ``tbf`` queue on its interface
(the modem: a 300 ms deep queue), the agent's downlink another (2 Mbit/s);
the line namespace bridges the two in user space (``adsl_line.py``) and adds
delay, jitter and loss (``netem`` is not in this kernel). One call per stack and
scenario, the kiosk sending the stamped 720p picture (``adsl_stamp.py``) and
sound, the agent reading the stamps back from the decoded pictures:

1. 512 kbit/s up / 2 Mbit/s down, 40 ms RTT, 1 % loss;
2. the same with 30 ms jitter and 3 % loss in bursts (mean 3 packets);
3. uplink capacity 1 Mbit/s → 256 kbit/s → 1 Mbit/s, a third of the call each;
4. scenario 1 with a bulk TCP upload from the kiosk starting mid-call.

Stacks: ``vcore`` (congestion control on, the default), ``vcore-fixed``
(``congestion_control=False``: the video at 1.5 Mbit/s whatever the line, the
"before"), ``aiortc`` (its REMB-based estimation, as shipped;
``adsl_aiortc.py``).

Per call: uplink utilisation (IP bytes through the line / capacity), seconds
to reach 80 % of it, seconds to settle after each capacity step (scenario 3),
capture-to-display latency p50/p95 (stamp time vs display time; the
namespaces share one monotonic clock), frames displayed per second, freezes
(> 200 ms without a new picture: count, total, longest), PSNR of the luma of
every 30th source frame that arrived against the same testsrc2 frame scaled to
the received size (stamp rows excluded), and received audio. Results as a
Markdown table (``--markdown``) and JSON (``--json``).

Needs root, iproute2 and ``tc``; skips with a message otherwise.
"""

from __future__ import annotations

import argparse
import os
import json
import math
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from adsl_stamp import BLOCK, FPS, TOP, H, W  # noqa: E402

KIOSK, AGENT = "192.0.2.10", "192.0.2.20"
FREEZE = 0.2  # s without a new picture


@dataclass
class Scenario:
    number: int
    title: str
    up: list[tuple[float, int]]  # (from fraction of the call, bit/s)
    delay: float = 0.02  # one way: RTT 40 ms
    jitter: float = 0.0
    loss: float = 0.01
    burst: float = 1.0
    tcp_from: float | None = None  # fraction of the call when a bulk TCP upload starts


SCENARIOS = [
    Scenario(1, "512k up, 40 ms RTT, 1 % loss", [(0.0, 512_000)]),
    Scenario(2, "+ 30 ms jitter, 3 % bursty loss", [(0.0, 512_000)], jitter=0.03, loss=0.03, burst=3.0),
    Scenario(3, "1M → 256k → 1M", [(0.0, 1_000_000), (1 / 3, 256_000), (2 / 3, 1_000_000)]),
    Scenario(4, "bulk TCP upload from mid-call", [(0.0, 512_000)], tcp_from=0.5),
]
STACKS = ["vcore", "vcore-fixed", "aiortc"]
DOWN = 2_000_000


@dataclass
class Result:
    scenario: int
    stack: str
    seconds: float
    ok: bool = True
    error: str = ""
    utilisation: float | None = None
    to_80: float | None = None
    settle: list[float | None] = field(default_factory=list)
    latency_p50: float | None = None
    latency_p95: float | None = None
    fps: float | None = None
    freezes: int = 0
    freeze_time: float = 0.0
    longest_freeze: float = 0.0
    psnr: float | None = None
    audio: str = ""
    sizes: str = ""


# --------------------------------------------------------------------------- the lab


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=60)


class Line:
    """kiosk —veth— line —veth— agent, tbf on both ends; deleted (processes killed) on close."""

    def __init__(self, scenario: Scenario) -> None:
        from netlab import Lab

        self.lab = Lab()
        lab = self.lab
        for h in ("kiosk", "line", "agent"):
            lab.host(h)
        for host, ifname, addr, peer_if in (("kiosk", "k0", KIOSK, "lk"), ("agent", "a0", AGENT, "la")):
            a, b = f"{lab.prefix}{ifname}"[:15], f"{lab.prefix}{peer_if}"[:15]
            _run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            _run("ip", "link", "set", a, "netns", lab.ns(host))
            _run("ip", "link", "set", b, "netns", lab.ns("line"))
            lab.exec(host, "ip", "link", "set", a, "name", ifname)
            lab.exec(host, "ip", "addr", "add", f"{addr}/24", "dev", ifname)
            lab.exec(host, "ip", "link", "set", ifname, "up")
            lab.exec("line", "ip", "link", "set", b, "name", peer_if)
            lab.exec("line", "ip", "link", "set", peer_if, "promisc", "on", "up")
        self.scenario = scenario
        self.set_uplink(scenario.up[0][1], add=True)
        lab.exec("agent", "tc", "qdisc", "add", "dev", "a0", "root", "tbf", "rate", f"{DOWN}bit", "burst", "1600b",
                 "latency", "300ms")

    def set_uplink(self, rate: int, *, add: bool = False) -> None:
        # the modem's queue: 300 ms at the line rate (a typical ADSL box buffers a few hundred ms)
        # a burst under two frames makes tbf split the stack's GSO super-frames (the bridge forwards 1514 at most)
        self.lab.exec("kiosk", "tc", "qdisc", "add" if add else "change", "dev", "k0", "root", "tbf",
                      "rate", f"{rate}bit", "burst", "1600b", "latency", "300ms")

    def close(self) -> None:
        self.lab.close()


# --------------------------------------------------------------------------- one call


def _peer_cmd(stack: str, side: str, work: Path, host: str, seconds: float, out: Path, peer: str) -> list[str]:
    if stack == "aiortc":
        return [sys.executable, str(HERE / "adsl_aiortc.py"), side, "--dir", str(work), "--host", host,
                "--seconds", str(seconds), "--out", str(out)]
    cmd = [sys.executable, str(HERE / "adsl_vcore.py"), side, "--dir", str(work), "--host", host,
           "--seconds", str(seconds), "--out", str(out), "--peer", peer]
    if stack == "vcore-fixed":
        cmd.append("--no-cc")
    if os.environ.get("VCORE_ADSL_TRACE"):
        cmd.append("--trace")  # diagnostics in the kept logs
    return cmd


def _make_pki(work: Path) -> None:
    from vcore import pki

    base = work / "pki"
    ca = pki.CertificateAuthority.init(base / "ca", "Benchmark CA")
    ca.issue("Kiosk", role="kiosk").save(base / "Kiosk.pem")
    ca.issue("CAF agent", role="agent", aliases=["caf-agent"]).save(base / "CAF agent.pem")


def _tcp_sink(lab: Any, log: Path) -> Any:
    code = ("import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            f"s.bind(('{AGENT}',5001));s.listen(1)\nc,_=s.accept()\nwhile c.recv(65536): pass\n")
    return lab.spawn("agent", [sys.executable, "-c", code], log=log)


def _tcp_source(lab: Any, log: Path) -> Any:
    code = (f"import socket,time\nc=socket.create_connection(('{AGENT}',5001))\nb=bytes(65536)\n"
            "while True: c.sendall(b)\n")
    return lab.spawn("kiosk", [sys.executable, "-c", code], log=log)


def run_call(scenario: Scenario, stack: str, seconds: float, keep: Path | None) -> Result:
    work = Path(tempfile.mkdtemp(prefix=f"adsl{scenario.number}{stack}"))
    result = Result(scenario.number, stack, seconds)
    line = Line(scenario)
    lab = line.lab
    try:
        if stack.startswith("vcore"):
            _make_pki(work)
        lab.spawn("line", [sys.executable, str(HERE / "adsl_line.py"), "lk", "la", "--delay", str(scenario.delay),
                           "--jitter", str(scenario.jitter), "--loss", str(scenario.loss), "--burst",
                           str(scenario.burst), "--out", str(work / "line.jsonl")], log=work / "line.log")
        recv = lab.spawn("agent", _peer_cmd(stack, "recv", work, AGENT, seconds + 15, work / "recv.jsonl", KIOSK),
                         log=work / "recv.log")
        if stack.startswith("vcore"):
            deadline = time.monotonic() + 30
            while not (work / "agent.ready").exists():
                if recv.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the agent did not start: {(work / 'recv.log').read_text()[-500:]}")
                time.sleep(0.1)
        # the sender's clock starts at "connected"; the measured window at the first picture: give it slack
        send = lab.spawn("kiosk", _peer_cmd(stack, "send", work, KIOSK, seconds + 10, work / "send.jsonl", AGENT),
                         log=work / "send.log")
        # wait for media, then run the scenario's clock from the first received picture
        spawned = time.monotonic()
        start = _wait_first_frame(work / "recv.jsonl", send, 40)
        if start is None:  # no picture yet (a stack that floods the line may never show one): measure anyway
            if send.poll() is not None:
                raise RuntimeError(f"sender failed: {(work / 'send.log').read_text()[-800:]}")
            start = spawned + 10.0
        stop = threading.Event()
        events = threading.Thread(target=_scenario_clock, args=(line, scenario, seconds, start, stop, work),
                                  daemon=True)
        events.start()
        try:
            send.wait(max(1.0, start + seconds + 30 - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise RuntimeError("the sender did not end") from None
        finally:
            stop.set()
            events.join(5)
        try:
            recv.wait(30 if stack.startswith("vcore") else seconds + 30)
        except subprocess.TimeoutExpired:
            pass
        if send.returncode != 0:
            raise RuntimeError(f"sender failed: {(work / 'send.log').read_text()[-800:]}")
        _measure(result, scenario, work, start, seconds)
    except Exception as exc:  # one failed call does not end the benchmark
        result.ok = False
        result.error = str(exc)[:600]
    finally:
        line.close()
        if keep is not None:
            dest = keep / f"s{scenario.number}-{stack}"
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(work, dest, ignore=shutil.ignore_patterns("*.npy", "pki"))
        shutil.rmtree(work, ignore_errors=True)
    return result


def _wait_first_frame(path: Path, proc: Any, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                rec = json.loads(line)
                if rec.get("kind") == "frame":
                    return float(rec["t"])
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    return None


def _scenario_clock(line: Line, scenario: Scenario, seconds: float, start: float, stop: threading.Event,
                    work: Path) -> None:
    steps = [(start + f * seconds, rate) for f, rate in scenario.up[1:]]
    tcp_at = start + scenario.tcp_from * seconds if scenario.tcp_from is not None else None
    while not stop.is_set():
        now = time.monotonic()
        while steps and now >= steps[0][0]:
            line.set_uplink(steps.pop(0)[1])
        if tcp_at is not None and now >= tcp_at:
            _tcp_sink(line.lab, work / "tcp-sink.log")
            time.sleep(0.3)
            _tcp_source(line.lab, work / "tcp-source.log")
            tcp_at = None
        stop.wait(0.05)


# --------------------------------------------------------------------------- measurements


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def _capacity(scenario: Scenario, start: float, seconds: float, t: float) -> int:
    rate = scenario.up[0][1]
    for f, r in scenario.up:
        if t >= start + f * seconds:
            rate = r
    return rate


def _measure(result: Result, scenario: Scenario, work: Path, start: float, seconds: float) -> None:
    end = start + seconds
    frames = [r for r in _records(work / "recv.jsonl") if r.get("kind") == "frame" and start <= r["t"] <= end]
    # latency: capture ms is monotonic ms modulo 2^24
    lat = []
    for r in frames:
        if r.get("capture_ms") is None:
            continue
        t_ms = int(r["t"] * 1000)
        latency = ((t_ms - r["capture_ms"]) % (1 << 24)) / 1000
        if latency <= seconds + 60:  # else a misread stamp that passed its check word (a garbled picture)
            lat.append(latency)
    if lat:
        lat.sort()
        result.latency_p50 = lat[len(lat) // 2]
        result.latency_p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
    result.fps = len(frames) / seconds
    times = [start] + [r["t"] for r in frames] + [end]
    gaps = [b - a for a, b in zip(times, times[1:]) if b - a > FREEZE]
    result.freezes = len(gaps)
    result.freeze_time = sum(gaps)
    result.longest_freeze = max(gaps, default=0.0)
    sizes: dict[str, int] = {}
    for r in frames:
        key = f"{r['h']}p"
        sizes[key] = sizes.get(key, 0) + 1
    result.sizes = " ".join(f"{k}:{round(100 * v / max(1, len(frames)))}%" for k, v in
                            sorted(sizes.items(), key=lambda kv: -kv[1]))
    # uplink utilisation from the line's per-second counters
    line = _records(work / "line.jsonl")
    per_second = []
    for a, b in zip(line, line[1:]):
        if start <= b["t"] <= end:
            per_second.append((b["t"], (b["up"] - a["up"]) * 8 / (b["t"] - a["t"])))
    if per_second:
        used = [bits / _capacity(scenario, start, seconds, t) for t, bits in per_second]
        steady = [u for (t, _), u in zip(per_second, used) if t >= start + 5]
        result.utilisation = statistics.mean(steady) if steady else None
        result.to_80 = next((t - start for (t, _), u in zip(per_second, used) if u >= 0.8), None)
    # settling after each capacity step: the sender's own rate (1 s) within 10 % of the new capacity
    sent = [r for r in _records(work / "send.jsonl") if r.get("kind") == "send" and r.get("bytes") is not None]
    rates = [(b["t"], (b["bytes"] - a["bytes"]) * 8 / (b["t"] - a["t"])) for a, b in zip(sent, sent[1:])]
    for f, rate in scenario.up[1:]:
        at = start + f * seconds
        after = [(t, r) for t, r in rates if at < t <= at + seconds / 3]
        if rate < _capacity(scenario, start, seconds, at - 1):
            ok = next((t - at for t, r in after if r <= 1.1 * rate), None)
        else:
            ok = next((t - at for t, r in after if r >= 0.9 * rate * 0.85), None)  # video share of the line
        result.settle.append(ok)
    result.psnr = _psnr(work, "aiortc" if result.stack == "aiortc" else "vcore")
    audio = [r for r in _records(work / "recv.jsonl") if r.get("kind") == "audio"]
    if audio:
        a = audio[-1]
        if "concealed" in a and a.get("frames"):
            result.audio = f"{100 * a['concealed'] / a['frames']:.1f} % concealed"
        elif a.get("frames") is not None:
            result.audio = f"{a['frames']} frames"


def _psnr(work: Path, prefix: str) -> float | None:
    import av
    import numpy as np

    files = sorted(work.glob(f"{prefix}_y_*.npy"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    if not files:
        return None
    wanted = {int(p.stem.rsplit("_", 1)[1]): p for p in files}
    last = max(wanted)
    values = []
    container = av.open(f"testsrc2=size={W}x{H}:rate={FPS},format=yuv420p", format="lavfi")
    try:
        for n, frame in enumerate(container.decode(video=0)):
            if n > last:
                break
            if n not in wanted:
                continue
            got = np.load(wanted[n])
            h, w = got.shape
            ref = frame.reformat(width=w, height=h, format="yuv420p")
            plane = ref.planes[0]
            y = np.frombuffer(plane, np.uint8).reshape(h, plane.line_size)[:, :w].astype(np.float64)
            skip = int((TOP + 3 * BLOCK + 4) * h / H)  # the stamp rows
            mse = float(np.mean((y[skip:] - got[skip:].astype(np.float64)) ** 2))
            values.append(99.0 if mse == 0 else 10 * math.log10(255 ** 2 / mse))
    finally:
        container.close()
    return statistics.mean(values) if values else None


# --------------------------------------------------------------------------- report


def _f(value: float | None, fmt: str, scale: float = 1.0) -> str:
    return "–" if value is None else format(value * scale, fmt)


def markdown(results: list[Result]) -> str:
    head = ("| # | stack | uplink used | to 80 % (s) | settle after steps (s) | latency p50 / p95 (ms) | "
            "fps | freezes (n / total s / max s) | PSNR (dB) | sizes | audio |")
    rows = [head, "|" + "---|" * 11]
    for r in results:
        if not r.ok:
            rows.append(f"| {r.scenario} | {r.stack} | failed: {r.error.splitlines()[0][:120] if r.error else ''} "
                        "| | | | | | | | |")
            continue
        settle = " / ".join(_f(s, ".1f") for s in r.settle) or "–"
        rows.append(
            f"| {r.scenario} | {r.stack} | {_f(r.utilisation, '.0%')} | {_f(r.to_80, '.0f')} | {settle} | "
            f"{_f(r.latency_p50, '.0f', 1000)} / {_f(r.latency_p95, '.0f', 1000)} | {_f(r.fps, '.1f')} | "
            f"{r.freezes} / {r.freeze_time:.1f} / {r.longest_freeze:.1f} | {_f(r.psnr, '.1f')} | {r.sizes} | "
            f"{r.audio or '–'} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each call (default 60)")
    parser.add_argument("--scenarios", default="1,2,3,4")
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--keep", type=Path, help="keep each call's logs under this folder")
    args = parser.parse_args()
    from netlab import namespaces_unavailable

    why = namespaces_unavailable()
    if why is not None or shutil.which("tc") is None:
        print(f"skipped: {why or 'tc is not installed'}")
        return 0
    wanted = {int(s) for s in args.scenarios.split(",")}
    stacks = [s.strip() for s in args.stacks.split(",") if s.strip()]
    unknown = set(stacks) - set(STACKS)
    if unknown:
        print(f"error: unknown stack(s) {sorted(unknown)}; choose from {STACKS}", file=sys.stderr)
        return 2
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)

    def stopped(signum: int, _frame: object) -> None:
        # SIGTERM ends the run through the same ``finally`` blocks as Ctrl-C: the namespaces and
        # the processes in them are removed (Python's default SIGTERM action skips them)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stopped)
    results = []
    for scenario in SCENARIOS:
        if scenario.number not in wanted:
            continue
        for stack in stacks:
            print(f"scenario {scenario.number} ({scenario.title}), {stack}, {args.seconds:.0f} s ...", flush=True)
            r = run_call(scenario, stack, args.seconds, args.keep)
            results.append(r)
            print(markdown([r]).splitlines()[-1], flush=True)
    table = markdown(results)
    print(table)
    if args.markdown is not None:
        args.markdown.write_text(table + "\n")
    if args.json is not None:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt as exc:
        print(f"error: stopped ({exc or 'interrupted'}); the network namespaces were removed", file=sys.stderr)
        raise SystemExit(130) from None
