"""VISCA camera control: protocol, serial and IP transports, camera emulator.

>>> cam = await ViscaCamera.open_serial("/dev/ttyUSB0", baudrate=9600, address=1)  # doctest: +SKIP
>>> await cam.preset_recall(2)  # doctest: +SKIP

See ``docs/visca.md`` for the protocol notes.
"""

from __future__ import annotations

from .camera import CameraVersion, ViscaCamera
from .emulator import CameraEmulator, SimulatedCamera
from .errors import (
    CameraBufferFull,
    CameraCancelled,
    CameraConnectionError,
    CameraError,
    CameraMessageLengthError,
    CameraNoSocket,
    CameraNotExecutable,
    CameraProtocolError,
    CameraReplyError,
    CameraSyntaxError,
    CameraTimeout,
    CameraValueError,
)
from .protocol import SONY_TABLE, CommandSpec, CommandTable, Field, Reply, ReplyKind, parse_reply
from .transport import VISCA_IP_PORT, SerialTransport, UdpTransport, ViscaTransport

__all__ = [
    "ViscaCamera",
    "CameraVersion",
    "CameraEmulator",
    "SimulatedCamera",
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
    "SONY_TABLE",
    "CommandTable",
    "CommandSpec",
    "Field",
    "Reply",
    "ReplyKind",
    "parse_reply",
    "ViscaTransport",
    "SerialTransport",
    "UdpTransport",
    "VISCA_IP_PORT",
]
