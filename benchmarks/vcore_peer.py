"""One side of a two-process vcore loopback (like the GStreamer and ffmpeg pairs of ``bench_media``).

    python benchmarks/vcore_peer.py receive PORT [KEY_HEX]
    python benchmarks/vcore_peer.py send PORT CLIP FRAMES [KEY_HEX]

The receiver listens on 127.0.0.1:PORT and decodes (SRTP AES_CM_128_HMAC_SHA1_80
with KEY_HEX, a 30-byte master key + salt, when given) until it is killed; the
sender reads the raw 720p I420 clip in real time, encodes it with vcore's
``H264Encoder`` (the settings of ``bench_media``) and sends RTP to the port.
``bench_media.run_pair`` starts both and sums their CPU (``os.wait4`` rusage).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from bench_media import BITRATE, FPS, H, SRTP_SUITE, W, clip_source  # this script's folder is on sys.path


async def receive(port: int, key: bytes | None) -> None:
    from vcore.media import VideoReceiver

    hooks: dict[str, Any] = {}
    if key is not None:
        from vcore.srtp import SrtpSession

        rx = SrtpSession(SRTP_SUITE, key)
        hooks = {"unprotect": rx.unprotect, "unprotect_rtcp": rx.unprotect_rtcp, "protect_rtcp": rx.protect_rtcp}
    async with VideoReceiver(local=("127.0.0.1", port), **hooks):
        await asyncio.Event().wait()  # until killed


async def send(port: int, clip: str, frames: int, key: bytes | None) -> None:
    from vcore.media import H264Encoder, VideoSender

    hooks: dict[str, Any] = {}
    if key is not None:
        from vcore.srtp import SrtpSession

        tx, rtcp = SrtpSession(SRTP_SUITE, key), SrtpSession(SRTP_SUITE, key)
        hooks = {"protect": tx.protect, "protect_rtcp": rtcp.protect_rtcp, "unprotect_rtcp": rtcp.unprotect_rtcp,
                 "mtu": 1190}
    encoder = H264Encoder(W, H, FPS, BITRATE, codec="libx264")
    sender = VideoSender(clip_source(clip, frames), encoder, ("127.0.0.1", port), **hooks)
    async with sender:
        await sender.finished.wait()


def main(argv: list[str]) -> int:
    role, port = argv[0], int(argv[1])
    if role == "receive":
        key = bytes.fromhex(argv[2]) if len(argv) > 2 else None
        asyncio.run(receive(port, key))
    elif role == "send":
        key = bytes.fromhex(argv[4]) if len(argv) > 4 else None
        asyncio.run(send(port, argv[2], int(argv[3]), key))
    else:
        raise SystemExit(f"unknown role {role!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
