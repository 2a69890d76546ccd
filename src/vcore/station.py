"""A station's configuration file, its pre-flight check, and its recordings' retention (CLI support).

One TOML file per station (read with :mod:`tomllib`), given to ``vcore answer
--config agent.toml`` or ``vcore call --config kiosk.toml 12``; a flag given on
the command line overrides the file. Every value goes through the same checks
as the flag it stands for (:mod:`vcore.cli`), so a bad value in the file is one
``error: FILE: [section] key: …`` line before anything is placed or bound, and
a key that does not exist (a typo) is an error too. Relative paths are relative
to the file. The reference, with every key, is ``docs/station-config.md``::

    [station]
    name = "CAF agent"                       # display name (default: the certificate's)

    [tls]
    identity = "agent.pem"                   # vcore pki issue
    trust = ["ca.cert.pem"]
    crl = "crl.pem"                          # default: the crl.pem next to the trust anchor; false: no check
    allow = ["Murat kiosk"]                  # answer: admit only these certificate names

    [network]
    host = ""                                # answer: listen address ("" every address)
    port = 1300
    rtp_ports = "16384-16483"
    public_address = "203.0.113.10"          # behind a port-forwarding router
    gatekeeper = "192.0.2.1"
    aliases = ["caf-agent"]

    [sip]                                    # SIP beside H.323 (docs/sip.md)
    enabled = true
    transport = "tls"                        # or "tcp", "udp" (plaintext: [tls] plaintext = true)
    port = 5061
    registrar = "sip:pbx.example.org"
    username = "kiosk-murat"
    password_file = "sip-password.txt"       # never the password itself in this file

    [media]
    camera = "/dev/video0"                   # default: a test pattern
    microphone = "default"                   # `vcore devices` lists them
    speaker = "default"
    size = "1280x720"
    fps = 25
    bitrate = 768000

    [camera]                                 # the station's VISCA camera: the peer may steer it
    visca = "/dev/ttyUSB0"                   # or "udp:192.0.2.20:52381"
    preset = 1                               # recalled when a call starts

    [log]
    format = "plain"                         # or "json": one object a line
    stats_json = "/var/log/vcore/stats.jsonl"

    [recording]                              # answer
    directory = "/var/lib/vcore/recordings"
    keep_days = 90                           # older recordings are deleted (0: keep all)

    [screen]                                 # vcore kiosk / vcore agent (docs/screens.md)
    language = "fr"                          # or "en"
    window = "1280x720"                      # a window instead of the full screen (trying it out)
    auto_answer = true                       # agent: answer at once; false: ring until Enter

    [cards]                                  # call: a cards.toml, or the cards inline
    file = "cards.toml"
    # [cards.12] name = "CAF agent" address = "h323:caf-agent@192.0.2.10"

:func:`check_station` is ``vcore check``: one line per item a station needs,
``OK``/``WARN``/``FAIL`` and what to do. :func:`prune_recordings` is the
retention. Functions of their arguments (time is one); not thread-safe.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import socket
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cli import (char_device, gatekeeper_address, host_address, input_file, nonempty, output_dir,
                  output_file, port, port_range, record_dir, sip_register_interval, sip_server, size)
from .cli import bitrate as bitrate_check, camera_preset as camera_preset_check, fps as fps_check
from .cli import keep_days as keep_days_check, media_timeout as media_timeout_check
from .cli import stats_interval as stats_interval_check
from .errors import VcoreError
from .visca.cli import visca_target

__all__ = ["ConfigError", "KEYS", "load_station_config", "apply_config", "Check", "check_station", "summarize",
           "prune_recordings"]

log = logging.getLogger(__name__)


class ConfigError(VcoreError):
    """A station configuration file is unreadable, malformed, or holds a bad value or an unknown key."""


def _choice(*allowed: str) -> Any:
    def check(text: str) -> str:
        if text not in allowed:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(allowed)}")
        return text
    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"{value!r} is not true or false")
    return value


# keys whose value is a path: a relative one is relative to the file
_PATHS = {("tls", "identity"), ("tls", "trust"), ("tls", "crl"), ("media", "camera"), ("recording", "directory"),
          ("cards", "file"), ("log", "stats_json"), ("sip", "password_file")}

# (section, key) -> (argparse dest, check, is a list); a key absent here is an error (typos)
KEYS: dict[tuple[str, str], tuple[str, Any, bool]] = {
    ("station", "name"): ("name", nonempty, False),
    ("tls", "identity"): ("identity", input_file, False),
    ("tls", "trust"): ("trust", input_file, True),
    ("tls", "crl"): ("crl", input_file, False),  # or false: no revocation check
    ("tls", "allow"): ("allow", nonempty, True),
    ("tls", "plaintext"): ("no_tls", _bool, False),
    ("network", "host"): ("host", host_address, False),
    ("network", "port"): ("port", port(any_port=True), False),
    ("network", "media_address"): ("media_address", host_address, False),
    ("network", "public_address"): ("public_address", host_address, False),
    ("network", "rtp_ports"): ("rtp_ports", port_range, False),
    ("network", "gatekeeper"): ("gatekeeper", gatekeeper_address, False),
    ("network", "aliases"): ("alias", nonempty, True),
    ("sip", "enabled"): ("sip", _bool, False),  # vcore.sip.SipSettings; docs/sip.md
    ("sip", "h323"): ("h323", _bool, False),  # answer: keep the H.323 listener beside SIP (default true)
    ("sip", "transport"): ("sip_transport", _choice("tls", "tcp", "udp"), False),
    ("sip", "port"): ("sip_port", port(any_port=True), False),
    ("sip", "registrar"): ("sip_registrar", sip_server, False),
    ("sip", "username"): ("sip_username", nonempty, False),
    ("sip", "password_file"): ("sip_password_file", input_file, False),
    ("sip", "outbound_proxy"): ("sip_proxy", sip_server, False),
    ("sip", "trusted_proxies"): ("sip_trusted_proxy", sip_server, True),  # relays calls, asserts callers (RFC 3325)
    ("sip", "register_interval"): ("sip_register_interval", sip_register_interval, False),
    ("sip", "sdes_over_plaintext"): ("sip_sdes_over_plaintext", _bool, False),
    ("sip", "dtls"): ("sip_dtls", _choice("answer", "offer", "off"), False),  # DTLS-SRTP (RFC 5764)
    ("media", "camera"): ("camera", char_device, False),
    ("media", "microphone"): ("microphone", nonempty, False),
    ("media", "speaker"): ("speaker", nonempty, False),
    ("camera", "visca"): ("visca", visca_target, False),
    ("camera", "preset"): ("visca_preset", camera_preset_check, False),
    ("media", "size"): ("size", size, False),
    ("media", "fps"): ("fps", fps_check, False),
    ("media", "bitrate"): ("bitrate", bitrate_check, False),
    ("media", "media_timeout"): ("media_timeout", media_timeout_check, False),
    # vcore.media.audio_processing.PROCESSING_MODES (not imported: it loads PyAV)
    ("media", "audio_processing"): ("audio_processing", _choice("auto", "webrtc", "speex", "off"), False),
    ("recording", "directory"): ("record_dir", record_dir, False),
    ("recording", "keep_days"): ("keep_days", keep_days_check, False),
    ("cards", "file"): ("cards", input_file, False),
    ("log", "verbose"): ("verbose", _bool, False),
    ("log", "format"): ("log_format", _choice("plain", "json"), False),
    ("log", "stats_json"): ("stats_json", output_file(), False),
    ("log", "stats"): ("stats", stats_interval_check, False),
    # vcore kiosk / vcore agent (docs/screens.md); the languages are vcore.ui.strings.LANGUAGES
    ("screen", "language"): ("lang", _choice("fr", "en"), False),
    ("screen", "window"): ("window", size, False),  # a window instead of the full screen
    ("screen", "auto_answer"): ("auto_answer", _bool, False),  # agent: answer at once (default true)
}


def _value(check: Any, raw: Any, base: Path | None) -> Any:
    if check is _bool:
        return check(raw)
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise argparse.ArgumentTypeError(f"{raw!r} is not a single value")
    text = str(raw)
    if base is not None and text and not os.path.isabs(text):
        text = str(base / text)
    return check(text)


def load_station_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file's values by argparse destination (``{"port": 1300, "trust": [...], ...}``), all checked.

    ``crl = false`` gives ``no_crl=True``; inline ``[cards.N]`` tables give ``cards`` as a
    :class:`~vcore.directory.Directory`. Raises :class:`ConfigError` naming the file, section and key.
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    base = p.resolve().parent
    out: dict[str, Any] = {}
    sections = {s for s, _ in KEYS}
    for section, table in data.items():
        if section not in sections:
            raise ConfigError(f"{p}: unknown section [{section}] (known: {', '.join(sorted(sections))})")
        if not isinstance(table, dict):
            raise ConfigError(f"{p}: {section} must be a table ([{section}])")
        if section == "cards":
            table = dict(table)
            inline = {k: table.pop(k) for k in list(table) if k != "file"}
            if inline:
                if "file" in table:
                    raise ConfigError(f"{p}: [cards] has both a file and inline cards: choose one")
                from .directory import Directory

                out["cards"] = Directory.from_table(inline, f"{p} [cards]")
        for key, raw in table.items():
            where = f"{p}: [{section}] {key}"
            if (section, key) == ("tls", "crl") and raw is False:
                out["no_crl"] = True
                continue
            spec = KEYS.get((section, key))
            if spec is None:
                known = ", ".join(k for s, k in KEYS if s == section)
                raise ConfigError(f"{where}: unknown key (known in [{section}]: {known})")
            dest, check, many = spec
            where_from = base if (section, key) in _PATHS else None
            try:
                if many:
                    if not isinstance(raw, list):
                        raise argparse.ArgumentTypeError("must be a list, e.g. [\"a\", \"b\"]")
                    out[dest] = [_value(check, item, where_from) for item in raw]
                else:
                    out[dest] = _value(check, raw, where_from)
            except argparse.ArgumentTypeError as exc:
                raise ConfigError(f"{where}: {exc}") from None
    return out


def apply_config(parser: argparse.ArgumentParser, args: argparse.Namespace, path: str | None) -> argparse.Namespace:
    """Fill ``args`` from the station file at ``path``: a value given on the command line wins.

    Only the keys this command has (``vcore call`` ignores ``[recording]``, ``vcore answer`` ``[cards]``).
    """
    if not path:
        return args
    for dest, value in load_station_config(path).items():
        if hasattr(args, dest) and getattr(args, dest) == parser.get_default(dest):
            setattr(args, dest, value)
    return args


# ------------------------------------------------------------------ retention


def prune_recordings(directory: str | os.PathLike[str], keep_days: int, now: dt.datetime) -> list[Path]:
    """Delete the station's recordings (``call-*.mp4``/``.mkv``) older than ``keep_days``; returns them.

    ``keep_days`` 0 keeps everything. Files that cannot be deleted are logged and kept.
    """
    if keep_days <= 0:
        return []
    limit = (now - dt.timedelta(days=keep_days)).timestamp()
    gone: list[Path] = []
    for path in sorted(Path(directory).glob("call-*")):
        if path.suffix not in (".mp4", ".mkv") or not path.is_file():
            continue
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                gone.append(path)
        except OSError as exc:
            log.warning("cannot delete the old recording %s: %s", path, exc.strerror or exc)
    if gone:
        log.info("deleted %d recording(s) older than %d days from %s", len(gone), keep_days, directory)
    return gone


# ------------------------------------------------------------------ vcore check


@dataclass(frozen=True)
class Check:
    """One line of ``vcore check``: ``state`` is ``OK``, ``WARN`` or ``FAIL``."""

    state: str
    item: str
    detail: str

    def line(self) -> str:
        return f"{self.state:4}  {self.item}: {self.detail}"


def check_station(args: argparse.Namespace, now: dt.datetime, *, listen: bool,
                  peer: str | None = None, timeout: float = 3.0) -> list[Check]:
    """Everything a station needs before its first call, as :class:`Check` lines (see ``vcore check``)."""
    from . import pki
    from .revocation import CRL_WARN_BEFORE, find_crl, read_crl

    out: list[Check] = []

    def add(state: str, item: str, detail: str) -> None:
        out.append(Check(state, item, detail))

    identity = None
    anchors: list[Any] = []
    if getattr(args, "no_tls", False):
        add("WARN", "tls", "plaintext (--no-tls / plaintext = true): signalling and keys are not protected")
    else:
        try:
            from cryptography import x509

            for t in args.trust or []:
                anchors += x509.load_pem_x509_certificates(Path(t).read_bytes())
            if not anchors:
                raise ValueError("no trust anchor given (trust = [\"ca.cert.pem\"])")
            add("OK", "trust", ", ".join(str(t) for t in args.trust))
        except (OSError, ValueError) as exc:
            add("FAIL", "trust", str(exc))
        try:
            if not args.identity:
                raise pki.PkiError("no identity given (identity = \"station.pem\", from vcore pki issue)")
            identity = pki.Identity.load(args.identity)
            problem = pki.validity_problem(identity, now)
            chained = any(identity.certificate.issuer == a.subject for a in anchors)
            if problem is not None:
                add("FAIL" if problem[0] >= logging.ERROR else "WARN", "certificate", problem[1])
            elif not chained and anchors:
                add("FAIL", "certificate", f"{identity.name!r} was not issued by the trust anchor's CA")
            else:
                add("OK", "certificate", f"{identity.name!r} ({identity.role or 'no role'}, alias "
                    f"{', '.join(identity.aliases) or 'none'}), valid until "
                    f"{identity.certificate.not_valid_after_utc:%Y-%m-%d}")
        except pki.PkiError as exc:
            add("FAIL", "certificate", str(exc))
        if getattr(args, "no_crl", False):
            add("WARN", "crl", "revocation checking off (crl = false / --no-crl)")
        else:
            crl_path = Path(args.crl) if args.crl else find_crl(args.trust or [])
            if crl_path is None:
                add("FAIL", "crl", "no crl.pem next to the trust anchor: copy it from the CA directory")
            else:
                try:
                    state = read_crl(crl_path, anchors)
                    nxt = state.next_update
                    if nxt is not None and now >= nxt:
                        add("FAIL", "crl", f"{crl_path} expired on {nxt:%Y-%m-%d}: run `vcore pki crl` on the CA "
                            "machine and copy crl.pem here")
                    elif nxt is not None and now + CRL_WARN_BEFORE >= nxt:
                        add("WARN", "crl", f"{crl_path} expires on {nxt:%Y-%m-%d}: refresh it soon (vcore pki crl)")
                    else:
                        add("OK", "crl", f"{crl_path}: {len(state.revoked)} revoked, valid until "
                            + (f"{nxt:%Y-%m-%d}" if nxt else "no date"))
                except pki.PkiError as exc:
                    add("FAIL", "crl", str(exc))
    for what in ("camera", "microphone", "speaker"):
        device = getattr(args, what, None)
        if not device:
            add("OK", what, {"camera": "test pattern", "microphone": "test tone", "speaker": "none"}[what]
                + " (none configured)")
            continue
        try:
            from .media import Camera, Microphone, Speaker

            w, h = getattr(args, "size", (640, 480))
            source = Camera(device, w, h, getattr(args, "fps", 25.0)) if what == "camera" else \
                Microphone(device) if what == "microphone" else Speaker(device)
            source.close()
            add("OK", what, f"{device} opens")
        except (VcoreError, OSError, ValueError) as exc:
            add("FAIL", what, f"{device}: {exc}")
    if getattr(args, "visca", None):
        out.append(_visca_check(args.visca, timeout))
    if getattr(args, "cards", None) is not None:
        try:
            from .directory import Directory

            cards = args.cards if isinstance(args.cards, Directory) else Directory.load(args.cards)
            add("OK", "cards", f"{len(cards)} card(s): " + ", ".join(f"{c.number} {c.name}" for c in cards))
        except VcoreError as exc:
            add("FAIL", "cards", str(exc))
    record_dir = getattr(args, "record_dir", None)
    if record_dir:
        try:
            st = os.statvfs(record_dir)
            free = st.f_bavail * st.f_frsize / 2**30
            writable = os.access(record_dir, os.W_OK)
            add("FAIL" if not writable else "WARN" if free < 2 else "OK", "recordings",
                f"{record_dir}: {'writable' if writable else 'NOT writable'}, {free:.1f} GiB free")
        except OSError as exc:
            add("FAIL", "recordings", f"{record_dir}: {exc.strerror or exc}")
    if listen:
        out.append(_port_check(getattr(args, "host", "") or "", args.port))
    if peer:
        out.append(_peer_check(peer, timeout))
    return out


def _visca_check(target: tuple[str, str, int], timeout: float) -> Check:
    import asyncio

    from .visca.cli import open_camera

    async def ask() -> str:
        camera = await asyncio.wait_for(open_camera(target), timeout)
        try:
            pan, tilt = await asyncio.wait_for(camera.pan_tilt_position(), timeout)
            return f"answers (pan {pan}, tilt {tilt})"
        finally:
            await camera.close()

    try:
        return Check("OK", "visca", f"{target[1]} {asyncio.run(ask())}")
    except (VcoreError, OSError, asyncio.TimeoutError) as exc:
        return Check("FAIL", "visca", f"{target[1]}: {exc or 'no answer'} (cable, address, power?)")


def _port_check(host: str, port_number: int) -> Check:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port_number))
        return Check("OK", "listen", f"TCP port {port_number} is free")
    except OSError as exc:
        why = "in use by another program (a vcore answer already running?)" if exc.errno == 98 else \
            "needs root (below 1024)" if exc.errno == 13 else (exc.strerror or str(exc))
        return Check("FAIL", "listen", f"TCP port {port_number}: {why}")


def _peer_check(peer: str, timeout: float) -> Check:
    from .call.addresses import parse_address

    try:
        _, host, port_number = parse_address(peer, True)
    except VcoreError as exc:
        return Check("FAIL", "peer", str(exc))
    if host is None:
        return Check("FAIL", "peer", f"{peer!r} names no host")
    try:
        with socket.create_connection((host, port_number), timeout=timeout):
            return Check("OK", "peer", f"{host}:{port_number} accepts connections")
    except OSError as exc:
        return Check("FAIL", "peer", f"{host}:{port_number}: {exc.strerror or exc} (firewall? is the station on?)")


def summarize(checks: Iterable[Check]) -> int:
    """0 when nothing failed, 1 otherwise."""
    return 1 if any(c.state == "FAIL" for c in checks) else 0
