"""``vcore answer`` (an agent's station, on all day) and ``vcore call`` (a kiosk calling an address or a card).

    vcore answer --identity agent.pem --trust ca.pem --allow "Murat kiosk" [--port 1300] [--record-dir DIR]
    vcore call --identity kiosk.pem --trust ca.pem h323:caf-agent@192.0.2.10 [--seconds 60]
    vcore call --identity kiosk.pem --trust ca.pem --cards cards.toml 12

Both use the built-in test pattern and tone unless ``--camera``/``--microphone``
name devices; both print the call's events and, every few seconds, its
statistics. Ctrl-C hangs up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

__all__ = ["answer_main", "call_main"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="this terminal's display name (default: the certificate's name)")
    p.add_argument("--identity", metavar="PEM", help="this terminal's key and certificate (vcore pki issue)")
    p.add_argument("--trust", metavar="PEM", action="append", default=[], help="trust anchor (CA certificate)")
    p.add_argument("--crl", metavar="PEM",
                   help="certificate revocation list (default: the crl.pem next to the --trust file)")
    p.add_argument("--no-crl", action="store_true", help="do not check revocation (not recommended; logged)")
    p.add_argument("--no-tls", action="store_true", help="plaintext signalling (the SRTP keys travel unprotected)")
    p.add_argument("--camera", metavar="DEVICE", help="V4L2 camera (default: test pattern)")
    p.add_argument("--microphone", metavar="DEVICE", help="ALSA device (default: test tone)")
    p.add_argument("--size", default="640x480", help="test pattern size (default 640x480)")
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--bitrate", type=int, default=768_000, help="the most video bit/s (default 768000); congestion control keeps the video under what the "
                        "line takes")
    p.add_argument("--stats", type=float, default=5.0, help="print statistics every this many seconds (0: never)")
    p.add_argument("--media-timeout", type=float, default=10.0)
    p.add_argument("--rtp-ports", metavar="LOW-HIGH",
                   help="UDP ports for media, RTP even / RTCP odd, two pairs a call (default: any free port)")
    p.add_argument("--media-address", metavar="IP", help="bind media to this local address (default: all)")
    p.add_argument("--public-address", metavar="IP",
                   help="announce this address for media (a station behind a port-forwarding router)")
    p.add_argument("--gatekeeper", metavar="HOST[:PORT]", help="register with this H.323 gatekeeper (RAS, port 1719)")
    p.add_argument("--alias", action="append", default=[], metavar="NAME",
                   help="H.323 alias to register with the gatekeeper (default: the certificate's name)")
    p.add_argument("-v", "--verbose", action="store_true")


def _terminal_options(args: argparse.Namespace) -> dict[str, Any]:
    from .media import Camera, Microphone, TestPattern, Tone

    w, h = (int(v) for v in args.size.lower().split("x"))
    video = (lambda: Camera(args.camera, w, h, args.fps)) if args.camera else (lambda: TestPattern(w, h, args.fps))
    audio = (lambda: Microphone(args.microphone)) if args.microphone else (lambda: Tone(sample_rate=16000))
    opts: dict[str, Any] = {"video": video, "audio": audio, "bitrate": args.bitrate,
                            "media_timeout": args.media_timeout, "rtp_ports": args.rtp_ports,
                            "media_host": args.media_address, "public_address": args.public_address,
                            "gatekeeper": args.gatekeeper, "aliases": args.alias or None}
    if args.no_tls:
        opts["allow_plaintext"] = True
    else:
        if not args.identity or not args.trust:
            raise SystemExit("error: give --identity and --trust (or --no-tls for a plaintext test call)")
        if args.crl and args.no_crl:
            raise SystemExit("error: give --crl or --no-crl, not both")
        opts.update(identity=args.identity, trust=args.trust, crl=None if args.no_crl else args.crl or "auto")
    return opts


def _name(args: argparse.Namespace) -> str:
    if args.name:
        return str(args.name)
    if args.identity:
        from .pki import Identity

        return Identity.load(args.identity).name
    return "vcore"


async def _follow(call: Any, every: float) -> None:
    async def stats() -> None:
        while every > 0:
            await asyncio.sleep(every)
            for s in call.stats().streams:
                print(f"  {s.stream} {s.direction}: {s.codec} {s.bitrate / 1000:.0f} kbit/s"
                      + (f" {s.fps:.1f} fps" if s.fps is not None else "")
                      + (f" loss {s.loss:.1%}" if s.loss is not None else "")
                      + (f" RTT {s.rtt * 1000:.1f} ms" if s.rtt is not None else "")
                      + (f" target {s.target_bitrate / 1000:.0f}k {s.size}" if s.target_bitrate is not None else "")
                      + f" [{s.cipher_suite}]", flush=True)

    task = asyncio.ensure_future(stats())
    try:
        async for event in call.events():
            print(f"event: {event.kind} {getattr(event, 'reason', '') or getattr(event, 'stream', '')}".rstrip(),
                  flush=True)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    _summary(call)


def _summary(call: Any) -> None:
    """One line per stream once the call is over: what went each way (frames, packets, bytes)."""
    stats = call.stats()
    for s in stats.streams:
        adapted = f" target={s.target_bitrate} size={s.size}" if s.target_bitrate is not None else ""
        print(f"summary: {s.stream} {s.direction} {s.codec} frames={s.frames} packets={s.packets} "
              f"bytes={s.bytes} dropped={s.dropped}{adapted} [{s.cipher_suite}]", flush=True)


async def _answer(args: argparse.Namespace) -> int:
    from .call import Terminal

    terminal = Terminal(_name(args), host=args.host, port=args.port, auto_answer=True,
                        allow=args.allow or None, recordings=args.record_dir, max_calls=1,
                        **_terminal_options(args))
    async with terminal:
        where = terminal.address if args.host else f"port {terminal.port} (every address)"
        print(f"{terminal.name}: answering calls on {where}"
              + (f" from {', '.join(args.allow)}" if args.allow else ""), flush=True)
        async for incoming in terminal.incoming():
            print(f"call from {incoming.caller!r}", flush=True)
            if incoming.call is not None:
                await _follow(incoming.call, args.stats)
    return 0


async def _call(args: argparse.Namespace) -> int:
    from .call import CallFailed, Terminal

    terminal = Terminal(_name(args), listen=False, directory=args.cards, **_terminal_options(args))
    async with terminal:
        try:
            if args.target.isdigit() and args.cards:
                call = await terminal.call(card=int(args.target), record=args.record)
            else:
                call = await terminal.call(args.target, record=args.record, expect_name=args.expect)
        except CallFailed as exc:
            print(f"call failed ({exc.reason}): {exc}", file=sys.stderr)
            return 1
        follow = asyncio.ensure_future(_follow(call, args.stats))
        try:
            if args.seconds:
                await asyncio.wait_for(asyncio.shield(call.wait_ended()), args.seconds)
            else:
                await call.wait_ended()
        except asyncio.TimeoutError:
            await call.hangup()
        finally:
            await follow
        ended = call.ended
        return 0 if ended is not None and ended.reason == "hangup" else 1


def _run(coro: Any, verbose: bool) -> int:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    from .errors import VcoreError

    try:
        return int(asyncio.run(coro))
    except VcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def answer_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="vcore answer", description="an agent's station: answer calls automatically")
    _common(p)
    p.add_argument("--host", default="", help="listen address (default: every address, IPv4 and IPv6)")
    p.add_argument("--port", type=int, default=None, help="listen port (default 1300 with TLS, 1720 without)")
    p.add_argument("--allow", action="append", default=[], metavar="NAME", help="admit only these certificate names")
    p.add_argument("--record-dir", metavar="DIR", help="record every call into this directory")
    args = p.parse_args(argv)
    if args.port is None:
        args.port = 1720 if args.no_tls else 1300
    return _run(_answer(args), args.verbose)


def call_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="vcore call", description="call an address or a directory card")
    _common(p)
    p.add_argument("target", help="h323:alias@host[:port], host[:port], or a card number with --cards")
    p.add_argument("--cards", metavar="TOML", help="directory of numbered cards (cards.toml)")
    p.add_argument("--expect", metavar="NAME", help="the certificate name the callee must present")
    p.add_argument("--seconds", type=float, default=0.0, help="hang up after this long (default: when the peer does)")
    p.add_argument("--record", metavar="FILE.mp4", help="record what the peer sends")
    args = p.parse_args(argv)
    return _run(_call(args), args.verbose)
