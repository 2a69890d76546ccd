"""The station's log and statistics (issue 13): formats, journald, the policy, event lines of real calls, stats.

Before: bare ``logging`` lines without time, asyncio noise, refusals with empty reasons, no line for the
recording or a busy caller, ``--no-tls`` calls shown with a cipher suite, stats lines of 142 columns.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vcore import station_log as sl
from vcore.call import CallFailed, StreamStats

from .call_helpers import make_pki, run, sources, terminal, until, wait_for

PLAIN = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: .+$")


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """The station's log in JSON lines, into a buffer; undone afterwards."""
    buf = io.StringIO()
    sl.setup_logging("json", stream=buf)
    try:
        yield buf
    finally:
        sl.reset_logging()


def _lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def _events(buf: io.StringIO, event: str) -> list[dict[str, Any]]:
    return [e for e in _lines(buf) if e.get("event") == event]


# --------------------------------------------------------------------------- formats


def test_plain_format_and_journald_prefix() -> None:
    record = logging.LogRecord("vcore.station", logging.WARNING, __file__, 1, "refused %s", ("x",), None)
    line = sl.PlainFormatter().format(record)
    assert PLAIN.match(line) and line.endswith(" WARNING vcore.station: refused x"), line
    assert sl.PlainFormatter(journald=True).format(record) == "<4>WARNING vcore.station: refused x"
    info = logging.LogRecord("vcore.station", logging.INFO, __file__, 1, "a\nb", None, None)
    assert sl.PlainFormatter(journald=True).format(info) == "<6>INFO vcore.station: a\n<6>b"


def test_json_format_one_object_a_line(log: io.StringIO) -> None:
    sl.STATION.info("call from %s", "x", extra={"fields": {"event": "incoming", "peer": "x", "level": "no"}})
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("vcore.call.call").exception("call %s failed", "y")
    first, second = _lines(log)
    assert first["message"] == "call from x" and first["event"] == "incoming" and first["peer"] == "x"
    assert first["level"] == "INFO" and first["logger"] == "vcore.station"  # a field cannot hide a key
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$", first["time"])
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_plain_setup_writes_timestamped_lines() -> None:
    buf = io.StringIO()
    sl.setup_logging("plain", stream=buf)
    try:
        sl.STATION.info("hello")
        logging.getLogger("vcore.h323.signalling").info("library chatter")
    finally:
        sl.reset_logging()
    assert buf.getvalue().splitlines() == [buf.getvalue().strip()]  # the library's INFO is not written
    assert PLAIN.match(buf.getvalue().strip()) and buf.getvalue().strip().endswith("INFO vcore.station: hello")
    with pytest.raises(ValueError):
        sl.setup_logging("xml")


def test_journald_detection(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as f:
        st = os.fstat(f.fileno())
        assert sl.journald_stream(f, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not sl.journald_stream(f, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not sl.journald_stream(f, {"JOURNAL_STREAM": "garbage"})
        assert not sl.journald_stream(f, {})
    assert not sl.journald_stream(io.StringIO(), {"JOURNAL_STREAM": "1:2"})  # no descriptor


def test_noise_is_filtered_by_logger_name_and_level(log: io.StringIO) -> None:
    cases = [("asyncio", logging.WARNING, False, False), ("asyncio", logging.ERROR, False, True),
             ("asyncio", logging.WARNING, True, True), ("pycrate", logging.INFO, True, False),
             ("vcore.h323.signalling", logging.INFO, False, False), ("vcore.h323.signalling", logging.INFO, True, True),
             ("vcore.media", logging.WARNING, False, True), ("vcore.station", logging.INFO, False, True),
             ("vcore.call.terminal", logging.INFO, False, True), ("vcore.revocation", logging.INFO, False, True)]
    for name, level, verbose, kept in cases:
        assert sl.keep(name, level, verbose) is kept, (name, level, verbose)
    logging.getLogger("asyncio").warning("socket.send() raised exception.")
    logging.getLogger("pycrate").warning("pycrate chatter")
    logging.getLogger("vcore.call.call").info("call x: connected")
    sl.STATION.debug("only with -v")
    assert log.getvalue() == ""


# --------------------------------------------------------------------------- words and statistics


def _stream(**kw: Any) -> StreamStats:
    base: dict[str, Any] = {"stream": "video", "direction": "send", "codec": "H264", "cipher_suite": "AEAD_AES_128_GCM",
                            "packets": 1000, "bytes": 1_000_000, "bitrate": 512_300.0}
    base.update(kw)
    return StreamStats(**base)


def test_stats_lines_fit_80_columns() -> None:
    tx = _stream(fps=24.93, loss=0.001, rtt=0.042, target_bitrate=600_000, size="640x360@25")
    assert sl.stats_line(tx) == "video tx H264 512k 24.9fps loss 0.1% rtt 42ms tgt 600k 640x360 GCM"
    rx = _stream(direction="receive", fps=25.0, loss=0.0, jitter=0.0031, playout_delay=0.08, latency_p50=0.12)
    assert sl.stats_line(rx) == "video rx H264 512k 25.0fps loss 0.0% jit 3ms buf 80ms lat 120ms GCM"
    audio = _stream(stream="audio", codec="G722", bitrate=64_000.0, cipher_suite="AES_CM_128_HMAC_SHA1_80")
    assert sl.stats_line(audio) == "audio tx G722 64k loss – rtt – CM80"  # no report yet: not "0 %"
    extremes = [_stream(bitrate=b, fps=f, loss=lo, rtt=r, jitter=r, playout_delay=r, latency_p50=r,
                        target_bitrate=50_000_000, size="4096x4096@60", codec="H264-SVC-LONG-NAME",
                        cipher_suite="SOME_FUTURE_SUITE_WITH_A_LONG_NAME", direction=d)
                for b in (0.0, 999.6, 999_999.0, 49.99e6, 1e12, math.nan, -5.0)
                for f in (None, 0.0, 60.0, 1e6, math.inf) for lo in (None, 0.0, 0.999, 1.0, 7.0)
                for r in (None, 0.0004, 0.9996, 42.0, 1e9) for d in ("send", "receive")]
    for s in extremes:
        for signalling in ("tls", "plaintext"):
            line = "  " + sl.stats_line(s, signalling)
            assert len(line) <= 80, line
            assert line.split()[:3] == [s.stream, "tx" if s.direction == "send" else "rx", s.codec[:8]]
    assert sl.stats_line(tx, "plaintext").endswith(" [plaintext]")  # --no-tls: not a cipher name
    assert sl.summary_line(tx, "plaintext").endswith("[plaintext]")
    assert sl.summary_line(tx).startswith("summary: video send H264 ") and sl.summary_line(tx).endswith(
        "[AEAD_AES_128_GCM]")


def test_certificate_problems_are_named() -> None:
    cases = {
        "TLS handshake failed: certificate verify failed: certificate has expired": "expired",
        "TLS handshake failed: certificate is not yet valid": "not-yet-valid",
        "TLS handshake failed: certificate revoked": "revoked",
        "TLS handshake failed: self-signed certificate in certificate chain": "unknown-ca",
        "TLS handshake failed: unable to get local issuer certificate": "unknown-ca",
        "TLS: refused this terminal's certificate (TLSV1_ALERT_UNKNOWN_CA)": "unknown-ca",
        "127.0.0.1:1300 presented certificate 'x' for caf-agent, not for the dialled 'y'": "name-mismatch",
        "caller 'x' claims alias 'y', which its certificate does not hold": "name-mismatch",
        "caller 'stranger' is not on the allow-list": "not-allowed",
        "TLS handshake failed: CRL has expired": "crl-expired",
        "TLS handshake timed out": "timeout",
    }
    for detail, reason in cases.items():
        assert (sl.certificate_problem(detail) or ("",))[0] == reason, detail
    level, message, fields = sl.refused_entry("192.0.2.7:50412", None, "TLS handshake failed: certificate has expired")
    assert level == logging.WARNING and "untrusted certificate: expired" in message and fields["reason"] == "expired"
    assert sl.duration_text(3723) == "1:02:03" and sl.duration_text(42) == "0:42"
    assert sl.size_text(5_100_000) == "5.1 MB" and sl.size_text(812) == "812 B"
    assert "\n" not in sl.incoming_entry("evil\nname", (), None, "192.0.2.1")[1]  # one line whatever the name


# --------------------------------------------------------------------------- real calls


def test_event_lines_of_real_calls(tmp_path: Path, log: io.StringIO) -> None:
    """A call (incoming, answered, ended with duration, bytes and recording), a busy caller, a refused caller."""
    base = make_pki(tmp_path)
    rec, stats_path = tmp_path / "rec", tmp_path / "stats.jsonl"

    async def scenario() -> None:
        agent = terminal(base, "CAF agent", auto_answer=True, max_calls=1, recordings=rec)
        kiosk = terminal(base, "Murat kiosk", listen=False)
        other = terminal(base, "Other kiosk", listen=False)
        forged = terminal(base, "Murat kiosk", pem="forged", listen=False)
        with sl.StatsFile(stats_path) as stats_file:
            async with agent, kiosk, other, forged:
                async def station() -> None:
                    async for incoming in agent.incoming():
                        sl.log_incoming(incoming)
                        if incoming.call is not None:
                            await sl.CallLog(incoming.call, stats_file=stats_file).run()

                answering = asyncio.ensure_future(station())
                call = await kiosk.call(f"h323:caf-agent@{agent.address}")
                following = asyncio.ensure_future(sl.CallLog(call).run())
                await until(call, "media-started")
                busy = await other.call(f"h323:caf-agent@{agent.address}")  # max_calls=1: turned away
                await asyncio.gather(sl.CallLog(busy).run())
                with pytest.raises(CallFailed):
                    await forged.call(f"h323:caf-agent@{agent.address}")  # another CA: the station refuses it
                await wait_for(lambda: len(_events(log, "refused")) == 1)
                await asyncio.sleep(3.2)  # three seconds of statistics
                await call.hangup()
                await following
                await wait_for(lambda: len(_events(log, "ended")) == 3)
                answering.cancel()
                await asyncio.gather(answering, return_exceptions=True)

    run(scenario())
    lines = _lines(log)
    assert all(e["logger"] == "vcore.station" for e in lines), lines
    incoming = _events(log, "incoming")
    assert len(incoming) == 1 and incoming[0]["peer"] == "Murat kiosk" and incoming[0]["address"] == "127.0.0.1"
    assert incoming[0]["aliases"] == ["murat-kiosk"] and 'call from "Murat kiosk"' in incoming[0]["message"]
    answered = [e for e in _events(log, "answered") if not e["outgoing"]]
    assert answered[0]["protected"] and answered[0]["level"] == "INFO" and answered[0]["srtp"] == ["AEAD_AES_128_GCM"]
    ended = {(e["peer"], e["outgoing"]): e for e in _events(log, "ended")}
    station_end = ended[("Murat kiosk", False)]
    assert station_end["reason"] == "hangup" and station_end["by_peer"] and station_end["duration"] > 3
    assert station_end["bytes"]["sent"] > 10_000 and station_end["bytes"]["received"] > 10_000
    assert station_end["recording"] and Path(station_end["recording"]).stat().st_size > 0
    assert station_end["recording"] in station_end["message"] and "hangup by peer after 0:0" in station_end["message"]
    assert station_end["call_id"] == incoming[0]["call_id"] == ended[("CAF agent", True)]["call_id"]
    busy = _events(log, "busy")
    assert len(busy) == 1 and busy[0]["peer"] == "Other kiosk" and "busy" in busy[0]["message"]
    assert ended[("CAF agent", True)]["answered"]  # the kiosk's own call
    turned_away = [e for e in _events(log, "ended") if not e["answered"]]
    assert len(turned_away) == 1 and "not answered" in turned_away[0]["message"]
    refused = _events(log, "refused")
    assert refused[0]["level"] == "WARNING" and refused[0]["reason"] == "unknown-ca", refused
    assert "untrusted certificate: unknown CA" in refused[0]["message"] and refused[0]["detail"]
    failed = _events(log, "call-failed")  # the forged kiosk's own side of it
    assert len(failed) == 1 and failed[0]["failure"] == "tls-failure"

    records = [json.loads(line) for line in stats_path.read_text().splitlines()]
    assert 2 <= len(records) <= 5, len(records)  # one a second
    durations = [r["duration"] for r in records]
    assert durations == sorted(durations) and all(r["call_id"] == incoming[0]["call_id"] for r in records)
    for r in records:
        assert r["peer"] == "Murat kiosk" and r["signalling"] == "tls" and r["media_encrypted"] is True
        kinds = {(s["stream"], s["direction"]) for s in r["streams"]}
        assert kinds == {("audio", "send"), ("audio", "receive"), ("video", "send"), ("video", "receive")}
        for s in r["streams"]:
            assert set(s) >= {"codec", "bitrate", "fps", "loss", "jitter", "rtt", "playout_delay", "latency_p50",
                              "target_bitrate", "size", "protection"}
            assert 0 <= s["bitrate"] < 5_000_000 and s["protection"] == "AEAD_AES_128_GCM"
            assert s["loss"] is None or 0 <= s["loss"] <= 1
    last = {(s["stream"], s["direction"]): s for s in records[-1]["streams"]}
    assert last[("video", "receive")]["bitrate"] > 10_000 and 0 < last[("video", "receive")]["fps"] <= 30
    assert last[("video", "send")]["target_bitrate"] > 0 and last[("video", "send")]["size"]
    assert last[("video", "receive")]["jitter"] is not None and last[("video", "receive")]["playout_delay"] >= 0


def test_plaintext_call_is_a_warning_and_says_plaintext(log: io.StringIO) -> None:
    import vcore

    out = io.StringIO()

    async def scenario() -> None:
        opts: dict[str, Any] = {"allow_plaintext": True, "bitrate": 300_000, "encoder": "libx264", **sources()}
        agent = vcore.Terminal("agent", auto_answer=True, **opts)
        kiosk = vcore.Terminal("kiosk", listen=False, **opts)
        async with agent, kiosk:
            call = await kiosk.call(f"h323:agent@{agent.address}")
            following = asyncio.ensure_future(sl.CallLog(call, every=1.0, out=out).run())
            await until(call, "media-started")
            await wait_for(lambda: "video rx" in out.getvalue())
            await call.hangup()
            await following

    run(scenario())
    answered = _events(log, "answered")[0]
    assert answered["level"] == "WARNING" and not answered["protected"] and "NOT PROTECTED" in answered["message"]
    lines = out.getvalue().splitlines()
    assert lines and all(line.endswith("[plaintext]") and len(line) <= 80 for line in lines), lines


# --------------------------------------------------------------------------- the commands


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("JOURNAL_STREAM", None)
    return env


def test_commands_log_json_and_write_stats(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    small = ["--no-tls", "--size", "160x120", "--fps", "10", "--bitrate", "100000", "--log-format", "json"]
    agent = subprocess.Popen([sys.executable, "-m", "vcore", "answer", "--host", "127.0.0.1", "--port", str(port),
                              "--stats", "0", *small], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env())
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert agent.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        stats = tmp_path / "kiosk.jsonl"
        kiosk = subprocess.run([sys.executable, "-m", "vcore", "call", *small, "--stats", "1", "--stats-json",
                                str(stats), "--seconds", "3", f"h323:agent@127.0.0.1:{port}"],
                               capture_output=True, text=True, timeout=60, env=_env())
        assert kiosk.returncode == 0, kiosk.stdout + kiosk.stderr
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=30)
    for text in (kiosk.stderr, err):
        entries = [json.loads(line) for line in text.splitlines()]  # every line of the log is one object
        assert all(set(e) >= {"time", "level", "logger", "message"} for e in entries)
        assert not any(e["logger"] == "asyncio" for e in entries)
    events = [e.get("event") for e in map(json.loads, err.splitlines())]
    assert [e for e in events if e != "refused"] == ["listening", "incoming", "answered", "ended"], err
    probe = [e for e in map(json.loads, err.splitlines()) if e.get("event") == "refused"]  # our "is it up?" probe
    assert all(e["reason"] == "protocol-error" and "not a valid H.323 Setup" in e["message"] for e in probe), probe
    answered = next(e for e in map(json.loads, kiosk.stderr.splitlines()) if e.get("event") == "answered")
    assert answered["level"] == "WARNING" and not answered["protected"]
    stat_lines = [line for line in kiosk.stdout.splitlines() if line.startswith("  ")]
    assert stat_lines and all(len(line) <= 80 and line.endswith("[plaintext]") for line in stat_lines), kiosk.stdout
    records = [json.loads(line) for line in stats.read_text().splitlines()]
    assert 2 <= len(records) <= 4 and all(r["signalling"] == "plaintext" for r in records)
    assert all(s["protection"] == "plaintext" for r in records for s in r["streams"])
