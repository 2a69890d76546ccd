"""vcore: real-time H.264 video conferencing in the H.323 tradition.

Flat public API; see the README and ``docs/architecture.md`` for how data flows.
"""

from __future__ import annotations

import logging

from ._speedups import fastpath_enabled
from ._version import __version__
from .errors import (
    CallError,
    MediaError,
    ParseError,
    SrtpAuthError,
    SrtpError,
    SrtpLimitError,
    SrtpReplayError,
    VcoreError,
)
from .srtp import SrtpSession

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "fastpath_enabled",
    "VcoreError",
    "ParseError",
    "SrtpError",
    "SrtpAuthError",
    "SrtpReplayError",
    "SrtpLimitError",
    "MediaError",
    "CallError",
    "SrtpSession",
]
