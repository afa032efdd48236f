"""`balr score train`: fit the configured scorer on a reference dataset and save it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from balr.config import save_config
from balr.data.validation import BadVector, describe_bad
from balr.fileio import run_dir
from balr.scoring import Scorer, dataset_statistics, make_scorer
from balr.scoring.config import check_attribute_count, scorer_params
from balr.scoring.jobs.common import ScoringRun

SCORER_RUN_DIR = "runs/scorer/train"  # the reference's default folder (`balr.fileio.run_dir`)


@dataclass(frozen=True)
class TrainedScorer:
    scorer: Scorer
    path: Path  # the checkpoint written
    fitted_on: str  # what it learned from, or "nothing to fit"

    def summary(self) -> str:
        return f"{self.scorer.name} scorer ({self.fitted_on}) saved to {self.path}"


def train_scorer(train_data: Path, run: ScoringRun | None = None) -> TrainedScorer:
    """Fit the configured scorer on the per-speaker statistics of a reference dataset; save
    it and its config.yaml in `run.save_dir` (default `runs/scorer/train`; an existing one
    becomes `...train2`, `...train3` unless `run.exist_ok`: `balr.fileio.run_dir`)."""
    run = run or ScoringRun()
    cfg = run.score_settings().config
    scorer = make_scorer(cfg.scorer.name, **scorer_params(cfg))
    dataset = run.open_dataset(train_data)
    fitted_on = "nothing to fit"
    if scorer.needs_fit:
        bad: list[BadVector] = []
        speakers, stats = dataset_statistics(dataset, bad)
        check_attribute_count(cfg, stats.shape[1], train_data)
        scorer.fit(stats)
        fitted_on = (
            f"{len(dataset) - len(bad)} recordings, {len(speakers)} speakers, "
            f"{stats.shape[1]} attributes"
        )
        if bad:
            fitted_on += f"; {describe_bad(bad)} left out"
    save_dir = run_dir(run.save_dir, SCORER_RUN_DIR, run.exist_ok)
    path = scorer.save(save_dir)
    cfg.scorer.checkpoint_path = str(path)
    save_config(cfg, save_dir / "config.yaml")
    return TrainedScorer(scorer, path, fitted_on)
