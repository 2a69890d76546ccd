"""SDP parsing and offer/answer (vcore.sip.sdp, vcore.sip.sdes): vectors from real peers and RFC 4317, bad input."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcore.errors import ParseError
from vcore.h323.fast_connect import MediaChannel, MediaPolicy
from vcore.h323.keys import SUITES, SrtpKeyMaterial
from vcore.h323.messages import (
    DEFAULT_FORMATS,
    G722,
    H264_MODE1,
    OPUS,
    PCMU,
    Address,
    MediaFormat,
)
from vcore.sip.errors import SipParseError
from vcore.sip.sdes import (
    CryptoAttribute,
    CryptoRefused,
    format_crypto,
    parse_crypto,
    redact_keys,
)
from vcore.sip.sdp import (
    Attribute,
    Bandwidth,
    Connection,
    MediaDescription,
    Origin,
    SdpError,
    SdpNegotiationError,
    SdpOffer,
    SessionDescription,
    Timing,
    accept_answer,
    answer_offer,
    make_offer,
    peer_feedback,
    sip_policy,
)

# baresip 1.0.0 calling (mediaenc=srtp-mand), captured on 127.0.0.1
BARESIP_OFFER = (
    "v=0\r\no=- 2388233495 1855084092 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "a=tool:baresip 1.0.0\r\nm=audio 4354 RTP/SAVP 96 0 8 9 101\r\na=rtpmap:96 opus/48000/2\r\n"
    "a=fmtp:96 stereo=1;sprop-stereo=1\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\na=label:1\r\na=rtcp-rsize\r\n"
    "a=ssrc:2567683458 cname:sip:kiosk@127.0.0.1:5090\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:ZcGzdN2lAqTDYaDFqSNOfbnudtcHQJVzOY5bHomc\r\n"
    "a=minptime:20\r\na=ptime:20\r\nm=video 9922 RTP/SAVP 96 97 34 98 99\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=0;profile-level-id=42e01f\r\na=rtpmap:97 H264/90000\r\n"
    "a=fmtp:97 packetization-mode=1;profile-level-id=42e01f\r\na=rtpmap:34 H263/90000\r\na=fmtp:34 CIF=1;CIF4=1\r\n"
    "a=rtpmap:98 MP4V-ES/90000\r\na=fmtp:98 profile-level-id=3\r\na=rtpmap:99 H265/90000\r\na=fmtp:99 profile-id=1\r\n"
    "a=sendrecv\r\na=label:2\r\na=rtcp-rsize\r\na=ssrc:3640432198 cname:sip:kiosk@127.0.0.1:5090\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:yxaEeSPnqsLf2yXqMIExH7UmaKPOod0QKSBKm/SB\r\n"
    "a=framerate:25.00\r\na=rtcp-fb:* nack pli\r\na=content:main\r\n"
)
# vcore's offer, and baresip 1.0.0's answer to it (answermode=auto, mediaenc=srtp), captured on 127.0.0.1
VCORE_OFFER = (
    "v=0\r\no=- 2327058492515971825 1 IN IP4 127.0.0.1\r\ns=vcore\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 20000 RTP/SAVP 111 9 0 8\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=crypto:1 AEAD_AES_128_GCM inline:dr+VTN38oNjyW4cLlOU8OrXfh9Ko7gCk1cr3uQ==\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:Zg2MucarLKPJnkaCdhozUF1D1afq3YVplXjqMVjM\r\na=ptime:20\r\na=sendrecv\r\n"
    "m=video 20002 RTP/SAVP 96 97\r\nb=AS:2000\r\nb=TIAS:2000000\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1\r\n"
    "a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\na=rtcp-fb:96 ack ccfb\r\n"
    "a=rtpmap:97 H264/90000\r\na=fmtp:97 profile-level-id=42e01f;packetization-mode=0;level-asymmetry-allowed=1\r\n"
    "a=rtcp-fb:97 nack\r\na=rtcp-fb:97 nack pli\r\na=rtcp-fb:97 ccm fir\r\na=rtcp-fb:97 ack ccfb\r\n"
    "a=crypto:1 AEAD_AES_128_GCM inline:wcabRYoBNEr1H2I17nbCBd9Z3l9lOpAIvpOqBA==\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:7hfmMl08AIWdhgL3cYusVUsFgolb7WE0E+L1Owwh\r\na=sendrecv\r\n"
)
BARESIP_ANSWER = (
    "v=0\r\no=- 1225890010 1699992714 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "a=tool:baresip 1.0.0\r\nm=audio 17076 RTP/SAVP 111 9 0 8\r\na=rtpmap:111 opus/48000/2\r\n"
    "a=fmtp:111 stereo=1;sprop-stereo=1\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=sendrecv\r\na=label:1\r\na=ssrc:1209465175 cname:sip:agent@127.0.0.1:5094\r\na=minptime:20\r\na=ptime:20\r\n"
    "a=crypto:1 AEAD_AES_128_GCM inline:EGXwj/0YbfApbfbctCDX5Ve6bWGLJ2U0vRxGEg==\r\n"
    "m=video 46510 RTP/SAVP 96 97\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n"
    "a=rtpmap:97 H264/90000\r\na=fmtp:97 packetization-mode=0;profile-level-id=42e01f\r\na=sendrecv\r\na=label:2\r\n"
    "a=ssrc:545629884 cname:sip:agent@127.0.0.1:5094\r\na=framerate:25.00\r\na=rtcp-fb:* nack pli\r\n"
    "a=content:main\r\na=crypto:1 AEAD_AES_128_GCM inline:+FcIuEwFONp0HSxnBpIn8xVxi6wPZE1XaHCQ4A==\r\n"
)
# linphonec 5.1.65 calling (media_encryption=srtp, video), captured on 127.0.0.1
LINPHONE_OFFER = (
    "v=0\r\no=linphone 4017 3005 IN IP4 192.0.2.2\r\ns=Talk\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n"
    "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n"
    "m=audio 50950 RTP/SAVP 96 97 98 0 8 18 99 100 101\r\na=rtpmap:96 opus/48000/2\r\n"
    "a=fmtp:96 useinbandfec=1\r\na=rtpmap:97 speex/16000\r\na=fmtp:97 vbr=on\r\n"
    "a=rtpmap:98 speex/8000\r\na=fmtp:98 vbr=on\r\na=fmtp:18 annexb=yes\r\n"
    "a=rtpmap:99 telephone-event/48000\r\na=rtpmap:100 telephone-event/16000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:U7mtUHD7XlCgBKCrXMMTNGDNjlyD4fRDnCk9Ed4M\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:5vId94cWNvuqdvkn7YLj7/aqxn571taUgvjmcyqT\r\n"
    "a=crypto:3 AES_256_CM_HMAC_SHA1_80 inline:nOADXWn5LCfypCOfM0g45KukAscn/iSAC24sfvHLEY4z+41OMS4xQWFQG2yOFw==\r\n"
    "a=crypto:4 AES_256_CM_HMAC_SHA1_32 inline:ltkVcMX9SaIN+PBPzcqcFxMcgeB3oDxXPJ9+hchaEFtzSQy3SG4z4p9H4VXK2Q==\r\n"
    "a=rtcp-fb:* trr-int 5000\r\na=rtcp-fb:* ccm tmmbr\r\nm=video 59140 RTP/SAVP 96 97\r\n"
    "a=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\na=fmtp:97 profile-level-id=42801F\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QF4tlBAwvJqaV2KKHLGvNCqdZmO+sS0LYcp1VgCT\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:O6BDOYnifFqkbhmSx5/NH1r4SFnF32BxEQbnxwFv\r\n"
    "a=crypto:3 AES_256_CM_HMAC_SHA1_80 inline:xhZeiomeWR9gKkkAau/JC5R3OKgHLBsHH76IV3OJUMOqxMLg6ZjvzAojv9wf3Q==\r\n"
    "a=crypto:4 AES_256_CM_HMAC_SHA1_32 inline:DqNUQd54U2E7Tr+H/g50uRkKR0k0vMxBIgAyuKqbUFsseoGrssK1VfgboSuV6A==\r\n"
    "a=rtcp-fb:* trr-int 5000\r\na=rtcp-fb:* ccm tmmbr\r\na=rtcp-fb:96 nack pli\r\n"
    "a=rtcp-fb:96 nack sli\r\na=rtcp-fb:96 ack rpsi\r\na=rtcp-fb:96 ccm fir\r\na=rtcp-fb:97 nack pli\r\n"
    "a=rtcp-fb:97 ccm fir\r\n"
)
# vcore's offer, and linphonec 5.1.65's answer to it (auto-answer, srtp, video)
VCORE_OFFER_2 = (
    "v=0\r\no=- 2162120912701833468 1 IN IP4 127.0.0.1\r\ns=vcore\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 20000 RTP/SAVP 111 9 0 8\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=crypto:1 AEAD_AES_128_GCM inline:SZbR40FHMljh5prehDsfjSHeys6LOwbeUoPO6g==\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:/3MQhwGHA8XwyI1q2De9f74MQlUq4cbzTXTcmQi6\r\na=ptime:20\r\n"
    "a=sendrecv\r\nm=video 20002 RTP/SAVP 96 97\r\nb=AS:2000\r\nb=TIAS:2000000\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1\r\n"
    "a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\na=rtcp-fb:96 ack ccfb\r\n"
    "a=rtpmap:97 H264/90000\r\n"
    "a=fmtp:97 profile-level-id=42e01f;packetization-mode=0;level-asymmetry-allowed=1\r\n"
    "a=rtcp-fb:97 nack\r\na=rtcp-fb:97 nack pli\r\na=rtcp-fb:97 ccm fir\r\na=rtcp-fb:97 ack ccfb\r\n"
    "a=crypto:1 AEAD_AES_128_GCM inline:OTtVXPeyDhmxSrzNsD4O4kIkx/Z8azu7I+kPAg==\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:oJVCA6uDIegSyr9FY7yD4z3Ym9xR6Gz4sMB2LPB6\r\na=sendrecv\r\n"
)
LINPHONE_ANSWER = (
    "v=0\r\no=linphone 1185 3036 IN IP4 127.0.0.1\r\ns=Talk\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 52926 RTP/SAVP 111 0 8\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:Sli+vBOWZYrt5rNoQcpyBqbUXwdI/U7+T7Jdcage\r\n"
    "m=video 44335 RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 profile-level-id=42801F; packetization-mode=1\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:zOpohVIV9WQNa0gaJxFHW31Zc5+Eyxl55bYDbErn\r\n"
    "a=rtcp-fb:* trr-int 5000\r\na=rtcp-fb:* nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\n"
)
# RFC 4317 §2.1, Alice's offer and Bob's answer (host names as in the RFC)
RFC4317_OFFER = (
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\r\ns= \r\n"
    "c=IN IP4 host.atlanta.example.com\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 97\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:97 iLBC/8000\r\nm=video 51372 RTP/AVP 31 32\r\na=rtpmap:31 H261/90000\r\n"
    "a=rtpmap:32 MPV/90000\r\n"
)
RFC4317_ANSWER = (
    "v=0\r\no=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com\r\ns= \r\n"
    "c=IN IP4 host.biloxi.example.com\r\nt=0 0\r\nm=audio 49174 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    "m=video 49170 RTP/AVP 32\r\na=rtpmap:32 MPV/90000\r\n"
)

HOST = "192.0.2.10"
ENDPOINTS = {1: (Address(HOST, 16384), Address(HOST, 16385)), 2: (Address(HOST, 16386), Address(HOST, 16387))}
MUXED = {1: (Address(HOST, 16384), Address(HOST, 16384)), 2: (Address(HOST, 16386), Address(HOST, 16386))}
POLICY = sip_policy(MediaPolicy(DEFAULT_FORMATS))
PLAIN = MediaPolicy(DEFAULT_FORMATS, allow_plaintext=True)


def _b64(key: SrtpKeyMaterial) -> str:
    return base64.b64encode(key.key_and_salt).decode()


def _by(channels: list[MediaChannel], direction: str, session: int) -> MediaChannel:
    found = [c for c in channels if c.direction == direction and c.session_id == session]
    assert len(found) == 1, channels
    return found[0]


def _offer(body: str, **replacements: str) -> SessionDescription:
    for old, new in replacements.items():
        body = body.replace(old, new)
    return SessionDescription.parse(body)


PEER = (
    "v=0\r\no=peer 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "m=video 40002 RTP/AVP 100\r\na=rtpmap:100 H264/90000\r\n"
    "a=fmtp:100 profile-level-id=42e01f;packetization-mode=1\r\na=rtcp-fb:100 nack\r\na=rtcp-fb:100 goog-remb\r\n"
)


# --------------------------------------------------------------------------- parsing and writing


def test_baresip_offer_every_field_and_byte_identical_round_trip() -> None:
    sdp = SessionDescription.parse(BARESIP_OFFER)
    assert sdp.origin == Origin("-", "2388233495", 1855084092, "IP4", "127.0.0.1")
    assert sdp.name == "-" and sdp.connection == Connection("IP4", "127.0.0.1") and sdp.timing == (Timing(0, 0),)
    assert sdp.attributes == (Attribute("tool", "baresip 1.0.0"),)
    audio, video = sdp.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == ("audio", 4354, "RTP/SAVP", ("96", "0", "8", "9", "101"))
    assert audio.rtpmaps()[96].encoding == "opus" and audio.rtpmaps()[96].channels == 2
    assert audio.rtpmaps()[101].clock_rate == 8000 and audio.fmtps()[96] == {"stereo": "1", "sprop-stereo": "1"}
    assert audio.direction() == "sendrecv" and audio.has("rtcp-rsize") and audio.rtcp() is None
    assert audio.ssrcs() == {2567683458: {"cname": "sip:kiosk@127.0.0.1:5090"}}
    (crypto,) = audio.cryptos()
    assert isinstance(crypto, CryptoAttribute) and crypto.tag == 1 and crypto.suite == "AES_CM_128_HMAC_SHA1_80"
    assert _b64(crypto.key) == "ZcGzdN2lAqTDYaDFqSNOfbnudtcHQJVzOY5bHomc"
    assert video.payload_types == (96, 97, 34, 98, 99)
    assert video.fmtps()[97] == {"packetization-mode": "1", "profile-level-id": "42e01f"}
    assert video.rtcp_feedback() == {None: {"nack pli"}} and video.feedback_for(97) == {"nack pli"}
    assert sdp.serialize() == BARESIP_OFFER
    assert SessionDescription.parse(BARESIP_ANSWER).serialize() == BARESIP_ANSWER
    assert SessionDescription.parse(VCORE_OFFER).serialize() == VCORE_OFFER
    assert SessionDescription.parse(VCORE_OFFER_2).serialize() == VCORE_OFFER_2


def test_rfc4317_vectors_parse_and_round_trip() -> None:
    offer = SessionDescription.parse(RFC4317_OFFER)
    assert offer.origin.address == "host.atlanta.example.com" and offer.name == " "
    assert [m.payload_types for m in offer.media] == [(0, 8, 97), (31, 32)]
    assert offer.serialize() == RFC4317_OFFER
    assert SessionDescription.parse(RFC4317_ANSWER).serialize() == RFC4317_ANSWER


def test_bare_lf_line_ends_are_accepted() -> None:
    assert SessionDescription.parse(BARESIP_OFFER.replace("\r\n", "\n")).serialize() == BARESIP_OFFER


BAD = [
    ("", "at least the v=, o= and s= lines"),
    ("v=1\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n", "protocol version '1' is not 0"),
    ("o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\ns=-\r\nt=0 0\r\n", "line 1: 'o=' where 'v=', 'o=' and 's=' must come first"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n", "no t= line"),
    ("v=0\r\no=- x 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n", "o= session id 'x' is not a decimal number"),
    ("v=0\r\no=- 1 1 IN IP9 192.0.2.1\r\ns=-\r\nt=0 0\r\n", "address type 'IP9' is not IP4 or IP6"),
    ("v=0\r\no=- 1 1 IN IP6 192.0.2.1\r\ns=-\r\nt=0 0\r\n", "192.0.2.1 is not an IP6 address"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=\r\nt=0 0\r\n", "s= is empty"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nx=1\r\nt=0 0\r\n", "line 4: unknown line type 'x='"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nk=clear:secret\r\nt=0 0\r\n", "k= is obsolete"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n\r\nt=0 0\r\n", "line 4: empty line"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 224.2.1.1/127\r\nt=0 0\r\n", "multicast address with a TTL"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 224.2.1.1\r\nt=0 0\r\n", "224.2.1.1 is multicast"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n",
     "c= (several addresses are multicast) appears twice"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nb=AS:x\r\nt=0 0\r\n", "b=AS 'x' is not a decimal number"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nr=oops\r\n", "r='oops' is not a list of times"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n", "m= before any t= line"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n", "no c= line"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=- \r\nt=0 0 \r\n", "'t=' value has leading or trailing white space"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\na=x\x00y\r\n", "CR or NUL"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\na=sendonly\r\na=recvonly\r\n", "2 direction attributes"),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\na=:x\r\n", "attribute name '' is not a token"),
]
MEDIA_BAD = [
    ("m=audio 70000 RTP/AVP 0", "m=audio port 70000 is above 65535"),
    ("m=audio 1/2 RTP/AVP 0", "port count 2: hierarchical encoding"),
    ("m=audio 1 RTP/AVP 128", "payload type 128 is above 127"),
    ("m=audio 1 RTP/AVP 0 0", "lists payload type 0 twice"),
    ("m=audio 1 RTP/AVP", "is not '<media> <port> <proto> <fmt> ...'"),
    ("m=audio 1  RTP/AVP 0", "single spaces"),
    ("m=audio 1 RTP/AVP 0\r\na=rtpmap:8 PCMA/8000", "a=rtpmap:8 names a payload type that m=audio does not list"),
    ("m=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU", "a=rtpmap:'0 PCMU' is not"),
    ("m=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU/0", "zero clock rate"),
    ("m=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:0 PCMU/8000", "a=rtpmap:0 appears twice"),
    ("m=audio 1 RTP/AVP 0\r\na=fmtp:0 x=1\r\na=fmtp:0 y=1", "a=fmtp:0 appears twice"),
    ("m=audio 1 RTP/AVP 0\r\na=fmtp:*", "a=fmtp:'*' is not"),
    ("m=audio 1 RTP/AVP 0\r\na=rtcp-fb:5 nack", "a=rtcp-fb:5 names a payload type"),
    ("m=audio 1 RTP/AVP 0\r\na=rtcp:99999", "a=rtcp port 99999 is above 65535"),
    ("m=audio 1 RTP/AVP 0\r\na=rtcp:9 IN IP4", "c='IN IP4' is not"),
    ("m=audio 1 RTP/AVP 0\r\na=rtcp:9\r\na=rtcp:11", "2 a=rtcp lines"),
    ("m=audio 1 RTP/AVP 0\r\na=extmap:15 urn:x", "a=extmap id 15 is outside"),
    ("m=audio 1 RTP/AVP 0\r\na=extmap:1 urn:x\r\na=extmap:1 urn:y", "a=extmap id 1 appears twice"),
    ("m=audio 1 RTP/AVP 0\r\na=ssrc:99999999999 cname:x", "is not '<ssrc> <attribute>"),
    ("m=audio 1 RTP/AVP 0\r\na=ssrc:4294967296 cname:x", "a=ssrc 4294967296 is above 4294967295"),
    ("m=audio 1 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80", "needs '<tag> <suite> <key-params>'"),
    ("m=audio 1 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD", "key||salt is 3 bytes, not 30"),
    ("m=audio 1 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:@@@@", "key is not valid base64"),
    ("m=audio 1 RTP/AVP 0\r\na=crypto:x AES_CM_128_HMAC_SHA1_80 inline:QUJD", "tag 'x' is not 1 to 9 digits"),
    ("m=audio 1 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 key:QUJD", "'key'... do not start with 'inline:'"),
    ("m=audio 1 RTP/AVP 0\r\na=sendrecv\r\na=inactive", "m=audio has 2 direction attributes"),
    ("m=audio 1 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.2", "appears twice"),
    ("m=audio 1 RTP/AVP 0\r\nv=0", "'v=' is not allowed in a media section"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_malformed_session_is_refused_precisely(text: str, message: str) -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(text)
    assert message in str(info.value)
    assert isinstance(info.value, ParseError) and isinstance(info.value, SipParseError)


@pytest.mark.parametrize(("media", "message"), MEDIA_BAD)
def test_malformed_media_section_is_refused_precisely(media: str, message: str) -> None:
    text = f"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n{media}\r\n"
    with pytest.raises(SdpError, match=re.escape(message)):
        SessionDescription.parse(text)


def test_limits() -> None:
    head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    with pytest.raises(SdpError, match="longer than 32768"):
        SessionDescription.parse(head + "a=x\r\n" * 8000)
    with pytest.raises(SdpError, match="more than 512"):
        SessionDescription.parse(head + "a=x\r\n" * 600)
    with pytest.raises(SdpError, match="line 6: line of 3002 characters is longer than 2048"):
        SessionDescription.parse(head + "a=" + "x" * 3000 + "\r\n")
    with pytest.raises(SdpError, match="more than 16 media sections"):
        SessionDescription.parse(head + "m=audio 1 RTP/AVP 0\r\n" * 17)


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=1, max_size=12)
_text = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)
_ip4 = st.integers(1, 254).map(lambda n: f"192.0.2.{n}")
_attribute = st.builds(Attribute, _token.filter(lambda t: t not in ("sendrecv", "sendonly", "recvonly", "inactive",
                                                                     "rtpmap", "fmtp", "rtcp", "rtcp-fb", "extmap",
                                                                     "ssrc", "crypto")),
                       st.none() | _text)


@st.composite
def _media(draw: st.DrawFn) -> MediaDescription:
    pts = draw(st.lists(st.integers(0, 127), min_size=1, max_size=6, unique=True))
    attrs = [Attribute("rtpmap", f"{pt} {draw(_token.filter(lambda t: '/' not in t))}/{draw(st.integers(1, 96000))}")
             for pt in pts if draw(st.booleans())]
    attrs += draw(st.lists(_attribute, max_size=4))
    if draw(st.booleans()):
        attrs.append(Attribute(draw(st.sampled_from(["sendrecv", "sendonly", "recvonly", "inactive"]))))
    return MediaDescription(draw(st.sampled_from(["audio", "video"])), draw(st.integers(0, 65535)),
                            draw(st.sampled_from(["RTP/AVP", "RTP/SAVP", "RTP/AVPF"])), tuple(map(str, pts)),
                            connection=draw(st.none() | _ip4.map(lambda a: Connection("IP4", a))),
                            bandwidths=tuple(draw(st.lists(st.builds(Bandwidth, st.sampled_from(["AS", "TIAS"]),
                                                                     st.integers(0, 2**32 - 1)), max_size=2))),
                            attributes=tuple(attrs))


@st.composite
def _session(draw: st.DrawFn) -> SessionDescription:
    origin = Origin(draw(_text), str(draw(st.integers(0, 2**63))), draw(st.integers(0, 2**64 - 1)), "IP4",
                    draw(_ip4))
    return SessionDescription(origin, draw(_text), Connection("IP4", draw(_ip4)),
                              attributes=tuple(draw(st.lists(_attribute, max_size=3))),
                              media=tuple(draw(st.lists(_media(), max_size=4))))


@settings(max_examples=300, deadline=None)
@given(_session())
def test_hypothesis_serialize_parse_round_trip(sdp: SessionDescription) -> None:
    text = sdp.serialize()
    assert SessionDescription.parse(text) == sdp
    assert SessionDescription.parse(text).serialize() == text


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_hypothesis_mutated_real_offer_gives_sdp_errors_only(data: st.DataObject) -> None:
    lines = BARESIP_OFFER.split("\r\n")
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "dup", "edit"]))
        if action == "drop":
            del lines[i]
        elif action == "dup":
            lines.insert(i, lines[i])
        else:
            pos = data.draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + data.draw(st.text(max_size=3)) + lines[i][pos + 1:]
    try:
        sdp = SessionDescription.parse("\r\n".join(lines))
    except SdpError:
        return
    try:
        answer_offer(sdp, POLICY, ENDPOINTS, host=HOST, sdes=True)
    except (SdpError, SdpNegotiationError):
        pass


# --------------------------------------------------------------------------- SDES


def test_crypto_attributes() -> None:
    key = SrtpKeyMaterial.generate("AEAD_AES_128_GCM")
    text = format_crypto(7, key)
    assert text.endswith("==") and text.startswith("7 AEAD_AES_128_GCM inline:")
    assert parse_crypto(text, SdpError).key == key
    assert parse_crypto(text.rstrip("="), SdpError).key == key  # unpadded base64 from some peers
    inline = _b64(SrtpKeyMaterial.generate("AES_CM_128_HMAC_SHA1_80"))
    base = f"1 AES_CM_128_HMAC_SHA1_80 inline:{inline}"
    assert parse_crypto(base + "|2^31", SdpError).lifetime == 2**31
    assert parse_crypto(base + "|2147483648 WSH=128 KDR=0", SdpError).wsh == 128
    refusals = [
        (base + "|2^20", "lifetime 1048576 packets is below 2^31"),
        (base + "|1:4", "an MKI (1:4)"),
        (base + "|2^31|1:4", "an MKI"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{inline};inline:{inline}", "2 master keys"),
        (base + " UNENCRYPTED_SRTP", "UNENCRYPTED_SRTP turns protection off"),
        (base + " UNAUTHENTICATED_SRTP", "UNAUTHENTICATED_SRTP turns protection off"),
        (base + " KDR=24", "KDR=24"),
        (base + " FEC_ORDER=FEC_SRTP", "FEC_ORDER=FEC_SRTP"),
        (f"1 F8_128_HMAC_SHA1_80 inline:{inline}", "suite F8_128_HMAC_SHA1_80 is not one"),
    ]
    for value, reason in refusals:
        with pytest.raises(CryptoRefused, match=re.escape(reason)):
            parse_crypto(value, SdpError)
    for value, message in [(base + "|2^31|2^31", "neither a lifetime"), (base + " WSH=8", "WSH='8'"),
                           (base + "|x", "neither a lifetime nor MKI")]:
        with pytest.raises(SdpError, match=re.escape(message)):
            parse_crypto(value, SdpError)


def test_sdes_keys_are_fresh_and_never_in_repr_or_errors() -> None:
    offer = make_offer(POLICY, ENDPOINTS, host=HOST, sdes=True)
    keys = list(offer.keys.values())
    assert len(keys) == 4 and len({k.key_and_salt for k in keys}) == 4  # 2 suites x 2 streams
    assert all(_b64(k) not in repr(offer) for k in keys)
    text = offer.sdp.serialize()
    assert all(_b64(k) in text and _b64(k) not in redact_keys(text) for k in keys)
    assert "inline:..." in redact_keys(text) and redact_keys(text).count("a=crypto:") == 4
    secret = _b64(keys[0])
    for bad in (f"a=crypto:1 inline:{secret}", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{secret}|1|2|3"):
        with pytest.raises(SdpError) as info:
            SessionDescription.parse(text.replace("a=ptime:20", bad))
        assert secret not in str(info.value)


# --------------------------------------------------------------------------- answering


def test_answer_to_baresip_offer() -> None:
    answer, channels = answer_offer(SessionDescription.parse(BARESIP_OFFER), POLICY, ENDPOINTS, host=HOST, sdes=True)
    audio, video = answer.media
    assert (audio.port, audio.proto, audio.formats) == (16384, "RTP/SAVP", ("96",))  # Opus, the offer's PT
    assert audio.values("rtpmap") == ["96 opus/48000/2"] and audio.direction() == "sendrecv"
    assert video.formats == ("97",) and video.fmtps()[97] == {"profile-level-id": "42e01f", "packetization-mode": "1"}
    assert video.values("rtcp-fb") == ["97 nack pli"]  # only what both list
    assert [b.type for b in video.bandwidths] == ["AS", "TIAS"]
    assert answer.connection == Connection("IP4", HOST) and SessionDescription.parse(answer.serialize()) == answer
    offered_key = SessionDescription.parse(BARESIP_OFFER).media[0].cryptos()[0]
    assert isinstance(offered_key, CryptoAttribute)
    send, receive = _by(channels, "send", 1), _by(channels, "receive", 1)
    assert send.format == MediaFormat("OPUS", 96) and receive.format == MediaFormat("OPUS", 96)
    assert send.remote_rtp == Address("127.0.0.1", 4354) and send.remote_rtcp == Address("127.0.0.1", 4355)
    assert receive.srtp == offered_key.key and receive.local_rtp == ENDPOINTS[1][0]
    (ours,) = audio.cryptos()
    assert isinstance(ours, CryptoAttribute) and ours.tag == 1 and ours.key == send.srtp != receive.srtp
    vsend = _by(channels, "send", 2)
    assert (vsend.format.payload_type, vsend.format.packetization_mode, vsend.format.level) == (97, 1, 71)
    assert vsend.format.max_bitrate == 20000  # our 2 Mbit/s; level 3.1 would allow 14 Mbit/s
    assert sorted(c.number for c in channels) == [1, 2, 3, 4]


def test_accept_baresip_answer_to_vcore_offer() -> None:
    offer = _offer_of(VCORE_OFFER)
    keys = offer.keys
    channels = accept_answer(offer, SessionDescription.parse(BARESIP_ANSWER))
    send, receive = _by(channels, "send", 1), _by(channels, "receive", 1)
    assert send.format.name == receive.format.name == "OPUS" and send.suite == "AEAD_AES_128_GCM"
    assert send.srtp == keys[(0, 1)] and receive.srtp is not None and _b64(receive.srtp).startswith("EGXwj/0Y")
    assert send.remote_rtp == Address("127.0.0.1", 17076) and receive.remote_rtcp == Address("127.0.0.1", 17077)
    vsend = _by(channels, "send", 2)
    assert vsend.format.packetization_mode == 1 and vsend.format.payload_type == 96 and vsend.srtp == keys[(1, 1)]
    assert peer_feedback(SessionDescription.parse(BARESIP_ANSWER), 2) == {"nack pli"}


def _offer_of(text: str) -> SdpOffer:
    """An SdpOffer rebuilt from a captured vcore offer (its keys are in its a=crypto lines)."""
    sdp = SessionDescription.parse(text)
    keys = {(i, c.tag): c.key for i, m in enumerate(sdp.media) for c in m.cryptos() if isinstance(c, CryptoAttribute)}
    formats = ({111: OPUS, 9: G722, 0: PCMU, 8: MediaFormat("PCMA", 8)},
               {96: H264_MODE1, 97: replace_pt(DEFAULT_FORMATS[1], 97)})
    return SdpOffer(sdp, POLICY, ENDPOINTS, formats, keys)


def test_linphone_offer_and_answer() -> None:
    offer = SessionDescription.parse(LINPHONE_OFFER)
    assert offer.serialize() == LINPHONE_OFFER and offer.media[0].payload_types == (96, 97, 98, 0, 8, 18, 99, 100, 101)
    refused = [c for c in offer.media[0].cryptos() if isinstance(c, CryptoRefused)]
    assert [str(c).split(":")[1] for c in refused] == ["3", "4"]  # AES_256_CM_HMAC_SHA1_*: not in vcore's SRTP
    answer, channels = answer_offer(offer, POLICY, ENDPOINTS, host=HOST, sdes=True)
    audio, video = answer.media
    assert audio.formats == ("96",) and audio.values("crypto")[0].startswith("1 AES_CM_128_HMAC_SHA1_80 ")  # type: ignore[union-attr]
    # profile-level-id in capitals, no packetization-mode: mode 0 (RFC 6184 §8.1), the profile echoed
    assert video.formats == ("97",) and video.values("fmtp") == ["97 profile-level-id=42801f;packetization-mode=0"]
    assert video.values("rtcp-fb") == ["97 nack pli", "97 ccm fir", "97 ccm tmmbr"]  # tmmbr from "*"
    assert _by(channels, "send", 2).format.packetization_mode == 0
    assert _by(channels, "receive", 1).suite == "AES_CM_128_HMAC_SHA1_80"
    # without Opus (H.323's formats), G.711 from the static payload types
    _, channels = answer_offer(offer, PLAIN, ENDPOINTS, host=HOST, sdes=True)
    assert _by(channels, "send", 1).format == MediaFormat("PCMU", 0)
    # linphone's answer to vcore: tag 2 (it has no GCM), static PTs without rtpmap, "; " in fmtp
    sdp = SessionDescription.parse(LINPHONE_ANSWER)
    assert sdp.serialize() == LINPHONE_ANSWER
    vcore_offer = _offer_of(VCORE_OFFER_2)
    channels = accept_answer(vcore_offer, sdp)
    send = _by(channels, "send", 1)
    assert send.format == MediaFormat("OPUS", 111) and send.srtp == vcore_offer.keys[(0, 2)]
    assert _by(channels, "send", 2).format.packetization_mode == 1
    assert peer_feedback(sdp, 2) == {"nack", "nack pli", "ccm fir", "trr-int 5000"}


def replace_pt(fmt: MediaFormat, pt: int) -> MediaFormat:
    return MediaFormat(fmt.name, pt, fmt.frames, fmt.profile, fmt.level, fmt.packetization_mode, fmt.max_bitrate)


def test_vcore_to_vcore_offer_answer_pairs_keys_addresses_and_formats() -> None:
    other = {1: (Address("198.51.100.7", 30000), Address("198.51.100.7", 30001)),
             2: (Address("198.51.100.7", 30002), Address("198.51.100.7", 30009))}
    offer = make_offer(POLICY, ENDPOINTS, host=HOST, sdes=True)
    answer, theirs = answer_offer(SessionDescription.parse(offer.sdp.serialize()), POLICY, other,
                                  host="198.51.100.7", sdes=True)
    ours = accept_answer(offer, SessionDescription.parse(answer.serialize()))
    assert answer.media[1].values("rtcp") == ["30009"]  # RFC 3605: RTCP not on RTP + 1
    for session in (1, 2):
        a_send, b_recv = _by(ours, "send", session), _by(theirs, "receive", session)
        b_send, a_recv = _by(theirs, "send", session), _by(ours, "receive", session)
        assert a_send.srtp == b_recv.srtp and b_send.srtp == a_recv.srtp and a_send.srtp != b_send.srtp
        assert a_send.suite == "AEAD_AES_128_GCM"
        assert a_send.format.payload_type == b_recv.format.payload_type
        assert b_send.format.payload_type == a_recv.format.payload_type
        assert a_send.remote_rtp == other[session][0] and b_send.remote_rtp == ENDPOINTS[session][0]
        assert a_send.remote_rtcp == other[session][1] and b_send.remote_rtcp == ENDPOINTS[session][1]
    assert _by(ours, "send", 1).format.name == "OPUS"
    assert peer_feedback(answer, 2) == {"nack", "nack pli", "ccm fir", "ccm tmmbr", "ack ccfb"}


def test_reoffer_keeps_origin_and_bumps_version() -> None:
    first = make_offer(POLICY, ENDPOINTS, host=HOST, sdes=True)
    again = make_offer(POLICY, ENDPOINTS, host=HOST, sdes=True, previous=first.sdp, direction="sendonly")
    assert again.sdp.origin.session_id == first.sdp.origin.session_id
    assert again.sdp.origin.version == first.sdp.origin.version + 1
    assert all(m.direction() == "sendonly" for m in again.sdp.media)


@pytest.mark.parametrize(("offered", "ours", "answered", "directions"), [
    ("sendrecv", "sendrecv", "sendrecv", {"send", "receive"}),
    ("sendonly", "sendrecv", "recvonly", {"receive"}),
    ("recvonly", "sendrecv", "sendonly", {"send"}),
    ("inactive", "sendrecv", "inactive", set()),
    ("sendrecv", "sendonly", "sendonly", {"send"}),
    ("sendonly", "sendonly", "inactive", set()),
])
def test_answer_directions(offered: str, ours: str, answered: str, directions: set[str]) -> None:
    sdp = _offer(PEER, **{"t=0 0\r\n": f"t=0 0\r\na={offered}\r\n"})
    answer, channels = answer_offer(sdp, PLAIN, ENDPOINTS, host=HOST, sdes=False, direction=ours)  # type: ignore[arg-type]
    assert [m.direction() for m in answer.media] == [answered, answered]
    assert {c.direction for c in channels if c.session_id == 1} == directions


def test_old_style_hold_address_sends_nothing() -> None:
    _, channels = answer_offer(_offer(PEER, **{"c=IN IP4 198.51.100.7": "c=IN IP4 0.0.0.0"}), PLAIN, ENDPOINTS,
                               host=HOST, sdes=False)
    assert {c.direction for c in channels} == {"receive"}


def test_plaintext_and_sdes_policy() -> None:
    with pytest.raises(SdpNegotiationError, match="m=audio: plain RTP offered and plaintext media is not allowed"):
        answer_offer(SessionDescription.parse(PEER), MediaPolicy(DEFAULT_FORMATS), ENDPOINTS, host=HOST, sdes=True)
    _, channels = answer_offer(SessionDescription.parse(PEER), PLAIN, ENDPOINTS, host=HOST, sdes=False)
    assert len(channels) == 4 and not any(c.encrypted for c in channels)
    with pytest.raises(SdpNegotiationError, match="SDES.*only over TLS signalling"):
        answer_offer(SessionDescription.parse(BARESIP_OFFER), POLICY, ENDPOINTS, host=HOST, sdes=False)
    with pytest.raises(SdpNegotiationError, match="no SRTP suite may be offered"):
        make_offer(POLICY, ENDPOINTS, host=HOST, sdes=False)
    plain = make_offer(PLAIN, ENDPOINTS, host=HOST, sdes=False)
    assert {m.proto for m in plain.sdp.media} == {"RTP/AVP"} and not any(m.has("crypto") for m in plain.sdp.media)
    # best-effort SRTP (RTP/AVP carrying a=crypto, baresip's mediaenc=srtp) is answered with SRTP
    best_effort = BARESIP_OFFER.replace("RTP/SAVP", "RTP/AVP")
    answer, channels = answer_offer(SessionDescription.parse(best_effort), POLICY, ENDPOINTS, host=HOST, sdes=True)
    assert all(c.encrypted for c in channels) and answer.media[0].proto == "RTP/AVP" and answer.media[0].has("crypto")


def test_suite_choice_and_refusals() -> None:
    inline = _b64(SrtpKeyMaterial.generate("AES_CM_128_HMAC_SHA1_80"))
    gcm = _b64(SrtpKeyMaterial.generate("AEAD_AES_128_GCM"))
    two = BARESIP_OFFER.replace(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:ZcGzdN2lAqTDYaDFqSNOfbnudtcHQJVzOY5bHomc",
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{inline}\r\na=crypto:2 AEAD_AES_128_GCM inline:{gcm}")
    answer, channels = answer_offer(SessionDescription.parse(two), POLICY, ENDPOINTS, host=HOST, sdes=True)
    assert str(answer.media[0].values("crypto")[0]).startswith("2 AEAD_AES_128_GCM ")  # our preference wins
    assert _by(channels, "receive", 1).suite == "AEAD_AES_128_GCM"
    weak = re.sub(r"AES_CM_128_HMAC_SHA1_80 (inline:\S+)", r"AES_CM_128_HMAC_SHA1_80 \1|2^20", BARESIP_OFFER)
    with pytest.raises(SdpNegotiationError, match=r"no common SRTP suite .*lifetime 1048576 packets"):
        answer_offer(SessionDescription.parse(weak), POLICY, ENDPOINTS, host=HOST, sdes=True)
    dtls = BARESIP_OFFER.replace("RTP/SAVP", "UDP/TLS/RTP/SAVPF")
    with pytest.raises(SdpNegotiationError, match="DTLS-SRTP is off in this terminal"):
        answer_offer(SessionDescription.parse(dtls), POLICY, ENDPOINTS, host=HOST, sdes=True)


def test_unsupported_streams_get_port_zero() -> None:
    text = PEER + "m=application 5000 UDP/BFCP *\r\nm=audio 40010 RTP/AVP 0\r\nm=video 40012 RTP/AVP 31\r\n" \
                  "a=rtpmap:31 H261/90000\r\n"
    answer, channels = answer_offer(SessionDescription.parse(text), PLAIN, ENDPOINTS, host=HOST, sdes=False)
    assert [(m.media, m.port, m.formats) for m in answer.media][2:] == [
        ("application", 0, ("*",)), ("audio", 0, ("0",)), ("video", 0, ("31",))]
    assert len(channels) == 4
    with pytest.raises(SdpNegotiationError, match=r"no common codec \(offered H261/90000, MPV/90000; vcore has H264"):
        answer_offer(SessionDescription.parse(RFC4317_OFFER.replace("host.atlanta.example.com", "192.0.2.7")
                                              .replace("m=audio 49170", "m=audio 0")), PLAIN, ENDPOINTS,
                     host=HOST, sdes=False)
    with pytest.raises(SdpNegotiationError, match="is a host name; vcore does not resolve names"):
        answer_offer(SessionDescription.parse(RFC4317_OFFER), PLAIN, ENDPOINTS, host=HOST, sdes=False)
    answer, channels = answer_offer(
        SessionDescription.parse(RFC4317_OFFER.replace("host.atlanta.example.com", "192.0.2.7")), PLAIN, ENDPOINTS,
        host=HOST, sdes=False)
    assert [(m.port, m.formats) for m in answer.media] == [(16384, ("0",)), (0, ("31",))]
    assert {c.format.name for c in channels} == {"PCMU"}


def test_rtcp_mux() -> None:
    muxed_offer = make_offer(PLAIN, MUXED, host=HOST, sdes=False)
    assert muxed_offer.sdp.media[0].values("rtcp") == ["16384"] and muxed_offer.sdp.media[0].has("rtcp-mux")
    # a peer that multiplexes too
    answer, channels = answer_offer(SessionDescription.parse(muxed_offer.sdp.serialize()), PLAIN, MUXED,
                                    host=HOST, sdes=False)
    assert answer.media[0].has("rtcp-mux") and _by(channels, "send", 1).remote_rtcp == MUXED[1][0]
    # our RTCP on its own port: answered without rtcp-mux (RFC 5761 §5.1.1), the peer's a=rtcp honoured
    answer, channels = answer_offer(SessionDescription.parse(muxed_offer.sdp.serialize()), PLAIN, ENDPOINTS,
                                    host=HOST, sdes=False)
    assert not answer.media[0].has("rtcp-mux") and _by(channels, "send", 1).remote_rtcp == Address(HOST, 16384)
    accepted = accept_answer(muxed_offer, answer)
    assert _by(accepted, "send", 1).remote_rtcp == Address(HOST, 16385)
    # our RTCP multiplexed, the peer's not: a=rtcp names our RTP port, and no rtcp-mux it did not offer
    answer, channels = answer_offer(SessionDescription.parse(PEER), PLAIN, MUXED, host=HOST, sdes=False)
    assert answer.media[0].values("rtcp") == ["16384"] and not answer.media[0].has("rtcp-mux")
    assert _by(channels, "send", 1).remote_rtcp == Address("198.51.100.7", 40001)
    only = _offer(PEER, **{"a=rtpmap:0 PCMU/8000": "a=rtpmap:0 PCMU/8000\r\na=rtcp-mux\r\na=rtcp-mux-only"})
    answer, _ = answer_offer(only, PLAIN, ENDPOINTS, host=HOST, sdes=False)
    assert answer.media[0].port == 0
    addressed = _offer(PEER, **{"a=rtpmap:0 PCMU/8000": "a=rtpmap:0 PCMU/8000\r\na=rtcp:53020 IN IP4 198.51.100.9"})
    _, channels = answer_offer(addressed, PLAIN, ENDPOINTS, host=HOST, sdes=False)
    assert _by(channels, "send", 1).remote_rtcp == Address("198.51.100.9", 53020)


# --------------------------------------------------------------------------- H.264 (RFC 6184 §8)


def _video(fmtp: str, extra: str = "") -> SessionDescription:
    return _offer(PEER, **{"a=fmtp:100 profile-level-id=42e01f;packetization-mode=1": f"a=fmtp:100 {fmtp}{extra}"})


def _video_channels(fmtp: str, extra: str = "", policy: MediaPolicy = PLAIN) -> tuple[MediaFormat, MediaFormat, str]:
    answer, channels = answer_offer(_video(fmtp, extra), policy, ENDPOINTS, host=HOST, sdes=False)
    return _by(channels, "send", 2).format, _by(channels, "receive", 2).format, str(answer.media[1].values("fmtp")[0])


def test_h264_levels_and_bitrate() -> None:
    send, receive, fmtp = _video_channels("profile-level-id=42e00d;packetization-mode=1")  # level 1.3: 768 kbit/s
    assert (send.level, receive.level, send.max_bitrate) == (36, 36, 7680)
    assert fmtp == "100 profile-level-id=42e00d;packetization-mode=1;max-br=2000"  # the lower level; our 2 Mbit/s
    send, receive, fmtp = _video_channels("profile-level-id=42e00d;packetization-mode=1;level-asymmetry-allowed=1")
    assert (send.level, receive.level) == (36, 71)  # each direction at its receiver's level
    assert fmtp == "100 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1"
    send, _, _ = _video_channels("profile-level-id=42e00d;packetization-mode=1;max-br=1500")
    assert send.max_bitrate == 15000  # max-br raises the level's MaxBR
    send, _, _ = _video_channels("profile-level-id=42e01f;packetization-mode=1", "\r\nb=TIAS:512000")
    assert send.max_bitrate == 5120
    send, _, _ = _video_channels("profile-level-id=42e01f;packetization-mode=1", "\r\nb=AS:384")
    assert send.max_bitrate == 3840
    send, receive, fmtp = _video_channels("profile-level-id=42e00b;packetization-mode=1")  # level 1.1
    assert send.level == 22 and send.max_bitrate == 1920
    send, _, fmtp = _video_channels("profile-level-id=42f00b;packetization-mode=1")  # constraint_set3: level 1b
    assert send.level == 19 and fmtp.startswith("100 profile-level-id=42f00b")
    send, _, _ = _video_channels("packetization-mode=1")  # RFC 6184 default: Baseline level 1
    assert send.level == 15 and send.max_bitrate == 640


def test_h264_profiles_and_modes() -> None:
    send, _, fmtp = _video_channels("profile-level-id=4de01f;packetization-mode=1")  # constrained baseline, as Main
    assert send.packetization_mode == 1 and fmtp.startswith("100 profile-level-id=4de01f")
    for fmtp in ("profile-level-id=640c1f;packetization-mode=1",  # High only: vcore sends Baseline
                 "profile-level-id=4d401f;packetization-mode=1",  # Main without constraint_set0: not CB
                 "profile-level-id=42e01f;packetization-mode=2"):  # interleaved
        answer, channels = answer_offer(_video(fmtp), PLAIN, ENDPOINTS, host=HOST, sdes=False)
        assert answer.media[1].port == 0 and {c.session_id for c in channels} == {1}
    mode0 = make_offer(PLAIN, ENDPOINTS, host=HOST, sdes=False).sdp.media[1].fmtps()
    assert mode0[97]["packetization-mode"] == "0" and mode0[96]["packetization-mode"] == "1"
    send, _, _ = _video_channels("profile-level-id=42e01f")  # mode 0 is the default
    assert send.packetization_mode == 0 and send.payload_type == 100
    for fmtp, message in [("profile-level-id=42e0", "profile-level-id '42e0' is not 6 hexadecimal digits"),
                          ("profile-level-id=zzzzzz", "is not 6 hexadecimal digits"),
                          ("packetization-mode=3", "packetization-mode '3' is not 0, 1 or 2"),
                          ("packetization-mode=1;max-br=x", "max-br 'x' is not a number")]:
        with pytest.raises(SdpError, match=re.escape(message)):
            _video_channels(fmtp)


def test_offer_bandwidth_and_max_br() -> None:
    fast = MediaFormat("H264", 96, profile=64, level=43, packetization_mode=1, max_bitrate=30000)  # 3 Mbit/s at 2.0
    offer = make_offer(MediaPolicy((fast, PCMU), allow_plaintext=True), ENDPOINTS, host=HOST, sdes=False)
    video = offer.sdp.media[1]
    assert video.fmtps()[96] == {"profile-level-id": "42e014", "packetization-mode": "1",
                                 "level-asymmetry-allowed": "1", "max-br": "3000"}
    assert video.bandwidths == (Bandwidth("AS", 3000), Bandwidth("TIAS", 3000000))


# --------------------------------------------------------------------------- answers that break the rules


def test_bad_answers_are_refused() -> None:
    offer = make_offer(POLICY, ENDPOINTS, host=HOST, sdes=True)
    good, _ = answer_offer(SessionDescription.parse(offer.sdp.serialize()), POLICY, ENDPOINTS, host=HOST, sdes=True)
    text = good.serialize()

    def refuse(body: str, message: str) -> None:
        with pytest.raises(SdpNegotiationError, match=re.escape(message)):
            accept_answer(offer, SessionDescription.parse(body))

    audio_crypto = good.media[0].values("crypto")[0]
    assert audio_crypto is not None
    tag = audio_crypto.split(" ")[0]
    refuse(text.split("m=video")[0], "the answer has 1 m= lines for the offer's 2")
    refuse(text.replace("RTP/SAVP", "RTP/AVP"), "is 'audio RTP/AVP' for an offered 'audio RTP/SAVP'")
    refuse(text.replace("opus/48000/2", "speex/8000"), "accepts no format that was offered")
    refuse(text.replace(f"a=crypto:{audio_crypto}\r\n", ""), "needs exactly one usable a=crypto, has 0")
    refuse(text.replace(f"a=crypto:{tag} ", "a=crypto:9 "), "answers a=crypto:9")
    refuse(text.replace(f"a=crypto:{audio_crypto}", f"a=crypto:{audio_crypto}|2^20"), "below 2^31")
    refuse(re.sub(r"m=(audio|video) \d+", r"m=\1 0", text), "the answer refuses every offered stream")
    refuse(text.replace(f"c=IN IP4 {HOST}", "c=IN IP4 peer.example.com"), "is a host name")


def test_opus_format_and_sip_policy() -> None:
    assert OPUS.clock_rate == 48000 and OPUS.kind == "audio" and OPUS not in DEFAULT_FORMATS
    assert [f.name for f in POLICY.formats] == ["H264", "H264", "OPUS", "G722", "PCMU", "PCMA"]
    assert sip_policy(POLICY) is POLICY
    assert set(SUITES) >= set(POLICY.suites)
    video_only = MediaPolicy((H264_MODE1,))
    assert sip_policy(video_only) is video_only


# --------------------------------------------------------------------------- Opus through the call layer


def test_audio_receiver_switches_to_the_negotiated_clock() -> None:
    from vcore.media import AudioDecoder, AudioReceiver
    from vcore.media.errors import MediaError

    rx = AudioReceiver(AudioDecoder("pcmu"))
    rx.set_decoder(AudioDecoder("opus"))
    assert rx.clock_rate == 48000 and rx.decoder.info.name == "opus"
    rx.packets = 1
    with pytest.raises(MediaError, match="only before the first packet"):
        rx.set_decoder(AudioDecoder("pcmu"))


def test_opus_call_between_vcore_terminals() -> None:
    import asyncio
    from typing import Any

    import vcore
    from vcore.sip import SipSettings

    from .call_helpers import T, run, sources, until, wait_for

    def plain(name: str, **kw: Any) -> Any:
        opts: dict[str, Any] = {"formats": (H264_MODE1, OPUS, G722, PCMU), **sources(), **kw}
        return vcore.Terminal(name, allow_plaintext=True, bitrate=300_000, encoder="libx264", listen=False,
                              sip=SipSettings(transport="tcp", sdes_over_plaintext=True), **opts)

    small = MediaFormat("H264", 96, profile=64, level=22, packetization_mode=1, max_bitrate=20000)  # level 1.1

    async def scenario() -> None:
        async with plain("Agent", auto_answer=True, formats=(small, OPUS, PCMU)) as agent, plain("Kiosk") as kiosk:
            incoming: asyncio.Future[Any] = asyncio.ensure_future(agent.incoming().__anext__())
            call = await kiosk.call(agent.sip_uri)
            await asyncio.wait_for(call.connected, T)
            answered = (await asyncio.wait_for(incoming, T)).call
            await until(call, "media-started")
            await until(answered, "media-started")

            def decoded() -> bool:
                streams = [c.stats().stream("audio", "receive") for c in (call, answered)]
                return all(s is not None and s.frames >= 25 for s in streams)

            await wait_for(decoded)
            for c in (call, answered):
                rx, tx = c.stats().stream("audio", "receive"), c.stats().stream("audio", "send")
                assert rx.codec == tx.codec == "OPUS" and rx.cipher_suite == "AEAD_AES_128_GCM"
                assert rx.dropped == 0 and rx.loss == 0.0
                assert rx.jitter is not None and rx.jitter < 0.02  # in seconds: the 48 kHz clock is the right one
            # level asymmetry (RFC 6184 §8.2.2): each side sends what the other's level decodes (MaxFS, MaxMBPS, MaxBR)
            await wait_for(lambda: all(c.stats().stream("video", "send") is not None for c in (call, answered)))
            to_agent, to_kiosk = call.stats().stream("video", "send"), answered.stats().stream("video", "send")
            assert str(to_agent.size).startswith("176x144@") and str(to_kiosk.size).startswith("320x240@")
            await call.hangup()

    run(scenario())
