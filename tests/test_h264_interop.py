"""H.264 over RTP against real peers: ffmpeg and GStreamer, both directions, decoded frames compared.

Every frame that the peer decodes from vcore's packets (and that PyAV decodes from
the peer's packets through vcore's depacketizer) must be bit-identical to the
frames of the source clip.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from vcore import H264Depacketizer, H264Packetizer, RtpPacket

from .conftest import require_tool
from .h264_util import decode_file, decode_units, encode_clip
from .peers import UdpCollector, free_udp_port_pair, run, send_udp, stop_gst, wait_bound

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes], list[str]]:
    path = tmp_path_factory.mktemp("interop") / "clip.h264"
    units = encode_clip(path, frames=45)
    return path, units, decode_file(path)


@pytest.fixture(scope="module")
def sliced_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes], list[str]]:
    """A clip whose slices fit a 1200-byte packet, as packetization mode 0 needs.

    (ffmpeg 5.1's mode 0 drops NAL units larger than the payload size, with an error.)
    """
    path = tmp_path_factory.mktemp("interop") / "sliced.h264"
    units = encode_clip(path, frames=45, slice_max=1100)
    return path, units, decode_file(path)


def _clip_for(mode: int, request: pytest.FixtureRequest) -> tuple[Path, list[bytes], list[str]]:
    return request.getfixturevalue("sliced_clip" if mode == 0 else "clip")  # type: ignore[no-any-return]


def _reassemble(packets: list[bytes]) -> list[bytes]:
    dp = H264Depacketizer()
    units = []
    for data in packets:
        for unit in dp.push(RtpPacket.parse(data)):
            assert unit.complete
            units.append(unit.data)
    assert dp.lost == 0 and dp.malformed == 0 and dp.unsupported == 0
    return units


@pytest.mark.parametrize("mode", [0, 1])
def test_ffmpeg_sender_to_vcore(request: pytest.FixtureRequest, mode: int) -> None:
    ffmpeg = require_tool("ffmpeg")
    path, _, expected = _clip_for(mode, request)
    rx = UdpCollector()
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "h264", "-i", str(path), "-c", "copy",
           "-f", "rtp", "-payload_type", "96", "-ssrc", "4660"]
    if mode == 0:
        cmd += ["-rtpflags", "h264_mode0"]
    cmd.append(f"rtp://127.0.0.1:{rx.port}?pkt_size=1200")
    result = run(cmd)
    assert result.returncode == 0, result.stderr.decode()
    packets = rx.wait_idle(idle=0.5)
    units = _reassemble(packets)
    if mode == 1:
        types = {RtpPacket.parse(p).payload[0] & 0x1F for p in packets}
        assert 28 in types  # FU-A was exercised
    assert decode_units(units) == expected


def test_gstreamer_sender_to_vcore(clip: tuple[Path, list[bytes], list[str]]) -> None:
    gst = require_tool("gst-launch-1.0")
    path, _, expected = clip
    rx = UdpCollector()
    cmd = [gst, "-q", "filesrc", f"location={path}", "!", "h264parse", "config-interval=-1", "!",
           "rtph264pay", "pt=96", "mtu=1200", "config-interval=0", "aggregate-mode=zero-latency", "!",
           "udpsink", "host=127.0.0.1", f"port={rx.port}", "sync=false"]
    result = run(cmd)
    assert result.returncode == 0, result.stderr.decode()
    packets = rx.wait_idle(idle=0.5)
    types = {RtpPacket.parse(p).payload[0] & 0x1F for p in packets}
    assert {24, 28} <= types  # STAP-A and FU-A from GStreamer
    assert decode_units(_reassemble(packets)) == expected


def _vcore_packets(units: list[bytes], mode: int) -> list[bytes]:
    pk = H264Packetizer(payload_type=96, ssrc=0xABCDEF, mtu=1200, mode=mode, sequence_number=65500)
    out = []
    for i, unit in enumerate(units):
        out.extend(p.serialize() for p in pk.packetize(unit, 1000 + i * 3000))
    return out


@pytest.mark.parametrize("mode", [0, 1])
def test_vcore_sender_to_ffmpeg(request: pytest.FixtureRequest, mode: int, tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    _, units, expected = _clip_for(mode, request)
    port = free_udp_port_pair()
    sdp = tmp_path / "in.sdp"
    sdp.write_text(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=vcore\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=video {port} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode={mode}\r\n"
    )
    out = tmp_path / "frames.md5"
    proc = subprocess.Popen(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file,udp,rtp",
         "-listen_timeout", "2", "-threads", "1", "-i", str(sdp), "-f", "framemd5", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        wait_bound(port, proc)
        send_udp(_vcore_packets(units, mode), port)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    hashes = [line.rsplit(",", 1)[1].strip() for line in out.read_text().splitlines() if not line.startswith("#")]
    assert hashes == expected, err.decode()


def test_vcore_sender_to_gstreamer(clip: tuple[Path, list[bytes], list[str]]) -> None:
    gst = require_tool("gst-launch-1.0")
    _, units, expected = clip
    port = free_udp_port_pair()
    caps = "application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96"
    proc = subprocess.Popen(
        [gst, "-q", "-e", "udpsrc", f"port={port}", "address=127.0.0.1", "buffer-size=8388608", f"caps={caps}", "!",
         "rtph264depay", "!", "avdec_h264", "max-threads=1", "!", "checksumsink", "hash=md5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        wait_bound(port, proc)
        send_udp(_vcore_packets(units, 1), port)
        time.sleep(1.0)
        stdout, stderr = stop_gst(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    hashes = [line.split()[-1] for line in stdout.decode().splitlines() if line.strip()]
    assert hashes == expected, stderr.decode()
