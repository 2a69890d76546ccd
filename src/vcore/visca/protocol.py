"""VISCA messages as pure functions: the command table, encoders and reply parsing.

A VISCA message is ``header body... FF`` (3 to 16 bytes). The controller is device 0;
cameras are 1-7 on a daisy chain, 8 is broadcast. Header of a command: ``0x80 | address``;
header of a reply: ``(0x8 + address) << 4`` (``0x90`` for camera 1). Replies:

- ``z0 4y FF`` acknowledge, the command runs in socket ``y`` (1 or 2);
- ``z0 5y FF`` completion of socket ``y``; ``z0 50 data FF`` answer to an inquiry;
- ``z0 6y ee FF`` error ``ee`` (01 length, 02 syntax, 03 buffer full, 04 cancelled,
  05 no socket, 41 not executable);
- ``z0 38 FF`` network change; ``88 30 0w FF`` address set; ``88 01 00 01 FF`` IF_Clear.

Commands and inquiries come from a data-driven :class:`CommandTable`; the default
:data:`SONY_TABLE` covers the Sony EVI/BRC command set used by most PTZ cameras and
is extended with :meth:`CommandTable.add`. Everything here is pure and thread-safe
(tables are only mutated by ``add``, which is not meant to race with lookups).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from .._speedups import fastpath_visca as _k
from .errors import CameraProtocolError, CameraValueError

__all__ = [
    "BROADCAST",
    "TERMINATOR",
    "MAX_MESSAGE",
    "ERROR_MESSAGE_LENGTH",
    "ERROR_SYNTAX",
    "ERROR_BUFFER_FULL",
    "ERROR_CANCELLED",
    "ERROR_NO_SOCKET",
    "ERROR_NOT_EXECUTABLE",
    "Field",
    "CommandSpec",
    "CommandTable",
    "SONY_TABLE",
    "ReplyKind",
    "Reply",
    "encode_message",
    "encode_command",
    "encode_cancel",
    "encode_address_set",
    "encode_if_clear_broadcast",
    "encode_ack",
    "encode_completion",
    "encode_error",
    "encode_network_change",
    "parse_reply",
    "is_cancel",
]

TERMINATOR = 0xFF
MAX_MESSAGE = 16  # VISCA: messages are 3..16 bytes
BROADCAST = 8  # VISCA: address 8 reaches every camera of the chain
CONTROLLER = 0

ERROR_MESSAGE_LENGTH = 0x01
ERROR_SYNTAX = 0x02
ERROR_BUFFER_FULL = 0x03
ERROR_CANCELLED = 0x04
ERROR_NO_SOCKET = 0x05
ERROR_NOT_EXECUTABLE = 0x41

CATEGORY_COMMAND = 0x01
CATEGORY_INQUIRY = 0x09


# ---------------------------------------------------------------------------
# Fields and the command table


@dataclass(frozen=True)
class Field:
    """One parameter of a message.

    ``kind``: ``"nibbles"`` (``size`` bytes 0x0N, two's complement when ``signed``),
    ``"byte"`` (one raw byte), ``"low"`` (the low nibble of a byte whose high nibble is
    ``base >> 4``, as in zoom ``2p``), ``"word"`` (two raw bytes, big-endian).
    Values must lie in ``[lo, hi]`` and, when ``choices`` is set, be one of them.
    """

    name: str
    kind: str = "byte"
    size: int = 1
    lo: int = 0
    hi: int = 0xFE
    signed: bool = False
    base: int = 0
    choices: tuple[int, ...] | None = None

    @property
    def width(self) -> int:
        """Bytes taken on the wire."""
        if self.kind == "nibbles":
            return self.size
        if self.kind == "word":
            return 2
        return 1

    def check(self, value: int) -> bool:
        if not self.lo <= value <= self.hi:
            return False
        return self.choices is None or value in self.choices

    def encode(self, value: int) -> bytes:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CameraValueError(f"{self.name} must be an int, got {value!r}")
        if not self.check(value):
            allowed = f"one of {list(self.choices)}" if self.choices else f"in [{self.lo}, {self.hi}]"
            raise CameraValueError(f"{self.name}={value} out of range: must be {allowed}")
        if self.kind == "nibbles":
            return _k.pack_nibbles(value, self.size)
        if self.kind == "low":
            return bytes((self.base | value,))
        if self.kind == "word":
            return bytes((value >> 8, value & 0xFF))
        return bytes((value,))

    def decode(self, data: bytes, offset: int) -> int | None:
        """The value at ``offset``, or None when the bytes do not fit this field."""
        if offset + self.width > len(data):
            return None
        if self.kind == "nibbles":
            try:
                value = _k.unpack_nibbles(data, offset, self.size, self.signed)
            except ValueError:
                return None
        elif self.kind == "low":
            b = data[offset]
            if b & 0xF0 != self.base:
                return None
            value = b & 0x0F
        elif self.kind == "word":
            value = (data[offset] << 8) | data[offset + 1]
        else:
            value = data[offset]
        return value if self.check(value) else None


Part = bytes | Field


def _nib(name: str, size: int = 4, lo: int = 0, hi: int = 0xFFFF, signed: bool = False) -> Field:
    return Field(name, "nibbles", size=size, lo=lo, hi=hi, signed=signed)


@dataclass(frozen=True)
class CommandSpec:
    """One command or inquiry: its body (category byte onwards) and the fields of its answer.

    ``idempotent``: repeating it has the same effect as sending it once, so a message
    that got no reply may be sent again. ``reply`` lists the fields of an inquiry answer
    (the bytes after ``z0 50``).
    """

    name: str
    parts: tuple[Part, ...]
    reply: tuple[Field, ...] = ()
    idempotent: bool = True
    doc: str = ""

    @property
    def inquiry(self) -> bool:
        first = self.parts[0]
        return isinstance(first, bytes) and first[:1] == bytes((CATEGORY_INQUIRY,))

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(p for p in self.parts if isinstance(p, Field))

    @property
    def body_length(self) -> int:
        return sum(len(p) if isinstance(p, bytes) else p.width for p in self.parts)

    @property
    def key(self) -> bytes:
        """The first two body bytes (category and group), used to index the table."""
        first = self.parts[0]
        assert isinstance(first, bytes) and len(first) >= 2, self.name
        return first[:2]

    def encode_body(self, params: Mapping[str, int]) -> bytes:
        out = bytearray()
        names = set()
        for p in self.parts:
            if isinstance(p, bytes):
                out += p
                continue
            names.add(p.name)
            if p.name not in params:
                raise CameraValueError(f"{self.name}: missing parameter {p.name!r}")
            out += p.encode(params[p.name])
        extra = set(params) - names
        if extra:
            raise CameraValueError(f"{self.name}: unknown parameter(s) {sorted(extra)}")
        return bytes(out)

    def decode_body(self, body: bytes) -> dict[str, int] | None:
        """The parameters of ``body`` when it is this command, else None."""
        if len(body) != self.body_length:
            return None
        params: dict[str, int] = {}
        offset = 0
        for p in self.parts:
            if isinstance(p, bytes):
                if body[offset : offset + len(p)] != p:
                    return None
                offset += len(p)
                continue
            value = p.decode(body, offset)
            if value is None:
                return None
            params[p.name] = value
            offset += p.width
        return params

    def encode_reply(self, values: Mapping[str, int]) -> bytes:
        """The data bytes of an inquiry answer (used by the emulator)."""
        return b"".join(f.encode(values[f.name]) for f in self.reply)

    def decode_reply(self, data: bytes) -> dict[str, int]:
        """Fields of an inquiry answer; CameraProtocolError when it does not fit."""
        expected = sum(f.width for f in self.reply)
        if len(data) != expected:
            raise CameraProtocolError(
                f"{self.name}: answer has {len(data)} data bytes, expected {expected} ({data.hex(' ')})"
            )
        values: dict[str, int] = {}
        offset = 0
        for f in self.reply:
            # answers are decoded leniently on range (cameras differ), strictly on form
            loose = Field(f.name, f.kind, f.size, -(1 << 31), 1 << 31, f.signed, f.base)
            v = loose.decode(data, offset)
            if v is None:
                raise CameraProtocolError(f"{self.name}: malformed {f.name} in answer {data.hex(' ')}")
            values[f.name] = v
            offset += f.width
        return values


class CommandTable:
    """Commands and inquiries by name, and matching of received bodies to them.

    Extend it for another camera model with :meth:`add` (or :meth:`copy` then add).
    """

    def __init__(self, specs: Iterable[CommandSpec] = ()) -> None:
        self._by_name: dict[str, CommandSpec] = {}
        self._by_key: dict[tuple[int, bytes], list[CommandSpec]] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: CommandSpec) -> None:
        """Add or replace a command; the body must fit a 16-byte message."""
        if spec.body_length + 2 > MAX_MESSAGE:
            raise CameraValueError(f"{spec.name}: body of {spec.body_length} bytes does not fit a VISCA message")
        old = self._by_name.get(spec.name)
        if old is not None:
            self._by_key[(old.body_length, old.key)].remove(old)
        self._by_name[spec.name] = spec
        self._by_key.setdefault((spec.body_length, spec.key), []).append(spec)

    def copy(self) -> CommandTable:
        return CommandTable(self._by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[CommandSpec]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> CommandSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise CameraValueError(f"unknown VISCA command {name!r}") from None

    def encode(self, name: str, address: int = 1, **params: int) -> bytes:
        """The complete message (header to terminator) of command ``name``."""
        return encode_message(address, self.get(name).encode_body(params))

    def match(self, body: bytes) -> tuple[CommandSpec, dict[str, int]] | None:
        """The command a received body (between header and terminator) is, with its parameters."""
        for spec in self._by_key.get((len(body), bytes(body[:2])), ()):
            params = spec.decode_body(body)
            if params is not None:
                return spec, params
        return None


def _cmd(name: str, head: bytes, *parts: Part, idempotent: bool = True, doc: str = "") -> CommandSpec:
    return CommandSpec(name, (bytes((CATEGORY_COMMAND,)) + head, *parts), idempotent=idempotent, doc=doc)


def _inq(name: str, head: bytes, *reply: Field, doc: str = "") -> CommandSpec:
    return CommandSpec(name, (bytes((CATEGORY_INQUIRY,)) + head,), reply=reply, doc=doc)


# Sony documents speeds 01-18 (pan) and 01-17 (tilt); 00 is accepted as the slowest,
# as controllers (visca-over-ip among them) send it for the axis that does not move
_PAN_SPEED = Field("pan_speed", lo=0x00, hi=0x18)
_TILT_SPEED = Field("tilt_speed", lo=0x00, hi=0x17)
_PAN = _nib("pan", lo=-0x8000, hi=0x7FFF, signed=True)
_TILT = _nib("tilt", lo=-0x8000, hi=0x7FFF, signed=True)

#: Pan-tilt drive directions: (pan byte, tilt byte). Pan 01 left / 02 right, tilt 01 up / 02 down, 03 stop.
DIRECTIONS: dict[str, bytes] = {
    "up": b"\x03\x01",
    "down": b"\x03\x02",
    "left": b"\x01\x03",
    "right": b"\x02\x03",
    "up_left": b"\x01\x01",
    "up_right": b"\x02\x01",
    "down_left": b"\x01\x02",
    "down_right": b"\x02\x02",
    "stop": b"\x03\x03",
}

#: White balance modes (CAM_WB, ``04 35 0p``).
WB_MODES: dict[str, int] = {"auto": 0, "indoor": 1, "outdoor": 2, "one_push": 3, "atw": 4, "manual": 5}
#: Automatic exposure modes (CAM_AE, ``04 39 0p``).
AE_MODES: dict[str, int] = {"auto": 0x0, "manual": 0x3, "shutter": 0xA, "iris": 0xB, "bright": 0xD}

_SONY: list[CommandSpec] = [
    # interface
    _cmd("if_clear", b"\x00\x01", doc="IF_Clear addressed to one camera: empties its command buffers"),
    # power (CAM_Power)
    _cmd("power_on", b"\x04\x00\x02"),
    _cmd("power_off", b"\x04\x00\x03"),
    # zoom (CAM_Zoom)
    _cmd("zoom_stop", b"\x04\x07\x00"),
    _cmd("zoom_tele", b"\x04\x07\x02"),
    _cmd("zoom_wide", b"\x04\x07\x03"),
    _cmd("zoom_tele_var", b"\x04\x07", Field("speed", "low", base=0x20, lo=0, hi=7)),
    _cmd("zoom_wide_var", b"\x04\x07", Field("speed", "low", base=0x30, lo=0, hi=7)),
    _cmd("zoom_direct", b"\x04\x47", _nib("position", lo=0, hi=0x4000)),
    # focus (CAM_Focus)
    _cmd("focus_stop", b"\x04\x08\x00"),
    _cmd("focus_far", b"\x04\x08\x02"),
    _cmd("focus_near", b"\x04\x08\x03"),
    _cmd("focus_far_var", b"\x04\x08", Field("speed", "low", base=0x20, lo=0, hi=7)),
    _cmd("focus_near_var", b"\x04\x08", Field("speed", "low", base=0x30, lo=0, hi=7)),
    _cmd("focus_direct", b"\x04\x48", _nib("position", lo=0x1000, hi=0xF000)),
    _cmd("focus_auto", b"\x04\x38\x02"),
    _cmd("focus_manual", b"\x04\x38\x03"),
    _cmd("focus_auto_manual", b"\x04\x38\x10", idempotent=False, doc="toggles auto/manual"),
    _cmd("focus_one_push", b"\x04\x18\x01"),
    _cmd("focus_infinity", b"\x04\x18\x02"),
    # pan-tilt (Pan-tiltDrive)
    *[
        _cmd(f"pan_tilt_{d}", b"\x06\x01", _PAN_SPEED, _TILT_SPEED, code)
        for d, code in DIRECTIONS.items()
    ],
    _cmd("pan_tilt_absolute", b"\x06\x02", _PAN_SPEED, _TILT_SPEED, _PAN, _TILT),
    _cmd("pan_tilt_relative", b"\x06\x03", _PAN_SPEED, _TILT_SPEED, _PAN, _TILT, idempotent=False),
    _cmd("pan_tilt_home", b"\x06\x04"),
    _cmd("pan_tilt_reset", b"\x06\x05"),
    _cmd("pan_tilt_limit_set", b"\x06\x07\x00", Field("corner", lo=0, hi=1), _PAN, _TILT,
         doc="corner 1: up-right, 0: down-left"),
    _cmd("pan_tilt_limit_clear", b"\x06\x07\x01", Field("corner", lo=0, hi=1), b"\x07\x0f\x0f\x0f\x07\x0f\x0f\x0f"),
    # memory (CAM_Memory)
    _cmd("memory_reset", b"\x04\x3f\x00", Field("preset", lo=0, hi=0x7F)),
    _cmd("memory_set", b"\x04\x3f\x01", Field("preset", lo=0, hi=0x7F)),
    _cmd("memory_recall", b"\x04\x3f\x02", Field("preset", lo=0, hi=0x7F)),
    # white balance (CAM_WB)
    _cmd("white_balance", b"\x04\x35", Field("mode", lo=0, hi=5)),
    _cmd("white_balance_trigger", b"\x04\x10\x05", doc="one-push white balance trigger"),
    # exposure (CAM_AE, CAM_Backlight, CAM_ExpComp, direct values)
    _cmd("exposure_mode", b"\x04\x39", Field("mode", lo=0, hi=0xD, choices=tuple(AE_MODES.values()))),
    _cmd("backlight", b"\x04\x33", Field("state", lo=2, hi=3)),
    _cmd("exposure_comp", b"\x04\x3e", Field("state", lo=2, hi=3)),
    _cmd("exposure_comp_direct", b"\x04\x4e\x00\x00", _nib("value", size=2, lo=0, hi=0x0E)),
    _cmd("iris_direct", b"\x04\x4b\x00\x00", _nib("value", size=2, lo=0, hi=0x11)),
    _cmd("shutter_direct", b"\x04\x4a\x00\x00", _nib("value", size=2, lo=0, hi=0x15)),
    _cmd("gain_direct", b"\x04\x4c\x00\x00", _nib("value", size=2, lo=0, hi=0x0F)),
    _cmd("bright_direct", b"\x04\x4d\x00\x00", _nib("value", size=2, lo=0, hi=0x1F)),
    # inquiries
    _inq("power_inq", b"\x04\x00", Field("state", lo=2, hi=3), doc="2 on, 3 standby"),
    _inq("zoom_position_inq", b"\x04\x47", _nib("position")),
    _inq("focus_position_inq", b"\x04\x48", _nib("position")),
    _inq("focus_mode_inq", b"\x04\x38", Field("mode", lo=2, hi=3), doc="2 auto, 3 manual"),
    _inq("pan_tilt_position_inq", b"\x06\x12", _PAN, _TILT),
    _inq("pan_tilt_max_speed_inq", b"\x06\x11", Field("pan_speed"), Field("tilt_speed")),
    _inq("white_balance_inq", b"\x04\x35", Field("mode")),
    _inq("exposure_mode_inq", b"\x04\x39", Field("mode")),
    _inq("backlight_inq", b"\x04\x33", Field("state", lo=2, hi=3)),
    _inq(
        "version_inq",
        b"\x00\x02",
        Field("vendor", "word", hi=0xFFFF),
        Field("model", "word", hi=0xFFFF),
        Field("rom", "word", hi=0xFFFF),
        Field("max_socket"),
    ),
]

#: The Sony command set (EVI-D70/H100, BRC series); copy and extend it for other models.
SONY_TABLE = CommandTable(_SONY)


# ---------------------------------------------------------------------------
# Encoders


def _check_address(address: int, allow_broadcast: bool = True) -> None:
    top = BROADCAST if allow_broadcast else 7
    if isinstance(address, bool) or not isinstance(address, int) or not 1 <= address <= top:
        raise CameraValueError(f"camera address must be in [1, {top}], got {address!r}")


def encode_message(address: int, body: bytes) -> bytes:
    """``8x body FF`` from the controller to camera ``address`` (8: broadcast)."""
    _check_address(address)
    msg = bytes((0x80 | address,)) + bytes(body) + b"\xff"
    if len(msg) > MAX_MESSAGE:
        raise CameraValueError(f"message of {len(msg)} bytes is longer than VISCA's {MAX_MESSAGE}")
    if TERMINATOR in msg[:-1]:
        raise CameraValueError("0xFF inside a message body")
    return msg


def encode_command(name: str, address: int = 1, table: CommandTable = SONY_TABLE, **params: int) -> bytes:
    """The message of command or inquiry ``name`` of ``table``."""
    return table.encode(name, address, **params)


def encode_cancel(address: int, socket: int) -> bytes:
    """Command cancel ``8x 2p FF``: stop the command running in ``socket`` (1 or 2)."""
    if not 1 <= socket <= 0xF:
        raise CameraValueError(f"socket must be in [1, 15], got {socket}")
    return encode_message(address, bytes((0x20 | socket,)))


def is_cancel(body: bytes) -> bool:
    """True for the body of a command cancel (``2p``)."""
    return len(body) == 1 and body[0] & 0xF0 == 0x20


def encode_address_set(first: int = 1) -> bytes:
    """Address set ``88 30 0w FF`` (broadcast): cameras number themselves from ``first``."""
    if not 1 <= first <= 8:
        raise CameraValueError(f"address must be in [1, 8], got {first}")
    return bytes((0x88, 0x30, first, 0xFF))


def encode_if_clear_broadcast() -> bytes:
    """IF_Clear to every camera, ``88 01 00 01 FF``; the chain returns it unchanged."""
    return b"\x88\x01\x00\x01\xff"


def _reply_header(address: int) -> int:
    _check_address(address, allow_broadcast=False)
    return (0x8 + address) << 4


def encode_ack(address: int, socket: int) -> bytes:
    """``z0 4y FF``."""
    return bytes((_reply_header(address), 0x40 | socket, 0xFF))


def encode_completion(address: int, socket: int = 0, data: bytes = b"") -> bytes:
    """``z0 5y FF``, or ``z0 50 data FF`` for an inquiry answer."""
    return bytes((_reply_header(address), 0x50 | socket)) + bytes(data) + b"\xff"


def encode_error(address: int, socket: int, code: int) -> bytes:
    """``z0 6y ee FF``."""
    return bytes((_reply_header(address), 0x60 | socket, code, 0xFF))


def encode_network_change(address: int) -> bytes:
    """``z0 38 FF``: sent by a camera when the chain changed (power, cabling)."""
    return bytes((_reply_header(address), 0x38, 0xFF))


# ---------------------------------------------------------------------------
# Replies


class ReplyKind(enum.Enum):
    ACK = "ack"
    COMPLETION = "completion"
    ERROR = "error"
    NETWORK_CHANGE = "network_change"
    ADDRESS_SET = "address_set"
    IF_CLEAR = "if_clear"
    UNDELIVERED = "undelivered"  # our own command came back round the chain: no such camera


@dataclass(frozen=True)
class Reply:
    """A parsed message from the chain. ``address`` is the camera that sent it
    (for ADDRESS_SET: the next free address, i.e. cameras + 1)."""

    kind: ReplyKind
    address: int
    socket: int = 0
    code: int = 0
    data: bytes = field(default=b"")


def parse_reply(msg: bytes) -> Reply:
    """Parse one framed message received by the controller; CameraProtocolError if malformed."""
    msg = bytes(msg)
    if not 3 <= len(msg) <= MAX_MESSAGE or msg[-1] != TERMINATOR:
        raise CameraProtocolError(f"not a VISCA message: {msg.hex(' ')}")
    if TERMINATOR in msg[:-1]:
        raise CameraProtocolError(f"terminator inside message: {msg.hex(' ')}")
    h = msg[0]
    if h == 0x88:
        if len(msg) == 4 and msg[1] == 0x30 and 1 <= msg[2] <= 8:
            return Reply(ReplyKind.ADDRESS_SET, msg[2])
        if msg == encode_if_clear_broadcast():
            return Reply(ReplyKind.IF_CLEAR, BROADCAST)
        raise CameraProtocolError(f"unexpected broadcast: {msg.hex(' ')}")
    sender, receiver = h >> 4, h & 0x0F
    if sender == 0x8 and 1 <= receiver <= 7:
        return Reply(ReplyKind.UNDELIVERED, receiver, data=msg[1:-1])
    if not 0x9 <= sender <= 0xF or receiver != CONTROLLER:
        raise CameraProtocolError(f"bad reply header 0x{h:02x}: {msg.hex(' ')}")
    address = sender - 8
    m = msg[1]
    kind, y = m >> 4, m & 0x0F
    if m == 0x38 and len(msg) == 3:
        return Reply(ReplyKind.NETWORK_CHANGE, address)
    if kind == 0x4 and len(msg) == 3:
        return Reply(ReplyKind.ACK, address, socket=y)
    if kind == 0x5:
        return Reply(ReplyKind.COMPLETION, address, socket=y, data=msg[2:-1])
    if kind == 0x6 and len(msg) == 4:
        return Reply(ReplyKind.ERROR, address, socket=y, code=msg[2])
    raise CameraProtocolError(f"unknown reply: {msg.hex(' ')}")
