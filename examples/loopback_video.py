#!/usr/bin/env python3
"""Loopback video: test pattern (or camera/file) -> H.264 -> RTP over 127.0.0.1 -> decode -> display or file.

Prints frames per second, bitrate and capture-to-decoded latency (p50/p95) every
second, then a summary, and exits by itself after ``--seconds``.

    python examples/loopback_video.py --seconds 5 --size 1280x720 --fps 30 --bitrate 1500000 --output out.mp4
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time


from vcore.demo import format_ms as _ms  # the demo and this example print alike
from vcore.demo import parse_size as _size


async def run(args: argparse.Namespace) -> int:
    from vcore.media import Camera, FileSource, H264Encoder, MediaError, Recorder, TestPattern, VideoReceiver, VideoSender

    w, h = args.size
    if args.camera:
        source = Camera(args.camera, w, h, args.fps)
    elif args.input:
        source = FileSource(args.input, loop=True)
    else:
        source = TestPattern(w, h, args.fps)
    # mode 0 sends every NAL unit in one packet: cap the slices to fit the 1200-byte MTU
    encoder = H264Encoder(w, h, args.fps, args.bitrate, codec=args.encoder,
                          max_slice_size=1100 if args.mode == 0 else None)
    recorder = Recorder(args.output) if args.output else None
    sink = None
    if args.display:
        from vcore.media.display import VideoWindow  # optional extra: pygame

        sink = VideoWindow("vcore loopback")
    receiver = VideoReceiver(sink, recorder=recorder)
    await receiver.start()
    sender = VideoSender(source, encoder, receiver.local_address, mode=args.mode)
    print(f"encoder {encoder.codec_name} {w}x{h} {args.fps:g} fps {args.bitrate} bit/s; "
          f"RTP {sender.packetizer.mtu}-byte MTU, mode {args.mode} -> {receiver.local_address[0]}:{receiver.local_address[1]}",
          flush=True)
    await sender.start()
    start = time.monotonic()
    last_frames, last_bytes, last_t = 0, 0, start
    try:
        while time.monotonic() - start < args.seconds and not sender.finished.is_set():
            await asyncio.sleep(min(1.0, max(0.0, start + args.seconds - time.monotonic())))
            now = time.monotonic()
            dt = max(now - last_t, 1e-6)
            win = receiver.latency.window()
            print(f"{now - start:5.1f} s  {(receiver.frames - last_frames) / dt:5.1f} fps  "
                  f"{(receiver.bytes - last_bytes) * 8 / dt / 1000:7.0f} kbit/s  "
                  f"latency p50 {_ms(win['p50'])} ms  p95 {_ms(win['p95'])} ms", flush=True)
            last_frames, last_bytes, last_t = receiver.frames, receiver.bytes, now
    finally:
        await sender.close()
        await asyncio.sleep(0.05)  # the last packets in flight
        await receiver.close()
    p50, p95 = receiver.latency.percentile(50), receiver.latency.percentile(95)
    print(f"total: sent {sender.frames_encoded} frames, decoded {receiver.frames}, "
          f"dropped before encode {sender.queue.dropped + encoder.frames_dropped + source.frames_skipped}, "
          f"decoder errors {receiver.decoder.errors}; latency p50 {_ms(p50)} ms p95 {_ms(p95)} ms")
    if recorder is not None:
        print(f"recorded {recorder.video_frames} frames to {args.output}")
    if sender.error is not None:
        print(f"sender error: {sender.error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="run time (default 5)")
    p.add_argument("--size", type=_size, default=(1280, 720), help="WIDTHxHEIGHT (default 1280x720)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    p.add_argument("--bitrate", type=int, default=1_500_000, help="bit/s (default 1500000)")
    p.add_argument("--output", metavar="FILE.mp4", help="record the received stream (remux, no re-encode)")
    p.add_argument("--display", action="store_true", help="show the decoded video (needs pygame)")
    p.add_argument("--camera", metavar="DEVICE", help="V4L2 camera instead of the test pattern")
    p.add_argument("--input", metavar="FILE", help="media file (looped) instead of the test pattern")
    p.add_argument("--encoder", default="auto", help="H.264 encoder: auto (default), libx264, h264_nvenc, ...")
    p.add_argument("--mode", type=int, choices=(0, 1), default=1, help="RTP packetization mode (default 1)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    from vcore.media import MediaError

    try:
        return asyncio.run(run(args))
    except MediaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
