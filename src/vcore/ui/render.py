"""The screen: a pygame (SDL2) window owned by one thread, keys and touches in, pictures and text out.

:class:`Screen` runs pygame in its own thread — SDL wants one thread for its
window, and blitting and flipping 720p pictures must not hold up the event
loop that runs the call. Each turn it reads the input (keys of a numeric
keypad or a keyboard, touches and clicks), hands it to the controller on the
asyncio loop (``loop.call_soon_threadsafe``), and redraws when a picture
arrived, the controller's view changed, or 100 ms passed (clocks, animations).
Drawing is a function of the controller's immutable view and the frame slots:
``draw(painter, now) -> Drawn``. :class:`Painter` holds the fonts and the
colours and draws text, boxes and pictures; it records the touch zones.

Full screen needs no desktop: SDL talks to the X server (or the kiosk's
framebuffer through KMS/DRM) directly. Without pygame-ce the screen cannot be
made: :class:`~vcore.media.errors.MediaError` says what to install.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..media.errors import MediaError
from .video import FrameSlot, Picture

log = logging.getLogger(__name__)

__all__ = ["Screen", "Painter", "Drawn", "Input", "Rect", "COLOURS"]

Rect = tuple[int, int, int, int]  # x, y, width, height

COLOURS = {
    "background": (18, 34, 61), "panel": (245, 246, 248), "ink": (20, 24, 32), "muted": (96, 104, 120),
    "light": (236, 240, 246), "open": (20, 140, 70), "closed": (150, 150, 158), "accent": (0, 94, 184),
    "danger": (200, 30, 40), "warning": (230, 150, 0), "black": (0, 0, 0), "white": (255, 255, 255),
}

_KEYS = {  # pygame key name -> the controllers' key
    "return": "enter", "enter": "enter", "escape": "cancel", "backspace": "cancel", "delete": "cancel",
    "up": "up", "down": "down", "left": "left", "right": "right", "+": "zoom-in", "-": "zoom-out",
    "=": "zoom-in", "page up": "zoom-in", "page down": "zoom-out", "*": "cancel", "space": "enter",
}
_IDLE_REDRAW = 0.1  # seconds between redraws when nothing changes (clock, duration, animations)


@dataclass(frozen=True)
class Input:
    """A key (``"0"``..``"9"``, ``enter``, ``cancel``, arrows, ``zoom-in``/``zoom-out``, a letter) or a zone touched."""

    key: str


@dataclass
class Drawn:
    """What one drawing showed: pictures to count as displayed after the flip, and the touch zones."""

    pictures: list[tuple[FrameSlot, Picture]] = field(default_factory=list)
    zones: list[tuple[Rect, str]] = field(default_factory=list)


_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans{}.ttf",)  # Debian fonts-dejavu-core: accents, ●, …, ·


def _font_file(pg: Any, bold: bool) -> str | None:
    """DejaVu Sans (wide coverage, legible at a distance) when installed, else pygame's own font (None)."""
    for pattern in _FONTS:
        path = pattern.format("-Bold" if bold else "")
        if os.path.exists(path):
            return path
    found = pg.font.match_font("dejavusans,notosans,liberationsans", bold=bold)
    return str(found) if found else None


def key_of(pg: Any, event: Any) -> str | None:
    """The controllers' key for a pygame KEYDOWN event, or None."""
    name = str(pg.key.name(event.key))
    if name.startswith("[") and name.endswith("]"):  # keypad: "[1]", "[+]", "[enter]"
        name = name[1:-1]
    if len(name) == 1 and name.isdigit():
        return name
    if name in _KEYS:
        return _KEYS[name]
    if len(name) == 1 and name.isalpha():
        return name.lower()
    return None


class Painter:
    """Fonts, colours and drawing on the screen's surface (screen thread only)."""

    def __init__(self, pg: Any, surface: Any) -> None:
        self.pg = pg
        self.surface = surface
        self.width, self.height = surface.get_size()
        self._fonts: dict[tuple[int, bool], Any] = {}
        self.drawn = Drawn()

    def font(self, size: int, bold: bool = False) -> Any:
        key = (max(8, size), bold)
        if key not in self._fonts:
            path = _font_file(self.pg, bold)
            f = self.pg.font.Font(path, key[0])
            if path is None:
                f.set_bold(bold)
            self._fonts[key] = f
        return self._fonts[key]

    def u(self, fraction: float) -> int:
        """A length as a fraction of the screen's height (layouts scale with the screen)."""
        return max(1, int(self.height * fraction))

    def fill(self, colour: str) -> None:
        self.surface.fill(COLOURS[colour])

    def box(self, rect: Rect, colour: str, radius: int = 0, width: int = 0) -> None:
        self.pg.draw.rect(self.surface, COLOURS[colour], rect, width, border_radius=radius)

    def circle(self, centre: tuple[int, int], radius: int, colour: str, width: int = 0) -> None:
        self.pg.draw.circle(self.surface, COLOURS[colour], centre, radius, width)

    def text(self, text: str, pos: tuple[int, int], size: float, colour: str = "white", *, bold: bool = False,
             anchor: str = "topleft", max_width: int | None = None) -> Rect:
        """Draw one line (shrunk to ``max_width`` if given); ``size`` is a fraction of the screen's height."""
        px = self.u(size)
        img = self.font(px, bold).render(text, True, COLOURS[colour])
        while max_width is not None and img.get_width() > max_width and px > 10:
            px = int(px * 0.9)
            img = self.font(px, bold).render(text, True, COLOURS[colour])
        r = img.get_rect(**{anchor: pos})
        self.surface.blit(img, r)
        return (r.x, r.y, r.w, r.h)

    def zone(self, rect: Rect, key: str) -> None:
        """Touching ``rect`` means pressing ``key``."""
        self.drawn.zones.append((rect, key))

    def picture(self, slot: FrameSlot, rect: Rect) -> bool:
        """The slot's newest picture fitted in ``rect`` (black bars); False when there is none yet."""
        x, y, w, h = rect
        slot.size = (w, h)
        fresh = slot.take()
        pic = fresh or slot.latest()
        if pic is None:
            return False
        ph, pw = pic.rgb.shape[:2]
        img = self.pg.image.frombuffer(pic.rgb, (pw, ph), "RGB")
        if (pw, ph) != (w, h):  # the slot rescales from the next frame on; meanwhile fit this one
            scale = min(w / pw, h / ph)
            img = self.pg.transform.scale(img, (max(1, int(pw * scale)), max(1, int(ph * scale))))
        self.surface.blit(img, img.get_rect(center=(x + w // 2, y + h // 2)))
        if fresh is not None:  # counted once, when it first reaches the screen
            self.drawn.pictures.append((slot, fresh))
        return True


DrawFn = Callable[[Painter, float], None]


class Screen:
    """A full-screen (or ``size``d) window drawn by ``draw`` in its own thread; input goes to ``on_input``.

    ``version()``: a number the controller bumps when its view changes (a redraw follows at once).
    ``start()`` returns once the window is open (or raises :class:`MediaError`); ``close()`` joins the thread.
    """

    def __init__(self, draw: DrawFn, on_input: Callable[[Input], None], loop: asyncio.AbstractEventLoop, *,
                 title: str = "vcore", size: tuple[int, int] | None = None,
                 version: Callable[[], int] = lambda: 0, slots: tuple[FrameSlot, ...] = (),
                 on_failure: Callable[[str], None] | None = None) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no banner on the station's output
        try:
            self._pg: Any = importlib.import_module("pygame")
        except ImportError as exc:
            raise MediaError("pygame-ce is not installed: pip install pygame-ce") from exc
        self._draw, self._on_input, self._loop = draw, on_input, loop
        self.title, self.size = title, size
        self._version, self._slots = version, slots
        self._on_failure = on_failure
        self.failure: str | None = None  # why the screen thread stopped on its own (a bug, the X server gone)
        self._stop = threading.Event()
        self._ready: concurrent.futures.Future[tuple[int, int]] = concurrent.futures.Future()
        self._shots: list[tuple[str, concurrent.futures.Future[str]]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="vcore screen", daemon=True)
        self.cpu = 0.0  # CPU seconds the screen thread spent (drawing, blitting, flipping)
        self.flips = 0
        self.screen_size = (0, 0)

    def start(self, timeout: float = 10.0) -> tuple[int, int]:
        """Open the window; its size (blocks until open: call from a thread or before the loop is busy)."""
        self._thread.start()
        try:
            self.screen_size = self._ready.result(timeout)
        except concurrent.futures.TimeoutError:
            raise MediaError(f"the screen did not open within {timeout:g} s") from None
        return self.screen_size

    async def open(self, timeout: float = 10.0) -> tuple[int, int]:
        """:meth:`start` without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, self.start, timeout)

    def cpu_seconds(self) -> float:
        """CPU time the screen thread used so far (Linux: its thread CPU clock), 0 before it runs."""
        ident = self._thread.ident
        if ident is None or not self._thread.is_alive():
            return self.cpu
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(ident))
        except (OSError, AttributeError):
            return 0.0

    def screenshot(self, path: str | os.PathLike[str]) -> concurrent.futures.Future[str]:
        """Save the next drawn screen as PNG to ``path``; the future gives the path."""
        fut: concurrent.futures.Future[str] = concurrent.futures.Future()
        with self._lock:
            self._shots.append((os.fspath(path), fut))
        return fut

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    # ------------------------------------------------------------ the screen thread

    def _open(self) -> Any:
        pg = self._pg
        pg.display.init()
        pg.font.init()
        if self.size is None:
            surface = pg.display.set_mode((0, 0), pg.FULLSCREEN | pg.NOFRAME)
        else:
            surface = pg.display.set_mode(self.size)
        pg.display.set_caption(self.title)
        pg.mouse.set_visible(self.size is not None)  # full screen: touch or keypad, no pointer
        return surface

    def _run(self) -> None:
        pg = self._pg
        t_cpu = time.thread_time()
        try:
            try:
                surface = self._open()
            except Exception as exc:  # SDL says "no available video device", "x11 not available"...
                self._ready.set_exception(MediaError(f"cannot open the screen: {exc}"))
                return
            self._ready.set_result(surface.get_size())
            self._loop_screen(pg, surface)
        except Exception as exc:  # a drawing bug or the display gone: say so, and let the station stop
            log.exception("the screen stopped")
            self.failure = f"the screen stopped: {exc!r}"
            if self._on_failure is not None:
                self._loop.call_soon_threadsafe(self._on_failure, self.failure)
        finally:
            self.cpu = time.thread_time() - t_cpu
            if pg.display.get_init():
                pg.display.quit()
            for _, fut in self._shots:
                if not fut.done():
                    fut.set_exception(MediaError("the screen closed"))

    def _loop_screen(self, pg: Any, surface: Any) -> None:
        painter = Painter(pg, surface)
        seen_version, last = -1, 0.0
        seen_serials: tuple[int, ...] = ()
        while not self._stop.is_set():
            for event in pg.event.get():
                self._input(pg, event, painter.drawn)
            now = time.monotonic()
            version = self._version()
            serials = tuple(s.serial for s in self._slots)
            if version != seen_version or serials != seen_serials or now - last >= _IDLE_REDRAW:
                seen_version, seen_serials, last = version, serials, now
                painter.drawn = Drawn()
                self._draw(painter, now)
                pg.display.flip()
                self.flips += 1
                shown = time.monotonic()
                for slot, pic in painter.drawn.pictures:
                    slot.shown(pic, shown)
                self._save_shots(pg, surface)
            else:
                time.sleep(0.004)

    def _input(self, pg: Any, event: Any, drawn: Drawn) -> None:
        key: str | None = None
        if event.type == pg.KEYDOWN:
            key = key_of(pg, event)
        elif event.type in (pg.MOUSEBUTTONDOWN, pg.FINGERDOWN):
            if event.type == pg.FINGERDOWN:
                w, h = self.screen_size
                pos = (int(event.x * w), int(event.y * h))
            else:
                pos = event.pos
            key = next((k for (x, y, w_, h_), k in reversed(drawn.zones)
                        if x <= pos[0] < x + w_ and y <= pos[1] < y + h_), None)
        if key is not None:
            self._loop.call_soon_threadsafe(self._on_input, Input(key))

    def _save_shots(self, pg: Any, surface: Any) -> None:
        with self._lock:
            shots, self._shots = self._shots, []
        for path, fut in shots:
            try:
                pg.image.save(surface, path)
                fut.set_result(path)
            except Exception as exc:  # a full disk: the screen goes on
                fut.set_exception(exc)
