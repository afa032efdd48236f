"""Score calibration: raw scores -> calibrated natural-log likelihood ratios.

`Calibrator` is an estimator like the scorers: `Calibrator(method, bounded).fit(scores,
labels)` learns the map, `transform(scores)` applies it, `save(path)` / `Calibrator.load(path)`
keep it as plain JSON parameters, so loading runs no code. Two methods, both fitted through
lir's public API:

- `logistic`: logistic regression with balanced classes, `llr = slope * s + intercept`
  (Brümmer & du Preez, "Application-independent evaluation of speaker detection",
  Computer Speech and Language 2006);
- `pav`: pool-adjacent-violators (isotonic regression), a monotone map through knots
  (Zadrozny & Elkan, KDD 2002), with one misleading score added beyond each end of the data
  so that no LLR is infinite.

`bounded` clips the LLRs to the empirical lower and upper bounds (ELUB) of the training data
(Vergeer et al., "Numerical likelihood ratios outputted by LR systems are often based on
extrapolation: when to stop extrapolating?", Science & Justice 2016). lir works in log10;
every value stored or returned here is a natural-log LR (converted explicitly with LN10).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from lir.algorithms.isotonic_regression import IsotonicCalibrator
from lir.algorithms.logistic_regression import LogitCalibrator

from balr.errors import DataError, ModelError
from balr.fileio import atomic_write_text

LN10 = math.log(10.0)
METHODS = ("logistic", "pav")
#: inverse L2 strength of lir's logistic regression, on standardised scores
LOGISTIC_C = 100.0


def elub_bounds(
    llrs10: np.ndarray,
    labels: np.ndarray,
    add_misleading: int = 1,
    step: float = 0.01,
    extremes: tuple[float, float] = (-9.0, 9.0),
) -> tuple[float, float]:
    """Empirical lower and upper bounds (log10) of calibrated log10 LLRs (Vergeer et al. 2016).

    On a grid of log10 thresholds t (every `step`), the system's expected utility
    `1 - P(accept | Hp) + 10^t P(accept | Hd)` (accept: LLR > t, with `add_misleading`
    misleading LLRs added to each side) is compared with a neutral system's; the bounds are
    the thresholds nearest 0 beyond which the system does worse than neutral. The same
    definition as lir's `elub`, computed with two sorted arrays in O(n log n) time and
    O(n + thresholds) memory (lir builds an n x thresholds matrix: gigabytes at 500k trials).
    """
    llrs10 = np.clip(np.asarray(llrs10, dtype=np.float64), *extremes)
    is_target = np.asarray(labels) == 1
    low = max(llrs10.min(), -math.log10(is_target.sum() + 1))
    high = min(llrs10.max(), math.log10((~is_target).sum() + 1))
    first, last = min(0, int(low // step)), max(0, int(high // step) + 1)
    thresholds = np.linspace(first * step, last * step, last - first + 1)
    targets, nontargets = np.sort(llrs10[is_target]), np.sort(llrs10[~is_target])

    def accepted(sorted_llrs: np.ndarray) -> np.ndarray:  # how many exceed each threshold
        return len(sorted_llrs) - np.searchsorted(sorted_llrs, thresholds, side="right")

    p_accept_target = accepted(targets) / (len(targets) + add_misleading)
    p_accept_nontarget = (accepted(nontargets) + add_misleading) / (
        len(nontargets) + add_misleading
    )
    utility_system = 1 - p_accept_target + 10**thresholds * p_accept_nontarget
    neutral_accepts = (thresholds < 0).astype(np.float64)
    utility_neutral = 1 - neutral_accepts + 10**thresholds * neutral_accepts
    worse = utility_neutral / utility_system < 1
    lower = np.max(thresholds[(thresholds <= 0) & worse] + step, initial=thresholds.min())
    upper = np.min(thresholds[(thresholds >= 0) & worse] - step, initial=thresholds.max())
    return float(min(lower, 0.0)), float(max(upper, 0.0))


class Calibrator:
    """A score -> LLR map: `logistic` (LLR = slope * s + intercept) or `pav` (monotone map
    through `knots_x_` -> `knots_llr_`), clipped to the ELUB bounds when `bounded`.

    Fitted attributes: `slope_`, `intercept_`, `knots_x_`, `knots_llr_`, `lower_bound_`,
    `upper_bound_` (None when unbounded), `n_target_`, `n_nontarget_`.
    """

    def __init__(self, method: str = "logistic", bounded: bool = True, description: str = ""):
        if method not in METHODS:
            raise ModelError(f"calibration method '{method}': expected one of {METHODS}")
        self.method = method
        self.bounded = bool(bounded)
        self.description = description
        self.slope_: float | None = None
        self.intercept_: float | None = None
        self.knots_x_: list[float] | None = None
        self.knots_llr_: list[float] | None = None
        self.lower_bound_: float | None = None
        self.upper_bound_: float | None = None
        self.n_target_: int | None = None
        self.n_nontarget_: int | None = None

    @property
    def is_fitted(self) -> bool:
        return self.n_target_ is not None

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> Calibrator:
        """Fit on labelled scores (labels 1 target / 0 non-target)."""
        scores, labels = _check_training_data(scores, labels)
        self.slope_, self.intercept_, self.knots_x_, self.knots_llr_ = 0.0, 0.0, [], []
        if self.method == "logistic":
            self.slope_, self.intercept_ = _fit_logistic(scores, labels)
        else:
            self.knots_x_, self.knots_llr_ = _fit_pav(scores, labels)
        self.n_target_ = int(labels.sum())
        self.n_nontarget_ = int(len(labels) - labels.sum())
        self.lower_bound_ = self.upper_bound_ = None
        if self.bounded:
            lower10, upper10 = elub_bounds(self.transform(scores) / LN10, labels)
            self.lower_bound_, self.upper_bound_ = lower10 * LN10, upper10 * LN10
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated natural-log LRs of `scores`, clipped to the ELUB bounds if fitted."""
        if not self.is_fitted:
            raise ModelError("the calibrator is not fitted: call fit() or load a calibration")
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "logistic":
            llrs = self.slope_ * scores + self.intercept_
        else:  # interpolate posteriors (as lir does), then back to LLRs
            posterior = np.interp(scores, self.knots_x_, _sigmoid(np.asarray(self.knots_llr_)))
            posterior = np.clip(posterior, 1e-300, 1 - 1e-16)
            llrs = np.log(posterior) - np.log1p(-posterior)
        lower = -np.inf if self.lower_bound_ is None else self.lower_bound_
        upper = np.inf if self.upper_bound_ is None else self.upper_bound_
        return np.clip(llrs, lower, upper)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as stored in calibration.json (natural-log LRs)."""
        return {
            "method": self.method,
            "slope": self.slope_,
            "intercept": self.intercept_,
            "knots_x": self.knots_x_,
            "knots_llr": self.knots_llr_,
            "lower_bound": self.lower_bound_,
            "upper_bound": self.upper_bound_,
            "n_target": self.n_target_,
            "n_nontarget": self.n_nontarget_,
            "description": self.description,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write calibration.json atomically (plain JSON)."""
        if not self.is_fitted:
            raise ModelError("the calibrator is not fitted: nothing to save")
        atomic_write_text(path, json.dumps({"calibrator": self.to_dict()}, indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Calibrator:
        """Read a calibrator saved by `save` (JSON only)."""
        try:
            data = json.loads(Path(path).read_text())["calibrator"]
            calibrator = cls._from_dict(data)
        except FileNotFoundError:
            raise ModelError(f"{path}: calibration file not found") from None
        except OSError as exc:  # a directory, no permission
            raise ModelError(f"{path}: cannot read calibration file ({exc.strerror})") from None
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path}: not a balr calibration file ({exc})") from None
        return calibrator

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> Calibrator:
        unknown = set(data) - set(cls().to_dict())
        if unknown:
            raise TypeError(f"unexpected keys {', '.join(sorted(unknown))}")
        if data["method"] not in METHODS:
            raise ModelError(f"unknown calibration method '{data['method']}'")
        calibrator = cls(
            data["method"], data.get("lower_bound") is not None, data.get("description", "")
        )
        calibrator.slope_ = data.get("slope", 0.0)
        calibrator.intercept_ = data.get("intercept", 0.0)
        calibrator.knots_x_ = data.get("knots_x", [])
        calibrator.knots_llr_ = data.get("knots_llr", [])
        calibrator.lower_bound_ = data.get("lower_bound")
        calibrator.upper_bound_ = data.get("upper_bound")
        calibrator.n_target_ = data.get("n_target", 0)
        calibrator.n_nontarget_ = data.get("n_nontarget", 0)
        return calibrator


def _fit_logistic(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """`(slope, intercept)` of lir's balanced logistic regression on standardised scores (so
    its mild L2 penalty does not depend on the score scale), mapped back to the raw score.

    lir's map is affine, `log10 LR = (b + a z) / ln 10`: `b` is read from its value at `z = 0`
    and `a` from its value at a large power of two, where `a z` dominates (a few ulp of
    rounding at most).
    """
    centre, scale = float(scores.mean()), float(scores.std()) or 1.0
    model = LogitCalibrator(C=LOGISTIC_C).fit((scores - centre) / scale, labels)
    far = 2.0**20
    at_zero, at_far = model.transform(np.array([0.0, far])) / np.log10(np.e)
    slope = float(at_far - at_zero) / far / scale
    return slope, float(at_zero) - slope * centre


def _fit_pav(scores: np.ndarray, labels: np.ndarray) -> tuple[list[float], list[float]]:
    """`(knots_x, knots_llr)` of lir's PAV (isotonic) calibrator, one misleading score added
    one unit beyond each end of the data (a non-target above, a target below).

    The map is linear between consecutive distinct training scores, so its values there are
    its knots; points inside a flat run (equal to both neighbours) are dropped. Balanced
    weights make lir's log10 odds the log10 LR.
    """
    x = np.concatenate([scores, [scores.max() + 1.0, scores.min() - 1.0]])
    y = np.concatenate([labels, [0, 1]])
    model = IsotonicCalibrator().fit(x, y)
    knots_x = np.unique(x)
    log10_lrs = model.transform(knots_x)
    inner = log10_lrs[1:-1]
    flat = (inner == log10_lrs[:-2]) & (inner == log10_lrs[2:])
    keep = np.concatenate([[True], ~flat, [True]])
    return knots_x[keep].tolist(), (log10_lrs[keep] * LN10).tolist()


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
