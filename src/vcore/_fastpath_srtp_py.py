"""Pure-Python twin of ``vcore._fastpath_srtp`` (see ``_fastpath_srtp.pyx``).

The SRTP/SRTCP packet kernels: RTP/RTCP header scanning, counter blocks and
nonces, keystream application, rollover-counter estimation, replay windows,
tag comparison and per-SSRC bookkeeping. The cryptographic primitives are
handed in by ``vcore.srtp`` (objects from the ``cryptography`` package): an
AES-ECB encryptor context that turns counter blocks into AES-CM keystream, a
keyed HMAC-SHA1 template, or an ``AESGCM`` object. Nothing here implements a
cipher or a hash.

Same names, results, exceptions and messages as the compiled twin. Messages
never contain key material.
"""

from __future__ import annotations

import hmac as _hmac
from typing import Any

from cryptography.exceptions import InvalidTag

from .errors import ParseError, SrtpAuthError, SrtpLimitError, SrtpReplayError

# Cipher kinds (RFC 3711 §4.1.1 AES-CM, RFC 7714 AES-GCM, RFC 3711 §4.1.3 NULL)
CIPHER_NULL = 0
CIPHER_AES_CM = 1
CIPHER_AES_GCM = 2

# Replay check results
REPLAY_OK = 0
REPLAY_SEEN = 1
REPLAY_TOO_OLD = 2

MIN_WINDOW = 64  # RFC 3711 §3.3.2: SRTP-WS MUST be at least 64
MAX_WINDOW = 32768  # half the 16-bit sequence space (libsrtp's bound too)

SRTP_INDEX_MAX = (1 << 48) - 1  # RFC 3711 §3.3.1: 48-bit packet index
# A new SSRC (no packet authenticated yet) whose first packet fails under its estimated ROC and
# has SEQ below this ("right after a wrap") is tried once more under ROC + 1 (RFC 3711 §3.3.1).
ROC_PROBE_SEQ_LIMIT = 0x8000
SRTCP_INDEX_MAX = (1 << 31) - 1  # RFC 3711 §3.4: 31-bit SRTCP index
SRTCP_E_BIT = 0x80000000  # RFC 3711 §3.4: E flag in front of the index

RTP_HEADER_MIN = 12  # RFC 3550 §5.1
RTCP_HEADER_MIN = 8  # RFC 3550 §6.4.1: V/P/RC, PT, length, SSRC
MAX_PACKET = 65535 + 64  # a UDP datagram plus trailer room: keystream stays < 2^16 blocks
GCM_TAG_LEN = 16  # RFC 7714 §12


def rtp_header_length(packet: bytes) -> int:
    """Length of the RTP header (fixed part, CSRCs, extension) that SRTP leaves in clear.

    Raises ``ParseError`` for a packet shorter than its header or not RTP version 2.
    """
    n = len(packet)
    if n < RTP_HEADER_MIN:
        raise ParseError(f"RTP packet too short ({n} bytes, header needs 12)")
    b0 = packet[0]
    if b0 >> 6 != 2:
        raise ParseError(f"not an RTP version 2 packet (version {b0 >> 6})")
    hlen = RTP_HEADER_MIN + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if n < hlen + 4:
            raise ParseError(f"RTP packet too short for its header extension ({n} bytes)")
        hlen += 4 + 4 * ((packet[hlen + 2] << 8) | packet[hlen + 3])
    if n < hlen:
        raise ParseError(f"RTP packet too short for its header ({n} bytes, header {hlen})")
    return hlen


def estimate_index(seq: int, highest: int) -> int:
    """RFC 3711 Appendix A: the 48-bit index of ``seq`` given the highest index seen.

    ``highest`` is ``ROC << 16 | s_l``. A guess below ROC 0 stays at ROC 0 (libsrtp does
    the same for streams whose first packets are near the wrap). The result may exceed
    ``SRTP_INDEX_MAX`` when the ROC would wrap; callers refuse such packets.
    """
    roc = highest >> 16
    s_l = highest & 0xFFFF
    if s_l < 0x8000:
        if seq - s_l > 0x8000 and roc > 0:
            roc -= 1
    elif s_l - 0x8000 > seq:
        roc += 1
    return (roc << 16) | seq


class ReplayWindow:
    """Sliding replay window (RFC 3711 §3.3.2) over packet indices.

    ``size`` indices back from the highest one seen are remembered; older ones are
    too old. Not thread-safe.
    """

    __slots__ = ("_bits", "_size", "highest")

    def __init__(self, size: int = 128) -> None:
        if not MIN_WINDOW <= size <= MAX_WINDOW:
            raise ValueError(f"replay window must be {MIN_WINDOW}..{MAX_WINDOW} packets, not {size}")
        self._size = size
        self._bits = 0
        self.highest = -1

    @property
    def size(self) -> int:
        return self._size

    def copy(self) -> ReplayWindow:
        """An independent window in the same state."""
        w = ReplayWindow(self._size)
        w._bits, w.highest = self._bits, self.highest
        return w

    def check(self, index: int) -> int:
        """``REPLAY_OK``, ``REPLAY_SEEN`` or ``REPLAY_TOO_OLD`` for ``index``; changes nothing."""
        h = self.highest
        if h < 0 or index > h:
            return REPLAY_OK
        d = h - index
        if d >= self._size:
            return REPLAY_TOO_OLD
        if (self._bits >> d) & 1:
            return REPLAY_SEEN
        return REPLAY_OK

    def add(self, index: int) -> None:
        """Record ``index`` as received (after it authenticated)."""
        h = self.highest
        if h < 0:
            self._bits = 1
            self.highest = index
        elif index > h:
            d = index - h
            self._bits = ((self._bits << d) | 1) & ((1 << self._size) - 1) if d < self._size else 1
            self.highest = index
        elif h - index < self._size:
            self._bits |= 1 << (h - index)


class KeyUsage:
    """Packets counted against one master key's limit (RFC 3711 §9.2), shared by both
    directions of a session. Not thread-safe."""

    __slots__ = ("count", "limit", "what")

    def __init__(self, limit: int, what: str) -> None:
        self.count = 0
        self.limit = limit
        self.what = what

    def _check(self, n: int) -> None:
        if self.count + n > self.limit:
            raise SrtpLimitError(
                f"master key reached its limit of {self.limit} {self.what} packets "
                "(RFC 3711 §9.2); re-key the session"
            )


def _xor(data: bytes | memoryview, keystream: bytes) -> bytes:
    n = len(data)
    if n == 0:
        return b""
    return (int.from_bytes(data, "big") ^ int.from_bytes(keystream[:n], "big")).to_bytes(n, "big")


def _index_limit_error(ssrc: int) -> SrtpLimitError:
    return SrtpLimitError(
        f"SRTP index of SSRC 0x{ssrc:08x} would pass 2^48 (rollover counter exhausted); re-key"
    )


def _cm_iv(salt: bytes, ssrc: int, index: int) -> int:
    """RFC 3711 §4.1.1: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16), as an integer."""
    return (int.from_bytes(salt, "big") << 16) ^ (ssrc << 64) ^ (index << 16)


def _gcm_nonce(salt: bytes, ssrc: int, index: int) -> bytes:
    """RFC 7714 §8.1 / §9.1: (00 00 || SSRC || ROC || SEQ) or (00 00 || SSRC || 00 00 || 0 ||
    SRTCP index), XOR the 12-octet session salt: both are ``SSRC * 2^48 + index``."""
    return (((ssrc << 48) | index) ^ int.from_bytes(salt, "big")).to_bytes(12, "big")


def _reuse_error(ssrc: int, index: int) -> SrtpReplayError:
    return SrtpReplayError(
        f"refusing to protect SRTP index {index} of SSRC 0x{ssrc:08x} again: its keystream is used (RFC 3711 §9.1)"
    )


class SrtpTransform:
    """One direction (protect or unprotect) of SRTP or SRTCP under one master key.

    ``cipher`` is ``CIPHER_AES_CM`` (``crypto`` an AES-ECB encryptor context), ``CIPHER_AES_GCM``
    (``crypto`` an ``AESGCM``) or ``CIPHER_NULL`` (``crypto`` is None). ``mac`` is a keyed
    ``cryptography`` HMAC-SHA1 template (None for GCM). Per-SSRC state is created on the first
    packet protected, or on the first authentic packet received. Not thread-safe.
    """

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
    ) -> None:
        if cipher == CIPHER_AES_GCM:
            if len(salt) != 12:
                raise ValueError("AES-GCM needs a 12-octet session salt")
            tag_len = GCM_TAG_LEN
        elif len(salt) != 14:
            raise ValueError("AES-CM needs a 14-octet session salt")
        if not MIN_WINDOW <= window <= MAX_WINDOW:
            raise ValueError(f"replay window must be {MIN_WINDOW}..{MAX_WINDOW} packets, not {window}")
        self._rtcp = rtcp
        self._cipher = cipher
        self._crypto = crypto
        self._salt = bytes(salt)
        self._mac = mac
        self._tag_len = tag_len
        self._mki = bytes(mki)
        self._window = window
        self._usage = usage
        self._streams: dict[int, ReplayWindow] = {}
        self._pending: dict[int, int] = {}  # ssrc -> index to start from (ROC set before 1st packet)
        self.packets = 0
        self.auth_failures = 0
        self.replays = 0

    # -- bookkeeping -----------------------------------------------------------------
    @property
    def ssrcs(self) -> list[int]:
        """SSRCs with a stream context in this direction."""
        return sorted(self._streams)

    def roc(self, ssrc: int) -> int | None:
        """The rollover counter of ``ssrc`` (SRTP), or its highest SRTCP index; None if unknown."""
        w = self._streams.get(ssrc)
        if w is None:
            return None
        return w.highest if self._rtcp else w.highest >> 16

    def set_roc(self, ssrc: int, roc: int) -> None:
        """Set the rollover counter of ``ssrc`` (RFC 3711 §3.3.1: signalled out of band).

        For an SRTCP transform, sets the next SRTCP index to send instead.
        """
        if self._rtcp:
            if not 0 <= roc <= SRTCP_INDEX_MAX + 1:
                raise ValueError("SRTCP index must be in 0..2^31")
            w = self._streams.get(ssrc)
            if w is None:
                self._pending[ssrc] = roc
            else:
                w.highest = roc - 1
            return
        if not 0 <= roc <= 0xFFFFFFFF:
            raise ValueError("ROC must be a 32-bit unsigned integer")
        w = self._streams.get(ssrc)
        if w is None:
            self._pending[ssrc] = roc << 16
        else:
            w.highest = (roc << 16) | (w.highest & 0xFFFF)

    def _tag(self, data: bytes | memoryview, trailer: bytes) -> bytes:
        h = self._mac.copy()
        h.update(data)
        if trailer:
            h.update(trailer)
        tag: bytes = h.finalize()
        return tag[: self._tag_len]

    def _keystream(self, ssrc: int, index: int, n: int) -> bytes:
        iv = _cm_iv(self._salt, ssrc, index)
        nblocks = (n + 15) >> 4
        blocks = b"".join(((iv + i) & ((1 << 128) - 1)).to_bytes(16, "big") for i in range(nblocks))
        out: bytes = self._crypto.update(blocks)
        return out

    def _replay_error(self, ssrc: int, index: int, result: int) -> SrtpReplayError:
        self.replays += 1
        kind = "SRTCP" if self._rtcp else "SRTP"
        if result == REPLAY_SEEN:
            return SrtpReplayError(f"replayed {kind} packet (SSRC 0x{ssrc:08x}, index {index})")
        return SrtpReplayError(
            f"{kind} packet too old for the replay window (SSRC 0x{ssrc:08x}, index {index})"
        )

    def _auth_error(self) -> SrtpAuthError:
        self.auth_failures += 1
        return SrtpAuthError(f"{'SRTCP' if self._rtcp else 'SRTP'} authentication failed")

    # -- SRTP ------------------------------------------------------------------------
    def _next_index(self, ssrc: int, seq: int) -> int:
        w = self._streams.get(ssrc)
        if w is None:
            pend = self._pending.get(ssrc)
            index = seq if pend is None else pend | seq
        else:
            index = estimate_index(seq, w.highest)
        if index > SRTP_INDEX_MAX:
            raise _index_limit_error(ssrc)
        return index

    def _commit(self, ssrc: int, index: int) -> None:
        w = self._streams.get(ssrc)
        if w is None:
            w = self._streams[ssrc] = ReplayWindow(self._window)
            self._pending.pop(ssrc, None)
        w.add(index)

    def _protect_one(self, packet: bytes, ssrc: int, index: int, hlen: int) -> bytes:
        header = packet[:hlen]
        payload = packet[hlen:]
        if self._cipher == CIPHER_AES_GCM:
            nonce = _gcm_nonce(self._salt, ssrc, index)
            out: bytes = header + self._crypto.encrypt(nonce, payload, header) + self._mki
            return out
        if self._cipher == CIPHER_AES_CM:
            payload = _xor(payload, self._keystream(ssrc, index, len(payload)))
        body = header + payload
        return body + self._mki + self._tag(body, ((index >> 16) & 0xFFFFFFFF).to_bytes(4, "big"))

    def _scan(self, packet: bytes) -> tuple[int, int, int]:
        packet = bytes(packet)
        if len(packet) > MAX_PACKET:
            raise ParseError(f"RTP packet too long ({len(packet)} bytes)")
        hlen = rtp_header_length(packet)
        return hlen, (packet[2] << 8) | packet[3], int.from_bytes(packet[8:12], "big")

    def _check_fresh(self, ssrc: int, index: int) -> None:
        """Refuse to protect an index already used (or older than the window): it would repeat a keystream."""
        w = self._streams.get(ssrc)
        if w is not None and w.check(index) != REPLAY_OK:
            raise _reuse_error(ssrc, index)

    def protect(self, packet: bytes) -> bytes:
        """SRTP-protect one RTP packet (RFC 3711 §3.3); a repeated index is refused (:class:`SrtpReplayError`)."""
        packet = bytes(packet)
        hlen, seq, ssrc = self._scan(packet)
        self._usage._check(1)
        index = self._next_index(ssrc, seq)
        self._check_fresh(ssrc, index)
        out = self._protect_one(packet, ssrc, index, hlen)
        self._commit(ssrc, index)
        self._usage.count += 1
        self.packets += 1
        return out

    def protect_many(self, packets: list[bytes]) -> list[bytes]:
        """``[protect(p) for p in packets]``, checked first so that a bad packet changes nothing."""
        plan = []
        highest: dict[int, int] = {}
        trial: dict[int, ReplayWindow] = {}  # SSRC -> a copy of its window, advanced as protect() would
        for p in packets:
            p = bytes(p)
            hlen, seq, ssrc = self._scan(p)
            if ssrc in highest:
                index = estimate_index(seq, highest[ssrc])
                if index > SRTP_INDEX_MAX:
                    raise _index_limit_error(ssrc)
            else:
                # first packet of this SSRC in the batch: number it as protect() would
                index = self._next_index(ssrc, seq)
                w = self._streams.get(ssrc)
                highest[ssrc] = w.highest if w is not None else -1
            highest[ssrc] = max(highest[ssrc], index)
            tw = trial.get(ssrc)
            if tw is None:
                w = self._streams.get(ssrc)
                tw = trial[ssrc] = w.copy() if w is not None else ReplayWindow(self._window)
            if tw.check(index) != REPLAY_OK:
                raise _reuse_error(ssrc, index)
            tw.add(index)
            plan.append((p, hlen, ssrc, index))
        self._usage._check(len(plan))
        out = [self._protect_one(p, ssrc, index, hlen) for p, hlen, ssrc, index in plan]
        for _, _, ssrc, index in plan:
            self._commit(ssrc, index)
        self._usage.count += len(plan)
        self.packets += len(plan)
        return out

    def _open(self, packet: bytes, hlen: int, end: int, ssrc: int, index: int) -> bytes | None:
        """Authenticate and decrypt one SRTP packet under ``index``: the RTP packet, or None if
        the tag does not verify. Changes nothing."""
        header = packet[:hlen]
        if self._cipher == CIPHER_AES_GCM:
            nonce = _gcm_nonce(self._salt, ssrc, index)
            try:
                plain: bytes = self._crypto.decrypt(nonce, packet[hlen : end + GCM_TAG_LEN], header)
            except InvalidTag:
                return None
            return header + plain
        body = packet[:end]
        tag = packet[len(packet) - self._tag_len :]
        expected = self._tag(body, ((index >> 16) & 0xFFFFFFFF).to_bytes(4, "big"))
        if not _hmac.compare_digest(expected, tag):
            return None
        if self._cipher == CIPHER_AES_CM:
            payload = packet[hlen:end]
            return header + _xor(payload, self._keystream(ssrc, index, len(payload)))
        return body

    def unprotect(self, packet: bytes) -> bytes:
        """Verify and decrypt one SRTP packet (RFC 3711 §3.3); state moves only on success.

        A packet of an SSRC with no authenticated packet yet that fails under its estimated
        index (ROC 0, or the ROC given to ``set_roc``) and has SEQ < ``ROC_PROBE_SEQ_LIMIT`` is
        tried once more under ROC + 1: the sender may have wrapped before the receiver's first
        packet (RFC 3711 §3.3.1). If that verifies, the stream starts there.
        """
        packet = bytes(packet)
        hlen, seq, ssrc = self._scan(packet)
        trailer = self._tag_len + len(self._mki)
        end = len(packet) - trailer
        if end < hlen:
            raise ParseError(f"SRTP packet too short ({len(packet)} bytes) for header and tag")
        w = self._streams.get(ssrc)
        index = self._next_index(ssrc, seq)
        if w is not None:
            r = w.check(index)
            if r != REPLAY_OK:
                raise self._replay_error(ssrc, index, r)
        if self._mki and packet[end + (self._tag_len if self._cipher == CIPHER_AES_GCM else 0):][
            : len(self._mki)
        ] != self._mki:
            raise self._auth_error()
        out = self._open(packet, hlen, end, ssrc, index)
        if out is None:
            # one more try, only for a stream not established yet, right after a wrap
            if w is not None or seq >= ROC_PROBE_SEQ_LIMIT or index >> 16 >= 0xFFFFFFFF:
                raise self._auth_error()
            index += 0x10000
            out = self._open(packet, hlen, end, ssrc, index)
            if out is None:
                raise self._auth_error()
        self._usage._check(1)
        self._commit(ssrc, index)
        self._usage.count += 1
        self.packets += 1
        return out

    # -- SRTCP -----------------------------------------------------------------------
    @staticmethod
    def _scan_rtcp(packet: bytes) -> int:
        n = len(packet)
        if n < RTCP_HEADER_MIN:
            raise ParseError(f"RTCP packet too short ({n} bytes, header needs 8)")
        if n > MAX_PACKET:
            raise ParseError(f"RTCP packet too long ({n} bytes)")
        if packet[0] >> 6 != 2:
            raise ParseError(f"not an RTCP version 2 packet (version {packet[0] >> 6})")
        return int.from_bytes(packet[4:8], "big")

    def protect_rtcp(self, packet: bytes) -> bytes:
        """SRTCP-protect one compound RTCP packet (RFC 3711 §3.4, RFC 7714 §9)."""
        packet = bytes(packet)
        ssrc = self._scan_rtcp(packet)
        w = self._streams.get(ssrc)
        index = w.highest + 1 if w is not None else self._pending.get(ssrc, 0)
        if index > SRTCP_INDEX_MAX:
            raise SrtpLimitError(f"SRTCP index of SSRC 0x{ssrc:08x} would pass 2^31; re-key")
        self._usage._check(1)
        header = packet[:8]
        body = packet[8:]
        if self._cipher == CIPHER_AES_GCM:
            eidx = (SRTCP_E_BIT | index).to_bytes(4, "big")
            nonce = _gcm_nonce(self._salt, ssrc, index)
            sealed: bytes = self._crypto.encrypt(nonce, body, header + eidx)
            out = header + sealed + eidx + self._mki
        else:
            if self._cipher == CIPHER_AES_CM:
                eidx = (SRTCP_E_BIT | index).to_bytes(4, "big")
                body = _xor(body, self._keystream(ssrc, index, len(body)))
            else:
                eidx = index.to_bytes(4, "big")
            authed = header + body + eidx
            out = authed + self._mki + self._tag(authed, b"")
        if w is None:
            w = self._streams[ssrc] = ReplayWindow(self._window)
            self._pending.pop(ssrc, None)
        w.add(index)
        self._usage.count += 1
        self.packets += 1
        return out

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        """Verify and decrypt one SRTCP packet; state moves only on success."""
        packet = bytes(packet)
        ssrc = self._scan_rtcp(packet)
        mki_len = len(self._mki)
        n = len(packet)
        gcm = self._cipher == CIPHER_AES_GCM
        if gcm:
            if n < RTCP_HEADER_MIN + GCM_TAG_LEN + 4 + mki_len:
                raise ParseError(f"SRTCP packet too short ({n} bytes) for its trailer")
            e_at = n - mki_len - 4
        else:
            if n < RTCP_HEADER_MIN + 4 + mki_len + self._tag_len:
                raise ParseError(f"SRTCP packet too short ({n} bytes) for its trailer")
            e_at = n - self._tag_len - mki_len - 4
        eidx = packet[e_at : e_at + 4]
        word = int.from_bytes(eidx, "big")
        index = word & SRTCP_INDEX_MAX
        encrypted = bool(word & SRTCP_E_BIT)
        w = self._streams.get(ssrc)
        if w is not None:
            r = w.check(index)
            if r != REPLAY_OK:
                raise self._replay_error(ssrc, index, r)
        if mki_len and packet[e_at + 4 : e_at + 4 + mki_len] != self._mki:
            raise self._auth_error()
        header = packet[:8]
        if gcm:
            nonce = _gcm_nonce(self._salt, ssrc, index)
            try:
                if encrypted:
                    opened: bytes = self._crypto.decrypt(nonce, packet[8:e_at], header + eidx)
                    out = header + opened
                else:
                    tag_at = e_at - GCM_TAG_LEN
                    self._crypto.decrypt(nonce, packet[tag_at:e_at], packet[:tag_at] + eidx)
                    out = packet[:tag_at]
            except InvalidTag:
                raise self._auth_error() from None
        else:
            tag = packet[n - self._tag_len :]
            if not _hmac.compare_digest(self._tag(packet[: e_at + 4], b""), tag):
                raise self._auth_error()
            body = packet[8:e_at]
            if encrypted and self._cipher == CIPHER_AES_CM:
                body = _xor(body, self._keystream(ssrc, index, len(body)))
            out = header + body
        self._usage._check(1)
        if w is None:
            w = self._streams[ssrc] = ReplayWindow(self._window)
        w.add(index)
        self._usage.count += 1
        self.packets += 1
        return out


def cm_keystream(crypto: Any, salt: bytes, ssrc: int, index: int, length: int) -> bytes:
    """AES-CM keystream (RFC 3711 §4.1.1) of ``length`` octets for one packet."""
    iv = _cm_iv(salt, ssrc, index)
    nblocks = (length + 15) >> 4
    blocks = b"".join(((iv + i) & ((1 << 128) - 1)).to_bytes(16, "big") for i in range(nblocks))
    out: bytes = crypto.update(blocks)
    return out[:length]
