"""Wireshark decodes a whole loopback call (plaintext signalling, as ``vcore demo --no-tls``): H.225.0, H.245, RTP."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import require_tool
from .call_helpers import T, sources, until
from .test_h323_tshark import READ_OPTS, _start_capture, _stop_capture

pytestmark = pytest.mark.interop


async def _call(tshark: str, out: Path) -> tuple[int, list[int]]:
    import vcore

    opts: dict[str, Any] = {"allow_plaintext": True, "bitrate": 300_000, "encoder": "libx264", **sources()}
    agent = vcore.Terminal("agent", auto_answer=True, **opts)
    kiosk = vcore.Terminal("kiosk", listen=False, **opts)
    async with agent, kiosk:
        proc = _start_capture(tshark, [], out, f"tcp port {agent.port} or udp")
        try:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            await until(call, "media-started")
            await call.request_keyframe()
            await call.limit_bitrate(250_000)
            await call.announce_recording(True)  # H.245 userInputIndication (camera control is H.281 now)
            await asyncio.sleep(1.5)
            ports = [p for _, p in call.local_media.values()]
            ports += [p for c in agent.calls for _, p in c.local_media.values()]
            await call.hangup()
        finally:
            await asyncio.to_thread(_stop_capture, proc)
        return agent.port, ports


def test_wireshark_decodes_a_plaintext_call(tmp_path: Path) -> None:
    tshark = require_tool("tshark")
    out = tmp_path / "call.pcapng"
    port, media = asyncio.run(_call(tshark, out))
    decode = [*READ_OPTS]
    for p in media:
        decode += ["-d", f"udp.port=={p},rtp"]
    signalling = f"tcp.port == {port}"
    errors = subprocess.run([tshark, "-r", str(out), *decode, "-Y",
                             f"(_ws.malformed || _ws.expert.severity >= error) && ({signalling})"],
                            capture_output=True, text=True, timeout=120)
    assert errors.returncode == 0 and errors.stdout.strip() == "", errors.stdout[-2000:]
    text = subprocess.run([tshark, "-r", str(out), *decode, "-Y", signalling, "-V"], capture_output=True,
                          text=True, timeout=120).stdout
    assert "Malformed" not in text
    for needle in ("setup", "connect", "releaseComplete", "terminalCapabilitySet", "videoFastUpdatePicture",
                   "flowControlCommand", "fastStart", "userInput", "vcore:recording=on",
                   "h224", "openLogicalChannelAck"):  # the H.224 data channel, opened with H.245 procedures
        assert needle in text, needle
    rtp_filter = " || ".join(f"udp.dstport == {p}" for p in media)
    rtp = subprocess.run([tshark, "-r", str(out), *decode, "-Y", f"rtp && ({rtp_filter})", "-T", "fields",
                          "-e", "rtp.version", "-e", "rtp.p_type"], capture_output=True, text=True, timeout=120)
    rows = [line.split("\t") for line in rtp.stdout.splitlines() if line]
    assert len(rows) > 50
    assert all(v == "2" for v, _ in rows)
    assert {"96", "9"} <= {pt for _, pt in rows}  # H.264 (dynamic) and G.722
