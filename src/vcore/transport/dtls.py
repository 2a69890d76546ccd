"""DTLS-SRTP (RFC 5763/5764): SRTP keys agreed by a DTLS handshake on a media session's own sockets.

One :class:`DtlsSrtpTransport` per *component* of a media session (the RTP
socket; the RTCP socket too when RTCP is not multiplexed, RFC 5764 §4.1) sits
beside the :class:`~vcore.transport.RtpTransport` that owns the socket:

- **Demultiplexing** (RFC 7983 §7): a datagram whose first byte is 20–63 is
  DTLS and comes here; 128–191 stays RTP/RTCP. The transport hands DTLS
  records over even while it holds media until the keys are known.
- **Roles** (RFC 5763 §5, RFC 4145): the signalling decides who is the DTLS
  client (``a=setup:active``) and who the server (``passive``).
- **Authentication** (RFC 5763 §5, RFC 8122): each side's certificate is
  self-signed (:class:`DtlsCertificate`, one per terminal); what binds it to the
  call is its fingerprint in the SDP. After the handshake the peer's certificate
  must match one of the ``a=fingerprint`` values of a hash vcore knows, or
  :class:`DtlsFingerprintError`: no key leaves the handshake. The fingerprint is
  only as trustworthy as the signalling that carried it (TLS, or an explicit
  allowance for plaintext).
- **Keys** (RFC 5764 §4.2): the negotiated ``use_srtp`` profile and the
  ``EXTRACTOR-dtls_srtp`` exporter give the client's and the server's master
  key and salt; :class:`DtlsKeys` tells ours (what we send under) from the peer's.
- **Timers**: OpenSSL's DTLS retransmission timer runs on the event loop
  (``loop.call_at``); a handshake that does not complete within its time limit,
  or that OpenSSL refuses (malformed records, no common SRTP profile), raises
  :class:`DtlsError` with the reason.

The DTLS implementation is OpenSSL's, through pyOpenSSL (its ``DTLS_METHOD``,
``set_tlsext_use_srtp``, ``export_keying_material`` and memory BIOs), not a
hand-written one. Event-loop thread only.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ..errors import TransportError

__all__ = [
    "DTLS_FIRST_BYTE",
    "DTLS_SRTP_PROFILES",
    "FINGERPRINT_HASHES",
    "HANDSHAKE_TIMEOUT",
    "DtlsCertificate",
    "DtlsError",
    "DtlsFingerprintError",
    "DtlsKeys",
    "DtlsMedia",
    "DtlsRole",
    "DtlsSrtpTransport",
    "DtlsTimeout",
    "fingerprint_of",
    "is_dtls",
]

log = logging.getLogger(__name__)

DtlsRole = Literal["client", "server"]

DTLS_FIRST_BYTE = range(20, 64)  # RFC 7983 §7: 20..63 is DTLS (RTP/RTCP 128..191, STUN 0..3)
EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"  # RFC 5764 §4.2
HANDSHAKE_TIMEOUT = 10.0  # s: a handshake not done by then fails the call (RFC 6347 timers give up near 60 s)
MTU = 1200  # bytes of a DTLS datagram: what fits under any path MTU with IP/UDP and a tunnel or two
_RECORD_HEADER = 13  # RFC 6347 §4.1: type, version, epoch, sequence number, length
_EARLY_KEPT = 32  # DTLS datagrams kept from before the handshake starts (a peer that is quicker than our answer)
_EARLY_MAX_BYTES = 4096  # a larger one is no DTLS flight anyone sends under a path MTU: not kept

# RFC 5764 §4.1.2 / RFC 7714 §14.2 profile -> (SRTP suite as vcore.srtp names it, key length, salt length)
DTLS_SRTP_PROFILES: dict[str, tuple[str, int, int]] = {
    "SRTP_AEAD_AES_128_GCM": ("AEAD_AES_128_GCM", 16, 12),
    "SRTP_AEAD_AES_256_GCM": ("AEAD_AES_256_GCM", 32, 12),
    "SRTP_AES128_CM_SHA1_80": ("AES_CM_128_HMAC_SHA1_80", 16, 14),
    "SRTP_AES128_CM_SHA1_32": ("AES_CM_128_HMAC_SHA1_32", 16, 14),
}
_PROFILE_OF_SUITE = {suite: profile for profile, (suite, _, _) in DTLS_SRTP_PROFILES.items()}
# RFC 8122 §5 hash function names vcore checks (md5/md2 are not accepted: RFC 8122 §5 forbids them)
FINGERPRINT_HASHES = ("sha-256", "sha-384", "sha-512", "sha-224", "sha-1")


class DtlsError(TransportError):
    """A DTLS-SRTP handshake failed or did not complete in time (the call's media cannot be keyed)."""


class DtlsFingerprintError(DtlsError):
    """The peer's DTLS certificate does not match the fingerprint its signalling announced."""


class DtlsTimeout(DtlsError):
    """The DTLS handshake did not complete in time (nothing, or nothing usable, came from the peer)."""


def is_dtls(data: bytes) -> bool:
    """RFC 7983 §7: a datagram starting with a byte in 20..63 is DTLS."""
    return bool(data) and 20 <= data[0] <= 63


def _hash(name: str) -> Any:
    from cryptography.hazmat.primitives import hashes

    return {"sha-1": hashes.SHA1(), "sha-224": hashes.SHA224(), "sha-256": hashes.SHA256(),
            "sha-384": hashes.SHA384(), "sha-512": hashes.SHA512()}[name]


def fingerprint_of(certificate: Any, algorithm: str = "sha-256") -> str:
    """A certificate's RFC 8122 fingerprint: upper-case hex bytes joined by colons."""
    return certificate.fingerprint(_hash(algorithm)).hex(":").upper()  # type: ignore[no-any-return]


class DtlsCertificate:
    """A self-signed ECDSA P-256 certificate and key for DTLS-SRTP (RFC 5763 §5 allows self-signed ones).

    Made fresh with :meth:`generate` (one per terminal, per process run); the key never leaves the object.
    """

    def __init__(self, certificate: Any, private_key: Any) -> None:
        self.certificate = certificate
        self._key = private_key

    def __repr__(self) -> str:
        return f"<DtlsCertificate sha-256 {self.fingerprint[:23]}...>"

    @classmethod
    def generate(cls, common_name: str = "vcore DTLS-SRTP", days: int = 30) -> DtlsCertificate:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
        return cls(cert, key)

    @property
    def fingerprint(self) -> str:
        """The certificate's sha-256 fingerprint (what ``a=fingerprint:sha-256`` carries)."""
        return fingerprint_of(self.certificate)

    def _context(self, suites: Sequence[str]) -> Any:
        from OpenSSL import SSL

        profiles = [_PROFILE_OF_SUITE[s] for s in suites if s in _PROFILE_OF_SUITE]
        if not profiles:
            raise DtlsError(f"no DTLS-SRTP profile for the suites {', '.join(suites) or 'none'}")
        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_QUERY_MTU)  # memory BIOs: the MTU is ours to set
        # self-signed on both sides: the chain is not checked, the fingerprint is (after the handshake)
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *_: True)
        ctx.use_certificate(self.certificate)
        ctx.use_privatekey(self._key)
        ctx.set_tlsext_use_srtp(":".join(profiles).encode())
        return ctx


@dataclass(frozen=True)
class DtlsKeys:
    """The SRTP master keys a DTLS-SRTP handshake gave one component (keys kept out of ``repr``).

    ``local_*``: what this side protects its packets with; ``remote_*``: what the peer's arrive under.
    """

    suite: str
    local_key: bytes = field(repr=False)
    local_salt: bytes = field(repr=False)
    remote_key: bytes = field(repr=False)
    remote_salt: bytes = field(repr=False)
    profile: str = ""
    peer_fingerprint: str = ""


@runtime_checkable
class DtlsMedia(Protocol):
    """What a call's media offers its signalling for DTLS-SRTP (the call layer's endpoints implement it)."""

    async def dtls_handshake(self, session_id: int, certificate: DtlsCertificate, role: DtlsRole,
                             fingerprints: Sequence[tuple[str, str]], suites: Sequence[str],
                             remote: tuple[tuple[str, int], tuple[str, int]] | None = None,
                             timeout: float = HANDSHAKE_TIMEOUT) -> DtlsKeys:
        """Run the handshake on ``session_id``'s sockets toward ``remote`` (RTP, RTCP); the RTP socket's keys."""


def _records(data: bytes) -> list[bytes]:
    """Split what OpenSSL wrote into DTLS records (RFC 6347 §4.1), to pack whole records into datagrams."""
    out: list[bytes] = []
    i = 0
    while i < len(data):
        if len(data) - i < _RECORD_HEADER:
            out.append(data[i:])
            break
        (length,) = struct.unpack_from("!H", data, i + 11)
        out.append(data[i:i + _RECORD_HEADER + length])
        i += _RECORD_HEADER + length
    return out


class _Socket(Protocol):
    """The part of :class:`~vcore.transport.RtpTransport` a DTLS component uses."""

    name: str

    def set_dtls_handler(self, handler: Any, *, rtcp_socket: bool = False) -> None: ...

    def send_datagram(self, data: bytes, addr: tuple[str, int], *, rtcp_socket: bool = False) -> bool: ...

    @property
    def remote_rtp(self) -> tuple[str, int] | None: ...

    @property
    def remote_rtcp(self) -> tuple[str, int] | None: ...


class DtlsSrtpTransport:
    """The DTLS-SRTP association of one component (see the module docs).

    Created when the media socket opens (``rtcp=True`` for the RTCP socket of a
    session without ``rtcp-mux``): from then on it takes the socket's DTLS
    datagrams, keeping the first ones until :meth:`handshake` starts.
    """

    def __init__(self, transport: _Socket, *, rtcp: bool = False) -> None:
        self.transport = transport
        self.rtcp = rtcp
        self.name = f"{transport.name} {'RTCP' if rtcp else 'RTP'} DTLS"
        self._early: deque[tuple[bytes, tuple[str, int]]] | None = deque(maxlen=_EARLY_KEPT)
        self._ssl: Any = None
        self._peer: tuple[str, int] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._done: asyncio.Future[DtlsKeys] | None = None
        self._fingerprints: tuple[tuple[str, str], ...] = ()
        self.role: DtlsRole | None = None
        self.keys: DtlsKeys | None = None
        self.started = False
        self.closed = False
        self.datagrams_received = 0
        self.datagrams_sent = 0
        transport.set_dtls_handler(self._on_datagram, rtcp_socket=rtcp)

    def __repr__(self) -> str:
        state = "keyed" if self.keys else "closed" if self.closed else "started" if self.started else "idle"
        return f"<DtlsSrtpTransport {self.name} {self.role or ''} {state}>"

    async def handshake(self, certificate: DtlsCertificate, role: DtlsRole, fingerprints: Sequence[tuple[str, str]],
                        suites: Sequence[str], timeout: float = HANDSHAKE_TIMEOUT) -> DtlsKeys:
        """Run the handshake as ``role``; the keys once the peer's certificate matched ``fingerprints``.

        ``fingerprints``: (hash function, hex) pairs from the peer's SDP; ``suites``:
        the SRTP suites vcore accepts, in its order of preference. Raises
        :class:`DtlsFingerprintError` or :class:`DtlsError` (the association is then closed).
        """
        from OpenSSL import SSL

        if self.started:
            raise DtlsError(f"{self.name}: the handshake was already started")
        if self.closed:
            raise DtlsError(f"{self.name}: closed")
        known = [(a.lower(), v.upper()) for a, v in fingerprints if a.lower() in FINGERPRINT_HASHES]
        if not known:
            raise DtlsFingerprintError(f"{self.name}: the peer announced no fingerprint of a hash vcore checks "
                                       f"({', '.join(a for a, _ in fingerprints) or 'none'}; vcore takes "
                                       f"{', '.join(FINGERPRINT_HASHES)})")
        self.started = True
        self.role = role
        self._fingerprints = tuple(known)
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._ssl = SSL.Connection(certificate._context(suites))
        self._ssl.set_ciphertext_mtu(MTU)
        if role == "client":
            self._ssl.set_connect_state()
        else:
            self._ssl.set_accept_state()
        log.debug("%s: handshake as %s", self.name, role)
        self._step()
        early, self._early = self._early, None
        for data, addr in early or ():
            self._on_datagram(data, addr)
        try:
            return await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except TimeoutError:
            self._fail(DtlsTimeout(f"{self.name}: the DTLS handshake did not complete within {timeout:g} s "
                                 f"({self.datagrams_received} DTLS datagrams received from the peer)"))
            raise self._failure() from None
        except asyncio.CancelledError:
            self.close()
            raise

    def _failure(self) -> BaseException:
        assert self._done is not None
        exc = self._done.exception()
        return exc if exc is not None else DtlsError(f"{self.name}: failed")

    def close(self) -> None:
        """Forget the association (idempotent): the timer stops, later DTLS datagrams are dropped."""
        self.closed = True
        self._early = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._done is not None and not self._done.done():
            self._done.set_exception(DtlsError(f"{self.name}: closed before the handshake completed"))
            self._done.exception()  # retrieved: nobody else may wait for it
        self._ssl = None

    # ------------------------------------------------------------ the handshake

    def _on_datagram(self, data: bytes, addr: Any) -> None:
        if self.closed:
            return
        addr = (addr[0], addr[1])
        if self._early is not None:  # before the handshake: keep the peer's first flight (whole datagrams)
            if len(data) <= _EARLY_MAX_BYTES:
                self._early.append((data, addr))
            return
        if self._ssl is None:
            return
        self.datagrams_received += 1
        self._peer = addr
        from OpenSSL import SSL

        try:
            self._ssl.bio_write(data)
        except SSL.Error as exc:  # pragma: no cover - a memory BIO takes any bytes
            self._fail(DtlsError(f"{self.name}: {exc}"))
            return
        if self.keys is None:
            self._step()
        else:  # after the handshake: a retransmitted flight (our last one was lost), or the peer's close_notify
            try:
                self._ssl.recv(2048)
            except (SSL.WantReadError, SSL.ZeroReturnError):
                pass
            except SSL.Error as exc:
                log.debug("%s: after the handshake: %s", self.name, exc)
            self._flush()

    def _step(self) -> None:
        from OpenSSL import SSL

        assert self._ssl is not None
        try:
            self._ssl.do_handshake()
        except SSL.WantReadError:
            self._flush()
            self._arm()
            return
        except SSL.Error as exc:
            self._flush()  # the alert, if OpenSSL wrote one
            self._fail(DtlsError(f"{self.name}: DTLS handshake refused: {_ssl_reason(exc)}"))
            return
        self._flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self.keys = self._finish()
        except DtlsError as exc:
            self._fail(exc)
            return
        log.info("%s: DTLS-SRTP keyed (%s, as %s, peer sha-256 %s...)", self.name, self.keys.suite, self.role,
                 self.keys.peer_fingerprint[:23])
        assert self._done is not None
        if not self._done.done():
            self._done.set_result(self.keys)

    def _finish(self) -> DtlsKeys:
        """Check the peer's certificate against the signalled fingerprints; export the keys (RFC 5764 §4.2)."""
        assert self._ssl is not None
        cert = self._ssl.get_peer_certificate(as_cryptography=True)
        if cert is None:
            raise DtlsFingerprintError(f"{self.name}: the peer presented no certificate")
        if not any(fingerprint_of(cert, algorithm) == value for algorithm, value in self._fingerprints):
            raise DtlsFingerprintError(
                f"{self.name}: the peer's DTLS certificate (sha-256 {fingerprint_of(cert)}) does not match the "
                f"fingerprint in its SDP ({', '.join(f'{a} {v}' for a, v in self._fingerprints)}): "
                "someone else answered on the media path, or the signalling was altered")
        selected = self._ssl.get_selected_srtp_profile()
        profile = selected.decode("ascii", "replace") if isinstance(selected, bytes) else ""
        if profile not in DTLS_SRTP_PROFILES:
            raise DtlsError(f"{self.name}: no SRTP profile was negotiated (use_srtp: {profile or 'none'})")
        suite, key_len, salt_len = DTLS_SRTP_PROFILES[profile]
        m = self._ssl.export_keying_material(EXPORTER_LABEL, 2 * (key_len + salt_len))
        client_key, server_key = m[:key_len], m[key_len:2 * key_len]
        client_salt, server_salt = m[2 * key_len:2 * key_len + salt_len], m[2 * key_len + salt_len:]
        if self.role == "client":
            return DtlsKeys(suite, client_key, client_salt, server_key, server_salt, profile, fingerprint_of(cert))
        return DtlsKeys(suite, server_key, server_salt, client_key, client_salt, profile, fingerprint_of(cert))

    def _flush(self) -> None:
        """Send what OpenSSL wrote, whole records packed into datagrams of at most :data:`MTU` bytes."""
        from OpenSSL import SSL

        if self._ssl is None:
            return
        data = b""
        while True:
            try:
                data += self._ssl.bio_read(65536)
            except SSL.WantReadError:
                break
        if not data:
            return
        target = self._peer or (self.transport.remote_rtcp if self.rtcp else self.transport.remote_rtp)
        if target is None:
            log.debug("%s: no peer address yet: DTLS flight not sent", self.name)
            return
        datagram = b""
        for record in _records(data):
            if datagram and len(datagram) + len(record) > MTU:
                self._send(datagram, target)
                datagram = b""
            datagram += record
        if datagram:
            self._send(datagram, target)

    def _send(self, datagram: bytes, target: tuple[str, int]) -> None:
        if self.transport.send_datagram(datagram, target, rtcp_socket=self.rtcp):
            self.datagrams_sent += 1

    def _arm(self) -> None:
        """Schedule OpenSSL's retransmission timer (RFC 6347 §4.2.4) on the event loop."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._ssl is None:
            return
        delay = self._ssl.DTLSv1_get_timeout()
        if delay is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(loop.time() + max(0.0, delay), self._retransmit)

    def _retransmit(self) -> None:
        from OpenSSL import SSL

        self._timer = None
        if self._ssl is None or self.keys is not None:
            return
        try:
            self._ssl.DTLSv1_handle_timeout()
        except SSL.Error as exc:
            self._fail(DtlsTimeout(f"{self.name}: DTLS handshake gave up: {_ssl_reason(exc)}"))
            return
        self._flush()
        self._arm()

    def _fail(self, exc: DtlsError) -> None:
        log.warning("%s", exc)
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)
            self._done.exception()  # retrieved here: handshake() re-raises it
        self.close()


def _ssl_reason(exc: Exception) -> str:
    """OpenSSL's reason strings from a pyOpenSSL error (its args hold (lib, func, reason) tuples)."""
    errors = exc.args[0] if exc.args and isinstance(exc.args[0], list) else None
    if errors:
        return "; ".join(str(e[-1]) for e in errors if isinstance(e, tuple) and e)
    return str(exc) or type(exc).__name__
