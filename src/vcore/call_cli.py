"""``vcore answer`` (an agent's station, on all day) and ``vcore call`` (a kiosk calling an address or a card).

    vcore answer --identity agent.pem --trust ca.cert.pem --allow "Murat kiosk" [--port 1300] [--record-dir DIR]
    vcore call --identity kiosk.pem --trust ca.cert.pem h323:caf-agent@192.0.2.10 [--seconds 60]
    vcore call --identity kiosk.pem --trust ca.cert.pem --cards cards.toml 12

Both use the built-in test pattern and tone unless ``--camera``/``--microphone``
name devices; both print the call's events and, every few seconds, its
statistics.

Input: every value is checked before anything is placed or bound (see
:mod:`vcore.cli`): a bad one is one ``error: ...`` line and status 2; the camera
and the microphone are opened once (and closed) before dialling or listening, so
a device that cannot be used fails then, not mid-call. A busy listen port is one
line naming the port.

Signals: SIGINT (Ctrl-C) and SIGTERM (systemd's stop) hang up every call with a
ReleaseComplete (the peer's call ends ``hangup``), finish the recordings, print
the summary and exit 0 (``vcore call``: 0 when the call ended by a hang-up). A
second signal during that shutdown exits at once (130 / 143).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from .visca.cli import visca_target
from .cli import (char_device, fail, gatekeeper_address, host_address, input_file, nonempty, number,
                  output_file, port, port_range, record_dir, size)
from .cli import bitrate as bitrate_check, camera_preset as camera_preset_check, fps as fps_check
from .cli import keep_days as keep_days_check, media_timeout as media_timeout_check
from .cli import stats_interval as stats_interval_check
from .cli import sip_register_interval, sip_server

__all__ = ["answer_main", "call_main", "check_main"]

RECORD_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", type=nonempty, help="this terminal's display name (default: the certificate's name)")
    p.add_argument("--identity", metavar="PEM", type=input_file,
                   help="this terminal's key and certificate (vcore pki issue)")
    p.add_argument("--trust", metavar="PEM", action="append", default=[], type=input_file,
                   help="trust anchor (CA certificate)")
    p.add_argument("--crl", metavar="PEM", type=input_file,
                   help="certificate revocation list (default: the crl.pem next to the --trust file)")
    p.add_argument("--no-crl", action="store_true", help="do not check revocation (not recommended; logged)")
    p.add_argument("--no-tls", action="store_true", help="plaintext signalling (the SRTP keys travel unprotected)")
    p.add_argument("--camera", metavar="DEVICE", type=char_device, help="V4L2 camera (default: test pattern)")
    p.add_argument("--microphone", metavar="DEVICE", type=nonempty,
                   help="microphone: a name, part of one or an index from `vcore devices` (default: test tone)")
    p.add_argument("--speaker", metavar="DEVICE", type=nonempty,
                   help="play the peer's sound on this output (a name, part of one or an index; default: none)")
    p.add_argument("--audio-processing", choices=("auto", "webrtc", "speex", "off"), default="auto",
                   help="echo cancellation, noise suppression and gain control between --microphone and "
                        "--speaker: auto (WebRTC if installed, else SpeexDSP), webrtc, speex or off")
    p.add_argument("--visca", metavar="PORT|udp:HOST[:PORT]", type=visca_target,
                   help="the station's VISCA camera (serial port or VISCA over IP): the peer may steer it")
    p.add_argument("--visca-preset", metavar="N", type=camera_preset_check,
                   help="camera preset recalled when a call starts")
    p.add_argument("--size", type=size, default=(640, 480),
                   help="picture WIDTHxHEIGHT, even, 16 to 4096 (default 640x480)")
    p.add_argument("--fps", type=fps_check, default=25.0, help="frames per second, 1 to 60 (default 25)")
    p.add_argument("--bitrate", type=bitrate_check, default=768_000,
                   help="the most video bit/s, 50000 to 50000000 (default 768000); congestion control keeps the "
                        "video under what the line takes")
    p.add_argument("--stats", type=stats_interval_check, default=5.0,
                   help="print statistics every this many seconds (0: never)")
    p.add_argument("--media-timeout", type=media_timeout_check, default=10.0,
                   help="end a call after this many seconds without media (default 10)")
    p.add_argument("--rtp-ports", metavar="LOW-HIGH", type=port_range,
                   help="UDP ports for media, RTP even / RTCP odd, three pairs an H.323 call, two a SIP call (default: any free port)")
    p.add_argument("--media-address", metavar="IP", type=host_address,
                   help="bind media to this local address (default: all)")
    p.add_argument("--public-address", metavar="IP", type=host_address,
                   help="announce this address for media (a station behind a port-forwarding router)")
    p.add_argument("--gatekeeper", metavar="HOST[:PORT]", type=gatekeeper_address,
                   help="register with this H.323 gatekeeper (RAS, port 1719)")
    p.add_argument("--alias", action="append", default=[], metavar="NAME", type=nonempty,
                   help="H.323 alias to register with the gatekeeper (default: the certificate's name)")
    p.add_argument("--sip", action="store_true", help="run a SIP user agent too (answer: accept SIP calls; "
                   "`vcore call sip:...` implies it); see docs/sip.md")
    p.add_argument("--sip-transport", choices=("tls", "tcp", "udp"), default="tls",
                   help="SIP transport (default tls; tcp and udp are plaintext: they need --no-tls)")
    p.add_argument("--sip-port", type=port(any_port=True), default=None,
                   help="SIP listen port (default: answer 5061 with TLS, 5060 without; call: any free one)")
    p.add_argument("--sip-registrar", metavar="URI", type=sip_server, help="register with this SIP registrar")
    p.add_argument("--sip-username", metavar="NAME", type=nonempty, help="SIP digest user name (and user part)")
    p.add_argument("--sip-password-file", metavar="FILE", type=input_file,
                   help="file holding the SIP digest password (never on the command line)")
    p.add_argument("--sip-proxy", metavar="URI", type=sip_server, help="send every SIP call through this proxy")
    p.add_argument("--sip-trusted-proxy", metavar="URI", type=sip_server, action="append", default=None,
                   help="a SIP server trusted (over TLS) to relay calls and assert the caller (P-Asserted-Identity); "
                        "the registrar and --sip-proxy are trusted already (repeatable)")
    p.add_argument("--sip-register-interval", type=sip_register_interval, default=3600,
                   help="seconds a registration lasts before it is refreshed (default 3600)")
    p.add_argument("--sip-dtls", choices=("answer", "offer", "off"), default="answer",
                   help="DTLS-SRTP (RFC 5764): answer a peer that insists on it (default), offer it, or refuse it")
    p.add_argument("--sip-sdes-over-plaintext", action="store_true",
                   help="put SRTP keys in SDP over plaintext SIP too (they travel readable; logged)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--config", metavar="TOML", type=input_file,
                   help="the station's configuration file (docs/station-config.md); flags override it")
    p.add_argument("--log-format", choices=("plain", "json"), default="plain",
                   help="plain: one line an event (no timestamp under journald); json: one object a line")
    p.add_argument("--stats-json", metavar="FILE", type=output_file(),
                   help="append each call's statistics, one JSON object a second, to FILE")


def _probe(args: argparse.Namespace) -> None:
    """Open the camera, the microphone and the speaker once and close them: what cannot be used fails first."""
    from .errors import MediaError
    from .media import Camera, Microphone, Speaker

    w, h = args.size
    devices: list[tuple[str, str | None, Callable[[], Any]]] = [
        ("camera", args.camera, lambda: Camera(args.camera, w, h, args.fps)),
        ("microphone", args.microphone, lambda: Microphone(args.microphone)),
        ("speaker", args.speaker, lambda: Speaker(args.speaker))]
    for what, device, make in devices:
        if device:
            try:
                make().close()
            except (ValueError, OSError) as exc:  # e.g. an FFmpeg built without that input
                raise MediaError(f"cannot open {what} {device!r}: {exc}") from None


def _terminal_options(args: argparse.Namespace) -> dict[str, Any]:
    from .errors import CallError
    from .media import Camera, Microphone, Speaker, TestPattern, Tone

    w, h = args.size
    video = (lambda: Camera(args.camera, w, h, args.fps)) if args.camera else (lambda: TestPattern(w, h, args.fps))
    audio = (lambda: Microphone(args.microphone)) if args.microphone else (lambda: Tone(sample_rate=16000))
    opts: dict[str, Any] = {"video": video, "audio": audio, "bitrate": args.bitrate,
                            "media_timeout": args.media_timeout, "rtp_ports": args.rtp_ports,
                            "media_host": args.media_address, "public_address": args.public_address,
                            "gatekeeper": args.gatekeeper, "aliases": args.alias or None,
                            "audio_processing": args.audio_processing}
    if args.speaker:
        opts["audio_sink"] = lambda: Speaker(args.speaker)
    sip = _sip_settings(args)
    if sip is not None:
        opts["sip"] = sip
    elif not getattr(args, "h323", True):
        raise CallError("--no-h323 leaves nothing to answer on: add --sip")
    if args.no_tls:
        opts["allow_plaintext"] = True
    else:
        if not args.identity or not args.trust:
            raise CallError("give --identity and --trust (or --no-tls for a plaintext test call)")
        if args.crl and args.no_crl:
            raise CallError("give --crl or --no-crl, not both")
        opts.update(identity=args.identity, trust=args.trust, crl=None if args.no_crl else args.crl or "auto")
    return opts


def _sip_settings(args: argparse.Namespace) -> Any:
    """The ``SipSettings`` the flags (and the ``[sip]`` section) ask for, or None without ``--sip``."""
    from .errors import CallError

    if not (args.sip or str(getattr(args, "target", "")).lower().startswith(("sip:", "sips:"))):
        return None
    from .sip import SipSettings

    password = None
    if args.sip_password_file:
        try:
            with open(args.sip_password_file, encoding="utf-8") as f:
                password = f.readline().strip()
        except OSError as exc:
            raise CallError(f"cannot read {args.sip_password_file}: {exc.strerror or exc}") from None
        if not password:
            raise CallError(f"{args.sip_password_file} holds no password (its first line)")
    if (password is None) != (args.sip_username is None):
        raise CallError("give both --sip-username and --sip-password-file, or neither")
    transport = args.sip_transport
    target = str(getattr(args, "target", ""))
    if transport == "tls" and ";transport=" in target.lower() and not target.lower().startswith("sips:"):
        transport = target.lower().rsplit(";transport=", 1)[1].split(";")[0]  # the dialled URI's, checked later
    port = args.sip_port
    if port is None:
        port = 0 if hasattr(args, "target") else (5061 if args.sip_transport == "tls" else 5060)
    return SipSettings(transport=transport, port=port, registrar=args.sip_registrar,
                       username=args.sip_username, password=password, outbound_proxy=args.sip_proxy,
                       register_interval=args.sip_register_interval,
                       sdes_over_plaintext=args.sip_sdes_over_plaintext, dtls=args.sip_dtls,
                       trusted_proxies=tuple(str(u) for u in args.sip_trusted_proxy or ()))


async def _camera(args: argparse.Namespace) -> dict[str, Any]:
    """The station's VISCA camera for the Terminal (the peer may steer it); a camera that does not answer is
    logged and the station runs without it (``vcore check`` says so before)."""
    if not args.visca:
        return {}
    from .errors import VcoreError
    from .visca.cli import open_camera

    try:
        camera = await open_camera(args.visca)
    except VcoreError as exc:
        logging.getLogger("vcore.station").warning("camera %s: %s; calls go on without camera control",
                                                   args.visca[1], exc)
        return {}
    return {"camera": camera, "remote_camera": True}


async def _recall_preset(terminal: Any, args: argparse.Namespace) -> None:
    """The preset for a new call; a camera fault is logged, never the end of the call."""
    if terminal.camera is None or args.visca_preset is None:
        return
    from .errors import VcoreError

    try:
        await terminal.camera_preset(args.visca_preset)
    except VcoreError as exc:
        logging.getLogger("vcore.station").warning("camera preset %d: %s", args.visca_preset, exc)


def _name(args: argparse.Namespace) -> str:
    if args.name:
        return str(args.name)
    if args.identity:
        from .pki import Identity

        return Identity.load(args.identity).name
    return "vcore"


async def _follow(call: Any, args: argparse.Namespace) -> None:
    """A log line per event of ``call``, its statistics (every ``--stats`` s; --stats-json), then the summary."""
    from .station_log import CallLog

    await CallLog(call, every=args.stats, stats_file=getattr(args, "stats_file", None)).run()
    _summary(call)


def _summary(call: Any) -> None:
    """One line per stream once the call is over: what went each way (frames, packets, bytes)."""
    from .station_log import summary_line

    stats = call.stats()
    for s in stats.streams:
        print(summary_line(s, stats.signalling), flush=True)


class _Shutdown:
    """SIGINT/SIGTERM: the first sets :attr:`event` (a clean shutdown); a second exits at once (128 + its number)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: signal.Signals) -> None:
        if self.event.is_set():
            print(f"{signum.name} again: exiting without finishing", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(128 + signum)
        print(f"{signum.name}: hanging up", flush=True)
        self.event.set()


async def _start(terminal: Any, args: argparse.Namespace) -> int | None:
    """Start ``terminal`` (listen, register): None when it runs, else the exit status (the error printed)."""
    from .errors import CallError

    try:
        await terminal.start()
        return None
    except CallError as exc:
        await terminal.close()
        text = str(exc).lower()
        if "cannot listen" not in text:  # e.g. the gatekeeper does not answer
            return fail(exc, 1)
        why = ("address already in use: another program (another vcore answer?) holds it; stop it or give "
               "another --port" if "in use" in text else "permission denied: ports below 1024 need root; give "
               "--port 1024 or more" if "permission" in text else f"{exc}; give another --port or --host")
        return fail(f"cannot listen on port {args.port}: {why}", 1)


async def _with_camera(station: Callable[[argparse.Namespace, dict[str, Any]], Any],
                       args: argparse.Namespace) -> int:
    """Run ``station`` with the station's camera (``--visca``), closed at the end whatever happens."""
    camera = await _camera(args)
    try:
        return int(await station(args, camera))
    finally:
        if "camera" in camera:
            await camera["camera"].close()


async def _answer(args: argparse.Namespace) -> int:
    return await _with_camera(_answer_station, args)


async def _answer_station(args: argparse.Namespace, camera: dict[str, Any]) -> int:
    from .call import Terminal

    terminal = Terminal(_name(args), host=args.host, port=args.port, auto_answer=True, listen=args.h323,
                        allow=args.allow or None, recordings=args.record_dir, max_calls=1,
                        **_terminal_options(args), **camera)
    _probe(args)
    if (status := await _start(terminal, args)) is not None:
        return status
    shutdown = _Shutdown()

    async def close_on_signal() -> None:
        await shutdown.event.wait()
        await terminal.close()  # hangs up every call (ReleaseComplete), finishes recordings, ends incoming()

    closing = asyncio.ensure_future(close_on_signal())
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _reload, terminal, args)
    keeping = asyncio.ensure_future(_retention(args))
    try:
        where = (terminal.address if args.host else f"port {terminal.port} (every address)") if args.h323 \
            else "SIP only"
        if terminal.sip is not None:
            where += f"; SIP {terminal.sip_uri}"
        from .station_log import log_incoming, log_listening

        log_listening(terminal.name, where, args.allow, plaintext=args.no_tls)
        async for incoming in terminal.incoming():
            log_incoming(incoming)
            if incoming.call is not None:
                preset = asyncio.ensure_future(_recall_preset(terminal, args))
                await _follow(incoming.call, args)
                await preset
    finally:
        if not shutdown.event.is_set():
            closing.cancel()
        keeping.cancel()
        await asyncio.gather(closing, keeping, return_exceptions=True)
        await terminal.close()
    return 0


def _reload(terminal: Any, args: argparse.Namespace) -> None:
    """SIGHUP: the allow-list from the configuration file again, and the CRL now; calls in progress go on."""
    from .station import ConfigError, load_station_config

    log = logging.getLogger("vcore.station")
    allow = args.allow
    if args.config and not args.allow_from_flags:
        try:
            allow = load_station_config(args.config).get("allow", [])
        except ConfigError as exc:
            log.error("SIGHUP: configuration not reloaded, the previous one stays: %s", exc)
            return
    terminal.set_allow(allow or None)
    problem = terminal.check_credentials()
    log.info("SIGHUP: configuration reloaded (allow-list %s; CRL %s)",
             ", ".join(allow) if allow else "off", problem or "current")


async def _retention(args: argparse.Namespace) -> None:
    """Delete recordings older than ``--keep-days`` at start and every six hours."""
    import datetime as dt

    from .station import prune_recordings

    if not args.record_dir or not args.keep_days:
        return
    while True:
        prune_recordings(args.record_dir, args.keep_days, dt.datetime.now(dt.timezone.utc))
        await asyncio.sleep(6 * 3600)


async def _call(args: argparse.Namespace) -> int:
    return await _with_camera(_call_station, args)


async def _call_station(args: argparse.Namespace, camera: dict[str, Any]) -> int:
    from .call import CallFailed, Terminal

    # host "": a SIP user agent (``sip:`` targets) listens on every address, for the callee's in-dialog requests
    terminal = Terminal(_name(args), host="", listen=False, directory=args.cards, **_terminal_options(args),
                        **camera)
    _probe(args)
    if (status := await _start(terminal, args)) is not None:
        return status
    async with terminal:
        shutdown = asyncio.ensure_future(_Shutdown().event.wait())
        try:
            if args.target.isdigit() and args.cards:
                placing = asyncio.ensure_future(terminal.call(card=int(args.target), record=args.record))
            else:
                placing = asyncio.ensure_future(terminal.call(args.target, record=args.record,
                                                              expect_name=args.expect))
            await asyncio.wait({placing, shutdown}, return_when=asyncio.FIRST_COMPLETED)
            if not placing.done():
                placing.cancel()
                await asyncio.gather(placing, return_exceptions=True)
                print("stopped before the call was placed", flush=True)
                return 0
            try:
                call = placing.result()
            except CallFailed as exc:
                return fail(f"call failed ({exc.reason}): {exc}", 1)
            follow = asyncio.ensure_future(_follow(call, args))
            await _recall_preset(terminal, args)
            ended = asyncio.ensure_future(call.wait_ended())
            await asyncio.wait({ended, shutdown}, timeout=args.seconds or None, return_when=asyncio.FIRST_COMPLETED)
            if not ended.done():  # --seconds, or a signal: hang up ourselves (the peer sees "hangup")
                await call.hangup()
            await asyncio.gather(ended, follow)
        finally:
            shutdown.cancel()
        return 0 if call.ended is not None and call.ended.reason == "hangup" else 1


def _run(main: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> int:
    from .errors import VcoreError
    from .station_log import StatsFile, reset_logging, setup_logging

    setup_logging(args.log_format, args.verbose)  # docs/calls.md "Logs"
    args.stats_file = None
    try:
        if args.stats_json:
            try:
                args.stats_file = StatsFile(args.stats_json)
            except OSError as exc:
                return fail(f"cannot open --stats-json {args.stats_json}: {exc.strerror or exc}", 1)
        return int(asyncio.run(main(args)))
    except VcoreError as exc:  # refused before any call: the library's own checks (bitrate, identity, address...)
        return fail(exc)
    except KeyboardInterrupt:
        return 130
    finally:
        if args.stats_file is not None:
            args.stats_file.close()
        reset_logging()


def _answer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="", type=host_address,
                   help="listen address (default: every address, IPv4 and IPv6)")
    p.add_argument("--port", type=port(any_port=True), default=None,
                   help="listen port, 0 for any free one (default 1300 with TLS, 1720 without)")
    p.add_argument("--allow", action="append", default=[], metavar="NAME", type=nonempty,
                   help="admit only these certificate names")
    p.add_argument("--record-dir", metavar="DIR", type=record_dir,
                   help="record every call into this directory (made at the first recording if its parent exists)")
    p.add_argument("--keep-days", type=keep_days_check, default=0,
                   help="delete recordings older than this many days (default 0: keep all)")
    p.add_argument("--no-h323", dest="h323", action="store_false",
                   help="with --sip: answer SIP calls only (no H.323 listener)")


def _parse(p: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | int:
    """The arguments, filled from ``--config``; or the exit status of a bad configuration file (printed)."""
    from .station import ConfigError, apply_config

    args = p.parse_args(argv)
    args.allow_from_flags = bool(getattr(args, "allow", None))
    try:
        args = apply_config(p, args, args.config)
    except ConfigError as exc:
        return fail(exc)
    if getattr(args, "port", 0) is None:
        args.port = 1720 if args.no_tls else 1300
    return args


def answer_main(argv: list[str]) -> int:
    """``vcore answer``; exit status 0 (stopped by a signal), 1 (failed at run time), 2 (bad input)."""
    p = argparse.ArgumentParser(prog="vcore answer", description="an agent's station: answer calls automatically")
    _common(p)
    _answer_options(p)
    args = _parse(p, argv)
    return args if isinstance(args, int) else _run(_answer, args)


def _call_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cards", metavar="TOML", type=input_file, help="directory of numbered cards (cards.toml)")
    p.add_argument("--expect", metavar="NAME", type=nonempty, help="the certificate name the callee must present")
    p.add_argument("--seconds", type=number(0, what="seconds"), default=0.0,
                   help="hang up after this long (default: when the peer does)")
    p.add_argument("--record", metavar="FILE.mp4", type=output_file(*RECORD_SUFFIXES),
                   help="record what the peer sends (MP4 or MKV; the directory must exist)")


def call_main(argv: list[str]) -> int:
    """``vcore call``; exit status 0 (the call ended by a hang-up), 1 (it failed or ended otherwise), 2 (bad input)."""
    p = argparse.ArgumentParser(prog="vcore call", description="call an address or a directory card")
    _common(p)
    p.add_argument("target", type=nonempty, help="h323:alias@host[:port], host[:port], sips:user@host[:port] "
                   "(sip:...;transport=tcp|udp), or a card number with --cards")
    _call_options(p)
    args = _parse(p, argv)
    return args if isinstance(args, int) else _run(_call, args)


def check_main(argv: list[str]) -> int:
    """``vcore check``: one line per thing a station needs (OK, WARN, FAIL and what to do); 1 if anything FAILs."""
    import datetime as dt

    from .station import check_station, summarize

    p = argparse.ArgumentParser(prog="vcore check", description="check a station before its first call")
    _common(p)
    _answer_options(p)
    _call_options(p)
    p.add_argument("--listen", action="store_true",
                   help="this station answers calls: check its port too (implied by host/port/allow/recording "
                        "settings in the file)")
    p.add_argument("--peer", metavar="ADDRESS", help="also check that this address accepts connections")
    raw = p.parse_args(argv)
    listen = raw.listen or raw.port is not None or bool(raw.allow) or bool(raw.record_dir)
    if raw.config:
        from .station import ConfigError, load_station_config

        try:
            keys = load_station_config(raw.config)
        except ConfigError as exc:
            return fail(exc)
        listen = listen or any(k in keys for k in ("host", "port", "allow", "record_dir"))
    args = _parse(p, argv)
    if isinstance(args, int):
        return args
    checks = check_station(args, dt.datetime.now(dt.timezone.utc), listen=listen, peer=args.peer)
    for c in checks:
        print(c.line(), flush=True)
    status = summarize(checks)
    print("ready" if status == 0 else "not ready: fix the FAIL lines above", flush=True)
    return status
