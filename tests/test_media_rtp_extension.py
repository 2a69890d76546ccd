"""The capture-time header extension through both twins of the RTP kernel (RFC 8285 padding)."""

from __future__ import annotations

from types import ModuleType
from typing import Callable

import pytest

from vcore._speedups import load_twin


@pytest.mark.parametrize("size", range(1, 17))
def test_one_byte_extension_is_padded_to_32_bits(twin: Callable[[str], ModuleType], size: int) -> None:
    fp = twin("_fastpath")
    value = bytes(range(size))
    profile, data = fp.build_header_extensions([(1, value)])
    assert profile == 0xBEDE and len(data) % 4 == 0  # RFC 8285 §4.2 / RFC 3550 §5.3.1
    assert data == load_twin("_fastpath", "py").build_header_extensions([(1, value)])[1]
    pkt = fp.RtpPacket(96, 1, 2, 3, b"payload")
    pkt.extensions = [(1, value)]
    parsed = fp.RtpPacket.parse(pkt.serialize())
    assert parsed.extensions == [(1, value)] and parsed.payload == b"payload"
