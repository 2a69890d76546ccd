"""Loss recovery, sender side: a packet history that answers generic NACKs.

The receiver side (which sequence numbers to request, when, and when to stop)
lives in the video jitter buffer (``VideoJitterBuffer.nacks``), because only it
knows each frame's deadline.

- :class:`RetransmissionHistory` keeps the last packets sent and answers a NACK
  (RFC 4585 §6.2.1) either with RFC 4588 RTX packets (own SSRC and payload type,
  the original sequence number "OSN" in the first two payload bytes, §4) or, for
  peers that did not negotiate RTX, with the very same packet again.
- :func:`wrap_rtx` / :func:`unwrap_rtx` convert between the two forms.

Thread-safety: none; a history belongs to the sending task.
"""

from __future__ import annotations

import logging
import struct

from .errors import ParseError
from .rtp.packet import RtpPacket
from .rtp.seq import seq_diff

__all__ = ["RetransmissionHistory", "wrap_rtx", "unwrap_rtx"]

_log = logging.getLogger(__name__)

RTX_OSN_SIZE = 2  # RFC 4588 §4: original sequence number
MAX_REPEAT_COPIES = 3  # copies of a retransmission asked for again, at most


def wrap_rtx(packet: RtpPacket, rtx_ssrc: int, rtx_payload_type: int, rtx_sequence_number: int) -> RtpPacket:
    """The RFC 4588 §4 retransmission packet of ``packet``: OSN + original payload.

    Marker, timestamp, CSRC and header extension are kept; padding is not.
    """
    rtx = RtpPacket(
        payload_type=rtx_payload_type,
        sequence_number=rtx_sequence_number & 0xFFFF,
        timestamp=packet.timestamp,
        ssrc=rtx_ssrc,
        payload=struct.pack("!H", packet.sequence_number) + packet.payload,
        marker=packet.marker,
        csrc=packet.csrc,
        extension_profile=packet.extension_profile if packet.extension else None,
        extension_data=packet.extension_data,
    )
    return rtx


def unwrap_rtx(rtx: RtpPacket, media_ssrc: int, media_payload_type: int) -> RtpPacket:
    """The original packet inside an RFC 4588 RTX packet; raises :class:`ParseError` without an OSN."""
    if len(rtx.payload) < RTX_OSN_SIZE:
        raise ParseError(f"RTX payload is {len(rtx.payload)} bytes, too short for the original sequence number")
    (osn,) = struct.unpack_from("!H", rtx.payload)
    return RtpPacket(
        payload_type=media_payload_type,
        sequence_number=osn,
        timestamp=rtx.timestamp,
        ssrc=media_ssrc,
        payload=rtx.payload[RTX_OSN_SIZE:],
        marker=rtx.marker,
        csrc=rtx.csrc,
        extension_profile=rtx.extension_profile if rtx.extension else None,
        extension_data=rtx.extension_data,
    )


class RetransmissionHistory:
    """The last ``capacity`` packets sent on one SSRC, to answer NACKs.

    With ``rtx_payload_type`` and ``rtx_ssrc`` set, answers are RTX packets
    (RFC 4588) with their own sequence numbers; otherwise the original packets
    are sent again unchanged (same SSRC and sequence number). A packet is resent
    at most once per ``min_interval`` seconds (a NACK repeated within one RTT is
    answered once) and not at all when older than ``max_age`` seconds. A packet
    asked for again after it was already resent — its retransmission was lost
    too, and the frame's deadline rarely leaves time for a third round trip — is
    sent ``repeat_copies`` times (RTX copies get their own sequence numbers).

    Counters: ``requested``, ``resent``, ``missing`` (not in the history any more),
    ``throttled``. Not thread-safe.
    """

    def __init__(
        self,
        capacity: int = 1024,
        rtx_payload_type: int | None = None,
        rtx_ssrc: int | None = None,
        rtx_sequence_number: int = 0,
        max_age: float = 1.0,
        min_interval: float = 0.01,
        repeat_copies: int = 1,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity {capacity} must be positive")
        if not 1 <= repeat_copies <= MAX_REPEAT_COPIES:
            raise ValueError(f"repeat_copies {repeat_copies} must be between 1 and {MAX_REPEAT_COPIES}")
        if (rtx_payload_type is None) != (rtx_ssrc is None):
            raise ValueError("RTX needs both rtx_payload_type and rtx_ssrc")
        self.capacity = capacity
        self.rtx_payload_type = rtx_payload_type
        self.rtx_ssrc = rtx_ssrc
        self.max_age = max_age
        self.min_interval = min_interval
        self.repeat_copies = repeat_copies
        self._rtx_seq = rtx_sequence_number & 0xFFFF
        self._slots: list[tuple[RtpPacket, float, float] | None] = [None] * capacity
        self._last_seq: int | None = None
        self.requested = 0
        self.resent = 0
        self.missing = 0
        self.throttled = 0

    @property
    def rtx(self) -> bool:
        """True when answers are RFC 4588 RTX packets."""
        return self.rtx_ssrc is not None

    def record(self, packet: RtpPacket, now: float) -> None:
        """Remember a packet just sent at ``now``."""
        self._slots[packet.sequence_number % self.capacity] = (packet, now, float("-inf"))
        if self._last_seq is None or seq_diff(packet.sequence_number, self._last_seq) > 0:
            self._last_seq = packet.sequence_number

    def get(self, sequence_number: int) -> RtpPacket | None:
        """The packet sent with this sequence number, if still held."""
        entry = self._slots[(sequence_number & 0xFFFF) % self.capacity]
        if entry is None or entry[0].sequence_number != sequence_number & 0xFFFF:
            return None
        return entry[0]

    def resend(self, sequence_numbers: list[int], now: float) -> list[RtpPacket]:
        """Packets to send in answer to a NACK for ``sequence_numbers`` at ``now``."""
        out: list[RtpPacket] = []
        for seq in sequence_numbers:
            self.requested += 1
            seq &= 0xFFFF
            i = seq % self.capacity
            entry = self._slots[i]
            if entry is None or entry[0].sequence_number != seq or now - entry[1] > self.max_age:
                self.missing += 1
                continue
            pkt, sent, last = entry
            if now - last < self.min_interval:
                self.throttled += 1
                continue
            self._slots[i] = (pkt, sent, now)
            copies = 1 if last == float("-inf") else self.repeat_copies
            for _ in range(copies):
                if self.rtx_ssrc is not None and self.rtx_payload_type is not None:
                    out.append(wrap_rtx(pkt, self.rtx_ssrc, self.rtx_payload_type, self._rtx_seq))
                    self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
                else:
                    out.append(pkt)
                self.resent += 1
        return out
