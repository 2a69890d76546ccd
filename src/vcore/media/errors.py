"""Errors of the media engine: every one is a :class:`vcore.errors.MediaError`."""

from __future__ import annotations

from ..errors import MediaError

__all__ = [
    "MediaError",
    "DeviceNotFound",
    "DeviceError",
    "SourceEnded",
    "EncoderError",
    "DecoderError",
    "PipelineClosed",
]


class DeviceNotFound(MediaError):
    """A capture device, file or URL does not exist or cannot be opened."""


class DeviceError(MediaError):
    """A source failed while reading (for example a camera unplugged mid-stream)."""


class SourceEnded(MediaError):
    """A source has no more frames (a file ended and does not loop, or the source was closed)."""


class EncoderError(MediaError):
    """An encoder failed to open, to reconfigure or to encode."""


class DecoderError(MediaError):
    """A decoder failed to open. Corrupt input is reported, not raised (see ``H264Decoder``)."""


class PipelineClosed(MediaError):
    """A queue or pipeline stage was used after ``close()``."""
