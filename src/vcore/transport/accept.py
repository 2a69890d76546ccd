"""Accepting a signalling connection paused: the listener sets up TLS (or plain streams) on it first.

Shared by the H.323 (:mod:`vcore.h323.listener`) and SIP (:mod:`vcore.sip.transport`)
listeners. Runs on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["PausedAccept"]


class PausedAccept(asyncio.Protocol):
    """Pauses each fresh connection and hands it to ``on_accept`` (``loop.create_server(lambda: PausedAccept(f))``)."""

    def __init__(self, on_accept: Callable[[asyncio.Transport], None]) -> None:
        self._on_accept = on_accept

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self._on_accept(transport)
