"""Metrics on score sets whose values are derived by hand (derivations in the comments)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from balr.errors import DataError
from balr.evaluation import (
    act_dcf,
    bayes_threshold,
    cllr,
    compute_metrics,
    detection_stats,
    eer,
    min_cllr,
    min_dcf,
    pav_llrs,
)


def trials(tar: list[float], non: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels (1 target, 0 non-target) from target and non-target score lists."""
    scores = np.array(tar + non, dtype=float)
    labels = np.array([1] * len(tar) + [0] * len(non))
    return scores, labels


# ---------------------------------------------------------------- EER


def test_eer_exact_crossing():
    # Sorted: 0n 1t 2n 3t 4n 5t 6n 7t; accept score >= t.
    # t=3: FRR 1/4 (1), FAR 2/4 (4, 6)... t=4: FRR 2/4 (1, 3), FAR 2/4 (4, 6): equal -> 0.5 at 4.
    scores, labels = trials([1, 3, 5, 7], [0, 2, 4, 6])
    assert eer(scores, labels) == (0.5, 4.0)


def test_eer_interpolated_between_thresholds():
    # tar [2, 3], non [0, 1, 2.5]. t=2: FRR 0, FAR 1/3 (gap +1/3); t=2.5: FRR 1/2, FAR 1/3
    # (gap -1/6). Crossing at alpha = (1/3) / (1/3 + 1/6) = 2/3 of the way:
    # EER = 0 + 2/3 * 1/2 = 1/3. Smallest |FAR - FRR| is 1/6 at t = 2.5.
    scores, labels = trials([2, 3], [0, 1, 2.5])
    value, threshold = eer(scores, labels)
    assert value == pytest.approx(1 / 3)
    assert threshold == 2.5


def test_eer_perfect_separation_and_all_tied():
    # Separated: t=2 gives FRR 0, FAR 0.
    assert eer(*trials([2, 3], [0, 1])) == (0.0, 2.0)
    # One tied pair: accept-all (FRR 0, FAR 1) then reject-all (1, 0): crossing at 1/2.
    assert eer(*trials([1], [1])) == (0.5, 1.0)


def test_eer_needs_reject_all_point():
    # tar [0, 5], non [5]. t=0: (FRR 0, FAR 1); t=5: (1/2, 1), gap +1/2; reject all: (1, 0),
    # gap -1. alpha = (1/2) / (3/2) = 1/3: EER = 1/2 + 1/3 * 1/2 = 2/3; threshold 5 (|gap| 1/2).
    value, threshold = eer(*trials([0, 5], [5]))
    assert value == pytest.approx(2 / 3)
    assert threshold == 5.0


def test_eer_matches_gaussian_theory():
    # Targets N(+2, 1), non-targets N(-2, 1): the FAR and FRR curves cross at 0 where
    # EER = Phi(-2) = 0.02275. 40000 + 40000 samples: standard error ~ 0.0008.
    rng = np.random.default_rng(7)
    scores, labels = trials(list(rng.normal(2, 1, 40000)), list(rng.normal(-2, 1, 40000)))
    value, threshold = eer(scores, labels)
    assert value == pytest.approx(norm.cdf(-2.0), abs=0.003)
    assert threshold == pytest.approx(0.0, abs=0.1)


def test_eer_invariant_to_monotonic_transform():
    rng = np.random.default_rng(1)
    scores, labels = trials(list(rng.normal(1, 1, 300)), list(rng.normal(0, 1, 500)))
    value, threshold = eer(scores, labels)
    value_exp, threshold_exp = eer(np.exp(scores), labels)
    assert value_exp == pytest.approx(value)
    assert threshold_exp == pytest.approx(np.exp(threshold))


# ---------------------------------------------------------------- Cllr


def test_cllr_hand_values():
    # LLR 0 everywhere: each trial costs log2(1 + 1) = 1 bit -> Cllr 1.
    assert cllr(*trials([0.0, 0.0], [0.0])) == pytest.approx(1.0)
    # Target ln 3: log2(1 + 1/3); non-target -ln 3: log2(1 + 1/3) -> Cllr = log2(4/3).
    assert cllr(*trials([math.log(3)], [-math.log(3)])) == pytest.approx(math.log2(4 / 3))
    # Target ln 3 (log2(4/3)) and non-target ln 3 (log2(4)): mean = (0.41504 + 2) / 2.
    expected = (math.log2(4 / 3) + 2.0) / 2
    assert cllr(*trials([math.log(3)], [math.log(3)])) == pytest.approx(expected)


def test_cllr_overflow_safe():
    # A non-target LLR of 5000 costs log2(1 + e^5000) = 5000 / ln 2 bits (finite);
    # the target LLR of 5000 costs log2(1 + e^-5000) = 0. Cllr = (0 + 7213.475) / 2.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = cllr(*trials([5000.0], [5000.0]))
    assert math.isfinite(value)
    assert value == pytest.approx(5000 / math.log(2) / 2)
    assert cllr(*trials([5000.0], [-5000.0])) == 0.0


def test_cllr_matches_gaussian_theory():
    # Calibrated Gaussian LLRs: targets N(m, 2m), non-targets N(-m, 2m). Both classes then
    # cost E[log2(1 + e^-x)], x ~ N(m, 2m), which quad integrates.
    m, n = 3.0, 40000
    sd = math.sqrt(2 * m)
    expected, _ = integrate.quad(
        lambda x: norm.pdf(x, m, sd) * np.logaddexp(0, -x) / math.log(2), -40, 40
    )
    rng = np.random.default_rng(3)
    scores, labels = trials(list(rng.normal(m, sd, n)), list(rng.normal(-m, sd, n)))
    assert cllr(scores, labels) == pytest.approx(expected, abs=0.01)
    # Already calibrated, so PAV can only win the small finite-sample gain.
    assert min_cllr(scores, labels) == pytest.approx(expected, abs=0.02)
    assert min_cllr(scores, labels) <= cllr(scores, labels)


# ---------------------------------------------------------------- minCllr / PAV


def test_min_cllr_equal_priors_by_hand():
    # Sorted 0n 1t 2n 3t: PAV of [0, 1, 0, 1] pools the middle -> posteriors [0, .5, .5, 1];
    # prior odds 2/2 = 1 so LLRs [-inf, 0, 0, +inf]. Costs: target 1 -> 1 bit, target 3 -> 0,
    # non 0 -> 0, non 2 -> 1 bit: Cllr_min = (1/2 + 1/2) / 2 = 0.5.
    scores, labels = trials([1, 3], [0, 2])
    llrs = pav_llrs(scores, labels)
    np.testing.assert_array_equal(llrs, [0.0, np.inf, -np.inf, 0.0])
    assert min_cllr(scores, labels) == pytest.approx(0.5)


def test_min_cllr_unequal_priors_by_hand():
    # Sorted 0n 1t 2n 3n: PAV of [0, 1, 0, 0] pools the last three -> posterior 1/3, log odds
    # ln(1/2); prior odds 1/3, so LLR = ln(1/2) - ln(1/3) = ln(3/2); the lowest block -> -inf.
    # Target cost log2(1 + 2/3) = log2(5/3); non-targets 0, log2(5/2), log2(5/2).
    scores, labels = trials([1], [0, 2, 3])
    np.testing.assert_allclose(
        pav_llrs(scores, labels), [math.log(1.5), -np.inf] + [math.log(1.5)] * 2
    )
    expected = (math.log2(5 / 3) + 2 * math.log2(5 / 2) / 3) / 2  # 0.80913
    assert min_cllr(scores, labels) == pytest.approx(expected)


def test_min_cllr_ties_are_pooled():
    # One target and one non-target on the same score: they cannot be separated, so the
    # calibrated LLR is 0 and Cllr_min = 1.
    assert min_cllr(*trials([1.0], [1.0])) == pytest.approx(1.0)


def test_cllr_and_min_cllr_match_lir():
    lir_metrics = pytest.importorskip("lir.metrics")
    lir_models = pytest.importorskip("lir.data.models")
    rng = np.random.default_rng(11)
    # Rounded scores make ties; an offset and scale make the system miscalibrated.
    tar = list(np.round(rng.normal(1.5, 2.0, 300), 1))
    non = list(np.round(rng.normal(-1.0, 2.0, 900), 1))
    scores, labels = trials(tar, non)
    # lir works with log10 likelihood ratios: log10 LR = ln LR / ln 10.
    lir_data = lir_models.LLRData(features=scores / math.log(10), labels=labels)
    assert cllr(scores, labels) == pytest.approx(lir_metrics.cllr(lir_data), rel=1e-9)
    assert min_cllr(scores, labels) == pytest.approx(lir_metrics.cllr_min(lir_data), rel=1e-9)
    assert min_cllr(scores, labels) < cllr(scores, labels)


# ---------------------------------------------------------------- DCF


def test_min_and_act_dcf_by_hand():
    # One target at 10, 40 non-targets: 39 at -1 and one at 11.
    # p = 0.05: DCF = (0.05 Pmiss + 0.95 Pfa) / 0.05 = Pmiss + 19 Pfa.
    #   t = 10 -> Pmiss 0, Pfa 1/40 -> 0.475 (best; reject all = 1, t = 11 -> 1.475).
    # p = 0.01: DCF = Pmiss + 99 Pfa: t = 10 -> 2.475, so reject-all (1.0) is the minimum.
    scores, labels = trials([10.0], [-1.0] * 39 + [11.0])
    assert min_dcf(scores, labels, 0.05) == pytest.approx(0.475)
    assert min_dcf(scores, labels, 0.01) == pytest.approx(1.0)
    # Bayes thresholds ln 19 = 2.944 and ln 99 = 4.595: the target (10) and the non-target at
    # 11 are both accepted at either one: actDCF 0.475 and 2.475.
    assert act_dcf(scores, labels, 0.05) == pytest.approx(0.475)
    assert act_dcf(scores, labels, 0.01) == pytest.approx(2.475)
    # Target at 3.5 instead: accepted at ln 19 (0.475) but missed at ln 99: 1 + 2.475.
    scores[0] = 3.5
    assert act_dcf(scores, labels, 0.05) == pytest.approx(0.475)
    assert act_dcf(scores, labels, 0.01) == pytest.approx(3.475)


def test_bayes_threshold_values():
    assert bayes_threshold(0.01) == pytest.approx(math.log(99))
    assert bayes_threshold(0.5) == 0.0


def test_act_dcf_matches_gaussian_theory():
    # Calibrated Gaussian LLRs (m = 4, sd = sqrt 8), threshold th = ln 19:
    # Pmiss = Phi((th - m) / sd), Pfa = 1 - Phi((th + m) / sd), DCF = Pmiss + 19 Pfa.
    m, sd, n = 4.0, math.sqrt(8.0), 40000
    th = math.log(19)
    expected = norm.cdf((th - m) / sd) + 19 * norm.sf((th + m) / sd)
    rng = np.random.default_rng(5)
    scores, labels = trials(list(rng.normal(m, sd, n)), list(rng.normal(-m, sd, n)))
    assert act_dcf(scores, labels, 0.05) == pytest.approx(expected, abs=0.03)
    assert min_dcf(scores, labels, 0.05) <= act_dcf(scores, labels, 0.05)


# ---------------------------------------------------------------- detection statistics


def test_detection_stats_by_hand():
    # tar [2, 3], non [0, 1, 2.5], accept >= 2.5: TP 1 (3), FN 1 (2), FP 1 (2.5), TN 2.
    # precision 1/2, recall 1/2, F 1/2, FAR 1/3, FRR 1/2,
    # MCC = (1*2 - 1*1) / sqrt(2 * 2 * 3 * 3) = 1/6.
    stats = detection_stats(*trials([2, 3], [0, 1, 2.5]), threshold=2.5)
    assert (stats["tp"], stats["fn"], stats["fp"], stats["tn"]) == (1, 1, 1, 2)
    assert stats["far"] == pytest.approx(1 / 3)
    assert stats["frr"] == pytest.approx(1 / 2)
    assert stats["precision"] == pytest.approx(1 / 2)
    assert stats["recall"] == pytest.approx(1 / 2)
    assert stats["f_score"] == pytest.approx(1 / 2)
    assert stats["mcc"] == pytest.approx(1 / 6)


def test_detection_stats_zero_over_zero_is_zero():
    # Threshold above every score: nothing accepted, TP + FP = 0 -> precision 0/0 -> 0,
    # F-score 0/0 -> 0, MCC denominator 0 -> 0; FRR 1, FAR 0.
    stats = detection_stats(*trials([2, 3], [0, 1]), threshold=10.0)
    assert (stats["tp"], stats["fn"], stats["fp"], stats["tn"]) == (0, 2, 0, 2)
    assert stats["precision"] == stats["f_score"] == stats["mcc"] == 0.0
    assert (stats["frr"], stats["far"]) == (1.0, 0.0)


def test_detection_stats_perfect_mcc():
    stats = detection_stats(*trials([2, 3], [0, 1]), threshold=2.0)
    assert stats["mcc"] == pytest.approx(1.0)
    assert stats["f_score"] == pytest.approx(1.0)


def test_detection_stats_large_counts_do_not_overflow():
    # 2M trials: (TP+FP)(TP+FN)(TN+FP)(TN+FN) ~ 1e24 would overflow int64. Perfect split: MCC 1.
    n = 1_000_000
    scores = np.concatenate((np.ones(n), np.zeros(n)))
    labels = np.concatenate((np.ones(n, int), np.zeros(n, int)))
    assert detection_stats(scores, labels, 0.5)["mcc"] == pytest.approx(1.0)


# ---------------------------------------------------------------- compute_metrics


def test_compute_metrics_keys_types_and_values():
    scores, labels = trials([1, 3, 5, 7], [0, 2, 4, 6])
    metrics = compute_metrics(scores, labels.astype(bool))
    assert list(metrics) == [
        "eer",
        "eer_threshold",
        "cllr",
        "min_cllr",
        "min_dcf_0.01",
        "min_dcf_0.05",
        "act_dcf_0.01",
        "act_dcf_0.05",
        "threshold",
        "tp",
        "tn",
        "fp",
        "fn",
        "far",
        "frr",
        "precision",
        "recall",
        "f_score",
        "mcc",
        "n_target",
        "n_nontarget",
    ]
    assert all(type(v) in (int, float) for v in metrics.values())
    json.dumps(metrics)
    # At the EER threshold 4: TP 2 (5, 7), FN 2, FP 2 (4, 6), TN 2; MCC (4 - 4) / 16 = 0.
    assert metrics["eer"] == 0.5 and metrics["threshold"] == 4.0
    assert (metrics["tp"], metrics["tn"], metrics["fp"], metrics["fn"]) == (2, 2, 2, 2)
    assert metrics["mcc"] == 0.0
    # min DCF (p = 0.01: Pmiss + 99 Pfa): best is t = 7 -> Pmiss 3/4, Pfa 0 -> 0.75.
    assert metrics["min_dcf_0.01"] == pytest.approx(0.75)
    assert (metrics["n_target"], metrics["n_nontarget"]) == (4, 4)


def test_compute_metrics_given_threshold():
    # Accept >= 6.5: TP 1 (7), FN 3, FP 0, TN 4.
    metrics = compute_metrics(*trials([1, 3, 5, 7], [0, 2, 4, 6]), threshold=6.5)
    assert metrics["threshold"] == 6.5 and metrics["eer_threshold"] == 4.0
    assert (metrics["tp"], metrics["fn"], metrics["fp"], metrics["tn"]) == (1, 3, 0, 4)
    assert metrics["precision"] == 1.0 and metrics["recall"] == 0.25


# ---------------------------------------------------------------- input errors


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([1.0, 2.0], [0, 0], "no target"),
        ([1.0, 2.0], [1, 1], "no non-target"),
        ([1.0, np.nan], [1, 0], "NaN"),
        ([1.0, 2.0], [1, 2], "index 1 has 2"),
        ([1.0, 2.0, 3.0], [1, 0], "3 scores but 2 labels"),
    ],
)
def test_bad_input_raises_data_error(scores, labels, message):
    with pytest.raises(DataError, match=message):
        compute_metrics(np.array(scores), np.array(labels))


@pytest.mark.difference("BA-metrics-keys")
def test_reference_metrics_by_hand():
    """Targets 0.9 0.4, non-targets 0.6 0.1. Thresholds: scores and midpoints. At 0.5,
    FRR = P(tar <= 0.5) = 1/2, FAR = P(non > 0.5) = 1/2: EER 0.5 at the first threshold
    where |FAR - FRR| is smallest (0.4: FRR 1/2, FAR 1/2). Accepting score > 0.4: TP 1
    (0.9), FN 1, FP 1 (0.6), TN 1."""
    from balr.evaluation.metrics import REFERENCE_KEYS, reference_metrics

    scores = np.array([0.9, 0.4, 0.6, 0.1])
    labels = np.array([1, 1, 0, 0])
    m = reference_metrics(scores, labels)
    assert tuple(m) == REFERENCE_KEYS
    assert m["EER"] == 0.5 and m["EER_thres"] == m["threshold"] == 0.4
    assert (m["TP"], m["TN"], m["FP"], m["FN"]) == (1.0, 1.0, 1.0, 1.0)
    assert m["DER"] == pytest.approx(1.0) and m["F-score"] == 0.5 and m["MCC"] == pytest.approx(0)
    assert m["precision"] == pytest.approx(0.5) and m["CLLR"] == pytest.approx(cllr(scores, labels))


def test_misleading_shares_count_strong_evidence_for_the_wrong_hypothesis():
    from balr.evaluation.metrics import misleading_shares, strongly_misleading

    # ln 100 = 4.605: 5.0 is LR 148 (> 100), 4.6 is LR 99.5 (not), -4.7 is LR 1/110 (< 1/100)
    llrs = np.array([5.0, 4.6, -9.0, -4.7, -4.6, 9.0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(
        strongly_misleading(llrs, labels), [True, False, False, True, False, False]
    )
    assert misleading_shares(llrs, labels) == pytest.approx(
        {"nontarget_lr_above_100": 1 / 3, "target_lr_below_0.01": 1 / 3}
    )


def test_ece_curve_by_hand_and_as_lir_computes_it():
    """ECE at even prior odds is Cllr's average of the two costs; at every prior it equals
    lir's `calculate_ece` (which holds (priors, trials) arrays); the LR = 1 reference is the
    prior's entropy; a wrong-side infinite LLR gives an infinite cross-entropy."""
    from lir.plotting.expected_calibration_error import calculate_ece

    from balr.evaluation.metrics import ece_curve, pav_llrs

    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(300), np.zeros(2000)].astype(int)
    llrs = np.r_[rng.normal(2, 2, 300), rng.normal(-3, 2, 2000)]
    odds = np.arange(-3.0, 3.0, 0.25)
    curve = ece_curve(llrs, labels, odds)
    assert curve[odds == 0.0][0] == pytest.approx(cllr(llrs, labels))
    priors = 1 / (1 + 10.0**-odds)
    np.testing.assert_allclose(curve, calculate_ece(np.exp(llrs), labels, priors), rtol=1e-9)
    entropy = -(priors * np.log2(priors) + (1 - priors) * np.log2(1 - priors))
    np.testing.assert_allclose(ece_curve(np.zeros(2300), labels, odds), entropy, rtol=1e-12)
    pav = pav_llrs(llrs, labels)
    np.testing.assert_allclose(
        ece_curve(pav, labels, odds), calculate_ece(np.exp(pav), labels, priors), rtol=1e-9
    )
    wrong = llrs.copy()
    wrong[0] = -np.inf  # a target at LR 0
    assert np.isinf(ece_curve(wrong, labels, odds)).all()
