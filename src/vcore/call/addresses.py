"""Dial strings (``h323:alias@host[:port]``) and trust anchors."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import CallError
from ..h323 import signalling as sig

# --------------------------------------------------------------------------- addresses


_ADDRESS = re.compile(r"^(?:(?P<scheme>h323s?):)?(?:(?P<alias>[^@]+)@)?(?P<host>\[[^\]]+\]|[^:@]+)(?::(?P<port>\d+))?$")


def parse_address(address: str, tls: bool) -> tuple[str | None, str, int]:
    """``h323:alias@host[:port]``, ``h323s:...``, ``host[:port]`` -> (alias, host, port).

    The default port is 1300 with TLS (H.235.0), 1720 without (H.225.0 §7.1).
    """
    m = _ADDRESS.match(address.strip())
    if m is None:
        raise CallError(f"cannot read address {address!r} (expected h323:alias@host[:port] or host[:port])")
    host = m.group("host").strip("[]")
    port = int(m.group("port")) if m.group("port") else (sig.H225_TLS_PORT if tls else sig.H225_PORT)
    if not 0 < port < 65536:
        raise CallError(f"port {port} out of range in {address!r}")
    return m.group("alias"), host, port


def _is_ip(host: str) -> bool:
    from ..h323.signalling import _is_ip as is_ip  # one definition of "an IP literal" for dial strings

    return is_ip(host)


def _anchors(trust: Iterable[str | os.PathLike[str]]) -> list[Any]:
    from cryptography import x509

    certs: list[Any] = []
    for path in trust:
        try:
            certs += x509.load_pem_x509_certificates(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise CallError(f"cannot read trust anchors from {path}: {exc}") from None
    return certs
