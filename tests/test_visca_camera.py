"""ViscaCamera against the CameraEmulator over a real pty and real UDP, with faults."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcore._speedups import fastpath_visca as k
from vcore.visca import (
    CameraBufferFull,
    CameraCancelled,
    CameraConnectionError,
    CameraEmulator,
    CameraError,
    CameraNotExecutable,
    CameraSyntaxError,
    CameraTimeout,
    CameraValueError,
    ViscaCamera,
)
from vcore.visca import protocol as p
from vcore.visca.cli import main as cli_main

T = TypeVar("T")
FAST = 200.0  # motion speed factor for tests


def run(coro: Awaitable[T], timeout: float = 30.0) -> T:
    """Run one test coroutine; afterwards nothing of ours may be left running."""

    async def wrapper() -> T:
        result = await asyncio.wait_for(coro, timeout)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not left, f"tasks left running: {left}"
        return result

    return asyncio.run(wrapper())


@asynccontextmanager
async def rig(kind: str, *, speed: float = FAST, **cam_kw: Any) -> AsyncIterator[tuple[CameraEmulator, ViscaCamera]]:
    emu = CameraEmulator(speed_factor=speed)
    cam_kw.setdefault("reply_timeout", 0.5)
    try:
        if kind == "serial":
            path = await emu.start_serial(9600)
            cam = await ViscaCamera.open_serial(path, baudrate=9600, **cam_kw)
        else:
            port = await emu.start_udp("127.0.0.1", 0)
            cam = await ViscaCamera.open_ip("127.0.0.1", port, **cam_kw)
        try:
            yield emu, cam
        finally:
            await cam.close()
    finally:
        await emu.stop()


KINDS = ["serial", "udp"]


async def eventually(check: Callable[[], Awaitable[bool]], tries: int = 200) -> None:
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


# ------------------------------------------------------------------ the public API


@pytest.mark.parametrize("kind", KINDS)
def test_public_api_end_to_end(kind: str) -> None:
    async def body() -> None:
        async with rig(kind) as (emu, cam):
            await cam.power(True)
            assert await cam.power_state() is True
            await cam.zoom_to(0x2000)
            assert await cam.zoom_position() == 0x2000
            await cam.pan_tilt_to(-400, 200, pan_speed=0x10, tilt_speed=0x10)
            assert await cam.pan_tilt_position() == (-400, 200)
            await cam.preset_set(3)  # "document on the desk"
            await cam.home()
            assert await cam.pan_tilt_position() == (0, 0)
            await cam.zoom_to(0)
            await cam.preset_recall(3)
            assert await cam.pan_tilt_position() == (-400, 200)
            assert await cam.zoom_position() == 0x2000
            await cam.preset_reset(3)
            await cam.preset_recall(3)  # an empty preset is the factory position
            assert await cam.pan_tilt_position() == (0, 0)
            await cam.pan_tilt_by(100, -50)
            assert await cam.pan_tilt_position() == (100, -50)
            v = await cam.version()
            assert (v.vendor, v.max_socket) == (1, 2)
            await cam.power(False)
            assert await cam.power_state() is False
            assert emu.camera.power is False

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_focus_exposure_white_balance(kind: str) -> None:
    async def body() -> None:
        async with rig(kind) as (emu, cam):
            assert await cam.focus_mode() == "auto"
            with pytest.raises(CameraNotExecutable):  # manual focus during auto focus
                await cam.focus_to(0x8000)
            await cam.focus_manual()
            assert await cam.focus_mode() == "manual"
            await cam.focus_to(0x8000)
            assert await cam.focus_position() == 0x8000
            await cam.focus_near(5)
            await cam.focus_stop()
            await cam.focus_far()
            await cam.focus_stop()
            await cam.focus_one_push()
            await cam.focus_auto()
            await cam.white_balance("outdoor")
            assert await cam.white_balance_mode() == "outdoor"
            with pytest.raises(CameraNotExecutable):
                await cam.white_balance_trigger()  # only in one-push mode
            await cam.white_balance("one_push")
            await cam.white_balance_trigger()
            await cam.exposure_mode("iris")
            assert await cam.exposure_mode_state() == "iris"
            await cam.backlight(True)
            assert await cam.backlight_state() is True
            await cam.command("iris_direct", value=5)
            assert emu.camera.registers["iris_direct"] == 5
            with pytest.raises(CameraValueError):
                await cam.white_balance("sunset")

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_directional_moves_and_limits(kind: str) -> None:
    async def body() -> None:
        async with rig(kind, speed=20) as (emu, cam):
            await cam.pan_tilt("right", pan_speed=0x18, tilt_speed=1)
            await eventually(lambda: _pan_above(cam, 50))
            await cam.pan_tilt_stop()
            pan1, _ = await cam.pan_tilt_position()
            assert pan1 > 50
            await asyncio.sleep(0.05)
            assert (await cam.pan_tilt_position())[0] == pan1  # stopped
            await cam.pan_tilt_limit_set("up_right", 300, 300)
            await cam.pan_tilt_to(2000, 1000)
            assert await cam.pan_tilt_position() == (300, 300)
            await cam.pan_tilt_limit_clear("up_right")
            await cam.pan_tilt_to(1000, 400)
            assert await cam.pan_tilt_position() == (1000, 400)
            await cam.zoom_tele(7)
            await eventually(lambda: _zoom_above(cam, 0))
            await cam.zoom_stop()
            await cam.zoom_wide()
            await cam.zoom_stop()
            await cam.pan_tilt_reset()
            assert await cam.pan_tilt_position() == (0, 0)

    run(body())


async def _pan_above(cam: ViscaCamera, value: int) -> bool:
    return (await cam.pan_tilt_position())[0] > value


async def _zoom_above(cam: ViscaCamera, value: int) -> bool:
    return await cam.zoom_position() > value


@pytest.mark.parametrize("kind", KINDS)
def test_motion_takes_time_and_inquiries_answer_meanwhile(kind: str) -> None:
    async def body() -> None:
        async with rig(kind, speed=4) as (emu, cam):  # a full zoom takes 0.5 s
            zoom = asyncio.create_task(cam.zoom_to(0x4000))
            pan = asyncio.create_task(cam.pan_tilt_to(1200, 0, pan_speed=0x18))
            seen = set()
            while not zoom.done():
                seen.add(await cam.zoom_position())  # answered while both sockets are busy
                await asyncio.sleep(0.02)
            await zoom
            await pan
            assert any(0 < z < 0x4000 for z in seen)  # it moved through intermediate positions
            assert await cam.zoom_position() == 0x4000
            assert await cam.pan_tilt_position() == (1200, 0)
            assert cam.busy_sockets == ()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_superseded_and_cancelled_commands(kind: str) -> None:
    async def body() -> None:
        async with rig(kind, speed=2) as (emu, cam):
            first = asyncio.create_task(cam.pan_tilt_to(2000, 0, pan_speed=1))
            await eventually(lambda: _busy(cam, 1))
            await cam.pan_tilt_to(10, 10, pan_speed=0x18, tilt_speed=0x17)  # supersedes
            with pytest.raises(CameraCancelled):
                await first
            assert await cam.pan_tilt_position() == (10, 10)
            # explicit command cancel
            slow = asyncio.create_task(cam.zoom_to(0x4000, timeout=10))
            await eventually(lambda: _busy(cam, 1))
            (sock,) = cam.busy_sockets
            assert await cam.cancel(sock) is True
            with pytest.raises(CameraCancelled):
                await slow
            z = await cam.zoom_position()
            assert 0 <= z < 0x4000
            assert await cam.cancel(2) is False  # empty socket: error 05
            # cancelling the awaiting task cancels the command on the camera
            slow = asyncio.create_task(cam.zoom_to(0, timeout=10))
            await eventually(lambda: _busy(cam, 1))
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            await eventually(lambda: _emu_idle(emu))
            await cam.zoom_to(0x100)  # still usable
            assert await cam.zoom_position() == 0x100

    run(body())


async def _busy(cam: ViscaCamera, n: int) -> bool:
    return len(cam.busy_sockets) == n


async def _emu_idle(emu: CameraEmulator) -> bool:
    return not emu.camera.sockets


@pytest.mark.parametrize("kind", KINDS)
def test_completion_timeout_cancels_on_camera(kind: str) -> None:
    async def body() -> None:
        async with rig(kind, speed=0.5) as (emu, cam):
            with pytest.raises(CameraTimeout):
                await cam.zoom_to(0x4000, timeout=0.1)  # takes 4 s here
            await eventually(lambda: _emu_idle(emu))
            assert cam.busy_sockets == ()
            assert await cam.power_state() is True

    run(body())


# ------------------------------------------------------------------ error replies


@pytest.mark.parametrize("kind", KINDS)
def test_error_replies_leave_camera_usable(kind: str) -> None:
    async def body() -> None:
        async with rig(kind) as (emu, cam):
            with pytest.raises(CameraSyntaxError):
                await cam.execute(b"\x81\x01\x04\x77\x01\xff")  # no such command
            with pytest.raises(CameraSyntaxError):
                await cam.execute(b"\x81\x01\x04\x3f\x02\x7f\x7f\xff")  # wrong length
            assert await cam.power_state() is True
            await cam.power(False)
            with pytest.raises(CameraNotExecutable):
                await cam.zoom_to(0x1000)
            await cam.power(True)  # takes 2 s / speed factor
            await cam.zoom_to(0x1000)
            assert await cam.zoom_position() == 0x1000
            with pytest.raises(CameraValueError):
                await cam.preset_recall(200)
            with pytest.raises(CameraValueError):
                await cam.inquire("zoom_direct")

    run(body())


def test_buffer_full_with_two_controllers_over_ip() -> None:
    async def body() -> None:
        async with rig("udp", speed=1) as (emu, cam):
            other = await ViscaCamera.open_ip("127.0.0.1", emu.udp_port or 0, reply_timeout=0.5)
            try:
                a = asyncio.create_task(cam.zoom_to(0x4000, timeout=10))
                b = asyncio.create_task(cam.pan_tilt_to(2000, 500, pan_speed=1, tilt_speed=1, timeout=20))
                await eventually(lambda: _busy(cam, 2))
                with pytest.raises(CameraBufferFull):
                    await other.focus_auto()
                assert await other.power_state() is True  # inquiries still answered
                a.cancel()
                b.cancel()
                for t in (a, b):
                    with pytest.raises(asyncio.CancelledError):
                        await t
                await eventually(lambda: _emu_idle(emu))
                await other.focus_auto()  # usable once a socket is free
            finally:
                await other.close()

    run(body())


# ------------------------------------------------------------------ raw wire behaviour of the emulator


def test_emulator_raw_serial_replies() -> None:
    """Exact bytes a Sony camera sends, checked with a bare pty client (no ViscaCamera)."""

    async def body() -> None:
        emu = CameraEmulator(speed_factor=1)
        path = await emu.start_serial()
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        framer = k.ViscaFramer()
        loop = asyncio.get_running_loop()

        async def ask(msg: bytes, n: int) -> list[str]:
            os.write(fd, msg)
            got: list[bytes] = []
            while len(got) < n:
                data = await loop.run_in_executor(None, os.read, fd, 64)
                got += framer.feed(data)
            return [m.hex(" ") for m in got]

        try:
            assert await ask(b"\x81\x01\x04\x47\x04\x00\x00\x00\xff", 1) == ["90 41 ff"]
            assert await ask(b"\x81\x01\x06\x02\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\xff", 1) == ["90 42 ff"]
            assert await ask(b"\x81\x01\x04\x38\x03\xff", 1) == ["90 60 03 ff"]  # buffer full
            assert await ask(b"\x81\x09\x04\x00\xff", 1) == ["90 50 02 ff"]  # inquiry meanwhile
            assert await ask(b"\x81\x22\xff", 1) == ["90 62 04 ff"]  # cancel socket 2
            assert await ask(b"\x81\x22\xff", 1) == ["90 62 05 ff"]  # nothing there now
            assert await ask(b"\x81\x01\x99\x01\xff", 1) == ["90 60 02 ff"]  # syntax
            assert await ask(b"\x81" + b"\x01" * 16 + b"\xff", 1) == ["90 60 01 ff"]  # 18 bytes: length
            assert await ask(b"\x81\x01\x04\x48\x01\x00\x00\x00\xff", 1) == ["90 60 41 ff"]  # AF on
            assert await ask(b"\x88\x01\x00\x01\xff", 1) == ["88 01 00 01 ff"]  # IF_Clear broadcast
            assert await ask(b"\x88\x30\x01\xff", 1) == ["88 30 02 ff"]  # one camera
            assert await ask(b"\x83\x09\x04\x00\xff", 1) == ["83 09 04 00 ff"]  # nobody at 3
            assert await ask(b"\x81\x01\x00\x01\xff", 1) == ["90 50 ff"]  # IF_Clear addressed
            assert await ask(b"\x12\x34\xff\x81\x09\x04\x00\xff", 1) == ["90 50 02 ff"]
            assert emu.garbage_bytes == 3
        finally:
            os.close(fd)
            await emu.stop()

    run(body())


def test_emulator_raw_udp_replies() -> None:
    async def body() -> None:
        emu = CameraEmulator(speed_factor=FAST)
        port = await emu.start_udp()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(2)
        sock.connect(("127.0.0.1", port))
        loop = asyncio.get_running_loop()

        async def ask(ptype: int, seq: int, payload: bytes, n: int = 1) -> list[str]:
            sock.send(k.pack_ip_header(ptype, len(payload), seq) + payload)
            return [(await loop.run_in_executor(None, sock.recv, 64)).hex(" ") for _ in range(n)]

        try:
            assert await ask(0x0200, 1, b"\x01") == ["02 01 00 01 00 00 00 01 01"]
            assert await ask(0x0110, 5, b"\x81\x09\x04\x00\xff") == ["01 11 00 04 00 00 00 05 90 50 02 ff"]
            # a retransmission (same number) is answered from the cache, not run again
            before = emu.camera.commands
            assert await ask(0x0110, 5, b"\x81\x09\x04\x00\xff") == ["01 11 00 04 00 00 00 05 90 50 02 ff"]
            assert emu.camera.commands == before
            assert await ask(0x0100, 6, b"\x81\x01\x04\x00\x02\xff", 2) == [
                "01 11 00 03 00 00 00 06 90 41 ff", "01 11 00 03 00 00 00 06 90 51 ff"]
            # an older number: sequence error; a bad type or length: abnormal message
            assert await ask(0x0100, 2, b"\x81\x01\x04\x00\x02\xff") == ["02 01 00 02 00 00 00 02 0f 01"]
            assert await ask(0x0777, 7, b"\x81\x09\x04\x00\xff") == ["02 01 00 02 00 00 00 07 0f 02"]
            sock.send(bytes.fromhex("0100 0009 00000008") + b"\x81\x09\x04\x00\xff")
            assert (await loop.run_in_executor(None, sock.recv, 64)).hex(" ") == "02 01 00 02 00 00 00 08 0f 02"
            assert emu.malformed_datagrams == 2
        finally:
            sock.close()
            await emu.stop()

    run(body())


# ------------------------------------------------------------------ faults


def test_nonexistent_serial_port() -> None:
    async def body() -> None:
        with pytest.raises(CameraConnectionError, match="cannot open serial port"):
            await ViscaCamera.open_serial("/dev/does-not-exist-visca", baudrate=9600)

    run(body())


def test_udp_nobody_listening() -> None:
    async def body() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # a port where nobody listens: ICMP port unreachable
        with pytest.raises(CameraConnectionError, match="refused"):
            await ViscaCamera.open_ip("127.0.0.1", port, reply_timeout=0.2, retries=1)

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_no_reply_then_recovery(kind: str) -> None:
    async def body() -> None:
        async with rig(kind, reply_timeout=0.1, retries=1) as (emu, cam):
            emu.silent = True
            with pytest.raises(CameraTimeout):
                await cam.power_state()
            with pytest.raises(CameraTimeout):
                await cam.zoom_to(0x100)
            emu.silent = False
            await asyncio.sleep(0.2)  # replies to the abandoned messages, if any, drain
            await cam.zoom_to(0x200)
            assert await cam.zoom_position() == 0x200

    run(body())


def test_serial_open_without_camera_times_out() -> None:
    async def body() -> None:
        emu = CameraEmulator()
        emu.silent = True
        path = await emu.start_serial()
        try:
            with pytest.raises(CameraTimeout):
                await ViscaCamera.open_serial(path, reply_timeout=0.05, retries=0)
        finally:
            await emu.stop()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_lost_reply_is_retried_only_when_safe(kind: str) -> None:
    async def body() -> None:
        async with rig(kind, reply_timeout=0.15, retries=2) as (emu, cam):
            emu.drop_replies = 1
            assert await cam.power_state() is True  # inquiry: resent
            emu.drop_replies = 1  # the acknowledge is lost, the completion still says it is done
            await cam.zoom_to(0x400)
            emu.drop_replies = 2  # acknowledge and completion of an absolute move are lost: resent
            await cam.pan_tilt_to(100, 100)
            assert await cam.pan_tilt_position() == (100, 100)
            await asyncio.sleep(0.2)
            emu.drop_replies = 2
            with pytest.raises(CameraTimeout):  # relative move: never resent
                await cam.pan_tilt_by(10, 10)
            await asyncio.sleep(0.2)
            assert await cam.pan_tilt_position() == (110, 110)  # it ran exactly once

    run(body())


def test_retransmission_over_ip_runs_command_once() -> None:
    async def body() -> None:
        async with rig("udp", reply_timeout=0.15, retries=2) as (emu, cam):
            before = emu.camera.commands
            emu.drop_replies = 1
            await cam.preset_set(1)
            assert emu.camera.commands == before + 1  # the resend was a duplicate

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_garbage_on_the_line(kind: str) -> None:
    async def body() -> None:
        async with rig(kind) as (emu, cam):
            await cam.power_state()  # the UDP emulator learns where we are
            emu.inject(b"\x00\x13\x55\xff\x90\x77\xff\xa5\xff")
            emu.inject(b"\x90\x51\xff")  # a completion for a socket nobody uses
            assert await cam.power_state() is True
            await cam.zoom_to(0x300)
            assert await cam.zoom_position() == 0x300
            if kind == "serial":
                assert cam.transport.garbage_bytes > 0  # type: ignore[attr-defined]

    run(body())


def test_serial_unplugged_mid_command() -> None:
    async def body() -> None:
        async with rig("serial", speed=1) as (emu, cam):
            move = asyncio.create_task(cam.zoom_to(0x4000))
            await eventually(lambda: _busy(cam, 1))
            await emu.stop()
            with pytest.raises(CameraConnectionError):
                await move
            with pytest.raises(CameraConnectionError):
                await cam.power_state()

    run(body())


def test_udp_camera_gone_mid_command_then_back() -> None:
    async def body() -> None:
        async with rig("udp", speed=1, reply_timeout=0.1, retries=1) as (emu, cam):
            port = emu.udp_port or 0
            move = asyncio.create_task(cam.zoom_to(0x4000, timeout=0.3))
            await eventually(lambda: _busy(cam, 1))
            await emu.stop()
            with pytest.raises(CameraTimeout):
                await move
            with pytest.raises(CameraError):
                await cam.power_state()
            await emu.start_udp("127.0.0.1", port)  # plugged back in
            await asyncio.sleep(0.05)
            assert await cam.power_state() is True

    run(body())


def test_sequence_error_recovery_over_ip() -> None:
    """A controller restarted without RESET reuses old sequence numbers: the camera says
    "sequence error", the transport resets, the (safe) message goes through."""

    async def body() -> None:
        emu = CameraEmulator(speed_factor=FAST)
        port = await emu.start_udp()
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        local = probe.getsockname()
        probe.close()
        try:
            a = await ViscaCamera.open_ip("127.0.0.1", port, local_addr=local, reply_timeout=0.2)
            for _ in range(5):
                await a.power_state()
            await a.close()
            b = await ViscaCamera.open_ip("127.0.0.1", port, local_addr=local, reset=False, reply_timeout=0.2)
            try:
                assert b.transport.sequence_errors >= 1  # type: ignore[attr-defined]
                assert await b.power_state() is True
            finally:
                await b.close()
        finally:
            await emu.stop()

    run(body())


def test_serial_io_does_not_block_the_loop() -> None:
    async def body() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        async with rig("serial") as (emu, cam):
            t = asyncio.create_task(ticker())
            for _ in range(3):
                await cam.pan_tilt_position()  # about 17 ms of wire time each at 9600 baud
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
        assert ticks > 30  # the loop kept running other tasks while the bytes went by

    run(body())


# ------------------------------------------------------------------ chains, network change, close


def test_daisy_chain() -> None:
    async def body() -> None:
        emu = CameraEmulator(cameras=3, speed_factor=FAST)
        path = await emu.start_serial(38400)
        cam1 = await ViscaCamera.open_serial(path, baudrate=38400, address=1, reply_timeout=0.3)
        try:
            assert await cam1.address_set() == 3
            cam2 = cam1.chained(2)
            cam3 = cam1.chained(3)
            await asyncio.gather(cam1.zoom_to(0x1000), cam2.zoom_to(0x2000), cam3.pan_tilt_to(5, 6))
            assert await cam1.zoom_position() == 0x1000
            assert await cam2.zoom_position() == 0x2000
            assert await cam3.pan_tilt_position() == (5, 6)
            assert [c.position()[2] for c in emu.cameras] == [0x1000, 0x2000, 0]
            cam7 = cam1.chained(7)
            with pytest.raises(CameraConnectionError, match="came back round the chain"):
                await cam7.power_state()
            with pytest.raises(CameraValueError):
                cam1.chained(2)
            await cam7.close()
            await cam3.close()
            await cam2.close()
            assert await cam1.power_state() is True
        finally:
            await cam1.close()
            await emu.stop()

    run(body())


def test_network_change() -> None:
    async def body() -> None:
        seen: list[int] = []
        async with rig("serial", on_network_change=seen.append) as (emu, cam):
            emu.announce_network_change()
            await eventually(lambda: _true(seen))
            assert seen == [1] and cam.network_changes == 1
            assert await cam.power_state() is True

    run(body())


async def _true(x: Any) -> bool:
    return bool(x)


@pytest.mark.parametrize("kind", KINDS)
def test_close_is_idempotent_and_final(kind: str) -> None:
    async def body() -> None:
        async with rig(kind) as (emu, cam):
            pass
        await cam.close()
        with pytest.raises(CameraConnectionError):
            await cam.power_state()

    run(body())


# ------------------------------------------------------------------ CLI


def test_cli_with_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--emulate", "preset-recall", "2"]) == 0
    assert cli_main(["--emulate", "status"]) == 0
    out = capsys.readouterr().out
    status = json.loads(out.strip().splitlines()[-1])
    assert status["power"] is True and status["zoom"] == 0
    assert cli_main(["--emulate", "version"]) == 0
    assert "vendor 0x0001" in capsys.readouterr().out


def test_cli_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--serial", "/dev/does-not-exist-visca", "home"]) == 1
    assert "cannot open serial port" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli_main(["--emulate", "fly"])
    assert exc.value.code == 2


# ------------------------------------------------------------------ emulator fuzz


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(min_size=1, max_size=17).map(lambda b: b.replace(b"\xff", b"\xfe")))
def test_emulator_answers_any_message_like_a_camera(body: bytes) -> None:
    """Whatever a controller sends, the emulated camera answers with well-formed replies:
    an error, an inquiry answer, or ACK followed (now or later) by completion."""

    async def go() -> list[p.Reply]:
        emu = CameraEmulator(speed_factor=1e6)
        replies: list[bytes] = []
        emu.camera.handle(b"\x81" + body + b"\xff", replies.append)
        await asyncio.sleep(0.002)  # let motions finish
        await emu.stop()
        return [p.parse_reply(r) for r in replies]

    replies = asyncio.run(go())
    assert replies, "a camera always answers a message addressed to it"
    kinds = [r.kind for r in replies]
    if kinds[0] is p.ReplyKind.ACK:
        assert kinds[1:] in ([], [p.ReplyKind.COMPLETION])  # stop() may cut a motion short
    else:
        assert len(replies) == 1 and kinds[0] in (p.ReplyKind.ERROR, p.ReplyKind.COMPLETION)


def test_address_set_on_a_full_chain() -> None:
    async def body() -> None:
        emu = CameraEmulator(cameras=7, speed_factor=FAST)
        path = await emu.start_serial(38400)
        cam = await ViscaCamera.open_serial(path, baudrate=38400, reply_timeout=0.3)
        try:
            assert await cam.address_set() == 7
            last = cam.chained(7)
            await last.preset_set(1)
            assert 1 in emu.cameras[6].presets and 1 not in emu.cameras[0].presets
        finally:
            await cam.close()
            await emu.stop()

    run(body())


def test_example_script_runs() -> None:
    """examples/visca_presets.py keeps working (it drives the emulator over a pty)."""
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "examples" / "visca_presets.py"
    module = runpy.run_path(str(script), run_name="visca_example")
    asyncio.run(module["main"](False))
