"""The screens of a station: the resident's kiosk and the agent's console (pygame-ce / SDL2).

An application of the library like the CLI (``vcore kiosk``, ``vcore agent``):
:mod:`~vcore.ui.kiosk` and :mod:`~vcore.ui.agent` are the controllers and their
drawings, :mod:`~vcore.ui.render` the screen thread, :mod:`~vcore.ui.video`
the path from decoded frames to the screen, :mod:`~vcore.ui.strings` every text
in French and English. See ``docs/screens.md``.

A kiosk app in a few lines (``examples/kiosk_screen.py`` is the whole of it)::

    remote, local = FrameSlot(), FrameSlot((320, 180))
    terminal = vcore.Terminal(name, video=lambda: SelfView(camera(), local), video_sink=lambda: remote,
                              directory=cards, listen=False, identity=..., trust=[...])
    kiosk = KioskScreen(terminal, cards, Strings("fr"), remote=remote, local=local)
    screen = Screen(kiosk.draw, kiosk.on_input, loop, version=kiosk.version, slots=(remote, local))
    await screen.open(); await kiosk.run(stop); screen.close()

The controllers, the screen and the ringer load the call layer and pygame on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .strings import LANGUAGES, Strings
from .video import DisplayStats, FrameSlot, SelfView

if TYPE_CHECKING:
    from .agent import AgentConsole, AgentView, LogEntry
    from .kiosk import KioskScreen, KioskView
    from .recording import CallRecorder
    from .render import Input, Painter, Screen
    from .sound import Ringer

_LAZY = {
    "KioskScreen": "vcore.ui.kiosk",
    "KioskView": "vcore.ui.kiosk",
    "AgentConsole": "vcore.ui.agent",
    "AgentView": "vcore.ui.agent",
    "LogEntry": "vcore.ui.agent",
    "Screen": "vcore.ui.render",
    "Painter": "vcore.ui.render",
    "Input": "vcore.ui.render",
    "Ringer": "vcore.ui.sound",
    "CallRecorder": "vcore.ui.recording",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vcore.ui' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Strings",
    "LANGUAGES",
    "FrameSlot",
    "SelfView",
    "DisplayStats",
    "KioskScreen",
    "KioskView",
    "AgentConsole",
    "AgentView",
    "LogEntry",
    "Screen",
    "Painter",
    "Input",
    "Ringer",
    "CallRecorder",
]
