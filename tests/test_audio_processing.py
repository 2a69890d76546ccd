"""Echo cancellation, noise suppression and gain control (vcore.media.audio_processing).

The echo-path tests run the processors on benchmarks/aec_material.py's
emulated kiosk (espeak-ng speech, synthetic room, delay, noise, double talk, a
30 ms path change) and check the goals of issue 19; without espeak-ng they
skip (a synthetic speech-like signal is no stand-in for speech to AEC3's
detectors: the measures move by several dB). The stage tests check the
alignment of what a speaker played with what a microphone captured, the
framing (no added latency for 20 ms blocks) and the wiring into Microphone,
Speaker and Terminal.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import os
import select
import shutil
import subprocess
import termios
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vcore.errors import MediaError
from vcore.media.audio_processing import (
    PROCESSING_MODES,
    AudioProcessingError,
    AudioProcessingStage,
    AudioProcessor,
    PyWebRtcProcessor,
    SpeexProcessor,
    WebRtcProcessor,
    attach,
    available_processors,
    check_mode,
    make_processor,
)

from .call_helpers import T, make_pki, run, terminal, until
from .test_audio_io import use_alsa  # noqa: F401  (the FIFO sound card's ALSA config)
from benchmarks.aec_material import AGENT_TEXT

ENGINES = available_processors()
needs_webrtc = pytest.mark.skipif("webrtc" not in ENGINES,
                                  reason="livekit (WebRTC APM) not installed: pip install livekit")
needs_pywebrtc = pytest.mark.skipif("pywebrtc" not in ENGINES,
                                    reason="pywebrtc-audio (WebRTC APM) not installed: pip install pywebrtc-audio")
needs_speex = pytest.mark.skipif("speex" not in ENGINES, reason="SpeexDSP missing: apt-get install libspeexdsp1")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng missing (apt-get install espeak-ng): the echo material is speech")


def _processor(engine: str, rate: int = 16000, **kw: Any) -> AudioProcessor:
    cls = {"webrtc": WebRtcProcessor, "pywebrtc": PyWebRtcProcessor, "speex": SpeexProcessor}[engine]
    processor: AudioProcessor = cls(rate, **kw)
    return processor


def _engines() -> list[Any]:
    return [pytest.param("webrtc", marks=needs_webrtc), pytest.param("pywebrtc", marks=needs_pywebrtc),
            pytest.param("speex", marks=needs_speex)]


# ------------------------------------------------------------------ the processors' contract


@pytest.mark.parametrize("engine", _engines())
def test_processor_rejects_frames_that_are_not_10_ms_of_mono_int16(engine: str) -> None:
    with _processor(engine) as p:
        assert (p.sample_rate, p.frame_samples) == (16000, 160)
        for bad, what in ((np.zeros(320, np.int16), r"int16 \(320,\)"), (np.zeros(160, np.float32), "float32"),
                          (np.zeros((160, 2), np.int16), r"int16 \(160, 2\)")):
            with pytest.raises(AudioProcessingError, match=f"mono int16 frames of 160 samples .*got {what}"):
                p.process_capture(bad)
            with pytest.raises(AudioProcessingError, match="got"):
                p.process_render(bad)
        with pytest.raises(AudioProcessingError, match="got list"):
            p.process_capture([0] * 160)  # type: ignore[arg-type]
        for delay in (-1, 501, 2.5):
            with pytest.raises(AudioProcessingError, match="echo delay .* from 0 to 500"):
                p.set_delay(delay)  # type: ignore[arg-type]
        p.set_delay(40)
        out = p.process_capture(np.zeros(160, np.int16))
        assert out.dtype == np.int16 and out.shape == (160,)
        s = p.stats
        assert (s.engine, s.capture_frames, s.render_frames, s.delay_ms) == (engine, 1, 0, 40)
    with pytest.raises(AudioProcessingError, match="closed"):
        p.process_capture(np.zeros(160, np.int16))
    p.close()  # idempotent


def test_bad_settings_raise_audio_processing_errors() -> None:
    assert issubclass(AudioProcessingError, MediaError)
    with pytest.raises(AudioProcessingError, match="sample rate 44101 Hz"):
        SpeexProcessor(44101)
    for cls in (WebRtcProcessor, PyWebRtcProcessor):
        with pytest.raises(AudioProcessingError, match="WebRTC audio processing runs at 8000, 16000, 32000, 48000 Hz"):
            cls(44100)
    with pytest.raises(AudioProcessingError, match="WebRTC noise suppression level 4: 0, 1, 2 or 3"):
        PyWebRtcProcessor(16000, noise_suppression_level=4)
    if "speex" in ENGINES:
        with pytest.raises(AudioProcessingError, match="filter length 5 ms"):
            SpeexProcessor(16000, filter_ms=5)


def test_modes() -> None:
    assert PROCESSING_MODES == ("auto", "webrtc", "speex", "off")
    assert (check_mode(True), check_mode(False), check_mode(None), check_mode("auto")) == ("auto", "off", "off", "auto")
    with pytest.raises(AudioProcessingError, match="audio processing 'aec3': one of auto, webrtc, speex, off"):
        check_mode("aec3")
    assert make_processor("off", 48000) is None
    if ENGINES:
        p = make_processor("auto", 48000)
        assert p is not None and p.engine == ENGINES[0]
        p.close()
        p = make_processor("auto", 44100)  # WebRTC's APM has no 44.1 kHz: SpeexDSP then
        assert p is None if "speex" not in ENGINES else p is not None and p.engine == "speex"
        if p is not None:
            p.close()


def test_a_named_engine_that_is_missing_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "livekit", None)
    with pytest.raises(AudioProcessingError, match="pip install livekit"):
        check_mode("webrtc")
    assert "webrtc" not in available_processors()
    monkeypatch.setitem(sys.modules, "pywebrtc_audio", None)
    with pytest.raises(AudioProcessingError, match="pip install pywebrtc-audio"):
        PyWebRtcProcessor(16000)
    assert "pywebrtc" not in available_processors()


@needs_pywebrtc
def test_auto_takes_pywebrtc_audio_when_livekit_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "livekit", None)
    assert available_processors()[0] == "pywebrtc"
    p = make_processor("auto", 16000)
    assert p is not None and p.engine == "pywebrtc"
    p.close()
    p = make_processor("auto", 44100)  # no WebRTC at 44.1 kHz from either package
    assert p is None or p.engine == "speex"
    if p is not None:
        p.close()


# ------------------------------------------------------------------ the goals on the emulated echo path


@pytest.fixture(scope="module")
def material() -> Any:
    import benchmarks.aec_material as m

    return m


def _measure(m: Any, engine: str, **scene: Any) -> Any:
    sc = m.make_scene(16000, **scene)
    outs = []
    for s in (m.without_agent(sc), sc):  # the same chain without the agent: the double-talk reference
        p = _processor(engine, auto_gain_control=False)
        if engine == "speex":
            p.set_delay(sc.delay_ms - 10)  # SpeexDSP has no delay estimator: it is told the path's delay
        outs.append(m.run(p, s))
        p.close()
    assert sc.speech_source == "espeak-ng"
    (alone, _), (out, cpu) = outs
    return m.measure(engine, sc, out, cpu, 20.0 if scene.get("nonlinear") else 30.0, alone)


def _webrtc_engines() -> list[Any]:
    return [pytest.param("webrtc", marks=needs_webrtc), pytest.param("pywebrtc", marks=needs_pywebrtc)]


@needs_espeak
@pytest.mark.parametrize("engine", _webrtc_engines())
@pytest.mark.parametrize("nonlinear, goal", [(False, 30.0), (True, 20.0)])
def test_webrtc_meets_the_echo_goals_on_the_kiosk_echo_path(material: Any, engine: str, nonlinear: bool,
                                                            goal: float) -> None:
    r = _measure(material, engine, nonlinear=nonlinear, delay_ms=80, rt60=0.3)
    assert r.erle_db >= goal and r.erle_after_change_db >= goal
    assert r.converge_s <= 1.0  # every 250 ms window from 1 s on holds the goal
    assert r.reconverge_s <= 1.0  # the resident moved: delay +30 ms, another room response
    unprocessed = min(e for _, e in material.erle_curve(material.make_scene(16000, nonlinear=nonlinear),
                                                        material.make_scene(16000, nonlinear=nonlinear).pcm("mic")))
    assert unprocessed < 1.0  # the measure itself: no processing, no ERLE


@needs_espeak
@pytest.mark.parametrize("engine", _webrtc_engines())
def test_webrtc_keeps_the_residents_voice_in_double_talk(material: Any, engine: str) -> None:
    # echo as loud as the resident at the mic: within 3 dB (2.5 dB measured with livekit, 2.7 dB with
    # pywebrtc-audio); with the echo 10 dB louder AEC3's suppressor costs it 4.5-6.6 dB, 2-4 dB with the gain
    # control, through either package: see BENCHMARKS.md, "Echo cancellation", and the next test
    r = _measure(material, engine, echo_gain_db=0.0, delay_ms=120, rt60=0.4)
    assert r.near_attenuation_db <= 3.0
    assert r.erle_db >= 30.0


@needs_espeak
@pytest.mark.xfail(reason="issue 19's one goal missed: AEC3's residual echo suppressor, not tunable through "
                          "livekit or pywebrtc-audio, costs the resident 5.7-6.1 dB here (BENCHMARKS.md)", strict=True)
@pytest.mark.parametrize("engine", _webrtc_engines())
def test_webrtc_keeps_the_residents_voice_when_the_echo_is_10_db_louder(material: Any, engine: str) -> None:
    # strict: an XPASS (a package or a setting that meets the goal) fails the run, to be made the default
    r = _measure(material, engine, delay_ms=80, rt60=0.3)
    assert r.erle_db >= 30.0
    assert r.near_attenuation_db <= 3.0


@needs_espeak
@needs_speex
def test_speex_cancels_a_linear_path_but_converges_slower(material: Any) -> None:
    r = _measure(material, "speex", delay_ms=80, rt60=0.3)
    assert r.erle_db >= 30.0 and r.erle_after_change_db >= 30.0
    assert r.near_attenuation_db <= 1.0  # its strength: double talk untouched
    assert 1.0 < r.reconverge_s < 5.0  # its weakness: seconds, not the goal's one


# ------------------------------------------------------------------ the stage: alignment and framing


def _noise_speech(rate: int, seconds: float, seed: int = 3) -> np.ndarray:
    """Amplitude-modulated noise: broadband like speech, no espeak-ng needed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    return (rng.standard_normal(len(t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) * 3000).astype(np.int16)


def _run_stage(stage: AudioProcessingStage, far: np.ndarray, mic: np.ndarray, rate: int, block: float,
               played_rate: int | None = None, channels: int = 1) -> tuple[np.ndarray, list[int]]:
    """Play ``far`` and capture ``mic`` in blocks, timestamped as the devices would; the output and block sizes."""
    n = int(rate * block)
    t0 = 1000.0
    outs: list[np.ndarray] = []
    sizes: list[int] = []
    pr = played_rate or rate
    pn = int(pr * block)
    far_p = far if pr == rate else np.interp(np.arange(len(far) * pr // rate) * rate / pr, np.arange(len(far)),
                                             far).astype(np.int16)
    for i in range(len(mic) // n):
        # the speaker's callback: block i reaches the converter at t0 + i * block
        blk = far_p[i * pn:(i + 1) * pn]
        stage.played(np.repeat(blk, channels).tobytes(), channels, pr, t0 + i * block)
        out, at = stage.capture(mic[i * n:(i + 1) * n], t0 + (i + 1) * block)
        held = (i + 1) * n - (sum(sizes) + len(out))
        assert at == pytest.approx(t0 + (i + 1) * block - held / rate)
        outs.append(out)
        sizes.append(len(out))
    return np.concatenate(outs), sizes


def _echo(far: np.ndarray, rate: int, delay_ms: float) -> np.ndarray:
    k = int(rate * delay_ms / 1000)
    h = np.zeros(k + 200)
    h[k], h[k + 37], h[k + 150] = 0.5, -0.2, 0.1
    return np.convolve(far.astype(float), h)[:len(far)].astype(np.int16)


def _erle(mic: np.ndarray, out: np.ndarray, rate: int, start: float) -> float:
    a = int(start * rate)
    return float(10 * np.log10(np.mean(mic[a:].astype(float) ** 2) / (np.mean(out[a:].astype(float) ** 2) + 1e-9)))


@pytest.mark.parametrize("engine", _engines())
def test_stage_aligns_played_and_captured_audio_and_cancels_the_echo(engine: str) -> None:
    rate = 16000
    far = _noise_speech(rate, 6.0)
    mic = _echo(far, rate, 8.0)  # 8 ms of air and converters beyond what the device times account for
    stage = AudioProcessingStage(_processor(engine, rate, auto_gain_control=False, noise_suppression=0)
                                 if engine == "speex" else _processor(engine, rate, auto_gain_control=False))
    out, sizes = _run_stage(stage, far, mic, rate, 0.02)
    assert set(sizes) == {320}  # 20 ms in, 20 ms out: nothing held, no latency added
    assert _erle(mic, out, rate, 3.0) >= 25.0
    s = stage.stats
    assert s.capture_frames == s.render_frames == len(mic) // 160 and s.render_missing == 0
    # the unaligned case for comparison: the far end 300 ms late, beyond a 250 ms SpeexDSP filter
    if engine == "speex":
        late = AudioProcessingStage(_processor(engine, rate, auto_gain_control=False, noise_suppression=0))
        out_late, _ = _run_stage(late, far, _echo(far, rate, 300.0), rate, 0.02)
        assert _erle(_echo(far, rate, 300.0), out_late, rate, 3.0) < 10.0
        late.close()
    stage.close()


@needs_speex
def test_stage_holds_at_most_one_frame_for_odd_block_sizes_and_passes_through_after_close() -> None:
    rate = 16000
    far = _noise_speech(rate, 1.0)
    stage = AudioProcessingStage(SpeexProcessor(rate))
    out, sizes = _run_stage(stage, far, _echo(far, rate, 5.0), rate, 0.015)  # 240-sample blocks
    assert sizes[:4] == [160, 320, 160, 320] and len(out) == sum(sizes)
    stage.close()
    pcm = np.arange(240, dtype=np.int16)
    same, at = stage.capture(pcm, 5.0)
    assert np.array_equal(same, pcm) and at == 5.0
    stage.played(pcm.tobytes(), 1, rate, 5.0)  # ignored
    stage.set_delay(10)  # ignored
    stage.close()


@needs_speex
def test_stage_takes_a_stereo_speaker_at_another_rate() -> None:
    rate = 16000
    far = _noise_speech(rate, 5.0)
    mic = _echo(far, rate, 5.0)
    stage = AudioProcessingStage(SpeexProcessor(rate, auto_gain_control=False, noise_suppression=0))
    out, _ = _run_stage(stage, far, mic, rate, 0.02, played_rate=48000, channels=2)
    assert _erle(mic, out, rate, 3.0) >= 15.0  # resampled to the microphone's rate, downmixed
    stage.close()


@needs_speex
def test_stage_counts_missing_and_dropped_render_audio() -> None:
    rate = 16000
    stage = AudioProcessingStage(SpeexProcessor(rate))
    stage.capture(np.zeros(320, np.int16), 10.0)  # nothing played yet
    assert stage.stats.render_missing == 2
    for i in range(150):  # 1.5 s played, no capture: the oldest goes
        stage.played(np.zeros(160, np.int16).tobytes(), 1, rate, 10.0 + i * 0.01)
    stage.capture(np.zeros(160, np.int16), 11.51)
    assert stage.stats.render_dropped >= 40
    stage.close()


def test_attach_leaves_test_sources_alone() -> None:
    from vcore.media import NullSink, Tone

    tone = Tone(sample_rate=16000, realtime=False)
    try:
        assert attach(tone, NullSink(), "auto") is None
        assert attach(tone, NullSink(), "off") is None
        with pytest.raises(AudioProcessingError):
            attach(tone, NullSink(), "bogus")
    finally:
        tone.close()


def test_terminal_and_station_file_take_the_mode(tmp_path: Any) -> None:
    import vcore
    from vcore.station import ConfigError, load_station_config

    with pytest.raises(AudioProcessingError, match="one of auto, webrtc, speex, off"):
        vcore.Terminal("kiosk", allow_plaintext=True, audio_processing="aec")
    t = vcore.Terminal("kiosk", allow_plaintext=True, audio_processing=False)
    assert t.audio_processing == "off"
    assert vcore.Terminal("kiosk", allow_plaintext=True).audio_processing == "auto"
    for mode in PROCESSING_MODES:  # the station file's list is the library's
        (tmp_path / "s.toml").write_text(f'[media]\naudio_processing = "{mode}"\n')
        assert load_station_config(tmp_path / "s.toml") == {"audio_processing": mode}
    (tmp_path / "s.toml").write_text('[media]\naudio_processing = "on"\n')
    with pytest.raises(ConfigError, match=r"\[media\] audio_processing.*'on' is not one of auto, webrtc, speex, off"):
        load_station_config(tmp_path / "s.toml")


# ------------------------------------------------------------------ a call with the echo path in the audio path


class EchoRoom(threading.Thread):
    """The kiosk's room between ALSA's FIFO speaker and FIFO microphone, in real time, 20 ms at a time.

    20 ms: the microphone's block; ALSA's file PCM pads a short read of its input FIFO with silence.

    Reads what the speaker played (silence when it played nothing), passes it through a loudspeaker, a room
    (direct path + reverberation) and ``delay_ms``, adds faint room noise, and writes that to the microphone's
    FIFO; it keeps the echo it made. Both FIFOs hold 4 KiB (128 ms at 16 kHz), the least a pipe can.
    """

    def __init__(self, speaker: str, microphone: str, rate: int, delay_ms: int, rt60: float) -> None:
        super().__init__(daemon=True, name="echo-room")
        import benchmarks.aec_material as m

        for path in (speaker, microphone):
            os.mkfifo(path)
        self.spk = os.open(speaker, os.O_RDWR | os.O_NONBLOCK)
        self.mic = os.open(microphone, os.O_RDWR | os.O_NONBLOCK)
        for fd in (self.spk, self.mic):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 4096)
        h = m.room_response(rate, rt60, 11, length=0.4)
        self.fir = np.concatenate((np.zeros(int(rate * delay_ms / 1000)), h)) * 0.5
        self.zi = np.zeros(len(self.fir) - 1)
        self.n, self.rate = rate // 50, rate
        self.echo: list[tuple[float, np.ndarray]] = []  # (when written, 10 ms of echo)
        self.rng = np.random.default_rng(5)
        self.stop = threading.Event()
        self.start()

    def run(self) -> None:
        from scipy.signal import lfilter

        want = 2 * self.n
        due = time.monotonic()
        while not self.stop.is_set():
            data = b""
            while len(data) < want:  # a card consumes what was played, none invented: wait for late writes
                ready, _, _ = select.select([self.spk], [], [], max(0.0, due + 0.1 - time.monotonic()))
                if not ready:
                    break  # nothing is playing (no call yet): silence
                data += os.read(self.spk, want - len(data))
            played = np.frombuffer(data[:len(data) & ~1], dtype=np.int16).astype(np.float64)
            played = np.concatenate((played, np.zeros(self.n - len(played))))
            echo, self.zi = lfilter(self.fir, [1.0], played, zi=self.zi)
            self.echo.append((time.monotonic(), echo))
            mic = np.clip(echo + self.rng.standard_normal(self.n) * 3.0, -32768, 32767).astype(np.int16)
            queued = array.array("i", [0])
            fcntl.ioctl(self.mic, termios.FIONREAD, queued)
            if queued[0] < 2 * want:  # else nobody reads the microphone (yet): a card would not keep it either
                os.write(self.mic, mic.tobytes())
            due += 0.02
            self.stop.wait(max(0.0, due - time.monotonic()))

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        os.close(self.mic)  # EOF before PortAudio closes the microphone
        os.close(self.spk)


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


SECONDS = 10.0  # of call before measuring the last 6 s


@needs_espeak
@pytest.mark.parametrize("mode", [pytest.param("auto", marks=needs_webrtc), "off",
                                  pytest.param("auto-pywebrtc", marks=needs_pywebrtc)])
def test_agent_does_not_hear_its_own_voice_through_the_kiosk(pki_dir: Path, tmp_path: Path, use_alsa: Any,  # noqa: F811
                                                             mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Agent (speech) -> kiosk Speaker -> room (120 ms, RT60 0.3 s) -> kiosk Microphone -> back to the agent.

    ``off`` is the control: the same measure without processing finds the agent's voice coming back.
    ``auto-pywebrtc``: ``auto`` on a machine without livekit, which takes pywebrtc-audio.
    """
    import sys

    from vcore.media import CallbackSink, Microphone, Source, Speaker

    engine = {"auto": "webrtc", "auto-pywebrtc": "pywebrtc", "off": None}[mode]
    if mode == "auto-pywebrtc":
        monkeypatch.setitem(sys.modules, "livekit", None)
        mode = "auto"
    rate = 16000
    wav = tmp_path / "agent.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), AGENT_TEXT], check=True, capture_output=True)
    room = EchoRoom(str(tmp_path / "speaker"), str(tmp_path / "mic"), rate, 120, 0.3)
    use_alsa(str(tmp_path / "speaker"), str(tmp_path / "mic"))
    heard: list[tuple[float, np.ndarray]] = []  # what came back to the agent, with its arrival time
    mics: list[Any] = []
    measured: dict[str, Any] = {}

    def back(frame: Any) -> None:
        heard.append((time.monotonic(), frame.to_ndarray().reshape(-1).astype(np.float64)))

    def agent_voice() -> Any:  # the speech file, looped, in 20 ms frames
        graph = (f"amovie={wav}:loop=0,aresample={rate},asetnsamples=n={rate // 50}:p=0,"
                 "aformat=sample_fmts=s16:channel_layouts=mono")
        return Source(graph, "lavfi", kind="audio")

    def microphone() -> Any:
        mics.append(Microphone("vcore_mic", sample_rate=rate))
        return mics[-1]

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, allow=["Murat kiosk"],
                         video=None, audio=agent_voice, audio_sink=lambda: CallbackSink(back))
        kiosk = terminal(pki_dir, "Murat kiosk", video=None, audio=microphone,
                         audio_sink=lambda: Speaker("vcore_speaker", sample_rate=rate), audio_processing=mode)
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            await until(call, "media-started")
            await asyncio.sleep(SECONDS)
            measured["end"] = time.monotonic()
            measured["kiosk_in"] = call.stats().stream("audio", "receive")
            measured["agent_in"] = next(iter(agent.calls)).stats().stream("audio", "receive")
            stage = mics[0].processing
            assert (stage is not None) == (mode != "off")
            if stage is not None:
                measured["stats"] = stage.stats
            await call.hangup()

    try:
        run(scenario())
    finally:
        room.close()
    # The receivers must have played the audio: a receiver that concealed it would make the suppression
    # below pass without any echo cancellation (silence has no echo)
    for side in ("kiosk", "agent"):
        got = measured[f"{side}_in"]
        assert got.concealed <= got.frames // 10, f"the {side}'s audio receiver concealed {got.concealed} of {got.frames}"
    # the last 6 s of the call: the echo the room put into the microphone against what the agent got back
    t_end = measured["end"]
    echo = np.concatenate([pcm for t, pcm in room.echo if t_end - 6.0 < t <= t_end])
    back_pcm = np.concatenate([pcm for t, pcm in heard if t_end - 6.0 < t <= t_end])
    assert np.sqrt(np.mean(echo ** 2)) > 500  # the agent was loud in the room
    suppression = 10 * np.log10(np.mean(echo ** 2) / (np.mean(back_pcm ** 2) + 1e-9))
    if mode == "off":
        assert suppression < 3.0  # the control: without processing the agent hears itself
    else:
        s = measured["stats"]
        assert s.engine == engine and s.capture_frames > 100 * (SECONDS - 2)
        assert s.render_frames > 0.9 * s.capture_frames  # what the speaker played reached the canceller
        assert suppression >= 30.0
