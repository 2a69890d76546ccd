"""Stopping a station: SIGTERM/SIGINT on ``vcore answer`` / ``vcore call`` hang up properly; recordings are finished.

A signal mid-call must end the peer's call ``hangup`` (a ReleaseComplete, not a dropped connection), leave a
playable recording with frames, print the summary and exit 0 within 5 s. A recording never holds zero bytes:
a call without a picture leaves no file; one that got pictures is finished however its call ends (a cancelled
task, an interpreter that exits without closing it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .call_helpers import make_pki, run, terminal, wait_for
from .call_helpers import free_port as _free_port
from .call_helpers import video_frames

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
SMALL = ["--size", "160x120", "--fps", "10", "--bitrate", "100000", "--stats", "1"]
STOP_WITHIN = 5.0  # what the issue asks; generous against a loaded machine is not needed: it is a bound


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))



_video_frames = video_frames  # raises when the recording does not open (an MP4 without its moov)


class Station:
    """``python -m vcore ARGS`` with its output in a file."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "vcore", *args], stdout=out,
                                         stderr=subprocess.STDOUT, env=ENV)

    @property
    def text(self) -> str:
        return self.log.read_text()

    def wait_text(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text:
            assert self.proc.poll() is None and time.monotonic() < deadline, f"no {text!r}:\n{self.text}"
            time.sleep(0.05)

    def stop(self, signum: int) -> int:
        """Send ``signum``; the exit status, which must come within STOP_WITHIN seconds."""
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(STOP_WITHIN)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {STOP_WITHIN} s after {signal.Signals(signum).name}:\n{self.text}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def stations() -> Iterator[list[Station]]:
    started: list[Station] = []
    yield started
    for s in started:
        s.kill()


def _in_call(tmp_path: Path, stations: list[Station], pki_dir: Path, tls: bool) -> tuple[Station, Station, Path]:
    """An agent (recording into a directory) and a kiosk in a call, media flowing both ways."""
    port, rec = _free_port(), tmp_path / "rec"
    rec.mkdir()
    anchor = str(pki_dir / "ca" / "ca.cert.pem")
    agent_sec = ["--identity", str(pki_dir / "CAF agent.pem"), "--trust", anchor] if tls else ["--no-tls"]
    kiosk_sec = ["--identity", str(pki_dir / "Murat kiosk.pem"), "--trust", anchor] if tls else ["--no-tls"]
    agent = Station(tmp_path / "agent.log", "answer", *agent_sec, "--host", "127.0.0.1", "--port", str(port),
                    "--record-dir", str(rec), *SMALL)
    stations.append(agent)
    agent.wait_text("answering calls")
    kiosk = Station(tmp_path / "kiosk.log", "call", *kiosk_sec, *SMALL, f"h323:caf-agent@127.0.0.1:{port}")
    stations.append(kiosk)
    for station in (agent, kiosk):
        station.wait_text("video rx H264")  # a stats line: frames are arriving
    return agent, kiosk, rec


def _recording(rec: Path) -> Path:
    files = list(rec.iterdir())
    assert len(files) == 1, files
    return files[0]


@pytest.mark.parametrize("tls", [False, True], ids=["plaintext", "tls"])
def test_sigterm_stops_the_agent_and_hangs_up(tmp_path: Path, stations: list[Station], pki_dir: Path,
                                               tls: bool) -> None:
    agent, kiosk, rec = _in_call(tmp_path, stations, pki_dir, tls)
    assert agent.stop(signal.SIGTERM) == 0, agent.text
    assert kiosk.proc.wait(15) == 0, kiosk.text  # the kiosk's call ended by a hang-up: its status says so
    assert "call ended: hangup" in kiosk.text and "peer-closed" not in kiosk.text, kiosk.text
    assert "SIGTERM: hanging up" in agent.text and "summary: video receive H264" in agent.text, agent.text
    assert "Traceback" not in agent.text + kiosk.text
    assert _video_frames(_recording(rec)) > 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_hangs_up_the_kiosk(tmp_path: Path, stations: list[Station], pki_dir: Path, signum: int) -> None:
    agent, kiosk, rec = _in_call(tmp_path, stations, pki_dir, tls=False)
    assert kiosk.stop(signum) == 0, kiosk.text
    assert "call ended: hangup" in kiosk.text and "summary: video send H264" in kiosk.text, kiosk.text
    agent.wait_text("call ended: hangup", 10)  # the agent saw a hang-up (ReleaseComplete), not a lost connection
    assert agent.stop(signal.SIGTERM) == 0, agent.text
    assert "Traceback" not in agent.text + kiosk.text
    assert _video_frames(_recording(rec)) > 0


def test_a_second_signal_exits_at_once(tmp_path: Path, stations: list[Station], pki_dir: Path) -> None:
    agent, kiosk, _ = _in_call(tmp_path, stations, pki_dir, tls=False)
    kiosk.proc.send_signal(signal.SIGINT)
    status = kiosk.stop(signal.SIGINT)
    assert status in (0, 130), kiosk.text  # 0 when the hang-up was done before the second one came
    assert "Traceback" not in kiosk.text
    assert agent.stop(signal.SIGTERM) == 0, agent.text


def test_an_idle_agent_stops_at_once(tmp_path: Path, stations: list[Station]) -> None:
    (tmp_path / "rec").mkdir()
    agent = Station(tmp_path / "agent.log", "answer", "--no-tls", "--host", "127.0.0.1", "--port", "0",
                    "--record-dir", str(tmp_path / "rec"))
    stations.append(agent)
    agent.wait_text("answering calls")
    assert agent.stop(signal.SIGINT) == 0, agent.text
    assert not list((tmp_path / "rec").iterdir())


# ------------------------------------------------------------------ recordings: never empty, always finished


def _units(n: int) -> list[Any]:
    from vcore.media import H264Encoder

    from .media_helpers import noise_frames

    enc = H264Encoder(160, 120, 30, 300_000, codec="libx264")
    return [u for f in noise_frames(n, 160, 120) for u in enc.encode(f)]


def test_a_recording_without_a_picture_leaves_no_file(tmp_path: Path) -> None:
    from vcore.media import Recorder, Tone

    path = tmp_path / "call.mp4"
    tone = Tone(440, 48000, realtime=False)
    rec = Recorder(path, audio=True)
    assert not path.exists()  # nothing is created before the first keyframe
    for _ in range(20):
        rec.write_audio(tone.read())
    for unit in _units(3)[1:]:  # no keyframe among them
        rec.write_video(unit)
    rec.close()
    tone.close()
    assert not path.exists()
    path.write_bytes(b"an earlier recording")
    Recorder(path).close()  # a recorder that got nothing does not truncate what is there
    assert path.read_bytes() == b"an earlier recording"


@pytest.mark.parametrize("name,kept", [("full.mp4", False), ("full.mkv", True)])
def test_a_recording_that_cannot_be_finished(tmp_path: Path, name: str, kept: bool) -> None:
    """A full disk at the end: an MP4 without its index plays nowhere and is removed; an MKV plays and is kept."""
    from vcore.media import MediaError, Recorder

    path = tmp_path / name
    rec = Recorder(path)
    for unit in _units(5):
        rec.write_video(unit)
    real = rec._out

    class FullDisk:  # the container, whose trailer does not fit on the disk
        format = real.format

        def close(self) -> None:
            real.close()
            raise OSError(28, "No space left on device")

    rec._out = FullDisk()
    with pytest.raises(MediaError, match="No space"):
        rec.close()
    assert path.exists() == kept


def test_a_recording_left_open_is_finished_at_exit(tmp_path: Path) -> None:
    path = tmp_path / "open.mp4"
    script = ("import sys\nfrom tests.test_cli_signals import _units\nfrom vcore.media import Recorder\n"
              "rec = Recorder(sys.argv[1])\nfor u in _units(10):\n    rec.write_video(u)\n")  # no close()
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert _video_frames(path) == 10


def test_a_call_without_pictures_leaves_no_recording(pki_dir: Path, tmp_path: Path) -> None:
    """The kiosk's camera fails at the call: the agent's recording never got a picture, so there is no file."""
    from vcore.media import DeviceNotFound

    def unplugged() -> Any:
        raise DeviceNotFound("camera '/dev/video0' does not exist")

    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, recordings=tmp_path / "rec")
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, video=unplugged)
        async with agent, kiosk:
            call = await kiosk.call(f"h323:caf-agent@{agent.address}")
            await wait_for(lambda: call.ended is not None or bool(agent.calls))
            await call.hangup()
            await wait_for(lambda: not agent.calls)

    run(scenario())
    assert not (tmp_path / "rec").exists() or not list((tmp_path / "rec").iterdir())


def test_a_recording_is_finished_when_its_station_is_cancelled(pki_dir: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, recordings=tmp_path / "rec")
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False)
        listening = asyncio.Event()

        async def station() -> None:
            async with agent:
                listening.set()
                await asyncio.Event().wait()  # on all day, until cancelled

        task = asyncio.ensure_future(station())
        await listening.wait()
        async with kiosk:
            call = await kiosk.call(f"h323:caf-agent@{agent.address}")
            await wait_for(lambda: bool(agent.calls) and (s := agent.calls[0].stats().stream("video", "receive"))
                           is not None and s.frames >= 5)
            task.cancel()  # e.g. the application's main task cancelled by its own shutdown
            await asyncio.gather(task, return_exceptions=True)
            ended = await call.wait_ended(10)
            assert ended.reason == "hangup", ended

    run(scenario())
    files = list((tmp_path / "rec").iterdir())
    assert len(files) == 1 and _video_frames(files[0]) >= 5
