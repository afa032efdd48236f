"""Single-recording pairs: bilinear lookup tables, cosines and all-vs-all matrices.

With one recording per side every LR scorer is a `(attributes, 2, 2)` table `T` of log-LRs, so

    score(e, t) = sum_i T[i, e_i, t_i] = c + e.u + t.v + sum_i W_i e_i t_i

with `c = sum T00`, `u = T10 - T00`, `v = T01 - T00`, `W = T11 - T10 - T01 + T00`: bilinear in
the two bit vectors. A list of pairs uses per-recording scalars plus the interaction term read
from 16-bit lookup tables over packed bits (`AND` of the two packed vectors, 16 attributes per
read); an all-vs-all matrix is one matrix product per row block. Each path equals the direct
formula of its scorer to float64 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np

from balr.data.vectors import counts_to_bits
from balr.errors import DataError, ModelError

if TYPE_CHECKING:
    from balr.scoring.base import Scorer

DEFAULT_CHUNK = 1 << 15
BLOCK_ROWS = 2048
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float64)


class Pairs(Protocol):
    """Scores of pairs of rows of one set of single-recording vectors."""

    def score(self, enroll: np.ndarray, test: np.ndarray, chunk: int = DEFAULT_CHUNK):
        """Scores of the pairs `(enroll[j], test[j])` of row indices."""

    def matrix(self, out: np.ndarray | None = None, block_rows: int = BLOCK_ROWS) -> np.ndarray:
        """All-vs-all `(rows, rows)` scores (`out` may be a memory-mapped array)."""


@dataclass(frozen=True)
class BilinearForm:
    """`score(e, t) = offset + e.enroll_weight + t.test_weight + sum(interaction * e * t)`."""

    offset: float
    enroll_weight: np.ndarray
    test_weight: np.ndarray
    interaction: np.ndarray

    @classmethod
    def from_table(cls, table: np.ndarray) -> BilinearForm:
        """Decompose a `(attributes, 2, 2)` log-LR table."""
        t00, t01, t10, t11 = table[:, 0, 0], table[:, 0, 1], table[:, 1, 0], table[:, 1, 1]
        return cls(float(t00.sum()), t10 - t00, t01 - t00, t11 - t10 - t01 + t00)

    def pair_lookup(self) -> np.ndarray:
        """`(byte pairs, 65536)`: interaction summed over the set bits of each 16-bit word.

        Words are read little-endian from the packed bytes (`'<u2'`): byte `2j` is the low
        half. One lookup then covers 16 attributes.
        """
        n_words = -(-len(self.interaction) // 16)
        padded = np.zeros(n_words * 16)
        padded[: len(self.interaction)] = self.interaction
        per_byte = padded.reshape(n_words * 2, 8) @ _BYTE_BITS.T  # (bytes, 256)
        word = np.arange(65536)
        return per_byte[0::2][:, word & 255] + per_byte[1::2][:, word >> 8]


def is_single_recording(vectors: np.ndarray) -> bool:
    """Whether every row is one recording's bits (or `[b, 1 - b]` counts)."""
    vectors = np.asarray(vectors)
    bits = counts_to_bits(vectors) if vectors.ndim == 3 else vectors
    binary = bool(np.all((bits == 0) | (bits == 1)))
    if vectors.ndim == 3:
        binary = binary and bool(np.all(vectors.sum(axis=2) == 1))
    return binary


def as_bits(vectors: np.ndarray) -> np.ndarray:
    """`(recordings, attributes)` uint8 bits from single-recording counts or bits.

    DataError when a vector is not one recording (activation not 0/1 or counts not summing
    to 1): such vectors need the summed-cells path.
    """
    vectors = np.asarray(vectors)
    if not is_single_recording(vectors):
        raise DataError("vectors are not single-recording bit vectors (counts [b, 1 - b])")
    bits = counts_to_bits(vectors) if vectors.ndim == 3 else vectors
    return (bits > 0.5).astype(np.uint8)


def pack_words(bits: np.ndarray) -> np.ndarray:
    """`(rows, ceil(attributes / 16))` little-endian 16-bit words of packed bits."""
    packed = np.packbits(np.asarray(bits).astype(bool), axis=1)
    if packed.shape[1] % 2:
        packed = np.concatenate([packed, np.zeros((len(packed), 1), np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view("<u2")


class BitPairs:
    """Pairs of rows of a bit matrix scored from a `(attributes, 2, 2)` log-LR table."""

    def __init__(self, table: np.ndarray, bits: np.ndarray):
        self.table = table
        self.bits = bits
        self.form = BilinearForm.from_table(table)

    @cached_property
    def _sides(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-row enrollment part (offset included) and test part of the score."""
        form = self.form
        return form.offset + self.bits @ form.enroll_weight, self.bits @ form.test_weight

    @cached_property
    def _lookup(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Packed words of every row, the flat interaction lookup, each word's offset in it."""
        lookup = self.form.pair_lookup()
        offsets = (np.arange(lookup.shape[0]) * 65536).astype(np.intp)
        return pack_words(self.bits), lookup.ravel(), offsets

    def score(self, enroll: np.ndarray, test: np.ndarray, chunk: int = DEFAULT_CHUNK):
        """Scores of pairs given as row indices, `chunk` pairs at a time (bounded memory)."""
        enroll, test = np.asarray(enroll, np.intp), np.asarray(test, np.intp)
        enroll_side, test_side = self._sides
        packed, lookup, word_offsets = self._lookup
        scores = np.empty(len(enroll))
        for start in range(0, len(enroll), chunk):
            e, t = enroll[start : start + chunk], test[start : start + chunk]
            index = np.add(packed[e] & packed[t], word_offsets)  # uint16 + intp -> intp
            interaction = lookup.take(index).sum(axis=1)
            scores[start : start + chunk] = enroll_side[e] + test_side[t] + interaction
        return scores

    def terms(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """`(pairs, attributes)` log-LR terms `T[i, e_i, t_i]` of pairs of row indices."""
        n_attributes = self.table.shape[0]
        index = np.arange(n_attributes, dtype=np.intp) * 4 + 2 * self.bits[enroll].astype(np.intp)
        index += self.bits[test]
        return self.table.reshape(-1).take(index)

    def matrix(self, out: np.ndarray | None = None, block_rows: int = BLOCK_ROWS) -> np.ndarray:
        """All-vs-all `(rows, rows)` log-LRs: one float64 matrix product per row block."""
        form = self.form
        columns = np.asarray(self.bits, dtype=np.float64)
        test_side = columns @ form.test_weight
        if out is None:
            out = np.empty((len(columns), len(columns)))
        for start in range(0, len(columns), block_rows):
            rows = columns[start : start + block_rows]
            block = (rows * form.interaction) @ columns.T
            block += (form.offset + rows @ form.enroll_weight)[:, None]
            block += test_side[None, :]
            out[start : start + len(rows)] = block
        return out


def unit_rows(vectors: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """Rows (last axis) scaled to unit length; a norm below `eps` counts as `eps`, and
    all-zero rows stay zero, so their cosine is 0."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), eps)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


class CosinePairs:
    """Pairs of rows scored by the product, over groups, of their cosine similarities:
    `vectors` is `(n, groups, dim)` (one group for embeddings, two for the activation and
    non-activation columns of BA counts)."""

    def __init__(self, vectors: np.ndarray, eps: float = 0.0):
        self.unit = unit_rows(vectors, eps)

    def score(self, enroll: np.ndarray, test: np.ndarray, chunk: int = DEFAULT_CHUNK):
        """Scores of pairs given as row indices, `chunk` pairs at a time."""
        scores = np.empty(len(enroll))
        for start in range(0, len(enroll), chunk):
            e, t = enroll[start : start + chunk], test[start : start + chunk]
            cosines = np.einsum("igj,igj->ig", self.unit[e], self.unit[t])
            scores[start : start + chunk] = cosines.prod(axis=1)
        return scores

    def matrix(self, out: np.ndarray | None = None, block_rows: int = BLOCK_ROWS) -> np.ndarray:
        """All-vs-all scores, one row block at a time."""
        n, groups = self.unit.shape[:2]
        if out is None:
            out = np.empty((n, n))
        for start in range(0, n, block_rows):
            block = self.unit[start : start + block_rows, 0] @ self.unit[:, 0].T
            for group in range(1, groups):
                block *= self.unit[start : start + block_rows, group] @ self.unit[:, group].T
            out[start : start + block_rows] = block
        return out


def matrix_scores(scorer: Scorer, vectors: np.ndarray, out: np.ndarray | None = None):
    """All-vs-all scores of single-recording vectors (LR scorers) or any vectors (cosine);
    `out` may be a memory-mapped array, so the matrix never has to fit in memory."""
    pairs = scorer.pairs(vectors)
    if pairs is None and is_single_recording(vectors):  # LRScorer.pairs: an infinite term
        raise ModelError(
            f"scorer '{scorer.name}' has an infinite log-LR for an attribute's bit pair (a "
            "probability at exactly 0 or 1): refit it with `balr score train`"
        )
    if pairs is None:
        raise DataError("vectors are not single-recording bit vectors (counts [b, 1 - b])")
    return pairs.matrix(out=out)
