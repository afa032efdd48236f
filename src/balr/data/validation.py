"""Checks on vectors as they are read: finite values, BA vectors that are counts or bits,
and one shape per kind within a dataset.

A BA vector is `(K, 2)` counts `[activations, non-activations]` (non-negative integers whose
two columns sum to the same number of recordings for every attribute: 1 for one recording)
or `(K,)` bits in {0, 1}. An embedding only has to be finite. A problem is described as
`BadVector` (the item, the file or store holding it, what is wrong).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

#: store rows checked at once (bounds the temporary arrays of a large memory-mapped store)
CHECK_ROWS = 1024


@dataclass(frozen=True)
class BadVector:
    """One unusable vector: `item_id`, where it was read (`source`), and the `problem`."""

    item_id: str
    source: str
    problem: str

    def __str__(self) -> str:
        return f"{self.source}: {self.problem}"


def describe_bad(bad: list[BadVector], limit: int = 3) -> str:
    """`N bad vectors (a: problem; b: problem; ...)`, the first `limit` listed."""
    listed = "; ".join(str(b) for b in bad[:limit])
    more = f"; {len(bad) - limit} more" if len(bad) > limit else ""
    return f"{len(bad)} bad vector{'s' if len(bad) != 1 else ''} ({listed}{more})"


def vector_problem(vector: np.ndarray, kind: str) -> str | None:
    """What is wrong with one vector as read from its file (None if nothing): `kind` is
    `emb` or `ba` (bits `(K,)` or counts `(K, 2)`; other shapes are reported elsewhere)."""
    vector = np.asarray(vector)
    if not _real(vector.dtype):
        return f"holds {vector.dtype} values, not real numbers"
    finite = np.isfinite(vector)
    if not finite.all():
        return f"{int((~finite).sum())} non-finite values (NaN/inf)"
    if kind != "ba":
        return None
    if vector.ndim == 1:
        return _first_cell(vector, (vector != 0) & (vector != 1), "bits must be 0 or 1")
    if vector.ndim == 2 and vector.shape[1] == 2 and len(vector):
        wrong = (vector < 0) | (vector != np.floor(vector))
        if wrong.any():
            return _first_cell(vector, wrong, "counts must be non-negative integers")
        return _recordings_problem(vector.sum(axis=1))
    return None


def _real(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.complexfloating)


def _first_cell(vector: np.ndarray, wrong: np.ndarray, rule: str) -> str | None:
    """`BA vector holds V at attribute A (rule)` for the first wrong cell, if any."""
    if not wrong.any():
        return None
    cell = np.argwhere(wrong)[0]
    return f"BA vector holds {vector[tuple(cell)]:g} at attribute {cell[0]} ({rule})"


def _recordings_problem(totals: np.ndarray) -> str | None:
    """Every attribute of a count vector must count the same recordings, at least one."""
    differs = np.flatnonzero(totals != totals[0])
    if differs.size:
        a = differs[0]
        return (
            f"BA vector counts {totals[a]:g} recordings at attribute {a} but {totals[0]:g} at "
            "attribute 0 (each row [activations, non-activations] counts the same recordings)"
        )
    if totals[0] <= 0:
        return "BA vector counts no recording (all counts are 0)"
    return None


def bad_rows(rows: np.ndarray, kind: str) -> np.ndarray:
    """Boolean mask of the rows of a stacked `(n, ...)` array that `vector_problem` rejects,
    computed a block of rows at a time."""
    mask = np.zeros(len(rows), bool)
    for start in range(0, len(rows), CHECK_ROWS):
        block = np.asarray(rows[start : start + CHECK_ROWS])
        mask[start : start + len(block)] = _bad_block(block, kind)
    return mask


def _bad_block(block: np.ndarray, kind: str) -> np.ndarray:
    if not _real(block.dtype):
        return np.ones(len(block), bool)
    if kind != "ba":
        return ~np.isfinite(block).all(axis=tuple(range(1, block.ndim)))
    if block.ndim == 2:  # bits (NaN fails both comparisons)
        return ~((block == 0) | (block == 1)).all(axis=1)
    activations = block[..., 0]
    totals = activations + block[..., 1]
    one = ((totals == 1) & ((activations == 0) | (activations == 1))).all(axis=1)
    if one.all():  # the usual case: every row one recording's [b, 1 - b]
        return ~one
    bad = ~one
    rest = block[bad]
    with np.errstate(invalid="ignore"):
        wrong = ~np.isfinite(rest) | (rest < 0) | (rest != np.floor(rest))
        sums = totals[bad]
        uneven = (sums != sums[:, :1]).any(axis=1) | (sums[:, 0] <= 0)
    bad[bad] = wrong.any(axis=(1, 2)) | uneven
    return bad


def majority_shape(counts: Counter, prefer: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The shape most vectors have (`counts`: shape -> number of vectors); on a tie
    `prefer` if it is among the tied, else the shape counted first."""
    top = max(counts.values())
    tied = [shape for shape, n in counts.items() if n == top]
    return prefer if prefer in tied else tied[0]
