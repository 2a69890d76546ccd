"""Test and benchmark helpers: a seeded network emulator, a UDP relay, H.264 RTP traces.

Not needed at run time by the library itself; PyAV is imported only to build a trace.
"""

from __future__ import annotations

from .netem import NetemStats, NetworkEmulator, UdpRelay

__all__ = ["NetemStats", "NetworkEmulator", "UdpRelay"]
