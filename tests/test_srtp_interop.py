"""SRTP with real senders and receivers: ffmpeg (libavformat's own SRTP) and GStreamer
(srtpenc/srtpdec, Debian's libsrtp2). Everything on 127.0.0.1; every process has a timeout.

Both kernel twins take part: packets from a peer are unprotected by both; packets for a peer
are protected by both (identical bytes) before one copy is sent.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
from types import ModuleType

import pytest

from vcore import SrtpSession
from vcore._speedups import load_twin

from .conftest import require_tool

pytestmark = pytest.mark.interop

SSRC = 305419896  # 0x12345678
TIMEOUT = 60


def _twins() -> list[ModuleType]:
    out = [load_twin("_fastpath_srtp", "py")]
    if not os.environ.get("VCORE_NO_EXTENSIONS"):
        out.insert(0, load_twin("_fastpath_srtp", "c"))
    return out


def _udp_pair() -> tuple[socket.socket, socket.socket, int]:
    """Two bound sockets on an even port and the next one (RTP and RTCP)."""
    for _ in range(100):
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        port = a.getsockname()[1]
        if port % 2 or port == 65535:
            a.close()
            continue
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            b.bind(("127.0.0.1", port + 1))
        except OSError:
            a.close()
            b.close()
            continue
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            s.settimeout(0.5)
        return a, b, port
    raise RuntimeError("no free UDP port pair on 127.0.0.1")


def _free_port_pair() -> int:
    a, b, port = _udp_pair()
    a.close()
    b.close()
    return port


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except socket.timeout:
            return out


def _wait_bound(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait until another process holds the UDP port (our bind fails), or it died."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and proc.poll() is None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return
        finally:
            probe.close()
        time.sleep(0.02)
    raise AssertionError("the receiver never bound its port")


def _send(packets: list[bytes], port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for p in packets:
            tx.sendto(p, ("127.0.0.1", port))
            time.sleep(0.0005)


def _finish(proc: subprocess.Popen[bytes], interrupt_after: float | None = None) -> bytes:
    """Collect a receiver's output. ``interrupt_after``: if it has not ended by then, send
    SIGINT (gst-launch -e turns that into EOS) so that the output still comes out."""
    try:
        out, err = proc.communicate(timeout=interrupt_after or TIMEOUT)
    except subprocess.TimeoutExpired:
        if interrupt_after is None:
            proc.kill()
            proc.communicate()
            raise
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    assert proc.returncode == 0, err.decode(errors="replace")[-500:]
    return out


# -- ffmpeg --------------------------------------------------------------------------

FFMPEG_SOURCE = [
    "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2",
    "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "0",
    "-f", "rtp", "-payload_type", "96", "-ssrc", str(SSRC),
]  # fmt: skip


def _ffmpeg_send(url: str, extra: list[str]) -> None:
    ffmpeg = require_tool("ffmpeg")
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", *FFMPEG_SOURCE, *extra, url],
        check=True, timeout=TIMEOUT, capture_output=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    "suite",
    [
        "AES_CM_128_HMAC_SHA1_80",
        # RFC 5764 spelling: ffmpeg then uses the RFC 4568 SRTCP tag (80 bits). With the name
        # AES_CM_128_HMAC_SHA1_32 ffmpeg truncates SRTCP tags to 32 bits too (its quirk).
        "SRTP_AES128_CM_HMAC_SHA1_32",
    ],
)
def test_ffmpeg_srtp_out_to_vcore(suite: str) -> None:
    key = os.urandom(30)
    rtp_sock, rtcp_sock, port = _udp_pair()
    with rtp_sock, rtcp_sock:
        _ffmpeg_send(
            f"srtp://127.0.0.1:{port}?pkt_size=1200",
            ["-srtp_out_suite", suite, "-srtp_out_params", base64.b64encode(key).decode()],
        )
        srtp, srtcp = _drain(rtp_sock), _drain(rtcp_sock)
    assert len(srtp) >= 50 and srtcp
    results = []
    for k in _twins():
        s = SrtpSession(suite, key, kernel=k)
        plain = [s.unprotect(p) for p in srtp]
        rtcp = [s.unprotect_rtcp(p) for p in srtcp]
        assert all(p[8:12] == SSRC.to_bytes(4, "big") for p in plain)
        assert all(p[1] == 96 | (p[1] & 0x80) for p in plain)
        assert rtcp[0][1] == 200  # a sender report
        results.append((plain, rtcp))
        with pytest.raises(Exception):
            s.unprotect(srtp[0])  # replayed
    assert all(r == results[0] for r in results)


@pytest.fixture(scope="module")
def ffmpeg_h264_rtp() -> list[bytes]:
    """Plain H.264 RTP (packetization mode 1) from ffmpeg, captured once."""
    rtp_sock, rtcp_sock, port = _udp_pair()
    with rtp_sock, rtcp_sock:
        _ffmpeg_send(f"rtp://127.0.0.1:{port}?pkt_size=1200", [])
        packets = _drain(rtp_sock)
    assert len(packets) >= 50
    return packets


def _ffmpeg_receive(packets: list[bytes], tmp_path: os.PathLike[str], crypto: str) -> list[str]:
    ffmpeg = require_tool("ffmpeg")
    port = _free_port_pair()
    proto = "RTP/SAVP" if crypto else "RTP/AVP"
    sdp = (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=vcore\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=video {port} {proto} 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n"
        + crypto
    )
    path = os.path.join(tmp_path, f"in{port}.sdp")
    with open(path, "w") as f:
        f.write(sdp)
    proc = subprocess.Popen(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file,udp,rtp,srtp,crypto",
         "-listen_timeout", "1", "-threads", "1", "-i", path, "-f", "framemd5", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    _wait_bound(port, proc)
    _send(packets, port)
    out = _finish(proc)
    return [line for line in out.decode().splitlines() if not line.startswith("#")]


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_vcore_to_ffmpeg_sdp_crypto(ffmpeg_h264_rtp: list[bytes], tmp_path: os.PathLike[str], suite: str) -> None:
    key = os.urandom(30)
    protected = [SrtpSession(suite, key, kernel=k).protect_many(ffmpeg_h264_rtp) for k in _twins()]
    assert all(p == protected[0] for p in protected)
    plain = _ffmpeg_receive(ffmpeg_h264_rtp, tmp_path, "")
    crypto = f"a=crypto:1 {suite} inline:{base64.b64encode(key).decode()}\r\n"
    decoded = _ffmpeg_receive(protected[0], tmp_path, crypto)
    assert len(plain) == 50
    assert decoded == plain


# -- GStreamer -----------------------------------------------------------------------

GST_SOURCE = (
    "videotestsrc num-buffers=50 ! video/x-raw,width=320,height=240,framerate=25/1 ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! "
    "h264parse config-interval=-1 ! "
    f"rtph264pay config-interval=0 ssrc={SSRC} pt=96 mtu=1200 seqnum-offset=65400"
)
RTP_CAPS = "application/x-rtp,media=(string)video,clock-rate=(int)90000,encoding-name=(string)H264,payload=(int)96"

# (vcore suite, GStreamer cipher, GStreamer auth, key length)
GST_SUITES = [
    ("AES_CM_128_HMAC_SHA1_80", "aes-128-icm", "hmac-sha1-80", 30),
    ("AES_CM_128_HMAC_SHA1_32", "aes-128-icm", "hmac-sha1-32", 30),
    ("AES_256_CM_HMAC_SHA1_80", "aes-256-icm", "hmac-sha1-80", 46),
    ("AES_256_CM_HMAC_SHA1_32", "aes-256-icm", "hmac-sha1-32", 46),
    ("AEAD_AES_128_GCM", "aes-128-gcm", "null", 28),
    ("AEAD_AES_256_GCM", "aes-256-gcm", "null", 44),
]


def _protect_each(session: SrtpSession, packets: list[bytes]) -> list[bytes]:
    return [session.protect(p) for p in packets]


def _gst(pipeline: str) -> list[str]:
    return [require_tool("gst-launch-1.0"), "-q", "-e", *pipeline.split()]


@pytest.mark.parametrize(("suite", "cipher", "auth", "klen"), GST_SUITES)
@pytest.mark.parametrize("mki", [None, b"\x00\x01"])
def test_gstreamer_srtpenc_to_vcore(suite: str, cipher: str, auth: str, klen: int, mki: bytes | None) -> None:
    key = os.urandom(klen)
    sock, other, port = _udp_pair()
    with sock, other:
        mki_prop = f"mki={mki.hex()} " if mki else ""
        subprocess.run(
            _gst(f"{GST_SOURCE} ! srtpenc key={key.hex()} {mki_prop}rtp-cipher={cipher} rtp-auth={auth} "
                 f"rtcp-cipher={cipher} rtcp-auth={auth} ! udpsink host=127.0.0.1 port={port} sync=false"),
            check=True, timeout=TIMEOUT, capture_output=True,
        )  # fmt: skip
        packets = _drain(sock)
    assert len(packets) > 100
    for k in _twins():
        s = SrtpSession(suite, key, mki=mki, kernel=k)
        plain = [s.unprotect(p) for p in packets]
        assert {int.from_bytes(p[2:4], "big") for p in plain[:2]} == {65400, 65401}
        assert s.roc(SSRC, outbound=False) == 1  # the sequence numbers wrapped


@pytest.fixture(scope="module")
def gst_h264_rtp() -> list[bytes]:
    sock, other, port = _udp_pair()
    with sock, other:
        subprocess.run(
            _gst(f"{GST_SOURCE} ! udpsink host=127.0.0.1 port={port} sync=false"),
            check=True, timeout=TIMEOUT, capture_output=True,
        )  # fmt: skip
        return _drain(sock)


def _gst_receive(packets: list[bytes], caps: str, srtp: bool) -> list[str]:
    port = _free_port_pair()
    dec = "srtpdec ! " if srtp else ""
    proc = subprocess.Popen(
        _gst(f"udpsrc port={port} address=127.0.0.1 buffer-size=4194304 caps={caps} ! {dec}identity eos-after={len(packets)} ! "
             "rtph264depay ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! checksumsink hash=md5"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    _wait_bound(port, proc)
    time.sleep(0.2)  # from bound to PLAYING
    _send(packets, port)
    out = _finish(proc, interrupt_after=10)
    return [line.split()[-1] for line in out.decode().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("suite", "cipher", "auth", "klen"), [GST_SUITES[0], GST_SUITES[3], GST_SUITES[4], GST_SUITES[5]]
)
def test_vcore_to_gstreamer_srtpdec(
    gst_h264_rtp: list[bytes], suite: str, cipher: str, auth: str, klen: int
) -> None:
    key = os.urandom(klen)
    protected = [_protect_each(SrtpSession(suite, key, kernel=k), gst_h264_rtp) for k in _twins()]
    assert all(p == protected[0] for p in protected)
    plain = _gst_receive(gst_h264_rtp, RTP_CAPS, srtp=False)
    caps = RTP_CAPS.replace("x-rtp", "x-srtp") + (
        f",ssrc=(uint){SSRC},srtp-key=(buffer){key.hex()},srtp-cipher=(string){cipher},"
        f"srtp-auth=(string){auth},srtcp-cipher=(string){cipher},srtcp-auth=(string){auth}"
    )
    decoded = _gst_receive(protected[0], caps, srtp=True)
    assert len(plain) == 50
    assert decoded == plain
