"""vcore linetest: measured line figures against the network emulator's configured ones; bad lines."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import math
import os
import socket
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from vcore.linetest import (
    DEFAULT_PORT,
    MSG_DATA,
    MSG_PING,
    MSG_PONG,
    SUITE,
    TEST_RAMP_DOWN,
    TEST_RAMP_UP,
    LinetestError,
    LinetestReport,
    LinetestServer,
    analyze_arrivals,
    key_from_passphrase,
    main,
    parse_key,
    recommend,
    run_linetest,
)
from vcore.linetest import _open as _open_probe
from vcore.srtp import SrtpSession
from vcore.testing import NetworkEmulator, UdpRelay
from vcore.testing.netem import RelayRecord

KEY = key_from_passphrase("test")

# ADSL: 512 kbit/s up, 4 Mbit/s down, 40 ms each way, +-8 ms jitter, 1 % loss each way
UP_RATE, DOWN_RATE, DELAY, JITTER, LOSS = 512_000, 4_000_000, 0.040, 0.008, 0.01


def within(measured: float | None, configured: float, tolerance: float = 0.15) -> bool:
    return measured is not None and abs(measured - configured) <= tolerance * configured


async def _adsl(seed: int, **kw: Any) -> tuple[LinetestReport, list[RelayRecord]]:
    up = NetworkEmulator(seed=seed, rate=UP_RATE, delay=DELAY, jitter=JITTER, loss=LOSS)
    down = NetworkEmulator(seed=seed + 1000, rate=DOWN_RATE, delay=DELAY, jitter=JITTER, loss=LOSS)
    async with LinetestServer(KEY) as server:
        addr = await server.start("127.0.0.1", 0)
        async with UdpRelay(addr, up, down, record=True) as relay:
            rep = await run_linetest(*relay.address, KEY, **kw)
    return rep, relay.log


def _mean_abs_diff(xs: list[float]) -> float:
    """Mean |x[i+1] - x[i]|: the linetest's jitter figure (RFC 3550 transit differences)."""
    return sum(abs(b - a) for a, b in itertools.pairwise(xs)) / (len(xs) - 1)


def _fit_rate(points: list[tuple[int, int, float]]) -> float:
    """bit/s of (index, datagram bytes, time) probes: least-squares slope of index * bits per probe against time."""
    per = (points[0][1] + 28) * 8
    n = len(points)
    xs, ys = [t for _, _, t in points], [i * per for i, _, _ in points]
    mx, my = sum(xs) / n, sum(ys) / n
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


@dataclass
class _Line:
    """What the relay did in one run (``real``: from when it really forwarded; ``planned``: what it drew)."""

    rtt: dict[str, float] = field(default_factory=dict)
    jitter: dict[str, float] = field(default_factory=dict)  # "real up", "planned down", ...
    rate: dict[str, float] = field(default_factory=dict)


def _what_the_line_did(log: list[RelayRecord], rep: LinetestReport) -> _Line:
    """The relay's record of the run, decrypted: delays of the pings answered, the rates of the ramp steps run.

    The relay emulates the line in user space: on a busy machine its timers fire late, and the line
    really had more delay and delay variation (and burstier delivery) than configured: the figures
    a line test measured are checked against this record, the ground truth of that run.
    """
    srtp = SrtpSession(SUITE, KEY, replay_window=1024)
    pings: dict[int, RelayRecord] = {}
    pongs: dict[int, RelayRecord] = {}
    probes: dict[int, list[tuple[int, RelayRecord]]] = {}
    for r in log:
        opened = _open_probe(srtp, r.data)
        assert opened is not None
        kind, test, index = opened[1][0], opened[1][2], opened[1][3]
        if kind == MSG_PING and r.upstream:
            pings.setdefault(index, r)
        elif kind == MSG_PONG and not r.upstream:
            pongs.setdefault(index, r)
        elif kind == MSG_DATA:
            probes.setdefault(test, []).append((index, r))
    answered = sorted(i for i in pings if pings[i].sent is not None and i in pongs and pongs[i].sent is not None)
    assert len(answered) == rep.pongs  # the same pings the line test saw answered
    line = _Line()
    for how in ("real", "planned"):
        def delay(r: RelayRecord, how: str = how) -> float:
            d = r.delay if how == "real" else r.planned_delay
            assert d is not None
            return d

        line.rtt[how] = statistics.median(delay(pings[i]) + delay(pongs[i]) for i in answered)
        line.jitter[f"{how} up"] = _mean_abs_diff([delay(pings[i]) for i in answered])
        line.jitter[f"{how} down"] = _mean_abs_diff([delay(pongs[i]) for i in answered])
        for d, base in ((rep.up, TEST_RAMP_UP), (rep.down, TEST_RAMP_DOWN)):
            rates = []
            for k in range(len(d.steps)):  # the steps the line test ran; it reports the best received rate
                rates.append(_fit_rate([(i, len(r.data), r.sent if how == "real" else delay(r) + r.received)
                                        for i, r in probes[base + k] if r.sent is not None]))
            line.rate[f"{how} {d.direction}"] = max(rates)
    return line


def test_adsl_line_measured_within_15_percent() -> None:
    """Each figure within 15 % of what the emulated line did; what it was meant to do, within 15 % of its settings.

    The relay is a user-space emulator sharing the CPU with the line test: on a busy machine its
    timers fire late, and the line it emulated really had more delay variation than configured
    (issue 13: 7.23 ms of jitter measured against the nominal 5.33 ms, on a run where the relay
    had delivered about that). So the measurement is held to the relay's record of that run, and
    the emulator's own draws to the configuration: neither depends on the machine's load.
    """
    # timeout: a guard against hanging only, far above the ~12 s the test takes
    rep, log = asyncio.run(_adsl(7, pings=200, ping_interval=0.01, step=0.5, timeout=300))
    assert rep.complete, rep.errors
    assert not rep.errors
    line = _what_the_line_did(log, rep)
    # RTT: two 40 ms delays (plus the ping's serialization at 512 kbit/s and 4 Mbit/s, ~1.6 ms)
    assert within(line.rtt["planned"], 2 * DELAY)
    assert within(rep.rtt_median, line.rtt["real"]), (rep.rtt_median, line.rtt)
    # bandwidth each way, at the IP level (the emulator counts 28 bytes of IP+UDP per datagram too)
    assert within(line.rate["planned up"], UP_RATE) and within(line.rate["planned down"], DOWN_RATE), line.rate
    assert within(rep.up.bandwidth, line.rate["real up"]), (line.rate, rep.up.steps)
    assert within(rep.down.bandwidth, line.rate["real down"]), (line.rate, rep.down.steps)
    assert not rep.up.lower_bound and not rep.down.lower_bound
    # jitter: uniform +-J delay variation gives E|D| = 2J/3 between consecutive packets
    assert within(line.jitter["planned up"], 2 * JITTER / 3) and within(line.jitter["planned down"], 2 * JITTER / 3)
    assert within(rep.up.jitter, line.jitter["real up"]), (rep.up.jitter, line.jitter)
    assert within(rep.down.jitter, line.jitter["real down"]), (rep.down.jitter, line.jitter)
    # loss: within 15 %, or within two standard errors where a few hundred probes cannot tell
    # 1 % from 1.15 % (that takes ~17,000 probes); the configured rate is inside the 95 % interval
    for d in (rep.up, rep.down):
        assert d.loss is not None and d.loss_ci is not None
        sigma = math.sqrt(LOSS * (1 - LOSS) / d.loss_packets)
        assert abs(d.loss - LOSS) <= max(0.15 * LOSS, 2 * sigma), (d.direction, d.loss, d.loss_packets)
        assert d.loss_ci[0] <= LOSS <= d.loss_ci[1]
    recs = {r.direction: r for r in rep.recommendations}
    for d in (rep.up, rep.down):
        assert recs[d.direction] == recommend(d.direction, d.bandwidth, d.loss)
    assert recs["down"].video == "720p30"  # 360p15 up: test_recommendation_table (512 kbit/s)
    text = rep.text()
    assert "upstream" in text and "recommended up" in text


def test_far_side_never_answers_gives_a_clean_report() -> None:
    async def run() -> LinetestReport:
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        try:
            # wait_for: a guard against hanging, far above the ~1.2 s the test takes
            return await asyncio.wait_for(
                run_linetest("127.0.0.1", silent.getsockname()[1], KEY, pings=20, timeout=10), 30)
        finally:
            silent.close()

    rep = asyncio.run(run())
    assert not rep.complete
    assert rep.pongs == 0 and rep.rtt_median is None
    assert any("did not answer" in e for e in rep.errors)
    assert all(r.video == "not measured" for r in rep.recommendations)


def test_wrong_key_is_no_answer_and_server_drops_the_probes() -> None:
    async def run() -> tuple[LinetestReport, int]:
        async with LinetestServer(KEY) as server:
            host, port = await server.start("127.0.0.1", 0)
            rep = await run_linetest(host, port, key_from_passphrase("other"), pings=10, timeout=10)
            return rep, server.dropped

    rep, dropped = asyncio.run(run())
    assert dropped >= 10
    assert any("key" in e for e in rep.errors)


def test_line_that_drops_mid_test_gives_a_partial_report() -> None:
    async def run() -> LinetestReport:
        up = NetworkEmulator(seed=3, rate=UP_RATE, delay=0.02)
        down = NetworkEmulator(seed=4, rate=DOWN_RATE, delay=0.02)
        async with LinetestServer(KEY) as server:
            addr = await server.start("127.0.0.1", 0)
            relay = UdpRelay(addr, up, down)
            await relay.start()
            loop = asyncio.get_running_loop()
            loop.call_later(1.5, relay.close)  # during the packet trains or the ramp
            try:
                return await asyncio.wait_for(run_linetest(*relay.address, KEY, pings=50, step=0.5, timeout=20), 60)
            finally:
                relay.close()

    rep = asyncio.run(run())
    assert not rep.complete
    assert rep.rtt_median is not None  # measured before the drop
    assert any("stopped answering during" in e for e in rep.errors), rep.errors


def test_whole_test_timeout_is_a_partial_report() -> None:
    async def run() -> LinetestReport:
        async with LinetestServer(KEY) as server:
            host, port = await server.start("127.0.0.1", 0)
            return await run_linetest(host, port, KEY, pings=400, timeout=1.0)

    rep = asyncio.run(run())
    assert not rep.complete
    assert any("did not finish within 1 s" in e for e in rep.errors)


def test_analyze_arrivals_recovers_the_rate_through_jitter() -> None:
    import random

    rng = random.Random(1)
    size, rate = 1210, 1_000_000
    per = (size + 28) * 8 / rate
    recs = [(i, size, i * per, 0.05 + i * per + rng.uniform(-0.004, 0.004)) for i in range(60) if i != 17]
    res = analyze_arrivals(recs)
    assert res["received"] == 59
    assert res["rate"] == pytest.approx(rate, rel=0.05)
    assert abs(res["owd_growth"]) < 0.004  # paced at the line rate: no queue builds
    queued = analyze_arrivals([(i, s, i * 0.0001, a) for i, s, _, a in recs])  # sent back to back
    assert queued["owd_growth"] > 0.3
    assert analyze_arrivals(recs[:2])["rate"] is None


@pytest.mark.parametrize(
    ("bandwidth", "video"),
    [(4e6, "720p30"), (1.4e6, "720p15"), (1e6, "480p30"), (700e3, "480p15"), (512e3, "360p15"),
     (256e3, "QCIF 176x144 15 fps"), (100e3, "audio only")],
)
def test_recommendation_table(bandwidth: float, video: str) -> None:
    r = recommend("up", bandwidth)
    assert r.video == video
    assert r.bitrate <= 0.7 * bandwidth


def test_heavy_loss_halves_the_budget_and_nothing_measured() -> None:
    assert recommend("down", 2e6, loss=0.1).bitrate == 700_000
    assert recommend("down", None).video == "not measured"


def test_keys() -> None:
    k = os.urandom(30)
    assert parse_key(base64.b64encode(k).decode()) == k
    with pytest.raises(LinetestError, match="30 bytes"):
        parse_key(base64.b64encode(b"short").decode())
    with pytest.raises(LinetestError, match="base64"):
        parse_key("not base64 !")
    assert key_from_passphrase("a") == key_from_passphrase("a") != key_from_passphrase("b")
    assert main(["127.0.0.1", "--key", "nope"]) == 2


def test_command_line_end_to_end(tmp_path: object) -> None:
    """``vcore linetest --serve`` in one process, the client in another, over loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in ["src", os.environ.get("PYTHONPATH", "")] if p))
    refused = subprocess.run([sys.executable, "-m", "vcore", "linetest", "--serve", "--port", str(port)],
                             capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 2 and "--serve needs a key of its own" in refused.stderr  # not the public default
    server = subprocess.Popen(
        [sys.executable, "-m", "vcore", "linetest", "--serve", "--host", "127.0.0.1", "--port", str(port),
         "--serve-for", "30", "--key", "generate"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )
    try:
        assert server.stdout is not None
        key = server.stdout.readline().split()[1]  # "key: BASE64  (give the client --key with this value)"
        assert "serving line tests" in server.stdout.readline()
        out = os.path.join(str(tmp_path), "line.json")
        client = subprocess.run(
            [sys.executable, "-m", "vcore", "linetest", f"127.0.0.1:{port}", "--quick", "--pings", "30",
             "--max-rate", "5e6", "--json", out, "--key", key],
            capture_output=True, text=True, env=env, timeout=60,
        )
        assert client.returncode == 0, client.stdout + client.stderr
        assert "recommended up" in client.stdout
        with open(out, encoding="utf-8") as fh:
            data = json.load(fh)
        assert data["complete"] and data["up"]["bandwidth"] > 1e6
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


def test_default_port() -> None:
    assert DEFAULT_PORT == 5004


def test_server_behind_another_socket() -> None:
    """A terminal can answer line tests on its own socket: feed datagrams in, give a send callable."""
    import time

    class Port(asyncio.DatagramProtocol):
        def __init__(self, server: LinetestServer) -> None:
            self.server = server

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.server.datagram_received(data, addr, time.monotonic())

    async def run() -> LinetestReport:
        loop = asyncio.get_running_loop()
        holder: list[asyncio.DatagramTransport] = []
        server = LinetestServer(KEY, send=lambda data, addr: holder[0].sendto(data, addr))
        transport, _ = await loop.create_datagram_endpoint(lambda: Port(server), local_addr=("127.0.0.1", 0))
        holder.append(transport)
        try:
            host, port = transport.get_extra_info("sockname")
            return await run_linetest(host, port, KEY, pings=20, step=0.2, max_rate=2e6, timeout=20)
        finally:
            await server.close()
            transport.close()

    rep = asyncio.run(run())
    assert rep.complete, rep.errors
    assert rep.up.bandwidth and rep.up.lower_bound  # loopback beats 2 Mbit/s
    assert rep.pongs == 20


def test_server_is_no_amplifier() -> None:
    """A key holder at an address that never echoes its cookie gets at most 3 bytes per byte it sent.

    (Issue 14, finding 2: one forged 50-byte START made the server send 5.1 MB to the forged source.) The
    "victim" here is a socket that asks for trains (well formed, and with NaN, negative, zero or huge
    rates), reports and pings, but never proves it receives: what the server sends it stays within the
    bound, and no train starts. A real client at another address, which does echo the cookie, is served.
    """
    from vcore.linetest import MSG_PING, MSG_REPORT_REQ, MSG_START, TRAIN_PACKETS, _Endpoint
    from vcore.srtp import SrtpSession

    async def scenario() -> tuple[int, int, LinetestServer, LinetestReport]:
        async with LinetestServer(KEY) as server:
            addr = await server.start("127.0.0.1", 0)
            loop = asyncio.get_running_loop()
            received: list[bytes] = []

            class Victim(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, _: Any) -> None:
                    received.append(data)

            transport, _ = await loop.create_datagram_endpoint(Victim, remote_addr=addr)
            ep = _Endpoint(SrtpSession("AES_CM_128_HMAC_SHA1_80", KEY), 0x1234)
            sent = 0
            requests = [ep.packet(MSG_PING, 0, i, 0, 0.0, 0.0) for i in range(20)]
            for test, (count, rate) in enumerate([(50_000, 0.0), (50_000, 50e6), (10, float("nan")),
                                                  (10, -1.0), (TRAIN_PACKETS, 0.0), (10**9, float("inf"))]):
                requests.append(ep.packet(MSG_START, 10 + test, count, 1400, rate, 0.0, b"\0" * 8))
            requests += [ep.packet(MSG_REPORT_REQ, 0, 0, 0, 0.0, 0.0) for _ in range(20)]
            for data in requests:
                transport.sendto(data)
                sent += len(data)
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.5)
            transport.close()
            assert all(len(d) < 400 for d in received)  # pongs and reports only: no probe train came
            honest = await run_linetest(*addr, KEY, pings=20, step=0.2, max_rate=2e6, timeout=20)
            return sent, sum(len(d) for d in received), server, honest

    sent, got, server, honest = asyncio.run(scenario())
    assert 0 < got <= 3 * sent, (got, sent)
    assert server.refused >= 6  # every START: no cookie
    assert honest.complete, honest.errors  # the cookie round trip costs an honest client nothing


def test_server_rejects_bad_train_requests_from_verified_clients() -> None:
    """NaN, infinite, negative rates, and long back-to-back bursts are refused even with a valid cookie."""
    from vcore.linetest import MSG_PING, MSG_PONG, MSG_START, _Endpoint, _open
    from vcore.srtp import SrtpSession

    async def scenario() -> tuple[LinetestServer, int]:
        server = LinetestServer(KEY, send=lambda data, a: out.append(data))
        out: list[bytes] = []
        srtp = SrtpSession("AES_CM_128_HMAC_SHA1_80", KEY)
        ep = _Endpoint(srtp, 0x4321)
        addr = ("192.0.2.7", 4000)
        server.datagram_received(ep.packet(MSG_PING, 0, 0, 0, 0.0, 0.0), addr, 0.0)
        pong = _open(SrtpSession("AES_CM_128_HMAC_SHA1_80", KEY), out[-1])
        assert pong is not None and pong[1][0] == MSG_PONG
        cookie = pong[2][:8]
        for test, (count, rate) in enumerate([(10, float("nan")), (10, float("inf")), (10, -5.0),
                                              (1000, 0.0)]):
            server.datagram_received(ep.packet(MSG_START, test, count, 1200, rate, 0.0, cookie), addr, 0.1)
        await asyncio.sleep(0.1)
        await server.close()
        return server, len(out)

    server, sent = asyncio.run(scenario())
    assert server.refused == 4 and sent == 1  # only the pong went out


def test_amplification_bound_withholds_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The byte budget of an unverified address holds whatever the answers' sizes (here a bound of 1:1)."""
    import vcore.linetest as lt
    from vcore.srtp import SrtpSession

    monkeypatch.setattr(lt, "AMPLIFICATION", 1)  # a report (~120 bytes) is larger than its request (~50)
    out: list[bytes] = []
    server = LinetestServer(KEY, send=lambda data, a: out.append(data))
    ep = lt._Endpoint(SrtpSession("AES_CM_128_HMAC_SHA1_80", KEY), 0x777)
    received = 0
    for _ in range(100):
        d = ep.packet(lt.MSG_REPORT_REQ, 1, 0, 0, 0.0, 0.0)
        server.datagram_received(d, ("198.51.100.9", 5000), 3.0)
        received += len(d)
    assert 0 < sum(len(d) for d in out) <= received and server.withheld > 0


def test_the_server_srtp_state_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key holder cycling SSRCs cannot grow the server's SRTP state (issue 14, finding 2's last point)."""
    import vcore.linetest as lt
    from vcore.srtp import SrtpSession

    monkeypatch.setattr(lt, "MAX_STREAMS", 8)
    sent: list[tuple[bytes, Any]] = []
    server = LinetestServer(KEY, send=lambda data, addr: sent.append((data, addr)))
    clients = {ssrc: lt._Endpoint(SrtpSession("AES_CM_128_HMAC_SHA1_80", KEY), ssrc) for ssrc in range(1, 30)}
    for ssrc, ep in clients.items():
        server.datagram_received(ep.packet(lt.MSG_PING, 0, 0, 0, 0.0, 0.0), ("192.0.2.7", 4000 + ssrc), 1.0)
    assert len(sent) == 8 and server.refused == 21  # pongs to the first 8; the others never authenticated
    assert len(server._srtp.ssrcs(outbound=False)) == 8
    server.datagram_received(clients[3].packet(lt.MSG_PING, 0, 1, 0, 0.0, 0.0), ("192.0.2.7", 4003), 2.0)
    assert len(sent) == 9 and sent[-1][1] == ("192.0.2.7", 4003)  # a known client is still served
