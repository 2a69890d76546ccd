"""TPKT framing (RFC 1006 §6, used by H.225.0 §7.1 on TCP port 1720).

A TPKT is a 4-byte header ``03 00 LL LL`` (version 3, reserved 0, a 16-bit
length that counts the header too) followed by the payload (here one Q.931
message). Pure functions plus one small stateful decoder; not thread-safe
(one decoder per connection).
"""

from __future__ import annotations

from .errors import SignallingParseError

__all__ = ["TPKT_VERSION", "TPKT_HEADER_SIZE", "TPKT_MAX_SIZE", "encode_tpkt", "TpktDecoder"]

TPKT_VERSION = 3  # RFC 1006 §6
TPKT_HEADER_SIZE = 4
TPKT_MAX_SIZE = 0xFFFF  # the length field is 16 bits and includes the header


def encode_tpkt(payload: bytes) -> bytes:
    """Frame ``payload`` in one TPKT. Raises :class:`SignallingParseError` if it does not fit."""
    size = len(payload) + TPKT_HEADER_SIZE
    if size > TPKT_MAX_SIZE:
        raise SignallingParseError(f"TPKT payload of {len(payload)} bytes exceeds 65531")
    return bytes((TPKT_VERSION, 0, size >> 8, size & 0xFF)) + payload


class TpktDecoder:
    """Incremental TPKT stream decoder: ``feed(data)`` returns the complete payloads.

    The first invalid header poisons the decoder (a byte stream cannot be
    resynchronised); every later ``feed`` raises the same error. An empty TPKT
    (``03 00 00 04``, the keep-alive GnuGk and H323Plus send on an idle
    connection) is skipped and counted (:attr:`keepalives`).
    """

    def __init__(self, max_size: int = TPKT_MAX_SIZE) -> None:
        self._buffer = bytearray()
        self._max_size = max_size
        self._error: SignallingParseError | None = None
        self.keepalives = 0

    @property
    def pending(self) -> int:
        """Number of buffered bytes that do not yet form a complete TPKT."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data``; return every payload completed by it, in order."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        out: list[bytes] = []
        buf = self._buffer
        while len(buf) >= TPKT_HEADER_SIZE:
            if buf[0] != TPKT_VERSION:
                self._fail(f"TPKT version {buf[0]} is not 3")
            if buf[1] != 0:
                self._fail(f"TPKT reserved byte is {buf[1]}, not 0")
            size = (buf[2] << 8) | buf[3]
            if size == TPKT_HEADER_SIZE:  # an empty TPKT: a keep-alive, nothing to deliver
                self.keepalives += 1
                del buf[:size]
                continue
            if size < TPKT_HEADER_SIZE:
                self._fail(f"TPKT length {size} is shorter than its header")
            if size > self._max_size:
                self._fail(f"TPKT length {size} exceeds the limit of {self._max_size}")
            if len(buf) < size:
                break
            out.append(bytes(buf[TPKT_HEADER_SIZE:size]))
            del buf[:size]
        return out

    def _fail(self, message: str) -> None:
        self._error = SignallingParseError(message)
        self._buffer.clear()
        raise self._error
