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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


async def _receive_channels(session, want: int) -> list:  # type: ignore[no-untyped-def]
    opened = []
    while len(opened) < want:
        event = await session.next_event(10)
        assert not isinstance(event, Released), event
        if isinstance(event, ChannelOpened):
            opened.append(event.channel)
    return opened


@pytest.mark.parametrize("fast", [True, False], ids=["fast-connect", "h245-procedures"])
def test_vcore_calls_h323plus(fast: bool, tmp_path: Path) -> None:
    simph323 = _simph323()
    port = _free_port()
    args = [simph323, "-l", "-a", "-n", "-S", "-i", "127.0.0.1", "-x", str(port), "-u", "h323plus"]
    proc = subprocess.Popen(args + (["-f"] if fast else []), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

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
        await call.hangup()

    try:
        asyncio.run(scenario())
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("fast", [True, False], ids=["fast-connect", "h245-procedures"])
def test_h323plus_calls_vcore(fast: bool) -> None:
    simph323 = _simph323()

    async def scenario() -> None:
        async with SignallingListener(_config("agent")) as listener:
            args = [simph323, "-n", "-S", "-i", "127.0.0.1", "-x", str(_free_port()), "-u", "h323plus"]
            proc = subprocess.Popen(args + (["-f"] if fast else []) + [f"agent@127.0.0.1:{listener.port}"],
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
