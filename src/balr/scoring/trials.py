"""The trial-list engine: trials as cells of recordings, scored and explained chunk by chunk.

Each side of a trial is a cell: one or several rows of a vector matrix that holds every
distinct recording once. Trials with one recording per side take the scorer's pair path
(`Scorer.pairs`, see `balr.scoring.pairs`); others sum the rows of each cell with a sparse
product and score the sums (`Scorer.score_cells`). `trial_vectors` reads the vectors of a
trials list from its dataset (each recording once); `UnscoredTrials` counts the trials left
without a score, and why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse

from balr.data.trials import Trials
from balr.data.validation import BadVector, describe_bad
from balr.errors import DataError, TrialsError
from balr.scoring.base import LRScorer, Scorer, as_counts
from balr.scoring.pairs import DEFAULT_CHUNK

if TYPE_CHECKING:
    from balr.data import AudioDataset

logger = logging.getLogger(__name__)


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

    def one(self, index: int) -> TrialCells:
        """The trial `index` alone."""
        return TrialCells(CellSide([self.enroll.cell(index)]), CellSide([self.test.cell(index)]))


def cell_sums(
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
    row = None if scorer.multi_recording else cells.first_multi()
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
    scorer.check_fitted()
    pairs = scorer.pairs(vectors) if cells.single else None
    if pairs is not None:
        return pairs.score(*cells.flat(), chunk=chunk)
    scores = np.empty(len(cells))
    for start, stop, enroll, test in _cell_chunks(scorer.cell_vectors(vectors), cells, chunk):
        scores[start:stop] = scorer.score_cells(enroll, test)
    return scores


def explain_trials(
    scorer: LRScorer, vectors: np.ndarray, cells: TrialCells, chunk: int = DEFAULT_CHUNK
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield `(first trial, terms, enroll counts, test counts)` chunk by chunk."""
    check_cells(scorer, cells)
    scorer.check_fitted()
    pairs = scorer.pairs(vectors) if cells.single else None
    if pairs is not None:
        enroll_rows, test_rows = cells.flat()
        for start in range(0, len(cells), chunk):
            e, t = enroll_rows[start : start + chunk], test_rows[start : start + chunk]
            yield start, pairs.terms(e, t), as_counts(pairs.bits[e]), as_counts(pairs.bits[t])
        return
    for start, _, enroll, test in _cell_chunks(scorer.cell_vectors(vectors), cells, chunk):
        yield start, scorer.cell_terms(enroll, test), enroll, test


def _cell_chunks(vectors: np.ndarray, cells: TrialCells, chunk: int):
    """`(start, stop, enrollment sums, test sums)` of consecutive chunks of trials."""
    for start in range(0, len(cells), chunk):
        stop = min(start + chunk, len(cells))
        enroll = cell_sums(vectors, cells.enroll, start, stop)
        test = cell_sums(vectors, cells.test, start, stop)
        yield start, stop, enroll, test


# ---------------------------------------------------------------------- a trials list's vectors


def _side(cells: list[list[str]], row_of: dict[str, int]) -> CellSide:
    """Rows of every id of every cell (-1 where the recording has no vector)."""
    lengths = np.fromiter(map(len, cells), np.intp, len(cells))
    ids = pd.Series(list(chain.from_iterable(cells)), dtype=object)
    rows = ids.map(row_of).fillna(-1).to_numpy(dtype=np.intp)
    return CellSide.from_flat(rows, lengths)


def trial_vectors(
    dataset: AudioDataset, trials: Trials, kind: str, bad: list[BadVector] | None = None
) -> tuple[np.ndarray, TrialCells, np.ndarray]:
    """`(vectors of each distinct recording used, read once, cells, valid-trial mask)`.
    A bad vector raises DataError naming its file; with a `bad` list it is collected there
    and the trials using it are not valid (their score is NaN), as those without vectors."""
    trials.check_ids(dataset.ids)
    wanted = np.array([dataset.index_of(i) for i in trials.unique_ids()], dtype=np.int64)
    present, vectors = dataset.stack_vectors(kind, wanted, bad=bad)
    row_of = {dataset.items[i].id: row for row, i in enumerate(present)}
    enroll, test = _side(trials.enrollment, row_of), _side(trials.test, row_of)
    valid = enroll.valid() & test.valid()
    if not valid.all():
        logger.warning(
            "%d of %d trials use a recording without a valid %s vector: their score is NaN",
            int((~valid).sum()),
            len(valid),
            kind,
        )
    if not valid.any():
        raise DataError(f"{trials.source}: no trial has vectors for all its recordings")
    return vectors, TrialCells(enroll.subset(valid), test.subset(valid)), valid


def _uses(trials: Trials, ids: set[str]) -> np.ndarray:
    """Per trial: whether a recording of either cell is one of `ids`."""
    hits = np.zeros(len(trials), bool)
    for side in (trials.enrollment, trials.test):
        owner = np.repeat(np.arange(len(side)), np.fromiter(map(len, side), np.intp, len(side)))
        flat = pd.Series(list(chain.from_iterable(side)), dtype=object).isin(ids).to_numpy()
        hits[owner[flat]] = True
    return hits


@dataclass(frozen=True)
class UnscoredTrials:
    """Trials left unscored (NaN): using a recording without a vector, or with a bad one."""

    without_vector: int = 0
    bad_vector: int = 0
    bad: tuple[BadVector, ...] = ()

    @classmethod
    def of(cls, trials: Trials, valid: np.ndarray, bad: list[BadVector]) -> UnscoredTrials:
        with_bad = int((_uses(trials, {b.item_id for b in bad}) & ~valid).sum()) if bad else 0
        return cls(int((~valid).sum()) - with_bad, with_bad, tuple(bad))

    def __len__(self) -> int:
        return self.without_vector + self.bad_vector

    def summary(self) -> str:
        """`N not scored: ...` (empty when all trials were scored)."""
        reasons = []
        if self.without_vector:
            reasons.append(f"{self.without_vector} use a recording without a vector")
        if self.bad_vector:
            reasons.append(f"{self.bad_vector} use a recording with {describe_bad(list(self.bad))}")
        return f"{len(self)} not scored ({'; '.join(reasons)})" if reasons else ""


def find_trial(trials: Trials, spec: str) -> int:
    """0-based row of `spec`: a trial number (1 = first trial) or `ENROLLMENT::TEST` cells."""
    if spec.strip().isdigit():
        number = int(spec)
        if not 1 <= number <= len(trials):
            raise DataError(f"--explain-plot {spec}: trials are numbered 1 to {len(trials)}")
        return number - 1
    if "::" not in spec:
        raise DataError(f"--explain-plot {spec}: give a trial number or ENROLLMENT::TEST ids")
    enroll, test = (part.split(",") for part in spec.split("::", 1))
    for row, (e, t) in enumerate(zip(trials.enrollment, trials.test, strict=True)):
        if e == enroll and t == test:
            return row
    raise DataError(f"--explain-plot {spec}: no such trial in {trials.source}")
