"""G.711 µ-law and A-law (ITU-T G.711; RTP payload types 0 PCMU and 8 PCMA, RFC 3551).

Bit-exact with FFmpeg's ``pcm_mulaw`` / ``pcm_alaw`` over every input. PCM is
16-bit signed, native byte order, given as bytes-like or a numpy ``int16`` array;
decoding returns a numpy ``int16`` array. Functions are thread-safe and, with the
compiled fast path, release the GIL while they loop.
"""

from __future__ import annotations

from typing import Union

import numpy as np
import numpy.typing as npt

from .._speedups import fastpath

PAYLOAD_TYPE_PCMU = 0  # RFC 3551 §6
PAYLOAD_TYPE_PCMA = 8  # RFC 3551 §6
CLOCK_RATE = 8000

PcmInput = Union[bytes, bytearray, memoryview, npt.NDArray[np.int16]]

__all__ = [
    "PAYLOAD_TYPE_PCMU",
    "PAYLOAD_TYPE_PCMA",
    "CLOCK_RATE",
    "ulaw_encode",
    "ulaw_decode",
    "alaw_encode",
    "alaw_decode",
]


def ulaw_encode(pcm: PcmInput) -> bytes:
    """µ-law codes (one byte per sample) of int16 PCM."""
    return fastpath.g711_encode(pcm, False)


def alaw_encode(pcm: PcmInput) -> bytes:
    """A-law codes (one byte per sample) of int16 PCM."""
    return fastpath.g711_encode(pcm, True)


def ulaw_decode(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """int16 PCM samples of µ-law codes."""
    return np.frombuffer(fastpath.g711_decode(data, False), dtype=np.int16)


def alaw_decode(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """int16 PCM samples of A-law codes."""
    return np.frombuffer(fastpath.g711_decode(data, True), dtype=np.int16)
