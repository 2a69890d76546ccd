"""Wire compatibility: the PyPI ``visca-over-ip`` library drives our CameraEmulator over UDP.

The library binds its inquiry socket to the camera's port on every local address, so the
emulator listens on 127.0.0.2 (SO_REUSEADDR) and the library binds 0.0.0.0 on the same port.
Its calls block: they run in a worker thread while the emulator runs on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from vcore.visca import CameraEmulator, ViscaCamera

visca_over_ip = pytest.importorskip("visca_over_ip", reason="visca-over-ip is not installed (pip install vcore[test])")

pytestmark = pytest.mark.interop
T = TypeVar("T")
HOST = "127.0.0.2"


def _run_with_peer(scenario: Callable[[Any, CameraEmulator], None], speed: float = 100.0) -> None:
    async def body() -> None:
        emu = CameraEmulator(speed_factor=speed)
        port = await emu.start_udp(HOST, 0)
        try:
            peer = await asyncio.to_thread(visca_over_ip.Camera, HOST, port)
            try:
                await asyncio.to_thread(scenario, peer, emu)
            finally:
                peer.close_connection()
        finally:
            await emu.stop()

    asyncio.run(asyncio.wait_for(body(), 60))


def _wait(check: Callable[[], bool]) -> None:
    import time

    for _ in range(200):
        if check():
            return
        time.sleep(0.01)
    raise AssertionError("condition never became true")


def test_peer_moves_and_reads_back() -> None:
    def scenario(cam: Any, emu: CameraEmulator) -> None:
        cam.set_power(True)
        cam.pantilt(pan_speed=16, tilt_speed=16, pan_position=-500, tilt_position=300)
        _wait(lambda: cam.get_pantilt_position() == (-500, 300))
        cam.zoom_to(0.5)
        _wait(lambda: cam.get_zoom_position() == 0x2000)
        cam.save_preset(4)
        cam.pantilt_home()
        _wait(lambda: cam.get_pantilt_position() == (0, 0))
        cam.recall_preset(4)
        _wait(lambda: cam.get_pantilt_position() == (-500, 300))
        assert cam.get_focus_mode() == "auto"
        cam.set_focus_mode("manual")
        assert cam.get_focus_mode() == "manual"
        cam.manual_focus(3)
        cam.manual_focus(0)
        cam.white_balance_mode("outdoor")
        cam.backlight(True)
        cam.autoexposure_mode("iris priority")
        cam.zoom(7)
        cam.zoom(0)
        cam.pantilt(pan_speed=-5, tilt_speed=0)  # continuous pan right
        cam.pantilt(pan_speed=0, tilt_speed=0)
        cam.pantilt_reset()
        assert emu.camera.white_balance == 2
        assert emu.camera.backlight == 2
        assert emu.camera.exposure_mode == 0xB
        assert emu.camera.focus_mode == 3

    _run_with_peer(scenario)


def test_peer_sees_error_replies() -> None:
    ViscaException = visca_over_ip.exceptions.ViscaException

    def scenario(cam: Any, emu: CameraEmulator) -> None:
        with pytest.raises(ViscaException) as info:
            cam.manual_focus(3)  # manual focus commands in auto focus mode
        assert info.value.status_code == 0x41
        with pytest.raises(ViscaException) as info:
            cam._send_command("04 77 01")  # no such command
        assert info.value.status_code == 0x02
        assert cam.get_focus_mode() == "auto"  # still fine

    _run_with_peer(scenario)


def test_ours_and_peer_share_the_camera() -> None:
    """Our client and the library talk to the same emulated camera and see the same state."""

    async def body() -> None:
        emu = CameraEmulator(speed_factor=100)
        port = await emu.start_udp(HOST, 0)
        try:
            peer = await asyncio.to_thread(visca_over_ip.Camera, HOST, port)
            ours = await ViscaCamera.open_ip(HOST, port, reply_timeout=0.5)
            try:
                await ours.pan_tilt_to(321, -123)
                assert await asyncio.to_thread(peer.get_pantilt_position) == (321, -123)
                await asyncio.to_thread(peer.zoom_to, 0.25)
                for _ in range(100):
                    if await ours.zoom_position() == 0x1000:
                        break
                    await asyncio.sleep(0.01)
                assert await ours.zoom_position() == 0x1000
            finally:
                await ours.close()
                peer.close_connection()
        finally:
            await emu.stop()

    asyncio.run(asyncio.wait_for(body(), 60))
