"""Microphone and Speaker through sounddevice (PortAudio) on ALSA, without sound hardware.

ALSA's ``file`` PCM over its ``null`` PCM stands in for a sound card, chosen
with ``ALSA_CONFIG_PATH``. The null PCM keeps no time, so the files are FIFOs
and the test keeps time instead: a writer thread feeds the microphone 20 ms of
samples every 20 ms, a reader thread drains the speaker at the same pace, and
what the speaker played is exactly what the reader got. The writer must end
(EOF) before a microphone closes: PortAudio cannot abort a stream whose thread
waits in a read of an empty FIFO.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from av.audio.frame import AudioFrame

from vcore.media import (
    DeviceError,
    DeviceNotFound,
    Microphone,
    SourceEnded,
    Speaker,
    capture_time,
)
from vcore.media.errors import PipelineClosed

try:
    import sounddevice as sd
except (ImportError, OSError) as exc:  # no PortAudio: Debian's libportaudio2 (.ci/run installs it)
    sd = None
    NO_PORTAUDIO = str(exc)
else:
    NO_PORTAUDIO = ""

ASOUND = """
pcm.!default {{ type asym playback.pcm "vcore_speaker" capture.pcm "vcore_mic" }}
pcm.vcore_speaker {{ type file slave.pcm "null" file "{out}" format "raw" }}
pcm.vcore_mic {{ type file slave.pcm "null" file "/dev/null" infile "{infile}" format "raw" }}
pcm.null {{ type null }}
"""


@pytest.fixture
def use_alsa(tmp_path: Path) -> Iterator[Callable[[str, str], None]]:
    """``use_alsa(out, infile)``: point ALSA (and PortAudio) at a config whose speaker writes
    ``out`` and whose microphone reads ``infile``; put back as it was afterwards."""
    if sd is None:
        pytest.skip(f"PortAudio missing: {NO_PORTAUDIO}")

    def use(out: str, infile: str) -> None:
        conf = tmp_path / "asound.conf"
        conf.write_text(ASOUND.format(out=out, infile=infile))
        mp.setenv("ALSA_CONFIG_PATH", str(conf))
        sd._terminate()  # PortAudio lists the devices when it starts: start it again on this config
        sd._initialize()

    with pytest.MonkeyPatch.context() as mp:
        yield use
    sd._terminate()
    sd._initialize()


class Feed:
    """The microphone's FIFO: ``send(pcm)`` paces 20 ms blocks into it; ``end()`` is its EOF."""

    def __init__(self, path: str) -> None:
        os.mkfifo(path)
        self.fd = os.open(path, os.O_RDWR)  # never blocks, and makes the PCM's open not block either

    def send(self, pcm: bytes, block: int) -> None:
        for i in range(0, len(pcm), block):
            os.write(self.fd, pcm[i:i + block])
            time.sleep(0.02)

    def end(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Drain(threading.Thread):
    """The speaker's FIFO: read at ``rate`` bytes per second until the speaker closes it."""

    def __init__(self, path: str, rate: int) -> None:
        super().__init__(daemon=True)
        os.mkfifo(path)
        self.path, self.rate, self.data = path, rate, bytearray()
        self.start()

    def run(self) -> None:
        chunk = self.rate // 50
        with open(self.path, "rb", buffering=0) as f:
            while block := f.read(chunk):
                self.data += block
                time.sleep(len(block) / self.rate)


@pytest.fixture
def alsa(tmp_path: Path, use_alsa: Callable[[str, str], None]) -> Iterator[tuple[Path, Feed]]:
    """The FIFO sound card: (folder, the microphone's feed); the speaker's FIFO is folder/speaker."""
    feed = Feed(str(tmp_path / "mic"))
    use_alsa(str(tmp_path / "speaker"), str(tmp_path / "mic"))
    try:
        yield tmp_path, feed
    finally:
        feed.end()


def ramp(samples: int, channels: int = 1, start: int = 1) -> np.ndarray:
    """Distinct non-zero s16 samples (interleaved when stereo)."""
    return ((np.arange(samples * channels) + start) % 30000 + 1).astype(np.int16)


def frame(pcm: np.ndarray, rate: int, layout: str = "mono") -> AudioFrame:
    f = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout=layout)
    f.sample_rate = rate
    f.pts, f.time_base = 0, Fraction(1, rate)
    return f


@pytest.mark.parametrize("channels", [1, 2])
def test_microphone_delivers_stamped_s16_frames_of_its_rate_and_layout(alsa: tuple[Path, Feed],
                                                                       channels: int) -> None:
    _, feed = alsa
    pcm = ramp(320 * 10, channels)
    mic = Microphone("vcore_mic", sample_rate=16000, channels=channels)
    assert (mic.backend, mic.url, mic.sample_rate) == ("sounddevice", "vcore_mic", 16000)
    t0 = time.monotonic()
    writer = threading.Thread(target=feed.send, args=(pcm.tobytes(), 640 * channels))
    writer.start()
    frames = [mic.read() for _ in range(10)]
    writer.join()
    assert mic.frames_read == 10 and mic.overruns == 0
    feed.end()  # EOF: now the null PCM runs unpaced, which a real card never does
    mic.close()
    for f in frames:
        assert (f.sample_rate, f.samples, f.format.name, len(f.layout.channels)) == (16000, 320, "s16", channels)
        assert f.layout.name == ("mono" if channels == 1 else "stereo")
        assert t0 <= capture_time(f) <= time.monotonic()
    stamps = [capture_time(f) for f in frames]
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] > 0.1  # paced by the device: 10 blocks of 20 ms
    got = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    assert np.array_equal(got, pcm)
    with pytest.raises(SourceEnded):
        mic.read()
    mic.close()  # idempotent


def test_microphone_that_delivers_nothing_raises_device_error(alsa: tuple[Path, Feed]) -> None:
    _, feed = alsa
    mic = Microphone(read_timeout=0.3)  # the default device: the config's vcore_mic
    try:
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match="delivered nothing for 0.3 s"):
            mic.read()
        assert time.monotonic() - t0 < 2
    finally:
        feed.end()
        mic.close()


def test_microphone_close_from_another_thread_wakes_the_reader(alsa: tuple[Path, Feed]) -> None:
    _, feed = alsa
    mic = Microphone("vcore_mic", read_timeout=10)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            mic.read()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.1)
    feed.end()
    mic.close()
    t.join(2)
    assert not t.is_alive() and isinstance(errors[0], SourceEnded)


def test_speaker_plays_exactly_the_samples_written(alsa: tuple[Path, Feed]) -> None:
    folder, _ = alsa
    drain = Drain(str(folder / "speaker"), 16000 * 2)
    pcm = ramp(320 * 25)
    with Speaker("vcore_speaker", sample_rate=16000, max_delay=1.0) as spk:
        assert (spk.name, spk.sample_rate) == ("vcore_speaker", 16000)
        t0 = time.monotonic()
        for i in range(25):
            spk.write(frame(pcm[i * 320:(i + 1) * 320], 16000))
        assert time.monotonic() - t0 < 0.2  # writes never wait for the device
        deadline = time.monotonic() + 5
        while spk.played < len(pcm) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert spk.played == len(pcm) and spk.dropped == 0
    drain.join(5)
    played = np.frombuffer(bytes(drain.data), dtype=np.int16)
    assert np.array_equal(played[played != 0], pcm)  # every sample, in order, once; silence around
    if spk.underruns <= 1:  # ran dry only at the end (a loaded machine may starve it mid-way)
        start = int(np.flatnonzero(played)[0])
        assert np.array_equal(played[start:start + len(pcm)], pcm)
    with pytest.raises(PipelineClosed):
        spk.write(frame(pcm[:320], 16000))


def test_speaker_resamples_and_drops_the_oldest_instead_of_blocking(alsa: tuple[Path, Feed]) -> None:
    folder, _ = alsa
    drain = Drain(str(folder / "speaker"), 48000 * 2)
    spk = Speaker(sample_rate=48000, max_delay=0.1)  # the default device
    try:
        t0 = time.monotonic()
        for i in range(50):  # one second of 8 kHz speech (PCMU) arriving at once
            spk.write(frame(ramp(160, start=i * 160), 8000))
        assert time.monotonic() - t0 < 0.3
        assert spk.buffered <= 0.1 + 1e-9
        # no delay builds up: what the device did not take at once was dropped (how much depends on how fast
        # the test's file device drains, not on the speaker)
        assert spk.dropped > 0
        time.sleep(0.3)
        assert spk.played > 0
    finally:
        spk.close()
    drain.join(5)
    assert len(drain.data) > 0


def test_absent_audio_devices_raise_device_not_found(alsa: tuple[Path, Feed]) -> None:
    with pytest.raises(DeviceNotFound, match="no 'vcore-no-such-mic' microphone.*vcore devices"):
        Microphone("vcore-no-such-mic")
    with pytest.raises(DeviceNotFound, match="no 99 speaker"):
        Speaker(99)
    with pytest.raises(DeviceNotFound, match="no 'vcore-no-such-speaker' speaker"):
        Speaker("vcore-no-such-speaker")
    with pytest.raises(ValueError, match="channels"):
        Microphone("vcore_mic", channels=3)


def test_no_audio_device_at_all_is_device_not_found(monkeypatch: pytest.MonkeyPatch,
                                                    use_alsa: Callable[[str, str], None]) -> None:
    monkeypatch.delenv("ALSA_CONFIG_PATH", raising=False)  # this machine as it is: no sound card
    sd._terminate()  # (an ALSA config without a default PCM makes PortAudio abort: not that way)
    sd._initialize()
    if len(sd.query_devices()):
        pytest.skip("this machine has audio devices")
    with pytest.raises(DeviceNotFound, match="no default microphone"):
        Microphone()
    with pytest.raises(DeviceNotFound, match="no default speaker"):
        Speaker()


def test_missing_sounddevice_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import sounddevice -> ImportError
    with pytest.raises(DeviceNotFound, match="pip install sounddevice"):
        Microphone()
    with pytest.raises(DeviceNotFound, match="pip install sounddevice"):
        Speaker()


def test_pulse_and_alsa_urls_still_use_ffmpeg_inputs() -> None:
    # The PyAV wheel has neither input working: a clear DeviceNotFound, never a ValueError.
    for device in ("pulse:default", "alsa:hw:97,0"):
        with pytest.raises(DeviceNotFound, match="cannot open (pulse|alsa)"):
            Microphone(device)

