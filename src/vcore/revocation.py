"""Certificate revocation for a running terminal: which CRL it checks, and the CRL's lifecycle.

A CRL (RFC 5280 §5) says which of the CA's certificates are revoked; it is
signed by the CA and valid until its ``nextUpdate``. OpenSSL refuses every
peer once the CRL it was given is past that date ("CRL has expired"), so a
terminal that is left running with an old CRL refuses every call. This module
is what keeps a station that runs all day on the right side of that:

- :func:`find_crl`: by default a terminal checks revocation with the
  ``crl.pem`` lying next to its trust anchor (``vcore pki init`` writes both
  into the CA directory, and the installation guide copies both to each
  station). Turning revocation off is an explicit choice (``crl=None``,
  ``--no-crl``), logged.
- :func:`read_crl`: a CRL is read, and its signature checked against the
  trust anchors, before it is used; a broken, foreign or truncated file is a
  :class:`~vcore.pki.PkiError`, never a silent "revoke nothing".
- :class:`CrlWatch`: the file is polled (:meth:`CrlWatch.poll`); a new CRL
  copied over it is taken by the running terminal, which rebuilds its TLS
  contexts. :meth:`CrlWatch.problem` and :meth:`CrlWatch.expires_within`
  let the terminal refuse to start, log an error, or warn ahead of time.

Pure functions of their arguments and the file; time (a UTC
:class:`datetime.datetime`) is an argument. Not thread-safe: one terminal owns
one watch.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .pki import PkiError

__all__ = ["CRL_FILE", "CRL_WARN_BEFORE", "CrlState", "CrlWatch", "find_crl", "read_crl", "open_crl", "crl_hint"]

log = logging.getLogger(__name__)

CRL_FILE = "crl.pem"
"""The CRL's file name in a CA directory and next to a station's trust anchor."""
CRL_WARN_BEFORE = dt.timedelta(days=7)
"""How long before its nextUpdate a terminal starts warning that its CRL needs refreshing."""
_MAX_CRL_BYTES = 4 * 1024 * 1024
_ERROR_EVERY = dt.timedelta(hours=1)  # how often an expired CRL is logged again
_WARN_EVERY = dt.timedelta(days=1)  # how often "expires soon" is logged again


@dataclass(frozen=True)
class CrlState:
    """What a CRL file says: its issuer, its validity and how many certificates it revokes."""

    path: Path
    issuer: str
    last_update: dt.datetime
    next_update: dt.datetime | None
    revoked: frozenset[int]
    data: bytes = field(repr=False, default=b"")
    """The file's bytes as read and checked (what the TLS contexts load, not the file read again)."""

    def expired(self, now: dt.datetime) -> bool:
        return self.next_update is not None and now >= self.next_update


def crl_hint(path: str | os.PathLike[str]) -> str:
    """What to do about an expired CRL, for messages."""
    return (f"refresh it on the CA machine (`vcore pki crl CA-DIR`) and copy its crl.pem to {path}; "
            "a running terminal takes the new file within a minute")


def find_crl(trust: Iterable[str | os.PathLike[str]]) -> Path | None:
    """The ``crl.pem`` next to the first trust anchor file that has one, or None."""
    for anchor in trust:
        candidate = Path(anchor).parent / CRL_FILE
        if candidate.is_file():
            return candidate
    return None


def read_crl(path: str | os.PathLike[str], anchors: Sequence[x509.Certificate]) -> CrlState:
    """Read the CRL at ``path`` (PEM or DER) and check it is signed by one of ``anchors``.

    Raises :class:`~vcore.pki.PkiError` for an unreadable file, something that is
    not a CRL, or a CRL no trust anchor signed.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(_MAX_CRL_BYTES + 1)
    except OSError as exc:
        raise PkiError(f"cannot read the CRL {p}: {exc.strerror or exc}") from None
    if len(data) > _MAX_CRL_BYTES:
        raise PkiError(f"the CRL {p} is larger than {_MAX_CRL_BYTES // 1024 // 1024} MiB")
    try:
        crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise PkiError(f"{p} is not a certificate revocation list: {exc}") from None
    for anchor in anchors:
        if anchor.subject != crl.issuer:
            continue
        key = anchor.public_key()
        if isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)) and crl.is_signature_valid(key):
            break
    else:
        raise PkiError(f"the CRL {p} (issuer {crl.issuer.rfc4514_string()!r}) is not signed by a trust anchor "
                       "of this terminal: copy the crl.pem of the CA that issued the certificates")
    return CrlState(p, crl.issuer.rfc4514_string(), crl.last_update_utc, crl.next_update_utc,
                    frozenset(r.serial_number for r in crl), crl.public_bytes(serialization.Encoding.PEM))


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class CrlWatch:
    """The CRL file a terminal checks peers against, re-read when it changes.

    Construction reads it (:func:`read_crl`; its errors propagate). :meth:`poll`
    compares the file's modification time, size and inode with the last read:
    a changed file is read again and, when it is a valid CRL of the same trust
    anchors, replaces the state (``True`` is returned: rebuild the TLS
    contexts). A broken replacement is logged once and the previous CRL kept,
    so a half-copied file never turns revocation off.
    """

    def __init__(self, path: str | os.PathLike[str], anchors: Sequence[x509.Certificate]) -> None:
        self.path = Path(path)
        self._anchors = tuple(anchors)
        self.state = read_crl(self.path, self._anchors)
        self._stamp = _stamp(self.path)
        self._logged: tuple[str, dt.datetime] | None = None

    def poll(self) -> bool:
        """Re-read the file if it changed; True when a new valid CRL was taken."""
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        if stamp is None:
            log.error("the CRL %s is gone; keeping the one read before (revoked: %d)", self.path,
                      len(self.state.revoked))
            return False
        try:
            state = read_crl(self.path, self._anchors)
        except PkiError as exc:
            log.error("keeping the CRL read before: %s", exc)
            return False
        if state.last_update < self.state.last_update:
            log.error("the new %s is older than the CRL read before (issued %s, before %s): keeping the newer",
                      self.path, f"{state.last_update:%Y-%m-%d %H:%M}", f"{self.state.last_update:%Y-%m-%d %H:%M}")
            return False
        added = len(state.revoked - self.state.revoked)
        self.state = state
        log.info("CRL %s reloaded: %d revoked (%d new), valid until %s", self.path, len(state.revoked), added,
                 f"{state.next_update:%Y-%m-%d %H:%M} UTC" if state.next_update else "no date")
        return True

    def problem(self, now: dt.datetime) -> str | None:
        """Why calls are refused right now (an expired CRL), or None."""
        if self.state.expired(now):
            assert self.state.next_update is not None
            return (f"the CRL {self.path} expired on {self.state.next_update:%Y-%m-%d %H:%M} UTC, so every call "
                    f"is refused: {crl_hint(self.path)}")
        return None

    def expires_within(self, now: dt.datetime, delta: dt.timedelta = CRL_WARN_BEFORE) -> bool:
        """True when the CRL is still valid but expires within ``delta``."""
        nxt = self.state.next_update
        return nxt is not None and now < nxt <= now + delta

    def report(self, now: dt.datetime) -> str | None:
        """Log the CRL's state (an error for an expired CRL every hour, a warning in its last week every day).

        Returns :meth:`problem`.
        """
        problem = self.problem(now)
        kind = "expired" if problem else "soon" if self.expires_within(now) else None
        if kind is None:
            self._logged = None
            return None
        every = _ERROR_EVERY if kind == "expired" else _WARN_EVERY
        if self._logged is None or self._logged[0] != kind or now - self._logged[1] >= every:
            self._logged = (kind, now)
            if problem:
                log.error("%s", problem)
            else:
                assert self.state.next_update is not None
                log.warning("the CRL %s expires on %s UTC; after that every call is refused: %s", self.path,
                            f"{self.state.next_update:%Y-%m-%d %H:%M}", crl_hint(self.path))
        return problem


def open_crl(crl: str | os.PathLike[str] | None, trust: Iterable[str | os.PathLike[str]],
             anchors: Sequence[x509.Certificate], owner: str, now: dt.datetime) -> CrlWatch | None:
    """The CRL a terminal named ``owner`` checks: ``crl="auto"`` (the default) is the one next to the trust anchor.

    ``crl=None`` turns revocation checking off (logged as a warning). Raises
    :class:`~vcore.pki.PkiError` when no CRL is found, when it cannot be used,
    and when it has expired (every call would be refused: better a clear error
    at start than a station that refuses calls all day).
    """
    if crl is None:
        log.warning("%s: revocation checking off (no CRL): a revoked certificate can still call and answer",
                    owner)
        return None
    if isinstance(crl, str) and crl == "auto":
        trust = list(trust)
        path = find_crl(trust)
        if path is None:
            where = ", ".join(str(Path(t).parent / CRL_FILE) for t in trust) or "next to the trust anchor"
            raise PkiError(f"no CRL found ({where}): copy crl.pem from the CA directory next to the trust anchor, "
                           "give its path (crl=, --crl, crl = \"PATH\" in the station file), or turn revocation off "
                           "explicitly (crl=None, --no-crl, crl = false)")
    else:
        path = Path(crl)
    watch = CrlWatch(path, anchors)
    problem = watch.problem(now)
    if problem:
        raise PkiError(problem)
    watch.report(now)  # the warning in its last week
    return watch
