"""On-screen display and speaker output: optional extras the core never imports.

``VideoWindow`` shows frames with SDL2 through pygame; ``Speaker`` plays audio
frames through sounddevice (PortAudio). Neither package is a vcore dependency:
constructing one without its package raises :class:`MediaError` saying what to
install. Both are sinks (``write(frame)``, ``close()``) and may be written from
one thread at a time (the decode thread); SDL wants its window used from the
thread that made it, so a ``VideoWindow`` opens lazily on its first frame.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from av.audio.frame import AudioFrame
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


class Speaker:
    """Plays mono s16 audio frames on the default output device (sounddevice)."""

    def __init__(self, sample_rate: int = 48000, *, latency: str = "low") -> None:
        sd: Any = _require("sounddevice", "sounddevice")
        from av.audio.resampler import AudioResampler

        self.sample_rate = sample_rate
        self._resampler = AudioResampler(format="s16", layout="mono", rate=sample_rate)
        try:
            self._stream = sd.RawOutputStream(samplerate=sample_rate, channels=1, dtype="int16", latency=latency)
            self._stream.start()
        except Exception as exc:
            raise MediaError(f"cannot open the speaker: {exc}") from exc

    def write(self, frame: AudioFrame) -> None:
        for f in self._resampler.resample(frame):
            self._stream.write(f.to_ndarray().tobytes())

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()
