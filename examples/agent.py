"""The agent's station: answers calls from kiosks on its allow-list, all day, and records them.

    python -m vcore.pki init pki --name "Office CA"
    python -m vcore.pki issue pki "CAF agent" --role agent --out agent.pem     # alias caf-agent
    python -m vcore.pki issue pki "Murat kiosk" --role kiosk --out kiosk.pem
    python examples/agent.py --port 1300 &
    python examples/kiosk.py h323:caf-agent@127.0.0.1:1300

Without certificates, ``--no-tls`` runs both in plaintext (and every call's statistics say so).
"""

from __future__ import annotations

import argparse
import asyncio

import vcore
from vcore.media import TestPattern, Tone


async def main(args: argparse.Namespace) -> None:
    security = ({"allow_plaintext": True} if args.no_tls else
                {"identity": args.identity, "trust": [args.trust], "allow": ["Murat kiosk"]})
    async with vcore.Terminal("CAF agent", video=lambda: TestPattern(640, 480, 25), audio=lambda: Tone(660, 16000),
                              host="127.0.0.1", port=args.port, auto_answer=args.auto, recordings=args.record_dir,
                              bitrate=768_000, **security) as agent:
        print(f"answering on {agent.address}")
        async for incoming in agent.incoming():
            call = incoming.call if incoming.answered else await incoming.answer()
            print(f"call from {incoming.caller}")
            async for event in call.events():
                print("  event:", event.kind, getattr(event, "reason", ""))
                if event.kind == "media-started" and getattr(event, "stream", "") == "video":
                    await call.limit_bitrate(512_000)  # the kiosk's ADSL uplink
            s = call.stats()
            print(f"  ended: {call.ended}; signalling {s.signalling}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=1300)
    p.add_argument("--identity", default="agent.pem")
    p.add_argument("--trust", default="pki/ca.cert.pem")
    p.add_argument("--record-dir", default=None)
    p.add_argument("--manual", dest="auto", action="store_false", help="answer each call from the script")
    p.add_argument("--no-tls", action="store_true")
    asyncio.run(main(p.parse_args()))
