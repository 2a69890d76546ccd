"""Sources (lavfi, files, missing devices), sinks (recorder, queue) and the clock model."""

from __future__ import annotations

import os
import threading
import time

import av
import pytest
from .media_helpers import avcc_nals, noise_frames, vcore_threads, write_test_file

from vcore.errors import MediaError
from vcore.media import (
    Camera,
    DeviceError,
    DeviceNotFound,
    FileSource,
    FrameQueue,
    H264Encoder,
    MediaClock,
    Microphone,
    NullSink,
    PipelineClosed,
    Recorder,
    RemoteClock,
    ScreenSource,
    Source,
    SourceEnded,
    TestPattern,
    Tone,
    capture_time,
    sync_offset,
)
from vcore.payload.h264 import AccessUnit, split_annexb
from vcore.rtp import RtcpSenderReport

# ---------------------------------------------------------------- sources


def test_test_pattern_frames_are_stamped_and_paced() -> None:
    with TestPattern(160, 120, 50) as src:
        before = time.monotonic()
        frames = [src.read() for _ in range(5)]
        after = time.monotonic()
    assert all((f.width, f.height, f.format.name) == (160, 120, "yuv420p") for f in frames)
    stamps = [capture_time(f) for f in frames]
    assert before <= stamps[0] <= stamps[-1] <= after
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] >= 4 / 50 * 0.5  # paced to real time, not read at once


def test_a_busy_reader_makes_a_paced_source_skip_stale_frames() -> None:
    with TestPattern(160, 120, 30) as src:
        src.read()
        time.sleep(0.25)  # the reader was busy for about 7 frame periods
        src.read()
        assert src.frames_skipped >= 3  # the backlog was skipped, not delivered late


def test_test_pattern_without_realtime_and_iteration_after_close() -> None:
    src = TestPattern(160, 120, 30, realtime=False)
    assert len([src.read() for _ in range(10)]) == 10
    assert src.frames_read == 10
    src.close()
    with pytest.raises(SourceEnded):
        src.read()
    assert list(src) == []


def test_tone_gives_20ms_frames() -> None:
    with Tone(440, 8000, realtime=False) as src:
        f = src.read()
    assert (f.samples, f.sample_rate, f.format.name, f.layout.name) == (160, 8000, "s16", "mono")
    assert capture_time(f) <= time.monotonic()


def test_file_source_loops(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "clip.mp4")
    write_test_file(path, frames=6)
    with FileSource(path, loop=True, realtime=False) as src:
        frames = [src.read() for _ in range(15)]
    assert len(frames) == 15


def test_file_source_end_without_loop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "clip.mkv")
    write_test_file(path, frames=6)
    src = FileSource(path, loop=False, realtime=True)
    frames = list(src)
    assert len(frames) == 6
    # paced at 30 fps: 6 frames take 5 frame periods
    assert capture_time(frames[-1]) - capture_time(frames[0]) >= 5 / 30 * 0.5
    with pytest.raises(SourceEnded, match="ended|closed"):
        src.read()
    src.close()


def test_missing_devices_and_files_raise_device_not_found(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DeviceNotFound, match="does not exist"):
        Camera("/dev/video-does-not-exist")
    with pytest.raises(DeviceNotFound, match="does not exist"):
        FileSource(tmp_path / "missing.mp4")
    with pytest.raises(DeviceNotFound):
        Microphone("hw:97,0", backend="alsa")
    with pytest.raises(DeviceNotFound):
        ScreenSource(":97.0")
    with pytest.raises(DeviceNotFound):
        Source("nosuchsource=size=2x2", "lavfi")
    not_media = tmp_path / "notes.txt"
    not_media.write_text("not a video")
    with pytest.raises(DeviceNotFound):
        FileSource(not_media)
    assert issubclass(DeviceNotFound, MediaError)


def test_device_that_disappears_mid_stream_raises_device_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A FIFO stands in for a camera: the writer delivers some frames, then goes away.
    fifo = str(tmp_path / "camera")
    os.mkfifo(fifo)
    enc = H264Encoder(160, 120, 30, 200_000, codec="libx264")
    data = b"".join(u.data for f in noise_frames(10, 160, 120) for u in enc.encode(f))

    def camera() -> None:
        with open(fifo, "wb") as w:
            w.write(data)

    writer = threading.Thread(target=camera)
    writer.start()
    try:
        src = Source(fifo, "h264", {"probesize": "32768"}, realtime=False, live=True)
        got = 0
        with pytest.raises(DeviceError, match="stopped delivering frames"):
            while True:
                src.read()
                got += 1
        assert got == 10
        with pytest.raises(SourceEnded):
            src.read()
    finally:
        writer.join(5)


def test_close_from_another_thread_wakes_a_paced_reader() -> None:
    src = TestPattern(160, 120, 0.02)  # a frame every 50 s
    src.read()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            src.read()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.05)
    src.close()
    t.join(20.0)  # long before the next frame is due
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], SourceEnded)


# ---------------------------------------------------------------- sinks


def test_frame_queue_drops_the_oldest() -> None:
    q: FrameQueue[int] = FrameQueue(2)
    for i in range(5):
        q.write(i)
    assert q.dropped == 3 and len(q) == 2
    assert q.get() == 3 and q.get() == 4
    with pytest.raises(TimeoutError):
        q.get(timeout=0.01)
    q.write(9)
    q.close()
    assert q.get() == 9  # what is left is still delivered
    with pytest.raises(PipelineClosed):
        q.get()
    with pytest.raises(PipelineClosed):
        q.write(1)


def test_frame_queue_close_wakes_a_blocked_reader() -> None:
    q: FrameQueue[int] = FrameQueue(1)
    out: list[BaseException] = []
    t = threading.Thread(target=lambda: out.append(pytest.raises(PipelineClosed, q.get).value))
    t.start()
    time.sleep(0.02)
    q.close()
    t.join(20.0)
    assert not t.is_alive() and len(out) == 1


def test_null_sink_counts() -> None:
    s = NullSink()
    s.write(1)
    s.write(2)
    s.close()
    assert s.count == 2


def _units(n: int, idr_interval: float = 1.0) -> list[AccessUnit]:
    enc = H264Encoder(160, 120, 30, 300_000, codec="libx264", idr_interval=idr_interval)
    return [u for f in noise_frames(n, 160, 120) for u in enc.encode(f)]


@pytest.mark.parametrize("name", ["rec.mp4", "rec.mkv"])
def test_recorder_remuxes_without_reencoding(tmp_path, name: str) -> None:  # type: ignore[no-untyped-def]
    units = _units(40)
    path = str(tmp_path / name)
    with Recorder(path) as rec:
        for u in units:
            rec.write_video(u)
    assert rec.video_frames == 40
    with av.open(path) as f:
        stream = f.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (160, 120)
        assert stream.codec_context.profile == "Constrained Baseline"
        packets = [p for p in f.demux(stream) if p.size]
        assert len(packets) == 40
        # the very slices that were sent, byte for byte (the container stores them length-prefixed)
        for p, u in zip(packets, units):
            sent = [n for n in split_annexb(u.data) if n[0] & 0x1F in (1, 5)]
            stored = [n for n in avcc_nals(bytes(p)) if n[0] & 0x1F in (1, 5)]
            assert stored == sent
        f.seek(0)
        assert sum(1 for _ in f.decode(video=0)) == 40
        duration = float(stream.duration * stream.time_base) if stream.duration else 40 / 30
        assert duration == pytest.approx(40 / 30, abs=0.1)


def test_recorder_starts_at_a_keyframe_and_skips_broken_units(tmp_path) -> None:  # type: ignore[no-untyped-def]
    units = _units(60)
    path = str(tmp_path / "rec.mp4")
    rec = Recorder(path)
    for i, u in enumerate(units[5:], start=5):  # joined mid-stream: 5..29 are skipped
        if i == 40:
            u = AccessUnit(u.data[:50], u.timestamp, False, False)  # lost packets: skip to the next IDR
        rec.write_video(u)
    rec.close()
    rec.close()
    assert rec.video_frames == 10 and rec.skipped == 45  # 5..29 and 40..59 skipped; 30..39 recorded
    with av.open(path) as f:
        assert sum(1 for _ in f.decode(video=0)) == 10
    with pytest.raises(PipelineClosed):
        rec.write_video(units[0])


def test_recorder_with_audio(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "av.mp4")
    tone = Tone(440, 48000, realtime=False)
    with Recorder(path, audio=True) as rec:
        for u in _units(30):
            rec.write_video(u)
            rec.write_audio(tone.read())
            rec.write_audio(tone.read())
    tone.close()
    with av.open(path) as f:
        assert len(f.streams.video) == 1 and len(f.streams.audio) == 1
        assert sum(f.samples for f in f.decode(audio=0)) >= 48000 * 0.5


def test_recorder_bad_path() -> None:
    with pytest.raises(MediaError, match="cannot write"):
        Recorder("/nonexistent-dir/x.mp4")


# ---------------------------------------------------------------- clock


def test_media_clock_maps_capture_time_to_rtp_and_back() -> None:
    clock = MediaClock(90000, rtp_offset=0xFFFFFF00, anchor=(100.0, 1_700_000_000.0))
    assert clock.rtp_timestamp(100.0) == 0xFFFFFF00
    assert clock.rtp_timestamp(101.0) == (0xFFFFFF00 + 90000) & 0xFFFFFFFF  # wrapped
    assert clock.capture_time(clock.rtp_timestamp(101.0), near=100.5) == pytest.approx(101.0)
    assert clock.unix_time(101.5) == pytest.approx(1_700_000_001.5)
    ntp, rtp = clock.sender_report_times(101.0)
    assert rtp == clock.rtp_timestamp(101.0)
    assert (ntp >> 32) == 1_700_000_001 + 2208988800


def test_audio_and_video_clocks_agree_for_lip_sync() -> None:
    video, audio = MediaClock(90000), MediaClock(8000)
    now = time.monotonic()
    rv, ra = RemoteClock(90000), RemoteClock(8000)
    assert sync_offset(ra, 0, rv, 0) is None
    for clock, remote in ((video, rv), (audio, ra)):
        ntp, rtp = clock.sender_report_times(now)
        remote.update(RtcpSenderReport(1, ntp, rtp, 0, 0))
    # a video frame captured 40 ms after an audio sample plays 40 ms later
    offset = sync_offset(ra, audio.rtp_timestamp(now + 1.0), rv, video.rtp_timestamp(now + 1.04))
    assert offset == pytest.approx(0.04, abs=0.001)
    assert rv.synchronized and ra.synchronized


def test_no_threads_left_behind() -> None:
    assert vcore_threads() == set()


def test_core_never_imports_pyav_or_the_display_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys, vcore; assert 'av' not in sys.modules, 'vcore imported PyAV'; "
        "import vcore.media; assert 'pygame' not in sys.modules and 'sounddevice' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))


def test_display_extra_missing_gives_a_clear_error() -> None:
    pytest.importorskip("av")
    try:
        import pygame  # noqa: F401

        pytest.skip("pygame is installed here")
    except ImportError:
        pass
    from vcore.media.display import VideoWindow

    with pytest.raises(MediaError, match="pip install pygame"):
        VideoWindow()


def test_recorder_places_audio_and_video_on_one_timeline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "av.mkv")
    tone = Tone(440, 48000, realtime=False)
    units = _units(15)
    with Recorder(path, audio=True) as rec:
        for i in range(25):  # half a second of audio before the first picture arrives
            rec.write_audio(tone.read(), at=10.0 + 0.02 * i)
        for i, u in enumerate(units):
            rec.write_video(u, at=10.5 + i / 30)
            rec.write_audio(tone.read(), at=10.5 + 0.02 * i)
    tone.close()
    with av.open(path) as f:
        v, a = f.streams.video[0], f.streams.audio[0]
        starts: dict[str, float] = {}
        for p in f.demux(v, a):  # one pass: a seek would land on the first keyframe
            if p.pts is not None:
                starts[p.stream.type] = min(starts.get(p.stream.type, 1e9), float(p.pts * p.time_base))
        first_video, first_audio = starts["video"], starts["audio"]
    assert first_video - first_audio == pytest.approx(0.5, abs=0.05)


def test_recorder_shared_by_two_writers_finishes_after_the_last(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "shared.mkv")
    rec = Recorder(path)
    rec.attach()
    rec.attach()
    units = _units(5)
    for u in units:
        rec.write_video(u)
    rec.detach()
    rec.write_video(units[0])  # still open for the second writer
    rec.detach()
    with pytest.raises(PipelineClosed):
        rec.write_video(units[1])
    with av.open(path) as f:
        assert sum(1 for _ in f.decode(video=0)) >= 5
