"""Recording a call from the agent's console, from when the agent presses ``r`` to when they stop it.

The terminal's own recorder (``answer(record=...)``) records a whole call from
its first keyframe by remuxing the received H.264; the console records a
part of it, from any moment, so it encodes the decoded pictures and sound
again (libx264 ``veryfast``, AAC) in its own thread, fed through a bounded
queue that drops the oldest frames when the encoder falls behind (the call is
never slowed down). :class:`Tee` is the call's sink that feeds the screen and,
while a recording runs, the recorder.
"""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ..media.errors import PipelineClosed
from ..media.sinks import FrameQueue

log = logging.getLogger(__name__)

__all__ = ["CallRecorder", "Tee"]

_FPS = 25  # the recording's frame rate (pictures are placed by arrival time)


class Tee:
    """A sink writing each frame to ``first`` (may be None) and to the current recording, if any."""

    def __init__(self, first: Any, kind: str) -> None:
        self.first, self.kind = first, kind
        self.recorder: CallRecorder | None = None

    def write(self, frame: Any) -> None:
        if self.first is not None:
            self.first.write(frame)
        rec = self.recorder
        if rec is not None:
            rec.write(self.kind, frame)

    def close(self) -> None:
        if self.first is not None:
            self.first.close()


class CallRecorder:
    """Encodes ``write(kind, frame)``s (``kind``: video/audio) to ``path`` (MP4/MKV) until :meth:`stop`."""

    def __init__(self, path: str | Path, *, audio: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._audio = audio
        self._queue: FrameQueue[tuple[str, float, Any]] = FrameQueue(maxsize=64)
        self.video_frames = self.audio_frames = 0
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="vcore console recorder", daemon=True)
        self._thread.start()
        log.info("recording to %s", self.path)

    def write(self, kind: str, frame: Any) -> None:
        if kind == "audio" and not self._audio:
            return
        try:
            self._queue.write((kind, time.monotonic() - self._t0, frame))
        except PipelineClosed:
            pass

    def finish(self) -> None:
        """Take no more frames; the encoder thread finishes the file on its own (never blocks)."""
        self._queue.close()

    def stop(self) -> None:
        """Finish the file (blocks until the encoder has written what it had)."""
        self._queue.close()
        self._thread.join(30)
        log.info("recording stopped: %s (%d pictures)", self.path, self.video_frames)

    def _run(self) -> None:
        out: Any = None
        vs: Any = None
        aus: Any = None
        resampler: Any = None
        last_pts = -1
        start = 0.0
        samples = 0
        try:
            out = av.open(str(self.path), "w")
            while True:
                try:
                    kind, at, frame = self._queue.get(timeout=1.0)
                except TimeoutError:
                    continue
                except PipelineClosed:
                    break
                if vs is None and kind == "video":
                    start = at  # the file's time zero: its first picture
                if kind == "video":
                    if vs is None:
                        vs = out.add_stream("libx264", rate=_FPS)
                        vs.width, vs.height, vs.pix_fmt = frame.width, frame.height, "yuv420p"
                        vs.options = {"preset": "veryfast", "tune": "zerolatency"}
                        if self._audio:  # every stream before the first packet (the MP4 header lists them)
                            aus = out.add_stream("aac", rate=48000)
                            aus.layout = "mono"
                            resampler = av.AudioResampler(format="fltp", layout="mono", rate=48000)
                    pts = int((at - start) * _FPS)
                    if pts <= last_pts:
                        continue
                    last_pts = pts
                    f = frame.reformat(width=vs.width, height=vs.height, format="yuv420p")
                    f.pts, f.time_base = pts, Fraction(1, _FPS)
                    out.mux(vs.encode(f))
                    self.video_frames += 1
                elif aus is not None:  # audio once the picture started (the file opens on a picture)
                    if not self.audio_frames:
                        samples = int((at - start) * 48000)
                    for r in resampler.resample(frame):
                        r.pts, r.time_base = samples, Fraction(1, 48000)
                        samples += r.samples
                        out.mux(aus.encode(r))
                        self.audio_frames += 1
            for s in (vs, aus):
                if s is not None:
                    out.mux(s.encode(None))
        except Exception as exc:  # a codec or disk failure ends the recording, never the call
            log.error("recording %s failed: %s", self.path, exc)
        finally:
            if out is not None:
                out.close()
