"""`score test scorer=cosine scorer.vectors=emb --population`: the cosine of embeddings
moved, trial by trial, by the mean of that trial's population.

A channel shared by every recording of a case adds the same direction to all embeddings;
subtracting the mean of recordings of other speakers in the case's conditions removes it
(`balr.embedding_centring.EmbeddingCentring`, issue 18). A calibration was fitted on cosines
of embeddings whose mean was its calibration recordings' mean, not 0: so each embedding is
moved by `target - population mean`, where `target` is the mean of the calibration's
reference embeddings (its conditions description; the shipped cosine calibration has
them), and the calibrated cosine keeps the scale its calibration saw. Uncalibrated (or
with a calibration without reference embeddings) the target is 0: plain centring.

Each trial's population leaves out its own speakers and recordings
(`balr.scoring.population_trials.TrialPopulations`), so its mean is the whole population's
sum minus the left-out recordings', over the recordings left. A side of several recordings
is their summed embeddings moved once per recording (the sum of the moved recordings), as
the cosine sums a side's vectors. Equal, by value, to that definition trial by trial, and
to `EmbeddingCentring` fitted with the target on the population minus that trial's speakers
and recordings (tests/scoring/test_population_cosine.py). Measured:
`recipes/research/r14_cosine_population.log`.
"""

from __future__ import annotations

import numpy as np

from balr.errors import ConfigError, DataError
from balr.scoring.cosine import CosineScorer
from balr.scoring.pairs import unit_rows
from balr.scoring.population_trials import MATRIX_ROWS, MAX_CHUNK, TrialPopulations
from balr.scoring.trials import CellSide, TrialCells, cell_sums


def check_centrable(scorer) -> None:
    """ConfigError unless `scorer` is the cosine of embeddings (what centring adapts)."""
    if not isinstance(scorer, CosineScorer) or scorer.vectors != "emb":
        raise ConfigError(
            "--population adapts the beta scorer (the default) and the cosine of embeddings "
            "(scorer=cosine scorer.vectors=emb); this scorer has no population adaptation"
        )


class TrialwiseCentredCosine:
    """The cosine of embeddings `scorer` with each trial's embeddings moved by `target`
    minus the mean of its population (`populations`, aligned with the trials scored, read
    as embeddings; `target` None: 0, plain centring)."""

    def __init__(
        self,
        scorer: CosineScorer,
        populations: TrialPopulations,
        target: np.ndarray | None = None,
    ):
        check_centrable(scorer)
        population = populations.population
        if population.kind != "emb":
            raise ConfigError(
                f"--population {population.source}: the cosine of embeddings needs the "
                "population's embeddings, it was read as BA vectors"
            )
        self.scorer, self.populations = scorer, populations
        self.total = population.vectors.sum(axis=0)
        self.target = np.zeros_like(self.total) if target is None else np.asarray(target, float)
        if self.target.shape != self.total.shape:
            raise DataError(
                f"--population {population.source}: {len(self.total)}-dim embeddings, the "
                f"calibration's reference embeddings are {self.target.shape[0]}-dim"
            )

    name = "cosine"
    vector_kind = "emb"

    def means(self, sets: np.ndarray) -> np.ndarray:
        """`(sets, dim)` population means of the left-out sets `sets`."""
        pops = self.populations
        left = self.total - pops.removed[sets] @ pops.population.vectors
        return left / pops.n_recordings[sets][:, None]

    def shifts(self, sets: np.ndarray) -> np.ndarray:
        """`(sets, dim)` what each recording loses: its set's population mean - `target`."""
        return self.means(sets) - self.target

    def score(self, vectors: np.ndarray, cells: TrialCells, chunk: int = MAX_CHUNK) -> np.ndarray:
        """Every trial's cosine of its centred sides; trials are taken by left-out set, so
        each set's mean is computed about once."""
        vectors = np.asarray(vectors, dtype=np.float64)
        self._check_dim(vectors)
        order = np.argsort(self.populations.keys, kind="stable")
        scores = np.empty(len(cells))
        size = min(chunk, MAX_CHUNK)
        for start in range(0, len(order), size):
            positions = order[start : start + size]
            sets, local = np.unique(self.populations.keys[positions], return_inverse=True)
            shifts = self.shifts(sets)[local]
            enroll = _moved_sides(vectors, cells.enroll, positions, shifts)
            test = _moved_sides(vectors, cells.test, positions, shifts)
            eps = self.scorer.eps
            scores[positions] = (unit_rows(enroll, eps) * unit_rows(test, eps)).sum(axis=1)
        return scores

    def matrix(
        self, vectors: np.ndarray, groups: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """All-vs-all cosines of single recordings' moved embeddings (`vectors`: `(n, dim)`,
        rows enrollment) with populations from `TrialPopulations.of_matrix` (`groups`: each
        recording's group). With `s` the cell's shift, `(x - s).(y - s) = x.y - s.x - s.y +
        s.s` and `|x - s|^2 = x.x - 2 s.x + s.s`: per enrollment group, two matrix
        products with every column's shift (`MATRIX_ROWS` rows at a time)."""
        x = np.asarray(vectors, dtype=np.float64)
        self._check_dim(x)
        n = len(x)
        out = np.empty((n, n)) if out is None else out
        squares = np.einsum("ij,ij->i", x, x)
        n_groups = int(groups.max()) + 1 if n else 0
        for group in range(n_groups):
            sets = self.populations.keys[group * n_groups + groups]  # each column's cell
            unique, local = np.unique(sets, return_inverse=True)
            shifts = self.shifts(unique)[local]  # (n, dim): each column's shift
            shift_squares = np.einsum("ij,ij->i", shifts, shifts)
            own = np.einsum("ij,ij->i", x, shifts)  # s_j . x_j
            column_norms = np.sqrt(np.maximum(squares - 2 * own + shift_squares, 0.0))
            rows = np.flatnonzero(groups == group)
            for start in range(0, len(rows), MATRIX_ROWS):
                chosen = rows[start : start + MATRIX_ROWS]
                cross = x[chosen] @ shifts.T  # s_j . x_i
                dots = x[chosen] @ x.T - cross - own + shift_squares
                row_norms = np.sqrt(
                    np.maximum(squares[chosen, None] - 2 * cross + shift_squares, 0)
                )
                eps = self.scorer.eps  # as `unit_rows`: a norm below eps counts as eps
                out[chosen] = dots / (np.maximum(row_norms, eps) * np.maximum(column_norms, eps))
        return out

    def _check_dim(self, vectors: np.ndarray) -> None:
        dim = len(self.total)
        if vectors.ndim != 2 or vectors.shape[1] != dim:
            raise DataError(
                f"--population {self.populations.population.source}: {dim}-dim embeddings, "
                f"the scored ones are {vectors.shape[1:]}"
            )


def _moved_sides(
    vectors: np.ndarray, side: CellSide, positions: np.ndarray, shifts: np.ndarray
) -> np.ndarray:
    """`(trials, dim)`: each cell of `positions` summed, minus its shift once per recording."""
    lengths = side.lengths[positions]
    if np.all(lengths == 1):
        return vectors[side.rows[side.offsets[positions]]] - shifts
    chosen = CellSide([side.cell(p) for p in positions])
    return cell_sums(vectors, chosen) - lengths[:, None] * shifts


def calibration_target(calibrated) -> np.ndarray | None:
    """The mean of the reference embeddings of the calibration `calibrated` (a
    `CalibrationChoice`) that a population's mean is moved to; None when uncalibrated or
    the calibration describes no embeddings (then: centring on 0)."""
    conditions = calibrated.conditions
    if calibrated.calibrator is None or conditions is None or conditions.vector_kind_ != "emb":
        return None
    return conditions.reference_vectors_.astype(np.float64).mean(axis=0)
