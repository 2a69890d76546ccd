"""The state both screens share: an immutable view replaced on every change, and its version.

The screen thread redraws when :meth:`ViewState.version` moves and reads
:attr:`ViewState.view` (an immutable dataclass, so reading it from another
thread is safe); the controller changes it on the event loop with ``_set``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["ViewState"]


class _HasState(Protocol):
    @property
    def state(self) -> str: ...


V = TypeVar("V", bound=_HasState)


class ViewState(Generic[V]):
    """A controller's current view (``V``, a frozen dataclass with a ``state`` field) and its change count."""

    def __init__(self, view: V, on_state: Callable[[str, V], None] | None) -> None:
        self._view = view
        self._version = 0
        self._on_state = on_state

    @property
    def view(self) -> V:
        """What the screen shows now (immutable; replaced on every change)."""
        return self._view

    def version(self) -> int:
        """Bumped on every change of :attr:`view` (the screen redraws at once)."""
        return self._version

    def _set(self, **changes: Any) -> None:
        old = self._view
        self._view = replace(old, **changes)  # type: ignore[type-var]
        self._version += 1
        if self._view.state != old.state and self._on_state is not None:
            self._on_state(self._view.state, self._view)
