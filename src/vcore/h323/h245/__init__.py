"""H.245 (multimedia system control), one state machine per procedure as H.245 Annex C describes them.

:mod:`.msd` master/slave determination (MSDSE, T106, N100), :mod:`.cese`
capability exchange (CESE, T101, ``capabilityDescriptors``), :mod:`.lcse`
uni-directional logical channel signalling (LCSE, T103) and :mod:`.control`,
which routes PDUs to them, answers commands and indications (keyframe
requests, flow control, user input, round trip delay) and chooses what to
open. They are pure data structures: time is an argument (``now``), PDUs to
send and call events are queued for the session, which carries them tunnelled
in H.225.0 or on a separate H.245 connection.
"""

from __future__ import annotations

from .control import H245Control, H245Failure
from .timers import H245Timers

__all__ = ["H245Control", "H245Failure", "H245Timers"]
