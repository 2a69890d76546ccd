"""Benchmark fixtures: the twins and the shared 720p clip."""

from __future__ import annotations

import os
from types import ModuleType

import pytest

from vcore._speedups import load_twin
from vcore.bench import h264_clip


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--clip-seconds", type=float, default=3.0, help="length of the 720p benchmark clip")


@pytest.fixture(scope="session")
def clip720(request: pytest.FixtureRequest) -> tuple[bytes, ...]:
    return h264_clip(1280, 720, 30, 1_500_000, request.config.getoption("--clip-seconds"))


@pytest.fixture(params=["c", "py"])
def fp(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "c" and os.environ.get("VCORE_NO_EXTENSIONS"):
        pytest.skip("compiled twin disabled")
    return load_twin("_fastpath", request.param)


def report(benchmark: object, items: int, unit: str, nbytes: int = 0) -> None:
    """Attach per-item numbers to the benchmark's extra_info (shown with --benchmark-verbose / json)."""
    stats = benchmark.stats.stats  # type: ignore[attr-defined]
    per = stats.mean / items
    benchmark.extra_info[f"us_per_{unit}"] = round(per * 1e6, 4)  # type: ignore[attr-defined]
    if nbytes:
        benchmark.extra_info["payload_MBps"] = round(nbytes / stats.mean / 1e6, 1)  # type: ignore[attr-defined]
