"""Interoperability with a real H.323 stack: H323Plus's ``simph323`` sample as the peer.

No H.323 stack is packaged for Debian, so this test runs only where one was built locally: point
``VCORE_SIMPH323`` at the ``simph323`` binary (and ``LD_LIBRARY_PATH`` at its PTLib/H323Plus libraries).
It skips otherwise. simph323 offers G.711 only (no SRTP), so vcore runs with plaintext media allowed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vcore.h323 import (
    ChannelOpened,
    DEFAULT_FORMATS,
    MediaPolicy,
    Released,
    SignallingConfig,
    SignallingListener,
    SignallingTimeout,
    place_call,
)
from vcore.h323.messages import Address
from .call_helpers import free_port as _free_port

pytestmark = pytest.mark.interop

A = Address
MEDIA = {1: (A("127.0.0.1", 47000), A("127.0.0.1", 47001)), 2: (A("127.0.0.1", 47002), A("127.0.0.1", 47003))}


def _simph323() -> str:
    path = os.environ.get("VCORE_SIMPH323")
    if not path or not Path(path).is_file():
        pytest.skip("VCORE_SIMPH323 does not name a locally built H323Plus simph323 (no H.323 stack is packaged)")
    return path


def _config(alias: str, fast: bool = True) -> SignallingConfig:
    return SignallingConfig(alias, allow_plaintext_signalling=True, fast_connect=fast,
                            policy=MediaPolicy(DEFAULT_FORMATS, allow_plaintext=True))



def _run_beside(proc: subprocess.Popen[bytes], scenario: Any) -> None:
    """Run ``scenario`` while the peer process runs; stop the peer whatever happens (SIGTERM, then SIGKILL)."""
    try:
        asyncio.run(scenario)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:  # simph323 may ignore SIGTERM for a while
            proc.kill()
            proc.wait(10)


async def _wait_listening(port: int) -> None:
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    pytest.fail("simph323 did not start listening")


async def _eventually(check: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def _receive_channels(session, want: int) -> list:  # type: ignore[no-untyped-def]
    opened = []
    while len(opened) < want:
        event = await session.next_event(10)
        assert not isinstance(event, Released), event
        if isinstance(event, ChannelOpened):
            opened.append(event.channel)
    return opened


@pytest.mark.parametrize(("fast", "tunnel"), [(True, True), (False, True), (False, False), (True, False)],
                         ids=["fast-connect", "h245-procedures", "separate-h245", "fast-connect-separate-h245"])
def test_vcore_calls_h323plus(fast: bool, tunnel: bool, tmp_path: Path) -> None:
    simph323 = _simph323()
    port = _free_port()
    args = [simph323, "-l", "-a", "-n", "-S", "-i", "127.0.0.1", "-x", str(port), "-u", "h323plus"]
    proc = subprocess.Popen(args + (["-f"] if fast else []) + ([] if tunnel else ["-T"]), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    async def scenario() -> None:
        await _wait_listening(port)
        call = await place_call("127.0.0.1", port, _config("kiosk", fast), MEDIA, destination=["h323plus"])
        connected = await call.wait_connected(15)
        channels = list(connected.channels) if fast else await _receive_channels(call, 2)
        assert {c.direction for c in channels} == {"send", "receive"}
        assert all(c.format.name in ("PCMU", "PCMA") and not c.encrypted for c in channels)
        send = next(c for c in channels if c.direction == "send")
        assert send.remote_rtp is not None and send.remote_rtp.host == "127.0.0.1"
        assert call.security()["signalling"] == "plaintext"
        if not tunnel:  # H323Plus -T: every H.245 message on the separate connection
            await _eventually(lambda: call.separate_h245)
            assert not call.tunnelling and call.msd_status in ("master", "slave")
        await call.hangup()

    _run_beside(proc, scenario())


@pytest.mark.parametrize(("fast", "tunnel"), [(True, True), (False, True), (False, False), (True, False)],
                         ids=["fast-connect", "h245-procedures", "separate-h245", "fast-connect-separate-h245"])
def test_h323plus_calls_vcore(fast: bool, tunnel: bool) -> None:
    simph323 = _simph323()

    async def scenario() -> None:
        async with SignallingListener(_config("agent")) as listener:
            args = [simph323, "-n", "-S", "-i", "127.0.0.1", "-x", str(_free_port()), "-u", "h323plus"]
            proc = subprocess.Popen(args + (["-f"] if fast else []) + ([] if tunnel else ["-T"])
                                    + [f"agent@127.0.0.1:{listener.port}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                incoming = await listener.accept(20)
                assert incoming.remote_aliases == ("h323plus",)
                await incoming.alert()
                channels = await incoming.answer(MEDIA)
                assert bool(channels) == fast
                if not fast:
                    channels = await _receive_channels(incoming, 2)
                assert {c.direction for c in channels} == {"send", "receive"}
                assert incoming.tunnelling == tunnel
                if not tunnel:
                    await _eventually(lambda: incoming.separate_h245)
                try:
                    event = await incoming.next_event(1)
                    assert not isinstance(event, Released), event
                except SignallingTimeout:
                    pass
                await incoming.hangup()
            finally:
                proc.terminate()
                proc.wait(10)

    asyncio.run(scenario())


def _tls_files(tmp_path: Path) -> dict[str, Path]:
    from vcore import pki

    ca = pki.CertificateAuthority.init(tmp_path / "ca", "Interop CA")
    files: dict[str, Path] = {"ca": ca.cert_path, "crl": ca.crl_path}
    for name in ("h323plus", "kiosk-1", "agent-1"):
        identity = ca.issue(name)
        identity.save(tmp_path / f"{name}.pem")
        folder = tmp_path / name
        folder.mkdir()
        files[name + ".cert"], files[name + ".key"] = identity.write_chain_files(folder)
        files[name] = tmp_path / f"{name}.pem"
    return files


def _tls_args(files: dict[str, Path], tls_port: int) -> list[str]:
    return ["--tls", "--tls-cafile", str(files["ca"]), "--tls-cert", str(files["h323plus.cert"]),
            "--tls-privkey", str(files["h323plus.key"]), "--tls-listenport", str(tls_port)]


def test_vcore_calls_h323plus_over_mutual_tls(tmp_path: Path) -> None:
    from vcore import pki

    simph323 = _simph323()
    files = _tls_files(tmp_path)
    tls_port = _free_port()
    args = [simph323, "-l", "-a", "-n", "-S", "-f", "-i", "127.0.0.1", "-x", str(_free_port()), "-u", "h323plus"]
    proc = subprocess.Popen(args + _tls_args(files, tls_port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def scenario() -> None:
        await _wait_listening(tls_port)
        ctx = pki.client_context(pki.Identity.load(files["kiosk-1"]), files["ca"], files["crl"])
        config = SignallingConfig("kiosk-1", policy=MediaPolicy(DEFAULT_FORMATS, allow_plaintext=True))
        call = await place_call("127.0.0.1", tls_port, config, MEDIA, ssl_context=ctx, expected_name="h323plus")
        connected = await call.wait_connected(15)
        assert connected.fast_connect and call.security()["signalling"] == "tls" and call.peer_name == "h323plus"
        await call.hangup()

    _run_beside(proc, scenario())


def test_h323plus_calls_vcore_over_mutual_tls(tmp_path: Path) -> None:
    from vcore import pki

    simph323 = _simph323()
    files = _tls_files(tmp_path)

    async def scenario() -> None:
        ctx = pki.server_context(pki.Identity.load(files["agent-1"]), files["ca"], files["crl"])
        config = SignallingConfig("agent-1", policy=MediaPolicy(DEFAULT_FORMATS, allow_plaintext=True),
                                  allow_list=frozenset({"h323plus"}))
        async with SignallingListener(config, ctx) as listener:
            args = [simph323, "-n", "-S", "-f", "-i", "127.0.0.1", "-x", str(_free_port()), "-u", "h323plus",
                    *_tls_args(files, _free_port()), f"h323s:127.0.0.1:{listener.port}"]
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                incoming = await listener.accept(20)
                assert incoming.peer_name == "h323plus" and incoming.signalling_encrypted
                channels = await incoming.answer(MEDIA)
                assert {c.direction for c in channels} == {"send", "receive"}
                await incoming.hangup()
            finally:
                proc.terminate()
                proc.wait(10)

    asyncio.run(scenario())


# --------------------------------------------------------------------------- through a GnuGk gatekeeper

GNUGK_CONFIG = """\
[Gatekeeper::Main]
Name=vcoreTestGK
Home=127.0.0.1
UnicastRasPort={ras}
UseMulticastListener=0
MulticastPort=0
EndpointSignalPort={signal}
CallSignalPort={signal}
StatusPort={status}
TimeToLive=2

{routing}
[Gatekeeper::Auth]
default=allow
"""


GNUGK_MODES = {
    "direct": "[RoutedMode]\nGKRouted=0\nH245Routed=0\n",
    "routed": "[RoutedMode]\nGKRouted=1\nH245Routed=0\n",
    "proxy": "[RoutedMode]\nGKRouted=1\nH245Routed=1\n[Proxy]\nEnable=1\n",
}


def _gnugk(tmp_path: Path, mode: str = "direct") -> tuple[subprocess.Popen[bytes], int]:
    path = os.environ.get("VCORE_GNUGK")
    if not path or not Path(path).is_file():
        pytest.skip("VCORE_GNUGK does not name a locally built GnuGk gatekeeper (none is packaged here)")
    ras = _free_port()
    config = tmp_path / "gnugk.ini"
    config.write_text(GNUGK_CONFIG.format(ras=ras, signal=_free_port(), status=_free_port(),
                                          routing=GNUGK_MODES[mode]))
    proc = subprocess.Popen([path, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, ras


def test_call_by_alias_through_gnugk(tmp_path: Path) -> None:
    from vcore.h323 import RasClient, RasRejected

    proc, ras_port = _gnugk(tmp_path)

    async def scenario() -> None:
        gk = A("127.0.0.1", ras_port)
        async with SignallingListener(_config("agent-7")) as listener:
            agent_address = A("127.0.0.1", listener.port)
            async with RasClient(gk, agent_address, ["agent-7"], timeout=1.0, retries=5) as agent_ras, \
                    RasClient(gk, A("127.0.0.1", 1), ["kiosk-7"], timeout=1.0, retries=5) as kiosk_ras:
                assert await agent_ras.discover() == "vcoreTestGK"
                await kiosk_ras.discover()
                assert (await agent_ras.register(time_to_live=2)).gatekeeper_id == "vcoreTestGK"
                await kiosk_ras.register(time_to_live=2)
                await asyncio.sleep(2.5)  # outlive the time to live: only the keep-alive RRQs keep us registered
                call_id, conf_id = os.urandom(16), os.urandom(16)
                with pytest.raises(RasRejected):
                    await kiosk_ras.admit(call_id=call_id, conference_id=conf_id, call_reference=1,
                                          destination=["nobody-here"])
                target = await kiosk_ras.admit(call_id=call_id, conference_id=conf_id, call_reference=1,
                                               destination=["agent-7"])
                assert target == agent_address  # the gatekeeper resolved the alias
                call = await place_call(target.host, target.port, _config("kiosk-7"), MEDIA,
                                        destination=["agent-7"])
                incoming = await listener.accept(10)
                await agent_ras.admit(call_id=incoming.call_id, conference_id=incoming.conference_id,
                                      call_reference=incoming.call_reference, answer=True)
                await incoming.answer(MEDIA)
                await call.wait_connected(10)
                await call.hangup()
                await kiosk_ras.disengage(call_id=call_id, conference_id=conf_id, call_reference=1, answered=False)
                await agent_ras.disengage(call_id=incoming.call_id, conference_id=incoming.conference_id,
                                          call_reference=incoming.call_reference, answered=True)
                await incoming.close()
                await kiosk_ras.unregister()
                await agent_ras.unregister()

    _run_beside(proc, scenario())


def _media_terminal(name: str, **kw: Any) -> Any:
    import vcore
    from vcore.media import TestPattern, Tone

    return vcore.Terminal(name, video=lambda: TestPattern(320, 240, 15), audio=lambda: Tone(sample_rate=8000),
                          bitrate=300_000, encoder="libx264", **kw)


async def _media_flows(call: Any, streams: tuple[str, ...] = ("audio", "video")) -> None:
    """Until every stream of ``streams`` has decoded frames from the peer (fails after 10 s)."""
    for _ in range(200):
        stats = call.stats()
        if all((s := stats.stream(k, "receive")) is not None and s.frames > 0 for k in streams):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no media from the peer: {call.stats()}")


@pytest.mark.parametrize("mode", ["direct", "routed", "proxy"])
def test_terminals_call_by_alias_through_gnugk(tmp_path: Path, mode: str) -> None:
    """Terminal(gatekeeper=): both register, the kiosk calls h323:caf-agent, media flows both ways.

    Direct mode over TLS + SRTP; GnuGk's routed and proxy modes route plaintext H.225.0 (the proxy also
    relays RTP/RTCP, rewriting the announced addresses), so those run with plaintext signalling.
    """
    from tests.call_helpers import make_pki

    proc, ras_port = _gnugk(tmp_path, mode)
    pki_dir = make_pki(tmp_path / "pki")
    tls = mode == "direct"

    def secure(name: str) -> dict[str, Any]:
        if not tls:
            return {"allow_plaintext": True}
        return {"identity": pki_dir / f"{name}.pem", "trust": [pki_dir / "ca" / "ca.cert.pem"]}

    async def scenario() -> None:
        where = f"127.0.0.1:{ras_port}"
        agent = _media_terminal("CAF agent", auto_answer=True, gatekeeper=where, aliases=["caf-agent"],
                                **secure("CAF agent"))
        kiosk = _media_terminal("Murat kiosk", listen=False, gatekeeper=where,
                                **secure("Murat kiosk"))
        async with agent, kiosk:
            call = await kiosk.call("h323:caf-agent")
            await asyncio.wait_for(call.connected, 10)
            await _media_flows(call)
            await _media_flows(agent.calls[0])
            assert call.stats().signalling == ("tls" if tls else "plaintext")
            await call.hangup()

    _run_beside(proc, scenario())


def test_terminal_media_with_h323plus() -> None:
    """A vcore Terminal and H323Plus exchange G.711 both ways (H323Plus sends what its Null Audio reads)."""
    simph323 = _simph323()
    port = _free_port()
    proc = subprocess.Popen([simph323, "-l", "-a", "-n", "-S", "-f", "-i", "127.0.0.1", "-x", str(port),
                             "-u", "h323plus"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    async def scenario() -> None:
        await _wait_listening(port)
        async with _media_terminal("kiosk", listen=False, allow_plaintext=True) as kiosk:
            call = await kiosk.call(f"h323:h323plus@127.0.0.1:{port}")
            await asyncio.wait_for(call.connected, 15)
            await _media_flows(call, ("audio",))
            sent = call.stats().stream("audio", "send")
            assert sent is not None and sent.packets > 0 and sent.codec in ("PCMU", "PCMA")
            received = call.stats().stream("audio", "receive")
            assert received is not None and received.dropped == 0
            await call.hangup()

    _run_beside(proc, scenario())


def test_tls_terminal_through_routed_gnugk_says_why_it_fails(tmp_path: Path) -> None:
    """GnuGk in routed mode takes the Setup itself, in plaintext: a TLS terminal gets a reason, not a mystery."""
    from tests.call_helpers import make_pki
    from vcore.call import CallFailed

    proc, ras_port = _gnugk(tmp_path, "routed")
    pki_dir = make_pki(tmp_path / "pki")

    async def scenario() -> None:
        kiosk = _media_terminal("Murat kiosk", listen=False, gatekeeper=f"127.0.0.1:{ras_port}",
                                identity=pki_dir / "Murat kiosk.pem", trust=[pki_dir / "ca" / "ca.cert.pem"])
        agent = _media_terminal("CAF agent", auto_answer=True, gatekeeper=f"127.0.0.1:{ras_port}",
                                aliases=["caf-agent"], identity=pki_dir / "CAF agent.pem",
                                trust=[pki_dir / "ca" / "ca.cert.pem"])
        async with agent, kiosk:
            with pytest.raises(CallFailed, match="gatekeeper-routed call"):
                await kiosk.call("h323:caf-agent")

    _run_beside(proc, scenario())


# --------------------------------------------------------------------------- media as H323Plus sees it

# what H323Plus 1.28 logs (trace level 2) when the media it receives is not what was signalled
_PEER_COMPLAINTS = ("ignored, expecting SSRC", "Unknown control payload type", "illegal payload type",
                    "Resetting expected payload type", "Auto switching to SSRC")


# s of media before hanging up. H323Plus 1.28 sends RTCP every 12 s (its reportTimeInterval) and its report
# blocks always carry LSR = DLSR = 0 (rtp.cxx, AddReceiverReport), so no RTT can be measured from them
# (RFC 3550 §6.4.1) however long the call: the check below is on what H323Plus counted instead.
_REPORTS = 4.0


def _peer_report(log: Path) -> tuple[list[str], dict[str, int]]:
    """H323Plus's complaints about our media, and its final RTP statistics of the audio session (session 1)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    complaints = [line for line in text.splitlines() if any(c in line for c in _PEER_COMPLAINTS)]
    stats: dict[str, int] = {}
    marker = "RTP\tFinal statistics: Session 1"
    if marker in text:
        for line in text.split(marker, 1)[1].splitlines()[1:12]:
            key, _, value = line.strip().partition("=")
            if value.strip().lstrip("-").isdigit():
                stats[key.strip()] = int(value)
    return complaints, stats


async def _wait_for_file(path: Path, needle: str, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        await asyncio.sleep(0.1)


def _check_media_both_ways(stats: Any, log: Path) -> None:
    complaints, peer = _peer_report(log)
    assert complaints == [], complaints[:5]
    sent = stats.stream("audio", "send")
    received = stats.stream("audio", "receive")
    assert sent is not None and received is not None and sent.packets > 50 and received.packets > 50
    # the peer counted what we sent (a few may still be in flight at hang-up), and we what it sent
    assert peer.get("packetsReceived", 0) >= 0.9 * sent.packets, (peer, sent.packets)
    assert peer.get("packetsSent", 0) >= received.packets > 0.9 * peer.get("packetsSent", 0), (peer, received)
    assert received.dropped == 0 and peer.get("packetsLost", 0) == 0


@pytest.mark.parametrize("mode", ["fast-connect", "h245-tunnelled", "h245-separate", "fast-connect-separate"])
def test_terminal_media_both_ways_with_h323plus(mode: str, tmp_path: Path) -> None:
    """vcore calls H323Plus: G.711 both ways that H323Plus accepts without one SSRC or payload complaint.

    ``h245-separate``: H323Plus with tunnelling off (``-T``) and no Fast Connect, so every channel opens over
    a separate H.245 connection.
    """
    simph323 = _simph323()
    port = _free_port()
    log = tmp_path / "simph323.log"
    flags = {"fast-connect": ["-f"], "h245-tunnelled": [], "h245-separate": ["-T"],
             "fast-connect-separate": ["-f", "-T"]}[mode]
    proc = subprocess.Popen([simph323, "-l", "-a", "-n", "-S", "-i", "127.0.0.1", "-x", str(port), "-u", "h323plus",
                             "-t", "-t", "-o", str(log), *flags], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def scenario() -> None:
        await _wait_listening(port)
        async with _media_terminal("kiosk", listen=False, allow_plaintext=True) as kiosk:
            call = await kiosk.call(f"h323:h323plus@127.0.0.1:{port}")
            await asyncio.wait_for(call.connected, 15)
            await _media_flows(call, ("audio",))
            await asyncio.sleep(_REPORTS)
            stats = call.stats()
            await call.hangup()
            await _wait_for_file(log, "Final statistics: Session 1")
            _check_media_both_ways(stats, log)

    _run_beside(proc, scenario())


@pytest.mark.parametrize("flags", [["-T"], ["-T", "-f"]], ids=["separate-h245", "separate-h245-fast-connect"])
def test_h323plus_without_tunnelling_calls_vcore(flags: list[str], tmp_path: Path) -> None:
    """H323Plus calls with ``h245Tunnelling FALSE``: vcore follows it onto a separate H.245 connection."""
    simph323 = _simph323()
    log = tmp_path / "simph323.log"

    async def scenario() -> None:
        async with _media_terminal("agent", auto_answer=True, allow_plaintext=True) as agent:
            proc = subprocess.Popen([simph323, "-n", "-S", "-i", "127.0.0.1", "-x", str(_free_port()), "-u",
                                     "h323plus", "-t", "-t", "-o", str(log), *flags,
                                     f"agent@127.0.0.1:{agent.port}"], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for _ in range(150):
                    if agent.calls:
                        break
                    await asyncio.sleep(0.1)
                call = agent.calls[0]
                await asyncio.wait_for(call.connected, 15)
                await _media_flows(call, ("audio",))
                await asyncio.sleep(_REPORTS)
                stats = call.stats()
                await call.hangup()
                await _wait_for_file(log, "Final statistics: Session 1")
                _check_media_both_ways(stats, log)
            finally:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)

    asyncio.run(scenario())
