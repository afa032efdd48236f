"""Score calibration: raw scores -> calibrated natural-log likelihood ratios.

Every calibrator is an estimator (`balr.estimator.Estimator`): `make_calibrator(method,
bounded, description)` builds one of the registered methods (`CALIBRATORS`), `fit(scores,
labels[, durations, groups])` learns the map, `transform(scores[, durations])` applies it
and `parts` splits the LLRs into additive parts. calibration.json (plain JSON, so loading
runs no code) is a `CalibrationBundle`: the calibrator and the description of its
calibration conditions, written together; `Calibrator.load(path)` reads its calibrator.
Three methods, one module each:

- `logistic` (`logistic.py`): `llr = slope * s + intercept`, balanced logistic regression;
- `pav` (`pav.py`): pool-adjacent-violators, a monotone map through knots;
- `qmf` (`qmf.py`): logistic plus the log net speech seconds of both sides.

Every method accepts per-trial `groups` (e.g. the corpus of each trial): each group then
weighs equally, with its target and non-target classes balanced inside it. Without groups
`logistic` and `pav` are exactly lir's balanced fits.

`bounded` clips the LLRs to the empirical lower and upper bounds (ELUB, `elub.py`) of the
training data (Vergeer et al., Science & Justice 2016). lir works in log10; every value
stored or returned here is a natural-log LR (converted explicitly with `LN10`).
"""

from __future__ import annotations

from balr.calibration.base import CALIBRATORS, Calibrator, LLRParts, make_calibrator
from balr.calibration.bundle import CalibrationBundle
from balr.calibration.elub import elub_bounds
from balr.calibration.fitting import (
    LN10,
    LOGISTIC_C,
    MIN_SPEECH_S,
    balanced_weights,
    log_durations,
)
from balr.calibration.logistic import LogisticCalibrator
from balr.calibration.pav import PAVCalibrator
from balr.calibration.qmf import DURATION_PERCENTILES, QMF_KEYS, QMFCalibrator

#: the registered calibration methods, in the order the CLI lists them
METHODS = tuple(CALIBRATORS)

__all__ = [
    "CALIBRATORS",
    "DURATION_PERCENTILES",
    "LLRParts",
    "LN10",
    "LOGISTIC_C",
    "METHODS",
    "MIN_SPEECH_S",
    "QMF_KEYS",
    "CalibrationBundle",
    "Calibrator",
    "LogisticCalibrator",
    "PAVCalibrator",
    "QMFCalibrator",
    "balanced_weights",
    "elub_bounds",
    "log_durations",
    "make_calibrator",
]
