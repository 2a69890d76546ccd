"""One side of a vcore call for the ADSL benchmark (``bench_adsl.py`` runs both, one per network namespace).

``send``: a kiosk terminal that calls the agent with the stamped 720p picture
(``adsl_stamp``) and a tone, over TLS + SRTP, for ``--seconds``; every second it
appends ``{"kind": "send", "t", "target", "bytes", "size", "queue"}`` (the
congestion controller's target, the video bytes sent so far, the encoder's
picture size, the measured queueing delay) to ``--out``.

``recv``: an agent terminal that answers and, for every decoded picture,
appends ``{"kind": "frame", "t", "index", "capture_ms", "w", "h"}`` (the stamp
read back from the picture), keeps the luma of every 30th source frame for
PSNR (``DIR/vcore_y_N.npy``), and at the end ``{"kind": "audio", "frames",
"concealed"}``.

``--no-cc``: the same call without congestion control (the video at its
configured 1.5 Mbit/s whatever the line), vcore's own "before".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from adsl_stamp import FPS, H, W, StampedFrames, luma, read_stamp  # noqa: E402

PORT = 1720


class Out:
    """JSON lines, flushed one by one (the harness may read them live); thread-safe."""

    def __init__(self, path: str) -> None:
        self._f = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, **record: Any) -> None:
        with self._lock:
            self._f.write(json.dumps(record) + "\n")
            self._f.flush()

    def close(self) -> None:
        self._f.close()


class StampedSource:
    """``adsl_stamp.StampedFrames`` as a vcore video source (``read()`` / ``close()``)."""

    kind = "video"
    live = False
    realtime = True
    width, height, fps = W, H, FPS

    def __init__(self) -> None:
        self._frames = StampedFrames()
        self._closed = threading.Event()
        self.frames_read = 0

    def read(self) -> Any:
        from vcore.media import SourceEnded

        if self._closed.is_set():
            raise SourceEnded("closed")
        frame, t = self._frames.next()
        frame.pts = round(t * 1_000_000)
        frame.time_base = Fraction(1, 1_000_000)  # frame.time is the capture time, as vcore sources stamp it
        self.frames_read += 1
        return frame

    def close(self) -> None:
        self._closed.set()


class StampSink:
    """Reads the stamp of every decoded picture (in vcore's decode thread)."""

    def __init__(self, out: Out, directory: str) -> None:
        self.out = out
        self.directory = directory

    def write(self, frame: Any) -> None:
        t = time.monotonic()
        y = luma(frame)
        got = read_stamp(y)
        index, ms = got if got is not None else (None, None)
        self.out.write(kind="frame", t=t, index=index, capture_ms=ms, w=frame.width, h=frame.height)
        if index is not None and index % 30 == 0:
            import numpy as np

            np.save(os.path.join(self.directory, f"vcore_y_{index}.npy"), y.copy())

    def close(self) -> None:
        pass


def _terminal(args: argparse.Namespace, name: str, **kw: Any) -> Any:
    import vcore

    pki = Path(args.dir) / "pki"
    return vcore.Terminal(name, identity=pki / f"{name}.pem", trust=[pki / "ca" / "ca.cert.pem"],
                          bitrate=1_500_000, encoder="libx264", congestion_control=not args.no_cc, **kw)


async def send(args: argparse.Namespace, out: Out) -> None:
    from vcore.media import Tone

    kiosk = _terminal(args, "Kiosk", video=StampedSource(), audio=Tone(sample_rate=8000), host=args.host,
                      listen=False)
    async with kiosk:
        call = await kiosk.call(f"h323:caf-agent@{args.peer}:{PORT}")
        await asyncio.wait_for(call.connected, 20)
        end = time.monotonic() + args.seconds
        trace = asyncio.create_task(_trace_send(call, out)) if args.trace else None
        try:
            while time.monotonic() < end and call.ended is None:
                await asyncio.sleep(1.0)
                video = call.stats().stream("video", "send")
                if video is not None:
                    out.write(kind="send", t=time.monotonic(), target=video.target_bitrate, bytes=video.bytes,
                              size=video.size, queue=video.queue_delay, dropped=video.frames_dropped)
            video = call.stats().stream("video", "send")
            if video is not None:
                out.write(kind="send-summary", **{k: v for k, v in video.__dict__.items()})
        finally:
            if trace is not None:
                trace.cancel()
            await call.hangup()
    out.write(kind="end", t=time.monotonic())


async def _trace_send(call: Any, out: Out) -> None:
    """Diagnostics (``--trace``): the sender's internals five times a second (private attributes)."""
    while True:
        await asyncio.sleep(0.2)
        tx = getattr(call._media, "video_tx", None) if call._media is not None else None
        cc = getattr(tx, "congestion", None)
        if tx is None or cc is None:
            continue
        pacer = getattr(tx, "pacer", None)
        out.write(kind="tsend", t=time.monotonic(), target=cc.target, state=cc.state, queue=cc.queue_delay,
                  rate=cc.received_rate, loss=cc.loss, rtx=tx.retransmitted, kf=tx.keyframe_requests,
                  kf_ignored=tx.keyframe_requests_ignored, enc=tx.encoder.bitrate, bytes=tx.bytes_sent,
                  pq=getattr(getattr(pacer, "pacer", None), "queued_bytes", None),
                  held=getattr(tx, "frames_held", 0), nacks_ignored=getattr(tx, "nacks_ignored", 0),
                  deferred=getattr(tx, "_held_since", None) is not None,
                  queue_now=tx._queue_now(time.monotonic()) if hasattr(tx, "_queue_now") else None,
                  skipped=getattr(getattr(tx, "dropper", None), "dropped", 0), keyframes=tx.encoder.keyframes_out,
                  probes=cc.probes, through=cc.probes_through, probe_got=cc.probe_result)


async def _trace_recv(call: Any, out: Out) -> None:
    """Diagnostics (``--trace``): the video jitter buffer's counters five times a second."""
    while True:
        await asyncio.sleep(0.2)
        jb = getattr(call._media, "jitter", None) if call._media is not None else None
        if jb is None:
            continue
        st = jb.stats
        out.write(kind="trecv", t=time.monotonic(), delay=st.delay, jitter=st.jitter, late=st.late, lost=st.lost,
                  dropped=st.frames_dropped, released=st.frames_released, kfreq=st.keyframe_requests,
                  nacks=st.nacks_sent, recovered=st.recovered, rtt=jb.rtt)


async def recv(args: argparse.Namespace, out: Out) -> None:
    from vcore.media import TestPattern, Tone

    sink = StampSink(out, args.dir)
    audio_counts: dict[str, int] = {}
    last_video: dict[str, Any] = {}
    agent = _terminal(args, "CAF agent", video=lambda: TestPattern(320, 180, 5),
                      audio=lambda: Tone(sample_rate=8000), host=args.host, port=PORT, video_sink=lambda: sink)
    async with agent:
        Path(args.dir, "agent.ready").write_text("ok")
        async for offered in agent.incoming():
            call = await offered.answer()
            break
        trace = asyncio.create_task(_trace_recv(call, out)) if args.trace else None
        while call.ended is None:
            stats = call.stats()
            audio = stats.stream("audio", "receive")
            if audio is not None:
                audio_counts = {"frames": audio.frames, "concealed": audio.concealed}
            video = stats.stream("video", "receive")
            if video is not None:
                last_video = dict(video.__dict__)
            try:
                await asyncio.wait_for(call.wait_ended(), 1.0)
            except asyncio.TimeoutError:
                pass
        if trace is not None:
            trace.cancel()
    out.write(kind="recv-summary", **last_video)
    out.write(kind="audio", **audio_counts)
    out.write(kind="end", t=time.monotonic())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=["send", "recv"])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--peer", default="")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--no-cc", action="store_true")
    parser.add_argument("--trace", action="store_true", help="also log internals five times a second")
    args = parser.parse_args()
    out = Out(args.out)
    try:
        asyncio.run(send(args, out) if args.side == "send" else recv(args, out))
    except Exception as exc:  # one line for the harness's log, no traceback
        print(f"error: {exc!r}", file=sys.stderr)
        return 1
    finally:
        out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
