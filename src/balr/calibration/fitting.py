"""The numerical fits behind the calibrators: balanced weights, (weighted) logistic
regression, PAV, log speech durations and the checks of training data. lir works in log10;
every value returned here is a natural-log LR (converted explicitly with `LN10`)."""

from __future__ import annotations

import math

import numpy as np
from lir.algorithms.isotonic_regression import IsotonicCalibrator, IsotonicRegression
from lir.algorithms.logistic_regression import LogitCalibrator
from sklearn.linear_model import LogisticRegression

from balr.errors import DataError

LN10 = math.log(10.0)
#: inverse L2 strength of lir's logistic regression, on standardised scores
LOGISTIC_C = 100.0
#: net speech seconds below this count as this much in the qmf duration terms (log of 0)
MIN_SPEECH_S = 0.3


def log_durations(durations: np.ndarray, floor_s: float = MIN_SPEECH_S) -> np.ndarray:
    """`(n, 2)` log net speech seconds `[dmin, dmax]` of the side with less / more speech,
    from `(n, 2)` seconds of the two sides (floored at `floor_s`; NaN stays NaN)."""
    seconds = np.asarray(durations, dtype=np.float64)
    if seconds.ndim != 2 or seconds.shape[1] != 2:
        raise DataError(f"speech durations: expected (trials, 2) seconds, got {seconds.shape}")
    logs = np.log(np.maximum(seconds, floor_s))  # NaN propagates through maximum
    return np.stack(
        [np.minimum(logs[:, 0], logs[:, 1]), np.maximum(logs[:, 0], logs[:, 1])], axis=1
    )


def balanced_weights(labels: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Per-trial weights summing to the number of trials: each group (one group when None)
    weighs equally, and inside each group the target and non-target classes weigh equally.
    With one group these are sklearn's `class_weight="balanced"` weights."""
    labels = np.asarray(labels)
    groups = np.zeros(len(labels)) if groups is None else np.asarray(groups)
    weights = np.zeros(len(labels))
    names = np.unique(groups)
    for name in names:
        for label in (0, 1):
            members = (groups == name) & (labels == label)
            weights[members] = 1.0 / (2 * len(names) * members.sum()) if members.any() else 0.0
    return weights * len(labels)


def fit_logistic(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
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


def fit_weighted_logistic(
    features: np.ndarray, labels: np.ndarray, weights: np.ndarray
) -> tuple[list[float], float]:
    """`(coefficients, intercept)` of an L2-regularised logistic regression with per-trial
    `weights`, fitted on features standardised with the same weights (the penalty
    `LOGISTIC_C` of the `logistic` method) and mapped back to the raw features. With
    `balanced_weights` of one group and one feature this is the model lir's `logistic` fits."""
    centre = np.average(features, axis=0, weights=weights)
    scale = np.sqrt(np.average((features - centre) ** 2, axis=0, weights=weights))
    scale = np.where(scale > 0, scale, 1.0)
    model = LogisticRegression(C=LOGISTIC_C, tol=1e-10, max_iter=10_000)
    model.fit((features - centre) / scale, labels, sample_weight=weights)
    coefs = model.coef_[0] / scale
    return coefs.tolist(), float(model.intercept_[0] - coefs @ centre)


def fit_pav(
    scores: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None
) -> tuple[list[float], list[float]]:
    """`(knots_x, knots_llr)` of lir's PAV (isotonic) calibrator, one misleading score added
    one unit beyond each end of the data (a non-target above, a target below); with
    `groups`, weighted by `balanced_weights` (lir's calibrator has no weights).

    The map is linear between consecutive distinct training scores, so its values there are
    its knots; points inside a flat run (equal to both neighbours) are dropped. Balanced
    weights make lir's log10 odds the log10 LR.
    """
    x = np.concatenate([scores, [scores.max() + 1.0, scores.min() - 1.0]])
    y = np.concatenate([labels, [0, 1]])
    if groups is None:
        knots_x = np.unique(x)
        log10_lrs = IsotonicCalibrator().fit(x, y).transform(knots_x)
    else:  # the misleading pair weighs as an average trial of its class
        weights = balanced_weights(labels, groups)
        mean_weight = [weights[labels == label].mean() for label in (0, 1)]
        weights = np.concatenate([weights, mean_weight])
        knots_x = np.unique(x)
        posterior = IsotonicRegression(out_of_bounds="clip").fit(x, y, weights).transform(knots_x)
        with np.errstate(divide="ignore"):
            log10_lrs = np.log10(posterior) - np.log10(1 - posterior)
    inner = log10_lrs[1:-1]
    flat = (inner == log10_lrs[:-2]) & (inner == log10_lrs[2:])
    keep = np.concatenate([[True], ~flat, [True]])
    return knots_x[keep].tolist(), (log10_lrs[keep] * LN10).tolist()


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def check_training_data(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 scores and int64 labels, both 1-D and finite, with both classes present."""
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


def check_groups(groups: np.ndarray | None, n_trials: int) -> np.ndarray | None:
    """Per-trial group names as strings (None stays None)."""
    if groups is None:
        return None
    groups = np.asarray(groups).astype(str).ravel()
    if len(groups) != n_trials:
        raise DataError(f"calibration: {len(groups)} groups for {n_trials} trials")
    return groups
