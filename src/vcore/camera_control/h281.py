"""ITU-T H.281 far-end camera control messages (H.224 client 0x01) and H.281 extra capabilities.

Messages (client data of an H.224 frame)::

    start action        01  PPTTZZFF  0000TTTT   (timeout nibble: 0 = 800 ms, n = n x 50 ms)
    continue action     02  PPTTZZFF
    stop action         03  PPTTZZFF
    select video source 04  SSSS00MM            (source 0..15, video mode MM)
    video source switched 05  SSSS00MM
    store as preset     07  PPPP0000            (preset 0..15)
    activate preset     08  PPPP0000

Each direction field is two bits: ``00`` none, ``01`` illegal, ``10`` left /
down / zoom out / focus out, ``11`` right / up / zoom in / focus in.

Parsing is strict on what carries meaning (length, request type, illegal
direction or video mode codes: :class:`H281Error`) and ignores reserved bits,
which H323Plus fills with the direction bits of its previous action.

Extra capabilities (sent through the H.224 CME, client 0x01)::

    0000NNNN                      number of presets (0..15)
    then per video source: SSSS0MND  PTZF0000   (M motion video, N normal still, D double still;
                                                 P pan, T tilt, Z zoom, F focus)
    sources 6..15 (user-defined) put a NUL-terminated name between the two octets.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import ParseError

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "MAIN_CAMERA",
    "ActivatePreset",
    "ContinueAction",
    "Focus",
    "H281Capabilities",
    "H281Error",
    "H281Message",
    "Pan",
    "SelectVideoSource",
    "StartAction",
    "StopAction",
    "StoreAsPreset",
    "Tilt",
    "VideoMode",
    "VideoSource",
    "VideoSourceSwitched",
    "Zoom",
    "parse_h281",
]


class H281Error(ParseError):
    """A malformed H.281 message or H.281 extra-capabilities block."""


class Pan(enum.IntEnum):
    NONE = 0
    LEFT = 2
    RIGHT = 3


class Tilt(enum.IntEnum):
    NONE = 0
    DOWN = 2
    UP = 3


class Zoom(enum.IntEnum):
    NONE = 0
    OUT = 2
    IN = 3


class Focus(enum.IntEnum):
    NONE = 0
    OUT = 2
    IN = 3


class VideoMode(enum.IntEnum):
    MOTION = 0
    NORMAL_STILL = 2
    DOUBLE_STILL = 3


REQ_START, REQ_CONTINUE, REQ_STOP = 0x01, 0x02, 0x03
REQ_SELECT_SOURCE, REQ_SOURCE_SWITCHED = 0x04, 0x05
REQ_STORE_PRESET, REQ_ACTIVATE_PRESET = 0x07, 0x08
DEFAULT_TIMEOUT_MS = 800  # timeout nibble 0
MAIN_CAMERA = 1  # H.281 video source 1: the main camera (0 = none, 2 auxiliary, 3 document, ...)
_ILLEGAL = 1


@dataclass(frozen=True)
class _Directions:
    pan: Pan = Pan.NONE
    tilt: Tilt = Tilt.NONE
    zoom: Zoom = Zoom.NONE
    focus: Focus = Focus.NONE

    def _octet(self) -> int:
        return (Pan(self.pan) << 6) | (Tilt(self.tilt) << 4) | (Zoom(self.zoom) << 2) | Focus(self.focus)

    @property
    def moving(self) -> bool:
        """True when any direction is set (an action with none is void)."""
        return bool(self.pan or self.tilt or self.zoom or self.focus)

    def same_action(self, other: _Directions) -> bool:
        return (self.pan, self.tilt, self.zoom, self.focus) == (other.pan, other.tilt, other.zoom, other.focus)


@dataclass(frozen=True)
class StartAction(_Directions):
    """Start moving; the far end stops by itself ``timeout_ms`` after the last start/continue."""

    timeout_ms: int = DEFAULT_TIMEOUT_MS

    def __post_init__(self) -> None:
        if self.timeout_ms != DEFAULT_TIMEOUT_MS and not (
                self.timeout_ms % 50 == 0 and 50 <= self.timeout_ms <= 750):
            raise H281Error(f"H.281 timeout {self.timeout_ms} ms is not 800 or a multiple of 50 in 50..750")

    def encode(self) -> bytes:
        nibble = 0 if self.timeout_ms == DEFAULT_TIMEOUT_MS else self.timeout_ms // 50
        return bytes((REQ_START, self._octet(), nibble))


@dataclass(frozen=True)
class ContinueAction(_Directions):
    """Keep the running action going (repeat it with the same directions, well within the timeout)."""

    def encode(self) -> bytes:
        return bytes((REQ_CONTINUE, self._octet()))


@dataclass(frozen=True)
class StopAction(_Directions):
    """Stop the running action (the directions name the action being stopped)."""

    def encode(self) -> bytes:
        return bytes((REQ_STOP, self._octet()))


@dataclass(frozen=True)
class SelectVideoSource:
    """Ask the far end to send video source ``source`` (1 main camera) in ``mode``."""

    source: int
    mode: VideoMode = VideoMode.MOTION

    def __post_init__(self) -> None:
        _check_nibble("video source", self.source)

    def encode(self) -> bytes:
        return bytes((REQ_SELECT_SOURCE, (self.source << 4) | VideoMode(self.mode)))


@dataclass(frozen=True)
class VideoSourceSwitched(SelectVideoSource):
    """The sender switched its video to ``source`` (an indication)."""

    def encode(self) -> bytes:
        return bytes((REQ_SOURCE_SWITCHED, (self.source << 4) | VideoMode(self.mode)))


@dataclass(frozen=True)
class StoreAsPreset:
    """Store the far camera's current position as preset ``preset`` (0..15)."""

    preset: int

    def __post_init__(self) -> None:
        _check_nibble("preset", self.preset)

    def encode(self) -> bytes:
        return bytes((REQ_STORE_PRESET, self.preset << 4))


@dataclass(frozen=True)
class ActivatePreset(StoreAsPreset):
    """Move the far camera to preset ``preset`` (0..15)."""

    def encode(self) -> bytes:
        return bytes((REQ_ACTIVATE_PRESET, self.preset << 4))


H281Message = (StartAction | ContinueAction | StopAction | SelectVideoSource | VideoSourceSwitched
               | StoreAsPreset | ActivatePreset)


def _check_nibble(what: str, value: int) -> None:
    if not 0 <= value <= 15:
        raise H281Error(f"H.281 {what} {value} is not in 0..15")


def _directions(octet: int) -> tuple[Pan, Tilt, Zoom, Focus]:
    codes = (octet >> 6, (octet >> 4) & 3, (octet >> 2) & 3, octet & 3)
    for name, code in zip(("pan", "tilt", "zoom", "focus"), codes):
        if code == _ILLEGAL:
            raise H281Error(f"H.281 {name} direction code 01 is illegal")
    return Pan(codes[0]), Tilt(codes[1]), Zoom(codes[2]), Focus(codes[3])


def parse_h281(data: bytes) -> H281Message:
    """Read the client data of an H.281 frame."""
    data = bytes(data)
    if not data:
        raise H281Error("empty H.281 message")
    request = data[0]
    expected = 3 if request == REQ_START else 2
    if request not in (REQ_START, REQ_CONTINUE, REQ_STOP, REQ_SELECT_SOURCE, REQ_SOURCE_SWITCHED,
                       REQ_STORE_PRESET, REQ_ACTIVATE_PRESET):
        raise H281Error(f"unknown H.281 request type {request:#04x}")
    if len(data) != expected:
        raise H281Error(f"H.281 request {request:#04x} has {len(data)} octets, expected {expected}")
    octet = data[1]
    if request in (REQ_START, REQ_CONTINUE, REQ_STOP):
        pan, tilt, zoom, focus = _directions(octet)
        if request == REQ_START:
            nibble = data[2] & 0x0F
            return StartAction(pan, tilt, zoom, focus, DEFAULT_TIMEOUT_MS if nibble == 0 else nibble * 50)
        cls = ContinueAction if request == REQ_CONTINUE else StopAction
        return cls(pan, tilt, zoom, focus)
    if request in (REQ_SELECT_SOURCE, REQ_SOURCE_SWITCHED):
        mode = octet & 3
        if mode == _ILLEGAL:
            raise H281Error("H.281 video mode code 01 is illegal")
        kind = SelectVideoSource if request == REQ_SELECT_SOURCE else VideoSourceSwitched
        return kind(octet >> 4, VideoMode(mode))
    return (StoreAsPreset if request == REQ_STORE_PRESET else ActivatePreset)(octet >> 4)


# --------------------------------------------------------------------------- extra capabilities

MAX_SOURCE_NAME = 16  # octets of a user-defined video source name (H.281 sources 6..15)


@dataclass(frozen=True)
class VideoSource:
    """One video source a terminal offers to far-end control (H.281 extra capabilities)."""

    number: int
    motion: bool = True
    normal_still: bool = False
    double_still: bool = False
    pan: bool = False
    tilt: bool = False
    zoom: bool = False
    focus: bool = False
    name: str = ""  # user-defined sources (6..15) only

    def __post_init__(self) -> None:
        _check_nibble("video source", self.number)
        if self.number == 0:
            raise H281Error("H.281 video source 0 means 'no source' and cannot be offered")
        if (self.number >= 6) != bool(self.name) or len(self.name.encode("ascii", "replace")) > MAX_SOURCE_NAME:
            raise H281Error(f"H.281 video source {self.number}: a name (1..{MAX_SOURCE_NAME} ASCII characters) "
                            "is required for sources 6..15 and allowed only there")

    def encode(self) -> bytes:
        first = (self.number << 4) | (4 if self.motion else 0) | (2 if self.normal_still else 0) | (
            1 if self.double_still else 0)
        second = (0x80 if self.pan else 0) | (0x40 if self.tilt else 0) | (0x20 if self.zoom else 0) | (
            0x10 if self.focus else 0)
        name = self.name.encode("ascii", "replace") + b"\x00" if self.name else b""
        return bytes((first,)) + name + bytes((second,))


@dataclass(frozen=True)
class H281Capabilities:
    """H.281 extra capabilities: how many presets, which video sources (and what each can do)."""

    presets: int = 0
    sources: tuple[VideoSource, ...] = ()

    def __post_init__(self) -> None:
        _check_nibble("number of presets", self.presets)

    def encode(self) -> bytes:
        return bytes((self.presets,)) + b"".join(s.encode() for s in self.sources)

    def source(self, number: int) -> VideoSource | None:
        return next((s for s in self.sources if s.number == number), None)

    @classmethod
    def parse(cls, data: bytes) -> H281Capabilities:
        data = bytes(data)
        if not data:
            raise H281Error("empty H.281 extra capabilities")
        presets = data[0] & 0x0F
        sources: list[VideoSource] = []
        i = 1
        while i < len(data):
            first = data[i]
            number = first >> 4
            name = ""
            i += 1
            if number >= 6:
                end = data.find(b"\x00", i)
                if end < 0 or end - i > MAX_SOURCE_NAME or end == i:
                    raise H281Error(f"H.281 video source {number}: name missing, unterminated or too long")
                name = data[i:end].decode("ascii", "replace")
                i = end + 1
            if i >= len(data):
                raise H281Error(f"H.281 video source {number} lacks its pan/tilt/zoom/focus octet")
            second = data[i]
            i += 1
            if number == 0:
                raise H281Error("H.281 extra capabilities offer video source 0")
            if any(s.number == number for s in sources):
                raise H281Error(f"H.281 extra capabilities offer video source {number} twice")
            sources.append(VideoSource(number, bool(first & 4), bool(first & 2), bool(first & 1),
                                       bool(second & 0x80), bool(second & 0x40), bool(second & 0x20),
                                       bool(second & 0x10), name))
        return cls(presets, tuple(sources))
