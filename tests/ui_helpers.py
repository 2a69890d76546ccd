"""Shared pieces of the screen tests: an Xvfb display, synthetic keys (xdotool), screenshots, region checks."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

W, H = 1280, 720


def need_x_tools() -> None:
    """Skip with a message when Xvfb, xdotool, ImageMagick's import or pygame-ce is missing."""
    for tool, package in (("Xvfb", "xvfb"), ("xdotool", "xdotool"), ("import", "imagemagick")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install {package})")
    pytest.importorskip("pygame", reason="pygame-ce is not installed (pip install pygame-ce)")


class Xvfb:
    """A virtual X display of W x H, started and stopped by the test (``with Xvfb() as x: x.display``).

    Xvfb chooses a free display number itself and writes it on a pipe once it listens (``-displayfd``): no
    guessed number that another test's Xvfb could take at the same moment. The display is used only once it
    answers a client (``xdotool getdisplaygeometry``). Xvfb's output goes to :attr:`log_path`; :meth:`log`
    reads it, and every failure here says what Xvfb said.
    """

    START_TIMEOUT = 30.0  # a loaded CI machine; tests never assert on time

    def __init__(self, log_path: Path | None = None) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.display = ""
        self._own_log = log_path is None  # a temporary file, removed on exit
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="vcore-xvfb-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        self.log_path = log_path

    def log(self) -> str:
        """What Xvfb printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _failed(self, what: str) -> AssertionError:
        status = self.proc.poll() if self.proc is not None else None
        return AssertionError(f"Xvfb {self.display or '(no display yet)'}: {what} (exit status {status}); "
                              f"its log:\n{self.log()[-3000:]}")

    def __enter__(self) -> Xvfb:
        read_end, write_end = os.pipe()
        try:
            with open(self.log_path, "wb") as out:
                self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{W}x{H}x24",
                                              "-nolisten", "tcp"], stdout=out, stderr=subprocess.STDOUT,
                                             pass_fds=(write_end,), start_new_session=True)
            os.close(write_end)
            write_end = -1
            number = self._read_number(read_end)
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)
        self.display = f":{number}"
        deadline = time.monotonic() + self.START_TIMEOUT
        while True:  # the display answers a client: only then is it handed to a station
            probe = subprocess.run(["xdotool", "getdisplaygeometry"], env={**os.environ, "DISPLAY": self.display},
                                   capture_output=True, text=True, timeout=10)
            if probe.returncode == 0 and probe.stdout.split() == [str(W), str(H)]:
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                error = self._failed(
                    f"does not answer: xdotool said {probe.stdout.strip()!r} {probe.stderr.strip()!r}")
                self.__exit__()
                raise error
            time.sleep(0.1)

    def _read_number(self, fd: int) -> int:
        """The display number Xvfb writes on ``-displayfd`` once it listens."""
        assert self.proc is not None
        deadline = time.monotonic() + self.START_TIMEOUT
        data = b""
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, min(left, 0.5)))
            chunk = os.read(fd, 64) if ready else b""
            if ready and not chunk:  # Xvfb closed the pipe without a number: it failed
                break
            data += chunk
            if left <= 0 or (not ready and self.proc.poll() is not None):
                break
        if not data.strip().isdigit():
            error = self._failed(f"gave no display number (read {data!r})")
            self.__exit__()
            raise error
        return int(data)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._own_log:
            self.log_path.unlink(missing_ok=True)

    def env(self) -> dict[str, str]:
        return {"DISPLAY": self.display, "SDL_AUDIODRIVER": "dummy"}

    def _x(self, argv: list[str], timeout: float) -> None:
        proc = subprocess.run(argv, env={**os.environ, "DISPLAY": self.display}, capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise self._failed(f"{' '.join(argv)} failed with status {proc.returncode}: "
                               f"{(proc.stdout + proc.stderr).strip()}")

    def key(self, *keys: str) -> None:
        """Synthetic key presses on this display (X keysyms: ``1``, ``Return``, ``Escape``, ``Left``)."""
        self._x(["xdotool", "key", *keys], 10)

    def shot(self, path: Path) -> np.ndarray[Any, Any]:
        """The whole screen as PNG at ``path``; returns its RGB pixels (H, W, 3)."""
        self._x(["import", "-window", "root", str(path)], 20)
        return load_png(path)


def dump(**texts: str | Path) -> str:
    """Logs for a failure report: each under its name (a path is read; missing files say so)."""
    parts = []
    for name, text in texts.items():
        if isinstance(text, Path):
            try:
                text = text.read_text(errors="replace")
            except OSError as exc:
                text = f"(cannot read {text}: {exc})"
        parts.append(f"----- {name} -----\n{text.rstrip() or '(empty)'}")
    return "\n".join(parts)


def load_png(path: Path) -> np.ndarray[Any, Any]:
    import pygame

    img = pygame.image.load(str(path))
    return np.asarray(pygame.surfarray.array3d(img)).swapaxes(0, 1)


def region(img: np.ndarray[Any, Any], x0: float, y0: float, x1: float, y1: float) -> np.ndarray[Any, Any]:
    """The part of ``img`` between fractions of its width and height."""
    h, w = img.shape[:2]
    return img[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)].astype(np.int32)


def source_frame(width: int, height: int, out: tuple[int, int] = (W, H)) -> np.ndarray[Any, Any]:
    """The peer's test pattern (FFmpeg testsrc) as the screen should show it: scaled to ``out``."""
    from vcore.media import TestPattern

    src = TestPattern(width, height, 25, realtime=False)
    try:
        frame = src.read()
        return np.asarray(frame.to_ndarray(format="rgb24", width=out[0], height=out[1]))
    finally:
        src.close()


def colour_share(img: np.ndarray[Any, Any], colour: tuple[int, int, int], tol: int = 40) -> float:
    """The fraction of pixels within ``tol`` of ``colour`` on every channel."""
    close = np.all(np.abs(img.astype(np.int32) - np.array(colour)) <= tol, axis=-1)
    return float(close.mean())


def wait_line(path: Path, text: str, timeout: float, proc: Any = None, after: int = 0) -> int:
    """Wait for ``text`` in the log after character ``after``; its end offset."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        i = content.find(text, after)
        if i >= 0:
            return i + len(text)
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    content = path.read_text(errors="replace") if path.exists() else ""
    raise AssertionError(f"{text!r} not seen in {path.name} within {timeout} s:\n{content[-3000:]}")
