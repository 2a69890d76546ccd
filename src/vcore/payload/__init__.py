"""RTP payload formats: H.264 (RFC 6184) and G.711 (RFC 3551 PCMU/PCMA)."""

from __future__ import annotations

from . import g711
from .h264 import AccessUnit, H264Depacketizer, H264Packetizer, split_annexb

__all__ = ["g711", "AccessUnit", "H264Depacketizer", "H264Packetizer", "split_annexb"]
