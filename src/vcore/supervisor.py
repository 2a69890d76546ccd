"""Task supervision: every asyncio task a component starts is owned, named, logged when it fails, and ended.

A :class:`Supervisor` is what ``asyncio.TaskGroup`` is for a block of code,
for an object that lives longer than one block (a call, a terminal, a
listener): it starts named tasks (:meth:`Supervisor.spawn`), and when one
fails with an exception it

- logs the exception with its traceback, naming the owner and the task;
- remembers the first failure (:attr:`Supervisor.failure`);
- calls ``on_failure(name, exc)`` once per failed task, so the owner ends
  what depends on it (a call hangs up with cause ``internal-error``).

Unlike a ``TaskGroup`` it does not cancel the other tasks on its own: the
owner decides (hanging up a call still needs the signalling task).
:meth:`Supervisor.aclose` cancels every task still running and waits for
them, from a ``finally`` or a ``close()``; the task calling it is skipped, so
a task may close its own supervisor. After ``aclose`` no task can be started
(:class:`RuntimeError`: a bug, not a peer's doing).

Use from one event loop; not thread-safe (from a thread, go through
``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Supervisor", "cancel_and_wait"]

log = logging.getLogger(__name__)


class Supervisor:
    """Owns a set of asyncio tasks (see the module docstring).

    ``owner``: how log lines name the owner (``"call kiosk-1"``);
    ``on_failure``: called with the task's name and exception when a task fails
    (not when it is cancelled); its own exceptions are logged and dropped.
    """

    def __init__(self, owner: str, on_failure: Callable[[str, BaseException], None] | None = None) -> None:
        self.owner = owner
        self._on_failure = on_failure
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.failure: tuple[str, BaseException] | None = None
        """The first task that failed, and its exception (None while none did)."""

    def __repr__(self) -> str:
        return f"<Supervisor {self.owner!r}: {len(self._tasks)} task(s){', closed' if self._closed else ''}>"

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        return self._closed

    def names(self) -> list[str]:
        """The names of the tasks still running (for tests and diagnostics)."""
        return sorted(t.get_name() for t in self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start ``coro`` as a task named ``name`` (prefixed with the owner) under this supervisor."""
        if self._closed:
            coro.close()  # never awaited: close it so Python does not warn
            raise RuntimeError(f"{self.owner}: supervisor closed, cannot start {name}")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.owner}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here: asyncio never logs "exception was never retrieved"
        if exc is None:
            return
        log.error("%s failed", task.get_name(), exc_info=exc)
        if self.failure is None:
            self.failure = (task.get_name(), exc)
        if self._on_failure is not None and not self._closed:
            try:
                self._on_failure(task.get_name(), exc)
            except Exception:
                log.exception("%s: handling the failure of %s failed", self.owner, task.get_name())

    async def aclose(self, timeout: float | None = 5.0) -> None:
        """Cancel every task still running (but the caller) and wait for them, at most ``timeout`` seconds.

        Idempotent. A task that ignores its cancellation past ``timeout`` is logged and left behind.
        """
        self._closed = True
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current and not t.done()]
        for t in tasks:
            t.cancel()
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for t in pending:
            log.error("%s: task %s did not end within %s s of its cancellation", self.owner, t.get_name(), timeout)
        for t in done:  # retrieve outcomes: a failure during cancellation was logged by _done
            if not t.cancelled():
                t.exception()


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it has ended; its cancellation is not re-raised (its other errors are)."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
