"""Typed face of the SRTP kernels (``_fastpath_srtp`` and its twin ``_fastpath_srtp_py``)."""

from typing import Any

CIPHER_NULL: int
CIPHER_AES_CM: int
CIPHER_AES_GCM: int
REPLAY_OK: int
REPLAY_SEEN: int
REPLAY_TOO_OLD: int
MIN_WINDOW: int
MAX_WINDOW: int
SRTP_INDEX_MAX: int
ROC_PROBE_SEQ_LIMIT: int
SRTCP_INDEX_MAX: int
SRTCP_E_BIT: int
RTP_HEADER_MIN: int
RTCP_HEADER_MIN: int
MAX_PACKET: int
GCM_TAG_LEN: int

def rtp_header_length(packet: bytes) -> int: ...
def estimate_index(seq: int, highest: int) -> int: ...
def cm_keystream(crypto: Any, salt: bytes, ssrc: int, index: int, length: int) -> bytes: ...

class ReplayWindow:
    highest: int
    def __init__(self, size: int = ...) -> None: ...
    @property
    def size(self) -> int: ...
    def check(self, index: int) -> int: ...
    def add(self, index: int) -> None: ...
    def copy(self) -> ReplayWindow: ...

class KeyUsage:
    count: int
    limit: int
    what: str
    def __init__(self, limit: int, what: str) -> None: ...

class SrtpTransform:
    packets: int
    auth_failures: int
    replays: int
    def __init__(
        self,
        rtcp: bool,
        cipher: int,
        crypto: Any,
        salt: bytes,
        mac: Any,
        tag_len: int,
        mki: bytes,
        window: int,
        usage: KeyUsage,
    ) -> None: ...
    @property
    def ssrcs(self) -> list[int]: ...
    def roc(self, ssrc: int) -> int | None: ...
    def set_roc(self, ssrc: int, roc: int) -> None: ...
    def protect(self, packet: bytes) -> bytes: ...
    def protect_many(self, packets: list[bytes]) -> list[bytes]: ...
    def unprotect(self, packet: bytes) -> bytes: ...
    def protect_rtcp(self, packet: bytes) -> bytes: ...
    def unprotect_rtcp(self, packet: bytes) -> bytes: ...
