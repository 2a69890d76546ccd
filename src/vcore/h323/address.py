"""The IPv4/IPv6 transport address of H.225.0 and H.245 (``TransportAddress``), as text and port.

References: H.225.0 §7.6 TransportAddress, H.245 §6 TransportAddress (unicast). Pure, thread-safe.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from .errors import SignallingParseError

__all__ = ["Address"]

Value = Any


@dataclass(frozen=True)
class Address:
    """An IPv4/IPv6 transport address (host as text, port)."""

    host: str
    port: int

    def _packed(self) -> bytes:
        try:
            return ipaddress.ip_address(self.host).packed
        except ValueError:
            raise SignallingParseError(f"{self.host!r} is not an IP address") from None

    def h225(self) -> Value:
        """H.225.0 ``TransportAddress``."""
        packed = self._packed()
        kind = "ipAddress" if len(packed) == 4 else "ip6Address"
        return (kind, {"ip": packed, "port": self.port})

    def h245(self) -> Value:
        """H.245 ``TransportAddress`` (unicast)."""
        packed = self._packed()
        kind = "iPAddress" if len(packed) == 4 else "iP6Address"
        return ("unicastAddress", (kind, {"network": packed, "tsapIdentifier": self.port}))

    @classmethod
    def from_h225(cls, value: Value) -> Address:
        if value[0] not in ("ipAddress", "ip6Address"):
            raise SignallingParseError(f"H.225.0 address {value[0]} is not IP")
        return cls(str(ipaddress.ip_address(value[1]["ip"])), value[1]["port"])

    @classmethod
    def from_h245(cls, value: Value) -> Address:
        if value[0] != "unicastAddress" or value[1][0] not in ("iPAddress", "iP6Address"):
            raise SignallingParseError("H.245 address is not a unicast IP address")
        inner = value[1][1]
        try:
            host = str(ipaddress.ip_address(inner["network"]))
        except ValueError:
            raise SignallingParseError("H.245 address has a bad network field") from None
        return cls(host, inner["tsapIdentifier"])
