"""Fast Connect offer/answer (H.323 §8.1.7.1) and the channel choice of H.245 procedures.

The caller proposes, per media session and in order of preference, channels
it would send (``forwardLogicalChannelParameters`` carrying its SRTP key) and
channels it would receive (``reverseLogicalChannelParameters`` carrying its
RTP/RTCP addresses), one proposal per codec and SRTP suite. The callee
accepts at most one proposal per session and direction and returns them,
completed with its own addresses and (for the streams it sends) its own key.

The result on both sides is a list of :class:`MediaChannel`: what the call
layer needs to start RTP/SRTP, and nothing about how. Pure functions; the
dataclasses are immutable and thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count
from typing import Literal, Mapping, Sequence

from . import asn1
from .errors import SecurityError, SignallingError
from .keys import SrtpKeyMaterial
from .messages import Address, MediaFormat, OpenChannel, open_logical_channel, parse_open_logical_channel

__all__ = [
    "PLAINTEXT",
    "MediaEndpoints",
    "MediaChannel",
    "MediaPolicy",
    "FastConnectOffer",
    "make_offer",
    "answer_offer",
    "accept_answer",
    "encode_proposals",
    "decode_proposals",
    "choose_transmit",
]

PLAINTEXT = ""  # the "suite" of an unprotected RTP stream

MediaEndpoints = Mapping[int, tuple[Address, Address]]
"""Where this terminal receives media: session id (1 audio, 2 video) -> (RTP address, RTCP address)."""


@dataclass(frozen=True)
class MediaPolicy:
    """What this terminal accepts: ``formats`` and SRTP ``suites`` in order of preference.

    ``allow_plaintext`` lets a stream run unprotected when the peer offers no
    common suite; it is off unless configured, and a plaintext channel says so
    (``MediaChannel.encrypted`` False). ``h224``: offer the H.224 data channel of
    far-end camera control (RTP session 3, H.323 Annex Q) in the capability set,
    and open it with H.245 procedures when the peer offers it too (never in Fast Connect).
    """

    formats: tuple[MediaFormat, ...]
    suites: tuple[str, ...] = ("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80")
    allow_plaintext: bool = False
    h224: bool = False

    @property
    def suite_choices(self) -> tuple[str, ...]:
        return self.suites + ((PLAINTEXT,) if self.allow_plaintext else ())


@dataclass(frozen=True)
class MediaChannel:
    """One negotiated one-way RTP stream.

    ``direction`` is ``send`` or ``receive`` from this terminal's side.
    ``remote_rtp``: where to send RTP (None for a receive channel);
    ``remote_rtcp``: where to send RTCP (receiver reports or sender reports).
    ``local_rtp``/``local_rtcp``: the addresses this terminal announced.
    ``srtp``: the key material protecting the stream (ours when sending, the
    peer's when receiving) or None for plain RTP.
    """

    direction: Literal["send", "receive"]
    format: MediaFormat
    session_id: int
    number: int
    remote_rtp: Address | None
    remote_rtcp: Address | None
    local_rtp: Address | None
    local_rtcp: Address | None
    srtp: SrtpKeyMaterial | None = field(default=None, repr=False)

    @property
    def suite(self) -> str | None:
        return self.srtp.suite if self.srtp is not None else None

    @property
    def encrypted(self) -> bool:
        return self.srtp is not None


@dataclass(frozen=True)
class FastConnectOffer:
    """The caller's proposals (kept to interpret the answer)."""

    proposals: tuple[OpenChannel, ...]
    endpoints: Mapping[int, tuple[Address, Address]]
    policy: MediaPolicy


def _suites_of(channel: OpenChannel) -> tuple[str, ...]:
    return channel.suites if channel.suites else (PLAINTEXT,)


def make_offer(policy: MediaPolicy, endpoints: MediaEndpoints, first_number: int = 1) -> FastConnectOffer:
    """The caller's proposals for every session present in ``endpoints``: send and receive, per format and suite."""
    numbers = count(first_number)
    proposals: list[OpenChannel] = []
    for reverse in (False, True):
        for fmt in policy.formats:
            if fmt.session_id not in endpoints:
                continue
            rtp, rtcp = endpoints[fmt.session_id]
            for suite in policy.suite_choices:
                suites = (suite,) if suite else ()
                if reverse:
                    proposals.append(OpenChannel(next(numbers), fmt, True, media=rtp, media_control=rtcp,
                                                 suites=suites))
                else:
                    key = SrtpKeyMaterial.generate(suite) if suite else None
                    proposals.append(OpenChannel(next(numbers), fmt, False, media_control=rtcp, suites=suites,
                                                 key=key))
    return FastConnectOffer(tuple(proposals), dict(endpoints), policy)


def _best(candidates: Sequence[OpenChannel], policy: MediaPolicy,
          prefer: MediaFormat | None = None) -> tuple[OpenChannel, MediaFormat, str] | None:
    """Our most preferred (format, suite) among the peer's proposals; ties go to the peer's order."""
    best: tuple[int, int, int, OpenChannel, MediaFormat, str] | None = None
    choices = policy.suite_choices
    for order, proposal in enumerate(candidates):
        if proposal.format is None:
            continue
        for rank, ours in enumerate(policy.formats):
            if not ours.compatible(proposal.format):
                continue
            for suite in _suites_of(proposal):
                if suite not in choices:
                    continue
                if prefer is not None and ours.compatible(prefer):
                    rank = -1
                key = (rank, choices.index(suite), order)
                if best is None or key < best[:3]:
                    best = (*key, proposal, ours, suite)
    if best is None:
        return None
    return best[3], best[4], best[5]


def _negotiated(ours: MediaFormat, theirs: MediaFormat) -> MediaFormat:
    """The format both ends use: the peer's payload type, the lower H.264 level and bitrate."""
    if ours.name != "H264":
        return theirs
    level = min(ours.level, theirs.level) if ours.level and theirs.level else ours.level or theirs.level
    bitrate = min(ours.max_bitrate, theirs.max_bitrate) if theirs.max_bitrate else ours.max_bitrate
    return MediaFormat("H264", theirs.payload_type, profile=ours.profile & theirs.profile or ours.profile,
                       level=level, packetization_mode=ours.packetization_mode, max_bitrate=bitrate)


def answer_offer(proposals: Sequence[OpenChannel], policy: MediaPolicy, endpoints: MediaEndpoints,
                 first_number: int = 32) -> tuple[list[OpenChannel], list[MediaChannel]]:
    """The callee's choice: (OLCs for the answer's ``fastStart``, the negotiated channels).

    An empty result means no usable proposal: refuse Fast Connect and fall
    back to H.245 procedures (or release the call).
    """
    numbers = count(first_number)
    answers: list[OpenChannel] = []
    channels: list[MediaChannel] = []
    sessions = sorted({p.session_id for p in proposals if p.session_id in endpoints})
    for session in sessions:
        rtp, rtcp = endpoints[session]
        # the caller sends, we receive
        forward = [p for p in proposals if not p.reverse and p.session_id == session]
        chosen = _best(forward, policy)
        received: MediaFormat | None = None
        if chosen is not None:
            proposal, ours, suite = chosen
            assert proposal.format is not None
            if suite and (proposal.key is None or proposal.key.suite != suite):
                raise SecurityError(f"caller's proposal {proposal.number} for {suite} carries no key")
            fmt = _negotiated(ours, proposal.format)
            received = fmt
            answers.append(OpenChannel(proposal.number, fmt, False, session, media=rtp, media_control=rtcp,
                                       suites=(suite,) if suite else (), legacy_keys=proposal.legacy_keys))
            channels.append(MediaChannel("receive", fmt, session, proposal.number, None, proposal.media_control,
                                         rtp, rtcp, proposal.key if suite else None))
        # we send, the caller receives
        reverse = [p for p in proposals if p.reverse and p.session_id == session]
        chosen = _best(reverse, policy, prefer=received)
        if chosen is not None:
            proposal, ours, suite = chosen
            assert proposal.format is not None
            fmt = _negotiated(ours, proposal.format)
            key = SrtpKeyMaterial.generate(suite) if suite else None
            number = next(numbers)
            # an older vcore caller (suites only in the pre-H.235.8 form) gets its key in that form
            answers.append(OpenChannel(number, fmt, True, session, media=proposal.media, media_control=rtcp,
                                       suites=(suite,) if suite else (), key=key, legacy_keys=proposal.legacy_keys))
            channels.append(MediaChannel("send", fmt, session, number, proposal.media, proposal.media_control,
                                         rtp, rtcp, key))
    return answers, channels


def accept_answer(offer: FastConnectOffer, answers: Sequence[OpenChannel]) -> list[MediaChannel]:
    """The caller's view of the callee's ``fastStart`` answer.

    Raises :class:`SecurityError` if the answer picks plain RTP without the
    policy allowing it, or an encrypted receive channel comes without a key;
    :class:`SignallingError` if it answers something that was never proposed.
    """
    by_number = {p.number: p for p in offer.proposals if not p.reverse}
    channels: list[MediaChannel] = []
    for answer in answers:
        if len(answer.suites) > 1:
            raise SecurityError(f"the answer for channel {answer.number} names more than one SRTP suite")
        suite = answer.suites[0] if answer.suites else PLAINTEXT
        if suite not in offer.policy.suite_choices:
            what = "plain RTP" if suite == PLAINTEXT else f"suite {suite}"
            raise SecurityError(f"the answer for channel {answer.number} picks {what}, which vcore did not offer")
        if answer.format is None:
            raise SignallingError(f"the answer for channel {answer.number} names an unknown codec")
        local = offer.endpoints.get(answer.session_id)
        if local is None:
            raise SignallingError(f"the answer opens session {answer.session_id}, which was not offered")
        if not answer.reverse:
            proposal = by_number.get(answer.number)
            if proposal is None or proposal.format is None or not proposal.format.compatible(answer.format):
                raise SignallingError(f"the answer accepts channel {answer.number}, which was not proposed")
            if _suites_of(proposal) != (suite,):
                raise SecurityError(f"the answer for channel {answer.number} changes its SRTP suite")
            if answer.media is None:
                raise SignallingError(f"the answer for channel {answer.number} gives no RTP address")
            channels.append(MediaChannel("send", answer.format, answer.session_id, answer.number, answer.media,
                                         answer.media_control, None, local[1], proposal.key))
        else:
            matching = [p for p in offer.proposals if p.reverse and p.session_id == answer.session_id
                        and p.format is not None and p.format.compatible(answer.format)
                        and _suites_of(p) == (suite,)]
            if not matching:
                raise SignallingError(f"the answer opens channel {answer.number}, which matches no proposal")
            if suite and (answer.key is None or answer.key.suite != suite):
                raise SecurityError(f"the answer for channel {answer.number} carries no {suite} key")
            channels.append(MediaChannel("receive", answer.format, answer.session_id, answer.number, None,
                                         answer.media_control, local[0], local[1], answer.key if suite else None))
    return channels


def encode_proposals(channels: Sequence[OpenChannel]) -> list[bytes]:
    """PER-encode OLCs for a ``fastStart`` field."""
    return [asn1.encode_olc(open_logical_channel(c)) for c in channels]


def decode_proposals(items: Sequence[bytes]) -> list[OpenChannel]:
    """Decode a ``fastStart`` field; raises :class:`SignallingParseError` on malformed entries."""
    return [parse_open_logical_channel(asn1.decode_olc(item)) for item in items]


def choose_transmit(peer_formats: Sequence[MediaFormat], peer_suites: Sequence[str], policy: MediaPolicy,
                    session_id: int) -> tuple[MediaFormat, str] | None:
    """H.245 procedures: the format and suite to open a send channel with, from the peer's capabilities."""
    choices = policy.suite_choices
    suite = next((s for s in choices if s == PLAINTEXT or s in peer_suites), None)
    if suite is None:
        return None
    for ours in policy.formats:
        if ours.session_id != session_id:
            continue
        for theirs in peer_formats:
            if ours.compatible(theirs):
                return _negotiated(ours, theirs), suite
    return None
