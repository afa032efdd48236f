"""The jobs of `balr score`, as library functions, one module per command: fit and save a
scorer (`train`), score a trials file (`test`: scores, calibration, conditions check,
metrics, explanations), score all-vs-all (`matrix`), fit a calibrator (`calibrate`).

Each takes a typed options object built once by the CLI (`ScoringRun`, `TrialScoring`,
`MatrixScoring`, `CalibrationFit`; the scorer config as `balr.scoring.config.ScoreSettings`)
and returns a small result whose `summary()` is the line the command prints.
"""

from balr.scoring.jobs.calibrate import CalibrationFit, FittedCalibration, calibrate_scores_file
from balr.scoring.jobs.common import DatasetReading, ScoringRun
from balr.scoring.jobs.matrix import MatrixScoring, ScoreMatrix, score_matrix_file
from balr.scoring.jobs.test import (
    ScoredTrials,
    TrialScoring,
    case_population,
    score_trials_file,
    scored_vector_kind,
)
from balr.scoring.jobs.train import TrainedScorer, train_scorer

__all__ = [
    "CalibrationFit",
    "DatasetReading",
    "FittedCalibration",
    "MatrixScoring",
    "ScoreMatrix",
    "ScoredTrials",
    "ScoringRun",
    "TrainedScorer",
    "TrialScoring",
    "calibrate_scores_file",
    "case_population",
    "score_matrix_file",
    "score_trials_file",
    "scored_vector_kind",
    "train_scorer",
]
