"""Foundation benchmarks (issue: RTP, H.264 over RTP, G.711), side by side with aiortc and FFmpeg.

Run: python -m pytest benchmarks/bench_rtp.py --benchmark-only --benchmark-columns=mean,stddev,rounds
"""

from __future__ import annotations

from types import ModuleType

import pytest

from vcore.bench import (
    g711_workload,
    h264_rtp_workload,
    h264_rtp_workload_aiortc,
    h264_wire_workload,
    h264_wire_workload_aiortc,
    rtp_packet_workload,
    rtp_packet_workload_aiortc,
)

from .conftest import report


@pytest.mark.benchmark(group="h264-rtp-roundtrip")
def test_h264_rtp_vcore(benchmark: object, fp: ModuleType, clip720: tuple[bytes, ...]) -> None:
    w = h264_rtp_workload(fp, clip720)
    benchmark(w.run)  # type: ignore[operator]
    report(benchmark, w.items, w.unit, w.nbytes)


@pytest.mark.benchmark(group="h264-rtp-roundtrip")
def test_h264_rtp_aiortc(benchmark: object, clip720: tuple[bytes, ...]) -> None:
    pytest.importorskip("aiortc")
    w = h264_rtp_workload_aiortc(clip720)
    benchmark(w.run)  # type: ignore[operator]
    report(benchmark, w.items, w.unit, w.nbytes)


@pytest.mark.benchmark(group="h264-wire-roundtrip")
def test_h264_wire_vcore(benchmark: object, fp: ModuleType, clip720: tuple[bytes, ...]) -> None:
    """Packetize, serialize, parse, depacketize: what a packet that crosses the network costs."""
    w = h264_wire_workload(fp, clip720)
    benchmark(w.run)  # type: ignore[operator]
    report(benchmark, w.items, w.unit, w.nbytes)


@pytest.mark.benchmark(group="h264-wire-roundtrip")
def test_h264_wire_aiortc(benchmark: object, clip720: tuple[bytes, ...]) -> None:
    pytest.importorskip("aiortc")
    w = h264_wire_workload_aiortc(clip720)
    benchmark(w.run)  # type: ignore[operator]
    report(benchmark, w.items, w.unit, w.nbytes)


@pytest.mark.benchmark(group="rtp-parse-serialize")
def test_rtp_packet_vcore(benchmark: object, fp: ModuleType, clip720: tuple[bytes, ...]) -> None:
    w = rtp_packet_workload(fp, clip720)
    benchmark(w.run)  # type: ignore[operator]
    report(benchmark, w.items, w.unit)


@pytest.mark.benchmark(group="rtp-parse-serialize")
def test_rtp_packet_aiortc(benchmark: object, fp: ModuleType, clip720: tuple[bytes, ...]) -> None:
    pytest.importorskip("aiortc")
    if not fp.__name__.endswith("_py"):
        pytest.skip("one aiortc run is enough")
    w = rtp_packet_workload_aiortc(fp, clip720)
    benchmark(w.run)  # type: ignore[operator]
    report(benchmark, w.items, w.unit)


@pytest.mark.parametrize("direction", ["encode", "decode"])
@pytest.mark.benchmark(group="g711")
def test_g711_vcore(benchmark: object, fp: ModuleType, direction: str) -> None:
    w = g711_workload(fp, direction)
    benchmark(w.run)  # type: ignore[operator]
    report(benchmark, w.items, w.unit)


@pytest.mark.parametrize("direction", ["encode", "decode"])
@pytest.mark.benchmark(group="g711")
def test_g711_ffmpeg(benchmark: object, direction: str) -> None:
    w = g711_workload(None, direction)
    benchmark(w.run)  # type: ignore[operator]
    report(benchmark, w.items, w.unit)
