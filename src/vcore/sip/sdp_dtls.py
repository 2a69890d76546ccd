"""DTLS-SRTP in SDP (RFC 5763, 5764 §8, 8122, 4145): ``a=fingerprint``, ``a=setup``, ``UDP/TLS/RTP/SAVP(F)``.

What the offer/answer of :mod:`vcore.sip.sdp` adds for a DTLS-SRTP stream, and
the step after it: the handshake on the call's media sockets
(:mod:`vcore.transport.dtls`) whose keys replace the ``a=crypto`` ones.

- vcore offers DTLS-SRTP only when configured to (``SipConfig.dtls="offer"``;
  SDES stays the default over TLS), with ``a=setup:actpass`` (RFC 5763 §5) and
  the sha-256 fingerprint of the terminal's self-signed DTLS certificate.
- It answers an offer whose streams are DTLS-SRTP only (``dtls="answer"``, the
  default): ``a=setup:active`` to ``actpass`` or ``passive``, ``passive`` to
  ``active`` (RFC 4145 §4: an absent ``a=setup`` means ``active``); ``holdconn``
  is refused.
- The fingerprint is what authenticates the peer's media: it is taken only from
  signalling that may carry keys (TLS, or ``sdes_over_plaintext``: then it is
  unauthenticated and a warning says so).
- ``a=fingerprint`` (RFC 8122 §5): ``<hash> <2 hex digits>(:<2 hex digits>)*``,
  the length of that hash; media level before session level.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from ..h323.fast_connect import MediaChannel, MediaEndpoints
from ..h323.keys import SrtpKeyMaterial
from ..transport import dtls
from ..transport.dtls import (
    FINGERPRINT_HASHES,
    DtlsCertificate,
    DtlsError,
    DtlsFingerprintError,
    DtlsKeys,
    DtlsMedia,
    DtlsRole,
    DtlsTimeout,
)
from .errors import SipSecurityError, SipTimeout
from .sdp_syntax import Attribute, MediaDescription, SdpError, SdpNegotiationError, SessionDescription

__all__ = [
    "ANSWER_SETUP",
    "DTLS_PROTOS",
    "DtlsStream",
    "answer_attributes",
    "dtls_streams",
    "fingerprints",
    "is_dtls",
    "offer_attributes",
    "parse_fingerprint",
    "secure_channels",
    "setup",
]

log = logging.getLogger(__name__)

DTLS_PROTOS = ("UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF")  # RFC 5764 §8
Setup = Literal["active", "passive", "actpass", "holdconn"]
_SETUPS = ("active", "passive", "actpass", "holdconn")  # RFC 4145 §4
_HASH_BYTES = {"sha-1": 20, "sha-224": 28, "sha-256": 32, "sha-384": 48, "sha-512": 64}
_FINGERPRINT = re.compile(r"^([A-Za-z0-9-]{1,16}) ((?:[0-9A-Fa-f]{2}:){0,127}[0-9A-Fa-f]{2})$")
_SESSIONS = {"audio": 1, "video": 2}
# RFC 5763 §5: the answerer SHOULD be active (a DTLS client does not wait for a Contact behind a NAT)
ANSWER_SETUP: dict[str, Setup] = {"actpass": "active", "passive": "active", "active": "passive"}


def is_dtls(m: MediaDescription) -> bool:
    """An ``m=`` line whose transport is DTLS-SRTP."""
    return m.proto in DTLS_PROTOS


def parse_fingerprint(value: str) -> tuple[str, str]:
    """``a=fingerprint`` value -> (hash function in lower case, upper-case hex); :class:`SdpError` if malformed."""
    m = _FINGERPRINT.match(value.strip())
    if m is None:
        raise SdpError(f"a=fingerprint:{value[:40]!r} is not '<hash> <XX:XX:...>' (RFC 8122 §5)")
    algorithm, digest = m.group(1).lower(), m.group(2).upper()
    size = _HASH_BYTES.get(algorithm)
    if size is not None and len(digest.split(":")) != size:
        raise SdpError(f"a=fingerprint:{algorithm} has {len(digest.split(':'))} bytes, not {size}")
    return algorithm, digest


def fingerprints(sdp: SessionDescription, m: MediaDescription) -> list[tuple[str, str]]:
    """The stream's fingerprints (its own ``a=fingerprint`` lines, else the session's)."""
    values = m.values("fingerprint") or [a.value for a in sdp.attributes if a.name == "fingerprint"]
    return [parse_fingerprint(v or "") for v in values]


def setup(sdp: SessionDescription, m: MediaDescription) -> Setup | None:
    """The stream's ``a=setup`` (its own, else the session's), None when absent."""
    values = m.values("setup") or [a.value for a in sdp.attributes if a.name == "setup"]
    if not values:
        return None
    if len(values) > 1 or values[0] not in _SETUPS:
        raise SdpError(f"a=setup {', '.join(str(v) for v in values)!r}: one of {', '.join(_SETUPS)} (RFC 4145 §4)")
    return values[0]  # type: ignore[return-value]


def offer_attributes(certificate: DtlsCertificate) -> list[Attribute]:
    """An offered DTLS-SRTP stream's attributes: our fingerprint, ``a=setup:actpass`` (RFC 5763 §5)."""
    return [Attribute("fingerprint", f"sha-256 {certificate.fingerprint}"), Attribute("setup", "actpass")]


def answer_attributes(sdp: SessionDescription, m: MediaDescription,
                      certificate: DtlsCertificate) -> list[Attribute]:
    """Our answer's attributes for an offered DTLS-SRTP stream; :class:`SdpError` says why not."""
    found = fingerprints(sdp, m)
    if not any(a in FINGERPRINT_HASHES for a, _ in found):
        raise SdpError(f"DTLS-SRTP offered without a fingerprint vcore can check "
                       f"({', '.join(a for a, _ in found) or 'no a=fingerprint'})")
    offered = setup(sdp, m) or "active"  # RFC 4145 §4: absent means active
    if offered == "holdconn":
        raise SdpError("a=setup:holdconn: the peer does not want the DTLS connection yet (not supported)")
    ours = ANSWER_SETUP[offered]
    return [Attribute("fingerprint", f"sha-256 {certificate.fingerprint}"), Attribute("setup", ours)]


@dataclass(frozen=True)
class DtlsStream:
    """One negotiated DTLS-SRTP stream: its session (1 audio, 2 video), our role, the peer's fingerprints."""

    session_id: int
    role: DtlsRole
    fingerprints: tuple[tuple[str, str], ...]
    remote: tuple[tuple[str, int], tuple[str, int]] | None = None  # the peer's RTP and RTCP addresses


def _remote(sdp: SessionDescription, m: MediaDescription, mux: bool) -> tuple[tuple[str, int], tuple[str, int]] | None:
    conn = sdp.connection_for(m)
    if conn is None or not conn.is_ip or conn.is_unspecified:
        return None
    rtp = (conn.address, m.port)
    rtcp = m.rtcp()
    if mux:
        return rtp, rtp
    if rtcp is None:
        return rtp, (conn.address, m.port + 1)
    port, where = rtcp
    return rtp, (where.address if where is not None and where.is_ip else conn.address, port)


def dtls_streams(local: SessionDescription, remote: SessionDescription) -> list[DtlsStream]:
    """The DTLS-SRTP streams an offer/answer exchange opened (our SDP and the peer's, m= lines in order).

    Raises :class:`SdpNegotiationError` when an accepted DTLS stream lacks what the handshake needs.
    """
    out: list[DtlsStream] = []
    for index, (ours, theirs) in enumerate(zip(local.media, remote.media, strict=False)):
        if not is_dtls(ours) or ours.port == 0 or theirs.port == 0 or ours.media not in _SESSIONS:
            continue
        what = f"m={theirs.media} line {index + 1}"
        try:
            found = tuple(fingerprints(remote, theirs))
            mine, peer = setup(local, ours), setup(remote, theirs) or "active"
        except SdpError as exc:
            raise SdpNegotiationError(f"{what}: {exc}") from None
        if not any(a in FINGERPRINT_HASHES for a, _ in found):
            raise SdpNegotiationError(f"{what}: DTLS-SRTP without a fingerprint vcore can check")
        if mine == "actpass":  # we offered: the answer chose (RFC 5763 §5)
            if peer not in ("active", "passive"):
                raise SdpNegotiationError(f"{what}: the answer's a=setup:{peer} is not active or passive")
            role: DtlsRole = "server" if peer == "active" else "client"
        elif mine in ("active", "passive"):
            role = "client" if mine == "active" else "server"
        else:
            raise SdpNegotiationError(f"{what}: our a=setup:{mine} cannot start DTLS")
        remote_addr = _remote(remote, theirs, ours.has("rtcp-mux") and theirs.has("rtcp-mux"))
        out.append(DtlsStream(_SESSIONS[ours.media], role, found, remote_addr))
    return out


async def secure_channels(channels: Sequence[MediaChannel], streams: Sequence[DtlsStream], endpoints: MediaEndpoints,
                          certificate: DtlsCertificate, suites: Sequence[str],
                          timeout: float | None = None) -> list[MediaChannel]:
    """The channels with the keys of a DTLS-SRTP handshake per stream (ours to send, the peer's to receive).

    Raises :class:`SipSecurityError` (a certificate that does not match its fingerprint, a refused
    handshake) or :class:`SipTimeout` (no handshake in ``timeout`` seconds, by default
    :data:`vcore.transport.dtls.HANDSHAKE_TIMEOUT`): no channel gets a key then.
    """
    if not streams:
        return list(channels)
    if timeout is None:
        timeout = dtls.HANDSHAKE_TIMEOUT
    if not isinstance(endpoints, DtlsMedia):
        raise SipSecurityError("DTLS-SRTP negotiated but these media endpoints cannot run a DTLS handshake")
    tasks = [asyncio.ensure_future(endpoints.dtls_handshake(s.session_id, certificate, s.role, s.fingerprints,
                                                            suites, s.remote, timeout)) for s in streams]
    try:
        try:
            results = await asyncio.gather(*tasks)
        finally:  # one stream failing (or the call ending) stops the other handshakes now
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    except DtlsFingerprintError as exc:
        raise SipSecurityError(f"DTLS-SRTP: {exc}") from None
    except DtlsTimeout as exc:
        raise SipTimeout(f"DTLS-SRTP: {exc}") from None
    except DtlsError as exc:
        raise SipSecurityError(f"DTLS-SRTP: {exc}") from None
    keys: dict[int, DtlsKeys] = {s.session_id: k for s, k in zip(streams, results, strict=True)}
    out: list[MediaChannel] = []
    for ch in channels:
        k = keys.get(ch.session_id)
        if k is None:
            out.append(ch)
        elif ch.direction == "send":
            out.append(replace(ch, srtp=SrtpKeyMaterial(k.suite, k.local_key, k.local_salt)))
        else:
            out.append(replace(ch, srtp=SrtpKeyMaterial(k.suite, k.remote_key, k.remote_salt)))
    return out
