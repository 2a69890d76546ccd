"""SDP syntax (RFC 8866): the session description a SIP offer or answer carries, parsed strictly and written back.

A description is a sequence of ``<type>=<value>`` lines: session-level lines
(``v o s i u e p c b t r z a``), then one media section per ``m=`` line
(``m i c b a``). :meth:`SessionDescription.parse` checks every line and raises
:class:`SdpError` (a :class:`vcore.ParseError`) naming the line and the fault:
an unknown type letter (RFC 8866 §5: a parser must not guess), ``v=``/``o=``/``s=``
missing or not first, no ``t=``, a line type repeated where only one is allowed,
the obsolete ``k=`` (§5.12), a multicast ``c=`` address, bad numbers, duplicate
or out-of-range RTP payload types, ``rtpmap``/``fmtp``/``rtcp-fb`` for a payload
type the ``m=`` line does not list, and malformed ``rtpmap``, ``rtcp``, ``extmap``,
``ssrc`` or ``crypto`` attributes. Within a section lines may come in any order
(peers disagree on it); CRLF or bare LF ends a line (§5). Limits:
:data:`MAX_SDP_LENGTH` characters, :data:`MAX_LINES` lines of at most
:data:`MAX_LINE_LENGTH`, :data:`MAX_MEDIA` media sections.

Hand-written rather than a package: the maintained Python SDP parsers
(``sdp-transform``, aiortc's WebRTC-only ``aiortc.sdp``) accept malformed input
silently and return untyped dictionaries, when vcore needs each bad line refused
with a reason. The offer/answer rules are in :mod:`vcore.sip.sdp`, which
re-exports these names. Pure values; thread-safe.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Literal

from .errors import SipError, SipParseError
from .sdes import CryptoAttribute, CryptoRefused, parse_crypto, redact_keys

__all__ = [
    "DIRECTIONS",
    "MAX_LINES",
    "MAX_LINE_LENGTH",
    "MAX_MEDIA",
    "MAX_SDP_LENGTH",
    "Attribute",
    "Bandwidth",
    "Connection",
    "ExtMap",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SdpError",
    "SdpNegotiationError",
    "SessionDescription",
    "Timing",
]

MAX_SDP_LENGTH = 32_768  # characters; a SIP message is at most 64 KiB and real offers are about 1 KiB
MAX_LINES = 512
MAX_LINE_LENGTH = 2_048
MAX_MEDIA = 16
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")  # RFC 8866 §6.7
Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
RTP_PROTOS = ("RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF",  # RFC 3551, 3711, 4585, 5124
              "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF")  # RFC 5764 §8 (DTLS-SRTP)

_SESSION_TYPES = "vosiuepcbtrzka"
_MEDIA_TYPES = "icbka"
_SINGLE_SESSION = "iucz"
_SINGLE_MEDIA = "ic"
_TOKEN = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$")  # RFC 8866 §9 token
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_RTPMAP = re.compile(r"^([0-9]{1,3}) ([A-Za-z0-9_.+\-]{1,32})/([0-9]{1,6})(?:/([0-9]{1,2}))?$")
_FMT_ATTR = re.compile(r"^([0-9]{1,3}|\*) (.+)$")
_EXTMAP = re.compile(r"^([0-9]{1,5})(?:/(sendrecv|sendonly|recvonly|inactive))? (\S{1,256})(?: (.*))?$")
_SSRC = re.compile(r"^([0-9]{1,10}) ([!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+)(?::(.*))?$")
_REPEAT = re.compile(r"^[0-9]+[dhms]?(?: [0-9]+[dhms]?)+$")
_ZONE = re.compile(r"^-?[0-9]+ -?[0-9]+[dhms]?(?: -?[0-9]+ -?[0-9]+[dhms]?)*$")


class SdpError(SipParseError):
    """A malformed or unacceptable session description (the message names the line and the fault)."""


class SdpNegotiationError(SipError):
    """No acceptable media in an offer (SIP 488), or an answer that breaks the offer/answer rules."""


def _err(message: str) -> SdpError:
    return SdpError(message)


def _number(text: str, what: str, maximum: int) -> int:
    if not _DIGITS.match(text):
        raise SdpError(f"{what} {text!r} is not a decimal number")
    value = int(text)
    if value > maximum:
        raise SdpError(f"{what} {value} is above {maximum}")
    return value


def _check_address(addr_type: str, address: str, what: str) -> None:
    if addr_type not in ("IP4", "IP6"):
        raise SdpError(f"{what} address type {addr_type!r} is not IP4 or IP6")
    if "/" in address:
        raise SdpError(f"{what} {address!r} is a multicast address with a TTL or count; vcore calls are unicast")
    if not address or len(address) > 255 or any(c.isspace() for c in address):
        raise SdpError(f"{what} address {address!r} is empty or malformed")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        if not _TOKEN.match(address):  # a host name (RFC 8866 §9 FQDN): allowed by the syntax
            raise SdpError(f"{what} address {address!r} is neither an IP address nor a host name") from None
        return
    if (ip.version == 4) != (addr_type == "IP4"):
        raise SdpError(f"{what} address {address} is not an {addr_type} address")
    if ip.is_multicast:
        raise SdpError(f"{what} address {address} is multicast; vcore calls are unicast")


@dataclass(frozen=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> IN <addrtype> <address>`` (RFC 8866 §5.2)."""

    username: str
    session_id: str
    version: int
    addr_type: str
    address: str

    @classmethod
    def parse(cls, value: str) -> Origin:
        fields = value.split(" ")
        if len(fields) != 6:
            raise SdpError(f"o= needs 6 fields separated by single spaces, got {len(fields)}")
        user, sess_id, version, net, addr_type, address = fields
        if not user or any(c.isspace() for c in user):
            raise SdpError(f"o= username {user!r} is empty or has white space")
        if not _DIGITS.match(sess_id):
            raise SdpError(f"o= session id {sess_id!r} is not a decimal number")
        if net != "IN":
            raise SdpError(f"o= network type {net!r} is not IN")
        _check_address(addr_type, address, "o=")
        return cls(user, sess_id, _number(version, "o= session version", 2**64 - 1), addr_type, address)

    def __str__(self) -> str:
        return f"{self.username} {self.session_id} {self.version} IN {self.addr_type} {self.address}"


@dataclass(frozen=True)
class Connection:
    """``c=IN <addrtype> <unicast address>`` (RFC 8866 §5.7)."""

    addr_type: str
    address: str

    @classmethod
    def parse(cls, value: str) -> Connection:
        fields = value.split(" ")
        if len(fields) != 3 or fields[0] != "IN":
            raise SdpError(f"c={value!r} is not 'IN <IP4|IP6> <address>'")
        _check_address(fields[1], fields[2], "c=")
        return cls(fields[1], fields[2])

    @classmethod
    def of(cls, host: str) -> Connection:
        """The connection line for an IP address (IP4 or IP6 from its form)."""
        try:
            version = ipaddress.ip_address(host).version
        except ValueError:
            raise SdpError(f"{host!r} is not an IP address") from None
        return cls("IP4" if version == 4 else "IP6", host)

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            return False
        return True

    @property
    def is_unspecified(self) -> bool:
        """``0.0.0.0`` or ``::``: the RFC 2543 way of putting a stream on hold."""
        return self.is_ip and ipaddress.ip_address(self.address).is_unspecified

    def __str__(self) -> str:
        return f"IN {self.addr_type} {self.address}"


@dataclass(frozen=True)
class Bandwidth:
    """``b=<bwtype>:<bandwidth>``: ``AS`` in kbit/s (RFC 8866 §5.8), ``TIAS`` in bit/s (RFC 3890)."""

    type: str
    value: int

    @classmethod
    def parse(cls, value: str) -> Bandwidth:
        kind, sep, amount = value.partition(":")
        if not sep or not _TOKEN.match(kind):
            raise SdpError(f"b={value!r} is not '<bwtype>:<bandwidth>'")
        return cls(kind, _number(amount, f"b={kind}", 2**32 - 1))

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


@dataclass(frozen=True)
class Timing:
    """``t=<start> <stop>`` and its ``r=`` repeat lines (RFC 8866 §5.9, §5.10); calls use ``t=0 0``."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> Timing:
        fields = value.split(" ")
        if len(fields) != 2:
            raise SdpError(f"t={value!r} is not '<start> <stop>'")
        return cls(_number(fields[0], "t= start", 2**64 - 1), _number(fields[1], "t= stop", 2**64 - 1))


@dataclass(frozen=True)
class Attribute:
    """``a=<name>`` (a flag) or ``a=<name>:<value>`` (RFC 8866 §5.13)."""

    name: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> Attribute:
        name, sep, value = text.partition(":")
        if not _TOKEN.match(name):
            raise SdpError(f"a={text[:40]!r}: attribute name {name!r} is not a token")
        return cls(name, value if sep else None)

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"

    def __repr__(self) -> str:  # an a=crypto key never reaches a log through a repr
        return f"Attribute({self.name!r}, {redact_keys(self.value) if self.value is not None else None!r})"


@dataclass(frozen=True)
class RtpMap:
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`` (RFC 8866 §6.6)."""

    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        return f"{self.encoding}/{self.clock_rate}" + (f"/{self.channels}" if self.channels is not None else "")


@dataclass(frozen=True)
class ExtMap:
    """``a=extmap:<id>[/<direction>] <uri> [<attributes>]`` (RFC 8285 §8)."""

    id: int
    uri: str
    direction: str | None = None
    attributes: str | None = None


@dataclass(frozen=True)
class MediaDescription:
    """One media section: ``m=<media> <port>[/<count>] <proto> <fmt> ...`` and its ``i c b a`` lines.

    ``attributes`` keeps every ``a=`` line in order (what :meth:`SessionDescription.serialize`
    writes); the methods read the ones offer/answer needs, already checked by ``parse``.
    """

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int = 1
    info: str | None = None
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    attributes: tuple[Attribute, ...] = ()

    @property
    def is_rtp(self) -> bool:
        return self.proto in RTP_PROTOS

    @property
    def payload_types(self) -> tuple[int, ...]:
        """The RTP payload types of the ``m=`` line, in the peer's order of preference."""
        return tuple(int(f) for f in self.formats) if self.is_rtp else ()

    def values(self, name: str) -> list[str | None]:
        """The values of every ``a=<name>`` line (None for a flag)."""
        return [a.value for a in self.attributes if a.name == name]

    def has(self, name: str) -> bool:
        return any(a.name == name for a in self.attributes)

    def direction(self, default: Direction = "sendrecv") -> Direction:
        """``sendrecv``/``sendonly``/``recvonly``/``inactive``: the section's, else ``default`` (the session's)."""
        found = [a.name for a in self.attributes if a.name in DIRECTIONS]
        if len(found) > 1:
            raise SdpError(f"m={self.media} has {len(found)} direction attributes ({', '.join(found)})")
        return found[0] if found else default  # type: ignore[return-value]

    def rtpmaps(self) -> dict[int, RtpMap]:
        out: dict[int, RtpMap] = {}
        for value in self.values("rtpmap"):
            m = _RTPMAP.match(value or "")
            if m is None:
                raise SdpError(f"a=rtpmap:{value!r} is not '<pt> <encoding>/<clock>[/<channels>]'")
            pt = self._listed(m.group(1), "rtpmap")
            if pt in out:
                raise SdpError(f"a=rtpmap:{pt} appears twice in m={self.media}")
            clock = int(m.group(3))
            channels = int(m.group(4)) if m.group(4) is not None else None
            if clock == 0 or channels == 0:
                raise SdpError(f"a=rtpmap:{value} has a zero clock rate or channel count")
            out[pt] = RtpMap(m.group(2), clock, channels)
        return out

    def fmtps(self) -> dict[int, dict[str, str]]:
        """``a=fmtp:<pt> k=v;k=v`` as parameter dictionaries (names lower-cased, RFC 6184 §8.1)."""
        out: dict[int, dict[str, str]] = {}
        for value in self.values("fmtp"):
            m = _FMT_ATTR.match(value or "")
            if m is None or m.group(1) == "*":
                raise SdpError(f"a=fmtp:{value!r} is not '<pt> <parameters>'")
            pt = self._listed(m.group(1), "fmtp")
            if pt in out:
                raise SdpError(f"a=fmtp:{pt} appears twice in m={self.media}")
            params: dict[str, str] = {}
            for item in m.group(2).split(";"):
                item = item.strip()
                if not item:
                    continue
                key, _, val = item.partition("=")
                params[key.strip().lower()] = val.strip()
            out[pt] = params
        return out

    def rtcp_feedback(self) -> dict[int | None, set[str]]:
        """``a=rtcp-fb`` values per payload type (None for ``*``), e.g. ``{"nack", "nack pli", "ccm fir"}``."""
        out: dict[int | None, set[str]] = {}
        for value in self.values("rtcp-fb"):
            m = _FMT_ATTR.match(value or "")
            if m is None:
                raise SdpError(f"a=rtcp-fb:{value!r} is not '<pt|*> <feedback>'")
            pt = None if m.group(1) == "*" else self._listed(m.group(1), "rtcp-fb")
            out.setdefault(pt, set()).add(" ".join(m.group(2).split()))
        return out

    def feedback_for(self, pt: int) -> set[str]:
        fb = self.rtcp_feedback()
        return fb.get(pt, set()) | fb.get(None, set())

    def rtcp(self) -> tuple[int, Connection | None] | None:
        """``a=rtcp:<port> [IN <addrtype> <address>]`` (RFC 3605), or None."""
        values = self.values("rtcp")
        if not values:
            return None
        if len(values) > 1:
            raise SdpError(f"m={self.media} has {len(values)} a=rtcp lines")
        port_text, _, rest = (values[0] or "").partition(" ")
        port = _number(port_text, "a=rtcp port", 65535)
        return port, Connection.parse(rest) if rest else None

    def extmaps(self) -> list[ExtMap]:
        out: list[ExtMap] = []
        for value in self.values("extmap"):
            m = _EXTMAP.match(value or "")
            if m is None:
                raise SdpError(f"a=extmap:{value!r} is not '<id>[/<direction>] <uri> [<attributes>]'")
            ident = int(m.group(1))
            if not 1 <= ident <= 14 and not 256 <= ident <= 4095:  # RFC 8285 §5, §6
                raise SdpError(f"a=extmap id {ident} is outside 1-14 and 256-4095 (RFC 8285)")
            if any(e.id == ident for e in out):
                raise SdpError(f"a=extmap id {ident} appears twice in m={self.media}")
            out.append(ExtMap(ident, m.group(3), m.group(2), m.group(4)))
        return out

    def ssrcs(self) -> dict[int, dict[str, str | None]]:
        """``a=ssrc:<ssrc> <attribute>[:<value>]`` (RFC 5576) grouped by SSRC."""
        out: dict[int, dict[str, str | None]] = {}
        for value in self.values("ssrc"):
            m = _SSRC.match(value or "")
            if m is None:
                raise SdpError(f"a=ssrc:{(value or '')[:40]!r} is not '<ssrc> <attribute>[:<value>]'")
            ssrc = _number(m.group(1), "a=ssrc", 2**32 - 1)
            out.setdefault(ssrc, {})[m.group(2)] = m.group(3)
        return out

    def cryptos(self) -> list[CryptoAttribute | CryptoRefused]:
        """Every ``a=crypto`` line: usable ones, and the refused ones with their reason (RFC 4568)."""
        out: list[CryptoAttribute | CryptoRefused] = []
        tags: set[str] = set()
        for value in self.values("crypto"):
            tag = (value or "").split(" ", 1)[0]
            if tag in tags:
                raise SdpError(f"a=crypto tag {tag} appears twice in m={self.media}")
            tags.add(tag)
            try:
                out.append(parse_crypto(value or "", _err))
            except CryptoRefused as refused:
                out.append(refused)
        return out

    def _listed(self, text: str, what: str) -> int:
        pt = int(text)
        if pt not in self.payload_types:
            raise SdpError(f"a={what}:{pt} names a payload type that m={self.media} does not list")
        return pt

    def check(self) -> None:
        """Parse every attribute offer/answer reads; raises :class:`SdpError` on the first bad one."""
        self.direction()
        if self.is_rtp:
            self.rtpmaps()
            self.fmtps()
            self.rtcp_feedback()
            self.rtcp()
            self.extmaps()
            self.ssrcs()
            self.cryptos()

    def with_attributes(self, *attributes: Attribute) -> MediaDescription:
        return replace(self, attributes=self.attributes + attributes)


def _parse_media_line(value: str) -> MediaDescription:
    fields = value.split(" ")
    if len(fields) < 4 or any(not f for f in fields):
        raise SdpError(f"m={value!r} is not '<media> <port> <proto> <fmt> ...' with single spaces")
    media, port_text, proto, *formats = fields
    if not _TOKEN.match(media) or not all(_TOKEN.match(p) for p in proto.split("/")):
        raise SdpError(f"m={value!r}: bad media type or protocol")
    port_text, slash, count_text = port_text.partition("/")
    port = _number(port_text, f"m={media} port", 65535)
    count = _number(count_text, f"m={media} port count", 65535) if slash else 1
    if count != 1:
        raise SdpError(f"m={media} port count {count}: hierarchical encoding is not supported")
    if proto in RTP_PROTOS:
        seen: set[int] = set()
        for f in formats:
            pt = _number(f, f"m={media} payload type", 127)
            if pt in seen:
                raise SdpError(f"m={media} lists payload type {pt} twice")
            seen.add(pt)
    elif not all(_TOKEN.match(f) for f in formats):
        raise SdpError(f"m={media} has a format that is not a token")
    return MediaDescription(media, port, proto, tuple(formats), port_count=1)


@dataclass(frozen=True)
class SessionDescription:
    """A whole SDP body: the session-level fields, ``attributes`` and the media sections in order."""

    origin: Origin
    name: str = "-"
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    timing: tuple[Timing, ...] = (Timing(),)
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    info: str | None = None
    uri: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    zone: str | None = None

    def direction(self) -> Direction:
        """The session-level direction attribute (``sendrecv`` when there is none)."""
        found = [a.name for a in self.attributes if a.name in DIRECTIONS]
        if len(found) > 1:
            raise SdpError(f"the session has {len(found)} direction attributes")
        return found[0] if found else "sendrecv"  # type: ignore[return-value]

    def connection_for(self, m: MediaDescription) -> Connection | None:
        """The ``c=`` that applies to a media section: its own, else the session's."""
        return m.connection or self.connection

    @classmethod
    def parse(cls, text: str) -> SessionDescription:
        """Parse an SDP body; raises :class:`SdpError` with the line number and the fault."""
        if len(text) > MAX_SDP_LENGTH:
            raise SdpError(f"SDP of {len(text)} characters is longer than {MAX_SDP_LENGTH}")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) > MAX_LINES:
            raise SdpError(f"SDP of {len(lines)} lines has more than {MAX_LINES}")
        session: dict[str, list[str]] = {}
        sections: list[tuple[int, str, dict[str, list[str]], list[str]]] = []
        session_attrs: list[str] = []
        timing: list[Timing] = []
        for number, raw in enumerate(lines, 1):
            line = raw.removesuffix("\r")
            try:
                kind, value = _split_line(line, number)
                if number <= 3 and kind != "vos"[number - 1]:
                    raise SdpError(f"'{kind}=' where 'v=', 'o=' and 's=' must come first")
                if kind == "m":
                    if not timing:
                        raise SdpError("m= before any t= line (RFC 8866 §5: t= is required)")
                    if len(sections) == MAX_MEDIA:
                        raise SdpError(f"more than {MAX_MEDIA} media sections")
                    sections.append((number, value, {}, []))
                elif sections:
                    if kind not in _MEDIA_TYPES:
                        raise SdpError(f"'{kind}=' is not allowed in a media section")
                    _add(sections[-1][2], sections[-1][3], kind, value, _SINGLE_MEDIA)
                elif kind == "t":
                    timing.append(Timing.parse(value))
                elif kind == "r":
                    if not timing:
                        raise SdpError("r= before any t= line")
                    if not _REPEAT.match(value):
                        raise SdpError(f"r={value!r} is not a list of times")
                    timing[-1] = replace(timing[-1], repeats=timing[-1].repeats + (value,))
                elif kind in ("v", "o", "s") and number > 3:
                    raise SdpError(f"'{kind}=' appears again")
                else:
                    _add(session, session_attrs, kind, value, _SINGLE_SESSION)
            except SdpError as e:
                raise SdpError(f"SDP line {number}: {e}") from None
        if len(lines) < 3:
            raise SdpError("SDP needs at least the v=, o= and s= lines")
        if not timing:
            raise SdpError("SDP has no t= line (RFC 8866 §5)")
        version = lines[0].rstrip("\r")[2:]
        if version != "0":
            raise SdpError(f"SDP line 1: protocol version {version!r} is not 0")
        origin = Origin.parse(lines[1].rstrip("\r")[2:])
        name = lines[2].rstrip("\r")[2:]
        if not name:
            raise SdpError("SDP line 3: s= is empty (use s=- for no name, RFC 8866 §5.3)")
        if "z" in session and not _ZONE.match(session["z"][0]):
            raise SdpError(f"z={session['z'][0]!r} is not a list of adjustments and offsets")
        desc = cls(
            origin, name,
            Connection.parse(session["c"][0]) if "c" in session else None,
            tuple(Bandwidth.parse(b) for b in session.get("b", [])),
            tuple(timing),
            tuple(Attribute.parse(a) for a in session_attrs),
            (), _first(session, "i"), _first(session, "u"), tuple(session.get("e", [])),
            tuple(session.get("p", [])), _first(session, "z"),
        )
        desc.direction()
        media: list[MediaDescription] = []
        for number, value, fields, attrs in sections:
            try:
                m = _parse_media_line(value)
                m = replace(m, info=_first(fields, "i"),
                            connection=Connection.parse(fields["c"][0]) if "c" in fields else None,
                            bandwidths=tuple(Bandwidth.parse(b) for b in fields.get("b", [])),
                            attributes=tuple(Attribute.parse(a) for a in attrs))
                m.check()
            except SdpError as e:
                raise SdpError(f"SDP media section at line {number}: {e}") from None
            if m.port != 0 and desc.connection_for(m) is None:
                raise SdpError(f"SDP media section at line {number}: no c= line, at session or media level")
            media.append(m)
        return replace(desc, media=tuple(media))

    def serialize(self) -> str:
        """The SDP text, CRLF line ends, in RFC 8866 §5 order."""
        out = ["v=0", f"o={self.origin}", f"s={self.name}"]
        out += [f"i={self.info}"] if self.info is not None else []
        out += [f"u={self.uri}"] if self.uri is not None else []
        out += [f"e={e}" for e in self.emails] + [f"p={p}" for p in self.phones]
        out += [f"c={self.connection}"] if self.connection is not None else []
        out += [f"b={b}" for b in self.bandwidths]
        for t in self.timing:
            out += [f"t={t.start} {t.stop}"] + [f"r={r}" for r in t.repeats]
        out += [f"z={self.zone}"] if self.zone is not None else []
        out += [f"a={a}" for a in self.attributes]
        for m in self.media:
            port = f"{m.port}/{m.port_count}" if m.port_count != 1 else str(m.port)
            out.append(f"m={m.media} {port} {m.proto} {' '.join(m.formats)}")
            out += [f"i={m.info}"] if m.info is not None else []
            out += [f"c={m.connection}"] if m.connection is not None else []
            out += [f"b={b}" for b in m.bandwidths]
            out += [f"a={a}" for a in m.attributes]
        return "\r\n".join(out) + "\r\n"


def _split_line(line: str, number: int) -> tuple[str, str]:
    if len(line) > MAX_LINE_LENGTH:
        raise SdpError(f"line of {len(line)} characters is longer than {MAX_LINE_LENGTH}")
    if len(line) < 2 or line[1] != "=":
        raise SdpError(f"{line[:20]!r} is not '<type>=<value>'" if line else "empty line")
    kind, value = line[0], line[2:]
    if kind not in _SESSION_TYPES and kind != "m":
        raise SdpError(f"unknown line type '{kind}=' (RFC 8866 §5)")
    if kind == "k":
        raise SdpError("k= is obsolete and insecure (RFC 8866 §5.12); use SDES or DTLS-SRTP")
    if any(c in value for c in "\r\0"):
        raise SdpError(f"'{kind}=' value has a CR or NUL character")
    if kind not in "aise" and value != value.strip():
        raise SdpError(f"'{kind}=' value has leading or trailing white space")
    return kind, value


def _add(fields: dict[str, list[str]], attrs: list[str], kind: str, value: str, single: str) -> None:
    if kind == "a":
        attrs.append(value)
        return
    if kind in single and kind in fields:
        what = "c= (several addresses are multicast)" if kind == "c" else f"{kind}="
        raise SdpError(f"{what} appears twice")
    fields.setdefault(kind, []).append(value)


def _first(fields: dict[str, list[str]], kind: str) -> str | None:
    return fields[kind][0] if kind in fields else None
