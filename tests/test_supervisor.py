"""Every task has an owner that logs its failure and ends what depends on it (issue 14, finding 8)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from vcore.supervisor import Supervisor

from .call_helpers import T, make_pki, run, terminal, until


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_a_failing_task_is_logged_reported_once_and_the_rest_closed(caplog: pytest.LogCaptureFixture) -> None:
    failures: list[tuple[str, str]] = []

    async def boom() -> None:
        await asyncio.sleep(0)
        raise ZeroDivisionError("bug")

    async def forever() -> None:
        await asyncio.sleep(3600)

    async def scenario() -> None:
        sup = Supervisor("call 7", on_failure=lambda name, exc: failures.append((name, repr(exc))))
        sup.spawn(forever(), "media watch")
        failing = sup.spawn(boom(), "user input")
        with caplog.at_level(logging.ERROR, logger="vcore.supervisor"):
            await asyncio.wait([failing])
            await asyncio.sleep(0)
        assert failures == [("call 7: user input", "ZeroDivisionError('bug')")]
        assert sup.failure is not None and sup.failure[0] == "call 7: user input"
        assert sup.names() == ["call 7: media watch"] and len(sup) == 1
        assert "call 7: user input failed" in caplog.text and "ZeroDivisionError: bug" in caplog.text  # traceback
        await sup.aclose()
        assert len(sup) == 0 and sup.closed
        await sup.aclose()  # idempotent
        coro = forever()
        with pytest.raises(RuntimeError, match="supervisor closed"):
            sup.spawn(coro, "late")

    run(scenario())


def test_aclose_skips_its_caller_and_bounds_a_stubborn_task(caplog: pytest.LogCaptureFixture) -> None:
    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await asyncio.sleep(0.3)  # ignores the first cancellation for a while
                return

    async def scenario() -> None:
        sup = Supervisor("terminal x")

        async def closer() -> str:
            await sup.aclose(timeout=0.05)
            return "closed"

        sup.spawn(stubborn(), "stubborn")
        own = sup.spawn(closer(), "closer")
        with caplog.at_level(logging.ERROR, logger="vcore.supervisor"):
            assert await own == "closed"  # it did not cancel itself
        assert "did not end within 0.05 s" in caplog.text
        await asyncio.sleep(0.4)  # the stubborn task ends by itself
        assert len(sup) == 0

    run(scenario())


def test_a_failing_failure_handler_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def handler(name: str, exc: BaseException) -> None:
        raise RuntimeError("handler bug")

    async def boom() -> None:
        raise ValueError("task bug")

    async def scenario() -> None:
        sup = Supervisor("listener", on_failure=handler)
        with caplog.at_level(logging.ERROR, logger="vcore.supervisor"):
            task = sup.spawn(boom(), "connection")
            await asyncio.wait([task])
            await asyncio.sleep(0)
        assert "handling the failure of listener: connection failed" in caplog.text
        await sup.aclose()

    run(scenario())


class _BrokenCamera:
    """A camera driver with a bug (not a VISCA error): what a failing call task looks like."""

    async def preset_recall(self, preset: int) -> None:
        raise ZeroDivisionError("driver bug")


def test_a_failing_call_task_ends_the_call_with_its_cause(pki_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Before: such a failure was lost (no log, no end); now: logged with its traceback, call ends internal-error."""
    async def scenario() -> None:
        agent = terminal(pki_dir, "CAF agent", auto_answer=True)
        kiosk = terminal(pki_dir, "Murat kiosk", listen=False, camera=_BrokenCamera(), remote_camera=True)
        async with agent, kiosk:
            call = await kiosk.call(agent.uri)
            await asyncio.wait_for(call.connected, T)
            answered = agent.calls[0]
            with caplog.at_level(logging.ERROR):
                await answered.remote_camera_preset(1)
                ended = await until(call, "ended")
            assert ended.reason == "internal-error" and "user input" in ended.detail, ended
            assert "ZeroDivisionError: driver bug" in caplog.text
            peer_end = await answered.wait_ended(T)
            assert peer_end.by_peer
            # the station is fine afterwards: the next call works
            again = await kiosk.call(agent.uri)
            await asyncio.wait_for(again.connected, T)
            await again.hangup()

    run(scenario())


def test_cancel_and_wait_ends_the_task_and_keeps_its_other_errors() -> None:
    import asyncio

    import pytest

    from vcore.supervisor import cancel_and_wait

    async def main() -> None:
        ended = asyncio.Event()

        async def forever() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                ended.set()

        task = asyncio.create_task(forever())
        await asyncio.sleep(0)
        await cancel_and_wait(task)  # its cancellation is not re-raised
        assert task.cancelled() and ended.is_set()

        async def fails_on_cancel() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise RuntimeError("cleanup failed") from None

        task = asyncio.create_task(fails_on_cancel())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="cleanup failed"):
            await cancel_and_wait(task)

    asyncio.run(main())
