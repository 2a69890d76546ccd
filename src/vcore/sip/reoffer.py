"""Offers inside a running call (RFC 3264 §8): hold, resume and moves, against the streams already negotiated.

A re-INVITE may put the call on hold (``sendonly``, ``inactive``, or the RFC 2543 ``c=0.0.0.0``), resume
it, or move the peer's media to another address or port: :func:`answer_reoffer` answers it with the call's
own streams (same codecs, same SRTP keys, RFC 4568 §7.1.4) and says, per media session, where RTP and RTCP
go now and whether they go at all. What would need a new encoder, decoder or SRTP context mid-call — another
codec, new keys, another transport, a stream added or removed — is refused (SIP 488): the call goes on as it
was. :func:`hold_offer` and :func:`read_hold_answer` are vcore's own hold and resume. Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..h323.fast_connect import MediaChannel
from ..h323.messages import Address
from .sdes import CryptoAttribute, format_crypto
from .sdp import peer_addresses
from .sdp_syntax import (
    DIRECTIONS,
    Attribute,
    Direction,
    MediaDescription,
    SdpNegotiationError,
    SessionDescription,
)

__all__ = ["MIRROR", "Reoffer", "Targets", "answer_reoffer", "hold_offer", "narrowed", "read_hold_answer"]

Targets = tuple[tuple[int, Address | None, Address | None], ...]
"""Per media session (1 audio, 2 video): the peer's RTP and RTCP addresses, or None: send nothing."""

MIRROR: dict[str, Direction] = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly",
                                "inactive": "inactive"}  # RFC 3264 §6.1
_SESSIONS = {"audio": 1, "video": 2}
_STATIC = {0: "PCMU", 8: "PCMA", 9: "G722"}  # RFC 3551 Table 4
_PER_FORMAT = ("rtpmap", "fmtp", "rtcp-fb")  # attributes naming a payload type first


@dataclass(frozen=True)
class Reoffer:
    """Our answer to a mid-call offer and what it changes: ``targets``, ``held`` (the peer asks us to send
    nothing at all) and ``changes`` (e.g. ``"audio sendonly"``, for the log)."""

    answer: SessionDescription
    targets: Targets
    held: bool
    changes: tuple[str, ...]


def _encoding(m: MediaDescription, pt: int) -> str | None:
    """The encoding name ``m`` lists for payload type ``pt`` (None: not listed)."""
    if pt not in m.payload_types:
        return None
    rtpmap = m.rtpmaps().get(pt)
    return rtpmap.encoding.upper() if rtpmap is not None else _STATIC.get(pt)


def _payload_types(channels: Sequence[MediaChannel], session: int) -> list[int]:
    out: list[int] = []
    for c in channels:
        if c.session_id == session and c.format.payload_type not in out:
            out.append(c.format.payload_type)
    return out


def _send_key(channels: Sequence[MediaChannel], session: int) -> MediaChannel | None:
    return next((c for c in channels if c.session_id == session and c.direction == "send"), None)


def _receive(channels: Sequence[MediaChannel], session: int) -> MediaChannel | None:
    return next((c for c in channels if c.session_id == session and c.direction == "receive"), None)


def _narrow(ours: MediaDescription, pts: list[int], crypto: Attribute | None, direction: Direction) -> MediaDescription:
    """``ours`` listing only ``pts`` (what the call uses), one ``a=crypto`` (if any) and ``direction``."""
    keep = {str(pt) for pt in pts}
    formats = tuple(f for f in ours.formats if f in keep) or ours.formats
    attrs: list[Attribute] = []
    for a in ours.attributes:
        if a.name in DIRECTIONS or a.name == "crypto":
            continue
        if a.name in _PER_FORMAT and (a.value or "").split(" ", 1)[0] not in formats and (a.value or "")[:1] != "*":
            continue
        attrs.append(a)
    if crypto is not None:
        attrs.append(crypto)
    attrs.append(Attribute(direction))
    return replace(ours, formats=formats, attributes=tuple(attrs))


def _sdes(m: MediaDescription) -> bool:
    """The stream is keyed in SDP (RFC 4568), not by DTLS-SRTP (whose keys no re-offer carries)."""
    return m.has("crypto")


def _our_crypto(ours: MediaDescription, send: MediaChannel | None, tag: int | None) -> Attribute | None:
    """Our ``a=crypto`` for the stream: our send key under ``tag`` (the peer's), else the line we sent."""
    if not _sdes(ours):
        return None
    if send is not None and send.srtp is not None:
        if tag is None:
            tag = next((c.tag for c in ours.cryptos() if isinstance(c, CryptoAttribute) and c.key == send.srtp), 1)
        return Attribute("crypto", format_crypto(tag, send.srtp))
    return next((a for a in ours.attributes if a.name == "crypto"), None)


def narrowed(current: SessionDescription, channels: Sequence[MediaChannel]) -> SessionDescription:
    """Our SDP as the call uses it (the formats and the key chosen): what a later offer or answer repeats."""
    media = []
    for ours in current.media:
        if ours.port == 0 or ours.media not in _SESSIONS:
            media.append(ours)
            continue
        session = _SESSIONS[ours.media]
        media.append(_narrow(ours, _payload_types(channels, session), _our_crypto(ours, _send_key(channels, session),
                                                                                  None), ours.direction()))
    attrs = tuple(a for a in current.attributes if a.name not in DIRECTIONS)
    return replace(current, attributes=attrs, media=tuple(media))


def _targets(sdp: SessionDescription, m: MediaDescription, ours: MediaDescription,
             direction: Direction) -> tuple[Address | None, Address | None]:
    """Where to send, from the peer's SDP ``m`` (None, None: nowhere, the stream is held)."""
    if direction not in ("sendrecv", "recvonly") or m.port == 0:
        return None, None
    try:
        remote = peer_addresses(sdp, m, ours.has("rtcp-mux") and m.has("rtcp-mux"))
    except SdpNegotiationError as exc:
        raise SdpNegotiationError(f"m={m.media}: {exc}") from None
    return remote if remote is not None else (None, None)


def _check_same_streams(offer: SessionDescription, current: SessionDescription) -> None:
    if [m.media for m in offer.media] != [m.media for m in current.media]:
        raise SdpNegotiationError("streams added, removed or reordered mid-call (not supported)")


def answer_reoffer(offer: SessionDescription, current: SessionDescription,
                   channels: Sequence[MediaChannel]) -> Reoffer:
    """Answer the peer's mid-call ``offer`` with ``current`` (our last SDP in the dialog, narrowed) and the
    call's negotiated ``channels``. Raises :class:`SdpNegotiationError` (488) for what vcore cannot change
    mid-call; the answer mirrors each stream's direction (RFC 3264 §6.1) and keeps our port and key."""
    _check_same_streams(offer, current)
    media: list[MediaDescription] = []
    targets: list[tuple[int, Address | None, Address | None]] = []
    changes: list[str] = []
    for theirs, ours in zip(offer.media, current.media):
        if ours.port == 0 or theirs.media not in _SESSIONS:  # refused at the start: refused again
            media.append(MediaDescription(theirs.media, 0, theirs.proto, theirs.formats[:1]))
            continue
        if theirs.port == 0:
            raise SdpNegotiationError(f"m={theirs.media} removed mid-call (not supported)")
        if theirs.proto != ours.proto:
            raise SdpNegotiationError(f"m={theirs.media} changes transport {ours.proto} → {theirs.proto} mid-call "
                                      "(not supported)")
        session = _SESSIONS[theirs.media]
        pts = _payload_types(channels, session)
        for c in channels:
            if c.session_id == session and _encoding(theirs, c.format.payload_type) != c.format.name.upper():
                found = _encoding(theirs, c.format.payload_type) or "absent"
                raise SdpNegotiationError(f"m={theirs.media}: payload type {c.format.payload_type} is {found}, the "
                                          f"call uses {c.format.name}: a codec change mid-call would need a new "
                                          "encoder or decoder (not supported)")
        tag: int | None = None
        receive = _receive(channels, session)
        if receive is not None and receive.srtp is not None and _sdes(ours):
            same = [c for c in theirs.cryptos() if isinstance(c, CryptoAttribute) and c.key == receive.srtp]
            if not same:
                raise SdpNegotiationError(f"m={theirs.media}: new SRTP keys mid-call (re-keying is not supported)")
            tag = same[0].tag
        offered = theirs.direction(offer.direction())
        rtp, rtcp = _targets(offer, theirs, ours, offered)
        conn = offer.connection_for(theirs)
        if offered != "sendrecv" or conn is None or conn.is_unspecified:
            changes.append(f"{theirs.media} {offered}" + (" c=0.0.0.0" if conn is not None and conn.is_unspecified
                                                          else ""))
        targets.append((session, rtp, rtcp))
        media.append(_narrow(ours, pts, _our_crypto(ours, _send_key(channels, session), tag), MIRROR[offered]))
    origin = replace(current.origin, version=current.origin.version + 1)  # RFC 3264 §8
    answer = replace(current, origin=origin, media=tuple(media),
                     attributes=tuple(a for a in current.attributes if a.name not in DIRECTIONS))
    held = bool(targets) and all(rtp is None for _, rtp, _ in targets)
    return Reoffer(answer, tuple(targets), held, tuple(changes))


def hold_offer(current: SessionDescription, held: bool) -> SessionDescription:
    """Our re-offer putting the call on hold (``inactive``: nothing flows either way, a kiosk's camera and
    microphone included) or resuming it (``sendrecv``), from our last SDP (narrowed), version + 1."""
    direction: Direction = "inactive" if held else "sendrecv"
    media = tuple(m if m.port == 0 else
                  replace(m, attributes=tuple(a for a in m.attributes if a.name not in DIRECTIONS)
                          + (Attribute(direction),)) for m in current.media)
    origin = replace(current.origin, version=current.origin.version + 1)
    return replace(current, origin=origin, media=media)


def read_hold_answer(offer: SessionDescription, answer: SessionDescription,
                     channels: Sequence[MediaChannel]) -> Targets:
    """The targets after the peer's answer to :func:`hold_offer` (raises :class:`SdpNegotiationError` when
    it breaks RFC 3264 or changes what vcore cannot: the codec, the keys)."""
    if len(answer.media) != len(offer.media):
        raise SdpNegotiationError(f"the answer has {len(answer.media)} m= lines for {len(offer.media)} offered")
    targets: list[tuple[int, Address | None, Address | None]] = []
    for ours, theirs in zip(offer.media, answer.media):
        if ours.port == 0 or ours.media not in _SESSIONS:
            continue
        if theirs.media != ours.media or theirs.proto != ours.proto:
            raise SdpNegotiationError(f"the answer's m={theirs.media} {theirs.proto} for an offered "
                                      f"m={ours.media} {ours.proto}")
        session = _SESSIONS[ours.media]
        receive = _receive(channels, session)
        if theirs.port and receive is not None and receive.srtp is not None and _sdes(ours) and not any(
                isinstance(c, CryptoAttribute) and c.key == receive.srtp for c in theirs.cryptos()):
            raise SdpNegotiationError(f"the answer's m={theirs.media} carries new SRTP keys (re-keying is not "
                                      "supported)")
        ours_direction = ours.direction(offer.direction())
        answered = theirs.direction(answer.direction())
        direction: Direction = "sendrecv" if ours_direction == "sendrecv" and answered in ("sendrecv", "recvonly") \
            else "inactive"
        targets.append((session, *_targets(answer, theirs, ours, "sendrecv" if direction == "sendrecv" else
                                           "inactive")))
    return tuple(targets)
