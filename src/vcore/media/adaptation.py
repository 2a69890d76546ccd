"""Fitting the encoder to a target bitrate: the quality ladder and the frame dropper.

**Quality ladder** — which picture size and frame rate suit a bitrate.

Below a certain bitrate a smaller picture looks better than a blurred large
one, and below that fewer frames look better than blocky ones. The
:class:`QualityLadder` picks a rung (width, height, frame rate) for the
congestion controller's target: down at once when the target falls well under
the rung's floor, up only when the target has stayed above the next rung's
floor (plus a margin) for ``up_after`` seconds, and never more often than
every ``min_dwell`` seconds — each change of size costs a keyframe.

Floors (H.264 constrained baseline, libx264 ultrafast, talking heads): 720p
from 1.2 Mbit/s, 540p from 700 kbit/s, 360p from 350 kbit/s, 270p from
180 kbit/s, below that 180p, and 15 fps under 250 kbit/s. Rungs larger than
the source are left out; sizes keep the source's aspect ratio.

**Rate adjuster** — libx264 follows a lower bitrate within a second but a
higher one only partly (asked for 400 kbit/s after 250, it makes ~310).
:class:`RateAdjuster` measures what the encoder really produced over the last
two seconds and scales the rate asked of it so that the output meets the
target (as libwebrtc's encoder bitrate adjuster does), within 0.7–1.25 ×, down by
at most 10 % a second and up by at most 4 % (x264 answers late: a faster loop oscillates).

**Frame dropper** — encoders miss their target: libx264's ABR repays earlier
undershoot by up to twice the rate for seconds after a change, which on a
thin line is a full modem queue. :class:`FrameDropper` is a leaky bucket of
encoded bits drained at the target; while it holds more than ``window``
seconds of the target, the next frames are not encoded (libwebrtc's media
optimisation does the same). A keyframe that was asked for is never dropped. When the
target falls, the bucket keeps at most ``window`` of the new rate (:meth:`FrameDropper.set_target`).

Pure: time is an argument; not thread-safe.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["Rung", "QualityLadder", "FrameDropper", "RateAdjuster", "DEFAULT_RUNGS"]


@dataclass(frozen=True)
class Rung:
    """One step: a picture ``height`` (width follows the aspect ratio), a frame rate cap, the bitrate floor."""

    height: int
    fps: float
    floor: int


DEFAULT_RUNGS = (
    Rung(720, 30, 1_200_000),
    Rung(540, 30, 700_000),
    Rung(360, 30, 350_000),
    Rung(360, 15, 250_000),
    Rung(270, 15, 180_000),
    Rung(180, 15, 0),
)
UP_MARGIN = 1.25
DOWN_MARGIN = 0.85
GROWING_UP_AFTER = 1.0  # s above the next floor before moving up, once the line is known to have grown
GROWING_DWELL = 2.0  # s between changes at least, then


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


class QualityLadder:
    """Rung selection for a ``width`` × ``height`` source at ``fps``; see the module docs."""

    def __init__(self, width: int, height: int, fps: float, *, rungs: tuple[Rung, ...] = DEFAULT_RUNGS,
                 up_after: float = 4.0, min_dwell: float = 4.0) -> None:
        if width <= 0 or height <= 0 or fps <= 0:
            raise ValueError("the source size and frame rate must be positive")
        usable = [r for r in rungs if r.height <= height]
        if not usable or usable[0].height < height:
            usable.insert(0, Rung(height, fps, usable[0].floor if usable else 0))
        self.rungs = tuple(Rung(r.height, min(r.fps, fps), r.floor) for r in usable)
        self.width = width
        self.height = height
        self.up_after = up_after
        self.min_dwell = min_dwell
        self.index = 0
        self._changed: float | None = None
        self._above_since: float | None = None
        self.changes = 0

    def size(self, rung: Rung | None = None) -> tuple[int, int]:
        """(width, height) of a rung (default: the current one), even, in the source's aspect ratio."""
        r = rung or self.rungs[self.index]
        if r.height >= self.height:
            return self.width, self.height
        return _even(self.width * r.height / self.height), _even(r.height)

    @property
    def rung(self) -> Rung:
        return self.rungs[self.index]

    def start_at(self, bitrate: float) -> Rung:
        """The rung to start on for ``bitrate`` (the highest whose floor it meets)."""
        self.index = next((i for i, r in enumerate(self.rungs) if bitrate >= r.floor), len(self.rungs) - 1)
        return self.rung

    def update(self, bitrate: float, now: float, *, growing: bool = False) -> Rung | None:
        """The new rung if the ladder moves now, else None.

        ``growing``: the congestion controller has found the line grew (ADSL capacity comes back
        in steps): the climb is tested, so the ladder moves up after ``GROWING_UP_AFTER`` s above
        a floor, every ``GROWING_DWELL`` s at most, straight to the highest rung the bitrate holds
        (one keyframe instead of one per rung). At a small picture size the encoder makes ~75 %
        of its rate, so a ladder that lags holds back what the line is seen to carry.
        """
        dwell = min(self.min_dwell, GROWING_DWELL) if growing else self.min_dwell
        if self._changed is not None and now - self._changed < dwell:
            return None
        current = self.rungs[self.index]
        if bitrate < DOWN_MARGIN * current.floor and self.index < len(self.rungs) - 1:
            target = self.index + 1
            while target < len(self.rungs) - 1 and bitrate < DOWN_MARGIN * self.rungs[target].floor:
                target += 1
            return self._move(target, now)
        if self.index > 0 and bitrate >= UP_MARGIN * self.rungs[self.index - 1].floor:
            if self._above_since is None:
                self._above_since = now
            elif now - self._above_since >= (min(self.up_after, GROWING_UP_AFTER) if growing else self.up_after):
                target = self.index - 1
                while growing and target > 0 and bitrate >= UP_MARGIN * self.rungs[target - 1].floor:
                    target -= 1
                return self._move(target, now)
        else:
            self._above_since = None
        return None

    def _move(self, index: int, now: float) -> Rung:
        self.index = index
        self._changed = now
        self._above_since = None
        self.changes += 1
        return self.rungs[index]


class FrameDropper:
    """A leaky bucket of encoded bits, drained at ``target`` bit/s; see the module docs."""

    def __init__(self, target: float, window: float = 0.3) -> None:
        if target <= 0 or window <= 0:
            raise ValueError("the frame dropper needs a positive target and window")
        self.target = float(target)
        self.window = window
        self._level = 0.0  # bits
        self._last: float | None = None
        self.dropped = 0

    def _leak(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self._level = max(0.0, self._level - self.target * (now - self._last))
        if self._last is None or now > self._last:
            self._last = now

    def set_target(self, target: float) -> None:
        """A new drain rate (bit/s). On a decrease the bucket keeps at most ``window`` of the new rate.

        The bits above that were encoded for the old rate and have left already (the pacer and
        the congestion controller answer for them): kept, they would skip every frame for
        seconds after a capacity drop (a 1 Mbit/s bucket draining at 150 kbit/s).
        """
        if target <= 0:
            raise ValueError("the frame dropper needs a positive target")
        self.target = float(target)
        self._level = min(self._level, self.window * self.target)

    def on_frame(self, size: int, now: float) -> None:
        """A frame of ``size`` bytes came out of the encoder."""
        self._leak(now)
        self._level += size * 8

    def drop(self, now: float) -> bool:
        """Whether to skip the next frame (counted in ``dropped``)."""
        self._leak(now)
        if self._level > self.window * self.target:
            self.dropped += 1
            return True
        return False


class RateAdjuster:
    """Scales the bitrate asked of an encoder so that what it produces meets the target; see the module docs."""

    def __init__(self, window: float = 2.0, period: float = 1.0, low: float = 0.7, high: float = 1.25) -> None:
        self.window = window
        self.period = period
        self.low = low
        self.high = high
        self.factor = 1.0
        self._frames: deque[tuple[float, int]] = deque(maxlen=600)  # bounded even if feedback never comes
        self._last: float | None = None

    def on_frame(self, size: int, now: float) -> None:
        """A frame of ``size`` bytes came out of the encoder."""
        self._frames.append((now, size))

    def reset(self) -> None:
        """Forget the measurements (after the encoder was reopened: a new rate control)."""
        self._frames.clear()
        self.factor = 1.0
        self._last = None

    def ask(self, target: float, now: float) -> int:
        """The bitrate to set on the encoder for ``target`` (bit/s)."""
        while self._frames and now - self._frames[0][0] > self.window:
            self._frames.popleft()
        if self._last is None:
            self._last = now
        elif now - self._last >= self.period and len(self._frames) >= 5:
            span = now - self._frames[0][0]
            if span >= self.window / 2:
                produced = sum(b for _, b in self._frames) * 8 / span
                if produced > 0:
                    # gently, and slower upward: x264 answers late, and an encoder pushed up
                    # overshoots into the modem queue (down at most 10 %/s, up at most 4 %/s)
                    step = max(0.9, min(1.04, target / produced))
                    self.factor = max(self.low, min(self.high, self.factor * step))
            self._last = now
        return max(1, int(target * self.factor))
