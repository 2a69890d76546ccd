"""Cost per packet of the video jitter buffer: vcore's twins vs aiortc's ``JitterBuffer``.

Run: ``python -m pytest benchmarks/bench_jitter.py --benchmark-only --benchmark-columns=min,median,mean``
(``--benchmark-verbose`` or ``--benchmark-json`` show ``us_per_packet``).

Each round feeds the 10 s 720p trace (1347 packets, in order, 1 ms apart) through a
fresh buffer: vcore does ``push`` + ``pop`` for every packet (frames come out whole,
depacketized to Annex B by the H.264 depacketizer); aiortc does ``add`` for every
packet with ``_data`` already depayloaded (as its receiver does before ``add``), and,
in ``aiortc-depayload+add``, ``h264_depayload`` + ``add`` (the work its receiver does
per packet). Divide the time by 1347 for the cost per packet. The quality
comparison lives in ``benchmarks/jitter_quality.py``.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from vcore._speedups import load_twin
from vcore.bench.workloads import jitter_workload, receive_path_workload
from vcore.testing.trace import make_h264_trace

from .conftest import report

TRACE = make_h264_trace()
RAW = [b for _, b in TRACE.packets]
N = len(RAW)


def _vcore(twin: str) -> Callable[[], int]:
    try:
        jk = load_twin("_fastpath_jitter", twin)  # type: ignore[arg-type]
        fp = load_twin("_fastpath", twin)  # type: ignore[arg-type]
    except ImportError:
        pytest.skip("compiled twin not built")
    return jitter_workload(jk, fp, RAW).run  # the measurement `vcore bench` uses too


def _aiortc(depayload: bool) -> Callable[[], int]:
    aiortc_jb = pytest.importorskip("aiortc.jitterbuffer")
    from aiortc.codecs.h264 import h264_depayload
    from aiortc.rtp import RtpPacket as AiortcPacket

    packets: list[Any] = []
    for b in RAW:
        p = AiortcPacket.parse(b)
        p._data = h264_depayload(p.payload)
        packets.append(p)

    def run() -> int:
        jb = aiortc_jb.JitterBuffer(capacity=128, is_video=True)
        add = jb.add
        out = 0
        if depayload:
            for p in packets:
                p._data = h264_depayload(p.payload)
                if add(p)[1] is not None:
                    out += 1
        else:
            for p in packets:
                if add(p)[1] is not None:
                    out += 1
        return out

    return run


@pytest.mark.benchmark(group="video-jitter-buffer")
@pytest.mark.parametrize("impl", ["vcore-c", "vcore-py", "aiortc-add", "aiortc-depayload+add"])
def test_video_jitter_cost(benchmark: Any, impl: str) -> None:
    if impl.startswith("vcore"):
        run = _vcore(impl.split("-")[1])
    else:
        run = _aiortc(depayload=impl == "aiortc-depayload+add")
    frames = benchmark.pedantic(run, rounds=30 if impl != "vcore-py" else 5, iterations=1, warmup_rounds=1)
    assert frames >= len(TRACE.frames) - 1
    report(benchmark, N, "packet")


@pytest.mark.benchmark(group="receive-path")
def test_receive_path_cost(benchmark: Any) -> None:
    """unprotect + parse + jitter push/pop + depacketize per packet: ``vcore bench``'s receive path."""
    w = receive_path_workload(RAW)

    def setup() -> None:
        assert w.prepare is not None
        w.prepare()

    benchmark.pedantic(w.run, setup=setup, rounds=20, iterations=1)
    report(benchmark, w.items, "packet")
