"""On-screen display and speaker output: optional extras the core never imports.

``VideoWindow`` shows frames with SDL2 through pygame (an optional extra:
constructing one without pygame raises :class:`MediaError` saying what to
install); ``Speaker`` is :class:`vcore.media.sinks.Speaker`, re-exported here.
Both are sinks (``write(frame)``, ``close()``) and may be written from one
thread at a time (the decode thread); SDL wants its window used from the thread
that made it, so a ``VideoWindow`` opens lazily on its first frame.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from av.video.frame import VideoFrame

from .errors import MediaError

_log = logging.getLogger(__name__)

__all__ = ["VideoWindow", "Speaker"]


def _require(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MediaError(f"{module} is not installed: pip install {extra}") from exc


class VideoWindow:
    """A window showing each frame written to it (pygame/SDL2); closing the window stops showing."""

    def __init__(self, title: str = "vcore") -> None:
        self._pygame: Any = _require("pygame", "pygame")
        self.title = title
        self._screen: Any = None
        self.closed = False

    def write(self, frame: VideoFrame) -> None:
        if self.closed:
            return
        pg = self._pygame
        if self._screen is None:
            pg.display.init()
            self._screen = pg.display.set_mode((frame.width, frame.height))
            pg.display.set_caption(self.title)
        for event in pg.event.get():
            if event.type == pg.QUIT:
                self.close()
                return
        rgb = frame.to_ndarray(format="rgb24")
        surface = pg.surfarray.make_surface(rgb.swapaxes(0, 1))
        if surface.get_size() != self._screen.get_size():
            surface = pg.transform.scale(surface, self._screen.get_size())
        self._screen.blit(surface, (0, 0))
        pg.display.flip()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._screen is not None:
                self._pygame.display.quit()


from .sinks import Speaker  # noqa: E402  (one speaker: the non-blocking one in sinks)
