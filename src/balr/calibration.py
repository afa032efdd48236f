"""Score calibration: raw scores -> calibrated natural-log likelihood ratios.

`Calibrator` is an estimator like the scorers: `Calibrator(method, bounded).fit(scores,
labels)` learns the map, `transform(scores)` applies it, `save(path)` / `Calibrator.load(path)`
keep it as plain JSON parameters, so loading runs no code. Three methods:

- `logistic`: logistic regression with balanced classes, `llr = slope * s + intercept`
  (Brümmer & du Preez, "Application-independent evaluation of speaker detection",
  Computer Speech and Language 2006), fitted through lir's public API;
- `pav`: pool-adjacent-violators (isotonic regression), a monotone map through knots
  (Zadrozny & Elkan, KDD 2002), with one misleading score added beyond each end of the data
  so that no LLR is infinite, fitted through lir's public API;
- `qmf`: a quality measure function (Brümmer et al., "Fusion of heterogeneous speaker
  recognition systems in the STBU submission for the NIST SRE 2006", IEEE TASLP 2007;
  Mandasari et al., "Quality measure functions for calibration of speaker recognition
  systems in various duration conditions", IEEE TASLP 2013):
  `llr = slope * s + intercept + c_min * dmin + c_max * dmax`, where dmin / dmax are the log
  net speech seconds (floored at `MIN_SPEECH_S`) of the side with less / more speech,
  clamped to the [0.5, 99.5] % range seen in calibration; balanced logistic regression.

Every method accepts per-trial `groups` (e.g. the corpus of each trial): each group then
weighs equally, with its target and non-target classes balanced inside it. Without groups
`logistic` and `pav` are exactly lir's balanced fits.

`bounded` clips the LLRs to the empirical lower and upper bounds (ELUB) of the training data
(Vergeer et al., "Numerical likelihood ratios outputted by LR systems are often based on
extrapolation: when to stop extrapolating?", Science & Justice 2016). lir works in log10;
every value stored or returned here is a natural-log LR (converted explicitly with LN10).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lir.algorithms.isotonic_regression import IsotonicCalibrator, IsotonicRegression
from lir.algorithms.logistic_regression import LogitCalibrator
from sklearn.linear_model import LogisticRegression

from balr.errors import DataError, ModelError
from balr.fileio import atomic_write_text

LN10 = math.log(10.0)
METHODS = ("logistic", "pav", "qmf")
#: inverse L2 strength of lir's logistic regression, on standardised scores
LOGISTIC_C = 100.0
#: the keys a `qmf` calibration.json record adds (attributes of the same name + `_`)
QMF_KEYS = ("duration_coefs", "log_duration_ranges", "log_duration_medians", "min_speech_s")
#: net speech seconds below this count as this much in the qmf duration terms (log of 0)
MIN_SPEECH_S = 0.3
#: percentiles of the calibration trials' log durations that bound the qmf duration terms
DURATION_PERCENTILES = (0.5, 99.5)


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


@dataclass(frozen=True)
class LLRParts:
    """A calibrated LLR split into exactly additive parts (natural logs, one value per trial):
    `llr = slope * score + offset + bounding` for `logistic` and `qmf` (`slope` None for `pav`,
    whose map is not linear: there `offset` is 0 and `llr = unbounded + bounding`).

    `offset` is the intercept, plus the duration terms for `qmf`; `bounding` is the change
    made by clipping to the ELUB bounds (0 inside them)."""

    llr: np.ndarray
    slope: float | None
    offset: np.ndarray
    bounding: np.ndarray


class Calibrator:
    """A score -> LLR map: `logistic` (LLR = slope * s + intercept), `pav` (monotone map
    through `knots_x_` -> `knots_llr_`) or `qmf` (logistic plus duration terms
    `duration_coefs_ @ [dmin, dmax]`, the log durations clamped to `log_duration_ranges_`),
    clipped to the ELUB bounds when `bounded`.

    Fitted attributes: `slope_`, `intercept_`, `knots_x_`, `knots_llr_`, `duration_coefs_`
    (`[c_min, c_max]`), `log_duration_ranges_` (`[[dmin low, high], [dmax low, high]]`),
    `log_duration_medians_` (used for trials without durations), `min_speech_s_` (the
    floor of the speech seconds, `MIN_SPEECH_S` when fitted), `lower_bound_`,
    `upper_bound_` (None when unbounded), `n_target_`, `n_nontarget_`, `groups_` (the group
    names fitted with, [] without groups).
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
        self.duration_coefs_: list[float] | None = None
        self.log_duration_ranges_: list[list[float]] | None = None
        self.log_duration_medians_: list[float] | None = None
        self.min_speech_s_: float | None = None
        self.lower_bound_: float | None = None
        self.upper_bound_: float | None = None
        self.n_target_: int | None = None
        self.n_nontarget_: int | None = None
        self.groups_: list[str] | None = None

    @property
    def is_fitted(self) -> bool:
        return self.n_target_ is not None

    @property
    def uses_durations(self) -> bool:
        """Whether `transform` needs the trials' speech durations (`qmf`)."""
        return self.method == "qmf"

    def fit(
        self,
        scores: np.ndarray,
        labels: np.ndarray,
        durations: np.ndarray | None = None,
        groups: np.ndarray | None = None,
    ) -> Calibrator:
        """Fit on labelled scores (labels 1 target / 0 non-target). `durations`: `(n, 2)` net
        speech seconds of the enrollment and test side of each trial, needed by `qmf` (NaN
        not allowed here). `groups`: optional per-trial group names (each group weighs
        equally, classes balanced inside it)."""
        scores, labels = _check_training_data(scores, labels)
        if groups is not None:
            groups = np.asarray(groups).astype(str).ravel()
            if groups.shape != labels.shape:
                raise DataError(f"calibration: {len(groups)} groups for {len(labels)} trials")
        self.slope_, self.intercept_, self.knots_x_, self.knots_llr_ = 0.0, 0.0, [], []
        self.duration_coefs_ = self.log_duration_ranges_ = self.log_duration_medians_ = None
        self.min_speech_s_ = MIN_SPEECH_S if self.method == "qmf" else None
        self.groups_ = [] if groups is None else sorted(set(groups.tolist()))
        if self.method == "qmf":
            logs = self._fit_duration_ranges(durations, len(scores))
            features = np.column_stack([scores, self._clamped(logs)])
            coefs, self.intercept_ = _fit_weighted_logistic(
                features, labels, balanced_weights(labels, groups)
            )
            self.slope_, self.duration_coefs_ = coefs[0], coefs[1:]
        elif self.method == "logistic" and groups is None:
            self.slope_, self.intercept_ = _fit_logistic(scores, labels)
        elif self.method == "logistic":
            coefs, self.intercept_ = _fit_weighted_logistic(
                scores[:, None], labels, balanced_weights(labels, groups)
            )
            self.slope_ = coefs[0]
        else:
            self.knots_x_, self.knots_llr_ = _fit_pav(scores, labels, groups)
        self.n_target_ = int(labels.sum())
        self.n_nontarget_ = int(len(labels) - labels.sum())
        self.lower_bound_ = self.upper_bound_ = None
        if self.bounded:
            llrs = self.transform(scores, durations)
            lower10, upper10 = elub_bounds(llrs / LN10, labels)
            self.lower_bound_, self.upper_bound_ = lower10 * LN10, upper10 * LN10
        return self

    def transform(self, scores: np.ndarray, durations: np.ndarray | None = None) -> np.ndarray:
        """Calibrated natural-log LRs of `scores`, clipped to the ELUB bounds if fitted.
        `qmf` uses `durations` (`(n, 2)` seconds; a trial with NaN, or all trials when None,
        gets the calibration trials' median log durations); the other methods ignore them."""
        return self.parts(scores, durations).llr

    def parts(self, scores: np.ndarray, durations: np.ndarray | None = None) -> LLRParts:
        """The calibrated LLRs and their exactly additive parts (see `LLRParts`)."""
        if not self.is_fitted:
            raise ModelError("the calibrator is not fitted: call fit() or load a calibration")
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "pav":  # interpolate posteriors (as lir does), then back to LLRs
            posterior = np.interp(scores, self.knots_x_, _sigmoid(np.asarray(self.knots_llr_)))
            posterior = np.clip(posterior, 1e-300, 1 - 1e-16)
            unbounded = np.log(posterior) - np.log1p(-posterior)
            slope, offset = None, np.zeros_like(scores)
        else:
            slope = self.slope_
            offset = np.full_like(scores, self.intercept_)
            if self.method == "qmf":
                offset = offset + self.duration_offsets(durations, len(scores))
            unbounded = slope * scores + offset
        lower = -np.inf if self.lower_bound_ is None else self.lower_bound_
        upper = np.inf if self.upper_bound_ is None else self.upper_bound_
        llrs = np.clip(unbounded, lower, upper)  # NaN scores stay NaN
        return LLRParts(llrs, slope, offset, llrs - unbounded)

    def duration_offsets(self, durations: np.ndarray | None, n_trials: int) -> np.ndarray:
        """`c_min * dmin + c_max * dmax` per trial (`qmf`; zeros for the other methods), with
        the clamped log durations, the calibration medians where durations are unknown."""
        if self.method != "qmf":
            return np.zeros(n_trials)
        if durations is None:
            logs = np.full((n_trials, 2), np.nan)
        else:
            logs = log_durations(durations, self.min_speech_s_)
            if len(logs) != n_trials:
                raise DataError(f"speech durations: {len(logs)} rows for {n_trials} trials")
        logs = np.where(np.isnan(logs), np.asarray(self.log_duration_medians_), logs)
        return self._clamped(logs) @ np.asarray(self.duration_coefs_)

    def _fit_duration_ranges(self, durations: np.ndarray | None, n_trials: int) -> np.ndarray:
        if durations is None:
            raise DataError("qmf calibration needs the speech durations of the trials")
        logs = log_durations(durations, self.min_speech_s_)
        if len(logs) != n_trials:
            raise DataError(f"speech durations: {len(logs)} rows for {n_trials} trials")
        if not np.isfinite(logs).all():
            raise DataError("qmf calibration: every trial needs known speech durations")
        self.log_duration_ranges_ = np.percentile(logs, DURATION_PERCENTILES, axis=0).T.tolist()
        self.log_duration_medians_ = np.median(logs, axis=0).tolist()
        return logs

    def _clamped(self, logs: np.ndarray) -> np.ndarray:
        ranges = np.asarray(self.log_duration_ranges_)
        return np.clip(logs, ranges[:, 0], ranges[:, 1])

    def to_dict(self) -> dict[str, Any]:
        """The parameters as stored in calibration.json (natural-log LRs; durations as
        natural logs of seconds). The `qmf` keys and `groups` appear only when used, so a
        `logistic` or `pav` file keeps the format it had before them."""
        record = {
            "method": self.method,
            "slope": self.slope_,
            "intercept": self.intercept_,
            "knots_x": self.knots_x_,
            "knots_llr": self.knots_llr_,
        }
        if self.method == "qmf":
            record |= {key: getattr(self, f"{key}_") for key in QMF_KEYS}
        record |= {
            "lower_bound": self.lower_bound_,
            "upper_bound": self.upper_bound_,
            "n_target": self.n_target_,
            "n_nontarget": self.n_nontarget_,
        }
        if self.groups_:
            record["groups"] = self.groups_
        return record | {"description": self.description}

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
        unknown = set(data) - set(cls().to_dict()) - set(QMF_KEYS) - {"groups"}
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
        calibrator.groups_ = data.get("groups") or []
        if data["method"] == "qmf":
            calibrator.duration_coefs_ = [float(c) for c in data["duration_coefs"]]
            calibrator.log_duration_ranges_ = [
                [float(low), float(high)] for low, high in data["log_duration_ranges"]
            ]
            calibrator.log_duration_medians_ = [float(m) for m in data["log_duration_medians"]]
            calibrator.min_speech_s_ = float(data["min_speech_s"])
            if len(calibrator.duration_coefs_) != 2 or len(calibrator.log_duration_ranges_) != 2:
                raise ValueError("qmf needs two duration coefficients and two ranges")
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


def _fit_weighted_logistic(
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


def _fit_pav(
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
