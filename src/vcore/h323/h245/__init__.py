"""H.245 (multimedia system control), one state machine per procedure as H.245 Annex C describes them.

:mod:`.msd` master/slave determination (MSDSE, T106, N100), :mod:`.cese`
capability exchange (CESE, T101, ``capabilityDescriptors``), :mod:`.lcse`
uni-directional logical channel signalling (LCSE, T103) and :mod:`.control`,
which routes PDUs to them, answers commands and indications (keyframe
requests, flow control, user input, round trip delay) and chooses what to
open. They are pure data structures: time is an argument (``now``), PDUs to
send and call events are queued for the session, which carries them tunnelled
in H.225.0 or on a separate H.245 connection.

The PDU builders and readers are :mod:`.capabilities` (TerminalCapabilitySet)
and :mod:`.pdus` (the rest); :mod:`vcore.h323.messages` re-exports them.
The procedures are imported on first use: :mod:`vcore.h323.messages` imports
the PDU modules while :mod:`vcore.h323.fast_connect`, which the procedures
need, may still be loading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .control import H245Control, H245Failure
    from .timers import H245Timers

__all__ = ["H245Control", "H245Failure", "H245Timers"]


def __getattr__(name: str) -> Any:
    if name in ("H245Control", "H245Failure"):
        from . import control

        return getattr(control, name)
    if name == "H245Timers":
        from .timers import H245Timers

        return H245Timers
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
