"""Shared pieces of the call tests: a small PKI, small sources, a runner that checks for leftovers."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Awaitable

from vcore import pki

T = 10.0  # generous bound for one step on a loaded machine; tests never assert on time
W, H, FPS = 320, 240, 15.0


def make_pki(base: Path) -> Path:
    ca = pki.CertificateAuthority.init(base / "ca", "Office CA")
    other = pki.CertificateAuthority.init(base / "other", "Someone else's CA")
    ca.issue("Murat kiosk", role="kiosk").save(base / "Murat kiosk.pem")
    ca.issue("CAF agent", role="agent", aliases=["caf-agent", "3301"]).save(base / "CAF agent.pem")
    ca.issue("stranger", role="kiosk").save(base / "stranger.pem")
    ca.issue("Other kiosk", role="kiosk").save(base / "Other kiosk.pem")  # a second kiosk: may not answer as an agent
    other.issue("Murat kiosk", role="kiosk").save(base / "forged.pem")
    return base


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a station started in a subprocess)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def video_frames(path: Path) -> int:
    """How many video frames a recording decodes to."""
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def sources() -> dict[str, Any]:
    from vcore.media import TestPattern, Tone

    return {"video": lambda: TestPattern(W, H, FPS), "audio": lambda: Tone(sample_rate=8000)}


def terminal(base: Path, name: str, *, pem: str | None = None, **kw: Any) -> Any:
    import vcore

    opts: dict[str, Any] = {"identity": base / f"{pem or name}.pem", "trust": [base / "ca" / "ca.cert.pem"],
                            "bitrate": 300_000, "encoder": "libx264"}
    opts.update(sources())
    opts.update(kw)
    return vcore.Terminal(name, **opts)


def run(coro: Awaitable[None], timeout: float = 90.0) -> None:
    """Run a scenario; afterwards no task of it may be left, nor any thread it started."""
    before = set(threading.enumerate())

    async def main() -> None:
        await asyncio.wait_for(coro, timeout)
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}, asyncio.all_tasks()

    asyncio.run(main())
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, left


async def until(call: Any, kind: str, timeout: float = T) -> Any:
    """The first event of ``kind`` (fails on Ended first, unless that is what is wanted)."""
    async def first() -> Any:
        async for event in call.events():
            if event.kind == kind:
                return event
            if event.kind == "ended":
                raise AssertionError(f"call ended while waiting for {kind}: {event}")
        raise AssertionError("events ended")

    return await asyncio.wait_for(first(), timeout)


async def wait_for(predicate: Any, timeout: float = T) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


_ = threading  # re-exported for tests that compare thread sets
