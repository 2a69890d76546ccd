"""``vcore demo``: two terminals (kiosk and agent) on 127.0.0.1 in a live call; no hardware needed.

A private CA is made in a temporary directory, the kiosk (test pattern + tone,
an emulated VISCA camera whose presets the agent recalls over the call) calls the agent over
mutual TLS with SRTP, live statistics are printed every second, the agent
records what it receives to an MP4 file, and at the end a summary is printed and
(when matplotlib is installed) a PNG chart of bitrate, loss and delay is drawn.
The CA, and the recording unless ``--output`` names where to keep it, live in a
temporary directory that is removed when the demo ends; without ``--output`` no
chart is drawn unless ``--chart`` names one.

    vcore demo                               # 25 s, 1280x720 at 30 fps, 1.5 Mbit/s
    vcore demo --seconds 10 --output call.mp4 --chart call.png
    vcore demo --no-tls                      # plaintext signalling (SRTP keys exposed), for comparison

Every value is checked before anything starts (one ``error: ...`` line, status 2):
sizes even and 16 to 4096, 1 to 60 fps, 50 kbit/s to 50 Mbit/s, an encoder that
opens here, ``--output``/``--chart`` in an existing writable directory.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from . import cli

__all__ = ["main", "parse_size", "format_ms"]

PRESETS = {1: ("face", 0, 120, 0x2800), 2: ("document on the desk", 0, -400, 0x1800), 3: ("whole room", 0, 0, 0)}


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (even, 16 to 4096) for argparse ``type=``; shared with the examples (see :func:`vcore.cli.size`)."""
    return cli.size(text)


def _encoder(name: str) -> str:
    """``auto`` or an H.264 encoder that opens on this machine (argparse ``type=``)."""
    import av

    from .media import available_h264_encoders

    if name == "auto" or (name == "libx264" and name in av.codecs_available):
        return name
    usable = available_h264_encoders()
    if name not in usable:
        raise argparse.ArgumentTypeError(f"H.264 encoder {name!r} is not usable here (usable: "
                                         f"{', '.join(usable) or 'none'}; or auto)")
    return name


def format_ms(v: float | None) -> str:
    """Seconds as a 6-wide millisecond field, or a dash when unknown."""
    return "  -  " if v is None else f"{v * 1000:5.1f}"


def _pct(v: float | None) -> str:
    return "  - " if v is None else f"{v * 100:4.1f}"


async def _camera() -> tuple[Any, Any]:
    from .visca import CameraEmulator, ViscaCamera

    emu = CameraEmulator(speed_factor=20.0)
    port = await emu.start_udp("127.0.0.1", 0)
    cam = await ViscaCamera.open_ip("127.0.0.1", port)
    await cam.power(True)
    for number, (_, pan, tilt, zoom) in PRESETS.items():  # the installer's presets
        await asyncio.gather(cam.pan_tilt_to(pan, tilt), cam.zoom_to(zoom))
        await cam.preset_set(number)
    return emu, cam


async def run(args: argparse.Namespace) -> int:
    """The demo; its temporary files (CA, certificates, and the recording and chart unless
    ``--output``/``--chart`` name where to keep them) live in one temporary directory, removed
    when it ends, however it ends."""
    with tempfile.TemporaryDirectory(prefix="vcore-demo-") as tmp:
        return await _run(args, Path(tmp))


async def _run(args: argparse.Namespace, base: Path) -> int:
    from . import pki
    from .call import Call, Terminal
    from .media import TestPattern, Tone

    output = Path(args.output) if args.output else base / "agent-received.mp4"
    w, h = args.size
    security: dict[str, Any] = {}
    if not args.no_tls:
        ca = pki.CertificateAuthority.init(base / "ca", "Demo office CA")
        ca.issue("Murat kiosk", role="kiosk").save(base / "Murat kiosk.pem")
        ca.issue("CAF agent", role="agent").save(base / "CAF agent.pem")  # alias caf-agent, which the kiosk dials
    emu, cam = await _camera()
    common: dict[str, Any] = {"bitrate": args.bitrate, "encoder": args.encoder,
                              "latency_probe": True}  # two vcore terminals on one clock: measure latency

    def tls(name: str) -> dict[str, Any]:
        if args.no_tls:
            return {"allow_plaintext": True}
        return {"identity": base / f"{name}.pem", "trust": [base / "ca" / "ca.cert.pem"]}

    agent = Terminal("CAF agent", video=lambda: TestPattern(320, 240, 15, pattern="smptebars"),
                     audio=lambda: Tone(660, 16000), allow=None if args.no_tls else ["Murat kiosk"],
                     **tls("CAF agent"), **common)
    kiosk = Terminal("Murat kiosk", video=TestPattern(w, h, args.fps), audio=Tone(440, 16000), camera=cam,
                     remote_camera=True, listen=False, **tls("Murat kiosk"), **common)
    series: list[tuple[float, float, float, float | None]] = []  # t, kbit/s, loss %, delay ms
    answered: Call | None = None
    try:
        async with agent, kiosk:
            print(f"agent listening on {agent.address} ({'plaintext' if args.no_tls else 'TLS, mutual certificates'})",
                  flush=True)
            incoming_it = agent.incoming()

            async def answer() -> Call:
                incoming = await incoming_it.__anext__()
                print(f"agent: call from {incoming.caller!r}; answering, recording to {output}", flush=True)
                return await incoming.answer(record=output)

            answering = asyncio.ensure_future(answer())
            call = await kiosk.call(f"h323:caf-agent@{agent.address}")
            await asyncio.wait_for(call.connected, 10)
            answered = await answering
            security = call.security()
            for s in security.get("media", []):
                print(f"kiosk: {s['direction']} {s['codec']} ({s['srtp']})")
            start = time.monotonic()
            next_preset, preset_order = start + 2.0, [1, 2, 3]
            while time.monotonic() - start < args.seconds and call.ended is None:
                await asyncio.sleep(min(1.0, max(0.0, start + args.seconds - time.monotonic())))
                now = time.monotonic()
                if now >= next_preset and preset_order:
                    number = preset_order.pop(0)
                    # the agent steers the kiosk's camera over the call (H.245 user input, vcore's string)
                    await answered.remote_camera_preset(number)
                    await asyncio.sleep(0.2)
                    pan, tilt = await cam.pan_tilt_position()
                    print(f"camera: preset {number} ({PRESETS[number][0]}) recalled by the agent: "
                          f"pan {pan} tilt {tilt}", flush=True)
                    preset_order.append(number)
                    next_preset = now + max(args.seconds / 4, 2.0)
                rx = answered.stats().stream("video", "receive")
                tx = call.stats().stream("video", "send")
                if rx is None or tx is None:
                    continue
                delay = rx.playout_delay
                series.append((now - start, rx.bitrate / 1000, (rx.loss or 0) * 100,
                               None if delay is None else delay * 1000))
                print(f"{now - start:5.1f} s  video {rx.fps or 0:5.1f} fps {rx.bitrate / 1000:6.0f} kbit/s  "
                      f"loss {_pct(rx.loss)} %  jitter {format_ms(rx.jitter)} ms  RTT {format_ms(tx.rtt)} ms  "
                      f"playout {format_ms(delay)} ms  latency p50 {format_ms(rx.latency_p50)} ms  [{rx.cipher_suite}]",
                      flush=True)
            final_rx = answered.stats()
            setup = (call.first_frame_at - call.setup_started) if call.first_frame_at else None
            await call.hangup()
            await answered.wait_ended(10)
    finally:
        await cam.close()
        await emu.stop()
    video = final_rx.stream("video", "receive")
    audio = final_rx.stream("audio", "receive")
    print("\nsummary")
    print(f"  signalling {final_rx.signalling}, media {'SRTP' if final_rx.media_encrypted else 'see suites'}: "
          + ", ".join(f"{s.stream} {s.direction} {s.codec} {s.cipher_suite}" for s in final_rx.streams))
    for w_ in final_rx.warnings:
        print(f"  warning: {w_}")
    print(f"  call set-up (Setup sent -> first decoded frame at the kiosk): {format_ms(setup)} ms")
    if video is not None:
        print(f"  agent received video: {video.packets} packets, loss {_pct(video.loss)} %, "
              f"dropped {video.dropped}, NACKs {video.nacks}, capture-to-decoded latency "
              f"p50 {format_ms(video.latency_p50)} ms p95 {format_ms(video.latency_p95)} ms")
    if audio is not None:
        print(f"  agent received audio: {audio.packets} packets, loss {_pct(audio.loss)} %, "
              f"latency p50 {format_ms(audio.latency_p50)} ms")
    if final_rx.lip_sync is not None:
        side = "after" if final_rx.lip_sync >= 0 else "before"
        print(f"  lip sync at the agent: pictures {format_ms(abs(final_rx.lip_sync)).strip()} ms {side} "
              f"their sound (sound held back {format_ms(final_rx.lip_sync_delay).strip()} ms)")
    print(f"  ended: {call.ended.reason if call.ended else '?'}")
    if not output.exists():
        print("  recording: none (no picture reached the agent)")
    elif args.output:
        print(f"  recording: {output} ({output.stat().st_size} bytes)")
    else:
        print(f"  recording: {output.stat().st_size} bytes, not kept (--output FILE.mp4 keeps it)")
    if args.chart or args.output:
        _chart(series, Path(args.chart) if args.chart else output.with_suffix(".png"))
    else:
        print("  chart: not drawn (--chart FILE.png, or --output, to keep one)")
    return 0


def _chart(series: list[tuple[float, float, float, float | None]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  chart: matplotlib is not installed (pip install 'vcore[plot]'), no chart drawn")
        return
    if not series:
        print("  chart: no samples")
        return
    t = [s[0] for s in series]
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(8, 6))
    axes[0].plot(t, [s[1] for s in series])
    axes[0].set_ylabel("kbit/s")
    axes[1].plot(t, [s[2] for s in series])
    axes[1].set_ylabel("loss %")
    axes[2].plot(t, [s[3] if s[3] is not None else float("nan") for s in series])
    axes[2].set_ylabel("playout delay ms")
    axes[2].set_xlabel("s")
    fig.suptitle("vcore demo: video received by the agent")
    fig.savefig(path)
    plt.close(fig)
    print(f"  chart: {path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vcore demo", description="kiosk calls agent on 127.0.0.1: TLS + SRTP, live stats")
    p.add_argument("--seconds", type=cli.number(0, what="seconds", above=True), default=25.0,
                   help="call length (default 25)")
    p.add_argument("--output", metavar="FILE.mp4", type=cli.output_file(".mp4", ".mkv", ".mov", ".m4v"),
                   help="where the agent records the call (default: a temporary file, removed at the end)")
    p.add_argument("--chart", metavar="FILE.png", type=cli.output_file(".png", ".svg", ".pdf"),
                   help="chart path (default: next to --output; none without it)")
    p.add_argument("--no-tls", action="store_true", help="plaintext signalling (the call's stats say so)")
    p.add_argument("--size", type=parse_size, default=(1280, 720), help="kiosk video WIDTHxHEIGHT (default 1280x720)")
    p.add_argument("--fps", type=cli.number(1, 60, "fps"), default=30.0, help="kiosk frame rate, 1 to 60 (default 30)")
    p.add_argument("--bitrate", type=cli.integer(50_000, 50_000_000, "bitrate"), default=1_500_000,
                   help="video bit/s, 50000 to 50000000 (default 1500000)")
    p.add_argument("--encoder", type=_encoder, default="libx264",
                   help="H.264 encoder (default libx264; auto probes hardware)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    from .errors import VcoreError

    try:
        return asyncio.run(run(args))
    except VcoreError as exc:
        return cli.fail(exc, 1)
    except KeyboardInterrupt:
        return 130
