"""Fast scoring paths; each equals the direct formula of its scorer (to float64 rounding).

With one recording per side every LR scorer is a `(attributes, 2, 2)` table `T` of log-LRs, so

    score(e, t) = sum_i T[i, e_i, t_i] = c + e.u + t.v + sum_i W_i e_i t_i

with `c = sum T00`, `u = T10 - T00`, `v = T01 - T00`, `W = T11 - T10 - T01 + T00`: bilinear in
the two bit vectors. Trial lists use per-recording scalars plus the interaction term read from
16-bit lookup tables over packed bits (`AND` of the two packed vectors, 16 attributes
per read);
an all-vs-all matrix is one matrix product. Several recordings per side (MaxLLR, Beta) read
per-attribute tables of the log marginal over small counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from balr.errors import DataError, TrialsError
from balr.scoring.base import LRScorer, MarginalScorer, Scorer, as_counts
from balr.scoring.cosine import CosineScorer, unit_rows
from balr.scoring.typicality import TypicalityScorer

DEFAULT_CHUNK = 1 << 15
MAX_TABLE_COUNT = 256
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float64)


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


def as_bits(vectors: np.ndarray) -> np.ndarray:
    """`(recordings, attributes)` uint8 bits from single-recording counts or bits.

    DataError when a vector is not one recording (activation not 0/1 or counts not summing
    to 1): such vectors need the count path.
    """
    vectors = np.asarray(vectors)
    bits = vectors[..., 0] if vectors.ndim == 3 else vectors
    if not is_single_recording(vectors):
        raise DataError("vectors are not single-recording bit vectors (counts [b, 1 - b])")
    return (bits > 0.5).astype(np.uint8)


def is_single_recording(vectors: np.ndarray) -> bool:
    """Whether every row is one recording's bits (or `[b, 1 - b]` counts)."""
    vectors = np.asarray(vectors)
    bits = vectors[..., 0] if vectors.ndim == 3 else vectors
    binary = bool(np.all((bits == 0) | (bits == 1)))
    if vectors.ndim == 3:
        binary = binary and bool(np.all(vectors.sum(axis=2) == 1))
    return binary


def pack_words(bits: np.ndarray) -> np.ndarray:
    """`(rows, ceil(attributes / 16))` little-endian 16-bit words of packed bits."""
    packed = np.packbits(np.asarray(bits).astype(bool), axis=1)
    if packed.shape[1] % 2:
        packed = np.concatenate([packed, np.zeros((len(packed), 1), np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view("<u2")


class PairScorer:
    """Scores `(enroll row, test row)` pairs of two bit matrices from a log-LR table."""

    def __init__(self, table: np.ndarray, enroll_bits: np.ndarray, test_bits: np.ndarray | None):
        form = BilinearForm.from_table(table)
        test_bits = enroll_bits if test_bits is None else test_bits
        self.enroll_side = form.offset + enroll_bits @ form.enroll_weight
        self.test_side = test_bits @ form.test_weight
        self.enroll_packed = pack_words(enroll_bits)
        self.test_packed = self.enroll_packed if test_bits is enroll_bits else pack_words(test_bits)
        lookup = form.pair_lookup()
        self.lookup = lookup.ravel()
        self.word_offsets = (np.arange(lookup.shape[0]) * 65536).astype(np.intp)

    def score(self, enroll: np.ndarray, test: np.ndarray, chunk: int = DEFAULT_CHUNK):
        """Scores of pairs given as row indices, `chunk` pairs at a time (bounded memory)."""
        enroll, test = np.asarray(enroll, np.intp), np.asarray(test, np.intp)
        scores = np.empty(len(enroll))
        for start in range(0, len(enroll), chunk):
            e, t = enroll[start : start + chunk], test[start : start + chunk]
            both = self.enroll_packed[e] & self.test_packed[t]
            index = np.add(both, self.word_offsets)  # one pass: uint16 + intp -> intp
            interaction = self.lookup.take(index).sum(axis=1)
            scores[start : start + chunk] = self.enroll_side[e] + self.test_side[t] + interaction
        return scores


def score_matrix(
    table: np.ndarray,
    enroll_bits: np.ndarray,
    test_bits: np.ndarray | None = None,
    out: np.ndarray | None = None,
    block_rows: int = 2048,
) -> np.ndarray:
    """All-vs-all `(enroll, test)` log-LRs: one float64 matrix product per row block.

    `out` may be a memory-mapped array, so the matrix never has to fit in memory.
    """
    form = BilinearForm.from_table(table)
    test_bits = enroll_bits if test_bits is None else test_bits
    test_float = np.asarray(test_bits, dtype=np.float64)
    test_side = test_float @ form.test_weight
    if out is None:
        out = np.empty((len(enroll_bits), len(test_bits)))
    for start in range(0, len(enroll_bits), block_rows):
        rows = np.asarray(enroll_bits[start : start + block_rows], dtype=np.float64)
        block = (rows * form.interaction) @ test_float.T
        block += (form.offset + rows @ form.enroll_weight)[:, None]
        block += test_side[None, :]
        out[start : start + len(rows)] = block
    return out


def cosine_matrix(enroll: np.ndarray, test: np.ndarray | None = None, out=None, block_rows=2048):
    """All-vs-all cosine similarities of two vector sets (row blocks, optional `out`)."""
    test_unit = unit_rows(enroll if test is None else test)
    if out is None:
        out = np.empty((len(enroll), len(test_unit)))
    for start in range(0, len(enroll), block_rows):
        out[start : start + block_rows] = (
            unit_rows(enroll[start : start + block_rows]) @ test_unit.T
        )
    return out


def bit_terms(table: np.ndarray, enroll_bits: np.ndarray, test_bits: np.ndarray) -> np.ndarray:
    """`(trials, attributes)` log-LR terms of single recordings: `T[i, e_i, t_i]`."""
    n_attributes = table.shape[0]
    index = np.arange(n_attributes, dtype=np.intp) * 4 + 2 * enroll_bits.astype(np.intp)
    index += test_bits
    return table.reshape(-1).take(index)


def count_terms(scorer: LRScorer, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per-attribute terms for count tensors: lookup tables over small counts when possible.

    For MaxLLR and Beta with integer 2-state counts, `h(a, n)` is tabulated once per
    attribute up to the largest count present; other cases use the direct formula.
    """
    enroll, test = as_counts(enroll), as_counts(test)
    if not isinstance(scorer, MarginalScorer) or not _small_integer_counts(enroll, test):
        return scorer.explain(enroll, test)
    scorer.check_fitted()
    if enroll.shape[1] != scorer.n_attributes:
        return scorer.explain(enroll, test)  # raises the shape error
    joint = enroll + test
    size = int(joint.max()) + 1
    table = scorer.marginal_table(size - 1).reshape(-1)
    base = (np.arange(enroll.shape[1], dtype=np.intp) * size * size)[None, :]

    def lookup(counts: np.ndarray) -> np.ndarray:
        cells = counts[..., 0].astype(np.intp) * size + counts[..., 1].astype(np.intp)
        return table.take(cells + base)

    return lookup(joint) - lookup(enroll) - lookup(test) + table.take(base)


def _small_integer_counts(enroll: np.ndarray, test: np.ndarray) -> bool:
    if enroll.shape[-1] != 2 or enroll.size == 0:
        return False
    joint_max = (enroll + test).max()
    integral = np.all(enroll == np.round(enroll)) and np.all(test == np.round(test))
    return bool(integral and enroll.min() >= 0 and test.min() >= 0 and joint_max < MAX_TABLE_COUNT)


# ---------------------------------------------------------------------- trial lists


class CellSide:
    """One side of every trial: cell `c` sums rows `rows[offsets[c]:offsets[c + 1]]`."""

    def __init__(self, cells: Sequence[Sequence[int]] | np.ndarray):
        if isinstance(cells, np.ndarray) and (cells.ndim == 1 or cells.shape[1:] == (1,)):
            self.rows = cells.reshape(-1).astype(np.intp)  # one recording per cell
            self.offsets = np.arange(len(self.rows) + 1, dtype=np.intp)
        else:
            lengths = np.fromiter((len(c) for c in cells), np.intp, len(cells))
            self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.intp)
            self.rows = np.fromiter((i for c in cells for i in c), np.intp, int(self.offsets[-1]))

    @classmethod
    def from_flat(cls, rows: np.ndarray, lengths: np.ndarray) -> CellSide:
        """Cells from concatenated row indices and the number of rows of each cell."""
        side = cls.__new__(cls)
        side.rows = np.asarray(rows, dtype=np.intp)
        side.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.intp)
        return side

    def valid(self) -> np.ndarray:
        """Per cell: all its rows are known (>= 0; -1 marks a missing vector)."""
        if not len(self):
            return np.zeros(0, bool)
        return np.minimum.reduceat(self.rows, self.offsets[:-1]) >= 0

    def subset(self, keep: np.ndarray) -> CellSide:
        """The cells where `keep` is true."""
        return CellSide.from_flat(self.rows[np.repeat(keep, self.lengths)], self.lengths[keep])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def cell(self, index: int) -> np.ndarray:
        return self.rows[self.offsets[index] : self.offsets[index + 1]]

    def membership(self, start: int, stop: int, n_rows: int) -> scipy.sparse.csr_matrix:
        """Sparse `(cells, rows)` 0/1 matrix of cells `start:stop`; times vectors = sums."""
        offsets = self.offsets[start : stop + 1]
        columns = self.rows[offsets[0] : offsets[-1]]
        return scipy.sparse.csr_matrix(
            (np.ones(len(columns)), columns, offsets - offsets[0]), shape=(stop - start, n_rows)
        )


class TrialCells:
    """Trials as rows of a vector matrix: each side a list of row indices (summed)."""

    def __init__(self, enroll, test):
        self.enroll = enroll if isinstance(enroll, CellSide) else CellSide(enroll)
        self.test = test if isinstance(test, CellSide) else CellSide(test)
        if len(self.enroll) != len(self.test):
            raise DataError(f"{len(self.enroll)} enrollment cells for {len(self.test)} test cells")

    def __len__(self) -> int:
        return len(self.enroll)

    @property
    def single(self) -> bool:
        return bool(np.all(self.enroll.lengths == 1) and np.all(self.test.lengths == 1))

    def first_multi(self) -> int | None:
        """Index of the first trial with several recordings on a side, if any."""
        multi = np.flatnonzero((self.enroll.lengths != 1) | (self.test.lengths != 1))
        return int(multi[0]) if multi.size else None

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """Row index arrays (single-recording trials only)."""
        return self.enroll.rows, self.test.rows


def cell_counts(
    vectors: np.ndarray, cells: CellSide | Sequence[Sequence[int]], start: int = 0, stop=None
) -> np.ndarray:
    """Summed vectors of cells `start:stop`: `(cells, *vector shape)`, by a sparse product."""
    cells = cells if isinstance(cells, CellSide) else CellSide(cells)
    stop = len(cells) if stop is None else stop
    flat = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)
    sums = cells.membership(start, stop, len(vectors)) @ flat
    return np.asarray(sums).reshape(stop - start, *np.shape(vectors)[1:])


def check_cells(scorer: Scorer, cells: TrialCells) -> None:
    """TrialsError when a one-recording-per-side scorer meets a multi-recording trial."""
    row = cells.first_multi() if isinstance(scorer, TypicalityScorer) else None
    if row is not None:
        raise TrialsError(
            f"scorer '{scorer.name}' takes one enrollment and one test recording per trial; "
            f"trial {row + 1} has {len(cells.enroll.cell(row))} and {len(cells.test.cell(row))} "
            "(use maxllr or beta for several)"
        )


def score_trials(
    scorer: Scorer, vectors: np.ndarray, cells: TrialCells, chunk: int = DEFAULT_CHUNK
) -> np.ndarray:
    """Score every trial; `vectors` holds each distinct recording once (read once)."""
    check_cells(scorer, cells)
    if isinstance(scorer, CosineScorer):
        return _cosine_trials(scorer, vectors, cells, chunk)
    scorer.check_fitted()
    if cells.single and is_single_recording(vectors):
        pairs = PairScorer(scorer.bit_table(), as_bits(vectors), None)
        return pairs.score(*cells.flat(), chunk=chunk)
    scores = np.empty(len(cells))
    for start, stop, enroll, test in _count_chunks(vectors, cells, chunk):
        scores[start:stop] = count_terms(scorer, enroll, test).sum(axis=1)
    return scores


def explain_trials(
    scorer: LRScorer, vectors: np.ndarray, cells: TrialCells, chunk: int = DEFAULT_CHUNK
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield `(first trial, terms, enroll counts, test counts)` chunk by chunk."""
    check_cells(scorer, cells)
    scorer.check_fitted()
    if cells.single and is_single_recording(vectors):
        bits, table = as_bits(vectors), scorer.bit_table()
        enroll_rows, test_rows = cells.flat()
        for start in range(0, len(cells), chunk):
            e, t = bits[enroll_rows[start : start + chunk]], bits[test_rows[start : start + chunk]]
            yield start, bit_terms(table, e, t), as_counts(e), as_counts(t)
        return
    for start, _, enroll, test in _count_chunks(vectors, cells, chunk):
        yield start, count_terms(scorer, enroll, test), enroll, test


def _count_chunks(vectors: np.ndarray, cells: TrialCells, chunk: int):
    counts = as_counts(vectors)
    for start in range(0, len(cells), chunk):
        stop = min(start + chunk, len(cells))
        enroll = cell_counts(counts, cells.enroll, start, stop)
        test = cell_counts(counts, cells.test, start, stop)
        yield start, stop, enroll, test


def _cosine_trials(scorer: CosineScorer, vectors: np.ndarray, cells: TrialCells, chunk: int):
    plain = CosineScorer.as_vectors(vectors)
    scores = np.empty(len(cells))
    if cells.single:
        unit = unit_rows(plain)
        enroll_rows, test_rows = cells.flat()
        for start in range(0, len(cells), chunk):
            e, t = enroll_rows[start : start + chunk], test_rows[start : start + chunk]
            scores[start : start + chunk] = np.einsum("ij,ij->i", unit[e], unit[t])
        return scores
    for start in range(0, len(cells), chunk):
        stop = min(start + chunk, len(cells))
        scores[start:stop] = scorer.score(
            cell_counts(plain, cells.enroll, start, stop),
            cell_counts(plain, cells.test, start, stop),
        )
    return scores


def matrix_scores(scorer: Scorer, vectors: np.ndarray, out: np.ndarray | None = None):
    """All-vs-all scores of single-recording vectors (LR scorers) or any vectors (cosine)."""
    if isinstance(scorer, CosineScorer):
        return cosine_matrix(CosineScorer.as_vectors(vectors), out=out)
    scorer.check_fitted()
    return score_matrix(scorer.bit_table(), as_bits(vectors), out=out)
