"""`balr score matrix`: all-vs-all raw scores of a dataset's single recordings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from balr.data.validation import BadVector, describe_bad
from balr.errors import DataError
from balr.fileio import atomic_path, atomic_write_json, atomic_write_text, next_run_dir
from balr.population import read_population
from balr.scoring.jobs.common import ScoringRun
from balr.scoring.jobs.population import check_population_scorer, trialwise_adaptation
from balr.scoring.pairs import as_bits, matrix_scores
from balr.scoring.population_trials import TrialPopulations, TrialwiseBeta
from balr.scoring.selection import select_calibration, select_configured_scorer

RUNS_DIR = Path("runs") / "scorer"  # `score matrix` runs: runs/scorer/matrixN


@dataclass(frozen=True)
class MatrixScoring(ScoringRun):
    """`score matrix`'s options: the scoring run and the relevant `population` dataset the
    beta scorer or the cosine of embeddings adapts to, cell by cell (each cell without its
    two recordings' speakers and recordings)."""

    population: Path | None = None


@dataclass(frozen=True)
class ScoreMatrix:
    size: int
    scorer: str
    path: Path  # scores.npy (ids.txt beside it)
    bad: tuple[BadVector, ...] = ()  # items left out for a bad vector
    population: TrialPopulations | None = None  # each cell's relevant population

    def summary(self) -> str:
        text = f"{self.size} x {self.size} {self.scorer} scores in {self.path}"
        if self.population is not None:
            text += f" (adapted to the {self.population.describe()})"
        return f"{text}; {describe_bad(list(self.bad))} left out" if self.bad else text


def score_matrix_file(data: Path, run: MatrixScoring | None = None) -> ScoreMatrix:
    """All-vs-all raw scores of single recordings: scores.npy (float64, rows enrollment,
    memory-mapped while written) and ids.txt (the row order) in `run.save_dir` (default: a
    new `runs/scorer/matrixN`). With a `population` dataset the beta scorer (or the cosine of
    embeddings) adapts, cell by cell, to the population without that cell's speakers and
    recordings (as `score test` per trial: `balr.scoring.population_trials`,
    `balr.scoring.population_cosine`), described in population.json."""
    run = run or MatrixScoring()
    choice = select_configured_scorer(run.score_settings())
    scorer = choice.scorer
    dataset = run.open_dataset(data)
    bad: list[BadVector] = []
    indices, vectors = dataset.stack_vectors(scorer.vector_kind, bad=bad)
    if not len(indices):
        raise DataError(f"{data}: no item has a {scorer.vector_kind} vector")
    items = [dataset.items[i] for i in indices]
    trialwise = groups = None
    if run.population is not None:
        check_population_scorer(scorer)
        full = read_population(
            run.open_dataset(run.population), str(run.population), scorer.vector_kind
        )
        speaker_of = {item.id: item.speaker for item in items}
        pops, groups = TrialPopulations.of_matrix(full, [item.id for item in items], speaker_of)
        first = [items[row].id for row in np.unique(groups, return_index=True)[1]]
        pops.check_size(lambda j: f"{first[j // len(first)]} vs {first[j % len(first)]}")
        calibrated = select_calibration(choice, quiet=True)  # the scale score test gives
        trialwise = trialwise_adaptation(scorer, pops, calibrated)
        vectors = as_bits(vectors) if isinstance(trialwise, TrialwiseBeta) else vectors
    save_dir = run.save_dir or next_run_dir(RUNS_DIR, prefix="matrix")
    target = save_dir / "scores.npy"
    with atomic_path(target) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float64, shape=(len(indices),) * 2)
        if trialwise is None:
            matrix_scores(scorer, vectors, out=out)
        else:
            trialwise.matrix(vectors, groups, out=out)
        out.flush()
        del out
    atomic_write_text(save_dir / "ids.txt", "".join(f"{item.id}\n" for item in items))
    if trialwise is not None:
        atomic_write_json(save_dir / "population.json", trialwise.populations.record())
    return ScoreMatrix(
        len(indices), scorer.name, target, tuple(bad), trialwise and trialwise.populations
    )
