"""Echo cancellers side by side on the kiosk's emulated echo path (see benchmarks/aec_material.py).

    python benchmarks/bench_aec.py [--rates 16000,48000] [--ns-levels] [--json out.json]

For each sample rate and each path (linear; with the loudspeaker's soft
clipping): WebRTC AEC3 as two packages ship it (``webrtc``: livekit;
``pywebrtc``: pywebrtc-audio) and SpeexDSP, with echo cancellation, noise
suppression and the high-pass filter (WebRTC) on and the gain control off (a
gain stage moves the output level the ERLE is measured on; the rows
``webrtc+agc`` and ``pywebrtc+agc`` show the whole chain, ``-ns`` the
canceller without noise suppression; ``--ns-levels`` adds pywebrtc-audio's
four noise suppression levels, ``pywebrtc-ns0`` to ``-ns3``), and the
unprocessed microphone. Prints a Markdown
table: ERLE, convergence, re-convergence after a 30 ms delay jump, near-end
loss and STOI in double talk, CPU per 10 ms frame. Each chain runs twice, the
second time (a fresh instance) on the scene without the agent: the near-end
loss compares the two outputs. SpeexDSP, which has no delay estimator, is told
the path's delay (minus 10 ms); WebRTC is told nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.aec_material import Result, Scene, make_scene, measure, run, without_agent  # noqa: E402
from vcore.media.audio_processing import (  # noqa: E402
    AudioProcessingError,
    PyWebRtcProcessor,
    SpeexProcessor,
    WebRtcProcessor,
)

GOAL_LINEAR_DB = 30.0
GOAL_NONLINEAR_DB = 20.0


class _Passthrough:
    """No processing: the microphone as it is (the baseline row)."""

    def process_render(self, frame: np.ndarray) -> None:
        pass

    def process_capture(self, frame: np.ndarray) -> np.ndarray:
        return frame


def engines(rate: int, scene: Scene, ns_levels: bool = False) -> list[tuple[str, Callable[[], Any]]]:
    """The processors compared on ``scene``, as factories (each chain runs twice: with and without the agent)."""
    out: list[tuple[str, Callable[[], Any]]] = [("none", _Passthrough)]

    def speex() -> SpeexProcessor:
        p = SpeexProcessor(rate, auto_gain_control=False)
        p.set_delay(max(0, scene.delay_ms - 10))
        return p

    try:
        WebRtcProcessor(rate).close()
        out.append(("webrtc-ns", lambda: WebRtcProcessor(rate, noise_suppression=False, auto_gain_control=False)))
        out.append(("webrtc", lambda: WebRtcProcessor(rate, auto_gain_control=False)))
        out.append(("webrtc+agc", lambda: WebRtcProcessor(rate)))
    except AudioProcessingError as exc:
        print(f"# webrtc skipped: {exc}", file=sys.stderr)
    try:
        PyWebRtcProcessor(rate).close()
        out.append(("pywebrtc-ns", lambda: PyWebRtcProcessor(rate, noise_suppression=False, auto_gain_control=False)))
        if ns_levels:
            for level in range(4):
                out.append((f"pywebrtc-ns{level}", functools.partial(
                    PyWebRtcProcessor, rate, noise_suppression_level=level, auto_gain_control=False)))
        else:
            out.append(("pywebrtc", lambda: PyWebRtcProcessor(rate, auto_gain_control=False)))
        out.append(("pywebrtc+agc", lambda: PyWebRtcProcessor(rate)))
    except AudioProcessingError as exc:
        print(f"# pywebrtc skipped: {exc}", file=sys.stderr)
    try:
        speex().close()
        out.append(("speex", speex))
    except AudioProcessingError as exc:
        print(f"# speex skipped: {exc}", file=sys.stderr)
    return out


def _fmt_s(x: float) -> str:
    return "never" if x == float("inf") else f"{x:.2f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="16000,48000")
    ap.add_argument("--delay", type=int, default=80, help="echo path delay in ms (20-120)")
    ap.add_argument("--rt60", type=float, default=0.3, help="room reverberation time in s (0.15-0.4)")
    ap.add_argument("--echo-gain", type=float, default=10.0,
                    help="echo level at the microphone over the resident's voice, dB (default 10: one box)")
    ap.add_argument("--ns-levels", action="store_true",
                    help="pywebrtc-audio at each noise suppression level (0-3) instead of its default (1)")
    ap.add_argument("--engines", help="only these rows (comma-separated names, e.g. none,webrtc+agc,pywebrtc)")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}; "
          f"delay {args.delay} ms (+30 ms at 14 s), RT60 {args.rt60} s, noise 20 dB SNR, echo {args.echo_gain:+g} dB "
          "over the resident\n")
    print("| rate | path | engine | ERLE | converged | ERLE after change | re-converged | near-end loss in DT "
          "| STOI DT (mic) | CPU / 10 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for rate in (int(r) for r in args.rates.split(",")):
        for nonlinear in (False, True):
            scene = make_scene(rate, delay_ms=args.delay, rt60=args.rt60, nonlinear=nonlinear,
                               echo_gain_db=args.echo_gain)
            goal = GOAL_NONLINEAR_DB if nonlinear else GOAL_LINEAR_DB
            alone = without_agent(scene)
            for name, make in engines(rate, scene, args.ns_levels):
                if args.engines and name not in args.engines.split(","):
                    continue
                outs = []
                for sc in (alone, scene):
                    proc = make()
                    outs.append(run(proc, sc))
                    if hasattr(proc, "close"):
                        proc.close()
                (out_alone, _), (out, cpu) = outs
                res: Result = measure(name, scene, out, cpu, goal, out_alone)
                path = "soft clip" if nonlinear else "linear"
                stoi = ("-" if res.stoi_double_talk is None
                        else f"{res.stoi_double_talk:.2f} ({res.stoi_unprocessed:.2f})")
                print(f"| {rate // 1000} kHz | {path} | {name} | {res.erle_db:.1f} dB | {_fmt_s(res.converge_s)} "
                      f"| {res.erle_after_change_db:.1f} dB | {_fmt_s(res.reconverge_s)} "
                      f"| {res.near_attenuation_db:.1f} dB | {stoi} "
                      f"| {res.cpu_us:.0f} µs ({res.cpu_percent:.1f} %) |", flush=True)
                row = dataclasses.asdict(res)
                row.update(rate=rate, path=path, speech=scene.speech_source, goal_db=goal)
                rows.append(row)
    print(f"\nspeech: {rows[0]['speech'] if rows else '-'}; ERLE goal {GOAL_LINEAR_DB:g} dB linear, "
          f"{GOAL_NONLINEAR_DB:g} dB soft clip; converged: every later 250 ms window holds the goal")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
