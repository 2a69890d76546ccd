"""SIP messages: RFC 4475 torture vectors, strict refusals with their messages, Hypothesis round trips and fuzz."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcore.errors import ParseError
from vcore.sip.errors import SipParseError
from vcore.sip.message import (
    MAX_HEADERS,
    MAX_MESSAGE,
    NameAddr,
    SipMessage,
    SipUri,
    StreamFramer,
    Via,
    parse_message,
)

# RFC 4475 §3.1.1.1 "A Short Tortuous INVITE" (wsinv), line ends made CRLF as on the wire
_WSINV_BODY = (b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.4\r\nt=0 0\r\n"
               b"m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n")
WSINV = ("INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n"
         "TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n"
         'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n'
         "MaX-fOrWaRdS: 0068\r\nCall-ID: wsinv.ndaksdj@192.0.2.1\r\n"
         f"Content-Length   : {len(_WSINV_BODY)}\r\n"
         "cseq: 0009\r\n  INVITE\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\ns :\r\n"
         "NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n"
         "UnknownHeaderWithUnusualValue: ;;,,;;,;\r\nContent-Type: application/sdp\r\n"
         "Route:\r\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n"
         "v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n"
         " SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239\r\n"
         'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n'
         "  secondparam ; q = 0.33\r\n\r\n").encode() + _WSINV_BODY

BASIC = (b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
         b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport\r\n"
         b"Max-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.example.com>\r\n"
         b'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
         b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n"
         b"Contact: <sip:alice@pc33.atlanta.example.com>\r\nContent-Type: application/sdp\r\n"
         b"Content-Length: 4\r\n\r\nv=0\n")


def test_rfc4475_wsinv_every_field() -> None:
    m = parse_message(WSINV)
    assert m.method == "INVITE" and m.uri is not None
    assert m.uri.user == "vivekg" and m.uri.host == "chair-dnrc.example.com" and "unknownparam" in m.uri.params
    assert m.to.uri.user == "vivekg" and m.to.tag == "1918181833n"
    assert m.from_.display == 'J Rosenberg \\"' and m.from_.tag == "98asjd8"
    assert m.get("Max-Forwards") == "0068" and m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert m.cseq == (9, "INVITE")
    vias = m.vias
    assert [(v.transport, v.host, v.port, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", None, "390skdjuw"), ("TCP", "spindle.example.com", None, "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", None, "z9hG4bK30239")]
    assert m.get("Subject") == "" and m.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.get("Route") == "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"
    contact = m.contact
    assert contact is not None and contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert m.body == _WSINV_BODY and m.content_type == "application/sdp"
    again = parse_message(m.serialize())  # long names, unfolded, CRLF: the same message
    def without_length(msg: SipMessage) -> list[tuple[str, str]]:
        return [h for h in msg.headers if h[0] != "Content-Length"]  # written last, from the body

    assert without_length(again) == without_length(m) and again.body == m.body


def test_basic_vector_serializes_back_to_the_same_bytes() -> None:
    m = parse_message(BASIC)
    assert m.serialize() == BASIC
    assert m.top_via.params == {"branch": "z9hG4bK776asdhds", "rport": None}


@pytest.mark.parametrize("data, message", [
    # RFC 4475 §3.1.2.4 clerr: a Content-Length larger than the message
    (BASIC.replace(b"Content-Length: 4", b"Content-Length: 9999"), "Content-Length 9999 but only 4 bytes of body"),
    # §3.1.2.5 ncl: a negative Content-Length
    (BASIC.replace(b"Content-Length: 4", b"Content-Length: -999"), "invalid Content-Length '-999'"),
    # §3.1.2.9 lwsdisp-like: no CRLF at the end of the headers
    (BASIC.replace(b"\r\n\r\n", b"\r\n"), "no empty line after the headers"),
    (BASIC.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\n"), "bare CR or LF in the headers"),
    # §3.1.2.3 scalar02-like: a CSeq too large, a Max-Forwards out of range
    (BASIC.replace(b"CSeq: 314159 INVITE", b"CSeq: 36893488147419103232 INVITE"), "invalid CSeq"),
    (BASIC.replace(b"Max-Forwards: 70", b"Max-Forwards: 300"), "invalid Max-Forwards '300'"),
    # §3.3.8 / mismatched method
    (BASIC.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 ACK"), "CSeq method ACK does not match"),
    (BASIC.replace(b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n", b""), "missing Call-ID header"),
    (BASIC.replace(b"SIP/2.0\r\nVia", b"SIP/7.0\r\nVia"), "invalid request line"),
    (BASIC.replace(b"sip:bob@biloxi.example.com SIP", b"http://bob SIP"), "not a sip: or sips: URI"),
    (BASIC.replace(b"pc33.atlanta.example.com;branch", b"[::1;branch"), "Via: invalid host"),
    (BASIC.replace(b"<sip:bob@biloxi.example.com>", b"<sip:bob@biloxi.example.com"), "missing '>'"),
    (BASIC.replace(b"Content-Length: 4", b"Content-Length: 4\r\nContent-Length: 5"), "conflicting Content-Length"),
    # §3.1.2.19 mulv: several values in single-valued header fields
    (BASIC.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 INVITE\r\nCSeq: 314160 INVITE"), "CSeq header repeated"),
    (BASIC.replace(b"sip:bob@biloxi.example.com SIP", b"sip:bob@999.1.1.1 SIP"), "invalid IPv4 address"),
    (BASIC.replace(b"<sip:alice@pc33.atlanta.example.com>", b"sip:alice@pc33>"), "unbalanced"),
    (BASIC.replace(b"Max-Forwards: 70\r\n", b"Max Forwards: 70\r\n"), "invalid header name"),
    (BASIC.replace(b"INVITE sip", b"invite sip").replace(b"314159 INVITE", b"314159 invite"), "is not upper case"),
])
def test_malformed_messages_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(SipParseError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        parse_message(data)
    assert isinstance(info.value, ParseError)


def test_limits() -> None:
    with pytest.raises(SipParseError, match="exceeds"):
        parse_message(BASIC + b"x" * MAX_MESSAGE)
    many = BASIC.replace(b"Content-Type", b"X-A: 1\r\n" * MAX_HEADERS + b"Content-Type")
    with pytest.raises(SipParseError, match=f"more than {MAX_HEADERS} header fields"):
        parse_message(many)


def test_stream_needs_content_length_and_frames_any_split() -> None:
    with pytest.raises(SipParseError, match="no Content-Length on a stream"):
        StreamFramer().feed(BASIC.replace(b"Content-Length: 4\r\n", b""))
    datagram = parse_message(BASIC.replace(b"Content-Length: 4\r\n", b""))  # UDP: the rest of the datagram
    assert datagram.body == b"v=0\n"
    framer = StreamFramer()
    data = b"\r\n\r\n" + BASIC + BASIC  # keep-alives, then two messages
    got = []
    for i in range(0, len(data), 7):
        got += framer.feed(data[i:i + 7])
    assert [m.serialize() for m in got] == [BASIC, BASIC]


def test_uris_and_name_addrs() -> None:
    u = SipUri.parse("sips:agent@[2001:db8::1]:5061;transport=tls")
    assert (u.scheme, u.user, u.host, u.port, u.transport, u.secure) == ("sips", "agent", "2001:db8::1", 5061,
                                                                          "tls", True)
    assert str(u) == "sips:agent@[2001:db8::1]:5061;transport=tls"
    assert SipUri.parse("sip:192.0.2.1").transport == "udp"
    n = NameAddr.parse("sip:bob@192.0.2.4;tag=abc")  # addr-spec: the parameter belongs to the header
    assert n.tag == "abc" and n.uri.params == {}
    for bad in ("sip:", "sip:bob@", "sip:bob@host:0", "sip:bob@host:99999", "sip:b b@host", "tel:+331"):
        with pytest.raises(SipParseError):
            SipUri.parse(bad)


_token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12).filter(
    lambda s: not s.startswith("-") and not s.endswith("-"))
_display = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_characters="\x7f"), max_size=20)


@given(method=st.sampled_from(["INVITE", "BYE", "OPTIONS", "INFO", "REGISTER"]), user=_token,
       host=_token.map(lambda h: "h" + h),  # RFC 3261 toplabel: a letter first
       port=st.integers(1, 65535), tag=_token.map(lambda t: "t" + t), display=_display, body=st.binary(max_size=300),
       transport=st.sampled_from(["UDP", "TCP", "TLS"]), seq=st.integers(0, 2**31 - 1))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip(method: str, user: str, host: str, port: int, tag: str, display: str, body: bytes,
                    transport: str, seq: int) -> None:
    uri = SipUri("sip", host, user, port)
    frm = NameAddr(SipUri("sips", "example.com", user), display.strip() or None).with_tag(tag)
    m = SipMessage.request(method, uri, [
        ("Via", str(Via(transport, host, port, {"branch": "z9hG4bK" + tag, "rport": None}))),
        ("Max-Forwards", "70"), ("From", str(frm)), ("To", str(NameAddr(uri))), ("Call-ID", f"{tag}@{host}"),
        ("CSeq", f"{seq} {method}")], body)
    for stream in (False, True):
        back = parse_message(m.serialize(), stream=stream)
        assert back.method == method and back.uri == uri and back.body == body
        assert back.from_.display == frm.display and back.from_.tag == tag and back.cseq == (seq, method)
        assert back.top_via.branch == "z9hG4bK" + tag and back.serialize() == m.serialize()


@given(st.binary(max_size=600))
@settings(max_examples=300)
def test_fuzz_random_bytes_only_raise_parse_errors(data: bytes) -> None:
    try:
        parse_message(data)
    except SipParseError:
        pass


@given(st.lists(st.tuples(st.integers(0, len(BASIC) - 1), st.binary(min_size=0, max_size=3)), max_size=6))
@settings(max_examples=400)
def test_fuzz_mutations_only_raise_parse_errors(mutations: list[tuple[int, bytes]]) -> None:
    data = bytearray(BASIC)
    for pos, repl in mutations:
        data[pos:pos + 1] = repl
    for parse in (lambda d: parse_message(d), lambda d: StreamFramer().feed(d)):
        try:
            out = parse(bytes(data))
        except SipParseError:
            continue
        for m in out if isinstance(out, list) else [out]:
            _ = (m.from_, m.to, m.cseq, m.top_via, m.contact)  # what the user agent reads next
