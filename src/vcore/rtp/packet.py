"""RTP packets (RFC 3550 §5.1) with RFC 8285 header extensions.

``RtpPacket`` is a fast-path kernel class (compiled or its pure-Python twin).
"""

from __future__ import annotations

from .._speedups import fastpath

RtpPacket = fastpath.RtpPacket
parse_header_extensions = fastpath.parse_header_extensions
build_header_extensions = fastpath.build_header_extensions

__all__ = ["RtpPacket", "parse_header_extensions", "build_header_extensions"]
