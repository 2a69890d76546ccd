"""Terminal, Call and IncomingCall: H.323 signalling, SRTP media and the kiosk's features in one object.

```python
async with Terminal("Murat kiosk", video=TestPattern(), audio=Tone(), identity="kiosk.pem",
                    trust=["ca.cert.pem"]) as t:
    call = await t.call("h323:caf-agent@192.0.2.10")      # or t.call(card=12)
    await call.connected
    async for event in call.events(): ...
    await call.hangup()
```

Per call the terminal opens two UDP sockets (audio and video receivers, RTCP
multiplexed on the RTP port), announces them in Fast Connect (or H.245
OpenLogicalChannelAck), and when channels open starts the senders with SRTP
sessions built from each channel's key material (ours for what we send, the
peer's for what we receive; fresh per call and per direction). Video arrives
through a :class:`~vcore.jitter.VideoJitterBuffer` with NACK; the sender answers
NACKs from a :class:`~vcore.nack.RetransmissionHistory`. H.245 keyframe requests
make the encoder send an IDR; flow control sets its bitrate. No RTP/RTCP from
the peer for ``media_timeout`` seconds ends the call (``media-timeout``).

Everything here is an asyncio object: use a terminal and its calls from one
event loop. Every task, thread and socket a call opens it closes when it ends;
the terminal closes its calls and its listener on ``close()``. Keys are never
logged. See ``docs/calls.md``.
"""

from __future__ import annotations

from .addresses import parse_address
from .call import Call
from .events import (
    BitrateChanged,
    CallEvent,
    CallFailed,
    CallStats,
    CameraControl,
    Connected,
    Degraded,
    Ended,
    Held,
    KeyframeRequested,
    MediaStarted,
    RecordingNotice,
    Ringing,
    StreamStats,
)
from .incoming import IncomingCall
from .terminal import Terminal

__all__ = [
    "Terminal",
    "Call",
    "IncomingCall",
    "CallFailed",
    "CallEvent",
    "Ringing",
    "Connected",
    "MediaStarted",
    "Degraded",
    "KeyframeRequested",
    "BitrateChanged",
    "CameraControl",
    "Held",
    "RecordingNotice",
    "Ended",
    "StreamStats",
    "CallStats",
    "parse_address",
]

