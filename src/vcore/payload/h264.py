"""H.264 over RTP (RFC 6184): packetizer, depacketizer, access units.

The per-byte and per-packet work happens in the fast-path kernels
(``vcore._fastpath`` or its pure-Python twin); this module adds the state that
outlives one access unit (the sender's sequence number).
"""

from __future__ import annotations

import secrets

from .._speedups import fastpath
from ..rtp.packet import RtpPacket
from ..rtp.seq import initial_sequence_number

AccessUnit = fastpath.AccessUnit
H264Depacketizer = fastpath.H264Depacketizer
split_annexb = fastpath.split_annexb

PACKETIZATION_MODE_SINGLE_NAL = 0  # RFC 6184 §6.2
PACKETIZATION_MODE_NON_INTERLEAVED = 1  # RFC 6184 §6.3

__all__ = [
    "AccessUnit",
    "H264Depacketizer",
    "H264Packetizer",
    "split_annexb",
    "PACKETIZATION_MODE_SINGLE_NAL",
    "PACKETIZATION_MODE_NON_INTERLEAVED",
]


class H264Packetizer:
    """Turns Annex B access units into RTP packets (RFC 6184, mode 0 or 1).

    ``mtu`` bounds each whole RTP packet (header included; leave room for SRTP's
    tag yourself). Sequence numbers continue across calls, starting at
    ``sequence_number`` (random in [1, 2^15) by default, see
    :func:`~vcore.rtp.seq.initial_sequence_number`). Parameter sets are sent
    once per access unit, before its first slice.

    Not thread-safe: use one packetizer per sending thread.
    """

    def __init__(
        self,
        payload_type: int = 96,
        ssrc: int | None = None,
        mtu: int = 1200,
        mode: int = PACKETIZATION_MODE_NON_INTERLEAVED,
        sequence_number: int | None = None,
    ) -> None:
        if mode not in (0, 1):
            raise ValueError(f"H.264 packetization mode {mode} is not 0 or 1")
        if not 0 <= payload_type <= 127:
            raise ValueError(f"RTP payload_type {payload_type} out of range 0-127")
        self.payload_type = payload_type
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.mtu = mtu
        self.mode = mode
        self.sequence_number = initial_sequence_number() if sequence_number is None else sequence_number & 0xFFFF

    def packetize(self, access_unit: bytes, timestamp: int) -> list[RtpPacket]:
        """RTP packets for one access unit with RTP ``timestamp`` (marker on the last)."""
        packets = fastpath.h264_packetize(
            access_unit,
            timestamp & 0xFFFFFFFF,
            self.payload_type,
            self.ssrc,
            self.sequence_number,
            self.mtu,
            self.mode,
        )
        self.sequence_number = (self.sequence_number + len(packets)) & 0xFFFF
        return packets
