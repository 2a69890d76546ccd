"""``vcore devices``: cameras from a made-up /dev and sysfs, audio from ALSA's file PCM, serial ports from ptys."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from vcore import devices
from vcore.cli import main as vcore_main
from vcore.media.errors import DeviceNotFound

from .test_audio_io import use_alsa  # noqa: F401 - the fixture

KINDS = ("camera", "microphone", "speaker", "serial")


def test_cameras_in_number_order_named_from_sysfs(tmp_path: Path) -> None:
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    for n in (10, 0, 2):
        (dev / f"video{n}").write_bytes(b"")
    (dev / "video3").symlink_to(tmp_path / "unplugged")
    for n, name in ((0, "HD Pro Webcam C920"), (10, "bcm2835-codec-decode")):
        (sysfs / f"video{n}").mkdir(parents=True)
        (sysfs / f"video{n}" / "name").write_text(name + "\n")
    found = devices.cameras(str(dev), str(sysfs))
    assert [d.id for d in found] == [str(dev / f"video{n}") for n in (0, 2, 3, 10)]
    assert [d.name for d in found] == ["HD Pro Webcam C920", "video2", "video3", "bcm2835-codec-decode"]
    assert [d.opens for d in found] == [True, True, False, True]
    assert found[2].error == "No such file or directory"
    assert found[0].detail == ""  # a plain file answers no VIDIOC_QUERYCAP: capture unknown
    line = found[2].line()
    assert line.startswith("camera ") and line.endswith("does not open: No such file or directory")


def test_serial_ports_say_whether_they_open(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = os.openpty()
    try:
        tty = os.ttyname(slave)
        ports = [SimpleNamespace(device="/dev/vcore-no-such-tty", name="vcore-no-such-tty", description="n/a",
                                 hwid="n/a"),
                 SimpleNamespace(device=tty, name=os.path.basename(tty), description="USB-Serial Controller",
                                 hwid="USB VID:PID=067B:2303")]
        from serial.tools import list_ports

        monkeypatch.setattr(list_ports, "comports", lambda: ports)
        found = {d.id: d for d in devices.serial_ports()}
        assert found[tty].opens and found[tty].name == "USB-Serial Controller"
        assert found[tty].line().endswith('"USB-Serial Controller" (USB VID:PID=067B:2303)  opens')
        absent = found["/dev/vcore-no-such-tty"]
        assert not absent.opens and "No such file" in str(absent.error)
        assert (absent.name, absent.detail) == ("vcore-no-such-tty", "")
    finally:
        os.close(master)
        os.close(slave)


def test_vcore_devices_lists_every_family_one_line_each(
        tmp_path: Path, use_alsa: Callable[[str, str], None],  # noqa: F811 - the imported fixture
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mic.raw").write_bytes(bytes(3200))
    use_alsa(str(tmp_path / "played.raw"), str(tmp_path / "mic.raw"))
    assert vcore_main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.split()[0] in KINDS for line in lines)
    assert {line.split()[0] for line in lines} == set(KINDS)  # a family with nothing says "none found"
    mics = [line for line in lines if line.startswith("microphone") and '"vcore_mic"' in line]
    speakers = [line for line in lines if line.startswith("speaker") and '"vcore_speaker"' in line]
    assert len(mics) == 1 and mics[0].endswith("opens") and "ALSA" in mics[0]
    assert len(speakers) == 1 and speakers[0].endswith("opens")

    assert vcore_main(["devices", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert set(listing) == {"cameras", "microphones", "speakers", "serial_ports", "problems"}
    assert listing["problems"] == {}
    mic = next(d for d in listing["microphones"] if d["name"] == "vcore_mic")
    assert mic["opens"] is True and mic["error"] is None and mic["id"].isdigit()
    assert all(d["kind"] == "serial" and d["id"].startswith("/dev/") for d in listing["serial_ports"])


def test_vcore_devices_without_portaudio_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from vcore.media import sources

    def missing() -> None:
        raise DeviceNotFound("audio devices need PortAudio (PortAudio library not found): "
                             "apt-get install libportaudio2")

    monkeypatch.setattr(sources, "_sounddevice", missing)
    assert devices.main([]) == 0
    out = capsys.readouterr().out
    assert "microphone  none found: audio devices need PortAudio" in out
    assert "speaker     none found: audio devices need PortAudio" in out
    assert devices.main(["--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "libportaudio2" in listing["problems"]["audio"] and listing["microphones"] == []


def test_vcore_devices_rejects_unknown_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        vcore_main(["devices", "--yaml"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("vcore devices: error:")
