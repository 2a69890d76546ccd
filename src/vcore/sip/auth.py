"""HTTP digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760: MD5 and SHA-256, ``qop=auth``).

:func:`parse_challenge` reads a ``WWW-Authenticate``/``Proxy-Authenticate``
value, :func:`authorization` answers it; :class:`DigestVerifier` is the
server side (vcore's tests use it as a registrar; a kiosk never needs it).
A challenge offering several algorithms comes as several headers: the
strongest one vcore knows wins (:func:`best_challenge`). Passwords never appear
in logs or ``repr``. Pure functions; thread-safe.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import SipParseError

__all__ = [
    "ALGORITHMS",
    "Challenge",
    "Credentials",
    "DigestVerifier",
    "authorization",
    "best_challenge",
    "parse_authorization",
    "parse_challenge",
]

ALGORITHMS: dict[str, Callable[[bytes], str]] = {  # RFC 8760 §2: SHA-256 preferred, MD5 for old servers; SHA-512-256 too
    "SHA-512-256": lambda b: hashlib.new("sha512_256", b).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
    "MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
}
_PREFERENCE = ("SHA-512-256", "SHA-256", "MD5")
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]+)\s*(?:,|$)')
MAX_NONCE_COUNT = 0xFFFFFFFF


@dataclass(frozen=True)
class Credentials:
    """A user name and password for a registrar or proxy (``realm`` None: any realm)."""

    username: str
    password: str = field(repr=False)
    realm: str | None = None


@dataclass(frozen=True)
class Challenge:
    """One digest challenge (RFC 7616 §3.3)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    proxy: bool = False  # came in Proxy-Authenticate (answer with Proxy-Authorization)


def _auth_params(text: str, what: str) -> dict[str, str]:
    scheme, _, rest = text.strip().partition(" ")
    if scheme.lower() != "digest":
        raise SipParseError(f"{what}: scheme {scheme[:20]!r} is not Digest")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None:
            raise SipParseError(f"{what}: cannot read parameters at {rest[pos:pos + 30]!r}")
        value = m.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[m.group(1).lower()] = value
        pos = m.end()
    return params


def parse_challenge(text: str, *, proxy: bool = False) -> Challenge:
    """Parse a digest challenge; raises :class:`SipParseError` (unknown algorithms included)."""
    params = _auth_params(text, "challenge")
    if "realm" not in params or "nonce" not in params:
        raise SipParseError("challenge without realm or nonce")
    algorithm = params.get("algorithm", "MD5").upper()
    base = algorithm.removesuffix("-SESS")
    if base not in ALGORITHMS:
        raise SipParseError(f"challenge algorithm {algorithm[:20]!r} is not supported (MD5, SHA-256, SHA-512-256)")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    if qop and "auth" not in qop:
        raise SipParseError(f"challenge qop {params['qop'][:20]!r}: vcore supports only qop=auth")
    return Challenge(params["realm"], params["nonce"], algorithm, qop, params.get("opaque"),
                     params.get("stale", "").lower() == "true", proxy)


def best_challenge(values: list[str], *, proxy: bool = False) -> Challenge:
    """The strongest usable challenge among several headers (RFC 8760 §2.4); raises if none is usable."""
    usable: list[Challenge] = []
    errors: list[str] = []
    for value in values:
        try:
            usable.append(parse_challenge(value, proxy=proxy))
        except SipParseError as exc:
            errors.append(str(exc))
    if not usable:
        raise SipParseError("no usable digest challenge: " + ("; ".join(errors) or "none given"))
    return min(usable, key=lambda c: _PREFERENCE.index(c.algorithm.removesuffix("-SESS")))


def _response(algorithm: str, username: str, realm: str, password: str, method: str, uri: str, nonce: str,
              nc: str | None, cnonce: str | None, qop: str | None) -> str:
    h = ALGORITHMS[algorithm.removesuffix("-SESS")]
    ha1 = h(f"{username}:{realm}:{password}".encode())
    if algorithm.endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode())
    ha2 = h(f"{method}:{uri}".encode())
    if qop:
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())
    return h(f"{ha1}:{nonce}:{ha2}".encode())


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization(challenge: Challenge, credentials: Credentials, method: str, uri: str, nonce_count: int = 1,
                  cnonce: str | None = None) -> str:
    """The ``Authorization`` (or ``Proxy-Authorization``) value answering ``challenge``."""
    if not 0 < nonce_count <= MAX_NONCE_COUNT:
        raise SipParseError(f"nonce count {nonce_count} out of range")
    qop = "auth" if "auth" in challenge.qop else None
    cnonce = cnonce or secrets.token_hex(8)
    nc = f"{nonce_count:08x}"
    response = _response(challenge.algorithm, credentials.username, challenge.realm, credentials.password, method,
                         uri, challenge.nonce, nc, cnonce, qop)
    parts = [f"username={_quote(credentials.username)}", f"realm={_quote(challenge.realm)}",
             f"nonce={_quote(challenge.nonce)}", f"uri={_quote(uri)}", f"response={_quote(response)}",
             f"algorithm={challenge.algorithm}"]
    if qop:
        parts += [f"qop={qop}", f"nc={nc}", f"cnonce={_quote(cnonce)}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    return "Digest " + ", ".join(parts)


def parse_authorization(text: str) -> dict[str, str]:
    """The parameters of an ``Authorization`` value (names lower-cased)."""
    params = _auth_params(text, "authorization")
    for name in ("username", "realm", "nonce", "uri", "response"):
        if name not in params:
            raise SipParseError(f"authorization without {name}")
    return params


class DigestVerifier:
    """The server side: issues nonces (HMAC-stamped, ``lifetime`` seconds) and checks answers.

    ``users``: user name -> password. Nonce counts are remembered per nonce so
    a replayed answer is refused.
    """

    def __init__(self, realm: str, users: dict[str, str], *, algorithm: str = "SHA-256",
                 lifetime: float = 300.0) -> None:
        if algorithm.removesuffix("-SESS") not in ALGORITHMS:
            raise SipParseError(f"unsupported algorithm {algorithm}")
        self.realm = realm
        self.algorithm = algorithm
        self.lifetime = lifetime
        self._users = dict(users)
        self._secret = secrets.token_bytes(32)
        self._counts: dict[str, int] = {}

    def challenge(self, now: float | None = None, *, stale: bool = False) -> str:
        stamp = f"{(time.time() if now is None else now):.0f}"
        mac = hmac.new(self._secret, stamp.encode(), "sha256").hexdigest()[:32]
        nonce = f"{stamp}.{mac}"
        return (f'Digest realm={_quote(self.realm)}, nonce={_quote(nonce)}, algorithm={self.algorithm}, '
                f'qop="auth"' + (", stale=true" if stale else ""))

    def verify(self, header: str, method: str, now: float | None = None) -> str | None:
        """The authenticated user name, or None (wrong password, unknown user, stale or replayed nonce)."""
        try:
            p = parse_authorization(header)
        except SipParseError:
            return None
        stamp, _, mac = p["nonce"].partition(".")
        expected = hmac.new(self._secret, stamp.encode(), "sha256").hexdigest()[:32]
        if not hmac.compare_digest(mac, expected) or not stamp.isdigit():
            return None
        if (time.time() if now is None else now) - int(stamp) > self.lifetime:
            return None
        password = self._users.get(p["username"])
        if password is None or p["realm"] != self.realm or p.get("algorithm", "MD5").upper() != self.algorithm:
            return None
        nc = p.get("nc")
        if p.get("qop") == "auth":
            if nc is None or "cnonce" not in p or not re.fullmatch(r"[0-9a-fA-F]{8}", nc):
                return None
            count = int(nc, 16)
            if count <= self._counts.get(p["nonce"], 0):
                return None  # replayed
        expected_response = _response(self.algorithm, p["username"], self.realm, password, method, p["uri"],
                                      p["nonce"], nc, p.get("cnonce"), p.get("qop"))
        if not hmac.compare_digest(expected_response, p["response"]):
            return None
        if nc is not None:
            self._counts[p["nonce"]] = int(nc, 16)
        return p["username"]
