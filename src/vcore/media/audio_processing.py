"""Echo cancellation, noise suppression, gain control and high-pass filter on the send path of a call.

The kiosk is one box: the loudspeaker that plays the agent sits centimetres
from the microphone. Without acoustic echo cancellation (AEC) the agent hears
their own voice come back. This module is the processing stage between the
:class:`~vcore.media.sources.Microphone` and the speech encoder:

* :class:`AudioProcessor` is the 10 ms engine interface: ``process_render``
  takes the far-end signal as played (the echo's reference),
  ``process_capture`` cleans a captured frame, ``set_delay`` tells the
  render-to-capture delay, ``stats`` counts.
* :class:`WebRtcProcessor`: WebRTC's audio processing module (AEC3, noise
  suppression, AGC2, high-pass filter) as the ``livekit`` package ships it
  (manylinux wheels for x86-64 and aarch64). The default: it estimates the
  echo delay itself and handles loudspeaker nonlinearity with its suppressor.
* :class:`PyWebRtcProcessor`: the same WebRTC module (AEC3, NS with its four
  levels, AGC2, high-pass filter) as the ``pywebrtc-audio`` package ships it
  (a 0.4 MB pybind11 wheel for x86-64 and aarch64; not a dependency). The
  second choice: measured as livekit's (the same AEC3), for about twice the CPU.
* :class:`SpeexProcessor`: SpeexDSP's MDF echo canceller and preprocessor
  (noise suppression, AGC, residual echo suppression) through ctypes on the
  system library (Debian: ``libspeexdsp1``). The fallback when neither WebRTC
  package is installed; see ``docs/audio-processing.md`` for why it comes last.
* :class:`AudioProcessingStage` joins a speaker and a microphone: the
  speaker's PortAudio callback hands it every block as played with the time it
  reaches the converter (cheap: a copy into a bounded deque); the
  microphone's reading thread (the audio send thread, never the event loop)
  feeds the processor the render blocks played up to each captured 10 ms
  frame, then that frame. Device buffering thus cancels out; what remains for
  the canceller is the acoustic path and converter jitter, plus any delay set
  with :meth:`AudioProcessingStage.set_delay`. Frames that are a multiple of
  10 ms (the microphone's 20 ms) come out at once: no added latency; other
  sizes hold at most one 10 ms frame.
* :func:`attach` wires a stage between a real ``Microphone`` and ``Speaker``
  (``mode`` ``"auto"``: on, WebRTC through livekit when installed, else
  through pywebrtc-audio, else SpeexDSP); test sources get none.

Thread-safety: a processor is used from one thread. A stage's ``played`` may
be called from the speaker's callback thread while ``capture`` runs in the
microphone's reader; ``set_delay`` and ``stats`` from anywhere.
"""

from __future__ import annotations

import abc
import collections
import ctypes
import ctypes.util
import dataclasses
import importlib
import logging
import threading
import time
from typing import Any, Literal, Self

import numpy as np

from .errors import MediaError

_log = logging.getLogger(__name__)

__all__ = [
    "AudioProcessor",
    "AudioProcessingError",
    "AudioProcessingStats",
    "AudioProcessingStage",
    "WebRtcProcessor",
    "PyWebRtcProcessor",
    "SpeexProcessor",
    "ProcessingMode",
    "PROCESSING_MODES",
    "FRAME_DURATION",
    "available_processors",
    "check_mode",
    "make_processor",
    "attach",
]

FRAME_DURATION = 0.01  # the 10 ms frame both WebRTC APM and this stage work in
WEBRTC_RATES = (8000, 16000, 32000, 48000)  # the native rates of WebRTC's APM
MAX_DELAY_MS = 500  # AEC3's delay estimator covers about this much
SPEEX_FILTER_MS = 250  # SpeexDSP's adaptive filter: the room's tail (RT60 up to ~400 ms decays 37 dB in 250 ms)
_RENDER_BACKLOG = 1.0  # seconds of played audio a stage keeps for a microphone that stalls

ProcessingMode = Literal["auto", "webrtc", "speex", "off"]
PROCESSING_MODES: tuple[str, ...] = ("auto", "webrtc", "speex", "off")


class AudioProcessingError(MediaError):
    """An audio processing engine is missing, refused a setting, or failed on a frame."""


@dataclasses.dataclass
class AudioProcessingStats:
    """What a processor did: frames, the delay it was told, and the CPU it took."""

    engine: str
    sample_rate: int
    capture_frames: int = 0
    render_frames: int = 0
    delay_ms: int = 0
    cpu_seconds: float = 0.0  # thread CPU time in process_capture + process_render
    render_missing: int = 0  # stage: captured frames processed with no played audio up to them
    render_dropped: int = 0  # stage: played frames dropped (the microphone fell behind)

    @property
    def cpu_per_frame_us(self) -> float:
        """Microseconds of CPU per 10 ms capture frame (render included)."""
        return 1e6 * self.cpu_seconds / self.capture_frames if self.capture_frames else 0.0


class AudioProcessor(abc.ABC):
    """One 10 ms audio processing engine: mono s16 frames of ``sample_rate // 100`` samples.

    ``process_render(frame)``: the far-end signal as played (the reference).
    ``process_capture(frame)``: the microphone's frame, cleaned (a new array).
    ``set_delay(ms)``: render-to-capture delay beyond what the caller aligned.
    Frames of the wrong size or type raise :class:`AudioProcessingError`.
    Use from one thread; ``close()`` frees the engine (idempotent).
    """

    engine = "?"

    def __init__(self, sample_rate: int) -> None:
        if not 8000 <= sample_rate <= 96000 or sample_rate % 100:
            raise AudioProcessingError(f"sample rate {sample_rate} Hz: 8000 to 96000, a multiple of 100")
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate // 100
        self._stats = AudioProcessingStats(self.engine, sample_rate)
        self._closed = False

    @property
    def stats(self) -> AudioProcessingStats:
        """A copy of the counters."""
        return dataclasses.replace(self._stats)

    def _check(self, frame: np.ndarray) -> np.ndarray:
        if self._closed:
            raise AudioProcessingError(f"{self.engine} processor is closed")
        if not isinstance(frame, np.ndarray) or frame.dtype != np.int16 or frame.shape != (self.frame_samples,):
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise AudioProcessingError(f"{self.engine} needs mono int16 frames of {self.frame_samples} samples "
                                       f"(10 ms at {self.sample_rate} Hz), got {got}")
        return np.ascontiguousarray(frame)

    def process_render(self, frame: np.ndarray) -> None:
        """Take 10 ms of the far-end signal as played."""
        frame = self._check(frame)
        t0 = time.thread_time()
        self._render(frame)
        self._stats.cpu_seconds += time.thread_time() - t0
        self._stats.render_frames += 1

    def process_capture(self, frame: np.ndarray) -> np.ndarray:
        """10 ms of the microphone, echo removed (and denoised, levelled, filtered as configured)."""
        frame = self._check(frame)
        t0 = time.thread_time()
        out = self._capture(frame)
        self._stats.cpu_seconds += time.thread_time() - t0
        self._stats.capture_frames += 1
        return out

    def set_delay(self, ms: int) -> None:
        """The delay (0 to 500 ms) from a render frame to the capture frame holding its echo."""
        if not isinstance(ms, int) or not 0 <= ms <= MAX_DELAY_MS:
            raise AudioProcessingError(f"echo delay {ms!r} ms: an integer from 0 to {MAX_DELAY_MS}")
        self._stats.delay_ms = ms
        self._set_delay(ms)

    @abc.abstractmethod
    def _render(self, frame: np.ndarray) -> None: ...

    @abc.abstractmethod
    def _capture(self, frame: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _set_delay(self, ms: int) -> None: ...

    def close(self) -> None:
        """Free the engine (idempotent)."""
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- WebRTC APM (livekit)


def _livekit() -> Any:
    try:
        from livekit import rtc
    except ImportError as exc:
        raise AudioProcessingError("WebRTC audio processing needs the livekit package: pip install livekit") from exc
    return rtc


class WebRtcProcessor(AudioProcessor):
    """WebRTC's audio processing module (AEC3, NS, AGC, high-pass) through ``livekit.rtc``.

    ``sample_rate``: 8, 16, 32 or 48 kHz (AEC3's native rates). Each feature
    can be turned off. AEC3 finds the echo delay itself; ``set_delay`` gives
    it a starting hint.
    """

    engine = "webrtc"

    def __init__(
        self,
        sample_rate: int = 48000,
        *,
        echo_cancellation: bool = True,
        noise_suppression: bool = True,
        auto_gain_control: bool = True,
        high_pass_filter: bool = True,
    ) -> None:
        if sample_rate not in WEBRTC_RATES:
            raise AudioProcessingError(f"WebRTC audio processing runs at {', '.join(map(str, WEBRTC_RATES))} Hz, "
                                       f"not {sample_rate}")
        super().__init__(sample_rate)
        self._rtc = _livekit()
        self._aec = echo_cancellation
        self._delay = 0
        try:
            self._apm = self._rtc.AudioProcessingModule(
                echo_cancellation=echo_cancellation, noise_suppression=noise_suppression,
                high_pass_filter=high_pass_filter, auto_gain_control=auto_gain_control)
        except Exception as exc:  # the FFI library failed to load or to answer
            raise AudioProcessingError(f"WebRTC audio processing failed to start: {exc}") from exc

    def _frame(self, pcm: np.ndarray) -> Any:
        return self._rtc.AudioFrame(bytearray(pcm.tobytes()), self.sample_rate, 1, self.frame_samples)

    def _render(self, frame: np.ndarray) -> None:
        try:
            self._apm.process_reverse_stream(self._frame(frame))
        except RuntimeError as exc:
            raise AudioProcessingError(f"WebRTC render processing failed: {exc}") from exc

    def _capture(self, frame: np.ndarray) -> np.ndarray:
        f = self._frame(frame)
        try:
            if self._aec:  # "must be called if and only if echo processing is enabled", before each frame
                self._apm.set_stream_delay_ms(self._delay)
            self._apm.process_stream(f)
        except RuntimeError as exc:
            raise AudioProcessingError(f"WebRTC capture processing failed: {exc}") from exc
        return np.frombuffer(bytes(f.data), dtype=np.int16).copy()

    def _set_delay(self, ms: int) -> None:
        self._delay = ms

    def close(self) -> None:
        super().close()
        self._apm = None  # the FFI handle is dropped with it


# --------------------------------------------------------------------------- WebRTC APM (pywebrtc-audio)

_PYWEBRTC_JITTER = 2  # render frames that may queue ahead of the capture (device callbacks are not 1:1)


def _pywebrtc() -> Any:
    try:  # by name: an optional package, which the type checker may not have
        module = importlib.import_module("pywebrtc_audio")
    except ImportError as exc:
        raise AudioProcessingError("WebRTC audio processing through pywebrtc-audio needs that package: "
                                   "pip install pywebrtc-audio") from exc
    return module


class PyWebRtcProcessor(AudioProcessor):
    """WebRTC's audio processing module (AEC3, NS, AGC2, high-pass) through ``pywebrtc-audio``.

    ``sample_rate``: 8, 16, 32 or 48 kHz. ``noise_suppression_level`` 0 to 3
    (6, 12, 18, 21 dB; WebRTC's default is 1). With echo cancellation on, the
    package always runs the high-pass filter before AEC3 (as Chrome does).
    Its API takes a capture frame together with its render frame, so render
    frames wait in a short queue (at most ``_PYWEBRTC_JITTER + 1``, the oldest
    dropped beyond) and each capture frame takes the oldest; a capture frame
    with none queued is paired with silence. ``set_delay`` is AEC3's hint.
    """

    engine = "pywebrtc"

    def __init__(
        self,
        sample_rate: int = 48000,
        *,
        echo_cancellation: bool = True,
        noise_suppression: bool = True,
        noise_suppression_level: int = 1,
        auto_gain_control: bool = True,
        high_pass_filter: bool = True,
    ) -> None:
        if sample_rate not in WEBRTC_RATES:
            raise AudioProcessingError(f"WebRTC audio processing runs at {', '.join(map(str, WEBRTC_RATES))} Hz, "
                                       f"not {sample_rate}")
        if noise_suppression_level not in (0, 1, 2, 3):
            raise AudioProcessingError(f"WebRTC noise suppression level {noise_suppression_level!r}: 0, 1, 2 or 3")
        super().__init__(sample_rate)
        module = _pywebrtc()
        self._aec = echo_cancellation
        self._queue: collections.deque[np.ndarray] = collections.deque()
        self._silence = np.zeros(self.frame_samples, dtype=np.int16)
        try:
            self._ap: Any = module.AudioProcessor(
                sample_rate=sample_rate, num_channels=1, echo_cancellation=echo_cancellation,
                noise_suppression=noise_suppression, high_pass_filter=high_pass_filter,
                auto_gain_control=auto_gain_control, ns_level=noise_suppression_level)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise AudioProcessingError(f"WebRTC audio processing (pywebrtc-audio) failed to start: {exc}") from exc

    def _render(self, frame: np.ndarray) -> None:
        if not self._aec:
            return  # nothing uses the reference
        self._queue.append(frame.copy())
        while len(self._queue) > 1 + _PYWEBRTC_JITTER:  # far ahead of the microphone: keep the newest
            self._queue.popleft()

    def _capture(self, frame: np.ndarray) -> np.ndarray:
        try:
            if self._aec:
                far = self._queue.popleft() if self._queue else self._silence
                out = self._ap.process(frame, far)
            else:
                out = self._ap.process(frame)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise AudioProcessingError(f"WebRTC capture processing (pywebrtc-audio) failed: {exc}") from exc
        result: np.ndarray = np.asarray(out, dtype=np.int16)
        return result

    def _set_delay(self, ms: int) -> None:
        if self._ap is not None:
            self._ap.stream_delay_ms = ms

    def close(self) -> None:
        super().close()
        self._queue.clear()
        self._ap = None  # the C++ state goes with its last reference


# --------------------------------------------------------------------------- SpeexDSP (ctypes)

# speex/speex_echo.h and speex/speex_preprocess.h request numbers
SPEEX_ECHO_SET_SAMPLING_RATE = 24
SPEEX_PREPROCESS_SET_DENOISE = 0
SPEEX_PREPROCESS_SET_AGC = 2
SPEEX_PREPROCESS_SET_AGC_LEVEL = 6
SPEEX_PREPROCESS_SET_NOISE_SUPPRESS = 18
SPEEX_PREPROCESS_SET_ECHO_SUPPRESS = 20
SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE = 22
SPEEX_PREPROCESS_SET_ECHO_STATE = 24

_SPEEX_JITTER = 4  # render frames that may come early (device callbacks are not 1:1) before the oldest go

_speex_lib: ctypes.CDLL | None = None
_speex_lock = threading.Lock()


def _speexdsp() -> ctypes.CDLL:
    """The system's libspeexdsp with its prototypes, or :class:`AudioProcessingError` saying what to install."""
    global _speex_lib
    with _speex_lock:
        if _speex_lib is not None:
            return _speex_lib
        name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise AudioProcessingError(f"SpeexDSP is missing ({exc}): apt-get install libspeexdsp1") from exc
        p, i16p, c_int = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int
        for fn, args, res in (
            ("speex_echo_state_init", [c_int, c_int], p),
            ("speex_echo_state_destroy", [p], None),
            ("speex_echo_state_reset", [p], None),
            ("speex_echo_cancellation", [p, i16p, i16p, i16p], None),
            ("speex_echo_ctl", [p, c_int, p], c_int),
            ("speex_preprocess_state_init", [c_int, c_int], p),
            ("speex_preprocess_state_destroy", [p], None),
            ("speex_preprocess_run", [p, i16p], c_int),
            ("speex_preprocess_ctl", [p, c_int, p], c_int),
        ):
            f = getattr(lib, fn)
            f.argtypes, f.restype = args, res
        _speex_lib = lib
        return lib


class SpeexProcessor(AudioProcessor):
    """SpeexDSP: MDF echo canceller + preprocessor (noise suppression, AGC, residual echo suppression).

    ``filter_ms``: the adaptive filter's length (the room's reverberation
    tail it can cancel). SpeexDSP has no delay estimator: ``set_delay`` delays
    the reference by that much so the filter spends its taps on the room, not
    on the delay. ``noise_suppression`` (dB of attenuation, 0: off) and
    ``auto_gain_control`` as in SpeexDSP's preprocessor; it has no high-pass
    filter (its canceller removes DC).
    """

    engine = "speex"

    def __init__(
        self,
        sample_rate: int = 48000,
        *,
        filter_ms: int = SPEEX_FILTER_MS,
        noise_suppression: int = 15,
        auto_gain_control: bool = True,
        echo_suppression: int = 40,
    ) -> None:
        super().__init__(sample_rate)
        if not 20 <= filter_ms <= 1000:
            raise AudioProcessingError(f"SpeexDSP filter length {filter_ms} ms: 20 to 1000")
        self._lib = _speexdsp()
        n = self.frame_samples
        self._echo = self._lib.speex_echo_state_init(n, sample_rate * filter_ms // 1000)
        self._pre = self._lib.speex_preprocess_state_init(n, sample_rate)
        if not self._echo or not self._pre:
            self.close()
            raise AudioProcessingError("SpeexDSP could not allocate its state")
        self._ctl(self._lib.speex_echo_ctl, self._echo, SPEEX_ECHO_SET_SAMPLING_RATE, ctypes.c_int(sample_rate))
        self._ctl(self._lib.speex_preprocess_ctl, self._pre, SPEEX_PREPROCESS_SET_ECHO_STATE,
                  ctypes.c_void_p(self._echo))
        self._ctl(self._lib.speex_preprocess_ctl, self._pre, SPEEX_PREPROCESS_SET_DENOISE,
                  ctypes.c_int(1 if noise_suppression else 0))
        if noise_suppression:
            self._ctl(self._lib.speex_preprocess_ctl, self._pre, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS,
                      ctypes.c_int(-abs(noise_suppression)))
        self._ctl(self._lib.speex_preprocess_ctl, self._pre, SPEEX_PREPROCESS_SET_AGC,
                  ctypes.c_int(1 if auto_gain_control else 0))
        if auto_gain_control:
            self._ctl(self._lib.speex_preprocess_ctl, self._pre, SPEEX_PREPROCESS_SET_AGC_LEVEL,
                      ctypes.c_float(8000.0))
        for req in (SPEEX_PREPROCESS_SET_ECHO_SUPPRESS, SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE):
            self._ctl(self._lib.speex_preprocess_ctl, self._pre, req, ctypes.c_int(-abs(echo_suppression)))
        self._delay_line: collections.deque[np.ndarray] = collections.deque()
        self._delay_frames = 0
        self._ref = np.zeros(n, dtype=np.int16)
        self._out = np.zeros(n, dtype=np.int16)
        self._i16 = ctypes.POINTER(ctypes.c_int16)

    @staticmethod
    def _ctl(fn: Any, state: int, request: int, value: Any) -> None:
        if fn(state, request, ctypes.byref(value) if not isinstance(value, ctypes.c_void_p) else value) != 0:
            raise AudioProcessingError(f"SpeexDSP refused control request {request}")

    def _ptr(self, a: np.ndarray) -> Any:
        return a.ctypes.data_as(self._i16)

    def _render(self, frame: np.ndarray) -> None:
        self._delay_line.append(frame.copy())
        while len(self._delay_line) > self._delay_frames + 1 + _SPEEX_JITTER:  # far ahead: resynchronise
            self._delay_line.popleft()

    def _capture(self, frame: np.ndarray) -> np.ndarray:
        if len(self._delay_line) > self._delay_frames:
            self._ref = self._delay_line.popleft()
        else:
            self._ref = np.zeros(self.frame_samples, dtype=np.int16)  # nothing played: silence as reference
        out = np.empty(self.frame_samples, dtype=np.int16)
        self._lib.speex_echo_cancellation(self._echo, self._ptr(frame), self._ptr(self._ref), self._ptr(out))
        self._lib.speex_preprocess_run(self._pre, self._ptr(out))
        return out

    def _set_delay(self, ms: int) -> None:
        self._delay_frames = ms // 10
        while len(self._delay_line) > self._delay_frames + 1 + _SPEEX_JITTER:
            self._delay_line.popleft()

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        lib = self._lib
        if getattr(self, "_pre", None):
            lib.speex_preprocess_state_destroy(self._pre)
            self._pre = None
        if getattr(self, "_echo", None):
            lib.speex_echo_state_destroy(self._echo)
            self._echo = None

    def __del__(self) -> None:  # states are C memory: free them if close() was forgotten
        try:
            if hasattr(self, "_lib"):
                self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


# --------------------------------------------------------------------------- choosing an engine


def available_processors() -> list[str]:
    """The engines this machine can run, best first (``"webrtc"``, ``"pywebrtc"``, ``"speex"``)."""
    found = []
    try:
        _livekit()
        found.append("webrtc")
    except AudioProcessingError:
        pass
    try:
        _pywebrtc()
        found.append("pywebrtc")
    except AudioProcessingError:
        pass
    try:
        _speexdsp()
        found.append("speex")
    except AudioProcessingError:
        pass
    return found


def check_mode(mode: object) -> ProcessingMode:
    """``mode`` as a :data:`ProcessingMode` (``True`` is ``"auto"``, ``False``/``None`` ``"off"``).

    A named engine that this machine lacks raises :class:`AudioProcessingError` now, not at the first call.
    """
    if mode is True:
        mode = "auto"
    elif mode is False or mode is None:
        mode = "off"
    if mode not in PROCESSING_MODES:
        raise AudioProcessingError(f"audio processing {mode!r}: one of {', '.join(PROCESSING_MODES)}")
    if mode == "webrtc":
        _livekit()
    elif mode == "speex":
        _speexdsp()
    return mode  # type: ignore[return-value]


def make_processor(mode: str, sample_rate: int) -> AudioProcessor | None:
    """A processor for ``mode`` at ``sample_rate``; None for ``"off"``, or ``"auto"`` with no engine (logged)."""
    mode = check_mode(mode)
    if mode == "off":
        return None
    engines = available_processors() if mode == "auto" else [mode]
    if mode == "auto" and sample_rate not in WEBRTC_RATES:
        engines = [e for e in engines if e not in ("webrtc", "pywebrtc")]
    if not engines:
        _log.warning("no echo canceller available (pip install livekit, or apt-get install libspeexdsp1): "
                     "the far end will hear its own voice")
        return None
    if engines[0] == "webrtc":
        return WebRtcProcessor(sample_rate)
    if engines[0] == "pywebrtc":
        # without its gain control: pywebrtc-audio's AGC2 lifts the residual echo with the voice (the call test:
        # the agent's voice back 29.5 dB under the echo with it, 52 dB without; goal 30), see BENCHMARKS.md
        return PyWebRtcProcessor(sample_rate, auto_gain_control=False)
    return SpeexProcessor(sample_rate)


# --------------------------------------------------------------------------- the stage


def _mono(pcm: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1:
        return pcm.reshape(-1)
    mono: np.ndarray = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return mono


class AudioProcessingStage:
    """A processor between one speaker (render) and one microphone (capture); see the module notes.

    ``played(pcm, channels, rate, at)``: called by the speaker with s16 bytes
    as handed to the device and ``at``, the ``time.monotonic()`` instant its
    first sample reaches the converter. ``capture(pcm, at)``: mono s16
    samples at the processor's rate whose last sample was captured at ``at``;
    returns the processed samples and the capture time of their last sample.
    """

    def __init__(self, processor: AudioProcessor, *, delay_ms: int = 0) -> None:
        self.processor = processor
        self.sample_rate = processor.sample_rate
        self._n = processor.frame_samples
        self._lock = threading.Lock()  # the played deque (speaker callback vs reader)
        self._run = threading.Lock()  # the processor (reader vs set_delay and close)
        self._played: collections.deque[tuple[np.ndarray, float]] = collections.deque()
        self._played_samples = 0
        self._render_buf = np.zeros(0, dtype=np.int16)
        self._render_t = 0.0  # converter time of the first sample of _render_buf
        self._capture_buf = np.zeros(0, dtype=np.int16)
        self._resampler: Any = None
        self._resampler_rate = 0
        self._converted = (0, 0)  # samples into and out of the resampler
        self._rate_in = processor.sample_rate  # the speaker's rate, as it last said
        self._missing = self._dropped = 0
        self._closed = False
        processor.set_delay(delay_ms)

    def set_delay(self, ms: int) -> None:
        """Extra render-to-capture delay (the acoustic path beyond the devices' own buffering)."""
        with self._run:
            if not self._closed:
                self.processor.set_delay(ms)

    @property
    def stats(self) -> AudioProcessingStats:
        """The processor's counters, with the stage's ``render_missing`` and ``render_dropped``."""
        s = self.processor.stats
        s.render_missing, s.render_dropped = self._missing, self._dropped
        return s

    def played(self, pcm: bytes, channels: int, rate: int, at: float) -> None:
        """The speaker played ``pcm`` (s16, ``channels``, ``rate``) from ``at``; cheap, callback-safe."""
        if self._closed or not pcm:
            return
        block = np.frombuffer(pcm, dtype=np.int16)
        with self._lock:
            self._played.append((block if channels == 1 else _mono(block, channels), at))
            self._played_samples += len(block) // channels
            self._rate_in = rate
            while self._played_samples > _RENDER_BACKLOG * rate and len(self._played) > 1:
                old, _ = self._played.popleft()
                self._played_samples -= len(old)
                self._dropped += len(old) // max(1, rate // 100)

    def _take_played(self) -> list[tuple[np.ndarray, float, int]]:
        with self._lock:
            blocks, self._played = list(self._played), collections.deque()
            self._played_samples = 0
            rate = self._rate_in
        return [(b, t, rate) for b, t in blocks]

    def _convert(self, block: np.ndarray, rate: int) -> np.ndarray:
        if rate == self.sample_rate:
            return block
        from av.audio.frame import AudioFrame
        from av.audio.resampler import AudioResampler

        if self._resampler is None or self._resampler_rate != rate:
            self._resampler = AudioResampler(format="s16", layout="mono", rate=self.sample_rate)
            self._resampler_rate = rate
            self._converted = (0, 0)
        frame = AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        pcm = np.concatenate(out) if out else np.zeros(0, dtype=np.int16)
        taken, given = self._converted[0] + len(block), self._converted[1] + len(pcm)
        short = taken * self.sample_rate // rate - given
        if given == len(pcm) and short > 0:  # the resampler holds its filter's delay: keep the stream on time
            pcm = np.concatenate((np.zeros(short, dtype=np.int16), pcm))
            given += short
        self._converted = (taken, given)
        return pcm

    def capture(self, pcm: np.ndarray, at: float) -> tuple[np.ndarray, float]:
        """Process captured samples in 10 ms frames (see the class notes); after close, pass them on."""
        with self._run:
            if self._closed:
                return pcm.reshape(-1), at
            return self._capture(pcm, at)

    def _capture(self, pcm: np.ndarray, at: float) -> tuple[np.ndarray, float]:
        for block, t, rate in self._take_played():
            block = self._convert(block, rate)
            if not len(self._render_buf):
                self._render_t = t
            self._render_buf = np.concatenate((self._render_buf, block))
        buf = np.concatenate((self._capture_buf, pcm.reshape(-1).astype(np.int16, copy=False)))
        frames = len(buf) // self._n
        held = len(buf) - frames * self._n
        out = np.empty(frames * self._n, dtype=np.int16)
        step = self._n / self.sample_rate
        for i in range(frames):
            end = at - (held + (frames - 1 - i) * self._n) / self.sample_rate  # this frame's last sample
            fed = False
            # feed every render frame played (to its middle) before this capture frame ended
            while len(self._render_buf) >= self._n and self._render_t + step / 2 < end:
                self.processor.process_render(self._render_buf[:self._n])
                self._render_buf = self._render_buf[self._n:]
                self._render_t += step
                fed = True
            if not fed:
                self._missing += 1
            out[i * self._n:(i + 1) * self._n] = self.processor.process_capture(buf[i * self._n:(i + 1) * self._n])
        self._capture_buf = buf[frames * self._n:].copy()
        if len(self._render_buf) > _RENDER_BACKLOG * self.sample_rate:  # played audio no capture came for
            excess = len(self._render_buf) - int(_RENDER_BACKLOG * self.sample_rate)
            self._render_buf = self._render_buf[excess:]
            self._render_t += excess / self.sample_rate
            self._dropped += excess // self._n
        return out, at - held / self.sample_rate

    def close(self) -> None:
        """Stop taking played audio and free the processor (idempotent; waits for a frame in progress)."""
        with self._run:
            self._closed = True
            self.processor.close()


def attach(microphone: Any, speaker: Any, mode: object = "auto", *, delay_ms: int = 0) -> AudioProcessingStage | None:
    """Put a processing stage between ``microphone`` and ``speaker`` when both are real devices.

    Only a PortAudio :class:`~vcore.media.sources.Microphone` (mono) and a
    :class:`~vcore.media.sinks.Speaker` get one: test sources, files and other
    sinks are left as they are (None). ``mode`` as :func:`check_mode` takes.
    The stage is closed with the microphone.
    """
    from .sinks import Speaker
    from .sources import Microphone

    mode = check_mode(mode)
    if mode == "off" or not isinstance(microphone, Microphone) or not isinstance(speaker, Speaker):
        return None
    if microphone.backend != "sounddevice" or microphone.channels != 1:
        _log.warning("no echo cancellation for %r: it needs a mono PortAudio microphone", microphone)
        return None
    processor = make_processor(mode, microphone.sample_rate)
    if processor is None:
        return None
    stage = AudioProcessingStage(processor, delay_ms=delay_ms)
    microphone.processing = stage
    speaker.processing = stage
    _log.info("audio processing: %s at %d Hz between %r and speaker %r", processor.engine,
              processor.sample_rate, microphone, speaker.name)
    return stage
