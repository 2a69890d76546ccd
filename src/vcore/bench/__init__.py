"""Measurements shared by ``benchmarks/`` (pytest-benchmark) and the ``vcore bench`` command.

``vcore bench`` (:mod:`vcore.bench.cli`) runs these measurements on the machine at hand and
draws its verdict with :mod:`vcore.bench.report`; see ``docs/bench.md``.

Each ``Workload`` is built once (inputs prepared outside the timed region) and
``run()`` does one unit of timed work, returning how many items (packets,
samples, frames) it processed, so that any harness can report per-item costs.
"""

from __future__ import annotations

from .workloads import (
    CALL_PROFILES,
    EncodeResult,
    VideoProfile,
    Workload,
    call_profile,
    g711_workload,
    h264_clip,
    h264_rtp_workload,
    h264_rtp_workload_aiortc,
    h264_wire_workload,
    h264_wire_workload_aiortc,
    jitter_workload,
    measure_decode,
    measure_encode,
    per_item,
    receive_path_workload,
    rtp_packet_workload,
    rtp_packet_workload_aiortc,
    send_path_workload,
    srtp_workload,
    visca_round_trip,
)

__all__ = [
    "CALL_PROFILES",
    "EncodeResult",
    "VideoProfile",
    "call_profile",
    "jitter_workload",
    "measure_decode",
    "measure_encode",
    "per_item",
    "receive_path_workload",
    "send_path_workload",
    "srtp_workload",
    "visca_round_trip",
    "Workload",
    "g711_workload",
    "h264_clip",
    "rtp_packet_workload",
    "rtp_packet_workload_aiortc",
    "h264_rtp_workload",
    "h264_rtp_workload_aiortc",
    "h264_wire_workload",
    "h264_wire_workload_aiortc",
]
