"""Sounds of the screens: the ringback tone while a call rings, through the station's speaker when it has one.

French ringback (ETSI ES 201 970 / ARCEP): 440 Hz, 1.5 s on, 3.5 s off. A
:class:`Ringer` feeds a :class:`vcore.media.sinks.Speaker` from its own thread;
a station without a sound card (or without sounddevice) simply rings in
silence — the picture rings too.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["Ringer", "RINGBACK_HZ", "RINGBACK_ON", "RINGBACK_OFF"]

RINGBACK_HZ = 440.0  # ETSI ES 201 970 table 6, France: 440 Hz
RINGBACK_ON, RINGBACK_OFF = 1.5, 3.5  # seconds
_RATE = 16000
_CHUNK = 0.02  # 20 ms frames


class Ringer:
    """Plays the ringback cadence on ``speaker`` (a sink taking PyAV audio frames) until :meth:`stop`."""

    def __init__(self, speaker: Any) -> None:
        self._speaker = speaker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vcore ringer", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, device: str | None) -> Ringer | None:
        """A ringer on the speaker ``device`` (None: the default one), or None when there is no speaker."""
        from ..errors import VcoreError
        from ..media import Speaker

        try:
            return cls(Speaker(device))
        except (VcoreError, OSError, ImportError) as exc:
            log.info("no speaker for the ringback tone (%s): ringing in silence", exc)
            return None

    def _run(self) -> None:
        import av

        n = int(_RATE * _CHUNK)
        t = np.arange(n) / _RATE
        period = RINGBACK_ON + RINGBACK_OFF
        k = 0
        try:
            while not self._stop.wait(_CHUNK if k else 0):
                at = (k * _CHUNK) % period
                on = at < RINGBACK_ON
                wave = (np.sin(2 * np.pi * RINGBACK_HZ * (t + k * _CHUNK)) * 6000 * on).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(wave.reshape(1, -1), format="s16", layout="mono")
                frame.sample_rate = _RATE
                self._speaker.write(frame)
                k += 1
        except Exception as exc:  # the device went away: stop ringing, never the call
            log.info("ringback tone stopped: %s", exc)
        finally:
            self._speaker.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
