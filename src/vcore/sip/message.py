"""SIP messages (RFC 3261 §7, §20, §25): URIs, name-addr headers, Via, and the message itself.

Strict and bounded: a message is at most :data:`MAX_MESSAGE` bytes with at most
:data:`MAX_HEADERS` header fields, lines end in CRLF, ``Content-Length`` must
match the body (a stream needs it), the mandatory headers of §8.1.1 must be
present and well formed. Anything else raises :class:`SipParseError` with a
message naming the fault. Folded header lines (§7.3.1) are unfolded; compact
header names (§7.3.3) are expanded. Serialization always writes the long
names, CRLF line ends and a ``Content-Length``.

No maintained Python package parses SIP without also imposing a user agent's
policy (pyVoIP, PySipIO are whole phones with lenient parsing), so vcore keeps
this compact parser, fuzzed like its other parsers. Pure functions and values;
thread-safe.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from .errors import SipParseError

__all__ = [
    "BRANCH_COOKIE",
    "MAX_HEADERS",
    "MAX_MESSAGE",
    "NameAddr",
    "SipMessage",
    "SipUri",
    "StreamFramer",
    "Via",
    "new_branch",
    "new_tag",
    "parse_message",
    "parse_params",
    "split_commas",
]

MAX_MESSAGE = 65_535  # bytes: the largest UDP datagram, and vcore's limit on a stream too
MAX_HEADERS = 128
MAX_LINE = 8_192
BRANCH_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7
SIP_VERSION = "SIP/2.0"

COMPACT = {  # RFC 3261 §7.3.3, RFC 3515, RFC 4028, RFC 3841
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length", "c": "Content-Type",
    "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via", "o": "Event", "r": "Refer-To",
    "u": "Allow-Events", "x": "Session-Expires",
}
_CANONICAL = {n.lower(): n for n in (
    "Call-ID", "CSeq", "WWW-Authenticate", "Proxy-Authenticate", "Proxy-Authorization", "Authorization",
    "Content-Length", "Content-Type", "Max-Forwards", "Record-Route", "User-Agent", "Allow", "Supported",
    "Require", "Contact", "From", "To", "Via", "Route", "Expires", "Server", "Accept", "Min-Expires",
    "Unsupported", "Retry-After", "Warning", "Session-Expires", "Reason", "Event", "Proxy-Require",
)}

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")  # RFC 3261 §25.1 token
_HOSTNAME = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                       r"[A-Za-z0-9])?\.?$")
_USER = re.compile(r"^[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+$")  # RFC 3261 §25.1 user (unreserved / escaped / user-unreserved)
_PARAM = re.compile(r"^[A-Za-z0-9\-_.!~*'()%\[\]/:&+$]+$")
_STATUS_LINE = re.compile(r"^SIP/2\.0 ([1-6][0-9]{2}) (.*)$")
_REQUEST_LINE = re.compile(r"^([A-Za-z0-9\-.!%*_+`'~]+) (\S+) SIP/2\.0$")
MANDATORY = ("Via", "To", "From", "Call-ID", "CSeq")  # RFC 3261 §8.1.1 (Max-Forwards: requests only)


def new_branch() -> str:
    """A fresh RFC 3261 branch (magic cookie + 96 random bits)."""
    return BRANCH_COOKIE + secrets.token_hex(12)


def new_tag() -> str:
    """A fresh From/To tag (RFC 3261 §19.3: at least 32 random bits)."""
    return secrets.token_hex(8)


def canonical_name(name: str) -> str:
    """The long form of a header name, in its usual spelling (``i`` -> ``Call-ID``)."""
    if not _TOKEN.match(name):
        raise SipParseError(f"invalid header name {name[:40]!r}")
    low = name.lower()
    if low in COMPACT:
        return COMPACT[low]
    return _CANONICAL.get(low) or "-".join(p[:1].upper() + p[1:].lower() for p in low.split("-"))


def split_commas(value: str) -> list[str]:
    """Split a header value on commas outside quotes and angle brackets (RFC 3261 §7.3.1)."""
    parts: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    start = 0
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
    if quoted or depth != 0:
        raise SipParseError(f"unbalanced quotes or angle brackets in {value[:60]!r}")
    parts.append(value[start:].strip())
    if any(not p for p in parts):
        raise SipParseError(f"empty element in list {value[:60]!r}")
    return parts


def parse_params(text: str, what: str) -> dict[str, str | None]:
    """``;a=b;c`` -> ``{"a": "b", "c": None}`` (names lower-cased; quoted values unquoted)."""
    params: dict[str, str | None] = {}
    if not text:
        return params
    if not text.startswith(";"):
        raise SipParseError(f"{what}: expected ';' before parameters, got {text[:40]!r}")
    for item in text[1:].split(";"):
        name, sep, value = item.strip().partition("=")
        name = name.strip().lower()
        if not name or not _TOKEN.match(name):
            raise SipParseError(f"{what}: invalid parameter {item[:40]!r}")
        if name in params:
            raise SipParseError(f"{what}: parameter {name!r} repeated")
        if sep:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            elif not value or not _PARAM.match(value):
                raise SipParseError(f"{what}: invalid value for parameter {name!r}")
            params[name] = value
        else:
            params[name] = None
    return params


def _format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _check_host(host: str, what: str) -> str:
    if host.startswith("["):
        if not host.endswith("]"):
            raise SipParseError(f"{what}: unterminated IPv6 reference {host[:60]!r}")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise SipParseError(f"{what}: invalid IPv6 address {host[:60]!r}") from None
        return host[1:-1]
    if not host or len(host) > 253 or not _HOSTNAME.match(host):
        raise SipParseError(f"{what}: invalid host {host[:60]!r}")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise SipParseError(f"{what}: invalid IPv4 address {host[:60]!r}") from None
    return host


def _split_hostport(text: str, what: str) -> tuple[str, int | None]:
    m = re.fullmatch(r"(\[[^\]]*\]|[^:\[\]]+)(?::([0-9]{1,5}))?", text)
    if m is None:
        raise SipParseError(f"{what}: invalid host[:port] {text[:60]!r}")
    host = _check_host(m.group(1), what)
    port = int(m.group(2)) if m.group(2) else None
    if port is not None and not 0 < port < 65536:
        raise SipParseError(f"{what}: port {port} out of range")
    return host, port


def format_host(host: str) -> str:
    """``::1`` -> ``[::1]`` (RFC 3261 §25.1 IPv6reference), other hosts as they are."""
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 §19.1): user, host, port, parameters, headers (kept raw)."""

    scheme: str
    host: str
    user: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict, compare=False, hash=False)
    headers: str = ""

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse ``sip:user@host:port;params?headers``; raises :class:`SipParseError`."""
        if len(text) > MAX_LINE:
            raise SipParseError("URI too long")
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips"):
            raise SipParseError(f"not a sip: or sips: URI: {text[:60]!r}")
        rest, _, headers = rest.partition("?")
        user = None
        if "@" in rest:
            userinfo, _, rest = rest.rpartition("@")
            user = userinfo.partition(":")[0]  # a password in a URI is ignored (RFC 3261 §19.1.1: not recommended)
            if not user or not _USER.match(user):
                raise SipParseError(f"invalid user part in URI {text[:60]!r}")
        hostport, semi, params = rest.partition(";")
        host, port = _split_hostport(hostport, "URI")
        return cls(scheme, host, user, port, parse_params(semi + params, "URI"), headers)

    @property
    def transport(self) -> str:
        """The ``transport`` parameter (lower case), ``tls`` for sips: without one."""
        t = self.params.get("transport")
        return t.lower() if t else ("tls" if self.scheme == "sips" else "udp")

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    def without_params(self) -> SipUri:
        return replace(self, params={}, headers="")

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        headers = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{user}{format_host(self.host)}{port}{_format_params(self.params)}{headers}"


@dataclass(frozen=True)
class NameAddr:
    """``"Display" <uri>;params`` (From, To, Contact, Route, Record-Route; RFC 3261 §20)."""

    uri: SipUri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        display = None
        quoted = re.match(r'"(?:[^"\\]|\\.)*"', text) if text.startswith('"') else None
        if quoted is None and text.startswith('"'):
            raise SipParseError(f"unterminated display name in {text[:60]!r}")
        split = quoted.end() if quoted else 0  # a '<' inside the quoted display name is not the URI's
        if "<" in text[split:]:
            before, _, after = text[split:].partition("<")
            before = text[:split] + before
            uri_text, close, params = after.partition(">")
            if not close:
                raise SipParseError(f"missing '>' in {text[:60]!r}")
            before = before.strip()
            if before.startswith('"'):
                if len(before) < 2 or not before.endswith('"'):
                    raise SipParseError(f"unterminated display name in {text[:60]!r}")
                display = re.sub(r"\\(.)", r"\1", before[1:-1])
            elif before:
                if not all(_TOKEN.match(w) for w in before.split()):
                    raise SipParseError(f"invalid display name {before[:40]!r}")
                display = " ".join(before.split())
            uri = SipUri.parse(uri_text.strip())
        else:  # addr-spec: parameters after it belong to the header (RFC 3261 §20.10)
            uri_text, semi, params = text.partition(";")
            if "?" in uri_text or "," in uri_text:
                raise SipParseError(f"a URI with headers or commas must be in angle brackets: {text[:60]!r}")
            uri = SipUri.parse(uri_text.strip())
            params = semi + params
        return cls(uri, display or None, parse_params(params.strip(), "name-addr"))

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params={**self.params, "tag": tag})

    def __str__(self) -> str:
        display = ""
        if self.display:
            escaped = self.display.replace("\\", "\\\\").replace('"', '\\"')
            display = f'"{escaped}" '
        return f"{display}<{self.uri}>{_format_params(self.params)}"


@dataclass(frozen=True)
class Via:
    """One Via value (RFC 3261 §20.42): transport, sent-by, parameters (branch, received, rport)."""

    transport: str
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def parse(cls, text: str) -> Via:
        m = re.fullmatch(r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9]+)\s+([^;\s]+(?:\s*:\s*[0-9]+)?)\s*(;.*)?", text.strip(),
                         re.IGNORECASE | re.DOTALL)
        if m is None:
            raise SipParseError(f"invalid Via {text[:60]!r}")
        host, port = _split_hostport(re.sub(r"\s+", "", m.group(2)), "Via")
        params = parse_params((m.group(3) or "").strip(), "Via")
        rport = params.get("rport")
        if rport is not None and (not rport.isdigit() or not 0 < int(rport) < 65536):
            raise SipParseError(f"invalid Via rport {rport[:10]!r}")
        if "received" in params:
            try:
                ipaddress.ip_address(params["received"] or "")
            except ValueError:
                raise SipParseError("invalid Via received address") from None
        return cls(m.group(1).upper(), host, port, params)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"SIP/2.0/{self.transport} {format_host(self.host)}{port}{_format_params(self.params)}"


@dataclass
class SipMessage:
    """A request (``method``, ``uri``) or a response (``status``, ``reason``) with headers and body.

    ``headers``: (long name, value) in order; lookups are case-insensitive. Mutable
    while being built; :meth:`serialize` writes ``Content-Length`` from the body.
    """

    method: str | None = None
    uri: SipUri | None = None
    status: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    # ------------------------------------------------------------ construction

    @classmethod
    def request(cls, method: str, uri: SipUri, headers: list[tuple[str, str]] | None = None,
                body: bytes = b"") -> SipMessage:
        return cls(method=method, uri=uri, headers=list(headers or []), body=body)

    @classmethod
    def response(cls, status: int, reason: str, headers: list[tuple[str, str]] | None = None,
                 body: bytes = b"") -> SipMessage:
        return cls(status=status, reason=reason, headers=list(headers or []), body=body)

    @property
    def is_request(self) -> bool:
        return self.method is not None

    # ------------------------------------------------------------ headers

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (long or compact name), or None."""
        name = canonical_name(name)
        return next((v for n, v in self.headers if n == name), None)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, comma-separated lists split (not for WWW-Authenticate & co)."""
        name = canonical_name(name)
        out: list[str] = []
        for n, v in self.headers:
            if n == name:
                out += [v] if name in _SINGLE_VALUED else split_commas(v)
        return out

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` header with one value (appended at the end when absent)."""
        name = canonical_name(name)
        for i, (n, _) in enumerate(self.headers):
            if n == name:
                self.headers[i] = (name, value)
                self.headers[i + 1:] = [(a, b) for a, b in self.headers[i + 1:] if a != name]
                return
        self.headers.append((name, value))

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        name = canonical_name(name)
        if first:
            self.headers.insert(0, (name, value))
        else:
            self.headers.append((name, value))

    def remove(self, name: str) -> None:
        name = canonical_name(name)
        self.headers = [(n, v) for n, v in self.headers if n != name]

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.get_all("Via")]

    @property
    def top_via(self) -> Via:
        vias = self.get_all("Via")
        if not vias:
            raise SipParseError("no Via")
        return Via.parse(vias[0])

    def replace_top_via(self, via: Via) -> None:
        """Rewrite the first Via value (RFC 3581 received/rport), keeping the others."""
        for i, (n, v) in enumerate(self.headers):
            if n == "Via":
                rest = split_commas(v)[1:]
                self.headers[i] = ("Via", ", ".join([str(via)] + rest))
                return
        raise SipParseError("no Via")

    @property
    def call_id(self) -> str:
        value = self.get("Call-ID")
        if value is None:
            raise SipParseError("no Call-ID")
        return value

    @property
    def cseq(self) -> tuple[int, str]:
        value = self.get("CSeq")
        m = re.fullmatch(r"([0-9]{1,10})\s+([A-Za-z0-9\-.!%*_+`'~]+)", (value or "").strip())
        if m is None or int(m.group(1)) >= 2**31:  # RFC 3261 §8.1.1.5: less than 2**31
            raise SipParseError(f"invalid CSeq {value!r}")
        return int(m.group(1)), m.group(2)

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self.get("From") or "")

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self.get("To") or "")

    @property
    def contact(self) -> NameAddr | None:
        values = self.get_all("Contact")
        if not values or values[0] == "*":
            return None
        return NameAddr.parse(values[0])

    @property
    def content_type(self) -> str | None:
        value = self.get("Content-Type")
        return value.split(";")[0].strip().lower() if value else None

    def iter_headers(self) -> Iterator[tuple[str, str]]:
        return iter(self.headers)

    # ------------------------------------------------------------ wire

    def first_line(self) -> str:
        if self.method is not None:
            return f"{self.method} {self.uri} {SIP_VERSION}"
        return f"{SIP_VERSION} {self.status} {self.reason}"

    def serialize(self) -> bytes:
        """The message on the wire: long header names, CRLF, ``Content-Length`` from the body."""
        lines = [self.first_line()]
        lines += [f"{n}: {v}" for n, v in self.headers if n != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        return head + self.body

    def summary(self) -> str:
        """A one-line description for logs (no bodies, so no keys)."""
        if self.method is not None:
            return f"{self.method} {self.uri}"
        return f"{self.status} {self.reason} ({self.get('CSeq')})"


_SINGLE_VALUED = {"WWW-Authenticate", "Proxy-Authenticate", "Authorization", "Proxy-Authorization", "User-Agent",
                  "Server", "Subject", "Call-ID", "CSeq", "Content-Type", "Date", "Warning", "Reason"}


def _unfold(head: str) -> list[str]:
    lines: list[str] = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):
            if not lines:
                raise SipParseError("continuation line before the first header")
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def parse_message(data: bytes, *, stream: bool = False) -> SipMessage:
    """Parse one whole message; raises :class:`SipParseError` naming the fault.

    ``stream``: the message came over TCP/TLS and ``Content-Length`` is
    mandatory (RFC 3261 §18.3); over UDP a missing one means "the rest of the
    datagram", and bytes beyond it are discarded.
    """
    if len(data) > MAX_MESSAGE:
        raise SipParseError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise SipParseError("no empty line after the headers (every line must end in CRLF)")
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("headers are not UTF-8") from None
    if "\n" in head.replace("\r\n", "") or "\r" in head.replace("\r\n", ""):
        raise SipParseError("bare CR or LF in the headers (lines must end in CRLF)")
    if "\x00" in head:
        raise SipParseError("NUL byte in the headers")
    lines = _unfold(head)
    first = lines[0]
    msg = SipMessage()
    if first.startswith("SIP/"):
        m = _STATUS_LINE.match(first)
        if m is None:
            raise SipParseError(f"invalid status line {first[:60]!r}")
        msg.status, msg.reason = int(m.group(1)), m.group(2)
    else:
        m = _REQUEST_LINE.match(first)
        if m is None:
            raise SipParseError(f"invalid request line {first[:60]!r}")
        msg.method = m.group(1)
        if msg.method != msg.method.upper():
            raise SipParseError(f"method {msg.method!r} is not upper case")
        msg.uri = SipUri.parse(m.group(2))
    if len(lines) - 1 > MAX_HEADERS:
        raise SipParseError(f"more than {MAX_HEADERS} header fields")
    for line in lines[1:]:
        if len(line) > MAX_LINE:
            raise SipParseError(f"header line longer than {MAX_LINE} characters")
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"header line without ':': {line[:60]!r}")
        msg.headers.append((canonical_name(name.strip()), value.strip()))
    body = data[end + 4:]
    lengths = [v for n, v in msg.headers if n == "Content-Length"]
    if len(set(lengths)) > 1:
        raise SipParseError("conflicting Content-Length headers")
    if lengths:
        if not lengths[0].isdigit() or len(lengths[0]) > 6:
            raise SipParseError(f"invalid Content-Length {lengths[0][:20]!r}")
        length = int(lengths[0])
        if length > len(body):
            raise SipParseError(f"Content-Length {length} but only {len(body)} bytes of body")
        if stream and length != len(body):
            raise SipParseError(f"Content-Length {length} but {len(body)} bytes follow")
        body = body[:length]  # RFC 3261 §18.3: extra bytes of a datagram are discarded
    elif stream:
        raise SipParseError("no Content-Length on a stream transport")
    msg.body = bytes(body)
    _check_mandatory(msg)
    return msg


def _check_mandatory(msg: SipMessage) -> None:
    for name in MANDATORY:
        if msg.get(name) is None:
            raise SipParseError(f"missing {name} header")
    for name in ("To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Type"):  # RFC 4475 §3.1.2.19 mulv
        if sum(1 for n, _ in msg.headers if n == name) > 1:
            raise SipParseError(f"{name} header repeated")
    _, method = msg.cseq
    if msg.method is not None and method != msg.method:
        raise SipParseError(f"CSeq method {method} does not match the request method {msg.method}")
    if msg.method is not None:
        forwards = msg.get("Max-Forwards")
        if forwards is not None and (not forwards.isdigit() or int(forwards) > 255):
            raise SipParseError(f"invalid Max-Forwards {forwards[:10]!r}")
    for via in msg.get_all("Via"):
        Via.parse(via)
    msg.from_  # noqa: B018 - parse to check
    msg.to  # noqa: B018
    for name in ("Contact", "Route", "Record-Route"):  # what a user agent reads to build a dialog
        for value in msg.get_all(name):
            if not (name == "Contact" and value == "*"):
                NameAddr.parse(value)
    if not msg.call_id or any(c.isspace() for c in msg.call_id):
        raise SipParseError("invalid Call-ID")


class StreamFramer:
    """Cuts a TCP/TLS byte stream into messages (RFC 3261 §18.3); CRLF keep-alives (RFC 5626 §3.5.1) skipped."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[SipMessage]:
        """Messages completed by ``data``; raises :class:`SipParseError` (the stream is then unusable)."""
        self._buffer += data
        out: list[SipMessage] = []
        while True:
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_MESSAGE:
                    raise SipParseError(f"headers longer than {MAX_MESSAGE} bytes")
                return out
            head = bytes(self._buffer[:end])
            m = re.search(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([0-9]{1,6})[ \t]*(?=\r\n|$)", head, re.IGNORECASE)
            if m is None:
                raise SipParseError("no Content-Length on a stream transport")
            total = end + 4 + int(m.group(1))
            if total > MAX_MESSAGE:
                raise SipParseError(f"message of {total} bytes exceeds {MAX_MESSAGE}")
            if len(self._buffer) < total:
                return out
            data_ = bytes(self._buffer[:total])
            del self._buffer[:total]
            out.append(parse_message(data_, stream=True))
