"""The kiosk: calls the agent (an address or a card of cards.toml), shows live statistics, steers its camera.

    python examples/kiosk.py h323:caf-agent@127.0.0.1:1300 --seconds 20
    python examples/kiosk.py --cards cards.toml 12

The camera is an emulated VISCA camera here; with hardware use
``await ViscaCamera.open_serial("/dev/ttyUSB0")``.
"""

from __future__ import annotations

import argparse
import asyncio

import vcore
from vcore.media import TestPattern, Tone
from vcore.visca import CameraEmulator, ViscaCamera


async def main(args: argparse.Namespace) -> None:
    emu = CameraEmulator(speed_factor=20.0)
    cam = await ViscaCamera.open_ip("127.0.0.1", await emu.start_udp("127.0.0.1", 0))
    await cam.preset_set(1)  # the installer's "face" preset
    security = ({"allow_plaintext": True} if args.no_tls else
                {"identity": args.identity, "trust": [args.trust]})
    try:
        async with vcore.Terminal("Murat kiosk", video=TestPattern(1280, 720, 30), audio=Tone(sample_rate=16000),
                                  camera=cam, listen=False, directory=args.cards, bitrate=1_000_000,
                                  **security) as kiosk:
            if args.target.isdigit() and args.cards:
                call = await kiosk.call(card=int(args.target))
            else:
                call = await kiosk.call(args.target)
            await call.connected
            await call.camera_preset(1)
            for _ in range(int(args.seconds)):
                await asyncio.sleep(1)
                if call.ended:
                    break
                for s in call.stats().streams:
                    print(f"{s.stream:5} {s.direction:7} {s.codec:4} {s.bitrate / 1000:6.0f} kbit/s "
                          f"loss {s.loss or 0:.1%} [{s.cipher_suite}]")
            await call.hangup()
            print("ended:", call.ended)
    finally:
        await cam.close()
        await emu.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("target", help="host:port, h323:alias@host[:port], or a card number with --cards")
    p.add_argument("--cards", default=None)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--identity", default="kiosk.pem")
    p.add_argument("--trust", default="pki/ca.cert.pem")
    p.add_argument("--no-tls", action="store_true")
    asyncio.run(main(p.parse_args()))
