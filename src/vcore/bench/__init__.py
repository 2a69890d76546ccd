"""Measurements shared by ``benchmarks/`` (pytest-benchmark) and the ``vcore bench`` command.

Each ``Workload`` is built once (inputs prepared outside the timed region) and
``run()`` does one unit of timed work, returning how many items (packets,
samples, frames) it processed, so that any harness can report per-item costs.
"""

from __future__ import annotations

from .workloads import (
    Workload,
    g711_workload,
    h264_clip,
    rtp_packet_workload,
    rtp_packet_workload_aiortc,
    h264_rtp_workload,
    h264_rtp_workload_aiortc,
)

__all__ = [
    "Workload",
    "g711_workload",
    "h264_clip",
    "rtp_packet_workload",
    "rtp_packet_workload_aiortc",
    "h264_rtp_workload",
    "h264_rtp_workload_aiortc",
]
