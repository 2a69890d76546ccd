"""The calls a terminal is offered: taken from its listeners, and kept for :meth:`Terminal.incoming`.

:func:`accept_calls` is the accept loop of one listener (H.323 or SIP): each
session it accepts is handed to the terminal (which refuses it busy, rings or
answers it); a failure to offer one call is logged and the loop goes on
answering. :class:`OfferedCalls` is the bounded backlog of offered calls that
:meth:`Terminal.incoming` reads: calls that ended before anyone read them are
forgotten, and when nobody reads at all only the newest are kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from ..callcontrol import CallControl
from ..errors import VcoreError
from ..h323.q931 import Cause
from .incoming import IncomingCall

__all__ = ["OfferedCalls", "accept_calls"]

log = logging.getLogger(__name__)


async def accept_calls(accept: Callable[[], Awaitable[CallControl]], offer: Callable[[CallControl], Awaitable[None]],
                       what: str, who: Callable[[CallControl], object]) -> None:
    """Accept sessions forever and ``offer`` each; ``what`` (``"call"``, ``"SIP call"``) and ``who`` (the
    caller's name in the log) say which failed. A vcore bug in offering one call must not stop a station
    answering: it is logged with its traceback and the call refused."""
    while True:
        session = await accept()
        try:
            await offer(session)
        except (VcoreError, OSError) as exc:
            log.warning("incoming %s from %s failed: %s", what, who(session), exc)
        except Exception:  # log, refuse, go on answering
            log.exception("incoming %s from %s: unexpected failure", what, who(session))
            await session.hangup("undefinedReason", Cause.TEMPORARY_FAILURE)


class OfferedCalls:
    """The offered calls :meth:`Terminal.incoming` has not read yet."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[IncomingCall | None] = asyncio.Queue()

    async def put(self, incoming: IncomingCall, backlog: int) -> None:
        """Keep an offered call: ended ones are forgotten first, then the oldest beyond ``backlog``."""
        self._prune()
        while self._queue.qsize() >= backlog:  # nobody reads incoming(): keep the newest
            dropped = self._queue.get_nowait()
            log.debug("incoming() backlog full: forgetting %r", dropped)
        await self._queue.put(incoming)

    async def close(self) -> None:
        """End every reader's iteration (after the calls already kept)."""
        await self._queue.put(None)

    async def calls(self) -> AsyncIterator[IncomingCall]:
        """The offered calls, as they come; ends after :meth:`close`."""
        while True:
            item = await self._queue.get()
            if item is None:
                await self._queue.put(None)  # other iterators end too
                return
            yield item

    def _prune(self) -> None:
        """Forget offered calls that ended before anyone read them (an auto-answering station nobody iterates)."""
        kept: list[IncomingCall | None] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            gone = item is not None and (item.call.ended is not None if item.call is not None
                                         else item._session.released is not None)
            if not gone:
                kept.append(item)
        for item in kept:
            self._queue.put_nowait(item)
