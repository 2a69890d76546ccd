"""The CameraError family: everything ``vcore.visca`` raises on purpose.

Reply errors carry the VISCA error code (``code``) and the socket the camera named
(``socket``). After any of them the :class:`~vcore.visca.ViscaCamera` stays usable.
"""

from __future__ import annotations

from ..errors import ParseError, VcoreError

__all__ = [
    "CameraError",
    "CameraTimeout",
    "CameraConnectionError",
    "CameraValueError",
    "CameraProtocolError",
    "CameraReplyError",
    "CameraMessageLengthError",
    "CameraSyntaxError",
    "CameraBufferFull",
    "CameraCancelled",
    "CameraNoSocket",
    "CameraNotExecutable",
    "ERROR_CLASSES",
    "error_for_code",
]


class CameraError(VcoreError):
    """Base class of every VISCA camera error."""


class CameraTimeout(CameraError, TimeoutError):
    """No reply (acknowledge, completion or inquiry answer) in time."""


class CameraConnectionError(CameraError, ConnectionError):
    """The port could not be opened, or the camera went away (unplugged, closed)."""


class CameraValueError(CameraError, ValueError):
    """A command parameter is out of range, or a command is unknown to the table."""


class CameraProtocolError(CameraError, ParseError):
    """A reply that does not follow VISCA (garbage, wrong length, unexpected kind)."""


class CameraReplyError(CameraError):
    """The camera answered with a VISCA error reply (``z0 6y ee FF``)."""

    code: int = 0
    description: str = "camera error"

    def __init__(self, code: int, socket: int = 0, message: str | None = None) -> None:
        self.code = code
        self.socket = socket
        super().__init__(message or f"{self.description} (VISCA error 0x{code:02x}, socket {socket})")


class CameraMessageLengthError(CameraReplyError):
    """Error 01: the message was too long (over 16 bytes)."""

    description = "message length error"


class CameraSyntaxError(CameraReplyError):
    """Error 02: the camera did not understand the command or a parameter is out of range."""

    description = "syntax error"


class CameraBufferFull(CameraReplyError):
    """Error 03: both command sockets are busy; the command was not executed (safe to retry)."""

    description = "command buffer full"


class CameraCancelled(CameraReplyError):
    """Error 04: the command was cancelled (command cancel, IF_Clear, or superseded)."""

    description = "command cancelled"


class CameraNoSocket(CameraReplyError):
    """Error 05: cancel named a socket with no command in it."""

    description = "no socket"


class CameraNotExecutable(CameraReplyError):
    """Error 41: the command cannot run in the current state (power off, limits, ...)."""

    description = "command not executable"


ERROR_CLASSES: dict[int, type[CameraReplyError]] = {
    0x01: CameraMessageLengthError,
    0x02: CameraSyntaxError,
    0x03: CameraBufferFull,
    0x04: CameraCancelled,
    0x05: CameraNoSocket,
    0x41: CameraNotExecutable,
}


def error_for_code(code: int, socket: int = 0) -> CameraReplyError:
    """The exception instance for a VISCA error reply code (unknown codes give CameraReplyError)."""
    cls = ERROR_CLASSES.get(code, CameraReplyError)
    return cls(code, socket)
