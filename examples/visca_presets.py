"""Installer sets three presets, the resident recalls them: on an emulated camera.

    PYTHONPATH=src python examples/visca_presets.py            # emulator on a pty, 9600 baud
    PYTHONPATH=src python examples/visca_presets.py --ip       # emulator over VISCA-over-IP

With hardware, replace the emulator by ``ViscaCamera.open_serial("/dev/ttyUSB0")`` or
``ViscaCamera.open_ip("192.0.2.5")``.
"""

from __future__ import annotations

import asyncio
import sys

from vcore.visca import CameraEmulator, ViscaCamera

PRESETS = {  # name: (preset number, pan, tilt, zoom)
    "face": (1, 0, 120, 0x2800),
    "document on the desk": (2, 0, -400, 0x1800),
    "whole room": (3, 0, 0, 0x0000),
}


async def main(over_ip: bool) -> None:
    emu = CameraEmulator(speed_factor=4.0)  # motion 4x faster than a real head
    try:
        if over_ip:
            port = await emu.start_udp("127.0.0.1", 0)
            cam = await ViscaCamera.open_ip("127.0.0.1", port)
        else:
            path = await emu.start_serial(9600)
            cam = await ViscaCamera.open_serial(path, baudrate=9600)
        async with cam:
            v = await cam.version()
            print(f"camera vendor 0x{v.vendor:04x} model 0x{v.model:04x}")
            await cam.power(True)
            for name, (number, pan, tilt, zoom) in PRESETS.items():  # the installer
                await asyncio.gather(cam.pan_tilt_to(pan, tilt), cam.zoom_to(zoom))
                await cam.preset_set(number)
                print(f"preset {number} = {name}")
            for name, (number, *_rest) in PRESETS.items():  # the resident (or the agent)
                await cam.preset_recall(number)
                pan, tilt = await cam.pan_tilt_position()
                print(f"recalled {name!r}: pan {pan} tilt {tilt} zoom 0x{await cam.zoom_position():04x}")
            await cam.home()
    finally:
        await emu.stop()


if __name__ == "__main__":
    asyncio.run(main("--ip" in sys.argv[1:]))
