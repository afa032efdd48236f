"""`balr score matrix`: all-vs-all raw scores of a dataset's single recordings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from balr.data.validation import BadVector, describe_bad
from balr.errors import DataError
from balr.fileio import atomic_path, atomic_write_text, next_run_dir
from balr.scoring.jobs.common import ScoringRun
from balr.scoring.pairs import matrix_scores
from balr.scoring.selection import select_configured_scorer

RUNS_DIR = Path("runs") / "scorer"  # `score matrix` runs: runs/scorer/matrixN


@dataclass(frozen=True)
class ScoreMatrix:
    size: int
    scorer: str
    path: Path  # scores.npy (ids.txt beside it)
    bad: tuple[BadVector, ...] = ()  # items left out for a bad vector

    def summary(self) -> str:
        text = f"{self.size} x {self.size} {self.scorer} scores in {self.path}"
        return f"{text}; {describe_bad(list(self.bad))} left out" if self.bad else text


def score_matrix_file(data: Path, run: ScoringRun | None = None) -> ScoreMatrix:
    """All-vs-all raw scores of single recordings: scores.npy (float64, rows enrollment,
    memory-mapped while written) and ids.txt (the row order) in `run.save_dir` (default: a
    new `runs/scorer/matrixN`)."""
    run = run or ScoringRun()
    scorer = select_configured_scorer(run.score_settings()).scorer
    dataset = run.open_dataset(data)
    bad: list[BadVector] = []
    indices, vectors = dataset.stack_vectors(scorer.vector_kind, bad=bad)
    if not len(indices):
        raise DataError(f"{data}: no item has a {scorer.vector_kind} vector")
    save_dir = run.save_dir or next_run_dir(RUNS_DIR, prefix="matrix")
    target = save_dir / "scores.npy"
    with atomic_path(target) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float64, shape=(len(indices),) * 2)
        matrix_scores(scorer, vectors, out=out)
        out.flush()
        del out
    ids = "".join(f"{dataset.items[i].id}\n" for i in indices)
    atomic_write_text(save_dir / "ids.txt", ids)
    return ScoreMatrix(len(indices), scorer.name, target, tuple(bad))
