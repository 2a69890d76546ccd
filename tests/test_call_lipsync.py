"""Lip sync in a call: when the pictures reach their sink later than the sound, the sound is held back to match."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from .call_helpers import T, make_pki, run, terminal, until, wait_for

VIDEO_HOLD = 0.16  # s: the video jitter buffers of these tests hold every frame at least this long


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def slow_video(monkeypatch: pytest.MonkeyPatch) -> None:
    """A late picture path: the calls' video jitter buffers hold frames for VIDEO_HOLD."""
    import vcore.jitter

    class HeldVideo(vcore.jitter.VideoJitterBuffer):
        def __init__(self, *args: Any, **kw: Any) -> None:
            kw["min_delay"] = VIDEO_HOLD
            super().__init__(*args, **kw)

    monkeypatch.setattr(vcore.jitter, "VideoJitterBuffer", HeldVideo)


def _in_a_call(pki_dir: Path, lip_sync: bool, check: Any) -> None:
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True, allow=["Murat kiosk"], rtcp_interval=0.2)
        kiosk = terminal(pki_dir, "Murat kiosk", rtcp_interval=0.2, lip_sync=lip_sync)
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            await until(call, "media-started")
            await check(call)
            await call.hangup()

    run(scenario())


def test_sound_waits_for_late_pictures(pki_dir: Path) -> None:
    async def check(call: Any) -> None:
        # the sound is held back by about the pictures' extra delay, a 20 ms step at a time ...
        await wait_for(lambda: call.stats().lip_sync_delay > VIDEO_HOLD - 0.06, timeout=3 * T)
        # ... until pictures and sound reach their sinks together (the 15 ms dead band + a frame)
        await wait_for(lambda: abs(call.stats().lip_sync or 1.0) < 0.045, timeout=3 * T)
        stats = call.stats()
        assert stats.lip_sync_delay <= VIDEO_HOLD + 0.06
        audio_in = stats.stream("audio", "receive")
        assert audio_in is not None and audio_in.playout_delay is not None
        assert audio_in.playout_delay > VIDEO_HOLD - 0.06  # the audio buffer really runs longer

    _in_a_call(pki_dir, True, check)


def test_lip_sync_off_leaves_the_sound_alone(pki_dir: Path) -> None:
    async def check(call: Any) -> None:
        # the skew is measured (pictures late by about VIDEO_HOLD) but nothing is held back
        await wait_for(lambda: (call.stats().lip_sync or 0.0) > VIDEO_HOLD - 0.06, timeout=3 * T)
        await asyncio.sleep(1.0)
        assert call.stats().lip_sync_delay == 0.0

    _in_a_call(pki_dir, False, check)
