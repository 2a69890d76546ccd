"""Bad input to every ``vcore`` command: one ``error:`` line (or argparse's usage form), a non-zero exit, no traceback.

Every case runs ``python -m vcore ...`` in a subprocess (several at a time). The ``call`` cases dial a live
``vcore answer --no-tls --record-dir D`` agent: afterwards it must have seen no call and recorded nothing, and
no case may have written a file. A valid call at the end shows the agent does notice calls (the control).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from .call_helpers import free_port as _free_port

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
ENV.pop("VCORE_TRACEBACK", None)
USAGE_ERROR = re.compile(r"^vcore[\w -]*: error: ")



def vcore(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vcore", *args], capture_output=True, text=True, timeout=timeout,
                          env=ENV, stdin=subprocess.DEVNULL)


@dataclass
class World:
    port: int  # the agent's
    record_dir: Path  # the agent's --record-dir
    out: Path  # where cases would write (must stay empty)
    cards: Path
    text_file: Path
    agent_log: Path


# what the error must mention, where it is not argparse's "argument --FLAG" for the case's first option
NEEDLES = {
    "call-camera-unusable": "/dev/null", "call-microphone-absent": "vcore-no-such-mic", "call-bad-address": "h323:@",
    "call-port-out-of-range": "99999", "call-no-identity": "--identity", "call-identity-not-pem": "PEM",
    "call-no-such-card": "no card 99", "answer-busy-port": "address already in use", "answer-no-identity": "--identity",
    "camera-serial-absent": "cannot open serial port", "camera-power": "argument state",
    "camera-preset": "argument preset", "camera-zoom": "argument position", "camera-pan": "argument pan",
    "camera-action": "argument ACTION", "camera-port": "argument --port", "camera-speed": "argument --speed",
    "camera-timeout": "argument --timeout", "linetest-address-port": "bad address",
    "linetest-address-bad": "bad address", "linetest-client-port-0": "--port 0", "linetest-key": "30 bytes",
    "linetest-serve-default-key": "key of its own", "linetest-serve-for": "argument --serve-for",
    "linetest-no-address": "address", "bench-profiles": "4k60", "bench-compare": "a.json", "info-extra": "--foo",
    "unknown-command": "nosuch", "pki-issue-days-neg": "-5", "pki-init-days-0": "days", "pki-init-days-neg": "days",
    "pki-crl-days-0": "days",
}


def cases(w: World) -> dict[str, tuple[list[str], int, str]]:
    """id -> (argv, expected exit status, what the error must mention)."""
    table: dict[str, tuple[list[str], int, str]] = {}

    def add(prefix: str, group: dict[str, list[str]], before: list[str], after: list[str], status: int = 2) -> None:
        for key, args in group.items():
            name = f"{prefix}-{key}"
            table[name] = ([prefix, *before, *args, *after], status, NEEDLES.get(name, f"argument {args[0]}"))

    def one(name: str, argv: list[str], status: int = 2) -> None:
        table[name] = (argv, status, NEEDLES[name])

    peer = f"127.0.0.1:{w.port}"
    rec = ["--record", str(w.out / "kiosk.mp4")]
    add("call", {
        "size-abc": ["--size", "abc"], "size-0x0": ["--size", "0x0"], "size-odd": ["--size", "641x480"],
        "size-huge": ["--size", "8192x8192"], "fps-0": ["--fps", "0"], "fps-100": ["--fps", "100"],
        "fps-nan": ["--fps", "nan"], "bitrate-neg": ["--bitrate", "-5"], "bitrate-0": ["--bitrate", "0"],
        "bitrate-10G": ["--bitrate", "10000000000"], "bitrate-abc": ["--bitrate", "1.5M"],
        "stats-neg": ["--stats", "-1"], "media-timeout-0": ["--media-timeout", "0"],
        "seconds-neg": ["--seconds", "-3"], "camera-absent": ["--camera", "/dev/vcore-no-such-video"],
        "camera-not-device": ["--camera", str(w.text_file)], "camera-unusable": ["--camera", "/dev/null"],
        "microphone-empty": ["--microphone", ""], "microphone-absent": ["--microphone", "vcore-no-such-mic"],
        "rtp-ports": ["--rtp-ports", "abc"], "media-address": ["--media-address", "not-an-ip"],
        "public-address": ["--public-address", "999.1.1.1"], "gatekeeper": ["--gatekeeper", "gk:99999"],
        "alias-empty": ["--alias", ""], "name-empty": ["--name", ""],
        "record-no-dir": ["--record", "/nonexistent-vcore/x.mp4"], "record-suffix": ["--record", str(w.out / "x.txt")],
        "identity-missing": ["--identity", str(w.out / "missing.pem")],
        "cards-missing": ["--cards", str(w.out / "missing.toml")],
    }, ["--no-tls", *rec], [peer])
    one("call-bad-address", ["call", "--no-tls", *rec, "h323:@"])
    one("call-port-out-of-range", ["call", "--no-tls", *rec, "127.0.0.1:99999"])
    one("call-no-identity", ["call", *rec, peer])
    one("call-identity-not-pem", ["call", *rec, "--identity", str(w.text_file), "--trust", str(w.text_file), peer])
    one("call-no-such-card", ["call", "--no-tls", *rec, "--cards", str(w.cards), "99"])
    add("answer", {
        "port-99999": ["--port", "99999"], "port-neg": ["--port", "-1"], "port-abc": ["--port", "abc"],
        "host": ["--host", "not-an-ip"], "record-dir-missing": ["--record-dir", "/nonexistent-vcore/rec"],
        "record-dir-file": ["--record-dir", str(w.text_file)], "size": ["--size", "15x15"], "fps": ["--fps", "61"],
        "bitrate": ["--bitrate", "0"], "media-timeout": ["--media-timeout", "-1"], "allow-empty": ["--allow", ""],
        "camera": ["--camera", "/dev/vcore-no-such-video"],
    }, ["--no-tls", "--port", str(_free_port())], [])
    one("answer-busy-port", ["answer", "--no-tls", "--host", "127.0.0.1", "--port", str(w.port)], 1)
    one("answer-no-identity", ["answer", "--port", "0"])
    add("demo", {
        "output-no-dir": ["--output", "/nonexistent-vcore/x.mp4"], "output-suffix": ["--output", str(w.out / "x.txt")],
        "chart-no-dir": ["--chart", "/nonexistent-vcore/c.png"], "seconds-0": ["--seconds", "0"],
        "seconds-neg": ["--seconds", "-1"], "size": ["--size", "0x0"], "fps": ["--fps", "0"],
        "bitrate": ["--bitrate", "0"], "encoder": ["--encoder", "h264_vcore_nosuch"],
    }, ["--no-tls"], [])
    add("camera", {
        "port": ["--ip", "127.0.0.1", "--port", "99999", "status"], "address": ["--address", "9", "status"],
        "baudrate": ["--baudrate", "1234", "status"], "timeout": ["--timeout", "0", "home"],
        "preset": ["preset-recall", "300"], "zoom": ["zoom-to", "-5"], "pan": ["pan-tilt-to", "99999999", "0"],
        "speed": ["pan-tilt-to", "0", "0", "--speed", "0"], "power": ["power", "maybe"], "action": ["fly"],
    }, ["--emulate"], [])
    table["camera-port"][0].remove("--emulate")  # --ip, not the emulator
    one("camera-serial-absent", ["camera", "--serial", "/dev/vcore-no-such-tty", "status"], 1)  # found at run time
    add("linetest", {
        "port": ["--port", "99999"], "address-port": ["127.0.0.1:99999"], "address-bad": ["127.0.0.1:abc"],
        "client-port-0": ["--port", "0"], "pings": ["--pings", "0"], "step": ["--step", "0"],
        "max-rate": ["--max-rate", "nan"], "timeout": ["--timeout", "0"], "json": ["--json", "/nonexistent-vcore/r.json"],
        "key": ["--key", "nope"],
    }, [], ["127.0.0.1"])
    for name in ("linetest-address-port", "linetest-address-bad"):
        table[name][0].pop()  # the address is the bad value
    one("linetest-serve-default-key", ["linetest", "--serve", "--port", "0"])
    one("linetest-serve-for", ["linetest", "--serve", "--serve-for", "-1", "--key", "generate"])
    one("linetest-no-address", ["linetest"])
    add("bench", {
        "json": ["--json", "/nonexistent-vcore/b.json"], "plot": ["--plot", "/nonexistent-vcore/b.png"],
        "profiles": ["--profiles", "4k60"], "encoders": ["--encoders", ","], "camera": ["--camera", ""],
        "compare": ["--compare", str(w.out / "a.json"), str(w.out / "b.json")],
    }, [], [])
    one("info-extra", ["info", "--foo"])
    one("unknown-command", ["nosuch"])
    ca = str(w.out.parent / "ca")
    one("pki-issue-days-neg", ["pki", "issue", ca, "x", "--role", "kiosk", "--days", "-5"])
    one("pki-init-days-0", ["pki", "init", str(w.out.parent / "ca0"), "--days", "0"])
    one("pki-init-days-neg", ["pki", "init", str(w.out.parent / "ca1"), "--days", "-3"])
    one("pki-crl-days-0", ["pki", "crl", ca, "--days", "0"])
    return table


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("inputs")
    (base / "rec").mkdir()
    (base / "out").mkdir()
    assert vcore("pki", "init", str(base / "ca")).returncode == 0
    port = _free_port()
    w = World(port, base / "rec", base / "out", base / "cards.toml", base / "plain.txt", base / "agent.log")
    w.cards.write_text(f'[cards.12]\nname = "agent"\naddress = "127.0.0.1:{port}"\n')
    w.text_file.write_text("not a device, not a PEM\n")
    with open(w.agent_log, "w") as log:
        agent = subprocess.Popen([sys.executable, "-m", "vcore", "answer", "--no-tls", "--host", "127.0.0.1",
                                  "--port", str(port), "--record-dir", str(w.record_dir), "--size", "160x120",
                                  "--fps", "10", "--bitrate", "100000", "--stats", "0"],
                                 stdout=log, stderr=subprocess.STDOUT, env=ENV)
    try:
        deadline = time.monotonic() + 30
        while "answering calls" not in w.agent_log.read_text():
            assert agent.poll() is None and time.monotonic() < deadline, w.agent_log.read_text()
            time.sleep(0.1)
        yield w
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(15)


@pytest.fixture(scope="module")
def results(world: World) -> dict[str, subprocess.CompletedProcess[str]]:
    table = cases(world)
    with ThreadPoolExecutor(max_workers=max(4, (os.cpu_count() or 2) * 2)) as pool:
        futures = {name: pool.submit(vcore, *argv) for name, (argv, _, _) in table.items()}
        return {name: f.result() for name, f in futures.items()}


def _case_ids() -> list[str]:
    dummy = World(1, Path("/r"), Path("/o/out"), Path("/c"), Path("/t"), Path("/l"))
    return list(cases(dummy))


@pytest.mark.parametrize("case", _case_ids())
def test_bad_input_is_one_error_line(case: str, world: World,
                                     results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    argv, status, needle = cases(world)[case]
    proc = results[case]
    shown = f"vcore {' '.join(argv)} -> {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr, shown
    assert proc.returncode == status, shown
    lines = proc.stderr.strip().splitlines()
    if lines and lines[0].startswith("usage:"):  # argparse's own: the usage, then one "PROG: error: ..." line
        assert USAGE_ERROR.match(lines[-1]) and sum("error:" in line for line in lines) == 1, shown
    else:
        assert len(lines) == 1 and lines[0].startswith("error: "), shown
    assert needle in lines[-1], f"the error is not about {needle!r}: {shown}"  # refused for the right reason


def test_nothing_placed_nothing_written(world: World, results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert "call from" not in world.agent_log.read_text(), world.agent_log.read_text()
    assert not list(world.record_dir.iterdir()) and not list(world.out.iterdir())
    # the control: a good call does reach the agent (so the two checks above can fail)
    ok = vcore("call", "--no-tls", "--size", "160x120", "--fps", "10", "--bitrate", "100000", "--stats", "0",
               "--seconds", "1", f"127.0.0.1:{world.port}", timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    deadline = time.monotonic() + 10
    while world.agent_log.read_text().count("call from") != 1:
        assert time.monotonic() < deadline, world.agent_log.read_text()
        time.sleep(0.1)
