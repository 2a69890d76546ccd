"""Far-end camera control across a call: H.281 on the H.224 data channel that H.245 opens (RTP session 3).

Two vcore terminals over TLS + SRTP: the caller's ``remote_camera_move`` / ``remote_camera_preset`` steer the
callee's emulated VISCA camera with H.281 (no ``vcore:camera-`` user input goes out); a tshark capture of a
plaintext call decodes the data channel as RTP on the port H.245 negotiated.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vcore.camera_control import Pan, Tilt
from vcore.h323.session import CallSession

from .call_helpers import T, make_pki, run, sources, terminal, until, wait_for
from .conftest import require_tool


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def user_inputs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every H.245 user-input string any H.323 session of the test sends."""
    sent: list[str] = []
    original = CallSession.send_user_input

    async def record(self: CallSession, text: str) -> None:
        sent.append(text)
        await original(self, text)

    monkeypatch.setattr(CallSession, "send_user_input", record)
    return sent


async def _camera() -> tuple[Any, Any]:
    from vcore.visca import CameraEmulator, ViscaCamera

    emu = CameraEmulator(speed_factor=20.0)
    cam = await ViscaCamera.open_ip("127.0.0.1", await emu.start_udp("127.0.0.1", 0))
    await cam.power(True)
    await cam.pan_tilt_to(-500, 200)
    await cam.preset_set(3)
    await cam.pan_tilt_to(0, 0)
    return emu, cam


async def _still(cam: Any) -> tuple[int, int]:
    """The camera's pan/tilt once it stopped moving (two readings 0.25 s apart agree; bounded by T)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + T
    before = await cam.pan_tilt_position()
    while True:
        await asyncio.sleep(0.25)
        after = await cam.pan_tilt_position()
        if after == before:
            return tuple(after)  # type: ignore[return-value]
        assert loop.time() < end, "the camera keeps moving"
        before = after


def test_h281_moves_and_recalls_the_far_camera_over_srtp(pki_dir: Path, user_inputs: list[str]) -> None:
    async def scenario() -> None:
        emu, cam = await _camera()
        try:
            kiosk = terminal(pki_dir, "Murat kiosk", auto_answer=True, camera=cam, remote_camera=True)
            agent = terminal(pki_dir, "CAF agent", listen=False)
            async with kiosk, agent:
                call = await agent.call(kiosk.uri)
                await asyncio.wait_for(call.connected, T)
                await wait_for(lambda: call.remote_camera_h281 and bool(kiosk.calls))
                answered = kiosk.calls[0]
                data = [m for m in call.security()["media"] if m["codec"] == "H224"]
                assert {m["direction"] for m in data} == {"send", "receive"}, call.security()
                assert all(m["srtp"] != "plaintext" and m["session"] == 3 for m in data)
                assert "data" in call.local_media and "data" in answered.local_media

                await call.remote_camera_preset(3)
                event = await until(answered, "camera-control")
                assert event.applied and event.preset == 3 and event.detail == "recalled", event
                await wait_for(lambda: emu.camera.position()[:2] == (-500, 200))

                start = await _still(cam)
                await call.remote_camera_move("right")  # the kiosk screens' nudge: 0.3 s, then a stop
                await wait_for(lambda: emu.camera.position()[0] > start[0])
                moved = await _still(cam)
                assert moved[0] > start[0] and moved[1] == start[1]

                await call.remote_camera_move(pan=Pan.LEFT, tilt=Tilt.UP)  # until stopped
                await asyncio.sleep(1.2)  # longer than H.281's 800 ms timeout: the continues keep it going
                assert emu.camera.position()[0] < moved[0] and emu.camera.position()[1] > moved[1]
                await call.remote_camera_stop()
                await asyncio.sleep(0.1)
                stopped = await cam.pan_tilt_position()
                await asyncio.sleep(0.3)  # well before H.281's own 800 ms timeout: the stop did it
                assert await cam.pan_tilt_position() == stopped
                moves = []
                async for ev in answered.events():
                    if ev.kind == "camera-control" and ev.move:
                        moves.append((ev.move, ev.applied))
                    if len(moves) == 2:
                        break
                assert moves == [("right", True), ("up+left", True)]
                await call.hangup()
            assert not [u for u in user_inputs if u.startswith("vcore:camera-")], user_inputs
        finally:
            await cam.close()
            await emu.stop()

    run(scenario())


def test_h281_to_a_terminal_without_camera_control_is_refused(pki_dir: Path, user_inputs: list[str]) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True)  # no camera
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False)
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            await wait_for(lambda: call.remote_camera_h281 and bool(agent.calls))
            await call.remote_camera_preset(1)
            refused = await until(agent.calls[0], "camera-control")
            assert not refused.applied and refused.detail == "no camera" and refused.preset == 1
            with pytest.raises(Exception, match="H.281 presets are 0..15"):
                await call.remote_camera_preset(16)
            await call.hangup()
        assert user_inputs == []

    run(scenario())


def test_tshark_decodes_the_data_channel_as_rtp(tmp_path: Path) -> None:
    from .test_h323_tshark import READ_OPTS, _start_capture, _stop_capture

    tshark = require_tool("tshark")
    out = tmp_path / "fecc.pcapng"

    async def scenario() -> tuple[int, int]:
        import vcore

        opts: dict[str, Any] = {"allow_plaintext": True, "bitrate": 200_000, "encoder": "libx264", **sources()}
        agent = vcore.Terminal("agent", auto_answer=True, **opts)
        kiosk = vcore.Terminal("kiosk", listen=False, **opts)
        async with agent, kiosk:
            proc = _start_capture(tshark, [], out, "udp")
            try:
                call = await kiosk.call(agent.uri)
                await asyncio.wait_for(call.connected, T)
                await wait_for(lambda: call.remote_camera_h281 and bool(agent.calls))
                await call.remote_camera_preset(2)
                await until(agent.calls[0], "camera-control")
                ports = (call.local_media["data"][1], agent.calls[0].local_media["data"][1])
                await call.hangup()
            finally:
                await asyncio.to_thread(_stop_capture, proc)
        return ports

    ports = asyncio.run(scenario())
    decode = [*READ_OPTS]
    for p in ports:
        decode += ["-d", f"udp.port=={p},rtp"]
    where = " || ".join(f"udp.dstport == {p}" for p in ports)
    rtp = subprocess.run([tshark, "-r", str(out), *decode, "-Y", f"({where}) && !rtcp", "-T", "fields",
                          "-e", "rtp.version", "-e", "rtp.p_type", "-e", "rtp.marker", "-e", "udp.dstport"],
                         capture_output=True, text=True, timeout=120)
    rows = [line.split("\t") for line in rtp.stdout.splitlines() if line]
    assert rows, rtp.stderr[-2000:]
    assert all(r[0] == "2" and r[1] == "100" and r[2] in ("1", "True") for r in rows), rows
    assert {int(r[3]) for r in rows} == set(ports)  # both directions, each to the port its OLC/Ack announced
    assert len(rows) >= 6  # CME client lists and capabilities both ways, then the H.281 preset


def _free_pairs(n: int) -> tuple[int, int]:
    """An even port range of ``n`` RTP/RTCP pairs that is free on 127.0.0.1 right now."""
    import random

    for _ in range(50):
        base = random.randrange(20000, 60000, 2)
        held = []
        try:
            for port in range(base, base + 2 * n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("0.0.0.0", port))
            return base, base + 2 * n - 1
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise AssertionError("no free port range")


def test_no_port_pair_left_for_the_data_channel_leaves_it_out(pki_dir: Path) -> None:
    """A station whose rtp_ports hold only audio and video still answers, without camera control."""
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, rtp_ports=_free_pairs(2))
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False)
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            await until(call, "media-started")
            answered = agent.calls[0]
            assert set(answered.local_media) == {"audio", "video"} and "data" in call.local_media
            assert not call.remote_camera_h281
            assert not [m for m in call.security()["media"] if m["codec"] == "H224"]
            await call.hangup()

    run(scenario())
