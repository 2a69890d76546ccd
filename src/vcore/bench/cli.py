"""``vcore bench``: can this machine hold an encrypted call, with which encoder, at what cost?

    vcore bench [--quick] [--json OUT.json] [--plot OUT.png] [--camera PORT|HOST:PORT|emulate]
    vcore bench --compare A.json B.json

Every measurement comes from :mod:`vcore.bench.workloads` (the same code the
pytest-benchmark files in ``benchmarks/`` run). Progress is printed as it goes;
each measurement has a time budget and runs in a worker thread with a timeout,
so a stuck device or encoder is reported ("not measured: ...") and never hangs
the command. See ``docs/bench.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from . import report as rp
from . import workloads as wl

__all__ = ["main", "run_bench", "compare", "plot"]

T = TypeVar("T")

SRTP_SUITE = "AES_CM_128_HMAC_SHA1_80"
CAMERA_NOISE = 6  # sensor-like temporal noise on the test pictures (see docs/bench.md)
PRESETS_FULL = ("ultrafast", "superfast", "veryfast")  # libx264 presets usable for conferencing


EXIT_NOT_SUSTAINABLE = 3  # measured, but no call profile fits (1 stays Python's "crashed")


class MeasurementTimeout(Exception):
    """A measurement did not finish within its time limit."""


def run_with_timeout(fn: Callable[[], T], timeout: float) -> T:
    """Run ``fn`` in a daemon thread; raise :class:`MeasurementTimeout` if it is not done in ``timeout`` s.

    A timed-out call is abandoned (its thread ends with the process), so a hung device
    cannot hang the command.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    t = threading.Thread(target=target, name="vcore-bench-measure", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise MeasurementTimeout(f"no result after {timeout:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


class _Progress:
    def __init__(self, out: Any, quiet: bool = False) -> None:
        self.out = out
        self.quiet = quiet
        self.t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.t0:5.1f}s] {text}", file=self.out, flush=True)


def probe_encoders(timeout: float = 15.0) -> tuple[list[str], dict[str, str]]:
    """H.264 encoders usable here (hardware first, libx264 last) and why the others are not."""
    import av

    from ..media.codecs import HARDWARE_H264_ENCODERS

    found: list[str] = []
    missing: dict[str, str] = {}
    for name in (*HARDWARE_H264_ENCODERS, "libx264"):
        if name not in av.codecs_available:
            missing[name] = "not built into this PyAV/FFmpeg"
            continue

        def try_open(name: str = name) -> None:
            from ..media import H264Encoder

            enc = H264Encoder(320, 240, 30, 300_000, codec=name)
            frame = wl.raw_frames(320, 240, 1)[0]
            enc.encode(frame)
            enc.close()

        try:
            run_with_timeout(try_open, timeout)
            found.append(name)
        except Exception as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            missing[name] = text.split(": 'avcodec_open2")[0]  # FFmpeg's call with its options adds nothing
    return found, missing


def run_bench(
    quick: bool = False,
    camera: str | None = None,
    *,
    profiles: list[str] | None = None,
    encoders: list[str] | None = None,
    progress: Callable[[str], None] = lambda s: None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """Measure this machine; returns the JSON-ready result (see ``docs/bench.md`` for the schema).

    ``encoders`` forces the list of encoders to try (by default: probed); ``profiles`` the
    call profiles (by default all of :data:`vcore.bench.workloads.CALL_PROFILES`).
    """
    result: dict[str, Any] = {"schema": rp.SCHEMA, "quick": quick,
                              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    not_measured: list[dict[str, str]] = []
    result["not_measured"] = not_measured

    def skip(what: str, why: str) -> None:
        not_measured.append({"what": what, "why": why})
        progress(f"  not measured: {what}: {why}")

    progress("machine facts and H.264 encoders")
    unavailable: dict[str, str] = {}
    if encoders is None:
        try:
            encoders, unavailable = probe_encoders()
        except Exception as exc:
            encoders = []
            skip("encoder probe", str(exc))
    facts = rp.machine_facts(encoders)
    facts["encoders_unavailable"] = unavailable
    result["machine"] = facts
    cores = int(facts["cores"])
    progress(f"  {facts['cpu_model']}, {cores} cores, Python {facts['python']}, PyAV {facts.get('pyav')}")
    progress(f"  encoders: {', '.join(encoders) or 'none'}"
             + "".join(f"; {k} not available: {v}" for k, v in unavailable.items()))

    # -- per packet costs ----------------------------------------------------------
    n_packets = 1024 if quick else 4096
    rounds = 3 if quick else 7
    srtp: dict[str, Any] = {"suite": SRTP_SUITE, "packet_bytes": wl.SRTP_PACKET_SIZE}
    packets = wl.rtp_packets(n_packets)
    for impl in ("vcore", "pylibsrtp"):
        for op in ("protect", "unprotect"):
            progress(f"SRTP {op} per packet ({impl})")
            try:
                w = wl.srtp_workload(impl, SRTP_SUITE, op, packets)
                cpu, _ = run_with_timeout(lambda w=w: wl.per_item(w, rounds), 60)  # type: ignore[misc]
                srtp[f"{impl}_{op}_us"] = cpu * 1e6
                progress(f"  {cpu * 1e6:.2f} µs")
            except ImportError as exc:
                skip(f"SRTP {op} ({impl})", f"not installed: {exc}")
            except Exception as exc:
                skip(f"SRTP {op} ({impl})", str(exc))
    result["srtp"] = srtp

    paths: dict[str, Any] = {}
    send_pp = receive_pp = 0.0
    try:
        progress("receive path per packet (unprotect + parse + jitter buffer + depacketize)")
        from ..testing.trace import make_h264_trace

        trace = run_with_timeout(lambda: make_h264_trace(seconds=3.0 if quick else 10.0), 120)
        raw = [b for _, b in trace.packets]
        w = wl.receive_path_workload(raw)
        receive_pp, _ = run_with_timeout(lambda: wl.per_item(w, rounds), 60)
        paths["receive_us"] = receive_pp * 1e6
        progress(f"  {receive_pp * 1e6:.2f} µs")
        progress("send path per packet (packetize + serialize + protect)")
        w = wl.send_path_workload(tuple(f.data for f in trace.frames))
        send_pp, _ = run_with_timeout(lambda: wl.per_item(w, rounds), 60)
        paths["send_us"] = send_pp * 1e6
        progress(f"  {send_pp * 1e6:.2f} µs")
    except Exception as exc:
        skip("packet paths", str(exc))
    result["packet_path"] = paths

    # -- encode and decode per profile ------------------------------------------------
    names = profiles or [p.name for p in wl.CALL_PROFILES]
    secs = seconds if seconds is not None else (2.0 if quick else 5.0)
    budget = 4.0 if quick else 15.0
    runs: list[tuple[str, str]] = []
    for codec in encoders:
        presets = (("ultrafast",) if quick else PRESETS_FULL) if codec == "libx264" else ("default",)
        runs += [(codec, preset) for preset in presets]
    enc_rows: list[dict[str, Any]] = []
    dec_rows: dict[str, Any] = {}
    costs: list[rp.CallCost] = []
    for name in names:
        prof = wl.call_profile(name)
        count = max(2, round(secs * prof.fps))
        try:
            frames = run_with_timeout(lambda: wl.raw_frames(prof.width, prof.height, count, prof.fps, CAMERA_NOISE), 60)
        except Exception as exc:
            skip(f"{name} test pictures", str(exc))
            continue
        decode_cpu: float | None = None
        for codec, preset in runs:
            progress(f"encode {name} ({prof.width}x{prof.height}, {prof.bitrate // 1000} kbit/s) {codec} {preset}")
            units: list[Any]
            try:
                res, units = run_with_timeout(
                    lambda: wl.measure_encode(frames, prof, codec, "ultrafast" if preset == "default" else preset,
                                              budget),
                    budget + 30)
            except Exception as exc:
                res, units = wl.EncodeResult(codec, preset, name, error=f"not measured: {exc}"), []
            res.preset = preset
            row = {"codec": codec, "preset": preset, "profile": name, "width": prof.width, "height": prof.height,
                   "fps": prof.fps, "bitrate": prof.bitrate, "frames": res.frames, "realtime": res.realtime,
                   "cpu_per_second": res.cpu_per_second, "ms_per_frame_cpu": res.cpu_per_frame * 1e3,
                   "ms_per_frame_wall": res.wall_per_frame * 1e3, "latency_ms_mean": res.latency_mean * 1e3,
                   "latency_ms_p95": res.latency_p95 * 1e3, "error": res.error}
            enc_rows.append(row)
            if res.error:
                progress(f"  {res.error}")
                if res.error.startswith("not available") and codec in encoders:
                    unavailable.setdefault(codec, res.error)
            else:
                progress(f"  {'real time' if res.realtime else 'NOT real time'}: {res.cpu_per_frame * 1e3:.1f} ms CPU "
                         f"and {res.wall_per_frame * 1e3:.1f} ms wall per frame, {res.cpu_per_second:.3f} cores, "
                         f"latency {res.latency_mean * 1e3:.1f} ms")
            if decode_cpu is None and units:
                progress(f"decode {name}")
                try:
                    dcpu, dwall, n = run_with_timeout(lambda: wl.measure_decode(units, budget), budget + 30)
                    decode_cpu = dcpu
                    dec_rows[name] = {"ms_per_frame_cpu": dcpu * 1e3, "ms_per_frame_wall": dwall * 1e3,
                                      "frames": n, "cpu_per_second": dcpu * prof.fps}
                    progress(f"  {dcpu * 1e3:.2f} ms CPU per frame, {dcpu * prof.fps:.3f} cores")
                except Exception as exc:
                    skip(f"decode {name}", str(exc))
            costs.append(rp.call_cost(res, decode_cpu, send_pp, receive_pp, cores))
        del frames
    result["encode"] = enc_rows
    result["decode"] = dec_rows
    result["calls"] = [c.as_dict() for c in costs]
    if not encoders:
        skip("video encoding", "no H.264 encoder could be opened")

    # -- VISCA ----------------------------------------------------------------------
    if camera:
        progress(f"VISCA round trip ({camera})")
        try:
            rt = asyncio.run(wl.visca_round_trip(camera, count=10 if quick else 50, timeout=15.0))
            result["visca"] = {"port": camera, **{f"{k}_ms": val * 1e3 for k, val in rt.items() if k != "count"},
                               "count": int(rt["count"])}
            progress(f"  mean {rt['mean'] * 1e3:.1f} ms, p95 {rt['p95'] * 1e3:.1f} ms "
                     f"(wire time at 9600 baud {rt['wire'] * 1e3:.1f} ms)")
        except (TimeoutError, asyncio.TimeoutError):
            skip(f"VISCA round trip ({camera})", "the camera did not answer within 15 s")
        except Exception as exc:
            skip(f"VISCA round trip ({camera})", f"{type(exc).__name__}: {exc}")
    else:
        result["visca"] = None

    v = rp.verdict(costs)
    result["verdict"] = {"profile": v.profile, "codec": v.codec, "preset": v.preset, "share": v.share,
                         "headroom": v.headroom, "agent_calls": v.agent_calls,
                         "agent_calls_profile": v.agent_calls_profile, "text": v.text}
    return result


# -- printing ------------------------------------------------------------------------


def summary(result: dict[str, Any]) -> str:
    """The human report of a bench result (the table and the verdict)."""
    m = result.get("machine", {})
    lines = [f"machine: {m.get('cpu_model')}, {m.get('cores')} cores, "
             f"{(m.get('memory_bytes') or 0) / 2**30:.1f} GiB, Python {m.get('python')}, PyAV {m.get('pyav')}, "
             f"fast path {m.get('fast_path')}",
             f"encoders: {', '.join(m.get('encoders') or []) or 'none'}"]
    for k, why in (m.get("encoders_unavailable") or {}).items():
        lines.append(f"  {k}: not available: {why}")
    lines.append("")
    lines.append(f"{'profile':<8} {'encoder':<22} {'RT':<3} {'enc':>6} {'dec':>6} {'pkts':>6} "
                 f"{'share':>6} {'lat ms':>6} {'agent calls':>11}")
    for c in result.get("calls", []):
        if c.get("error"):
            lines.append(f"{c['profile']:<8} {c['codec'] + '/' + c['preset']:<22} {c['error']}")
            continue
        lines.append(
            f"{c['profile']:<8} {c['codec'] + '/' + c['preset']:<22} {'yes' if c['realtime'] else 'NO':<3} "
            f"{c['encode']:6.3f} {c['decode']:6.3f} {c['packets']:6.4f} {100 * c['share']:5.1f}% "
            f"{c['latency_mean'] * 1e3:6.1f} {c['agent_calls']:>11}")
    lines.append("(enc, dec, pkts: CPU cores per call; share: of the whole machine)")
    s = result.get("srtp", {})
    if s:
        parts = [f"{k[:-3].replace('_', ' ')} {val:.2f} µs" for k, val in s.items() if k.endswith("_us")]
        lines.append(f"SRTP {s.get('suite')} per {s.get('packet_bytes')}-byte packet: " + ", ".join(parts))
    p = result.get("packet_path", {})
    if p:
        lines.append(f"packet path per packet: send {p.get('send_us', float('nan')):.2f} µs, "
                     f"receive {p.get('receive_us', float('nan')):.2f} µs")
    if result.get("visca"):
        v = result["visca"]
        lines.append(f"VISCA round trip ({v['port']}): mean {v['mean_ms']:.1f} ms, p95 {v['p95_ms']:.1f} ms, "
                     f"wire time {v['wire_ms']:.1f} ms")
    for nm in result.get("not_measured", []):
        lines.append(f"not measured: {nm['what']}: {nm['why']}")
    lines.append("")
    lines.append("verdict: " + result.get("verdict", {}).get("text", "none"))
    return "\n".join(lines)


def _best_by_profile(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for c in result.get("calls", []):
        if c.get("error") or not c.get("realtime"):
            continue
        if c["profile"] not in best or c["cpu_per_second"] < best[c["profile"]]["cpu_per_second"]:
            best[c["profile"]] = c
    return best


def compare(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> str:
    """Two bench results side by side: machine facts, cheapest real-time call per profile, SRTP, verdict."""
    w = 34
    lines = [f"{'':<26} {names[0][:w]:<{w}} {names[1][:w]}"]

    def row(label: str, x: Any, y: Any) -> None:
        lines.append(f"{label:<26} {str(x)[:w]:<{w}} {str(y)[:w]}")

    ma, mb = a.get("machine", {}), b.get("machine", {})
    for key in ("cpu_model", "cores", "python", "pyav", "fast_path"):
        row(key, ma.get(key), mb.get(key))
    row("memory GiB", f"{(ma.get('memory_bytes') or 0) / 2**30:.1f}", f"{(mb.get('memory_bytes') or 0) / 2**30:.1f}")
    row("encoders", ", ".join(ma.get("encoders") or []), ", ".join(mb.get("encoders") or []))
    ba, bb = _best_by_profile(a), _best_by_profile(b)

    def cell(c: dict[str, Any] | None) -> str:
        if c is None:
            return "-"
        return f"{100 * c['share']:.1f}% {c['codec']}/{c['preset']} x{c['agent_calls']}"

    lines.append("call share (cheapest real-time encoder, xN = agent calls):")
    for p in wl.CALL_PROFILES:
        if p.name in ba or p.name in bb:
            row(f"  {p.name}", cell(ba.get(p.name)), cell(bb.get(p.name)))
    for key in ("vcore_protect_us", "vcore_unprotect_us", "pylibsrtp_protect_us", "pylibsrtp_unprotect_us"):
        x, y = a.get("srtp", {}).get(key), b.get("srtp", {}).get(key)
        row(f"SRTP {key[:-3]}", "-" if x is None else f"{x:.2f} µs", "-" if y is None else f"{y:.2f} µs")
    for key in ("send_us", "receive_us"):
        x, y = a.get("packet_path", {}).get(key), b.get("packet_path", {}).get(key)
        row(f"packet {key[:-3]}", "-" if x is None else f"{x:.2f} µs", "-" if y is None else f"{y:.2f} µs")
    va, vb = a.get("verdict", {}), b.get("verdict", {})
    row("best profile", va.get("profile") or "none", vb.get("profile") or "none")
    row("agent calls", f"{va.get('agent_calls')} x {va.get('agent_calls_profile')}",
        f"{vb.get('agent_calls')} x {vb.get('agent_calls_profile')}")
    return "\n".join(lines)


def plot(results: list[tuple[str, dict[str, Any]]], path: str) -> str | None:
    """Draw CPU share per profile (cheapest real-time encoder) for each result into ``path``.

    Returns None when done, else why not (matplotlib is the optional ``plot`` extra).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'vcore[plot]')"
    names = [p.name for p in wl.CALL_PROFILES]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(1, len(results))
    for i, (label, res) in enumerate(results):
        best = _best_by_profile(res)
        xs = [k + i * width for k in range(len(names))]
        ys = [100 * best[n]["share"] if n in best else 0.0 for n in names]
        ax.bar(xs, ys, width, label=label)
    ax.axhline(100 * (1 - rp.HEADROOM), color="red", linestyle="--", label="30% headroom limit")
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(names))], names)
    ax.set_ylabel("CPU share of one call (% of machine)")
    ax.set_title("vcore bench: encrypted call cost per profile")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


def main(argv: list[str] | None = None) -> int:
    """``vcore bench``; exit status 0: a profile is sustainable, 3: none is, 2: bad input (one ``error:`` line)."""
    from ..cli import fail, nonempty, output_file

    def names(text: str) -> list[str]:
        items = [n.strip() for n in text.split(",")]
        if not all(items):
            raise argparse.ArgumentTypeError(f"{text!r}: expected NAME[,NAME...] without empty names")
        return items

    p = argparse.ArgumentParser(prog="vcore bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short runs, libx264 ultrafast only (under a minute)")
    p.add_argument("--json", metavar="OUT", type=output_file(),
                   help="save the results (machine facts and measurements) as JSON")
    p.add_argument("--plot", metavar="OUT.png", type=output_file(".png", ".svg", ".pdf"),
                   help="draw CPU share per profile (needs matplotlib)")
    p.add_argument("--camera", metavar="PORT", type=nonempty,
                   help="VISCA round trip: serial device, HOST:PORT, or 'emulate'")
    p.add_argument("--profiles", type=names, help="comma-separated call profiles (default: all, e.g. 360p15,...,1080p30)")
    p.add_argument("--encoders", type=names, help="comma-separated H.264 encoders to try instead of probing")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                   help="two saved results side by side")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)

    if args.compare:
        loaded = []
        for path in args.compare:
            try:
                with open(path, encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError) as exc:
                return fail(f"cannot read {path}: {exc}")
            if not isinstance(data, dict) or data.get("schema") != rp.SCHEMA:
                return fail(f"{path} is not a vcore bench result ({rp.SCHEMA})")
            loaded.append(data)
        print(compare(loaded[0], loaded[1], (args.compare[0], args.compare[1])))
        if args.plot:
            why = plot(list(zip(args.compare, loaded)), args.plot)
            print(f"plot: {why}" if why else f"plot written to {args.plot}")
        return 0

    profiles = args.profiles
    if profiles:
        try:
            for name in profiles:
                wl.call_profile(name)
        except KeyError as exc:
            return fail(exc.args[0])
    progress = _Progress(sys.stdout, args.quiet)
    mode = "quick" if args.quick else "full"
    progress(f"vcore bench ({mode}): measuring this machine; one heavy process at a time please")
    result = run_bench(args.quick, args.camera, profiles=profiles,
                       encoders=args.encoders, progress=progress)
    print()
    print(summary(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
        print(f"results saved to {args.json}")
    if args.plot:
        why = plot([(result["machine"].get("hostname") or "this machine", result)], args.plot)
        print(f"plot: {why}" if why else f"plot written to {args.plot}")
    return 0 if result["verdict"]["profile"] else EXIT_NOT_SUSTAINABLE
