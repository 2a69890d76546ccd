"""H.245 PDUs other than capabilities (H.245 §7): master/slave determination, logical channel signalling,
commands and indications, and the ``MultimediaSystemControlMessage`` codec.

Pure functions of their arguments; the procedures that send and read them are
the state machines of :mod:`vcore.h323.h245`. The names are also importable
from :mod:`vcore.h323.messages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import asn1
from ..errors import SignallingParseError
from ..messages import Address, OpenChannel, open_logical_channel

__all__ = [
    "H245Pdu",
    "close_logical_channel",
    "close_logical_channel_ack",
    "encode_h245",
    "end_session_command",
    "flow_control_command",
    "function_not_understood",
    "master_slave_determination",
    "master_slave_determination_ack",
    "master_slave_determination_reject",
    "master_slave_determination_release",
    "msd_decision",
    "open_logical_channel_ack",
    "open_logical_channel_pdu",
    "open_logical_channel_reject",
    "parse_h245",
    "round_trip_delay_request",
    "round_trip_delay_response",
    "user_input_indication",
    "video_fast_update_picture",
]

Value = Any


def master_slave_determination(terminal_type: int, number: int) -> Value:
    """MasterSlaveDetermination (H.245 §7.1.1, §C.2): ``terminal_type`` 50 for a terminal, ``number`` 24 bits."""
    return ("request", ("masterSlaveDetermination",
                        {"terminalType": terminal_type, "statusDeterminationNumber": number & 0xFFFFFF}))


def master_slave_determination_ack(decision: str) -> Value:
    """MSD Ack; ``decision`` (``master``/``slave``) is what the receiver of the Ack is."""
    return ("response", ("masterSlaveDeterminationAck", {"decision": (decision, 0)}))


def master_slave_determination_reject() -> Value:
    return ("response", ("masterSlaveDeterminationReject", {"cause": ("identicalNumbers", 0)}))


def master_slave_determination_release() -> Value:
    """MasterSlaveDeterminationRelease (H.245 §7.1.4): our determination timed out (T106)."""
    return ("indication", ("masterSlaveDeterminationRelease", {}))


def msd_decision(local_type: int, local_number: int, remote_type: int, remote_number: int) -> str | None:
    """H.245 §C.2.5: ``master``, ``slave`` (for the local terminal) or None when indeterminate."""
    if local_type != remote_type:
        return "master" if local_type > remote_type else "slave"
    diff = (remote_number - local_number) & 0xFFFFFF
    if diff in (0, 0x800000):
        return None
    return "master" if diff < 0x800000 else "slave"  # §C.2.5: (remote - local) mod 2^24 below 2^23: local master


def open_logical_channel_pdu(channel: OpenChannel) -> Value:
    return ("request", ("openLogicalChannel", open_logical_channel(channel)))


def open_logical_channel_ack(number: int, session_id: int, media: Address, media_control: Address) -> Value:
    """OpenLogicalChannelAck (H.245 §7.3.2) giving where to send RTP and RTCP."""
    return ("response", ("openLogicalChannelAck", {
        "forwardLogicalChannelNumber": number,
        "forwardMultiplexAckParameters": ("h2250LogicalChannelAckParameters", {
            "sessionID": session_id, "mediaChannel": media.h245(), "mediaControlChannel": media_control.h245(),
        }),
    }))


def open_logical_channel_reject(number: int, cause: str = "unspecified") -> Value:
    return ("response", ("openLogicalChannelReject",
                         {"forwardLogicalChannelNumber": number, "cause": (cause, 0)}))


def close_logical_channel(number: int, source: str = "user") -> Value:
    """CloseLogicalChannel (H.245 §7.3.3); ``source`` ``user`` or ``lcse``."""
    return ("request", ("closeLogicalChannel", {"forwardLogicalChannelNumber": number, "source": (source, 0)}))


def close_logical_channel_ack(number: int) -> Value:
    return ("response", ("closeLogicalChannelAck", {"forwardLogicalChannelNumber": number}))


def end_session_command() -> Value:
    """EndSessionCommand disconnect (H.245 §7.14.5)."""
    return ("command", ("endSessionCommand", ("disconnect", 0)))


def video_fast_update_picture(number: int) -> Value:
    """MiscellaneousCommand videoFastUpdatePicture: a keyframe request (H.245 §7.14.4)."""
    return ("command", ("miscellaneousCommand",
                        {"logicalChannelNumber": number, "type": ("videoFastUpdatePicture", 0)}))


def flow_control_command(bitrate: int | None, number: int | None = None) -> Value:
    """FlowControlCommand (H.245 §7.14.3): limit a channel (or everything) to ``bitrate`` bit/s; None lifts it."""
    scope = ("logicalChannelNumber", number) if number is not None else ("wholeMultiplex", 0)
    if bitrate is None:
        restriction: Value = ("noRestriction", 0)
    else:
        restriction = ("maximumBitRate", min(max(bitrate // 100, 0), 0xFFFFFF))
    return ("command", ("flowControlCommand", {"scope": scope, "restriction": restriction}))


def user_input_indication(text: str) -> Value:
    """UserInputIndication alphanumeric (H.245 §7.16.2): DTMF-style user input, or an application's string."""
    return ("indication", ("userInput", ("alphanumeric", text)))


def encode_h245(pdu: Value) -> bytes:
    """PER bytes of one ``MultimediaSystemControlMessage``."""
    return asn1.encode_h245(pdu)


@dataclass(frozen=True)
class H245Pdu:
    """A decoded H.245 message: ``category`` (request/response/command/indication), ``name`` and ``body``."""

    category: str
    name: str
    body: Value


def parse_h245(data: bytes) -> H245Pdu:
    """Decode one ``MultimediaSystemControlMessage``.

    A message type from a later H.245 version decodes with ``name`` ``_ext_N`` and its undecoded bytes as
    ``body``; an unknown top-level category is :class:`SignallingParseError`.
    """
    category, inner = asn1.decode_h245(data)
    if category not in ("request", "response", "command", "indication"):
        raise SignallingParseError("H.245 message of a category vcore does not know")
    name, body = inner
    return H245Pdu(category, name, body)


def function_not_understood(pdu: H245Pdu) -> Value:
    """FunctionNotUnderstood indication echoing an unhandled request/response/command (H.245 §7.16.1)."""
    return ("indication", ("functionNotUnderstood", (pdu.category, (pdu.name, pdu.body))))


def round_trip_delay_request(sequence_number: int) -> Value:
    """RoundTripDelayRequest (H.245 §7.8.1), usable as an H.245 keep-alive."""
    return ("request", ("roundTripDelayRequest", {"sequenceNumber": sequence_number}))


def round_trip_delay_response(sequence_number: int) -> Value:
    return ("response", ("roundTripDelayResponse", {"sequenceNumber": sequence_number}))
