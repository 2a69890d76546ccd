"""The echo path of a one-box kiosk, built in software, and the measures of an echo canceller on it.

Material (:func:`make_scene`): two talkers from ``espeak-ng`` (the agent far
away, the resident in the room; a synthetic speech-like signal when espeak-ng
is missing, said in :attr:`Scene.speech_source`) at 16 or 48 kHz; the agent's
voice goes through a loudspeaker nonlinearity (soft clipping, optional), a
synthetic room impulse response (direct path + exponentially decaying
reverberation of a chosen RT60) and a delay; background noise at 20 dB SNR
(against the resident's speech) is added, and the resident talks in the
double-talk period. Half-way the resident moves: the delay jumps by 30 ms
and the room response changes (:attr:`Scene.change_at`).

Timeline (seconds): far-end only [0, 8), double talk [8, 12), far-end only
[12, 20) with the path change at 14, near-end only [20, 24).

Measures (:func:`measure`): ERLE (mic power over output power, in far-end-only
windows where the agent speaks), convergence time (from the far end's start,
or from the path change, until every later window holds the goal), near-end
loss in double talk (the output's least-squares projection, in the double-talk
period, on the output of the same chain for the same scene without the agent,
:func:`without_agent`: what the agent's voice costs the resident's, with the
chain's own delay, filters and gain the same in both), STOI of the double talk
(pystoi), CPU per 10 ms frame.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

import numpy as np

FAR_ONLY_1 = (0.0, 8.0)
DOUBLE_TALK = (8.0, 12.0)
FAR_ONLY_2 = (12.0, 20.0)
NEAR_ONLY = (20.0, 24.0)
CHANGE_AT = 14.0
DURATION = 24.0
WINDOW = 0.25  # seconds per ERLE window

AGENT_TEXT = (
    "Good morning, this is the family allowance office. I have your file in front of me. "
    "Could you tell me your date of birth and the name of your village, please? "
    "Thank you. Now I need the paper you received from the town hall last month. "
    "Hold it close to the camera so that I can read the reference number at the top. "
    "That is fine. Your request was sent on the fourteenth, and it is complete. "
    "You should receive the first payment at the beginning of next month. "
    "If anything changes in your family situation, come back to the kiosk and call us again. "
    "Is there anything else I can do for you today? Have a good day, goodbye."
)
RESIDENT_TEXT = (
    "Yes, hello. I was born on the third of May, nineteen seventy two, in the village of Saint Martin. "
    "I have the letter here, wait a moment. Is it readable like this? "
    "My daughter moved back with us in September, does that change anything for the allowance?"
)


def _espeak(text: str, voice: str, rate: int, speed: int) -> np.ndarray | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    import av
    from av.audio.resampler import AudioResampler

    with tempfile.TemporaryDirectory(prefix="vcore-aec-") as tmp:
        wav = os.path.join(tmp, "speech.wav")
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", wav, text], check=True, capture_output=True)
        resampler = AudioResampler(format="s16", layout="mono", rate=rate)
        parts = []
        with av.open(wav) as c:
            for frame in c.decode(audio=0):
                parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float64) / 32768.0


def _synthetic_speech(rate: int, seconds: float, seed: int, pitch: float) -> np.ndarray:
    """A speech-like signal: a glottal pulse train with wandering pitch through moving formants, in syllables."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    f0 = pitch * (1 + 0.15 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = np.cumsum(f0) / rate
    source = np.sign(np.sin(2 * np.pi * phase)) * 0.5 + 0.05 * rng.standard_normal(n)
    out = np.zeros(n)
    seg = int(0.02 * rate)
    from numpy.fft import irfft, rfft

    freqs = np.fft.rfftfreq(2 * seg, 1 / rate)
    for start in range(0, n - seg, seg):
        formants = [rng.uniform(300, 900), rng.uniform(900, 2300), rng.uniform(2300, 3300)]
        shape = sum(1 / (1 + ((freqs - f) / 80) ** 2) for f in formants)
        block = source[start:start + 2 * seg] * np.hanning(min(2 * seg, n - start))
        spec = rfft(block, 2 * seg) * shape
        out[start:start + 2 * seg] += irfft(spec)[:len(block)]
    envelope = np.clip(np.sin(2 * np.pi * 3.5 * t + rng.uniform(0, 6)), 0, None) ** 0.5
    pauses = np.repeat(rng.uniform(size=int(seconds / 0.6) + 1) > 0.15, int(0.6 * rate))[:n]
    speech: np.ndarray = out * envelope * pauses
    scaled: np.ndarray = speech / (np.max(np.abs(speech)) + 1e-12) * 0.5
    return scaled


def speech(rate: int, who: str, seconds: float) -> tuple[np.ndarray, str]:
    """``seconds`` of one talker (``"agent"`` or ``"resident"``) at ``rate``, looped, peak 0.5; and its source."""
    text, voice, speed, pitch, seed = ((AGENT_TEXT, "en-us", 165, 120.0, 1) if who == "agent"
                                       else (RESIDENT_TEXT, "en-gb", 150, 200.0, 2))
    sig = _espeak(text, voice, rate, speed)
    source = "espeak-ng"
    if sig is None:
        sig, source = _synthetic_speech(rate, seconds, seed, pitch), "synthetic (espeak-ng missing)"
    n = int(rate * seconds)
    sig = np.tile(sig, n // len(sig) + 1)[:n]
    return sig / (np.max(np.abs(sig)) + 1e-12) * 0.5, source


def room_response(rate: int, rt60: float, seed: int, length: float = 0.5) -> np.ndarray:
    """Direct path then exponentially decaying reverberation (-60 dB after ``rt60`` s), 5 ms pre-delay."""
    rng = np.random.default_rng(seed)
    n = int(rate * length)
    t = np.arange(n) / rate
    h = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078: 60 dB in rt60
    pre = int(0.005 * rate)
    h[:pre] = 0
    h *= 0.3 / np.sqrt(np.sum(h ** 2))  # reverberant energy ~10 dB under the direct path
    h[0] = 1.0
    return h


def soft_clip(x: np.ndarray, drive: float = 3.0) -> np.ndarray:
    """A small loudspeaker driven hard: tanh saturation, unity gain for small signals."""
    return np.tanh(drive * x) / drive


@dataclasses.dataclass
class Scene:
    """One emulated call: what the speaker plays (``far``), what the mic hears (``mic``) and its parts."""

    rate: int
    far: np.ndarray  # the agent's voice as played (the reference), float in [-1, 1]
    near: np.ndarray  # the resident's voice at the mic
    echo: np.ndarray  # the agent's voice at the mic
    noise: np.ndarray
    mic: np.ndarray
    delay_ms: int
    rt60: float
    nonlinear: bool
    speech_source: str
    change_at: float = CHANGE_AT

    def pcm(self, which: str) -> np.ndarray:
        """One part as int16."""
        part: np.ndarray = getattr(self, which)
        return np.clip(np.round(part * 32767), -32768, 32767).astype(np.int16)


def without_agent(scene: Scene) -> Scene:
    """``scene`` with the agent silent: the resident and the room noise only (the double-talk reference)."""
    silent = np.zeros_like(scene.far)
    return dataclasses.replace(scene, far=silent, echo=np.zeros_like(scene.echo),
                               mic=np.clip(scene.near + scene.noise, -1.0, 1.0))


def make_scene(rate: int = 16000, *, delay_ms: int = 80, rt60: float = 0.3, nonlinear: bool = False,
               echo_gain_db: float = 10.0, snr_db: float = 20.0, jump_ms: int = 30, seed: int = 7) -> Scene:
    """The kiosk's echo path (see the module notes); ``echo_gain_db`` sets the echo against the resident."""
    n = int(rate * DURATION)
    t = np.arange(n) / rate
    far, source = speech(rate, "agent", DURATION)
    far[(t >= NEAR_ONLY[0])] = 0.0
    near_voice, _ = speech(rate, "resident", DURATION)
    near = np.where(((t >= DOUBLE_TALK[0]) & (t < DOUBLE_TALK[1])) | (t >= NEAR_ONLY[0]), near_voice, 0.0)
    driven = soft_clip(far * 1.6) if nonlinear else far * 0.6
    change = int(CHANGE_AT * rate)
    from scipy.signal import fftconvolve, lfilter

    echo = np.zeros(n)
    for lo, hi, d, h_seed in ((0, change, delay_ms, seed), (change, n, delay_ms + jump_ms, seed + 1)):
        h = room_response(rate, rt60, h_seed)
        full = fftconvolve(driven, h)[:n]
        k = int(d * rate / 1000)
        shifted = np.concatenate((np.zeros(k), full))[:n]
        echo[lo:hi] = shifted[lo:hi]
    near_rms = np.sqrt(np.mean(near_voice ** 2))
    echo *= near_rms * 10 ** (echo_gain_db / 20) / np.sqrt(np.mean(echo[:change] ** 2) + 1e-12)
    rng = np.random.default_rng(seed + 100)
    noise = rng.standard_normal(n)
    # pinkish room noise: one-pole lowpass, then set to snr_db under the resident's speech
    noise = lfilter([1.0], [1.0, -0.9], noise)
    noise *= near_rms * 10 ** (-snr_db / 20) / np.sqrt(np.mean(noise ** 2))
    mic = np.clip(echo + near + noise, -1.0, 1.0)
    return Scene(rate, far, near, echo, noise, mic, delay_ms, rt60, nonlinear, source)


@dataclasses.dataclass
class Result:
    """The measures of one processor on one scene."""

    engine: str
    erle_db: float  # median ERLE in far-end-only windows after convergence (before the change)
    converge_s: float  # from the far end's start until ERLE holds the goal
    erle_after_change_db: float
    reconverge_s: float  # from the path change until ERLE holds the goal again
    near_attenuation_db: float  # resident's voice lost in double talk: output vs the same chain without the agent
    stoi_double_talk: float | None
    stoi_unprocessed: float | None
    cpu_us: float  # CPU per 10 ms frame (render + capture)
    erle_curve: list[tuple[float, float]]

    @property
    def cpu_percent(self) -> float:
        """Of one core."""
        return self.cpu_us / 1e4 * 100


def run(processor: Any, scene: Scene) -> tuple[np.ndarray, float]:
    """Feed the scene through ``processor`` (an :class:`~vcore.media.audio_processing.AudioProcessor`)
    frame by frame, render then capture; the output and the process CPU time per frame in µs."""
    n = scene.rate // 100
    far, mic = scene.pcm("far"), scene.pcm("mic")
    frames = len(mic) // n
    out = np.empty(frames * n, dtype=np.int16)
    t0 = time.process_time()
    for i in range(frames):
        s = slice(i * n, (i + 1) * n)
        processor.process_render(far[s])
        out[s] = processor.process_capture(mic[s])
    cpu = time.process_time() - t0
    return out, 1e6 * cpu / frames


def _power(x: np.ndarray) -> float:
    return float(np.mean(x.astype(np.float64) ** 2)) + 1e-12


def erle_curve(scene: Scene, out: np.ndarray) -> list[tuple[float, float]]:
    """(window start, ERLE dB) for far-end-only windows where the agent is audible at the mic."""
    r, w = scene.rate, int(WINDOW * scene.rate)
    mic = scene.mic * 32767
    echo_level = np.sqrt(np.mean(scene.echo[: int(CHANGE_AT * r)] ** 2))
    curve = []
    for lo, hi in (FAR_ONLY_1, FAR_ONLY_2):
        for start in np.arange(lo, hi - WINDOW + 1e-9, WINDOW):
            a = int(start * r)
            if np.sqrt(np.mean(scene.echo[a:a + w] ** 2)) < 0.3 * echo_level:
                continue  # a pause of the agent: nothing to cancel
            curve.append((float(start), 10 * np.log10(_power(mic[a:a + w]) / _power(out[a:a + w]))))
    return curve


def _settle(curve: list[tuple[float, float]], start: float, end: float, goal: float) -> float:
    """Seconds from ``start`` until every window in [start, end) holds ``goal`` (inf if none does)."""
    pts = [(t, e) for t, e in curve if start <= t < end]
    for i, (t, _) in enumerate(pts):
        if all(e >= goal for _, e in pts[i:]):
            return t - start
    return float("inf")


def near_loss_db(scene: Scene, out: np.ndarray, out_alone: np.ndarray) -> float:
    """dB of the resident's voice lost in double talk: ``out`` projected on ``out_alone`` (the same chain's
    output for :func:`without_agent`), sample-aligned since both went through the same processing."""
    a, b = int(DOUBLE_TALK[0] * scene.rate), int(DOUBLE_TALK[1] * scene.rate)
    o, ref = out[a:b].astype(np.float64), out_alone[a:b].astype(np.float64)
    gain = float(np.dot(o, ref) / (np.dot(ref, ref) + 1e-12))
    return float(-20 * np.log10(max(gain, 1e-6)))


def chain_lag(scene: Scene, out_alone: np.ndarray) -> int:
    """Samples (0-20 ms) by which the chain delays the resident's voice: the best-correlated lag."""
    a, b = int(DOUBLE_TALK[0] * scene.rate), int(DOUBLE_TALK[1] * scene.rate)
    ref, o = scene.near[a:b], out_alone[a:b].astype(np.float64)
    lags = range(int(0.02 * scene.rate) + 1)
    return max(lags, key=lambda lag: float(np.dot(o[lag:], ref[: len(ref) - lag])))


def measure(engine: str, scene: Scene, out: np.ndarray, cpu_us: float, goal_db: float,
            out_alone: np.ndarray) -> Result:
    """The measures of :class:`Result` for ``out``, the processed ``scene.mic``; ``out_alone`` is a fresh
    instance of the same chain's output for ``without_agent(scene)``."""
    r = scene.rate
    curve = erle_curve(scene, out)
    conv = _settle(curve, FAR_ONLY_1[0], FAR_ONLY_1[1], goal_db)
    reconv = _settle(curve, CHANGE_AT, FAR_ONLY_2[1], goal_db)
    steady = [e for t, e in curve if FAR_ONLY_1[0] + 2 <= t < FAR_ONLY_1[1]]
    after = [e for t, e in curve if CHANGE_AT + 2 <= t < FAR_ONLY_2[1]]
    o = out.astype(np.float64) / 32767
    stoi = stoi_raw = None
    try:
        from pystoi import stoi as _stoi

        a, b = int(DOUBLE_TALK[0] * r), int(DOUBLE_TALK[1] * r)
        lag = chain_lag(scene, out_alone)  # AEC3 delays its output by ~8 ms: STOI needs it aligned
        stoi = float(_stoi(scene.near[a:b - lag], o[a + lag:b], r))
        stoi_raw = float(_stoi(scene.near[a:b], scene.mic[a:b], r))
    except ImportError:
        pass
    return Result(engine, float(np.median(steady)) if steady else float("nan"), conv,
                  float(np.median(after)) if after else float("nan"), reconv, near_loss_db(scene, out, out_alone),
                  stoi, stoi_raw, cpu_us, curve)
