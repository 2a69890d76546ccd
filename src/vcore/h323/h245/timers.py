"""H.245 procedure timers and counters (H.245 Annex C).

H.245 names the timers and leaves their values to the system: H.323 gives
none. The defaults are those H323Plus uses (30 s for capability exchange,
master/slave determination and logical channels; 10 master/slave retries),
so a vcore call gives up no sooner than the stacks it meets.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["H245Timers"]


@dataclass(frozen=True)
class H245Timers:
    """``t101``: capability exchange (CESE, H.245 §C.3); ``t103``: uni-directional logical channel
    signalling (LCSE, §C.4); ``t106``: master/slave determination (MSDSE, §C.2); ``n100``: how many
    times an indeterminate or rejected determination is retried; ``media``: how long a call answered
    without Fast Connect may stay without any logical channel before it is released."""

    t101: float = 30.0
    t103: float = 30.0
    t106: float = 30.0
    n100: int = 10
    media: float = 30.0
