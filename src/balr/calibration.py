"""Score calibration: raw scores -> calibrated natural-log likelihood ratios.

Calibrators are fitted with `lir` (logistic regression with balanced classes, or PAV /
isotonic regression), optionally bounded by lir's empirical lower and upper bounds (ELUB),
and saved as plain JSON parameters so loading runs no code. lir works in log10; every
value stored or returned here is a natural-log LR (converted explicitly with LN10).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from lir.algorithms.bayeserror import elub
from lir.algorithms.isotonic_regression import IsotonicCalibrator
from lir.algorithms.logistic_regression import LogitCalibrator

from balr.errors import DataError, ModelError
from balr.fileio import atomic_write_text

LN10 = math.log(10.0)
METHODS = ("logistic", "pav")


@dataclass
class Calibrator:
    """A fitted score -> LLR map. `method` is `logistic` (LLR = slope * s + intercept)
    or `pav` (monotone step map through `knots_x` -> `knots_llr`)."""

    method: str
    slope: float = 0.0
    intercept: float = 0.0
    knots_x: list[float] = field(default_factory=list)
    knots_llr: list[float] = field(default_factory=list)
    lower_bound: float | None = None
    upper_bound: float | None = None
    n_target: int = 0
    n_nontarget: int = 0
    description: str = ""

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated natural-log LRs of `scores`, clipped to the ELUB bounds if fitted."""
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "logistic":
            llrs = self.slope * scores + self.intercept
        elif self.method == "pav":  # interpolate posteriors (as lir does), then back to LLRs
            posterior = np.interp(scores, self.knots_x, _sigmoid(np.asarray(self.knots_llr)))
            posterior = np.clip(posterior, 1e-300, 1 - 1e-16)
            llrs = np.log(posterior) - np.log1p(-posterior)
        else:
            raise ModelError(f"unknown calibration method '{self.method}'")
        lower = -np.inf if self.lower_bound is None else self.lower_bound
        upper = np.inf if self.upper_bound is None else self.upper_bound
        return np.clip(llrs, lower, upper)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps({"calibrator": asdict(self)}, indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Calibrator:
        """Read a calibrator saved by `save` (JSON only)."""
        try:
            data = json.loads(Path(path).read_text())["calibrator"]
            calibrator = cls(**data)
        except FileNotFoundError:
            raise ModelError(f"{path}: calibration file not found") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path}: not a balr calibration file ({exc})") from None
        if calibrator.method not in METHODS:
            raise ModelError(f"{path}: unknown calibration method '{calibrator.method}'")
        return calibrator


def fit_calibrator(
    scores: np.ndarray,
    labels: np.ndarray,
    method: str = "logistic",
    bounded: bool = True,
    description: str = "",
) -> Calibrator:
    """Fit a calibrator on labelled scores (labels 1 target / 0 non-target)."""
    scores, labels = _check_training_data(scores, labels)
    if method == "logistic":
        calibrator = _fit_logistic(scores, labels)
    elif method == "pav":
        calibrator = _fit_pav(scores, labels)
    else:
        raise ModelError(f"calibration method '{method}': expected one of {METHODS}")
    calibrator.n_target = int(labels.sum())
    calibrator.n_nontarget = int(len(labels) - labels.sum())
    calibrator.description = description
    if bounded:
        lower10, upper10 = elub(calibrator.transform(scores) / LN10, labels.copy())
        calibrator.lower_bound, calibrator.upper_bound = lower10 * LN10, upper10 * LN10
    return calibrator


def _fit_logistic(scores: np.ndarray, labels: np.ndarray) -> Calibrator:
    """lir's balanced logistic regression on standardised scores (so its mild L2 penalty
    does not depend on the score scale), mapped back to slope/intercept of the raw score."""
    centre, scale = float(scores.mean()), float(scores.std()) or 1.0
    model = LogitCalibrator(C=100.0).fit((scores - centre) / scale, labels)
    slope = float(model._logit.coef_[0, 0]) / scale
    intercept = float(model._logit.intercept_[0]) - slope * centre
    return Calibrator("logistic", slope=slope, intercept=intercept)


def _fit_pav(scores: np.ndarray, labels: np.ndarray) -> Calibrator:
    """lir's PAV (isotonic) calibrator, one misleading point added on each side so that
    no LLR is infinite; its knots are stored as natural-log LRs."""
    model = IsotonicCalibrator(add_misleading=1).fit(scores, labels)
    knots_x = np.asarray(model._ir._necessary_X_, dtype=np.float64)
    knots_llr = model.transform(knots_x) * LN10  # balanced weights: log10 odds = log10 LR
    return Calibrator("pav", knots_x=knots_x.tolist(), knots_llr=knots_llr.tolist())


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def _check_training_data(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(np.int64).ravel()
    if scores.shape != labels.shape:
        raise DataError(f"calibration: {len(scores)} scores for {len(labels)} labels")
    if not np.isfinite(scores).all():
        raise DataError("calibration: scores contain NaN or infinite values")
    if not set(np.unique(labels)) <= {0, 1}:
        raise DataError("calibration: labels must be 1 (target) or 0 (non-target)")
    if labels.sum() == 0 or labels.sum() == len(labels):
        raise DataError("calibration needs both target and non-target trials")
    return scores, labels
