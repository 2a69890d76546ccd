"""``vcore devices``: the cameras, microphones, speakers and serial ports of this machine, and whether each opens.

    vcore devices            one line per device
    vcore devices --json     the same as one JSON object

Cameras are the V4L2 nodes ``/dev/video*``, named from
``/sys/class/video4linux/*/name``; ``capture`` when VIDIOC_QUERYCAP says the node
captures video (a UVC camera also has a metadata node that does not). Audio
devices are PortAudio's (sounddevice): one with inputs is a microphone, one
with outputs a speaker; its index, its name or a unique part of it
(``hw:1,0``) is what ``--microphone`` / ``--speaker`` take. Serial ports are
pyserial's ``list_ports``. "opens": the device was opened and closed again
(a camera with open(2), an audio device as a PortAudio stream at its default
rate, a serial port with pyserial); a busy device says so. PortAudio's ALSA
chatter on stderr is hidden unless ``-v``.

Not thread-safe (the probes swap file descriptor 2 while PortAudio starts).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Device", "cameras", "audio_devices", "serial_ports", "probe_serial", "list_devices", "main"]

_VIDIOC_QUERYCAP = 0x80685600  # _IOR('V', 0, struct v4l2_capability), 104 bytes
_CAP_CAPTURE = 0x00000001 | 0x00001000  # V4L2_CAP_VIDEO_CAPTURE | _MPLANE
_CAP_DEVICE_CAPS = 0x80000000


@dataclass
class Device:
    """One device: ``kind`` camera/microphone/speaker/serial, ``id`` what to pass on the command line."""

    kind: str
    id: str
    name: str
    detail: str
    opens: bool
    error: str | None = None

    def line(self) -> str:
        status = "opens" if self.opens else f"does not open: {self.error}"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.kind:<10}  {self.id:<12}  \"{self.name}\"{detail}  {status}"


def _why(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def _probe_v4l2(path: str) -> tuple[bool, str | None, bool | None]:
    """(opens, error, captures video or None when the driver did not say)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    except OSError as exc:
        return False, _why(exc), None
    try:
        cap = bytearray(104)
        try:
            fcntl.ioctl(fd, _VIDIOC_QUERYCAP, cap)
        except OSError:
            return True, None, None
        caps, device_caps = int.from_bytes(cap[84:88], "little"), int.from_bytes(cap[88:92], "little")
        return True, None, bool((device_caps if caps & _CAP_DEVICE_CAPS else caps) & _CAP_CAPTURE)
    finally:
        os.close(fd)


def cameras(dev: str = "/dev", sysfs: str = "/sys/class/video4linux") -> list[Device]:
    """The V4L2 nodes under ``dev``, in number order, named from ``sysfs``."""
    def number(path: str) -> int:
        m = re.search(r"(\d+)$", path)
        return int(m.group(1)) if m else -1

    found = []
    for path in sorted(glob.glob(os.path.join(dev, "video*")), key=number):
        node = os.path.basename(path)
        try:
            with open(os.path.join(sysfs, node, "name"), encoding="utf-8", errors="replace") as f:
                name = f.read().strip()
        except OSError:
            name = node
        opens, error, capture = _probe_v4l2(path)
        detail = "" if capture is None else "capture" if capture else "no video capture (metadata node?)"
        found.append(Device("camera", path, name, detail, opens, error))
    return found


@contextlib.contextmanager
def _quiet_stderr(quiet: bool = True) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null meanwhile (ALSA's messages bypass sys.stderr)."""
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def audio_devices(*, quiet: bool = True) -> list[Device]:
    """PortAudio's inputs (microphones) and outputs (speakers); DeviceNotFound when PortAudio is missing."""
    with _quiet_stderr(quiet):
        from .media.sources import _sounddevice

        sd = _sounddevice()
        apis = [str(a["name"]) for a in sd.query_hostapis()]
        found = []
        for info in sd.query_devices():
            for kind, channels, stream in (("microphone", info["max_input_channels"], sd.RawInputStream),
                                           ("speaker", info["max_output_channels"], sd.RawOutputStream)):
                if channels <= 0:
                    continue
                rate = int(info["default_samplerate"])
                try:
                    stream(device=info["index"], channels=1, samplerate=rate, dtype="int16").close()
                    opens, error = True, None
                except Exception as exc:  # PortAudioError, ValueError: the device's own words
                    opens, error = False, _why(exc)
                detail = f"{apis[info['hostapi']]}, {channels} ch, {rate} Hz"
                found.append(Device(kind, str(info["index"]), str(info["name"]), detail, opens, error))
    return found


def probe_serial(path: str) -> tuple[bool, str | None]:
    """(opens, error) for a serial port, opened with pyserial and closed again."""
    import serial

    try:
        serial.Serial(path, 9600, timeout=0).close()
        return True, None
    except (serial.SerialException, OSError, ValueError) as exc:
        return False, _why(exc)


def serial_ports() -> list[Device]:
    """pyserial's ports (USB adapters, on-board UARTs)."""
    from serial.tools import list_ports

    found = []
    for port in sorted(list_ports.comports(), key=lambda p: str(p.device)):
        desc = "" if port.description in (None, "n/a") else str(port.description)
        hwid = "" if port.hwid in (None, "n/a") else str(port.hwid)
        opens, error = probe_serial(str(port.device))
        found.append(Device("serial", str(port.device), desc or str(port.name), hwid, opens, error))
    return found


def list_devices(*, quiet: bool = True) -> tuple[list[Device], dict[str, str]]:
    """Every device, and a problem per family that could not be listed (``{"audio": "..."}``)."""
    from .media.errors import DeviceNotFound

    devices, problems = cameras(), {}
    try:
        devices += audio_devices(quiet=quiet)
    except DeviceNotFound as exc:
        problems["audio"] = str(exc)
    try:
        devices += serial_ports()
    except (ImportError, OSError) as exc:
        problems["serial"] = _why(exc)
    return devices, problems


_FAMILIES = {"camera": "cameras", "microphone": "microphones", "speaker": "speakers", "serial": "serial_ports"}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vcore devices``; returns 0 (a listing never fails)."""
    ap = argparse.ArgumentParser(prog="vcore devices",
                                 description="list cameras, microphones, speakers and serial ports")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of one line per device")
    ap.add_argument("-v", "--verbose", action="store_true", help="show PortAudio's and ALSA's own messages")
    args = ap.parse_args(argv)
    devices, problems = list_devices(quiet=not args.verbose)
    if args.json:
        out: dict[str, Any] = {family: [asdict(d) for d in devices if d.kind == kind]
                               for kind, family in _FAMILIES.items()}
        out["problems"] = problems
        print(json.dumps(out, indent=2))
        return 0
    for kind in _FAMILIES:
        lines = [d.line() for d in devices if d.kind == kind]
        family = "audio" if kind in ("microphone", "speaker") else kind
        print("\n".join(lines) if lines else f"{kind:<10}  none found" +
              (f": {problems[family]}" if family in problems else ""))
    return 0
