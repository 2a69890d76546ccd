"""SDP offer/answer (RFC 3264) for vcore's calls: codecs, H.264 parameters, RTCP, feedback and SDES keys.

The counterpart of :mod:`vcore.h323.fast_connect` for SIP: the result on both
sides is a list of :class:`~vcore.h323.fast_connect.MediaChannel` (one ``send``
and one ``receive`` per accepted ``m=`` line, as its direction allows;
``session_id`` 1 audio, 2 video; ``number`` a small per-call counter).

- Codecs: PCMU, PCMA, G.722 (static payload types, RFC 3551), Opus
  (``opus/48000/2``, RFC 7587) and H.264 (RFC 6184 §8: ``profile-level-id``,
  ``packetization-mode`` 0 or 1, ``level-asymmetry-allowed``, ``max-br`` — which
  can only raise the level's MaxBR — and ``max-fs``, parsed and checked). The
  answer keeps the offer's payload type numbers and names one codec per stream
  (the one vcore prefers among those offered), so the peer sends only that one.
- Bit rate: our video toward the peer is capped by the level's MaxBR (or a
  higher ``max-br``), then by the peer's ``b=TIAS`` (RFC 3890) or ``b=AS``, then
  by our own ``MediaFormat.max_bitrate`` (units of 100 bit/s).
- RTCP: ``a=rtcp`` (RFC 3605) when RTCP is not on RTP's port + 1;
  ``a=rtcp-mux`` (RFC 5761) offered and accepted only when our endpoint for the
  session multiplexes (its RTP and RTCP addresses are one), else answered without.
- Feedback (``a=rtcp-fb``, RFC 4585): ``nack``, ``nack pli``, ``ccm fir``,
  ``ccm tmmbr`` (RFC 5104: vcore's video sender obeys TMMBR and answers TMMBN)
  and ``ack ccfb`` (RFC 8888 §6, vcore's congestion feedback) on video;
  an answer keeps what both sides list. vcore implements no ``goog-remb``,
  ``transport-cc``, RTP header extension (``a=extmap``) or RTX (RFC 4588) stream,
  so it never offers them and answers without them.
- SRTP: SDES (:mod:`vcore.sip.sdes`), offered as ``RTP/SAVP`` with one
  ``a=crypto`` per suite of the policy, each with its own fresh key, only when the
  caller says SDES may travel on this signalling (``sdes=True``: TLS, or an
  explicit allowance). ``RTP/SAVPF`` and ``RTP/AVPF`` offers are accepted; an
  ``RTP/AVP`` offer carrying ``a=crypto`` (best-effort SRTP) is answered with SRTP.
  Plain RTP only with ``MediaPolicy.allow_plaintext``.
- DTLS-SRTP (``UDP/TLS/RTP/SAVP(F)``, RFC 5763/5764; :mod:`vcore.sip.sdp_dtls`): offered
  instead of SDES when the caller passes ``dtls=`` (the terminal's DTLS certificate),
  answered when an offer has it and ``dtls=`` is given; under the same rule as SDES
  (``sdes=True``: the fingerprint travels on TLS, or explicitly allowed). Its keys come
  from the handshake after the answer, so its channels leave here without keys.

The SDP syntax (:class:`SessionDescription` and its parts, :class:`SdpError`)
lives in :mod:`vcore.sip.sdp_syntax` and is re-exported here. Pure functions;
the values are immutable and thread-safe.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import count

from ..h323.fast_connect import MediaChannel, MediaEndpoints, MediaPolicy
from ..h323.keys import SUITES, SrtpKeyMaterial
from ..h323.messages import (
    H264_PROFILE_BASELINE,
    H264_PROFILE_HIGH,
    H264_PROFILE_MAIN,
    OPUS,
    Address,
    MediaFormat,
)
from ..transport.dtls import DtlsCertificate
from .sdes import CryptoAttribute, format_crypto
from .sdp_dtls import answer_attributes, is_dtls, offer_attributes
from .sdp_syntax import (
    DIRECTIONS,
    MAX_LINE_LENGTH,
    MAX_LINES,
    MAX_MEDIA,
    MAX_SDP_LENGTH,
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    ExtMap,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SdpNegotiationError,
    SessionDescription,
    Timing,
)

__all__ = [
    "DIRECTIONS",
    "MAX_LINES",
    "MAX_LINE_LENGTH",
    "MAX_MEDIA",
    "MAX_SDP_LENGTH",
    "VCORE_FEEDBACK",
    "Attribute",
    "Bandwidth",
    "Connection",
    "ExtMap",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SdpError",
    "SdpNegotiationError",
    "SdpOffer",
    "SessionDescription",
    "Timing",
    "accept_answer",
    "answer_offer",
    "make_offer",
    "peer_addresses",
    "peer_feedback",
    "sip_policy",
]

VCORE_FEEDBACK = ("nack", "nack pli", "ccm fir", "ccm tmmbr", "ack ccfb")  # RFC 4585 §4.2, 5104 §7.1, 8888 §6
_SECURE_PROTOS = ("RTP/SAVP", "RTP/SAVPF")
_STATIC = {0: "PCMU", 8: "PCMA", 9: "G722"}  # RFC 3551 Table 4
_AUDIO = {"PCMU": (8000, (None, 1)), "PCMA": (8000, (None, 1)), "G722": (8000, (None, 1)),
          "OPUS": (48000, (2,))}  # encoding -> (RTP clock, channel counts): RFC 3551 §4.5, RFC 7587 §7
_RTPMAP_NAMES = {"PCMU": "PCMU/8000", "PCMA": "PCMA/8000", "G722": "G722/8000", "OPUS": "opus/48000/2",
                 "H264": "H264/90000"}
_SESSIONS = {"audio": 1, "video": 2}
_PTIME = 20  # ms of audio per packet, what vcore's encoders send

# RFC 6184 §8.1 profile_idc <-> H.241 profile bits; level_idc <-> H.241 level value; Table A-1 MaxBR (kbit/s)
_PROFILE_BITS = {66: H264_PROFILE_BASELINE, 77: H264_PROFILE_MAIN, 88: 16, 100: H264_PROFILE_HIGH}
_PROFILE_IDC = {H264_PROFILE_BASELINE: (0x42, 0xE0), H264_PROFILE_MAIN: (0x4D, 0x00), 16: (0x58, 0x00),
                H264_PROFILE_HIGH: (0x64, 0x00)}  # baseline answered as constrained baseline (what x264 makes)
_LEVEL_FROM_IDC = {10: 15, 9: 19, 11: 22, 12: 29, 13: 36, 20: 43, 21: 50, 22: 57, 30: 64, 31: 71, 32: 78,
                   40: 85, 41: 92, 42: 99, 50: 106, 51: 113, 52: 113}
_IDC_FROM_LEVEL = {v: k for k, v in _LEVEL_FROM_IDC.items() if k != 52}
_MAX_BR = {15: 64, 19: 128, 22: 192, 29: 384, 36: 768, 43: 2000, 50: 4000, 57: 4000, 64: 10000, 71: 14000,
           78: 20000, 85: 20000, 92: 50000, 99: 50000, 106: 135000, 113: 240000}
_DEFAULT_PROFILE_LEVEL_ID = "42000a"  # RFC 6184 §8.1: Baseline, level 1, when the parameter is absent


class _Refused(Exception):
    """One offered stream vcore cannot accept (the answer gives it port 0)."""


@dataclass(frozen=True)
class _H264:
    """The RFC 6184 parameters of one H.264 payload type."""

    profile: int
    profile_idc: int
    iop: int
    level: int
    mode: int
    max_br: int  # kbit/s, 0 when absent
    asymmetry: bool


def _h264(params: Mapping[str, str], pt: int) -> _H264 | None:
    plid = params.get("profile-level-id", _DEFAULT_PROFILE_LEVEL_ID)
    try:
        if len(plid) != 6:
            raise ValueError
        idc, iop, level_idc = bytes.fromhex(plid)
    except ValueError:
        raise SdpError(f"a=fmtp:{pt} profile-level-id {plid!r} is not 6 hexadecimal digits") from None
    mode_text = params.get("packetization-mode", "0")
    if mode_text not in ("0", "1", "2"):
        raise SdpError(f"a=fmtp:{pt} packetization-mode {mode_text!r} is not 0, 1 or 2")
    numbers: dict[str, int] = {}
    for name in ("max-br", "max-fs", "max-mbps", "level-asymmetry-allowed"):
        text = params.get(name)
        if text is not None:
            if not text.isdigit() or len(text) > 9:
                raise SdpError(f"a=fmtp:{pt} {name} {text!r} is not a number")
            numbers[name] = int(text)
    if idc == 0x42 and iop & 0x40 or idc == 0x4D and iop & 0x80 or idc == 0x58 and iop & 0xC0 == 0xC0:
        profile = H264_PROFILE_BASELINE | _PROFILE_BITS[idc]  # RFC 6184 Table 5: constrained baseline
    else:
        profile = _PROFILE_BITS.get(idc, 0)
    level = 19 if level_idc == 11 and idc in (0x42, 0x4D, 0x58) and iop & 0x10 else _LEVEL_FROM_IDC.get(level_idc, 0)
    if not profile or not level or mode_text == "2":
        return None  # an H.264 flavour vcore neither sends nor decodes (interleaved mode, an unknown level)
    return _H264(profile, idc, iop, level, int(mode_text), numbers.get("max-br", 0),
                 numbers.get("level-asymmetry-allowed") == 1)


def _peer_formats(m: MediaDescription) -> Iterator[tuple[int, MediaFormat, _H264 | None]]:
    """The formats of an m= line that vcore knows, in the peer's order: (payload type, format, H.264 params)."""
    maps, fmtps = m.rtpmaps(), m.fmtps()
    for pt in m.payload_types:
        rtpmap = maps.get(pt)
        if rtpmap is None:
            if pt in _STATIC and m.media == "audio":
                yield pt, MediaFormat(_STATIC[pt], pt), None
            continue
        name = rtpmap.encoding.upper()
        if m.media == "audio" and name in _AUDIO:
            clock, channels = _AUDIO[name]
            if rtpmap.clock_rate == clock and rtpmap.channels in channels:
                yield pt, MediaFormat(name, pt), None
        elif m.media == "video" and name == "H264" and rtpmap.clock_rate == 90000:
            params = _h264(fmtps.get(pt, {}), pt)
            if params is not None:
                yield pt, MediaFormat("H264", pt, profile=params.profile, level=params.level,
                                      packetization_mode=params.mode), params


def _bandwidth(sdp: SessionDescription, m: MediaDescription) -> int | None:
    """The peer's limit in bit/s: TIAS (RFC 3890) before AS, media level before session level."""
    for lines in (m.bandwidths, sdp.bandwidths):
        by_type = {b.type: b.value for b in lines if b.value > 0}
        if "TIAS" in by_type:
            return by_type["TIAS"]
        if "AS" in by_type:
            return by_type["AS"] * 1000
    return None


def _level(fmt: MediaFormat) -> int:
    """An H.264 format's H.241 level value; an unset or unknown one counts as level 3.1 (vcore's default)."""
    return fmt.level if fmt.level in _MAX_BR else 71


def _send_format(ours: MediaFormat, theirs: MediaFormat, params: _H264 | None, limit: int | None) -> MediaFormat:
    """What we send: the peer's payload type, its receive level (RFC 6184 §8.2.2) and every bit-rate cap."""
    if theirs.name != "H264" or params is None:
        return replace(ours, payload_type=theirs.payload_type, max_bitrate=0)
    level = params.level if params.asymmetry else min(_level(ours), params.level)
    bps = max(_MAX_BR[level], params.max_br) * 1000
    for cap in (limit, ours.max_bitrate * 100 or None):
        if cap is not None:
            bps = min(bps, cap)
    return MediaFormat("H264", theirs.payload_type, profile=ours.profile & theirs.profile or ours.profile,
                       level=level, packetization_mode=theirs.packetization_mode, max_bitrate=max(1, bps // 100))


def _receive_format(ours: MediaFormat, theirs: MediaFormat, params: _H264 | None, pt: int) -> MediaFormat:
    """What the peer sends us: our payload type, our level (or the lower one), our bit-rate ceiling."""
    if theirs.name != "H264" or params is None:
        return replace(ours, payload_type=pt)
    level = _level(ours) if params.asymmetry else min(_level(ours), params.level)
    return replace(ours, payload_type=pt, level=level, packetization_mode=theirs.packetization_mode)


def _format_attributes(pt: int, fmt: MediaFormat, *, asymmetry: bool = True,
                       profile: tuple[int, int] | None = None) -> list[Attribute]:
    attrs = [Attribute("rtpmap", f"{pt} {_RTPMAP_NAMES[fmt.name]}")]
    if fmt.name == "H264":
        idc, iop = profile or _PROFILE_IDC[next(b for b in _PROFILE_IDC if fmt.profile & b)]
        level = _level(fmt)
        level_idc = _IDC_FROM_LEVEL[level]
        if level == 19:  # level 1b: level_idc 11 and constraint_set3 (RFC 6184 §8.1)
            iop |= 0x10 if idc in (0x42, 0x4D, 0x58) else 0
            level_idc = 11 if idc in (0x42, 0x4D, 0x58) else 9
        params = f"profile-level-id={idc:02x}{iop:02x}{level_idc:02x};packetization-mode={fmt.packetization_mode}"
        if asymmetry:
            params += ";level-asymmetry-allowed=1"
        if fmt.max_bitrate * 100 > _MAX_BR[level] * 1000:
            params += f";max-br={-(-fmt.max_bitrate // 10)}"  # kbit/s, only above the level's MaxBR
        attrs.append(Attribute("fmtp", f"{pt} {params}"))
    return attrs


def _video_bandwidth(fmt: MediaFormat) -> tuple[Bandwidth, ...]:
    if fmt.name != "H264" or not fmt.max_bitrate:
        return ()
    bps = fmt.max_bitrate * 100
    return Bandwidth("AS", -(-bps // 1000)), Bandwidth("TIAS", bps)


def _rtcp_attributes(rtp: Address, rtcp: Address) -> list[Attribute]:
    if rtcp == rtp:
        return [Attribute("rtcp", str(rtp.port)), Attribute("rtcp-mux")]  # RFC 5761 §5.1.3
    if rtcp.host != rtp.host:
        return [Attribute("rtcp", f"{rtcp.port} {Connection.of(rtcp.host)}")]
    return [Attribute("rtcp", str(rtcp.port))] if rtcp.port != rtp.port + 1 else []


def peer_addresses(sdp: SessionDescription, m: MediaDescription, mux: bool) -> tuple[Address, Address] | None:
    """Where the peer receives the RTP and RTCP of its stream ``m`` in ``sdp``: the ``c=`` address (media
    level, else session level) and the port, RTCP on the same port with ``mux`` (RFC 5761), else where
    ``a=rtcp`` says (RFC 3605), else on the next port. None when it announces no address (``c=0.0.0.0``:
    RFC 2543 hold). Raises :class:`SdpNegotiationError` for a host name (vcore does not resolve names in
    SDP). The offer/answer here and the mid-call offers of :mod:`vcore.sip.reoffer` both read it so."""
    conn = sdp.connection_for(m)
    if conn is None or conn.is_unspecified:
        return None
    if not conn.is_ip:
        raise SdpNegotiationError(f"c= address {conn.address!r} is a host name; vcore does not resolve names in SDP")
    rtp = Address(conn.address, m.port)
    if mux:
        return rtp, rtp
    rtcp = m.rtcp()
    if rtcp is None:
        return rtp, Address(conn.address, m.port + 1)
    port, where = rtcp
    if where is not None and not where.is_ip:
        raise SdpNegotiationError(f"a=rtcp address {where.address!r} is a host name")
    return rtp, Address(where.address if where is not None else conn.address, port)


def _origin(host: str, previous: SessionDescription | None) -> Origin:
    if previous is not None:  # RFC 3264 §8: a new offer or answer in the same session bumps the version
        return replace(previous.origin, version=previous.origin.version + 1)
    conn = Connection.of(host)
    return Origin("-", str(secrets.randbelow(2**62) + 1), 1, conn.addr_type, host)


def _connection(host: str, rtp: Address) -> Connection | None:
    return Connection.of(rtp.host) if rtp.host != host else None


def sip_policy(policy: MediaPolicy) -> MediaPolicy:
    """``policy`` with Opus first among the audio formats (SIP peers such as baresip prefer it; H.245 has none)."""
    if any(f.name == "OPUS" for f in policy.formats) or not any(f.kind == "audio" for f in policy.formats):
        return policy
    first_audio = next(i for i, f in enumerate(policy.formats) if f.kind == "audio")
    formats = policy.formats[:first_audio] + (OPUS,) + policy.formats[first_audio:]
    return replace(policy, formats=formats)


@dataclass(frozen=True)
class SdpOffer:
    """Our offer and what reading its answer needs: the key generated per (m= index, crypto tag)."""

    sdp: SessionDescription
    policy: MediaPolicy
    endpoints: Mapping[int, tuple[Address, Address]]
    formats: tuple[Mapping[int, MediaFormat], ...]  # per m= line: our payload type -> format
    keys: Mapping[tuple[int, int], SrtpKeyMaterial] = field(repr=False)
    first_number: int = 1


def make_offer(policy: MediaPolicy, endpoints: MediaEndpoints, *, host: str, sdes: bool,
               direction: Direction = "sendrecv", previous: SessionDescription | None = None,
               first_number: int = 1, dtls: DtlsCertificate | None = None) -> SdpOffer:
    """An offer with one m= line per session of ``endpoints`` (audio, then video) that ``policy`` has formats for.

    ``host``: the address announced in ``o=`` and ``c=``. ``sdes``: SRTP keys may
    travel in this SDP (TLS signalling, or an explicit allowance); without it the
    offer is plain RTP, which needs ``policy.allow_plaintext``. ``direction``: our
    own (``sendonly`` or ``inactive`` to put the call on hold); ``previous``: the
    last SDP we sent in this dialog, for a re-offer (same ``o=``, version + 1).
    ``dtls``: offer DTLS-SRTP with this certificate instead of SDES keys (needs ``sdes``).
    Raises :class:`SdpNegotiationError` when there is nothing it may offer.
    """
    suites = [s for s in policy.suites if s in SUITES] if sdes else []
    if not suites and not policy.allow_plaintext:
        raise SdpNegotiationError("no SRTP suite may be offered (SDES keys need TLS signalling or an explicit "
                                  "allowance) and plaintext media is not allowed")
    if dtls is not None and not suites:
        raise SdpNegotiationError("DTLS-SRTP cannot be offered: no SRTP suite, or a fingerprint on signalling "
                                  "that may not carry keys")
    proto = "UDP/TLS/RTP/SAVP" if dtls is not None else "RTP/SAVP" if suites else "RTP/AVP"
    media: list[MediaDescription] = []
    keys: dict[tuple[int, int], SrtpKeyMaterial] = {}
    formats: list[dict[int, MediaFormat]] = []
    for kind, session in _SESSIONS.items():
        offered = [f for f in policy.formats if f.session_id == session and f.name in _RTPMAP_NAMES]
        if session not in endpoints or not offered:
            continue
        rtp, rtcp = endpoints[session]
        by_pt: dict[int, MediaFormat] = {}
        for fmt in offered:
            pt = fmt.payload_type
            if pt in by_pt or not (pt in _STATIC or 96 <= pt <= 127):
                pt = next(p for p in range(96, 128) if p not in by_pt and p not in (f.payload_type for f in offered))
            by_pt[pt] = replace(fmt, payload_type=pt)
        attrs: list[Attribute] = []
        for pt, fmt in by_pt.items():
            attrs += _format_attributes(pt, fmt)
            if kind == "video":
                attrs += [Attribute("rtcp-fb", f"{pt} {fb}") for fb in VCORE_FEEDBACK]
        attrs += _rtcp_attributes(rtp, rtcp)
        if dtls is not None:
            attrs += offer_attributes(dtls)
        for tag, suite in enumerate(suites if dtls is None else (), 1):
            key = keys[(len(media), tag)] = SrtpKeyMaterial.generate(suite)
            attrs.append(Attribute("crypto", format_crypto(tag, key)))
        if kind == "audio":
            attrs.append(Attribute("ptime", str(_PTIME)))
        attrs.append(Attribute(direction))
        best_video = next((f for f in by_pt.values() if f.name == "H264"), None)
        media.append(MediaDescription(kind, rtp.port, proto, tuple(str(pt) for pt in by_pt),
                                      connection=_connection(host, rtp),
                                      bandwidths=_video_bandwidth(best_video) if best_video else (),
                                      attributes=tuple(attrs)))
        formats.append(by_pt)
    if not media:
        raise SdpNegotiationError("nothing to offer: no media session has both a local endpoint and a format")
    sdp = SessionDescription(_origin(host, previous), "vcore", Connection.of(host), media=tuple(media))
    return SdpOffer(sdp, policy, endpoints, tuple(formats), keys, first_number)  # kept: DTLS runs on them


def _answer_direction(offered: Direction, ours: Direction) -> Direction:
    """RFC 3264 §6.1: the answer's direction from the offer's and our own wish."""
    we_send = offered in ("sendrecv", "recvonly") and ours in ("sendrecv", "sendonly")
    we_receive = offered in ("sendrecv", "sendonly") and ours in ("sendrecv", "recvonly")
    return {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly",
            (False, False): "inactive"}[(we_send, we_receive)]  # type: ignore[return-value]


def _choose_crypto(m: MediaDescription, policy: MediaPolicy, sdes: bool) -> CryptoAttribute | None:
    """The peer's key we accept (our suite preference, then the offer's order), None for plain RTP."""
    offered = m.cryptos()
    usable = [c for c in offered if isinstance(c, CryptoAttribute) and c.suite in policy.suites]
    secure = m.proto in _SECURE_PROTOS
    if usable and sdes:
        return min(usable, key=lambda c: (policy.suites.index(c.suite), offered.index(c)))
    if secure:
        if not sdes:
            raise _Refused("SRTP keys (SDES) are taken only over TLS signalling unless explicitly allowed")
        reasons = [str(c) for c in offered if not isinstance(c, CryptoAttribute)]
        names = [c.suite for c in offered if isinstance(c, CryptoAttribute)]
        raise _Refused(f"no common SRTP suite (offered {', '.join(names) or 'none usable'}; vcore takes "
                       f"{', '.join(policy.suites)})" + (f": {'; '.join(reasons)}" if reasons else ""))
    if not policy.allow_plaintext:
        raise _Refused("plain RTP offered and plaintext media is not allowed")
    return None


def _answer_media(sdp: SessionDescription, m: MediaDescription, policy: MediaPolicy, endpoints: MediaEndpoints,
                  host: str, sdes: bool, direction: Direction, numbers: Iterator[int],
                  dtls: DtlsCertificate | None = None) -> tuple[MediaDescription, list[MediaChannel]]:
    session = _SESSIONS[m.media]
    dtls_attrs: list[Attribute] = []
    theirs_key: CryptoAttribute | None = None
    if is_dtls(m):
        if dtls is None:
            raise _Refused("DTLS-SRTP is off in this terminal's SIP settings")
        if not sdes:
            raise _Refused("DTLS-SRTP fingerprints are taken only over TLS signalling unless explicitly allowed")
        if not any(s in SUITES for s in policy.suites):
            raise _Refused("DTLS-SRTP offered and no SRTP suite is allowed")
        try:
            dtls_attrs = answer_attributes(sdp, m, dtls)
        except SdpError as exc:
            raise _Refused(str(exc)) from None
    elif m.proto.startswith("UDP/TLS/"):
        raise _Refused(f"transport {m.proto} is not supported")
    else:
        theirs_key = _choose_crypto(m, policy, sdes)
    peer = list(_peer_formats(m))
    chosen = next(((ours, pt, theirs, params) for ours in policy.formats if ours.session_id == session
                   for pt, theirs, params in peer if ours.compatible(theirs)), None)
    if chosen is None:
        offered = sorted({str(rm) for rm in m.rtpmaps().values()}) or list(m.formats)
        raise _Refused(f"no common codec (offered {', '.join(offered)}; vcore has "
                       f"{', '.join(f.name for f in policy.formats if f.session_id == session)})")
    ours, pt, theirs, params = chosen
    local_rtp, local_rtcp = endpoints[session]
    muxed = local_rtp == local_rtcp
    if m.has("rtcp-mux-only") and not muxed:
        raise _Refused("rtcp-mux-only (RFC 8858) offered and this stream's RTCP is on its own port")
    mux = muxed and m.has("rtcp-mux")
    try:
        remote = peer_addresses(sdp, m, mux)
    except SdpNegotiationError as exc:
        raise _Refused(str(exc)) from None
    answer_direction = _answer_direction(m.direction(sdp.direction()), direction)
    attrs = _format_attributes(pt, _receive_format(ours, theirs, params, pt),
                               asymmetry=params is not None and params.asymmetry,
                               profile=(params.profile_idc, params.iop) if params is not None else None)
    feedback = m.feedback_for(pt)
    attrs += [Attribute("rtcp-fb", f"{pt} {fb}") for fb in VCORE_FEEDBACK if fb in feedback]
    # not offered: no rtcp-mux in the answer (RFC 5761 §5.1.1); a=rtcp still names where our RTCP is
    attrs += [Attribute("rtcp-mux")] if mux else [a for a in _rtcp_attributes(local_rtp, local_rtcp)
                                                  if a.name != "rtcp-mux"]
    our_key: SrtpKeyMaterial | None = None
    if theirs_key is not None:
        our_key = SrtpKeyMaterial.generate(theirs_key.suite)
        attrs.append(Attribute("crypto", format_crypto(theirs_key.tag, our_key)))
    attrs += dtls_attrs
    if m.media == "audio":
        attrs.append(Attribute("ptime", str(_PTIME)))
    attrs.append(Attribute(answer_direction))
    receive = _receive_format(ours, theirs, params, pt)
    answer = MediaDescription(m.media, local_rtp.port, m.proto, (str(pt),), connection=_connection(host, local_rtp),
                              bandwidths=_video_bandwidth(receive), attributes=tuple(attrs))
    channels: list[MediaChannel] = []
    remote_rtcp = remote[1] if remote is not None else None
    if answer_direction in ("sendrecv", "sendonly") and remote is not None:
        fmt = _send_format(ours, theirs, params, _bandwidth(sdp, m))
        channels.append(MediaChannel("send", fmt, session, next(numbers), remote[0], remote_rtcp,
                                     local_rtp, local_rtcp, our_key))
    if answer_direction in ("sendrecv", "recvonly"):
        channels.append(MediaChannel("receive", receive, session, next(numbers), None, remote_rtcp,
                                     local_rtp, local_rtcp, theirs_key.key if theirs_key is not None else None))
    return answer, channels


def _rejected(m: MediaDescription) -> MediaDescription:
    """RFC 3264 §6: a refused stream is answered with port 0 and the offer's first format."""
    return MediaDescription(m.media, 0, m.proto, m.formats[:1])


def answer_offer(offer: SessionDescription, policy: MediaPolicy, endpoints: MediaEndpoints, *, host: str,
                 sdes: bool, direction: Direction = "sendrecv", previous: SessionDescription | None = None,
                 first_number: int = 1,
                 dtls: DtlsCertificate | None = None) -> tuple[SessionDescription, list[MediaChannel]]:
    """Our answer to ``offer`` and the negotiated channels.

    Every offered m= line gets an answer line, in order (RFC 3264 §6); those
    vcore cannot take (another media type, a second audio or video stream, no
    common codec or suite, SDES or DTLS-SRTP on signalling that may not carry
    keys, DTLS-SRTP without ``dtls``: the terminal's certificate) get port 0.
    Raises :class:`SdpNegotiationError` (SIP 488) naming the reason for each
    stream when none is accepted.
    """
    numbers = count(first_number)
    answers: list[MediaDescription] = []
    channels: list[MediaChannel] = []
    reasons: list[str] = []
    taken: set[int] = set()
    for m in offer.media:
        try:
            if m.port == 0:
                raise _Refused("refused by the offerer")
            if m.media not in _SESSIONS:
                raise _Refused(f"{m.media} media is not supported")
            if not m.is_rtp:
                raise _Refused(f"transport {m.proto} is not RTP")
            if _SESSIONS[m.media] in taken or _SESSIONS[m.media] not in endpoints:
                raise _Refused(f"no local {m.media} stream for it")
            answer, found = _answer_media(offer, m, policy, endpoints, host, sdes, direction, numbers, dtls)
        except _Refused as refused:
            answers.append(_rejected(m))
            reasons.append(f"m={m.media}: {refused}")
            continue
        taken.add(_SESSIONS[m.media])
        answers.append(answer)
        channels += found
    if not taken:
        raise SdpNegotiationError("no acceptable media in the offer: " + ("; ".join(reasons) or "no m= lines"))
    sdp = SessionDescription(_origin(host, previous), "vcore", Connection.of(host), media=tuple(answers))
    return sdp, channels


def accept_answer(offer: SdpOffer, answer: SessionDescription) -> list[MediaChannel]:
    """The channels the peer's ``answer`` to our ``offer`` opens.

    Raises :class:`SdpNegotiationError` when the answer breaks RFC 3264 (m= lines
    added, removed, reordered or changed in type or protocol; formats or crypto
    tags that were never offered; SRTP keys missing) or rejects every stream.
    """
    ours_sdp = offer.sdp
    if len(answer.media) != len(ours_sdp.media):
        raise SdpNegotiationError(f"the answer has {len(answer.media)} m= lines for the offer's "
                                  f"{len(ours_sdp.media)} (RFC 3264 §6)")
    numbers = count(offer.first_number)
    channels: list[MediaChannel] = []
    accepted = 0
    for index, (mine, m) in enumerate(zip(ours_sdp.media, answer.media)):
        what = f"the answer's m={m.media} line {index + 1}"
        if m.media != mine.media or m.proto != mine.proto:
            raise SdpNegotiationError(f"{what} is '{m.media} {m.proto}' for an offered '{mine.media} {mine.proto}'")
        if m.port == 0:
            continue
        session = _SESSIONS[m.media]
        offered = offer.formats[index]
        match = next(((offered[opt], theirs, params, opt) for pt, theirs, params in _peer_formats(m)
                      for opt in offered if offered[opt].compatible(theirs)), None)
        if match is None:
            raise SdpNegotiationError(f"{what} accepts no format that was offered ({' '.join(m.formats)})")
        ours, theirs, params, our_pt = match
        send_key: SrtpKeyMaterial | None = None
        receive_key: SrtpKeyMaterial | None = None
        if mine.proto in _SECURE_PROTOS:
            cryptos = m.cryptos()
            if len(cryptos) != 1 or not isinstance(cryptos[0], CryptoAttribute):
                reason = f": {cryptos[0]}" if len(cryptos) == 1 else ""
                raise SdpNegotiationError(f"{what} needs exactly one usable a=crypto, has {len(cryptos)}{reason}")
            chosen = cryptos[0]
            send_key = offer.keys.get((index, chosen.tag))
            if send_key is None or send_key.suite != chosen.suite:
                raise SdpNegotiationError(f"{what} answers a=crypto:{chosen.tag} {chosen.suite}, never offered")
            receive_key = chosen.key
        accepted += 1
        local_rtp, local_rtcp = offer.endpoints[session]
        try:
            remote = peer_addresses(answer, m, m.has("rtcp-mux"))
        except SdpNegotiationError as exc:
            raise SdpNegotiationError(f"{what}: {exc}") from None
        remote_rtcp = remote[1] if remote is not None else None
        ours_direction = mine.direction(ours_sdp.direction())
        theirs_direction = m.direction(answer.direction())
        if ours_direction in ("sendrecv", "sendonly") and theirs_direction in ("sendrecv", "recvonly") \
                and remote is not None:
            fmt = _send_format(ours, theirs, params, _bandwidth(answer, m))
            channels.append(MediaChannel("send", fmt, session, next(numbers), remote[0], remote_rtcp,
                                         local_rtp, local_rtcp, send_key))
        if ours_direction in ("sendrecv", "recvonly") and theirs_direction in ("sendrecv", "sendonly"):
            channels.append(MediaChannel("receive", _receive_format(ours, theirs, params, our_pt), session,
                                         next(numbers), None, remote_rtcp, local_rtp, local_rtcp, receive_key))
    if not accepted:
        raise SdpNegotiationError("the answer refuses every offered stream")
    return channels


def peer_feedback(sdp: SessionDescription, session_id: int) -> frozenset[str]:
    """The ``a=rtcp-fb`` types a peer's SDP lists for its first payload type of ``session_id``'s stream.

    The call layer sends RFC 8888 reports only when this holds ``"ack ccfb"``.
    """
    for m in sdp.media:
        if _SESSIONS.get(m.media) == session_id and m.port != 0 and m.payload_types:
            return frozenset(m.feedback_for(m.payload_types[0]))
    return frozenset()
