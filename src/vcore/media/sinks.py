"""Media sinks: recorder, speaker, null sink, frame queue and callback for applications.

A sink is anything with ``write(frame)`` and ``close()`` (:class:`Sink`); a
plain callable ``f(frame)`` works wherever a sink is taken (wrap it in
:class:`CallbackSink`). :class:`Speaker` plays audio through sounddevice
(PortAudio), imported only when a speaker is made; the on-screen display
lives in :mod:`vcore.media.display`, an optional extra the core never imports.

:class:`Recorder` writes received H.264 access units to MP4/MKV without
re-encoding (a remux: the file holds the very bitstream that arrived) and
received audio frames (encoded to AAC, the one audio codec both containers
play everywhere).
"""

from __future__ import annotations

import atexit
import collections
import io
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import av
import av.error
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler

from ..payload.h264 import AccessUnit
from ..rtp.seq import ts_diff
from .errors import MediaError, PipelineClosed

if TYPE_CHECKING:
    from .audio_processing import AudioProcessingStage

_log = logging.getLogger(__name__)

__all__ = ["Sink", "NullSink", "CallbackSink", "FrameQueue", "Recorder", "Speaker", "as_sink"]

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
_TB90K = Fraction(1, 90000)


class Sink(Protocol[T_contra]):
    """What the pipeline writes decoded frames (or units) to."""

    def write(self, item: T_contra) -> None: ...

    def close(self) -> None: ...


class NullSink:
    """Discards everything; counts it in ``count``. Thread-safe enough for counting from one writer."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, item: object) -> None:
        self.count += 1

    def close(self) -> None:
        pass


class CallbackSink(Generic[T]):
    """Calls ``callback(item)`` for each item, in the writer's thread (keep it short)."""

    def __init__(self, callback: Callable[[T], object]) -> None:
        self.callback = callback

    def write(self, item: T) -> None:
        self.callback(item)

    def close(self) -> None:
        pass


def as_sink(target: Any) -> Any:
    """A sink from a sink or a plain callable."""
    if hasattr(target, "write"):
        return target
    if callable(target):
        return CallbackSink(target)
    raise TypeError(f"{target!r} is neither a sink nor a callable")


class FrameQueue(Generic[T]):
    """Bounded queue that drops the OLDEST item when full, so a slow reader never builds latency.

    ``write`` never blocks; ``get(timeout)`` blocks up to ``timeout`` seconds and
    raises ``TimeoutError``; after ``close()`` a reader gets what is left, then
    :class:`PipelineClosed`. ``dropped`` counts items discarded. Thread-safe.
    """

    def __init__(self, maxsize: int = 2) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.dropped = 0
        self._items: collections.deque[T] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False

    def write(self, item: T) -> None:
        """Add an item (dropping the oldest when full); raises :class:`PipelineClosed` after close."""
        with self._cond:
            if self._closed:
                raise PipelineClosed("queue is closed")
            if len(self._items) >= self.maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()

    put = write

    def get(self, timeout: float | None = None) -> T:
        """The oldest item; see the class notes for timeouts and close."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                raise TimeoutError("no item within the timeout")
            if self._items:
                return self._items.popleft()
            raise PipelineClosed("queue is closed")

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Wake every reader; later writes raise (idempotent)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _check_writable(path: str) -> None:
    """A :class:`MediaError` unless ``path`` can be created or overwritten (nothing is created)."""
    folder = os.path.dirname(os.path.abspath(path))
    problem = ("is a directory" if os.path.isdir(path)
               else f"no such directory {folder!r}" if not os.path.isdir(folder)
               else "permission denied" if not os.access(folder, os.W_OK | os.X_OK)
               or (os.path.exists(path) and not os.access(path, os.W_OK)) else None)
    if problem is not None:
        raise MediaError(f"cannot write recording {path!r}: {problem}")


_open_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()


@atexit.register
def _finish_open_recorders() -> None:
    """At exit, finish recordings whose call was cancelled before it closed them (a playable file)."""
    for rec in list(_open_recorders):
        try:
            rec.close()
        except MediaError as exc:
            _log.warning("%s", exc)


class Recorder:
    """Writes received H.264 (remuxed, not re-encoded) and audio to an MP4 or MKV file.

    ``write_video(unit)`` takes :class:`AccessUnit` objects in decoding order;
    recording starts at the first keyframe (with SPS/PPS), and after an
    incomplete unit it skips to the next keyframe, so the file never holds a
    broken picture. Video timestamps come from the RTP timestamps (90 kHz).
    ``write_audio(frame)`` takes PyAV audio frames of any format; they are
    encoded to AAC and timed by sample count. The container is chosen from the
    file name (``container`` overrides: ``"mp4"``, ``"matroska"``).
    ``video_frames`` / ``audio_frames`` count what was written.

    ``at`` (optional, seconds on any clock both streams share, e.g. arrival
    time) places each stream's first item on the file's timeline: audio kept
    from before the first keyframe then starts that much earlier than the
    video, instead of both starting at zero. The receivers pass arrival times.

    Several writers (an audio and a video receiver) can share one recorder:
    each calls ``attach()`` when it starts and ``detach()`` when it is done; the
    file is finished when the last one detaches, or at once by ``close()``.

    The file is created at the first keyframe, not before: a call that never
    got a picture leaves no file (and does not truncate one already there). The
    constructor only checks that the path can be written. ``close()`` finishes
    the file (the MP4 index, ``moov``); an MP4 that could not be finished is
    removed (an MKV plays without its index and is kept). Write errors (a full
    disk) are :class:`MediaError`. A recorder still open when the interpreter exits (its call was
    cancelled before closing it) is finished then.

    Thread-safe: writes and ``close()`` are serialized by a lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        container: str | None = None,
        audio: bool = False,
        audio_rate: int = 48000,
    ) -> None:
        self.path = os.fspath(path)
        self._format = container
        self._lock = threading.Lock()
        self._out: Any = None
        self._video: Any = None
        self._audio: Any = None
        self._want_audio = audio
        self._audio_rate = audio_rate
        self._resampler: AudioResampler | None = None
        self._audio_pts = 0
        self._pending_audio: list[tuple[AudioFrame, float | None]] = []
        self._origin: float | None = None
        self._video_offset = 0
        self._audio_offset: int | None = None
        self._users = 0
        self._first_ts: int | None = None
        self._last_pts = -1
        self._last_ts = 0
        self._ext_ts = 0
        self._need_key = True
        self._closed = False
        self.video_frames = 0
        self.audio_frames = 0
        self.skipped = 0
        _check_writable(self.path)  # fail now, not at the first keyframe; create nothing yet

    def attach(self) -> None:
        """One more writer shares this recorder (see :meth:`detach`)."""
        with self._lock:
            self._users += 1

    def detach(self) -> None:
        """A writer is done; the last one to detach finishes the file."""
        with self._lock:
            self._users -= 1
            last = self._users <= 0
        if last:
            self.close()

    def _start(self, keyframe: AccessUnit, at: float | None) -> None:
        # The stream parameters (size, avcC extradata) come from the bitstream itself:
        # parse the first keyframe with FFmpeg's raw H.264 demuxer and copy that stream.
        probe = av.open(io.BytesIO(keyframe.data), format="h264")
        out: Any = None
        try:
            out = av.open(self.path, "w", format=self._format)
            self._video = out.add_stream_from_template(probe.streams.video[0])
            self._video.time_base = _TB90K
            if self._want_audio:
                self._audio = out.add_stream("aac", rate=self._audio_rate, layout="mono")
                self._resampler = AudioResampler(format="fltp", layout="mono", rate=self._audio_rate, frame_size=1024)
            out.start_encoding()
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            if out is not None:  # created (or truncated) by us: half a header is no recording
                self._discard(out)
            raise MediaError(f"cannot record to {self.path!r}: {exc}") from exc
        finally:
            probe.close()
        _open_recorders.add(self)
        self._out = out
        if at is not None:
            times = [at] + [t for _, t in self._pending_audio if t is not None]
            self._origin = min(times)
            self._video_offset = round((at - self._origin) * 90000)
        for frame, t in self._pending_audio:
            self._encode_audio(frame, t)
        self._pending_audio.clear()

    def write_video(self, unit: AccessUnit, at: float | None = None) -> None:
        """Record one access unit (see the class notes)."""
        with self._lock:
            if self._closed:
                raise PipelineClosed(f"recorder {self.path!r} is closed")
            if not unit.complete:
                self._need_key = True
                self.skipped += 1
                return
            if self._need_key and not unit.keyframe:
                self.skipped += 1
                return
            if self._out is None:
                self._start(unit, at)
                self._first_ts = unit.timestamp
                self._last_ts = unit.timestamp
            self._need_key = False
            self._ext_ts += ts_diff(unit.timestamp, self._last_ts)
            self._last_ts = unit.timestamp
            pts = max(self._ext_ts + self._video_offset, self._last_pts + 1)
            self._last_pts = pts
            packet = av.Packet(unit.data)
            packet.pts = packet.dts = pts
            packet.time_base = _TB90K
            packet.is_keyframe = unit.keyframe
            packet.stream = self._video
            self._mux(packet)
            self.video_frames += 1

    def write(self, item: AccessUnit | AudioFrame) -> None:
        """Sink interface: an :class:`AccessUnit` goes to video, an ``AudioFrame`` to audio."""
        if isinstance(item, AudioFrame):
            self.write_audio(item)
        else:
            self.write_video(item)

    def write_audio(self, frame: AudioFrame, at: float | None = None) -> None:
        """Record audio (needs ``audio=True``); audio before the first keyframe is kept for the start."""
        with self._lock:
            if self._closed:
                raise PipelineClosed(f"recorder {self.path!r} is closed")
            if not self._want_audio:
                raise MediaError("this recorder was made without audio=True")
            if self._out is None:
                self._pending_audio.append((frame, at))
                del self._pending_audio[:-250]  # at most ~5 s before the first picture
                return
            self._encode_audio(frame, at)

    def _encode_audio(self, frame: AudioFrame | None, at: float | None = None) -> None:
        assert self._resampler is not None
        if self._audio_offset is None and frame is not None:
            # the first audio: where it sits on the timeline the first keyframe started
            offset = 0.0 if at is None or self._origin is None else max(0.0, at - self._origin)
            self._audio_offset = round(offset * self._audio_rate)
            self._audio_pts = self._audio_offset
        for f in self._resampler.resample(frame):
            f.pts = self._audio_pts
            f.time_base = Fraction(1, self._audio_rate)
            self._audio_pts += f.samples
            self._mux(self._audio.encode(f))
            self.audio_frames += 1

    def _mux(self, packets: Any) -> None:
        try:
            self._out.mux(packets)
        except (av.error.FFmpegError, OSError) as exc:  # a full disk: the receivers stop recording, the call goes on
            raise MediaError(f"cannot write recording {self.path!r}: {exc}") from exc

    def close(self) -> None:
        """Finish the file (idempotent). A recording that never saw a keyframe leaves no file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            _open_recorders.discard(self)
            if self._out is None:
                return
            try:
                if self._audio is not None:
                    self._encode_audio(None)
                    self._out.mux(self._audio.encode(None))
                self._out.close()
            except (av.error.FFmpegError, OSError, MediaError) as exc:
                keep = "matroska" in str(getattr(self._out.format, "name", ""))  # MKV plays without its index
                if not keep:  # an MP4 without its moov plays nowhere
                    self._discard(self._out)
                raise MediaError(f"cannot finish recording {self.path!r}"
                                 f"{'' if keep else ' (removed)'}: {exc}") from exc
            finally:
                self._out = None
            if self.video_frames == 0:  # nothing made it into the file
                self._discard(None)

    def _discard(self, out: Any) -> None:
        """Close ``out`` (when given) quietly and remove the file this recorder created."""
        try:
            if out is not None:
                out.close()
        except (av.error.FFmpegError, OSError):
            pass
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Speaker:
    """Plays decoded audio frames on an output device through sounddevice (PortAudio); never blocks the writer.

    ``device``: None (the system's default output), an index or a name as
    :func:`~vcore.media.sources.find_audio_device` takes (``"hw:0,0"``,
    ``"USB Audio"``, ``"pulse"``). ``sample_rate``: None plays at the device's
    default rate. Frames of any rate, sample format and layout are converted
    (PyAV's ``AudioResampler``) to s16 with ``channels`` at that rate.

    ``write()`` only appends to a buffer of at most ``max_delay`` seconds: when
    the device falls behind, the oldest samples are dropped (``dropped``
    counts samples), so the receive thread is never blocked and no delay
    builds up. Playback starts once ``prebuffer`` seconds are buffered, and
    again after the buffer ran dry (``underruns``); meanwhile the device plays
    silence. ``played`` counts samples handed to the device. A device that
    cannot be opened raises :class:`~vcore.media.errors.DeviceNotFound`.

    ``processing``: an :class:`~vcore.media.audio_processing.AudioProcessingStage`
    that PortAudio's callback hands every block as played (with the time it
    reaches the converter): the echo canceller's reference. Set by
    :func:`vcore.media.audio_processing.attach`.

    Thread-safety: ``write()`` from one thread (the decode thread); PortAudio's
    callback thread takes samples under a lock; ``close()`` from any thread but
    that callback. ``write()`` after ``close()`` raises :class:`PipelineClosed`.
    """

    def __init__(
        self,
        device: str | int | None = None,
        *,
        sample_rate: int | None = None,
        channels: int = 1,
        max_delay: float = 0.2,
        prebuffer: float = 0.04,
    ) -> None:
        from .errors import DeviceNotFound
        from .sources import _sounddevice, find_audio_device

        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        sd = _sounddevice()
        info = find_audio_device(device, "output")
        self.name = str(info["name"])
        self.sample_rate = sample_rate or int(info["default_samplerate"])
        self.channels = channels
        self.dropped = self.underruns = self.played = 0
        self.processing: AudioProcessingStage | None = None
        self._bytes_per_sample = 2 * channels
        self._cap = max(1, round(max_delay * self.sample_rate)) * self._bytes_per_sample
        self._prime = min(self._cap, round(prebuffer * self.sample_rate) * self._bytes_per_sample)
        self._primed = False
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._closed = False
        self._resampler = AudioResampler(format="s16", layout="mono" if channels == 1 else "stereo",
                                         rate=self.sample_rate)
        try:
            self._stream: Any = sd.RawOutputStream(samplerate=self.sample_rate, device=info["index"],
                                                   channels=channels, dtype="int16", latency="low",
                                                   callback=self._on_output)
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceNotFound(f"cannot open speaker {self.name!r} ({channels} channel(s), "
                                 f"{self.sample_rate} Hz): {exc}") from None

    def write(self, frame: AudioFrame) -> None:
        """Queue a frame for playback (never blocks; see the class notes)."""
        if self._closed:
            raise PipelineClosed(f"speaker {self.name!r} is closed")
        data = b"".join(f.to_ndarray().tobytes() for f in self._resampler.resample(frame))
        with self._lock:
            self._buf += data
            excess = len(self._buf) - self._cap
            if excess > 0:
                del self._buf[:excess]
                self.dropped += excess // self._bytes_per_sample

    def _on_output(self, out: Any, frames: int, when: Any, status: Any) -> None:
        """PortAudio's callback thread: the buffered samples, silence for what is missing."""
        need = len(out)
        with self._lock:
            if not self._primed and len(self._buf) >= self._prime:
                self._primed = True
            take = min(need, len(self._buf)) if self._primed else 0
            out[:take] = self._buf[:take]
            del self._buf[:take]
            if self._primed and take < need:
                self._primed = False
                self.underruns += 1
            self.played += take // self._bytes_per_sample
        if take < need:
            out[take:] = bytes(need - take)
        stage = self.processing
        if stage is not None:  # the far end exactly as played: the echo canceller's reference
            lag = when.outputBufferDacTime - when.currentTime
            now = time.monotonic()
            stage.played(bytes(out), self.channels, self.sample_rate, now + lag if 0.0 <= lag < 1.0 else now)

    @property
    def buffered(self) -> float:
        """Seconds of sound waiting to be played."""
        return len(self._buf) / self._bytes_per_sample / self.sample_rate

    def close(self) -> None:
        """Stop playing at once, dropping what is buffered (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._stream.abort()
            self._stream.close()
        except Exception as exc:  # pragma: no cover - a device that vanished
            _log.debug("closing speaker %r: %s", self.name, exc)

    def __enter__(self) -> Speaker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
