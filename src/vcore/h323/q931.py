"""Q.931 messages as profiled by H.225.0 §7 (call signalling on TCP 1720).

Layout (Q.931 §4): protocol discriminator ``0x08`` (§4.2), call reference
(§4.3: one length octet, which H.225.0 §7.2.2 fixes at 2, then a flag bit and a
15-bit value), message type (§4.4), then information elements (§4.5).
Variable-length IEs are ``id, length, contents``; single-octet IEs have bit 8
set (§4.5.1); the User-user IE (``0x7E``) carries a two-octet length in
H.225.0 (§7.2.2.1, its contents exceed 255 octets). Codeset shifts (§4.5.2,
§4.5.3) are tracked so that only codeset-0 User-user IEs get the long length.

Parsing is strict: anything malformed raises :class:`SignallingParseError`
(a :class:`vcore.errors.ParseError`) with a message that says what is wrong.
Unknown message types and unknown IEs are kept (not errors): Q.931 §5.8.4
and §5.8.7 tell the receiver what to answer, which is the state machine's job.
Values are immutable; everything here is thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .errors import SignallingParseError

__all__ = [
    "PROTOCOL_DISCRIMINATOR",
    "UU_PROTOCOL_X208",
    "MessageType",
    "IE",
    "Cause",
    "InformationElement",
    "Q931Message",
    "bearer_capability_ie",
    "cause_ie",
    "display_ie",
    "party_number_ie",
    "user_user_ie",
    "call_state_ie",
]

PROTOCOL_DISCRIMINATOR = 0x08  # Q.931 §4.2
UU_PROTOCOL_X208 = 0x05  # Q.931 Table 4-26: X.208/X.209 coded user information (H.225.0 §7.2.2.1)
_CALL_REFERENCE_LENGTH = 2  # H.225.0 §7.2.2: "the call reference value shall be two octets"


class MessageType(IntEnum):
    """Q.931 message types used by H.225.0 (Q.931 Table 4-2)."""

    ALERTING = 0x01
    CALL_PROCEEDING = 0x02
    PROGRESS = 0x03
    SETUP = 0x05
    CONNECT = 0x07
    RELEASE_COMPLETE = 0x5A
    FACILITY = 0x62
    NOTIFY = 0x6E
    STATUS_ENQUIRY = 0x75
    INFORMATION = 0x7B
    STATUS = 0x7D


class IE(IntEnum):
    """Information element identifiers in codeset 0 (Q.931 Table 4-3)."""

    BEARER_CAPABILITY = 0x04
    CAUSE = 0x08
    CALL_STATE = 0x14
    PROGRESS_INDICATOR = 0x1E
    NOTIFICATION_INDICATOR = 0x27
    DISPLAY = 0x28
    KEYPAD = 0x2C
    SIGNAL = 0x34
    CALLING_PARTY_NUMBER = 0x6C
    CALLED_PARTY_NUMBER = 0x70
    USER_USER = 0x7E
    SENDING_COMPLETE = 0xA1  # single octet


class Cause(IntEnum):
    """Q.850 cause values that vcore sends or reports."""

    UNALLOCATED_NUMBER = 1
    NORMAL_CALL_CLEARING = 16
    USER_BUSY = 17
    NO_USER_RESPONDING = 18
    NO_ANSWER = 19
    CALL_REJECTED = 21
    DESTINATION_OUT_OF_ORDER = 27
    INVALID_NUMBER_FORMAT = 28
    NORMAL_UNSPECIFIED = 31
    NO_CIRCUIT_AVAILABLE = 34
    TEMPORARY_FAILURE = 41
    RESOURCE_UNAVAILABLE = 47
    BEARER_CAPABILITY_NOT_IMPLEMENTED = 65
    INCOMPATIBLE_DESTINATION = 88
    INVALID_MESSAGE = 95
    MANDATORY_IE_MISSING = 96
    MESSAGE_TYPE_NONEXISTENT = 97
    MESSAGE_NOT_COMPATIBLE_WITH_STATE = 98
    IE_NONEXISTENT = 99
    INVALID_IE_CONTENTS = 100
    RECOVERY_ON_TIMER_EXPIRY = 102
    PROTOCOL_ERROR = 111
    INTERWORKING = 127


@dataclass(frozen=True)
class InformationElement:
    """One IE: ``identifier`` (full octet), its ``contents`` and the ``codeset`` it was found in."""

    identifier: int
    contents: bytes = b""
    codeset: int = 0

    @property
    def single_octet(self) -> bool:
        return bool(self.identifier & 0x80)


def _message_type_name(value: int) -> str:
    try:
        return MessageType(value).name
    except ValueError:
        return f"0x{value:02x}"


@dataclass(frozen=True)
class Q931Message:
    """A Q.931 message.

    ``call_reference`` is the 15-bit value; ``from_destination`` is the call
    reference flag (Q.931 §4.3): False in messages sent by the side that
    originated the call reference, True in those sent towards it.
    """

    message_type: int
    call_reference: int
    from_destination: bool = False
    elements: tuple[InformationElement, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        """The message type's name (``SETUP``) or ``0xNN`` when unknown."""
        return _message_type_name(self.message_type)

    @property
    def known_type(self) -> bool:
        return self.message_type in MessageType._value2member_map_

    def get(self, identifier: int) -> bytes | None:
        """Contents of the first codeset-0 IE with this identifier, or None."""
        for ie in self.elements:
            if ie.identifier == identifier and ie.codeset == 0:
                return ie.contents
        return None

    @property
    def user_user(self) -> bytes | None:
        """The H.225.0 ``H323-UserInformation`` PER bytes of the User-user IE, or None."""
        contents = self.get(IE.USER_USER)
        if contents is None:
            return None
        if not contents:
            raise SignallingParseError("Q.931 User-user IE is empty")
        if contents[0] != UU_PROTOCOL_X208:
            raise SignallingParseError(
                f"Q.931 User-user protocol discriminator 0x{contents[0]:02x} is not 0x05 (X.208/X.209 coded)"
            )
        return contents[1:]

    @property
    def cause(self) -> int | None:
        """The Q.850 cause value of the Cause IE (Q.931 §4.5.12), or None."""
        contents = self.get(IE.CAUSE)
        if contents is None:
            return None
        index = 1 if contents and contents[0] & 0x80 else 2  # octet 3a present when octet 3's ext bit is 0
        if len(contents) <= index:
            raise SignallingParseError(f"Q.931 Cause IE of {len(contents)} bytes has no cause value")
        return contents[index] & 0x7F

    @property
    def display(self) -> str | None:
        """The Display IE text (Q.931 §4.5.16), or None. Read leniently: it is informational.

        The standard says IA5; peers send UTF-8 or Latin-1 ("Hélène"). UTF-8 when the bytes are
        valid UTF-8, else Latin-1; control characters removed; None if nothing is left.
        """
        contents = self.get(IE.DISPLAY)
        if not contents:
            return None
        try:
            text = contents.decode("utf-8")
        except UnicodeDecodeError:
            text = contents.decode("latin-1")
        return "".join(c for c in text if c.isprintable()).strip() or None

    @property
    def called_party_number(self) -> str | None:
        return self._number(IE.CALLED_PARTY_NUMBER, "Called party number")

    @property
    def calling_party_number(self) -> str | None:
        return self._number(IE.CALLING_PARTY_NUMBER, "Calling party number")

    def _number(self, identifier: int, label: str) -> str | None:
        contents = self.get(identifier)
        if contents is None:
            return None
        if not contents:
            raise SignallingParseError(f"Q.931 {label} IE is empty")
        index = 1
        if not contents[0] & 0x80 and identifier == IE.CALLING_PARTY_NUMBER:
            index = 2  # octet 3a (presentation/screening) follows
        if len(contents) < index:
            raise SignallingParseError(f"Q.931 {label} IE is truncated")
        return _ia5(contents[index:], label)

    def encode(self) -> bytes:
        """The wire bytes (without TPKT). Raises :class:`SignallingParseError` on an unencodable value."""
        if not 0 <= self.call_reference <= 0x7FFF:
            raise SignallingParseError(f"Q.931 call reference {self.call_reference} is not in 0..32767")
        if not 0 <= self.message_type <= 0x7F:
            raise SignallingParseError(f"Q.931 message type {self.message_type} is not in 0..127")
        cr = self.call_reference | (0x8000 if self.from_destination else 0)
        out = bytearray((PROTOCOL_DISCRIMINATOR, _CALL_REFERENCE_LENGTH, cr >> 8, cr & 0xFF, self.message_type))
        codeset = 0
        for ie in self.elements:
            if ie.codeset != codeset:
                raise SignallingParseError("Q.931 encoder writes codeset 0 IEs only")
            if ie.single_octet:
                if ie.contents:
                    raise SignallingParseError(f"Q.931 single-octet IE 0x{ie.identifier:02x} cannot have contents")
                out.append(ie.identifier)
            elif ie.identifier == IE.USER_USER:
                if len(ie.contents) > 0xFFFF:
                    raise SignallingParseError(f"Q.931 User-user IE of {len(ie.contents)} bytes exceeds 65535")
                out += bytes((ie.identifier, len(ie.contents) >> 8, len(ie.contents) & 0xFF)) + ie.contents
            else:
                if len(ie.contents) > 0xFF:
                    raise SignallingParseError(
                        f"Q.931 IE 0x{ie.identifier:02x} of {len(ie.contents)} bytes exceeds 255"
                    )
                out += bytes((ie.identifier, len(ie.contents))) + ie.contents
        return bytes(out)

    @classmethod
    def parse(cls, data: bytes) -> Q931Message:
        """Parse one Q.931 message (the payload of one TPKT)."""
        if len(data) < 5:
            raise SignallingParseError(f"Q.931 message of {len(data)} bytes is shorter than 5")
        if data[0] != PROTOCOL_DISCRIMINATOR:
            raise SignallingParseError(f"Q.931 protocol discriminator 0x{data[0]:02x} is not 0x08")
        if data[1] != _CALL_REFERENCE_LENGTH:
            raise SignallingParseError(f"Q.931 call reference length {data[1]} is not 2 (H.225.0 §7.2.2)")
        cr = (data[2] << 8) | data[3]
        message_type = data[4]
        if message_type & 0x80:
            raise SignallingParseError(f"Q.931 message type octet 0x{message_type:02x} has bit 8 set")
        elements: list[InformationElement] = []
        pos = 5
        locked = 0
        next_codeset: int | None = None
        n = len(data)
        while pos < n:
            ident = data[pos]
            codeset = locked if next_codeset is None else next_codeset
            next_codeset = None
            if ident & 0x80:  # single-octet IE (Q.931 §4.5.1)
                if ident & 0xF0 == 0x90:  # shift (Q.931 §4.5.2/§4.5.3)
                    new = ident & 0x07
                    if ident & 0x08:
                        next_codeset = new
                    elif new <= locked:
                        raise SignallingParseError(
                            f"Q.931 locking shift from codeset {locked} to {new} is not allowed (Q.931 §4.5.3)"
                        )
                    else:
                        locked = new
                elements.append(InformationElement(ident, b"", codeset))
                pos += 1
                continue
            if ident == IE.USER_USER and codeset == 0:
                if pos + 3 > n:
                    raise SignallingParseError(f"Q.931 User-user IE length is truncated at offset {pos}")
                size = (data[pos + 1] << 8) | data[pos + 2]
                start = pos + 3
            else:
                if pos + 2 > n:
                    raise SignallingParseError(f"Q.931 IE 0x{ident:02x} length is truncated at offset {pos}")
                size = data[pos + 1]
                start = pos + 2
            end = start + size
            if end > n:
                raise SignallingParseError(
                    f"Q.931 IE 0x{ident:02x} claims {size} bytes but {n - start} remain"
                )
            elements.append(InformationElement(ident, bytes(data[start:end]), codeset))
            pos = end
        return cls(message_type, cr & 0x7FFF, bool(cr & 0x8000), tuple(elements))


def _ia5(contents: bytes, label: str) -> str:
    if any(b > 0x7F for b in contents):
        raise SignallingParseError(f"Q.931 {label} IE is not IA5 text")
    return contents.decode("ascii")


def bearer_capability_ie() -> InformationElement:
    """Bearer capability for H.323 (H.225.0 §7.2.2.2): unrestricted digital, multirate, H.221/H.242."""
    return InformationElement(IE.BEARER_CAPABILITY, bytes((0x88, 0x93, 0xA5)))


def cause_ie(cause: int) -> InformationElement:
    """Cause IE (Q.931 §4.5.12): ITU-T coding, location user, Q.850 ``cause``."""
    if not 0 <= cause <= 0x7F:
        raise SignallingParseError(f"Q.850 cause {cause} is not in 0..127")
    return InformationElement(IE.CAUSE, bytes((0x80, 0x80 | cause)))


_ASCII_PUNCTUATION = str.maketrans({"\u2014": "-", "\u2013": "-", "\u2019": "'", "\u2018": "'", "\u00ab": '"',
                                    "\u00bb": '"', "\u201c": '"', "\u201d": '"', "\u00a0": " ", "\u0153": "oe",
                                    "\u0152": "OE", "\u00e6": "ae", "\u00c6": "AE", "\u00df": "ss"})


def ia5_text(text: str) -> str:
    """``text`` as IA5 (ASCII) for a peer that reads only that: accents dropped ("Hélène" -> "Helene"), not '?'."""
    import unicodedata

    folded = unicodedata.normalize("NFKD", text.translate(_ASCII_PUNCTUATION))
    return "".join(c for c in folded if c.isascii() and c.isprintable())


def display_ie(text: str) -> InformationElement:
    """Display IE (Q.931 §4.5.16): IA5 text, at most 82 characters (H.225.0 §7.2.2.4).

    Non-ASCII letters lose their accents (the name in every script goes in the H.225.0 ``displayName``).
    """
    return InformationElement(IE.DISPLAY, ia5_text(text).encode("ascii")[:82])


def party_number_ie(identifier: int, digits: str) -> InformationElement:
    """Called/Calling party number IE (Q.931 §4.5.8/§4.5.10): unknown type, ISDN/E.164 plan."""
    if not digits or any(c not in "0123456789*#" for c in digits):
        raise SignallingParseError(f"Q.931 party number {digits!r} is not made of 0-9 * #")
    return InformationElement(identifier, b"\x81" + digits.encode("ascii"))


def user_user_ie(uuie: bytes) -> InformationElement:
    """User-user IE (H.225.0 §7.2.2.1) carrying PER-encoded ``H323-UserInformation``."""
    return InformationElement(IE.USER_USER, bytes((UU_PROTOCOL_X208,)) + uuie)


def call_state_ie(state: int) -> InformationElement:
    """Call state IE (Q.931 §4.5.7) for Status messages."""
    if not 0 <= state <= 0x3F:
        raise SignallingParseError(f"Q.931 call state {state} is not in 0..63")
    return InformationElement(IE.CALL_STATE, bytes((state,)))
