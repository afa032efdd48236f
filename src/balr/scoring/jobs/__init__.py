"""The jobs of `balr score`, as library functions, one module per command: fit and save a
scorer (`train`), score a trials file (`test`: scores, calibration, conditions check,
metrics, explanations), score all-vs-all (`matrix`), fit a calibrator (`calibrate`).

Each takes a typed options object built once by the CLI (`ScoringRun`, `TrialScoring`,
`MatrixScoring`, `CalibrationFit`; the scorer config as `balr.scoring.config.ScoreSettings`)
and returns a small result whose `summary()` is the line the command prints. The helpers
that lived here before are re-exported from their homes: the trial helpers from
`balr.scoring.trials`, the speech seconds from `balr.data.speech`, the conditions check from
`balr.conditions`.
"""

from balr.conditions import check_trial_conditions, describe_recordings
from balr.data.speech import side_seconds, trial_seconds
from balr.scoring.jobs.calibrate import CalibrationFit, FittedCalibration, calibrate_scores_file
from balr.scoring.jobs.common import DatasetReading, ScoringRun
from balr.scoring.jobs.matrix import MatrixScoring, ScoreMatrix, score_matrix_file
from balr.scoring.jobs.population import calibration_population, trial_populations
from balr.scoring.jobs.test import (
    ScoredTrials,
    TrialScoring,
    score_trials_file,
    scored_vector_kind,
)
from balr.scoring.jobs.train import TrainedScorer, train_scorer
from balr.scoring.trials import UnscoredTrials, find_trial, trial_vectors

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
    "UnscoredTrials",
    "calibrate_scores_file",
    "calibration_population",
    "check_trial_conditions",
    "describe_recordings",
    "find_trial",
    "score_matrix_file",
    "score_trials_file",
    "scored_vector_kind",
    "side_seconds",
    "train_scorer",
    "trial_seconds",
    "trial_populations",
    "trial_vectors",
]
