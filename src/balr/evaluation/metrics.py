"""Detection metrics on score arrays: EER, Cllr, minCllr, minDCF, actDCF, detection statistics.

Conventions used throughout:
- labels: 1 (or True) = target trial, 0 (or False) = non-target trial;
- a trial is accepted when `score >= threshold`;
- scores are natural-log likelihood ratios wherever a metric needs LLRs (Cllr, actDCF);
- all functions are pure (arrays in, numbers out) and vectorised: O(n log n) for n trials.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression

from balr.errors import DataError

P_TARGETS: tuple[float, ...] = (0.01, 0.05)
LN2 = float(np.log(2.0))
LN10 = float(np.log(10.0))


def check_scores(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return (float64 scores, bool is_target); DataError on bad input."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise DataError(f"{scores.size} scores but {labels.size} labels")
    if np.isnan(scores).any():
        raise DataError(
            f"{int(np.isnan(scores).sum())} scores are NaN (first at index "
            f"{int(np.flatnonzero(np.isnan(scores))[0])})"
        )
    if labels.dtype != np.bool_:
        bad = ~np.isin(labels, (0, 1))
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"labels must be 1 (target) or 0 (non-target); index {first} has "
                f"{labels[first].item()!r} (drop unknown-speaker trials, -1, first)"
            )
    is_target = labels.astype(bool)
    if not is_target.any():
        raise DataError(f"no target trials among {labels.size} trials (need labels 1 and 0)")
    if is_target.all():
        raise DataError(f"no non-target trials among {labels.size} trials (need labels 1 and 0)")
    return scores, is_target


@dataclass(frozen=True)
class ScoreSweep:
    """Error rates at every distinct score used as threshold, plus the reject-all point.

    `thresholds[k]` is the k-th distinct score (ascending); `frr[k]`/`far[k]` are the miss and
    false-alarm rates when accepting `score >= thresholds[k]`. The arrays `frr`/`far` have one
    extra last entry (1, 0): the reject-everything operating point.
    """

    thresholds: np.ndarray
    frr: np.ndarray
    far: np.ndarray
    n_target: int
    n_nontarget: int


def score_sweep(scores: np.ndarray, labels: np.ndarray) -> ScoreSweep:
    """Sweep the threshold over all distinct scores (ties counted together) in one sort."""
    scores, is_target = check_scores(scores, labels)
    thresholds, inverse = np.unique(scores, return_inverse=True)
    tar_counts = np.bincount(inverse, weights=is_target, minlength=thresholds.size)
    non_counts = np.bincount(inverse, weights=~is_target, minlength=thresholds.size)
    n_tar, n_non = int(is_target.sum()), int((~is_target).sum())
    # Rejected at threshold k: every score strictly below thresholds[k].
    tar_below = np.concatenate(([0.0], np.cumsum(tar_counts)))
    non_below = np.concatenate(([0.0], np.cumsum(non_counts)))
    return ScoreSweep(thresholds, tar_below / n_tar, 1.0 - non_below / n_non, n_tar, n_non)


def eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Equal error rate and its threshold, from the sorted-scores sweep.

    The FRR and FAR staircases are followed threshold by threshold; where FAR - FRR first
    becomes <= 0 the EER is taken at the crossing of the straight segments joining the two
    bracketing operating points (exact when both rates are equal at a threshold). The returned
    threshold is the distinct score whose |FAR - FRR| is smallest (lowest such score on ties):
    the realisable operating point nearest the EER.
    """
    return eer_from_sweep(score_sweep(scores, labels))


def eer_from_sweep(sweep: ScoreSweep) -> tuple[float, float]:
    """EER and its threshold from a precomputed sweep (see `eer`)."""
    gap = sweep.far - sweep.frr  # non-increasing, from 1 (accept all) to -1 (reject all)
    k = int(np.argmax(gap <= 0))
    if gap[k] == 0:
        value = sweep.frr[k]
    else:
        alpha = gap[k - 1] / (gap[k - 1] - gap[k])
        value = sweep.frr[k - 1] + alpha * (sweep.frr[k] - sweep.frr[k - 1])
    best = int(np.argmin(np.abs(gap[:-1])))
    return float(value), float(sweep.thresholds[best])


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow (x = 5000 gives 5000, x = +inf gives inf)."""
    return np.logaddexp(0.0, x)


def cllr(scores: np.ndarray, labels: np.ndarray) -> float:
    """Log-likelihood-ratio cost in bits of natural-log LLRs (Brümmer & du Preez, 2006).

    Cllr = (mean log2(1 + e^-llr_tar) + mean log2(1 + e^llr_non)) / 2, computed in the
    softplus form so any finite LLR gives a finite cost; 0 is perfect, 1 is an uninformative
    system that always says LLR = 0.
    """
    llrs, is_target = check_scores(scores, labels)
    tar_cost = _softplus(-llrs[is_target]).mean()
    non_cost = _softplus(llrs[~is_target]).mean()
    return float((tar_cost + non_cost) / (2.0 * LN2))


def pav_llrs(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Optimally calibrated natural-log LLRs of the scores, by pool-adjacent-violators
    (the minCllr construction of Brümmer & du Preez, 2006).

    Tied scores are pooled first (a tie cannot be split by any threshold), then a weighted
    isotonic regression of the target proportion gives a non-decreasing posterior; dividing out
    the empirical prior odds turns it into an LLR. The lowest/highest blocks may be pure
    non-targets/targets, giving -inf/+inf LLRs: those only ever fall on trials of the class
    they favour, where their cost is exactly 0 (the standard PAV convention).
    """
    scores, is_target = check_scores(scores, labels)
    unique, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    tar_counts = np.bincount(inverse, weights=is_target, minlength=unique.size)
    posterior = isotonic_regression(tar_counts / counts, weights=counts).x
    posterior = np.clip(posterior, 0.0, 1.0)  # remove float round-off outside [0, 1]
    n_tar = int(is_target.sum())
    prior_log_odds = np.log(n_tar / (is_target.size - n_tar))
    with np.errstate(divide="ignore"):
        log_odds = np.log(posterior) - np.log1p(-posterior)
    return (log_odds - prior_log_odds)[inverse]


def ece_curve(scores: np.ndarray, labels: np.ndarray, log10_prior_odds: np.ndarray) -> np.ndarray:
    """Empirical cross-entropy (bits) of natural-log LLRs at each prior log10 odds (Ramos,
    PhD thesis 2007): `P(Hp) mean_tar log2(1 + 1/(odds LR)) + P(Hd) mean_non log2(1 + odds
    LR)`, one prior at a time (memory O(trials); lir's `calculate_ece` holds several
    `(priors, trials)` arrays, 3.8 GB on 158,000 trials). Infinite LLRs on the wrong side
    give an infinite cross-entropy, as in lir."""
    llrs, is_target = check_scores(scores, labels)
    targets, nontargets = llrs[is_target], llrs[~is_target]
    curve = np.empty(len(log10_prior_odds))
    for k, log10_odds in enumerate(np.asarray(log10_prior_odds, dtype=np.float64)):
        log_odds = log10_odds * LN10
        prior = 1.0 / (1.0 + np.exp(-log_odds))
        tar = np.logaddexp(0.0, -(targets + log_odds)).mean()
        non = np.logaddexp(0.0, nontargets + log_odds).mean()
        curve[k] = (prior * tar + (1.0 - prior) * non) / LN2
    return curve


def min_cllr(scores: np.ndarray, labels: np.ndarray) -> float:
    """Cllr after optimal monotone (PAV) calibration: the discrimination part of Cllr."""
    scores, is_target = check_scores(scores, labels)
    return cllr(pav_llrs(scores, is_target), is_target)


#: |ln LR| beyond which evidence is "strong" (LR > 100 or < 1/100)
STRONG_LLR = float(np.log(100))


def strongly_misleading(llrs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per trial: a different-speaker LR > 100 or a same-speaker LR < 1/100 (natural-log
    LLRs; labels 1 = same speaker)."""
    llrs, labels = np.asarray(llrs, dtype=np.float64), np.asarray(labels)
    return ((labels == 0) & (llrs > STRONG_LLR)) | ((labels == 1) & (llrs < -STRONG_LLR))


def misleading_shares(llrs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Share of different-speaker trials with LR > 100 and of same-speaker ones with
    LR < 1/100 (NaN where a class has no trial)."""
    misleading, labels = strongly_misleading(llrs, labels), np.asarray(labels)
    non, tar = misleading[labels == 0], misleading[labels == 1]
    return {
        "nontarget_lr_above_100": float(non.mean()) if len(non) else float("nan"),
        "target_lr_below_0.01": float(tar.mean()) if len(tar) else float("nan"),
    }


def _normaliser(p_target: float, c_miss: float, c_fa: float) -> float:
    """Cost of the best trivial system (accept all or reject all), which normalises DCF."""
    return min(p_target * c_miss, (1.0 - p_target) * c_fa)


def min_dcf(
    scores: np.ndarray, labels: np.ndarray, p_target: float, c_miss: float = 1.0, c_fa: float = 1.0
) -> float:
    """Normalised detection cost at the best threshold (accept-all and reject-all included)."""
    return min_dcf_from_sweep(score_sweep(scores, labels), p_target, c_miss, c_fa)


def min_dcf_from_sweep(
    sweep: ScoreSweep, p_target: float, c_miss: float = 1.0, c_fa: float = 1.0
) -> float:
    """minDCF from a precomputed sweep (see `min_dcf`)."""
    cost = p_target * c_miss * sweep.frr + (1.0 - p_target) * c_fa * sweep.far
    return float(cost.min() / _normaliser(p_target, c_miss, c_fa))


def bayes_threshold(p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """LLR threshold of the Bayes decision: log((1 - p) c_fa / (p c_miss))."""
    return float(np.log((1.0 - p_target) * c_fa / (p_target * c_miss)))


def act_dcf(
    scores: np.ndarray, labels: np.ndarray, p_target: float, c_miss: float = 1.0, c_fa: float = 1.0
) -> float:
    """Normalised detection cost when scores, read as natural-log LLRs, decide at the Bayes
    threshold (accept when llr >= threshold); can exceed 1 for a badly calibrated system."""
    llrs, is_target = check_scores(scores, labels)
    threshold = bayes_threshold(p_target, c_miss, c_fa)
    p_miss = np.mean(llrs[is_target] < threshold)
    p_fa = np.mean(llrs[~is_target] >= threshold)
    cost = p_target * c_miss * p_miss + (1.0 - p_target) * c_fa * p_fa
    return float(cost / _normaliser(p_target, c_miss, c_fa))


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, with 0/0 (and x/0) defined as 0."""
    return float(numerator / denominator) if denominator else 0.0


def detection_stats(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Confusion counts and rates when accepting `score >= threshold`.

    FAR = FP / non-targets, FRR = FN / targets, precision = TP / (TP + FP),
    recall = TP / targets, F-score = harmonic mean of precision and recall,
    MCC = (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)); any 0/0 is 0.
    """
    scores, is_target = check_scores(scores, labels)
    accepted = scores >= threshold
    tp = int(np.count_nonzero(accepted & is_target))
    fn = int(np.count_nonzero(~accepted & is_target))
    fp = int(np.count_nonzero(accepted & ~is_target))
    tn = int(np.count_nonzero(~accepted & ~is_target))
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    # Products in float: four counts of a million trials overflow int64.
    mcc_denominator = float(np.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    return {
        "threshold": float(threshold),
        "tp": tp,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "far": _ratio(fp, fp + tn),
        "frr": _ratio(fn, fn + tp),
        "precision": precision,
        "recall": recall,
        "f_score": _ratio(2.0 * precision * recall, precision + recall),
        "mcc": _ratio(float(tp) * tn - float(fp) * fn, mcc_denominator),
    }


def compute_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float | None = None) -> dict:
    """All metrics as a flat JSON-serialisable dict (Python floats and ints).

    Detection statistics are taken at `threshold`, or at the EER threshold when it is None.
    """
    scores, is_target = check_scores(scores, labels)
    sweep = score_sweep(scores, is_target)
    eer_value, eer_threshold = eer_from_sweep(sweep)
    metrics: dict = {
        "eer": eer_value,
        "eer_threshold": eer_threshold,
        "cllr": cllr(scores, is_target),
        "min_cllr": min_cllr(scores, is_target),
    }
    for p in P_TARGETS:
        metrics[f"min_dcf_{p}"] = min_dcf_from_sweep(sweep, p)
    for p in P_TARGETS:
        metrics[f"act_dcf_{p}"] = act_dcf(scores, is_target, p)
    used = eer_threshold if threshold is None else float(threshold)
    metrics.update(detection_stats(scores, is_target, used))
    metrics["n_target"] = int(is_target.sum())
    metrics["n_nontarget"] = int((~is_target).sum())
    return metrics


#: keys that the reference BA-LR library writes to metrics.json (its speechbrain summary)
REFERENCE_KEYS = (
    "EER", "EER_thres", "threshold", "TP", "TN", "FP", "FN", "FAR", "FRR", "DER",
    "precision", "recall", "F-score", "MCC", "CLLR",
)  # fmt: skip


def reference_metrics(scores: np.ndarray, labels: np.ndarray) -> dict:
    """The metrics the reference BA-LR library writes, with its definitions (speechbrain's
    `BinaryMetricStats`): thresholds are the distinct scores and the midpoints between them;
    FRR = share of targets <= t, FAR = share of non-targets > t; the EER is (FAR + FRR) / 2
    at the first threshold minimising |FAR - FRR|; counts accept `score > threshold`; rates
    carry the reference's 1e-8 guards; DER = (FP + FN) / (TP + TN) as it defines it."""
    scores, is_target = check_scores(scores, labels)
    targets, nontargets = np.sort(scores[is_target]), np.sort(scores[~is_target])
    distinct = np.unique(scores)
    thresholds = np.sort(np.concatenate([distinct, (distinct[1:] + distinct[:-1]) / 2]))
    frr = np.searchsorted(targets, thresholds, side="right") / len(targets)
    far = (len(nontargets) - np.searchsorted(nontargets, thresholds, side="right")) / len(
        nontargets
    )
    best = int(np.argmin(np.abs(far - frr)))
    threshold = float(thresholds[best])
    tp = float((targets > threshold).sum())
    fn = float(len(targets) - tp)
    fp = float((nontargets > threshold).sum())
    tn = float(len(nontargets) - fp)
    eps = 1e-8
    mcc_denominator = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + eps) ** 0.5
    values = {
        "EER": float((far[best] + frr[best]) / 2),
        "EER_thres": threshold,
        "threshold": threshold,
        "TP": tp,
        "TN": tn,
        "FP": fp,
        "FN": fn,
        "FAR": fp / (fp + tn + eps),
        "FRR": fn / (tp + fn + eps),
        "DER": (fp + fn) / (tp + tn + eps),
        "precision": tp / (tp + fp + eps),
        "recall": tp / (tp + fn + eps),
        "F-score": 2 * tp / (2 * tp + fn + fp),
        "MCC": (tp * tn - fp * fn) / mcc_denominator,
        "CLLR": cllr(scores, is_target),
    }
    return {key: values[key] for key in REFERENCE_KEYS}
