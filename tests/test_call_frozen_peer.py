"""A peer that freezes mid-call (SIGSTOP: no media, no TCP FIN, no TLS close_notify) does not hold the kiosk.

The kiosk sees no media for ``media_timeout`` seconds, ends the call ``media-timeout`` and hangs up; the hang-up
waits a bounded time for the frozen peer's TLS close (issue 14, finding 9: it used to wait asyncio's 30 s).
The bounds below are generous timeouts that fail the test, not measurements.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .call_helpers import make_pki, run, terminal
from .call_helpers import free_port as _free_port


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))



def test_frozen_agent_releases_the_kiosk(pki_dir: Path, tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "agent.log"
    with open(log, "w") as out:
        agent = subprocess.Popen(
            [sys.executable, "-m", "vcore", "answer", "--identity", str(pki_dir / "CAF agent.pem"),
             "--trust", str(pki_dir / "ca" / "ca.cert.pem"), "--host", "127.0.0.1", "--port", str(port),
             "--size", "160x120", "--fps", "10", "--bitrate", "100000", "--stats", "0"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while "answering calls" not in log.read_text():
            assert agent.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

        async def scenario() -> None:
            kiosk = terminal(pki_dir, "Murat kiosk", listen=False, media_timeout=2.0)
            async with kiosk:
                call = await kiosk.call(f"h323:caf-agent@127.0.0.1:{port}")
                await asyncio.wait_for(call.connected, 15)
                while (s := call.stats().stream("video", "receive")) is None or s.frames == 0:
                    await asyncio.sleep(0.05)
                os.kill(agent.pid, signal.SIGSTOP)
                ended = await asyncio.wait_for(call.wait_ended(), 12)  # 2 s of silence, then a bounded hang-up
                assert ended.reason == "media-timeout", ended
                assert not kiosk.calls

        run(scenario(), timeout=40)
    finally:
        try:
            os.kill(agent.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        agent.kill()
        agent.wait(10)
