"""VISCA benchmarks: command round trip on the emulator against the wire time, both twins.

    python -m pytest benchmarks/bench_visca.py --benchmark-only

- ``test_pty_round_trip``: ViscaCamera -> pty -> CameraEmulator at 9600 baud (the emulator
  delays every message by bytes x 10 / baud). ``extra_info`` holds the wire time and the
  ratio mean / wire time (goal: within 1.5x).
- ``test_udp_inquiry``: one inquiry over VISCA-over-IP on loopback, ours and the
  ``visca-over-ip`` library (the emulator runs in its own thread and loop for both).
- ``test_framer_throughput``: the per-byte framer on 1000 messages, compiled and Python.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from vcore._speedups import load_twin
from vcore.visca import CameraEmulator, ViscaCamera
from vcore.visca import camera as camera_mod
from vcore.visca import emulator as emulator_mod
from vcore.visca import protocol as protocol_mod
from vcore.visca import transport as transport_mod
from vcore.visca.transport import wire_time

TWINS = ["py"] if os.environ.get("VCORE_NO_EXTENSIONS") else ["c", "py"]
BAUD = 9600


@pytest.fixture(params=TWINS)
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    k = load_twin("_fastpath_visca", request.param)
    for mod in (transport_mod, emulator_mod, protocol_mod):
        monkeypatch.setattr(mod, "_k", k)
    return k


# name, coroutine factory, bytes on the wire (command + replies)
CASES = {
    # 81 09 04 00 FF -> 90 50 02 FF
    "power_inquiry": (lambda cam: cam.power_state(), 5 + 4),
    # 81 09 06 12 FF -> 90 50 0p0p0p0p 0t0t0t0t FF
    "pan_tilt_inquiry": (lambda cam: cam.pan_tilt_position(), 5 + 11),
    # 81 01 04 47 0p0q0r0s FF -> 90 41 FF, 90 51 FF (already there: completes at once)
    "zoom_to_command": (lambda cam: cam.zoom_to(0), 9 + 3 + 3),
    # 81 01 04 3F 01 03 FF -> 90 41 FF, 90 51 FF
    "preset_set_command": (lambda cam: cam.preset_set(3), 7 + 3 + 3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_pty_round_trip(benchmark: Any, kernel: Any, case: str) -> None:
    make, nbytes = CASES[case]
    loop = asyncio.new_event_loop()
    emu = CameraEmulator(baudrate=BAUD, speed_factor=1000)
    path = loop.run_until_complete(emu.start_serial(BAUD))
    cam = loop.run_until_complete(ViscaCamera.open_serial(path, baudrate=BAUD))
    try:
        loop.run_until_complete(make(cam))  # warm up
        benchmark.pedantic(lambda: loop.run_until_complete(make(cam)), rounds=60, iterations=1)
        wire = wire_time(nbytes, BAUD)
        benchmark.extra_info["wire_time_ms"] = round(wire * 1e3, 3)
        benchmark.extra_info["bytes"] = nbytes
        benchmark.extra_info["ratio_to_wire"] = round(benchmark.stats.stats.mean / wire, 3)
    finally:
        loop.run_until_complete(cam.close())
        loop.run_until_complete(emu.stop())
        loop.close()


class _EmulatorThread:
    """The emulator on its own event loop in a thread (so blocking peers can be measured)."""

    def __init__(self, host: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.emu = CameraEmulator(speed_factor=1000)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.emu.start_udp(host, 0), self.loop).result(5)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.emu.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def udp_emulator() -> Iterator[_EmulatorThread]:
    # 127.0.0.2: the visca-over-ip library binds the camera's port on every local address
    emu = _EmulatorThread("127.0.0.2")
    try:
        yield emu
    finally:
        emu.close()


@pytest.mark.parametrize("client", ["vcore", "visca-over-ip"])
def test_udp_inquiry(benchmark: Any, udp_emulator: _EmulatorThread, client: str) -> None:
    if client == "vcore":
        loop = asyncio.new_event_loop()
        cam = loop.run_until_complete(ViscaCamera.open_ip("127.0.0.2", udp_emulator.port))
        try:
            benchmark.pedantic(lambda: loop.run_until_complete(cam.zoom_position()), rounds=200, iterations=1)
        finally:
            loop.run_until_complete(cam.close())
            loop.close()
    else:
        visca_over_ip = pytest.importorskip("visca_over_ip")
        peer = visca_over_ip.Camera("127.0.0.2", udp_emulator.port)
        try:
            benchmark.pedantic(peer.get_zoom_position, rounds=200, iterations=1)
        finally:
            peer.close_connection()


def test_framer_throughput(benchmark: Any, kernel: Any) -> None:
    stream = b"".join(
        camera_mod.p.encode_completion(1, 0, bytes([0, 0, i & 0xF, 0])) + b"\x90\x41\xff" for i in range(500)
    )

    def feed() -> int:
        return len(kernel.ViscaFramer().feed(stream))

    assert benchmark(feed) == 1000
