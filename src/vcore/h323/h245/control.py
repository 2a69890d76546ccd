"""The H.245 control of one call: routes PDUs to the procedures, answers the rest, opens the media channels.

:class:`H245Control` is a pure data structure: the session feeds it the
peer's PDUs (:meth:`receive`), the time (:meth:`expire`) and the call's
progress (:meth:`connected`); it queues the PDUs to send (:meth:`take`) and
the call events to report, and sets :attr:`failure` when a procedure failed
in a way that ends the call. Where the PDUs travel (tunnelled in H.225.0 or on
a separate H.245 connection) is the session's business.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ...callcontrol import (
    BitrateLimited,
    CallEvent,
    ChannelClosed,
    ChannelOpened,
    KeyframeRequested,
    ProtocolWarning,
    UserInput,
)
from ..errors import SignallingParseError
from ..fast_connect import PLAINTEXT, MediaChannel, MediaEndpoints, MediaPolicy
from ..keys import SrtpKeyMaterial
from ..messages import H224, SESSION_DATA, Address, OpenChannel, parse_open_logical_channel
from .pdus import (
    H245Pdu,
    close_logical_channel_ack,
    encode_h245,
    end_session_command,
    flow_control_command,
    function_not_understood,
    open_logical_channel_ack,
    open_logical_channel_reject,
    parse_h245,
    round_trip_delay_response,
    user_input_indication,
    video_fast_update_picture,
)
from .cese import CapabilityExchange, choose_channels
from .lcse import OutgoingChannels
from .msd import MasterSlaveDetermination
from .timers import H245Timers

__all__ = ["H245Control", "H245Failure"]

log = logging.getLogger(__name__)

Value = Any

_IGNORED = frozenset({
    "terminalCapabilitySetRelease", "functionNotUnderstood", "roundTripDelayResponse", "openLogicalChannelConfirm",
    "miscellaneousIndication", "vendorIdentification", "functionNotSupported", "miscellaneousCommand",
})


@dataclass(frozen=True)
class H245Failure:
    """Why the H.245 session cannot go on: ``detail`` for the call's Released event; ``timeout``: a timer
    expired (T101, T106, or no channel at all), rather than a refusal or an inconsistency."""

    detail: str
    timeout: bool = False


class H245Control:
    """H.245 for one call (one side). ``caller`` picks the logical channel numbers (64.. or 96..).

    ``keys_protected``: the path the PDUs take is as protected as the call
    signalling (tunnelled, or everything plaintext by choice). When False (a
    separate plain TCP H.245 channel beside TLS signalling) no SRTP key is sent
    or accepted: channels open only where the policy allows plain RTP.
    """

    def __init__(self, policy: MediaPolicy, *, caller: bool, timers: H245Timers = H245Timers()) -> None:
        self.policy = policy
        self.timers = timers
        self.msd = MasterSlaveDetermination(timeout=timers.t106, retries=timers.n100)
        self.cese = CapabilityExchange(policy, timeout=timers.t101)
        self.outgoing = OutgoingChannels(timeout=timers.t103)
        self.endpoints: MediaEndpoints | None = None
        self.channels: list[MediaChannel] = []  # opened by H.245 procedures, both directions
        self.failure: H245Failure | None = None
        self.keys_protected = True
        self.peer_ended = False  # the peer sent EndSessionCommand
        self._active = False
        self._fast_connect = False
        self._opened = False
        self._data_opened = False
        self._media_deadline: float | None = None
        self._next_channel = 64 if caller else 96
        self._out: list[bytes] = []
        self._events: list[CallEvent] = []

    # ---------------------------------------------------------------- session side

    @property
    def msd_status(self) -> str | None:
        return self.msd.status

    def take(self) -> tuple[list[bytes], list[CallEvent]]:
        """The encoded PDUs to send and the events to report since the last call."""
        out, events = self._out, self._events
        self._out, self._events = [], []
        return out, events

    def start(self, now: float) -> None:
        """Begin the procedures: our TerminalCapabilitySet and MasterSlaveDetermination."""
        self._queue(self.cese.start(now))
        self._queue(self.msd.start(now))

    def restart(self, now: float) -> None:
        """The H.245 path changed before anything was answered (the peer refused tunnelling): start over."""
        self.cese.reset()
        self.msd.reset()
        self.start(now)

    def connected(self, now: float, *, fast_connect: bool) -> None:
        """The call is answered; without Fast Connect, channels are opened once the peer's capabilities are known."""
        self._active = True
        self._fast_connect = fast_connect
        if not fast_connect:
            self._media_deadline = now + self.timers.media
        self._maybe_open(now)
        self._maybe_open_data(now)

    def deadline(self) -> float | None:
        times = [t for t in (self.msd.deadline, self.cese.deadline, self.outgoing.deadline(), self._media_deadline)
                 if t is not None]
        return min(times, default=None)

    def expire(self, now: float) -> None:
        """Run the timers that are due."""
        self._queue(self.msd.expire(now))
        self._queue(self.cese.expire(now))
        pdus, notes = self.outgoing.expire(now)
        self._queue(pdus)
        for note in notes:
            self._events.append(ProtocolWarning(note))
        if self._media_deadline is not None and now >= self._media_deadline:
            self._media_deadline = None
            if not self.channels and not self._fast_connect:
                self._fail(f"no media channel opened within {self.timers.media:g} s of the answer "
                           f"(H.245: {self._progress()})", timeout=True)
        self._check(timeout=True)

    def receive(self, raw: bytes | H245Pdu | SignallingParseError, now: float, *, tunnelled: bool = False) -> None:
        """One H.245 message from the peer (its bytes, or what :func:`parse_h245` made of them, e.g. in a
        worker thread). Undecodable or unexpected ones are reported and ignored."""
        try:
            pdu = parse_h245(raw) if isinstance(raw, bytes) else raw
            if isinstance(pdu, SignallingParseError):
                raise pdu
        except SignallingParseError as exc:
            self._events.append(ProtocolWarning(f"undecodable {'tunnelled ' if tunnelled else ''}H.245 ignored: "
                                                f"{exc}"))
            return
        try:
            self._dispatch(pdu.category, pdu.name, pdu.body, now)
        except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
            # decodable but not as vcore expects (e.g. a later H.245 version's extension): ignore it
            self._events.append(ProtocolWarning(f"H.245 {pdu.name} ignored: {exc!r}"))
            return
        if pdu.category in ("request", "command") and pdu.name not in _HANDLED:
            if not pdu.name.startswith("_ext_"):  # pycrate cannot re-encode an unknown extension to echo it
                self._out.append(encode_h245(function_not_understood(pdu)))
            self._events.append(ProtocolWarning(f"H.245 {pdu.name} not understood"))
        self._check()

    # ---------------------------------------------------------------- commands

    def request_keyframe(self, number: int) -> None:
        self._queue([video_fast_update_picture(number)])

    def limit_bitrate(self, bitrate: int | None, number: int | None) -> None:
        self._queue([flow_control_command(bitrate, number)])

    def user_input(self, text: str) -> None:
        self._queue([user_input_indication(text)])

    def close_channel(self, number: int, now: float) -> None:
        self.channels = [c for c in self.channels if not (c.direction == "send" and c.number == number)]
        self._queue(self.outgoing.close(number, now))

    @staticmethod
    def end_session() -> bytes:
        return encode_h245(end_session_command())

    # ---------------------------------------------------------------- internals

    def _queue(self, pdus: list[Value]) -> None:
        self._out.extend(encode_h245(p) for p in pdus)

    def _fail(self, detail: str, *, timeout: bool = False) -> None:
        if self.failure is None:
            self.failure = H245Failure(detail, timeout)

    def _check(self, *, timeout: bool = False) -> None:
        """Procedure failures that end the call (``timeout``: they come from an expired timer)."""
        for what in (self.msd.failure, self.cese.failure):
            if what is not None and self.failure is None:
                if what == self.cese.failure and (self._fast_connect or self.channels):
                    continue  # media flows already: a capability exchange failure only limits later changes
                self._fail(what, timeout=timeout)

    def _progress(self) -> str:
        parts = [
            "peer capabilities " + ("received" if self.cese.peer is not None else "not received"),
            "ours " + ("acknowledged" if self.cese.acknowledged else "not acknowledged"),
            f"master/slave {self.msd.status or 'undetermined'}",
            f"{self.outgoing.pending} channel(s) awaiting the peer",
        ]
        return ", ".join(parts)

    def _dispatch(self, category: str, name: str, body: Value, now: float) -> None:
        if name == "terminalCapabilitySet":
            self._queue(self.cese.on_request(body))
            self._maybe_open(now)
            self._maybe_open_data(now)
        elif name == "terminalCapabilitySetAck":
            self.cese.on_ack(body)
        elif name == "terminalCapabilitySetReject":
            self.cese.on_reject(body)
        elif name == "masterSlaveDetermination":
            self._queue(self.msd.on_request(body, now))
        elif name == "masterSlaveDeterminationAck":
            self._queue(self.msd.on_ack(body, now))
        elif name == "masterSlaveDeterminationReject":
            self._queue(self.msd.on_reject(now))
        elif name == "masterSlaveDeterminationRelease":
            self.msd.on_release()
        elif name == "openLogicalChannel":
            self._peer_open(body)
        elif name == "openLogicalChannelAck":
            self._open_acknowledged(body)
        elif name == "openLogicalChannelReject":
            number = int(body["forwardLogicalChannelNumber"])
            if self.outgoing.on_reject(number) is not None:
                self._events.append(ProtocolWarning(f"peer rejected channel {number}: {body['cause'][0]}"))
        elif name == "closeLogicalChannel":
            number = int(body["forwardLogicalChannelNumber"])
            self.channels = [c for c in self.channels if not (c.direction == "receive" and c.number == number)]
            self._queue([close_logical_channel_ack(number)])
            self._events.append(ChannelClosed(number))
        elif name == "closeLogicalChannelAck":
            self.outgoing.on_close_ack(int(body["forwardLogicalChannelNumber"]))
        elif name == "miscellaneousCommand" and body["type"][0] == "videoFastUpdatePicture":
            self._events.append(KeyframeRequested(int(body["logicalChannelNumber"])))
        elif name == "flowControlCommand":
            scope, restriction = body["scope"], body["restriction"]
            channel = int(scope[1]) if scope[0] == "logicalChannelNumber" else None
            bitrate = int(restriction[1]) * 100 if restriction[0] == "maximumBitRate" else None
            self._events.append(BitrateLimited(bitrate, channel))
        elif name == "userInput":
            if isinstance(body, tuple) and body[0] == "alphanumeric" and isinstance(body[1], str):
                self._events.append(UserInput(body[1]))
        elif name == "endSessionCommand":
            self.peer_ended = True
        elif name == "roundTripDelayRequest":  # the H.245 keep-alive (H.245 §8.9)
            self._queue([round_trip_delay_response(body["sequenceNumber"])])

    def _allowed_suites(self) -> tuple[str, ...] | None:
        return None if self.keys_protected else (PLAINTEXT,)

    def _maybe_open(self, now: float) -> None:
        """H.245 procedures: once the call is answered without Fast Connect and the peer's capabilities are known."""
        peer = self.cese.peer
        if self._opened or self._fast_connect or not self._active or peer is None or self.endpoints is None:
            return
        self._opened = True
        sessions = sorted(s for s in self.endpoints if s != SESSION_DATA)  # the data channel: _maybe_open_data
        choices = choose_channels(peer, self.policy, sessions, self._allowed_suites())
        if not self.keys_protected and len(choices) < len(sessions):
            log.warning("H.245 runs on a plain TCP channel beside TLS signalling: no SRTP key is sent on it, "
                        "so only channels the policy allows in plain RTP are opened")
        for session, (fmt, suite) in sorted(choices.items()):
            rtcp = self.endpoints[session][1]
            number = self._next_channel
            self._next_channel += 1
            key = SrtpKeyMaterial.generate(suite) if suite != PLAINTEXT else None
            channel = OpenChannel(number, fmt, False, session, media_control=rtcp,
                                  suites=(suite,) if suite else (), key=key, legacy_keys=peer.legacy_keys)
            self._queue(self.outgoing.open(channel, now))

    def _maybe_open_data(self, now: float) -> None:
        """The H.224 data channel (far-end camera control): opened with H.245 procedures once the call is
        answered, when both sides offer it (with or without Fast Connect for audio and video)."""
        peer = self.cese.peer
        if self._data_opened or not self._active or peer is None or self.endpoints is None or not self.policy.h224:
            return
        theirs = peer.h224
        local = self.endpoints.get(SESSION_DATA)
        if theirs is None or local is None:
            return
        self._data_opened = True
        allowed = self._allowed_suites()
        suite = next((s for s in self.policy.suite_choices if (allowed is None or s in allowed)
                      and (s == PLAINTEXT or s in peer.suites)), None)
        if suite is None:
            log.info("no H.224 data channel: no SRTP suite in common for it")
            return
        number = self._next_channel
        self._next_channel += 1
        fmt = H224  # our payload type: the one we send with
        key = SrtpKeyMaterial.generate(suite) if suite != PLAINTEXT else None
        channel = OpenChannel(number, fmt, False, SESSION_DATA, media_control=local[1],
                              suites=(suite,) if suite else (), key=key, legacy_keys=peer.legacy_keys)
        self._queue(self.outgoing.open(channel, now))

    def _peer_open(self, body: Value) -> None:
        number = body.get("forwardLogicalChannelNumber", 0)
        try:
            channel = parse_open_logical_channel(body)
        except SignallingParseError as exc:
            self._queue([open_logical_channel_reject(number, "unknownDataType")])
            self._events.append(ProtocolWarning(f"rejected channel {number}: {exc}"))
            return
        policy = self.policy
        fmt = channel.format
        suite = channel.suites[0] if len(channel.suites) == 1 else (PLAINTEXT if not channel.suites else None)
        session = channel.session_id
        if fmt is not None and fmt.kind == "data" and session == 0:
            session = SESSION_DATA  # H.245 §7.3.1: 0 asks the master to assign one; data is session 3 here
        local = self.endpoints.get(session) if self.endpoints is not None else None
        cause = None
        known = fmt is not None and (any(f.compatible(fmt) for f in policy.formats)
                                     or (fmt.kind == "data" and policy.h224))
        if channel.reverse or fmt is None or not known:
            cause = "dataTypeNotSupported"
        elif local is None:
            cause = "invalidSessionID"
        elif suite is None or suite not in policy.suite_choices or (suite and channel.key is None):
            cause = "securityDenied"
        elif suite and not self.keys_protected:
            cause = "securityDenied"
            log.warning("channel %d refused: its SRTP key came on a plain TCP H.245 channel beside TLS signalling",
                        number)
        if cause is not None or fmt is None or local is None:
            self._queue([open_logical_channel_reject(number, cause or "unspecified")])
            self._events.append(ProtocolWarning(f"rejected channel {number}: {cause}"))
            return
        rtp, rtcp = local
        media = MediaChannel("receive", fmt, session, number, None, channel.media_control, rtp, rtcp,
                             channel.key if suite else None)
        self.channels = [c for c in self.channels if not (c.direction == "receive" and c.number == number)]
        self.channels.append(media)
        self._queue([open_logical_channel_ack(number, session, rtp, rtcp)])
        self._events.append(ChannelOpened(media))

    def _open_acknowledged(self, body: Value) -> None:
        number = int(body["forwardLogicalChannelNumber"])
        channel = self.outgoing.on_ack(number)
        params = body.get("forwardMultiplexAckParameters")
        if channel is None or channel.format is None or params is None \
                or params[0] != "h2250LogicalChannelAckParameters" or "mediaChannel" not in params[1]:
            self._events.append(ProtocolWarning(f"unusable OpenLogicalChannelAck for channel {number}"))
            return
        ack = params[1]
        remote_rtcp = Address.from_h245(ack["mediaControlChannel"]) if "mediaControlChannel" in ack else None
        local = self.endpoints.get(channel.session_id) if self.endpoints is not None else None
        media = MediaChannel("send", channel.format, channel.session_id, number,
                             Address.from_h245(ack["mediaChannel"]), remote_rtcp,
                             None, local[1] if local else None, channel.key)
        self.channels.append(media)
        self._events.append(ChannelOpened(media))


_HANDLED = frozenset({
    "terminalCapabilitySet", "terminalCapabilitySetAck", "terminalCapabilitySetReject", "masterSlaveDetermination",
    "masterSlaveDeterminationAck", "masterSlaveDeterminationReject", "masterSlaveDeterminationRelease",
    "openLogicalChannel", "openLogicalChannelAck", "openLogicalChannelReject", "closeLogicalChannel",
    "closeLogicalChannelAck", "miscellaneousCommand", "flowControlCommand", "userInput", "roundTripDelayRequest",
    "endSessionCommand",
}) | _IGNORED
