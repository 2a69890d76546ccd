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
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

__all__ = ["main", "SUBCOMMANDS"]

# name -> ("module:function", one-line help); each function takes argv (list[str]) and returns an exit code
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("vcore.demo:main", "kiosk calls agent on 127.0.0.1 (TLS + SRTP, live stats), no hardware needed"),
    "answer": ("vcore.call_cli:answer_main", "an agent's station: answer calls (allow-list, recording)"),
    "call": ("vcore.call_cli:call_main", "call an address (h323:alias@host) or a directory card"),
    "info": ("vcore.cli:info_main", "what this machine offers: fast path, PyAV/FFmpeg, H.264 encoders"),
    "camera": ("vcore.visca.cli:main", "control a VISCA PTZ camera (serial, IP, or --emulate)"),
    "pki": ("vcore.pki:main", "an installation's private CA: init, issue, list, revoke certificates"),
    "bench": ("vcore.bench.cli:main", "can this machine hold an encrypted call? encoders, CPU share, verdict"),
    "linetest": ("vcore.linetest:main", "can this line carry a call? RTT, jitter, loss, bandwidth each way"),
}


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
        print(f"vcore: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    return _resolve(SUBCOMMANDS[name][0])(rest)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
