"""Sequence-number and timestamp arithmetic: the one place it lives (RFC 3550 §5.1, A.1).

Re-exports the selected fast-path twin's functions so that every layer uses
the same definitions.
"""

from __future__ import annotations

from .._speedups import fastpath

SEQ_MOD: int = fastpath.SEQ_MOD
TS_MOD: int = fastpath.TS_MOD
seq_diff = fastpath.seq_diff
seq_gt = fastpath.seq_gt
ts_diff = fastpath.ts_diff
extend_seq = fastpath.extend_seq

__all__ = ["SEQ_MOD", "TS_MOD", "seq_diff", "seq_gt", "ts_diff", "extend_seq"]
