"""The ``vcore`` command: one entry point, a subcommand per job.

    vcore demo                 kiosk calls agent on 127.0.0.1: TLS + SRTP, live stats, recording
    vcore answer ...           an agent's station answering calls
    vcore call ADDRESS|CARD    place a call
    vcore info                 what this machine offers (fast path, PyAV/FFmpeg, encoders)
    vcore camera ...           drive a VISCA camera (``vcore camera --help``)
    vcore pki ...              private CA and terminal certificates (``vcore pki --help``)
    vcore bench ...            benchmark this machine for calls (``vcore bench --help``)
    vcore linetest ...         measure a line between two places (``vcore linetest --help``)

Each subcommand lives in its own module and is imported only when used.

Input rules, for every subcommand: a bad value is refused before anything is
placed, bound or written, with ONE line ``error: ...`` on stderr and exit status 2
(argparse's own usage errors print the usage, then one ``PROG: error: ...`` line,
also status 2); a failure at run time is one ``error: ...`` line and status 1. No
Python traceback reaches the installer (``VCORE_TRACEBACK=1`` shows one for a bug).
The argparse ``type=`` checks the subcommands share live here (:func:`size`,
:func:`port`, :func:`number`, :func:`char_device`, :func:`output_file` ...).
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import stat
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main", "SUBCOMMANDS", "fail", "size", "port", "integer", "number", "nonempty", "char_device",
           "input_file", "output_file", "output_dir", "record_dir", "library_check", "host_address", "port_range",
           "gatekeeper_address", "sip_server", "sip_register_interval", "fps", "bitrate", "camera_preset", "media_timeout", "stats_interval", "keep_days"]

# name -> ("module:function", one-line help); each function takes argv (list[str]) and returns an exit code
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("vcore.demo:main", "kiosk calls agent on 127.0.0.1 (TLS + SRTP, live stats), no hardware needed"),
    "answer": ("vcore.call_cli:answer_main", "an agent's station: answer calls (allow-list, recording)"),
    "call": ("vcore.call_cli:call_main", "call an address (h323:alias@host) or a directory card"),
    "kiosk": ("vcore.ui.cli:kiosk_main", "the resident's kiosk screen, full screen: cards, calls, the agent"),
    "agent": ("vcore.ui.cli:agent_main", "the agent's console, full screen: status, call log, camera, recording"),
    "check": ("vcore.call_cli:check_main", "check a station before its first call (--config station.toml)"),
    "info": ("vcore.cli:info_main", "what this machine offers: fast path, PyAV/FFmpeg, H.264 encoders"),
    "camera": ("vcore.visca.cli:main", "control a VISCA PTZ camera (serial, IP, or --emulate)"),
    "devices": ("vcore.devices:main", "list cameras, microphones, speakers and serial ports, and whether each opens"),
    "pki": ("vcore.pki:main", "an installation's private CA: init, issue, list, revoke certificates"),
    "bench": ("vcore.bench.cli:main", "can this machine hold an encrypted call? encoders, CPU share, verdict"),
    "linetest": ("vcore.linetest:main", "can this line carry a call? RTT, jitter, loss, bandwidth each way"),
}


# ------------------------------------------------------------------ argument checks (argparse type= functions)


def fail(message: object, status: int = 2) -> int:
    """Print ``error: MESSAGE`` as one line on stderr; returns ``status`` (2: bad input, 1: failed at run time)."""
    print("error: " + " ".join(str(message).split()), file=sys.stderr, flush=True)
    return status


def _typed(check: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    check.__name__ = name  # argparse names the type in some messages
    return check


def integer(low: int, high: int, what: str = "value") -> Callable[[str], int]:
    """An integer in ``low..high`` (decimal, or 0x.. hex)."""
    def check(text: str) -> int:
        try:
            v = int(text, 16) if text.strip().lower().startswith(("0x", "-0x")) else int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} {text!r} is not an integer") from None
        if not low <= v <= high:
            raise argparse.ArgumentTypeError(f"{what} {v} is out of range ({low} to {high})")
        return v
    return _typed(check, what)


def number(low: float, high: float = math.inf, what: str = "value", *, above: bool = False) -> Callable[[str], float]:
    """A finite number in ``low..high`` (``above``: strictly greater than ``low``)."""
    def check(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} {text!r} is not a number") from None
        if not math.isfinite(v) or v < low or (above and v == low) or v > high:
            bound = f"more than {low:g}" if above else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"{what} {text} must be {bound}"
                                             + (f" and at most {high:g}" if math.isfinite(high) else ""))
        return v
    return _typed(check, what)


def port(any_port: bool = False) -> Callable[[str], int]:
    """A TCP/UDP port 1..65535 (``any_port``: 0 too, meaning any free port)."""
    return integer(0 if any_port else 1, 65535, "port")


def size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT``: each even (H.264 4:2:0) and 16..4096."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 640x480") from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096) or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"size {text!r}: width and height must be even numbers from 16 to 4096")
    return w, h


def nonempty(text: str) -> str:
    """Any text but an empty (or blank) one."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value")
    return text


def char_device(text: str) -> str:
    """The path of an existing character device (``/dev/video0``, ``/dev/ttyUSB0``)."""
    try:
        mode = os.stat(text).st_mode
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc.strerror} (is the device plugged in?)") from None
    if not stat.S_ISCHR(mode):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device (expected e.g. /dev/video0)")
    return text


def input_file(text: str) -> str:
    """An existing, readable file."""
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text!r}: no such file")
    if not os.access(text, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: not readable (permission denied)")
    return text


def output_dir(text: str) -> str:
    """An existing directory this process may write into."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory" if os.path.exists(text)
                                         else f"{text!r}: no such directory (create it first)")
    if not os.access(text, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: directory not writable (permission denied)")
    return text


def record_dir(text: str) -> str:
    """A directory for recordings: an existing writable one, or one that can be made (its parent is writable).

    It is made at the first recording (a station's state directory may be created by systemd at start).
    """
    path = os.path.abspath(text)
    if os.path.exists(path):
        return output_dir(text)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"{text!r}: neither it nor its parent directory exists (create it first)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text!r} does not exist and cannot be made (permission denied)")
    return text


def output_file(*suffixes: str) -> Callable[[str], str]:
    """A file that can be written (its directory exists and is writable); nothing is created here.

    ``suffixes`` (e.g. ``".mp4", ".mkv"``): the names allowed; none: any name.
    """
    def check(text: str) -> str:
        if suffixes and not text.lower().endswith(suffixes):
            raise argparse.ArgumentTypeError(f"{text!r}: the name must end in {' or '.join(suffixes)}")
        if os.path.isdir(text):
            raise argparse.ArgumentTypeError(f"{text!r} is a directory, not a file name")
        output_dir(os.path.dirname(text) or ".")
        if os.path.exists(text) and not os.access(text, os.W_OK):
            raise argparse.ArgumentTypeError(f"{text!r}: not writable (permission denied)")
        return text
    return _typed(check, "file")


def library_check(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A vcore parsing function (raising :class:`~vcore.errors.VcoreError`) as an argparse type."""
    def check(text: str) -> Any:
        from .errors import VcoreError

        try:
            parse(text)
        except VcoreError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return _typed(check, getattr(parse, "__name__", "value"))


def _check_host(text: str) -> Any:
    from .transport import check_host

    return check_host(text) if text else text  # "": every address (a listen address)


def _parse_ports(text: str) -> Any:
    from .transport import parse_port_range

    return parse_port_range(text)


def _parse_sip_server(text: str) -> Any:
    from .sip import SipUri

    uri = SipUri.parse(text)
    if uri.user:
        from .sip import SipParseError

        raise SipParseError(f"{text!r} names a user: give the server as sip:HOST[:PORT] or sips:...")
    return uri


def _parse_gatekeeper(text: str) -> Any:
    from .h323.gatekeeper import parse_gatekeeper

    return parse_gatekeeper(text)


# the checks a flag and its key in a station's file share (vcore.station)
fps = number(1, 60, "fps")
"""Frames per second, 1 to 60."""
bitrate = integer(50_000, 50_000_000, "bitrate")
"""Video bit/s, 50 kbit/s to 50 Mbit/s (what ``Terminal`` accepts)."""
camera_preset = integer(0, 127, "preset")
"""A VISCA memory preset."""
media_timeout = number(0, what="media timeout", above=True)
"""Seconds without media before a call ends."""
stats_interval = number(0, what="stats interval")
"""Seconds between two statistics lines (0: never)."""
keep_days = integer(0, 36500, "keep-days")
"""Days recordings are kept (0: all)."""

host_address = library_check(_check_host)
"""An IPv4/IPv6 address ("" for every address), as text."""
port_range = library_check(_parse_ports)
"""``LOW-HIGH`` UDP ports for media, as text."""
gatekeeper_address = library_check(_parse_gatekeeper)
"""``HOST[:PORT]`` of an H.323 gatekeeper, as text."""
sip_server = library_check(_parse_sip_server)
"""``sip:HOST[:PORT]`` / ``sips:...`` of a SIP registrar or proxy, as text."""
sip_register_interval = integer(60, 86400, "register interval")
"""Seconds a SIP registration asks for (refreshed before it ends)."""


# ------------------------------------------------------------------ dispatch


def _usage() -> str:
    width = max(len(n) for n in SUBCOMMANDS)
    lines = ["usage: vcore COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "vcore COMMAND --help shows a command's options."]
    return "\n".join(lines)


def _resolve(target: str) -> Callable[[list[str]], int]:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]


def info_main(argv: list[str]) -> int:
    """Print the facts an installer wants first."""
    argparse.ArgumentParser(prog="vcore info", description="what this machine offers").parse_args(argv)
    import platform

    import av

    import vcore

    print(f"vcore {vcore.__version__} on Python {platform.python_version()} ({platform.machine()})")
    print(f"fast path: {'compiled (Cython)' if vcore.fastpath_enabled() else 'pure-Python twins'}")
    print(f"PyAV {av.__version__}; FFmpeg libraries: "
          + ", ".join(f"{k} {'.'.join(map(str, v))}" for k, v in sorted(av.library_versions.items())))
    encoders = [name for name in ("libx264", "h264_v4l2m2m", "h264_vaapi", "h264_nvenc", "h264_qsv")
                if name in av.codecs_available]
    print("H.264 encoders built in: " + ", ".join(encoders))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from ._version import __version__

        print(__version__)
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        return fail(f"unknown command {name!r} (vcore --help lists the commands)")
    try:
        return _resolve(SUBCOMMANDS[name][0])(rest)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last net: one line, never a traceback (VCORE_TRACEBACK=1 for a bug report)
        from .errors import VcoreError

        if os.environ.get("VCORE_TRACEBACK"):
            raise
        if isinstance(exc, VcoreError):
            return fail(exc)
        return fail(exc if isinstance(exc, OSError) else f"internal error: {type(exc).__name__}: {exc} "
                    "(VCORE_TRACEBACK=1 shows where; please report it)", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
