"""`score test --population`: each trial judged against the population without its own
speakers and recordings, scored exactly and fast.

The adapted rate `m_i = (n p_i + T m_ref_i) / (n + T)` (`balr.population`) needs only the
population's bit sums `n p_i` and its size `n`. The population of one trial is every
population recording but those of its compared speakers (enrollment and test side, by label)
and its own recordings (by id): its sums are the whole population's minus the left-out
recordings'. Trials leaving out the same recordings (e.g. the same pair of speakers) share
one *left-out set*; each chunk of trials computes the adapted alpha of its sets once, then
the per-attribute beta terms of its trials with their own alpha: one recording per side reads
them from the closed-form `(attribute, e, t)` table of each set, several per side use the
beta terms directly. The log-LR is the sum of those terms, so explanations stay exact.
Equal, by value, to `balr.population.adapt_to_population` on the population minus that
trial's speakers and recordings (tests/scoring/test_population_trials.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse

from balr.data.trials import Trials
from balr.errors import DataError
from balr.population import (
    DEFAULT_SHRINKAGE,
    MIN_RECORDINGS,
    MIN_SPEAKERS,
    Population,
    check_adaptable,
    shrunk_alpha,
    size_error,
)
from balr.population_decision import AdaptationDecision
from balr.scoring.base import as_counts
from balr.scoring.beta import BetaScorer, log_beta
from balr.scoring.pairs import as_bits, is_single_recording
from balr.scoring.trials import CellSide, TrialCells, cell_sums

#: trials per chunk at most: a chunk holds a few `(trials, attributes)` arrays and the
#: `(sets, attributes)` alpha and log parts of its left-out sets
MAX_CHUNK = 2048
#: enrollment rows per block of `TrialwiseBeta.matrix` (a `(rows, recordings)` block)
MATRIX_ROWS = 256


@dataclass(frozen=True)
class TrialPopulations:
    """The population of each trial: trial `j` leaves out the population recordings of row
    `keys[j]` of `removed`, the `(left-out sets, recordings)` 0/1 matrix."""

    population: Population
    keys: np.ndarray  # (trials,) each trial's left-out set
    removed: scipy.sparse.csr_matrix  # (sets, population recordings)
    n_recordings: np.ndarray  # (sets,) recordings left
    n_speakers: np.ndarray | None  # (sets,) labelled speakers left; None: no labels
    weights: np.ndarray | None = None  # (trials,) what each trial stands for (None: 1 each)
    per: str = "trial"  # what messages and records call a trial ("cell": `score matrix`)
    adaptation: AdaptationDecision | None = None  # whether the scorer adapts, and why
    #: the population's conditions the trials are checked against where it tested the
    #: calibration (`balr.conditions.population.PopulationConditions`), else why not (text)
    conditions: object | None = None

    @classmethod
    def of_trials(
        cls, population: Population, trials: Trials, speaker_of: dict[str, str | None]
    ) -> TrialPopulations:
        """Each trial of `trials` leaves out the population recordings of its recordings'
        speakers (`speaker_of`: id -> label) and those with its recordings' ids."""
        return cls.of_sides(population, trials.enrollment, trials.test, speaker_of)

    @classmethod
    def of_sides(
        cls,
        population: Population,
        enrollment: Sequence[Sequence[str]],
        test: Sequence[Sequence[str]],
        speaker_of: dict[str, str | None],
        weights: np.ndarray | None = None,
        per: str = "trial",
    ) -> TrialPopulations:
        """`of_trials` of trials given as their two sides' id lists."""
        units = _RecordingUnits(population)
        sets: dict[tuple[int, ...], int] = {}
        keys = np.empty(len(enrollment), dtype=np.intp)
        cache: dict[str, tuple[int, ...]] = {}
        for row, (enroll, tested) in enumerate(zip(enrollment, test, strict=True)):
            left: list[int] = []
            for item in (*enroll, *tested):
                if item not in cache:
                    cache[item] = units.units_of(item, speaker_of.get(item))
                left.extend(cache[item])
            keys[row] = sets.setdefault(tuple(sorted(set(left))), len(sets))
        removed = units.removed_rows(list(sets))
        return cls(population, keys, removed, *units.sizes_left(removed), weights, per)

    @classmethod
    def of_matrix(
        cls, population: Population, ids: Sequence[str], speaker_of: dict[str, str | None]
    ) -> tuple[TrialPopulations, np.ndarray]:
        """`(populations, groups)` of the all-vs-all cells of the recordings `ids`: recordings
        leaving out the same population recordings form a group (`groups[i]`: recording i's),
        and trial `a * G + b` (G groups) is the cell of a group-`a` enrollment and a group-`b`
        test recording, weighted by the cells it stands for."""
        units = _RecordingUnits(population)
        found: dict[tuple[int, ...], int] = {}
        groups = np.array(
            [found.setdefault(units.units_of(i, speaker_of.get(i)), len(found)) for i in ids],
            dtype=np.intp,
        )
        first = [ids[row] for row in np.unique(groups, return_index=True)[1]]
        sides = [[item] for item in first]
        counts = np.bincount(groups, minlength=len(first)).astype(np.float64)
        enrollment = [side for side in sides for _ in sides]
        test = [side for _ in sides for side in sides]
        pops = cls.of_sides(
            population, enrollment, test, speaker_of, np.outer(counts, counts).ravel(), "cell"
        )
        return pops, groups

    def subset(self, rows: np.ndarray) -> TrialPopulations:
        """The populations of trials `rows` (a mask or indices) only."""
        weights = None if self.weights is None else self.weights[rows]
        return replace(self, keys=self.keys[rows], weights=weights)

    def trial_sizes(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Per trial: recordings left, labelled speakers left (None: no labels)."""
        speakers = None if self.n_speakers is None else self.n_speakers[self.keys]
        return self.n_recordings[self.keys], speakers

    def check_size(self, name: Callable[[int], str]) -> None:
        """DataError naming the trial with the smallest population when one is too small
        (`name(j)`: how the message names trial j)."""
        recordings, speakers = self.trial_sizes()
        failing = recordings < MIN_RECORDINGS
        if speakers is not None:
            failing |= speakers < MIN_SPEAKERS
        if not failing.any():
            return
        rows = np.flatnonzero(failing)
        second = speakers[rows] if speakers is not None else recordings[rows]
        worst = int(rows[np.lexsort((second, recordings[rows]))[0]])
        n, s = int(recordings[worst]), None if speakers is None else int(speakers[worst])
        context = f" for {self.per} {name(worst)} once its speakers and recordings are left out"
        raise size_error(self.population.source, n, s, context)

    def describe(self) -> str:
        """`population SRC (N recordings, S speakers; ...)` with the per-trial sizes."""
        text = self.population.describe()
        recordings, _ = self.trial_sizes()
        if len(recordings) and recordings.min() < len(self.population.ids):
            low, high = int(recordings.min()), int(recordings.max())
            span = f"{low}" if low == high else f"{low}-{high}"
            text = f"{text[:-1]}; {span} per {self.per} without its own speakers)"
        return text

    def record(self) -> dict:
        """The population's record plus the per-trial sizes (metrics.json, run.json; per
        cell in `score matrix`'s population.json)."""
        recordings, speakers = self.trial_sizes()
        reduced = recordings < len(self.population.ids)
        weights = np.ones(len(recordings)) if self.weights is None else self.weights
        per_trial = {
            "left_out": f"each {self.per}'s own speakers and recordings",
            "min_recordings": int(recordings.min()) if len(recordings) else None,
            "max_recordings": int(recordings.max()) if len(recordings) else None,
            "min_speakers": int(speakers.min()) if speakers is not None and len(speakers) else None,
            f"n_{self.per}s_reduced": int(weights[reduced].sum()),
        }
        record = self.population.record() | {f"per_{self.per}": per_trial}
        if self.adaptation is not None:
            record["adaptation"] = self.adaptation.record()
        return record

    @property
    def adapted(self) -> bool:
        """Whether the scorer adapts to these populations (yes unless decided otherwise)."""
        return self.adaptation is None or self.adaptation.adapt

    def summary(self) -> str:
        """`adapted to the population SRC (...)`, or why not (the run's one-line summary)."""
        if self.adapted:
            return f"adapted to the {self.describe()}"
        return f"checked against the {self.describe()}, not adapted: {self.adaptation.reason}"


class _RecordingUnits:
    """What a case recording takes out of the population, as units: its speaker's recordings
    (unit g: speaker group g of `Population.speaker_index`) and its own id's recording
    (unit `groups + row`, or its group when unlabelled: a group of one)."""

    def __init__(self, population: Population):
        self.population = population
        names, self.group_of_row = population.speaker_index()
        labelled = {s for s in population.speakers if s}
        self.labelled = np.array([name in labelled for name in names], dtype=bool)
        self.group_of = {name: g for g, name in enumerate(names) if name in labelled}
        self.row_of_id = {item: row for row, item in enumerate(population.ids)}

    def units_of(self, item: str, speaker: str | None) -> tuple[int, ...]:
        group = self.group_of.get(speaker) if speaker else None
        units = () if group is None else (group,)
        own = self.row_of_id.get(item)
        if own is not None and self.group_of_row[own] != group:
            own_group = int(self.group_of_row[own])
            units += (len(self.labelled) + own if self.labelled[own_group] else own_group,)
        return units

    def removed_rows(self, sets: list[tuple[int, ...]]) -> scipy.sparse.csr_matrix:
        """`(sets, recordings)` 0/1: the recordings of each set's units (a union)."""
        n, groups = len(self.population.ids), len(self.labelled)
        unit_rows = scipy.sparse.vstack(
            [
                scipy.sparse.csr_matrix(
                    (np.ones(n), (self.group_of_row, np.arange(n))), shape=(groups, n)
                ),
                scipy.sparse.identity(n, format="csr"),
            ]
        ).tocsr()
        removed = (_membership(sets, groups + n) @ unit_rows).tocsr()
        removed.data[:] = 1.0  # a recording in two units of a set counts once
        return removed

    def sizes_left(self, removed: scipy.sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray | None]:
        """Per set: recordings left, labelled speakers left (None: no labels)."""
        n = len(self.population.ids)
        recordings = n - np.asarray(removed.sum(axis=1)).ravel().astype(np.intp)
        if not self.labelled.any():
            return recordings, None
        groups = scipy.sparse.csr_matrix(
            (np.ones(n), (np.arange(n), self.group_of_row)), shape=(n, len(self.labelled))
        )
        sizes = np.bincount(self.group_of_row, minlength=len(self.labelled))
        taken = (removed @ groups).tocoo()
        emptied = (taken.data == sizes[taken.col]) & self.labelled[taken.col]
        lost = np.bincount(taken.row[emptied], minlength=removed.shape[0])
        return recordings, int(self.labelled.sum()) - lost


def _membership(sets: list[tuple[int, ...]], n_columns: int) -> scipy.sparse.csr_matrix:
    """`(sets, columns)` 0/1 of the columns each set lists."""
    lengths = np.fromiter(map(len, sets), np.intp, len(sets))
    columns = np.fromiter((r for s in sets for r in s), np.intp, int(lengths.sum()))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return scipy.sparse.csr_matrix(
        (np.ones(len(columns)), columns, offsets), shape=(len(sets), n_columns)
    )


def beta_bit_parts(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(mixed, active, inactive)`, each `alpha.shape[:-1]`: the beta log-LR of one
    recording per side is `mixed` for bits `(e, t)` = (1, 0) or (0, 1), `mixed + active` for
    (1, 1), `mixed + inactive` for (0, 0) (`BetaScorer.bit_table`). With `alpha = (a, b)`
    (state 0: active) and `s = a + b`, `log B` of one or two more counts reduces to logs:
    `mixed = -log1p(1/s)`, `active = log1p(1/a)`, `inactive = log1p(1/b)`."""
    a, b = alpha[..., 0], alpha[..., 1]
    return -np.log1p(1.0 / (a + b)), np.log1p(1.0 / a), np.log1p(1.0 / b)


def bit_terms(
    alpha: np.ndarray, local: np.ndarray, enroll: np.ndarray, test: np.ndarray
) -> np.ndarray:
    """`(trials, attributes)` beta terms of one-recording sides (`enroll`, `test`: 0/1
    uint8 bits), trial j with alpha `alpha[local[j]]`."""
    mixed, active, inactive = beta_bit_parts(alpha)
    terms = mixed[local]
    terms += active[local] * (enroll & test)
    terms += inactive[local] * ((enroll | test) ^ 1)
    return terms


class TrialwiseBeta:
    """A fitted beta scorer adapted, trial by trial, to that trial's population
    (`populations`, aligned with the trials scored); `shrinkage` as `balr.population`."""

    def __init__(
        self,
        scorer: BetaScorer,
        populations: TrialPopulations,
        shrinkage: float = DEFAULT_SHRINKAGE,
    ):
        check_adaptable(scorer)
        self.scorer, self.populations, self.shrinkage = scorer, populations, float(shrinkage)
        bits = populations.population.bits
        if bits.shape[1] != scorer.n_attributes:
            raise DataError(
                f"--population {populations.population.source}: {bits.shape[1]} attributes, "
                f"the scorer {scorer.n_attributes}"
            )
        self.total = bits.sum(axis=0)

    name = "beta"
    vector_kind = "ba"

    def alphas(self, sets: np.ndarray) -> np.ndarray:
        """`(sets, attributes, 2)` adapted alpha of the left-out sets `sets`."""
        pops = self.populations
        left_sums = self.total - pops.removed[sets] @ pops.population.bits
        return shrunk_alpha(self.scorer.alpha_, left_sums, pops.n_recordings[sets], self.shrinkage)

    def one(self, position: int) -> TrialwiseBeta:
        """This scorer for trial `position` alone."""
        return TrialwiseBeta(self.scorer, self.populations.subset([position]), self.shrinkage)

    def terms(
        self, vectors: np.ndarray, cells: TrialCells, positions: np.ndarray, bits=None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`(terms, enroll, test, alpha)` of the trials `positions`, each `(trials,
        attributes, ...)`, each trial with its own adapted alpha. With `bits`
        (`single_bits`) every cell is one recording and the sides are its bits; else the
        sides are summed counts."""
        terms, enroll, test, alpha, local = self._chunk_terms(vectors, cells, positions, bits)
        return terms, enroll, test, alpha[local]

    def _chunk_terms(self, vectors: np.ndarray, cells: TrialCells, positions: np.ndarray, bits):
        """`terms` with the alpha of each left-out set and each trial's set (`local`)."""
        sets, local = np.unique(self.populations.keys[positions], return_inverse=True)
        alpha = self.alphas(sets)
        if bits is not None:
            enroll, test = bits[cells.enroll.rows[positions]], bits[cells.test.rows[positions]]
            return bit_terms(alpha, local, enroll, test), enroll, test, alpha, local
        a = alpha[local]
        enroll = _side_sums(vectors, cells.enroll, positions)
        test = _side_sums(vectors, cells.test, positions)
        with np.errstate(invalid="ignore"):
            terms = log_beta(a + enroll + test) - log_beta(a + enroll) - log_beta(a + test)
        return terms + log_beta(a), enroll, test, alpha, local

    def score(self, vectors: np.ndarray, cells: TrialCells, chunk: int = MAX_CHUNK) -> np.ndarray:
        """Every trial's log-LR; trials are taken by left-out set, so each set's alpha is
        computed about once."""
        order = np.argsort(self.populations.keys, kind="stable")
        scores = np.empty(len(cells))
        bits = single_bits(vectors, cells)
        for start in range(0, len(order), min(chunk, MAX_CHUNK)):
            positions = order[start : start + min(chunk, MAX_CHUNK)]
            scores[positions] = self._chunk_terms(vectors, cells, positions, bits)[0].sum(axis=1)
        return scores

    def matrix(
        self, bits: np.ndarray, groups: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """All-vs-all log-LRs of single recordings (`bits`: `(n, attributes)` 0/1, rows
        enrollment) with populations from `TrialPopulations.of_matrix` (`groups`: each
        recording's group). Per enrollment group, the `bit_terms` of every cell summed:
        `mixed + active e t + inactive (1 - e)(1 - t)` is
        `e . (t (active + inactive) - inactive) + sum(mixed + inactive - t inactive)`, one
        matrix product per group, each column with its cell's alpha."""
        n = len(bits)
        out = np.empty((n, n)) if out is None else out
        tested = np.asarray(bits, dtype=np.float64)
        weights, inactive_of = np.empty_like(tested), np.empty_like(tested)  # reused buffers
        n_groups = int(groups.max()) + 1 if n else 0
        for group in range(n_groups):
            sets = self.populations.keys[group * n_groups + groups]  # each column's cell
            unique, local = np.unique(sets, return_inverse=True)
            mixed, active, inactive = beta_bit_parts(self.alphas(unique))
            np.take(active + inactive, local, axis=0, out=weights)
            np.take(inactive, local, axis=0, out=inactive_of)
            weights *= tested
            weights -= inactive_of
            column = (mixed + inactive).sum(axis=1)[local]
            column -= np.einsum("jk,jk->j", tested, inactive_of)
            rows = np.flatnonzero(groups == group)
            for start in range(0, len(rows), MATRIX_ROWS):
                chosen = rows[start : start + MATRIX_ROWS]
                block = (weights @ tested[chosen].T).T  # the faster orientation for few rows
                block += column
                out[chosen] = block
        return out

    def explain(
        self, vectors: np.ndarray, cells: TrialCells, chunk: int = MAX_CHUNK
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
        """`(first trial, terms, enroll counts, test counts, per-trial alpha_0 / alpha_1)`
        chunk by chunk, in trial order."""
        size = min(chunk, MAX_CHUNK)
        bits = single_bits(vectors, cells)
        for start in range(0, len(cells), size):
            positions = np.arange(start, min(start + size, len(cells)))
            terms, enroll, test, alpha = self.terms(vectors, cells, positions, bits)
            if bits is not None:
                enroll, test = as_counts(enroll), as_counts(test)
            yield start, terms, enroll, test, {"alpha_0": alpha[..., 0], "alpha_1": alpha[..., 1]}


def single_bits(vectors: np.ndarray, cells: TrialCells) -> np.ndarray | None:
    """The vectors as uint8 bits when every trial side is one recording's bits, else None."""
    return as_bits(vectors) if cells.single and is_single_recording(vectors) else None


def _side_sums(vectors: np.ndarray, side: CellSide, positions: np.ndarray) -> np.ndarray:
    """Summed counts of the cells `positions` of one side."""
    chosen = CellSide([side.cell(p) for p in positions])
    return as_counts(cell_sums(vectors, chosen))
