"""An installation's private PKI for mutually authenticated H.323 signalling (TLS on TCP 1300).

A :class:`CertificateAuthority` lives in a directory::

    ca.key.pem      the CA's ECDSA P-256 private key (mode 0600)
    ca.cert.pem     the self-signed CA certificate (the trust anchor to distribute)
    crl.pem         the current certificate revocation list (always present, maybe empty)
    issued/         one ``<serial>.cert.pem`` per issued certificate
    revoked.txt     ``serial`` lines (hex) of revoked certificates

Terminal certificates carry the terminal name as subject CN, its H.323
aliases as subjectAltName URIs ``h323:ALIAS`` (RFC 5280 §4.2.1.6; by default
one alias made from the name: "CAF agent" -> ``caf-agent``), its role
(``kiosk`` or ``agent``) as the subject OU, and both TLS client and server
EKUs (RFC 5280 §4.2.1.12). A caller checks that the answering certificate
holds the alias it dialled; a callee checks that the caller's certificate
holds the aliases its Setup claims and, without an allow-list, that its role
is one it accepts (an agent answers kiosks); a terminal's identity file
(:meth:`Identity.load`) is one PEM with its private key, its certificate and
the CA certificate. :func:`server_context`/:func:`client_context` build
``ssl.SSLContext`` objects that require the peer's certificate, check it
chains to the trust anchors and is not on the CRL; the allow-list by CN
(:func:`check_allowed`) is applied after the handshake by the signalling layer.

The CLI, ``python -m vcore.pki init|issue|list|revoke|crl``, is :func:`main`. Every
CRL the CA writes (``init``, ``issue``, ``revoke``, ``crl``) is valid :data:`CRL_DAYS` days
unless told otherwise; stations check revocation with it (see :mod:`vcore.revocation`).
Functions are thread-safe except concurrent writes to one CA directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import CallError, VcoreError

__all__ = [
    "PkiError",
    "Identity",
    "IssuedCertificate",
    "CertificateAuthority",
    "server_context",
    "client_context",
    "peer_common_name",
    "peer_certificate",
    "certificate_aliases",
    "certificate_role",
    "default_alias",
    "ROLES",
    "CRL_DAYS",
    "CERT_WARN_BEFORE",
    "validity_problem",
    "check_allowed",
    "main",
]

log = logging.getLogger(__name__)

_CA_KEY = "ca.key.pem"
_CA_CERT = "ca.cert.pem"
_CRL = "crl.pem"
_ISSUED = "issued"
_REVOKED = "revoked.txt"
CRL_DAYS = 30
"""How long a CRL written by the CA is valid (its nextUpdate), unless told otherwise."""
_ALIAS_URI = "h323:"
ROLES = ("kiosk", "agent")
"""The roles a terminal certificate may carry (subject OU): who may call whom without an allow-list."""


class PkiError(VcoreError):
    """A PKI operation failed (missing CA, unknown certificate, bad identity file)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _common_name(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def default_alias(name: str) -> str:
    """The H.323 alias a terminal named ``name`` gets by default: lower case, words joined by ``-``."""
    words = "".join(c if c.isalnum() or c in "._-" else " " for c in name.lower()).split()
    return "-".join(words)


def certificate_aliases(cert: x509.Certificate) -> tuple[str, ...]:
    """The H.323 aliases a certificate holds (its ``h323:`` subjectAltName URIs), in order."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(uri[len(_ALIAS_URI):] for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
                 if uri.startswith(_ALIAS_URI))


def certificate_role(cert: x509.Certificate) -> str | None:
    """The role (subject OU: ``kiosk`` or ``agent``) a certificate was issued for, None for none."""
    for attr in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        if attr.value in ROLES:
            return str(attr.value)
    return None


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> x509.Certificate | None:
    """The verified peer certificate of a TLS connection, or None."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der) if der else None


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


@dataclass(frozen=True)
class Identity:
    """A terminal's private key and certificate chain (leaf first)."""

    private_key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...]

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def name(self) -> str:
        """The subject CN: the terminal's name."""
        return _common_name(self.certificate)

    @property
    def aliases(self) -> tuple[str, ...]:
        """The H.323 aliases the certificate holds (empty for a certificate issued before aliases)."""
        return certificate_aliases(self.certificate)

    @property
    def role(self) -> str | None:
        """``kiosk``, ``agent`` or None."""
        return certificate_role(self.certificate)

    def __repr__(self) -> str:  # never show the key
        return f"Identity(name={self.name!r}, serial={self.certificate.serial_number:x})"

    def to_pem(self) -> bytes:
        key = self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())
        return key + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write key + chain to one PEM file with mode 0600."""
        _write_private(Path(path), self.to_pem())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Identity:
        """Read a PEM file holding one private key and the certificate chain (leaf first)."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise PkiError(f"cannot read identity {path}: {exc.strerror}") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
            chain = tuple(x509.load_pem_x509_certificates(data))
        except ValueError as exc:
            raise PkiError(f"identity {path} is not a PEM key and certificate chain: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"identity {path} does not hold an EC private key")
        if key.public_key().public_numbers() != chain[0].public_key().public_numbers():  # type: ignore[union-attr]
            raise PkiError(f"identity {path}: the first certificate does not match the private key")
        return cls(key, chain)

    def write_chain_files(self, directory: Path) -> tuple[Path, Path]:
        """Write ``cert.pem`` (chain) and ``key.pem`` for ``SSLContext.load_cert_chain``; returns the paths."""
        cert = directory / "cert.pem"
        key = directory / "key.pem"
        cert.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain))
        _write_private(key, self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return cert, key


@dataclass(frozen=True)
class IssuedCertificate:
    """One row of :meth:`CertificateAuthority.certificates`."""

    name: str
    serial: int
    not_after: dt.datetime
    revoked: bool
    aliases: tuple[str, ...] = ()
    role: str | None = None

    def state(self, now: dt.datetime | None = None) -> str:
        """``revoked``, ``expired`` or ``valid`` (at ``now``, default the current time)."""
        if self.revoked:
            return "revoked"
        return "expired" if (now or _now()) >= self.not_after else "valid"


class CertificateAuthority:
    """A private CA in a directory (see the module docstring)."""

    def __init__(self, directory: Path, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self.directory = directory
        self._key = key
        self.certificate = certificate

    def __repr__(self) -> str:
        return f"CertificateAuthority({str(self.directory)!r}, name={self.name!r})"

    @property
    def name(self) -> str:
        return _common_name(self.certificate)

    @property
    def cert_path(self) -> Path:
        return self.directory / _CA_CERT

    @property
    def crl_path(self) -> Path:
        return self.directory / _CRL

    @classmethod
    def init(cls, directory: str | os.PathLike[str], name: str, days: int = 3650) -> CertificateAuthority:
        """Create a new CA (ECDSA P-256, self-signed) in ``directory``; refuses to overwrite one."""
        path = Path(directory)
        if days < 1:
            raise PkiError(f"a CA must be valid at least one day, not {days}")
        if (path / _CA_KEY).exists():
            raise PkiError(f"{path} already holds a CA")
        path.mkdir(parents=True, exist_ok=True)
        (path / _ISSUED).mkdir(exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(path / _CA_KEY, key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
        (path / _CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (path / _REVOKED).write_text("")
        ca = cls(path, key, cert)
        ca._write_crl()
        log.info("created CA %r in %s", name, path)
        return ca

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> CertificateAuthority:
        path = Path(directory)
        try:
            key = serialization.load_pem_private_key((path / _CA_KEY).read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate((path / _CA_CERT).read_bytes())
        except FileNotFoundError:
            raise PkiError(f"{path} holds no CA (run `vcore pki init`)") from None
        except ValueError as exc:
            raise PkiError(f"{path}: unreadable CA files: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"{path}: the CA key is not an EC key")
        return cls(path, key, cert)

    def issue(self, name: str, days: int = 825, *, aliases: Sequence[str] | None = None,
              role: str | None = None) -> Identity:
        """Issue a terminal certificate with CN ``name`` and a fresh P-256 key; returns its identity.

        ``aliases``: the H.323 aliases it may answer and call as (default: one, from the name);
        ``role``: ``kiosk`` or ``agent`` (None: no role, accepted only by terminals with an allow-list).
        """
        if not name or any(c in name for c in "\n\r\0/"):
            raise PkiError(f"terminal name {name!r} is not allowed")
        if days < 1:
            raise PkiError(f"a certificate must be valid at least one day, not {days}")
        if role is not None and role not in ROLES:
            raise PkiError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        aliases = list(aliases) if aliases else [default_alias(name)]
        for alias in aliases:
            if not alias or any(c.isspace() or c in "@:/\\\0[]" for c in alias):
                raise PkiError(f"alias {alias!r} is not allowed (no spaces, '@', ':' or '/')")
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
        if role is not None:
            subject.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role))
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        ca_ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + dt.timedelta(days=days), self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(_ALIAS_URI + a) for a in aliases]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        (self.directory / _ISSUED).mkdir(exist_ok=True)
        (self.directory / _ISSUED / f"{cert.serial_number:x}.cert.pem").write_bytes(
            cert.public_bytes(serialization.Encoding.PEM))
        log.info("issued certificate %x for %r (aliases %s, role %s)", cert.serial_number, name,
                 ", ".join(aliases), role)
        self._write_crl()  # every visit to the CA machine refreshes the CRL's validity too
        return Identity(key, (cert, self.certificate))

    def _issued(self) -> list[x509.Certificate]:
        folder = self.directory / _ISSUED
        if not folder.is_dir():
            return []
        return [x509.load_pem_x509_certificate(p.read_bytes()) for p in sorted(folder.glob("*.cert.pem"))]

    def _revoked_serials(self) -> set[int]:
        path = self.directory / _REVOKED
        if not path.exists():
            return set()
        return {int(line, 16) for line in path.read_text().split() if line}

    def certificates(self) -> list[IssuedCertificate]:
        """Every certificate this CA issued, with its revocation state, by name."""
        revoked = self._revoked_serials()
        rows = [IssuedCertificate(_common_name(c), c.serial_number, c.not_valid_after_utc, c.serial_number in revoked,
                                  certificate_aliases(c), certificate_role(c)) for c in self._issued()]
        return sorted(rows, key=lambda r: (r.name, r.not_after))

    def revoke(self, name_or_serial: str) -> list[int]:
        """Revoke every valid certificate whose CN is ``name_or_serial``, or the one with that hex serial.

        Rewrites ``crl.pem``; returns the revoked serials.
        """
        certs = self._issued()
        targets = [c.serial_number for c in certs if _common_name(c) == name_or_serial]
        if not targets:
            try:
                serial = int(name_or_serial, 16)
            except ValueError:
                serial = -1
            targets = [c.serial_number for c in certs if c.serial_number == serial]
        if not targets:
            raise PkiError(f"no certificate named or numbered {name_or_serial!r}")
        revoked = self._revoked_serials() | set(targets)
        (self.directory / _REVOKED).write_text("".join(f"{s:x}\n" for s in sorted(revoked)))
        self._write_crl()
        log.info("revoked %s", ", ".join(f"{s:x}" for s in targets))
        return targets

    def crl(self) -> x509.CertificateRevocationList:
        return x509.load_pem_x509_crl(self.crl_path.read_bytes())

    def refresh_crl(self, days: int = CRL_DAYS) -> dt.datetime:
        """Re-sign ``crl.pem`` with the same revoked serials, valid ``days`` more (1 to 365); returns nextUpdate.

        A station refuses every call once its copy of the CRL is past that date: refresh it
        (and copy it to the stations) well before, from a scheduled job on the CA machine.
        """
        if not 1 <= days <= 365:
            raise PkiError(f"a CRL is valid 1 to 365 days, not {days}")
        return self._write_crl(days)

    def _write_crl(self, days: int = CRL_DAYS) -> dt.datetime:
        now = _now()
        next_update = now + dt.timedelta(days=days)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(next_update)
        )
        for serial in sorted(self._revoked_serials()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
        crl = builder.sign(self._key, hashes.SHA256())
        # write then rename: a station copying or polling the file never reads half of it
        tmp = self.directory / (_CRL + ".tmp")
        tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        os.replace(tmp, self.directory / _CRL)
        return next_update


def _context(purpose: ssl.Purpose, identity: Identity, trust_anchors: Iterable[x509.Certificate] | str | os.PathLike[str],
             crl: str | os.PathLike[str] | bytes | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = False  # terminals are named by CN, checked by the allow-list after the handshake
    if isinstance(trust_anchors, (str, os.PathLike)):
        ctx.load_verify_locations(cafile=os.fspath(trust_anchors))
    else:
        pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in trust_anchors)
        if not pem:
            raise PkiError("no trust anchors given")
        ctx.load_verify_locations(cadata=pem)
    # load_cert_chain needs files (and so does a CRL given as bytes): a private temporary directory
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vcore-tls-") as tmp:
        if crl is not None:
            if isinstance(crl, bytes):
                path = Path(tmp) / "crl.pem"
                path.write_bytes(crl)
                crl = path
            if not Path(crl).is_file():
                raise PkiError(f"cannot read CRL {crl}")
            try:
                ctx.load_verify_locations(cafile=os.fspath(crl))  # OpenSSL loads the CRLs of a PEM file too
            except ssl.SSLError as exc:
                raise PkiError(f"cannot load CRL {crl}: {exc}") from None
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        cert, key = identity.write_chain_files(Path(tmp))
        ctx.load_cert_chain(cert, key)
    return ctx


def server_context(identity: Identity, trust_anchors: Iterable[x509.Certificate] | str | os.PathLike[str],
                   crl: str | os.PathLike[str] | bytes | None = None) -> ssl.SSLContext:
    """TLS server context that requires a client certificate chaining to ``trust_anchors`` (and not in ``crl``).

    ``crl``: a CRL file, or its PEM bytes; None: no revocation check.
    """
    return _context(ssl.Purpose.CLIENT_AUTH, identity, trust_anchors, crl)


def client_context(identity: Identity, trust_anchors: Iterable[x509.Certificate] | str | os.PathLike[str],
                   crl: str | os.PathLike[str] | bytes | None = None) -> ssl.SSLContext:
    """TLS client context presenting ``identity`` and verifying the server against ``trust_anchors``."""
    return _context(ssl.Purpose.SERVER_AUTH, identity, trust_anchors, crl)


CERT_WARN_BEFORE = dt.timedelta(days=30)
"""How long before a terminal's own certificate expires it starts warning."""


def validity_problem(identity: Identity, now: dt.datetime) -> tuple[int, str] | None:
    """Whether a terminal's own certificate is usable at ``now``: ``(logging level, message)`` or None.

    ERROR when it is not valid yet or has expired (every peer refuses it), WARNING in its last
    :data:`CERT_WARN_BEFORE`.
    """
    cert = identity.certificate
    renew = f"issue a new one on the CA machine (`vcore pki issue CA-DIR {identity.name!r} --role …`)"
    if now < cert.not_valid_before_utc:
        return logging.ERROR, (f"the certificate of {identity.name!r} is not valid before "
                               f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: check this machine's clock")
    if now >= cert.not_valid_after_utc:
        return logging.ERROR, (f"the certificate of {identity.name!r} expired on "
                               f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, so every peer refuses it: {renew}")
    if now + CERT_WARN_BEFORE >= cert.not_valid_after_utc:
        return logging.WARNING, (f"the certificate of {identity.name!r} expires on "
                                 f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: {renew}")
    return None


def peer_common_name(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The CN of the verified peer certificate of a TLS connection, or None."""
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    subject: Any = cert.get("subject", ())
    for rdn in subject:
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def check_allowed(name: str | None, allow_list: Iterable[str] | None) -> bool:
    """True when no allow-list is configured, or the peer's ``name`` is on it."""
    if allow_list is None:
        return True
    return name is not None and name in set(allow_list)


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    from .cli import integer, nonempty, output_file

    parser = argparse.ArgumentParser(prog="vcore pki", description="Private CA for vcore terminals")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("init", help="create the installation's CA")
    p.add_argument("directory")
    p.add_argument("--name", default="vcore CA", type=nonempty, help="the CA's common name")
    p.add_argument("--days", type=integer(1, 36500, "days"), default=3650,
                   help="validity of the CA certificate (default 3650)")
    p = sub.add_parser("issue", help="issue a terminal certificate (writes NAME.pem: key + chain)")
    p.add_argument("directory")
    p.add_argument("name", type=nonempty)
    p.add_argument("--days", type=integer(1, 3650, "days"), default=825,
                   help="validity of the certificate, 1 to 3650 days (default 825)")
    p.add_argument("--role", choices=ROLES, required=True,
                   help="kiosk or agent: an agent without an allow-list answers kiosks only")
    p.add_argument("--alias", action="append", default=[], metavar="ALIAS",
                   help="H.323 alias the terminal is called by (repeatable; default: from the name, "
                        "'CAF agent' -> caf-agent)")
    p.add_argument("--out", type=output_file(), help="identity file to write (default: DIRECTORY/NAME.pem)")
    p = sub.add_parser("list", help="list issued certificates")
    p.add_argument("directory")
    p = sub.add_parser("revoke", help="revoke by terminal name or hex serial, and rewrite the CRL")
    p.add_argument("directory")
    p.add_argument("target")
    p = sub.add_parser("crl", help="re-sign the CRL for DAYS more (run it from a scheduled job; copy crl.pem "
                                   "to the stations)")
    p.add_argument("directory")
    p.add_argument("--days", type=integer(1, 365, "days"), default=CRL_DAYS,
                   help=f"validity, 1 to 365 days (default {CRL_DAYS})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``vcore pki init|issue|list|revoke|crl``; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return int(exc.code or 0)
    try:
        if args.command == "init":
            ca = CertificateAuthority.init(args.directory, args.name, args.days)
            print(f"created CA {ca.name!r}; distribute {ca.cert_path} and {ca.crl_path}")
        elif args.command == "issue":
            ca = CertificateAuthority.load(args.directory)
            identity = ca.issue(args.name, args.days, aliases=args.alias or None, role=args.role)
            out = Path(args.out) if args.out else Path(args.directory) / f"{args.name}.pem"
            identity.save(out)
            print(f"issued {identity.certificate.serial_number:x} for {args.name!r} ({args.role}, "
                  f"alias {', '.join(identity.aliases)}): {out}")
        elif args.command == "list":
            ca = CertificateAuthority.load(args.directory)
            now = _now()
            for row in ca.certificates():
                print(f"{row.serial:040x}  {row.not_after:%Y-%m-%d}  {row.state(now):7}  {row.role or '-':5}  "
                      f"{row.name}  ({', '.join(row.aliases) or 'no alias'})")
            nxt = ca.crl().next_update_utc
            print(f"CRL {ca.crl_path}: valid until {nxt:%Y-%m-%d %H:%M} UTC"
                  + (" (EXPIRED: run `vcore pki crl`)" if nxt is not None and nxt <= now else ""))
        elif args.command == "revoke":
            ca = CertificateAuthority.load(args.directory)
            for serial in ca.revoke(args.target):
                print(f"revoked {serial:x}")
            print(f"copy {ca.crl_path} to every station (next to its ca.cert.pem)")
        elif args.command == "crl":
            ca = CertificateAuthority.load(args.directory)
            nxt = ca.refresh_crl(args.days)
            print(f"{ca.crl_path} valid until {nxt:%Y-%m-%d %H:%M} UTC; copy it to every station "
                  "(next to its ca.cert.pem)")
    except (PkiError, CallError, OSError) as exc:
        from .cli import fail

        return fail(exc, 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
