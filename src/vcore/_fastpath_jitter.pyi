"""Typed face of the video jitter buffer kernel (``_fastpath_jitter`` and its ``_py`` twin)."""

from ._fastpath_py import AccessUnit, RtpPacket

__all__ = ["VideoJitterCore", "DEFAULT_CAPACITY"]

DEFAULT_CAPACITY: int

class VideoJitterCore:
    clock_rate: int
    min_delay: float
    max_delay: float
    capacity: int
    nack_enabled: bool
    rtt: float
    packets: int
    duplicates: int
    late: int
    lost: int
    discarded: int
    frames_complete: int
    frames_released: int
    frames_dropped: int
    resets: int
    keyframe_requests: int
    nacks_sent: int
    recovered: int
    held: int
    jitter: float
    delay: float
    ssrc: int
    def __init__(
        self,
        clock_rate: int = 90000,
        min_delay: float = 0.0,
        max_delay: float = 0.5,
        capacity: int = 1024,
        nack: bool = False,
        rtt: float = 0.1,
    ) -> None: ...
    def reset(self) -> None: ...
    @property
    def keyframe_needed(self) -> bool: ...
    def take_keyframe_request(self) -> str | None: ...
    def playout_time(self, rtp_timestamp: int) -> float: ...
    def push(self, packet: RtpPacket, arrival: float, retransmission: bool = False) -> None: ...
    def pop(self, now: float) -> list[AccessUnit]: ...
    def nacks(self, now: float) -> list[int]: ...
    @property
    def frames_held(self) -> int: ...
    @property
    def missing(self) -> int: ...
