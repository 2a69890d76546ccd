"""What ``vcore answer`` / ``vcore call`` write: the station's log and its statistics (CLI support).

The library logs; this module is the command's side of it: :func:`setup_logging` installs ONE handler on
stderr, :class:`CallLog` follows a call and writes one line per event on the ``vcore.station`` logger,
:func:`stats_line` / :class:`StatsFile` are the statistics for a terminal and for a program.

Formats: ``plain`` (``2026-12-05 21:40:03 INFO vcore.station: message``; when stderr is the systemd journal,
``JOURNAL_STREAM`` names it, ``<6>INFO vcore.station: message``: journald stamps the time and takes the
priority from ``<N>``) or ``json`` (one object a line: ``time``, ``level``, ``logger``, ``message`` and the
event's fields: ``event``, ``call_id``, ``peer``, ``reason``, ``detail``, ``duration``, ``bytes``, ``recording``...).

Which records are written (:func:`keep`, by logger name and level): ``vcore.station`` from INFO (DEBUG with
``-v``); ``vcore.call.terminal`` and ``vcore.revocation`` (the station's own facts: allow-list, CRL reloaded)
from INFO; the rest of ``vcore`` from WARNING (INFO with ``-v``); everything else (``asyncio``'s
"socket.send() raised exception", ``pycrate``...) from ERROR (WARNING with ``-v``). The listener's
refusals and the terminal's busy callers are rewritten as ``vcore.station`` lines with their reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .call import Call, CallStats, IncomingCall, StreamStats

__all__ = ["STATION", "CallLog", "JsonFormatter", "PlainFormatter", "StatsFile", "certificate_problem",
           "journald_stream", "keep", "log_incoming", "log_listening", "reset_logging", "setup_logging",
           "stats_line", "stats_record", "summary_line"]

STATION = logging.getLogger("vcore.station")
Entry = tuple[int, str, dict[str, Any]]  # (level, message, structured fields)

# --------------------------------------------------------------------------- formats


def journald_stream(stream: TextIO | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` (default stderr) is the systemd journal: ``JOURNAL_STREAM`` is its ``device:inode``."""
    dev, _, ino = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "").partition(":")
    try:
        st = os.fstat((stream or sys.stderr).fileno())
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (ValueError, OSError, AttributeError):  # unset or malformed, or no file descriptor (pytest capture)
        return False


def _priority(level: int) -> int:
    """The syslog priority of a logging level (journald's ``<N>`` prefix)."""
    return 7 if level < logging.INFO else 6 if level < logging.WARNING else 4 if level < logging.ERROR \
        else 3 if level < logging.CRITICAL else 2


class PlainFormatter(logging.Formatter):
    """``2026-12-05 21:40:03 INFO vcore.station: message``; ``journald``: ``<6>INFO vcore.station: message``."""

    def __init__(self, journald: bool = False) -> None:
        super().__init__(("" if journald else "%(asctime)s ") + "%(levelname)s %(name)s: %(message)s",
                         "%Y-%m-%d %H:%M:%S")
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if self.journald:  # every line of a traceback is its own journal entry: each gets the priority
            text = "\n".join(f"<{_priority(record.levelno)}>{line}" for line in text.split("\n"))
        return text


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (ISO 8601, local, with offset), ``level``, ``logger``, ``message``,
    the record's ``fields`` (``extra={"fields": {...}}``) and ``exception`` (its traceback) if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": _iso(record.created), "level": record.levelname, "logger": record.name,
                                 "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update((k, v) for k, v in fields.items() if k not in entry)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _under(name: str, parent: str) -> bool:
    return name == parent or name.startswith(parent + ".")


def keep(name: str, level: int, verbose: bool = False) -> bool:
    """The log policy: is a record of logger ``name`` at ``level`` written (see the module's docstring)?"""
    if _under(name, "vcore.station"):
        return True  # the logger's own level decides: INFO, DEBUG with -v
    if _under(name, "vcore.call.terminal") or _under(name, "vcore.revocation"):
        return level >= logging.INFO
    if _under(name, "vcore"):
        return level >= (logging.INFO if verbose else logging.WARNING)
    return level >= (logging.WARNING if verbose else logging.ERROR)


class _Policy(logging.Filter):
    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        return keep(record.name, record.levelno, self.verbose)


# the library's own lines for two station events, rewritten as vcore.station lines (logger, format string)
_LIBRARY_EVENTS = {("vcore.h323.listener", "refused %s (%s): %s"): "refused",
                   ("vcore.call.terminal", "busy: refusing a call from %s"): "busy",
                   ("vcore.call.terminal", "call to %s failed (%s): %s%s"): "call-failed"}


class _Rewrite(logging.Filter):
    """On the listener's and the terminal's loggers: a refusal or a busy caller becomes a station line."""

    def filter(self, record: logging.LogRecord) -> bool:
        kind = _LIBRARY_EVENTS.get((record.name, record.msg)) if isinstance(record.msg, str) else None
        args = record.args if isinstance(record.args, tuple) else ()
        if kind == "refused" and len(args) == 3:
            level, message, fields = refused_entry(str(args[0]), _opt(args[1]), str(args[2]))
        elif kind == "busy" and len(args) == 1:
            level, message, fields = busy_entry(_opt(args[0]))
        elif kind == "call-failed" and len(args) == 4:
            level, message, fields = failed_entry(str(args[0]), str(args[1]), f"{args[2]}{args[3]}")
        else:
            return True
        STATION.log(level, message, extra={"fields": fields})
        return False


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


_state: dict[str, Any] = {}


def setup_logging(fmt: str = "plain", verbose: bool = False, stream: TextIO | None = None) -> logging.Handler:
    """Log ``plain`` or ``json`` lines to ``stream`` (default stderr) under the policy of :func:`keep`.

    Replaces the handler of an earlier call; :func:`reset_logging` removes it and restores the levels.
    """
    if fmt not in ("plain", "json"):
        raise ValueError(f"log format {fmt!r}: plain or json")
    reset_logging()
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter(journald_stream(out)))
    handler.addFilter(_Policy(verbose))
    levels = {"": logging.WARNING, "vcore": logging.INFO, "vcore.station": logging.DEBUG if verbose else logging.INFO}
    _state["levels"] = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    rewrite = _Rewrite()
    for name, _ in _LIBRARY_EVENTS:
        logging.getLogger(name).addFilter(rewrite)
    logging.getLogger().addHandler(handler)
    _state.update(handler=handler, rewrite=rewrite)
    return handler


def reset_logging() -> None:
    """Undo :func:`setup_logging` (its handler, filters and levels); nothing when it was not set up."""
    handler, rewrite = _state.pop("handler", None), _state.pop("rewrite", None)
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.flush()
    for name, _ in _LIBRARY_EVENTS:
        if rewrite is not None:
            logging.getLogger(name).removeFilter(rewrite)
    for name, level in _state.pop("levels", {}).items():
        logging.getLogger(name).setLevel(level)


# --------------------------------------------------------------------------- words


def _q(name: str | None, unnamed: str = "an unnamed caller") -> str:
    """A name from a certificate or a Setup, quoted with its control characters escaped (one log line)."""
    return json.dumps(name, ensure_ascii=False) if name is not None else unnamed


def duration_text(seconds: float) -> str:
    """``0:42``, ``12:03``, ``1:02:03``."""
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def size_text(n: int) -> str:
    """``812 B``, ``45.1 kB``, ``5.1 MB``, ``1.2 GB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


# (reason, words, what OpenSSL or vcore says, lower case); the first match wins
_PROBLEMS = (
    ("expired", "untrusted certificate: expired", ("certificate has expired", "certificate_expired")),
    ("not-yet-valid", "untrusted certificate: not yet valid", ("not yet valid",)),
    ("revoked", "untrusted certificate: revoked", ("certificate revoked", "certificate_revoked")),
    ("crl-expired", "this station's CRL is out of date (vcore pki crl)", ("crl has expired", "crl is not yet",
                                                                        "unable to get certificate crl")),
    ("unknown-ca", "untrusted certificate: unknown CA", ("unable to get local issuer", "unable to get issuer",
                                                         "self signed certificate", "self-signed certificate",
                                                         "unknown_ca", "unknown ca", "bad_certificate")),
    ("name-mismatch", "untrusted certificate: name mismatch", ("presented certificate", "claims alias",
                                                              "hostname mismatch", "ip address mismatch")),
    ("not-allowed", "not on the allow-list", ("not on the allow-list",)),
    ("wrong-role", "certificate for the wrong role", ("for role",)),
    ("no-alias", "certificate without an H.323 alias", ("no h.323 alias",)),
    ("timeout", "timed out", ("timed out", "within the timeout")),
    ("protocol-error", "not a valid H.323 Setup", ("no valid setup", "instead of setup", "user-user ie")),
    ("tls-failure", "TLS failure", ("tls",)),
)


def certificate_problem(detail: str) -> tuple[str, str] | None:
    """``(reason, words)`` of a refusal's or a failed call's detail (``("expired", "untrusted certificate:
    expired")``...), None when it names nothing known."""
    text = detail.lower()
    return next(((r, w) for r, w, needles in _PROBLEMS if any(n in text for n in needles)), None)


def refused_entry(address: str, name: str | None, detail: str) -> Entry:
    """The line for a caller the listener refused before any call existed (WARNING)."""
    reason, words = certificate_problem(detail) or ("refused", "refused")
    who = f"{_q(name)} at {address}" if name else address
    return (logging.WARNING, f"refused a call from {who}: {words} ({detail})",
            {"event": "refused", "peer": name, "address": address, "reason": reason, "detail": detail})


def failed_entry(address: str, reason: str, detail: str) -> Entry:
    """The line for a call this terminal could not place (no connection, TLS refused, wrong certificate)."""
    problem = certificate_problem(detail) if reason in ("tls-failure", "security-denied") else None
    return (logging.WARNING, f"call to {address} failed: {problem[1] if problem else reason} ({detail})",
            {"event": "call-failed", "address": address, "reason": problem[0] if problem else reason,
             "failure": reason, "detail": detail})


def busy_entry(name: str | None) -> Entry:
    """The line for a caller turned away because the station is in a call (INFO)."""
    return (logging.INFO, f"busy: turned away {_q(name)} (already in a call)",
            {"event": "busy", "peer": name, "reason": "busy"})


def incoming_entry(name: str | None, aliases: tuple[str, ...], display: str | None, address: str | None,
                   call_id: str | None = None) -> Entry:
    """``call from "Murat kiosk" (alias murat-kiosk, 192.0.2.7)``."""
    about = [f"alias {', '.join(aliases)}" if aliases else "", f"display {_q(display)}" if display and
             display != name else "", address or ""]
    return (logging.INFO, f"call from {_q(name)} ({'; '.join(a for a in about if a) or 'no alias'})",
            {"event": "incoming", "call_id": call_id, "peer": name, "aliases": list(aliases), "display": display,
             "address": address})


def protection(stream: StreamStats, signalling: str) -> str:
    """The stream's SRTP suite, or ``plaintext`` when it or the signalling carrying its keys is unprotected."""
    return "plaintext" if signalling != "tls" else stream.cipher_suite or "plaintext"


def answered_entry(who: str, security: Mapping[str, Any], fields: dict[str, Any]) -> Entry:
    """Connected: INFO with what protects the call, or a WARNING that it is not protected."""
    suites = sorted({str(m.get("srtp")) for m in security.get("media", []) if isinstance(m, Mapping)})
    fields = {**fields, "event": "answered", "signalling": security.get("signalling"), "srtp": suites}
    if security.get("signalling") != "tls":
        message = f"{who}: answered, NOT PROTECTED: plaintext signalling (--no-tls), the SRTP keys travel in clear"
        return logging.WARNING, message, {**fields, "protected": False}
    encrypted = bool(suites) and "plaintext" not in suites
    return (logging.INFO if encrypted else logging.WARNING,
            f"{who}: answered (TLS, " + (f"SRTP {', '.join(suites)})" if encrypted else "media NOT encrypted)"),
            {**fields, "protected": encrypted})


@dataclasses.dataclass(frozen=True)
class Totals:
    """What a call amounted to when it ended."""

    answered: bool
    duration: float
    sent: int
    received: int
    recording: str | None


_NORMAL_END = ("hangup", "terminal-closed", "busy")


def ended_entry(who: str, reason: str, detail: str, by_peer: bool, totals: Totals,
                fields: dict[str, Any]) -> Entry:
    """``"Murat kiosk": call ended: hangup by peer after 2:03; sent 5.1 MB, received 4.9 MB; recording F``."""
    fields = {**fields, "event": "ended", "reason": reason, "detail": detail, "by_peer": by_peer,
              "answered": totals.answered, "duration": round(totals.duration, 3),
              "bytes": {"sent": totals.sent, "received": totals.received}, "recording": totals.recording}
    problem = certificate_problem(detail) if reason in ("tls-failure", "security-denied") else None
    cause = reason + (" by peer" if by_peer and reason == "hangup" else "") + (f": {problem[1]}" if problem else "") \
        + (f" ({detail})" if detail and reason != "hangup" else "")
    level = logging.INFO if reason in _NORMAL_END else logging.ERROR if reason in ("internal-error", "media-error") \
        else logging.WARNING
    if not totals.answered:
        return level, f"{who}: call not answered: {cause}", fields
    return (level, f"{who}: call ended: {cause} after {duration_text(totals.duration)}; sent "
                   f"{size_text(totals.sent)}, received {size_text(totals.received)}"
                   + (f"; recording {totals.recording}" if totals.recording else "; not recorded"), fields)


def event_entry(who: str, event: Any, fields: dict[str, Any]) -> Entry | None:
    """The line of an event other than ``connected`` and ``ended`` (None: an unknown kind)."""
    kind = str(getattr(event, "kind", ""))
    fields = {**fields, "event": kind}
    if kind == "ringing":
        return logging.INFO, f"{who}: ringing", fields
    if kind == "media-started":
        return logging.DEBUG, f"{who}: {event.stream} started", {**fields, "stream": event.stream}
    if kind == "degraded":
        level = logging.WARNING if event.degraded else logging.INFO
        return (level, f"{who}: {event.stream} {'degraded' if event.degraded else 'recovered'}"
                       + (f" ({event.detail})" if event.degraded else ""),
                {**fields, "stream": event.stream, "detail": event.detail, "degraded": event.degraded})
    if kind == "keyframe-requested":
        return logging.DEBUG, f"{who}: keyframe requested by {'peer' if event.by_peer else 'us'}", fields
    if kind == "bitrate-changed":
        return (logging.DEBUG, f"{who}: video bitrate {event.bitrate // 1000} kbit/s"
                               + (" (peer's flow control)" if event.by_peer else ""),
                {**fields, "bitrate": event.bitrate, "by_peer": event.by_peer})
    if kind == "camera-control":
        return (logging.INFO if event.applied else logging.WARNING,
                f"{who}: camera preset {event.preset} {'recalled' if event.applied else 'not recalled'}"
                + ("" if event.applied else f" ({event.detail})"), {**fields, "preset": event.preset,
                                                                     "applied": event.applied})
    return None


# --------------------------------------------------------------------------- statistics

_SUITES = {"AEAD_AES_128_GCM": "GCM", "AEAD_AES_256_GCM": "GCM256", "AES_CM_128_HMAC_SHA1_80": "CM80",
           "AES_CM_128_HMAC_SHA1_32": "CM32", "AES_256_CM_HMAC_SHA1_80": "CM256"}


def _rate(bps: float) -> str:
    """At most 5 characters: ``0``, ``812``, ``512k``, ``1.5M``, ``50.0M``, ``>999M``."""
    bps = max(0.0, bps) if math.isfinite(bps) else 0.0
    if bps < 999.5:
        return f"{bps:.0f}"
    if bps < 999_500:
        return f"{bps / 1e3:.0f}k"
    return f"{bps / 1e6:.1f}M" if bps < 99.95e6 else f"{bps / 1e6:.0f}M" if bps < 999.5e6 else ">999M"


def _ms(seconds: float) -> str:
    """At most 5 characters: ``42ms``, ``999ms``, ``1.2s``, ``>99s``."""
    s = max(0.0, seconds) if math.isfinite(seconds) else 0.0
    return f"{s * 1000:.0f}ms" if s < 0.9995 else f"{s:.1f}s" if s < 99.95 else ">99s"


def stats_line(s: StreamStats, signalling: str = "tls", width: int = 78) -> str:
    """One stream in at most ``width`` columns (with the 2-space indent: 80), e.g.
    ``video tx H264 512k 24.9fps loss 0.1% rtt 42ms tgt 600k 640x360 GCM``; what does not fit is left out."""
    head = [s.stream[:5], "tx" if s.direction == "send" else "rx", s.codec[:8], _rate(s.bitrate)]
    suite = protection(s, signalling)
    tail = "[plaintext]" if suite == "plaintext" else _SUITES.get(suite, suite[:11])
    optional = [  # in the order shown; the last ones go first when the line is too long
        f"{min(s.fps, 999.9):.1f}fps" if s.fps is not None and math.isfinite(s.fps) else "",
        f"loss {_loss(s.loss)}",  # "–": no report (sent) or nothing expected yet (received), not "0 %"
        f"rtt {_ms(s.rtt)}" if s.rtt is not None else "rtt –" if s.direction == "send" else "",
        f"jit {_ms(s.jitter)}" if s.jitter is not None else "",
        f"tgt {_rate(s.target_bitrate)}" if s.target_bitrate is not None else "",
        (s.size or "").split("@")[0][:11],
        f"buf {_ms(s.playout_delay)}" if s.playout_delay is not None else "",
        f"lat {_ms(s.latency_p50)}" if s.latency_p50 is not None else "",
    ]
    parts = [p for p in optional if p]
    while True:
        line = " ".join(head + parts + [tail])
        if len(line) <= width or not parts:
            return line[:width]
        parts.pop()


def summary_line(s: StreamStats, signalling: str = "tls") -> str:
    """``summary: video send H264 frames=... packets=... bytes=... dropped=... loss=0.1% rtt=42ms [AEAD_AES_128_GCM]``
    (``loss=–``/``rtt=–``: the peer never reported on our stream, or nothing was expected yet; ``rtt`` on sent
    streams only)."""
    adapted = f" target={s.target_bitrate} size={s.size}" if s.target_bitrate is not None else ""
    rtt = f" rtt={_ms(s.rtt) if s.rtt is not None else '–'}" if s.direction == "send" else ""
    return (f"summary: {s.stream} {s.direction} {s.codec} frames={s.frames} packets={s.packets} bytes={s.bytes} "
            f"dropped={s.dropped}{adapted} loss={_loss(s.loss)}{rtt} [{protection(s, signalling)}]")


def _loss(loss: float | None) -> str:
    """``0.1%``, ``100%``, or ``–`` when there is no measurement (never a default shown as 0 %)."""
    if loss is None or not math.isfinite(loss):
        return "–"
    return f"{min(max(loss, 0.0), 1.0):.1%}".replace("100.0%", "100%")


def _num(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


def stats_record(stats: CallStats, *, call_id: str | None = None, outgoing: bool | None = None,
                 now: float | None = None) -> dict[str, Any]:
    """One ``--stats-json`` line: ``time``, ``call_id``, ``peer``, ``outgoing``, ``duration`` (s),
    ``signalling``, ``media_encrypted``, ``lip_sync`` (s) and ``streams``: every :class:`StreamStats` field
    (bit/s, seconds, fractions; None when unknown) plus ``protection`` (the suite, or ``plaintext``)."""
    streams = []
    for s in stats.streams:
        fields = {k: _num(v) for k, v in dataclasses.asdict(s).items()}
        fields["bitrate"] = round(s.bitrate) if math.isfinite(s.bitrate) else None
        fields["protection"] = protection(s, stats.signalling)
        streams.append(fields)
    return {"time": _iso(time.time() if now is None else now), "call_id": call_id, "peer": stats.peer,
            "outgoing": outgoing, "duration": round(stats.duration, 3), "signalling": stats.signalling,
            "media_encrypted": stats.media_encrypted, "lip_sync": _num(stats.lip_sync), "streams": streams}


class StatsFile:
    """``--stats-json FILE``: JSON objects one a line, appended, line-buffered; :meth:`close` when done."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record (one line, written through to the file)."""
        self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> StatsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- following calls


def _session(obj: Any) -> Any:
    return getattr(obj, "_session", None)  # the call's signalling: its address and H.225.0 call identifier


def _call_id(obj: Any) -> str | None:
    cid = getattr(_session(obj), "call_id", None)
    return cid.hex() if isinstance(cid, bytes) else None


def _address(obj: Any) -> str | None:
    try:
        return str(_session(obj).peer_host) or None
    except (AttributeError, OSError):
        return None


def _emit(logger: logging.Logger, entry: Entry | None) -> None:
    if entry is not None:
        logger.log(entry[0], entry[1], extra={"fields": entry[2]})


def log_listening(name: str, where: str, allow: list[str] | None = None, plaintext: bool = False,
                  logger: logging.Logger = STATION) -> None:
    """``CAF agent: answering calls on port 1300 (every address) from Murat kiosk`` (WARNING without TLS)."""
    message = f"{name}: answering calls on {where}" + (f" from {', '.join(allow)}" if allow else "")
    if plaintext:
        message += ", WITHOUT TLS: calls are not protected (--no-tls)"
    logger.log(logging.WARNING if plaintext else logging.INFO, message,
               extra={"fields": {"event": "listening", "where": where, "allow": allow or None,
                                 "protected": not plaintext}})


def log_incoming(incoming: IncomingCall, logger: logging.Logger = STATION) -> None:
    """The line of a call offered to the station: who (certificate name, aliases, display) and from where."""
    _emit(logger, incoming_entry(incoming.caller, tuple(incoming.aliases), incoming.display, _address(incoming),
                                 _call_id(incoming)))


class CallLog:
    """Follows one call: a ``vcore.station`` line per event (:meth:`run`), and once it is answered its
    statistics: lines on ``out`` every ``every`` s (0: none) and a record a second into ``stats_file``."""

    def __init__(self, call: Call, *, every: float = 0.0, stats_file: StatsFile | None = None,
                 out: TextIO | None = None, logger: logging.Logger = STATION) -> None:
        self.call = call
        self.every = every
        self.stats_file = stats_file
        self.out = out
        self.logger = logger
        self.call_id = _call_id(call)

    @property
    def who(self) -> str:
        return _q(self.call.peer, "the peer")

    def _fields(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "peer": self.call.peer, "outgoing": self.call.outgoing}

    async def run(self) -> None:
        """Until the call has ended (its :class:`Ended` event logged)."""
        if self.call.outgoing:
            _emit(self.logger, (logging.INFO, f"calling {self.who} at {_address(self.call) or '?'}",
                                {**self._fields(), "event": "calling", "address": _address(self.call)}))
        stats: asyncio.Future[None] | None = None
        try:
            async for event in self.call.events():
                if event.kind == "connected" and stats is None:
                    stats = asyncio.ensure_future(self._stats())
                self.log_event(event)
        finally:
            if stats is not None:
                stats.cancel()
                await asyncio.gather(stats, return_exceptions=True)

    def log_event(self, event: Any) -> None:
        """Write the line of one event of the call."""
        if event.kind == "connected":
            _emit(self.logger, answered_entry(self.who, event.security, self._fields()))
        elif event.kind == "ended":
            _emit(self.logger, ended_entry(self.who, event.reason, event.detail, event.by_peer, self.totals(),
                                           self._fields()))
        else:
            _emit(self.logger, event_entry(self.who, event, self._fields()))

    def totals(self) -> Totals:
        """Answered, how long (s), bytes sent and received, the recording (None: none was written)."""
        c = self.call
        streams = c.stats().streams
        path = c.recording
        return Totals(c.connected_at is not None, time.monotonic() - c.connected_at if c.connected_at else 0.0,
                      sum(s.bytes for s in streams if s.direction == "send"),
                      sum(s.bytes for s in streams if s.direction == "receive"),
                      path if path and os.path.exists(path) else None)

    async def _stats(self) -> None:
        periods = [p for p in (self.every, 1.0 if self.stats_file else 0.0) if p > 0]
        if not periods:
            return
        tick, loop = min(periods), asyncio.get_running_loop()
        shown = written = loop.time()
        while True:
            await asyncio.sleep(tick)
            now, snap = loop.time(), self.call.stats()
            if self.stats_file is not None and now - written >= 1.0 - tick / 2:
                written = now
                try:
                    self.stats_file.write(stats_record(snap, call_id=self.call_id, outgoing=self.call.outgoing))
                except (OSError, ValueError) as exc:  # disk full, file closed: say it once, go on with the call
                    self.logger.error("--stats-json %s: %s; no more statistics written", self.stats_file.path, exc)
                    self.stats_file = None
            if self.every > 0 and now - shown >= self.every - tick / 2:
                shown = now
                for s in snap.streams:
                    print("  " + stats_line(s, snap.signalling), file=self.out or sys.stdout, flush=True)
