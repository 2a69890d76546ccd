"""The RTP video pipeline against real peers: ffmpeg decodes what we send, we decode what GStreamer sends."""

from __future__ import annotations

import asyncio
import socket
import subprocess

import pytest
from .conftest import require_tool

from vcore.media import H264Encoder, TestPattern, VideoReceiver, VideoSender

pytestmark = pytest.mark.interop

W, H = 320, 240


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("mode", [0, 1])
def test_ffmpeg_decodes_our_stream(tmp_path, mode: int) -> None:  # type: ignore[no-untyped-def]
    ffmpeg = require_tool("ffmpeg")
    port = _free_port()
    sdp = tmp_path / "in.sdp"
    sdp.write_text(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=vcore\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=video {port} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        f"a=fmtp:96 packetization-mode={mode};profile-level-id=42e01e\r\n"
    )
    proc = subprocess.Popen(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-protocol_whitelist", "file,udp,rtp", "-threads", "1",
         "-i", str(sdp), "-frames:v", "20", "-f", "framemd5", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )

    async def send() -> VideoSender:
        await asyncio.sleep(1.0)  # ffmpeg opens its socket
        # mode 0: every slice must fit one packet (x264 slice-max-size)
        enc = H264Encoder(W, H, 30, 400_000, codec="libx264", max_slice_size=1100 if mode == 0 else None)
        sender = VideoSender(TestPattern(W, H, 30), enc, ("127.0.0.1", port), mode=mode)
        await sender.start()
        await asyncio.sleep(1.5)
        await sender.close()
        return sender

    try:
        sender = asyncio.run(send())
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    frames = [line for line in out.decode().splitlines() if line and not line.startswith("#")]
    assert sender.frames_encoded >= 20
    assert len(frames) == 20, err.decode()


def test_we_decode_a_gstreamer_stream() -> None:
    gst = require_tool("gst-launch-1.0")

    async def main() -> VideoReceiver:
        receiver = VideoReceiver()
        await receiver.start()
        port = receiver.local_address[1]
        pipeline = (
            f"videotestsrc num-buffers=30 is-live=true ! video/x-raw,width={W},height={H},framerate=30/1 ! "
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! "
            "video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! "
            f"rtph264pay pt=96 config-interval=0 mtu=1200 ! udpsink host=127.0.0.1 port={port}"
        )
        proc = await asyncio.create_subprocess_exec(
            gst, "-q", *pipeline.split(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        await asyncio.sleep(0.2)
        await receiver.close()
        return receiver

    receiver = asyncio.run(main())
    assert receiver.frames == 30 and receiver.decoder.errors == 0
    assert receiver.latency.count == 0  # GStreamer sends no capture-time extension
