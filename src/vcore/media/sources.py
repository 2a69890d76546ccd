"""Media sources: PyAV frames stamped with their monotonic capture time.

Every source's ``read()`` blocks until the next frame is due and returns a PyAV
``VideoFrame`` or ``AudioFrame`` whose ``pts`` is the capture instant in
microseconds of ``time.monotonic()`` (``time_base`` 1/1000000), so
``frame.time`` is the capture time in seconds. Devices pace themselves;
generated and file sources are paced to real time (``realtime=False`` reads as
fast as possible, still stamping the time of reading).

Bad input gives clear errors: a device or file that does not exist raises
:class:`DeviceNotFound` at construction; a device that fails or stops while
reading (a camera unplugged: V4L2 reports ENODEV) raises :class:`DeviceError`;
a file that ends without ``loop`` and any read after ``close()`` raise
:class:`SourceEnded`. FFmpeg's read timeout (``read_timeout``) bounds reads
from network inputs; a local device read that blocks in the kernel cannot be
interrupted, so the pipeline joins its capture thread with a timeout.

Thread-safety: one thread reads; ``close()`` may be called from any thread and
wakes a reader waiting for the next frame's due time.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal, Union

import av
import av.error
import numpy as np
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from .errors import DeviceError, DeviceNotFound, SourceEnded

if TYPE_CHECKING:
    from .audio_processing import AudioProcessingStage

_log = logging.getLogger(__name__)

__all__ = [
    "Frame",
    "Source",
    "TestPattern",
    "Tone",
    "FileSource",
    "Camera",
    "Microphone",
    "find_audio_device",
    "ScreenSource",
    "CAPTURE_TIME_BASE",
    "capture_time",
]

Frame = Union[VideoFrame, AudioFrame]
CAPTURE_TIME_BASE = Fraction(1, 1_000_000)
_MAX_LATE = 0.5  # seconds behind schedule after which pacing restarts instead of bursting


def capture_time(frame: Frame) -> float:
    """The capture time (``time.monotonic()`` seconds) a source stamped on ``frame``."""
    t = frame.time
    if t is None:
        raise ValueError("frame carries no capture time (pts is None)")
    return float(t)


class Source:
    """A blocking source of stamped PyAV frames on top of an FFmpeg input (see the module notes).

    ``kind`` is ``"video"`` or ``"audio"``; ``frames_read`` counts frames returned.
    Iterating yields frames until the source ends or is closed.
    """

    kind: Literal["video", "audio"]

    def __init__(
        self,
        url: str,
        input_format: str | None,
        options: dict[str, str] | None = None,
        *,
        kind: Literal["video", "audio"] = "video",
        realtime: bool = True,
        loop: bool = False,
        live: bool = False,
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
    ) -> None:
        self.kind = kind
        self.live = live
        self.url = url
        self.input_format = input_format
        self.realtime = realtime
        self.loop = loop
        self.frames_read = 0
        self.frames_skipped = 0
        self._options = dict(options or {})
        self._timeout = (open_timeout, read_timeout)
        self._closed = threading.Event()
        self._io_lock = threading.Lock()
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._media_offset = 0.0  # added to media time after each loop
        self._last_media = 0.0
        self._anchor: tuple[float, float] | None = None  # (media time, monotonic)
        self._open()

    def _describe(self) -> str:
        return f"{self.input_format or 'file'} {self.url!r}"

    def _open(self) -> None:
        try:
            container = av.open(
                self.url, mode="r", format=self.input_format, options=self._options, timeout=self._timeout
            )
        except (av.error.FFmpegError, OSError, ValueError) as exc:  # ValueError: an input FFmpeg lacks ("pulse")
            raise DeviceNotFound(f"cannot open {self._describe()}: {exc}") from exc
        streams = container.streams.video if self.kind == "video" else container.streams.audio
        if not streams:
            container.close()
            raise DeviceNotFound(f"{self._describe()} has no {self.kind} stream")
        self._container = container
        self._frames = container.decode(streams[0])
        rate = getattr(streams[0], "average_rate", None) or getattr(streams[0], "guessed_rate", None)
        self._period = float(1 / rate) if rate else 1 / 30

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called or the source ended."""
        return self._closed.is_set()

    def read(self) -> Frame:
        """The next frame, blocking until it is due (see the module notes for the errors).

        A paced video source that has fallen more than one and a half frames
        behind its schedule (its reader was busy) skips the stale frames,
        counted in ``frames_skipped``, instead of building latency.
        """
        while True:
            with self._io_lock:
                if self._closed.is_set() or self._frames is None:
                    raise SourceEnded(f"{self._describe()} is closed")
                try:
                    frame = self._next_frame()
                except BaseException:
                    self._close_container()
                    raise
                if self._closed.is_set():
                    self._close_container()
                    raise SourceEnded(f"{self._describe()} is closed")
            if not self.realtime or self._pace(frame):
                break
            self.frames_skipped += 1
        now = time.monotonic()
        frame.pts = round(now * 1_000_000)
        frame.time_base = CAPTURE_TIME_BASE
        self.frames_read += 1
        return frame

    def _next_frame(self) -> Frame:
        while True:
            frames = self._frames
            assert frames is not None
            try:
                frame: Frame = next(frames)
                break
            except StopIteration:
                if self.live:  # a device has no end: it went away
                    self._closed.set()
                    raise DeviceError(f"{self._describe()} stopped delivering frames (unplugged?)") from None
                if not self.loop or self.frames_read == 0:
                    self._closed.set()
                    raise SourceEnded(f"{self._describe()} ended") from None
                _log.debug("%s ended; looping", self._describe())
                self._media_offset = self._last_media + self._frame_period()
                self._container.close()
                self._frames = None
                self._open()
            except (av.error.FFmpegError, OSError) as exc:
                self._closed.set()
                raise DeviceError(f"{self._describe()} failed while reading: {exc}") from exc
        return frame

    def _frame_period(self) -> float:
        return 0.0 if self.kind == "audio" else self._period

    def _pace(self, frame: Frame) -> bool:
        """Wait until ``frame`` is due; False when it is stale and should be skipped."""
        t = frame.time
        if t is None:
            return True
        media = float(t) + self._media_offset
        self._last_media = media
        if isinstance(frame, AudioFrame) and frame.sample_rate:
            media_end = media + frame.samples / frame.sample_rate
        else:
            media_end = media
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = (media_end, now)
            return True
        due = self._anchor[1] + (media_end - self._anchor[0])
        if due - now < -_MAX_LATE:  # far behind (a stall): restart the schedule here
            self._anchor = (media_end, now)
            return True
        if self.kind == "video" and due - now < -1.5 * self._period:
            return False
        if due > now and self._closed.wait(due - now):
            raise SourceEnded(f"{self._describe()} is closed")
        return True

    def _close_container(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception as exc:  # pragma: no cover - best effort
                _log.debug("closing %s: %s", self._describe(), exc)
            self._container = None
            self._frames = None

    def close(self) -> None:
        """Stop the source (idempotent; callable from any thread)."""
        self._closed.set()
        if self._io_lock.acquire(blocking=False):
            try:
                self._close_container()
            finally:
                self._io_lock.release()
        # else the reading thread closes the container when its read returns

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                yield self.read()
            except SourceEnded:
                return

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._describe()})"


class TestPattern(Source):
    """FFmpeg's ``testsrc`` (lavfi): colour bars with a running clock burned in; needs no hardware.

    ``pattern`` may name another lavfi video source (``testsrc2``, ``smptehdbars``,
    ``mandelbrot``...); only ``testsrc`` draws the clock.
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        *,
        pattern: str = "testsrc",
        realtime: bool = True,
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        rate = Fraction(fps).limit_denominator(1001)
        graph = f"{pattern}=size={width}x{height}:rate={rate}"
        if pattern == "testsrc":
            graph += ":decimals=2"
        super().__init__(f"{graph},format=yuv420p", "lavfi", kind="video", realtime=realtime)


class Tone(Source):
    """FFmpeg's ``sine`` (lavfi): a tone with a beep every second (the audible clock); no hardware.

    Frames of ``samples_per_frame`` samples (default 20 ms) at ``sample_rate``, mono s16.
    """

    def __init__(
        self,
        frequency: float = 440.0,
        sample_rate: int = 48000,
        *,
        samples_per_frame: int | None = None,
        beep: bool = True,
        realtime: bool = True,
    ) -> None:
        spf = samples_per_frame or sample_rate // 50
        graph = f"sine=frequency={frequency}:sample_rate={sample_rate}:samples_per_frame={spf}"
        if beep:
            graph += ":beep_factor=2"
        super().__init__(f"{graph},aformat=sample_fmts=s16:channel_layouts=mono", "lavfi", kind="audio", realtime=realtime)


class FileSource(Source):
    """Plays a media file in real time, looping by default (``loop=False``: :class:`SourceEnded` at its end)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        kind: Literal["video", "audio"] = "video",
        loop: bool = True,
        realtime: bool = True,
    ) -> None:
        path = os.fspath(path)
        if "://" not in path and not os.path.exists(path):
            raise DeviceNotFound(f"media file {path!r} does not exist")
        super().__init__(path, None, kind=kind, loop=loop, realtime=realtime)


class Camera(Source):
    """A V4L2 camera through PyAV (``/dev/videoN``): size, frame rate, raw or MJPEG input.

    ``input_format``: ``"mjpeg"``, ``"yuyv422"``, ... or None for the driver's
    default. A read that stalls for ``read_timeout`` seconds raises :class:`DeviceError`.
    """

    def __init__(
        self,
        device: str = "/dev/video0",
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        *,
        input_format: str | None = None,
        read_timeout: float = 5.0,
    ) -> None:
        if not os.path.exists(device):
            raise DeviceNotFound(f"camera {device!r} does not exist")
        options: dict[str, str] = {}
        if width and height:
            options["video_size"] = f"{width}x{height}"
        if fps:
            options["framerate"] = str(Fraction(fps).limit_denominator(1001))
        if input_format:
            options["input_format"] = input_format
        super().__init__(device, "v4l2", options, kind="video", realtime=False, live=True, read_timeout=read_timeout)


def _sounddevice() -> Any:
    """The sounddevice module, or :class:`DeviceNotFound` saying what to install.

    sounddevice's Linux wheel is pure Python: it loads the system's PortAudio
    (Debian: ``libportaudio2``), which drives ALSA with Debian's own ALSA config.
    """
    try:
        import sounddevice
    except ImportError as exc:
        raise DeviceNotFound("audio devices need the sounddevice package: pip install sounddevice") from exc
    except OSError as exc:  # sounddevice is there, the PortAudio library is not
        raise DeviceNotFound(f"audio devices need PortAudio ({exc}): apt-get install libportaudio2") from exc
    return sounddevice


def find_audio_device(device: str | int | None, kind: Literal["input", "output"]) -> dict[str, Any]:
    """PortAudio's description of an audio device (``index``, ``name``, ``default_samplerate``...).

    ``device``: None (the system's default), an index (``3`` or ``"3"``), or a name:
    exact, or words that occur in one device's name only (``"hw:1,0"``, ``"USB"``),
    as ``vcore devices`` lists them. Raises :class:`DeviceNotFound`.
    """
    sd = _sounddevice()
    what = "microphone" if kind == "input" else "speaker"
    if isinstance(device, str) and device.strip().isdigit():
        device = int(device)
    try:
        info: dict[str, Any] = dict(sd.query_devices(device, kind))
    except (ValueError, sd.PortAudioError) as exc:
        named = "no default" if device is None else f"no {device!r}"
        raise DeviceNotFound(f"{named} {what}: {exc} (vcore devices lists the audio devices)") from None
    return info


class Microphone(Source):
    """A microphone: PortAudio through sounddevice, or an FFmpeg input for ``pulse:NAME`` / ``alsa:NAME``.

    ``device``: None (the system's default input), an index or a name as
    :func:`find_audio_device` takes (``"hw:1,0"``, ``"USB Audio"``, ``"pulse"``
    for PulseAudio/PipeWire through their ALSA plugin). A name with the prefix
    ``pulse:`` or ``alsa:`` (or ``backend="pulse"``/``"alsa"``) uses FFmpeg's
    input of that name instead, which needs a PyAV built against a system
    FFmpeg: the PyAV wheel has no PulseAudio and its ALSA finds no config.

    PortAudio: mono or stereo (``channels``) s16 frames of ``frame_duration``
    (20 ms) at ``sample_rate``; a device that refuses that rate is opened at its
    own default rate (``sample_rate`` tells which). Each frame is stamped with
    the capture time of its last sample. PortAudio's callback thread only copies
    the samples into a queue of ``buffer`` seconds; when the reader falls behind
    the oldest block is dropped (counted in ``overruns``). ``read()`` raises
    :class:`DeviceError` when the device delivers nothing for ``read_timeout``
    seconds (unplugged), :class:`SourceEnded` after ``close()``.
    A device that cannot be opened raises :class:`DeviceNotFound`.

    ``processing``: an :class:`~vcore.media.audio_processing.AudioProcessingStage`
    (echo cancellation against a speaker, noise suppression, gain control) that
    ``read()`` runs each frame through, in the reading thread; set by
    :func:`vcore.media.audio_processing.attach`, closed with the microphone.

    Thread-safety: one thread reads; ``close()`` may be called from any thread.
    """

    def __init__(
        self,
        device: str | int | None = None,
        *,
        backend: Literal["sounddevice", "pulse", "alsa"] | None = None,
        sample_rate: int = 48000,
        channels: int = 1,
        frame_duration: float = 0.02,
        buffer: float = 1.0,
        read_timeout: float = 5.0,
    ) -> None:
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        text = "default" if device is None else str(device)
        prefix, colon, rest = text.partition(":")
        if backend is None and colon and prefix in ("pulse", "alsa"):
            backend, text = ("pulse" if prefix == "pulse" else "alsa"), rest
        self.backend: Literal["sounddevice", "pulse", "alsa"] = backend or "sounddevice"
        self.device = device
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_duration = frame_duration
        self.overruns = 0
        self.processing: AudioProcessingStage | None = None
        self._read_timeout = read_timeout
        self._stream: Any = None
        self._blocks: collections.deque[tuple[bytes, float]] = collections.deque(
            maxlen=max(1, round(buffer / frame_duration)))
        self._cond = threading.Condition()
        self._ended = False  # PortAudio finished the stream (the device went away)
        options = {"sample_rate": str(sample_rate), "channels": str(channels)}
        fmt = None if self.backend == "sounddevice" else self.backend
        super().__init__(text, fmt, options, kind="audio", realtime=False, live=True, read_timeout=read_timeout)

    def _describe(self) -> str:
        return f"microphone {self.url!r}" if self.backend == "sounddevice" else super()._describe()

    def _open(self) -> None:
        if self.backend != "sounddevice":
            super()._open()
            return
        sd = _sounddevice()
        info = find_audio_device(self.device, "input")
        self.url = str(info["name"])
        rates = dict.fromkeys((self.sample_rate, int(info["default_samplerate"])))
        error: Exception | None = None
        for rate in rates:
            try:
                self._stream = sd.RawInputStream(
                    samplerate=rate, blocksize=round(rate * self.frame_duration), device=info["index"],
                    channels=self.channels, dtype="int16", latency="low",
                    callback=self._on_audio, finished_callback=self._on_finished)
                self.sample_rate = rate
                self._stream.start()
                return
            except (sd.PortAudioError, ValueError) as exc:
                error = exc
                if self._stream is not None:
                    self._stream.close()
                    self._stream = None
        raise DeviceNotFound(f"cannot open {self._describe()} ({self.channels} channel(s), "
                             f"{' or '.join(map(str, rates))} Hz): {error}")

    def _on_audio(self, data: Any, frames: int, when: Any, status: Any) -> None:
        """PortAudio's callback thread: keep the samples and their capture time (nothing slow here)."""
        now = time.monotonic()
        age = when.currentTime - when.inputBufferAdcTime - frames / self.sample_rate  # of the last sample
        stamp = now - age if 0.0 < age < 1.0 else now
        with self._cond:
            if len(self._blocks) == self._blocks.maxlen:
                self.overruns += 1
            self._blocks.append((bytes(data), stamp))
            self._cond.notify()

    def _on_finished(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def read(self) -> Frame:
        """The next captured frame, blocking until PortAudio delivers it (see the class notes)."""
        if self.backend != "sounddevice":
            return super().read()
        with self._cond:
            ready = self._cond.wait_for(lambda: self._blocks or self._ended or self._closed.is_set(),
                                        self._read_timeout)
            if self._closed.is_set():
                raise SourceEnded(f"{self._describe()} is closed")
            if not self._blocks:
                why = "stopped" if ready else f"delivered nothing for {self._read_timeout:g} s"
                raise DeviceError(f"{self._describe()} {why} (unplugged?)")
            data, stamp = self._blocks.popleft()
        pcm = np.frombuffer(data, dtype=np.int16).reshape(1, -1)
        stage = self.processing
        if stage is not None:  # echo cancellation & co. in this thread; 10 ms frames, none held for 20 ms blocks
            processed, stamp = stage.capture(pcm, stamp)
            if not len(processed):
                return self.read()  # a block shorter than 10 ms: held for the next one
            pcm = processed.reshape(1, -1)
        frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono" if self.channels == 1 else "stereo")
        frame.sample_rate = self.sample_rate
        frame.pts = round(stamp * 1_000_000)
        frame.time_base = CAPTURE_TIME_BASE
        self.frames_read += 1
        return frame

    def close(self) -> None:
        """Stop capturing (idempotent; callable from any thread but PortAudio's callback)."""
        if self.backend != "sounddevice":
            super().close()
            return
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        with self._io_lock:
            stream, self._stream = self._stream, None
        if self.processing is not None:
            self.processing.close()
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception as exc:  # pragma: no cover - a device that vanished
                _log.debug("closing %s: %s", self._describe(), exc)


class ScreenSource(Source):
    """The X11 screen (x11grab) for content sharing: ``display`` like ``":0.0"``, optional region."""

    def __init__(
        self,
        display: str | None = None,
        width: int | None = None,
        height: int | None = None,
        fps: float = 10.0,
        *,
        offset: tuple[int, int] = (0, 0),
    ) -> None:
        display = display or os.environ.get("DISPLAY") or ":0.0"
        options = {"framerate": str(Fraction(fps).limit_denominator(1001)), "draw_mouse": "1"}
        if width and height:
            options["video_size"] = f"{width}x{height}"
        url = f"{display}+{offset[0]},{offset[1]}" if offset != (0, 0) else display
        super().__init__(url, "x11grab", options, kind="video", realtime=False, live=True)
