"""Sequence-number and timestamp arithmetic: the one place it lives (RFC 3550 §5.1, A.1).

Re-exports the selected fast-path twin's functions so that every layer uses
the same definitions.
"""

from __future__ import annotations

import secrets

from .._speedups import fastpath

SEQ_MOD: int = fastpath.SEQ_MOD
TS_MOD: int = fastpath.TS_MOD
seq_diff = fastpath.seq_diff
seq_gt = fastpath.seq_gt
ts_diff = fastpath.ts_diff
extend_seq = fastpath.extend_seq

INITIAL_SEQ_LIMIT = 1 << 15


def initial_sequence_number() -> int:
    """A random first RTP sequence number in [1, 2^15) (RFC 3550 §5.1 asks for a random one).

    Half the space, as libwebrtc does: a stream never wraps within its first 32,768
    packets, so an SRTP receiver that missed the first packets cannot guess the
    rollover counter wrong (RFC 3711 §3.3.1) — with the full 16 bits, a sender
    starting at 65530 whose first packets were lost is undecodable for the whole call.
    """
    return secrets.randbelow(INITIAL_SEQ_LIMIT - 1) + 1


__all__ = ["SEQ_MOD", "TS_MOD", "seq_diff", "seq_gt", "ts_diff", "extend_seq", "initial_sequence_number",
           "INITIAL_SEQ_LIMIT"]
