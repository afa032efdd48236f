"""qmf calibration (duration terms), groups, clamping, exact LLR parts and file round trips."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from balr.calibration import Calibrator, balanced_weights, log_durations, make_calibrator
from balr.errors import DataError

#: the true map of `duration_scores`: llr = 2 s - 1 - 0.6 dmin + 0.4 dmax
SLOPE, INTERCEPT, C_MIN, C_MAX = 2.0, -1.0, -0.6, 0.4

#: the shipped logistic calibration files as they were before qmf, groups and conditions
#: (balr 0.1's format; the shipped files have since been rebuilt as qmf / with conditions)
LOGISTIC_FILES_BEFORE_QMF = [
    Path(__file__).parent / "fixtures" / "calibration_logistic_before_qmf.json",
    Path(__file__).parent / "fixtures" / "calibration_cosine_logistic_before_qmf.json",
]


def duration_scores(n_per_class: int, seed: int):
    """Scores whose class means move with the log durations: s ~ N(m(d) +- 1/2 * 2, 1) with
    m(d) = 0.5 + 0.3 dmin - 0.2 dmax and the same durations distribution in both classes.

    The LLR of s given the durations is 2 (s - m(d)) = 2 s - 1 - 0.6 dmin + 0.4 dmax.
    """
    rng = np.random.default_rng(seed)
    n = 2 * n_per_class
    seconds = np.exp(rng.uniform(0.0, math.log(30.0), size=(n, 2)))  # 1-30 s, log-uniform
    logs = log_durations(seconds)
    centre = 0.5 + 0.3 * logs[:, 0] - 0.2 * logs[:, 1]
    labels = np.r_[np.ones(n_per_class), np.zeros(n_per_class)].astype(int)
    scores = centre + np.where(labels == 1, 1.0, -1.0) + rng.normal(0, 1, n)
    return scores, labels, seconds


def test_log_durations_orders_the_sides_and_floors_short_speech():
    logs = log_durations(np.array([[4.0, 1.0], [0.1, 2.0], [np.nan, 3.0]]))
    np.testing.assert_allclose(logs[0], [0.0, math.log(4.0)])
    np.testing.assert_allclose(logs[1], [math.log(0.3), math.log(2.0)])
    assert np.isnan(logs[2]).all()


def test_qmf_recovers_the_duration_terms():
    scores, labels, seconds = duration_scores(20_000, seed=3)
    calibrator = make_calibrator("qmf", bounded=False).fit(scores, labels, seconds)
    assert calibrator.slope_ == pytest.approx(SLOPE, abs=0.05)
    assert calibrator.intercept_ == pytest.approx(INTERCEPT, abs=0.1)
    assert calibrator.duration_coefs_ == pytest.approx([C_MIN, C_MAX], abs=0.06)
    # plain logistic cannot see the durations: its LLRs are further from the truth
    logs = log_durations(seconds)
    truth = SLOPE * scores + INTERCEPT + logs @ [C_MIN, C_MAX]
    plain = make_calibrator("logistic", bounded=False).fit(scores, labels).transform(scores)
    qmf_error = np.abs(calibrator.transform(scores, seconds) - truth).mean()
    assert qmf_error < 0.05 < np.abs(plain - truth).mean()


def test_qmf_clamps_durations_to_the_calibrated_range():
    scores, labels, seconds = duration_scores(2_000, seed=4)
    calibrator = make_calibrator("qmf", bounded=False).fit(scores, labels, seconds)
    (min_low, _), (_, max_high) = np.exp(calibrator.log_duration_ranges_)  # within 1-30 s
    assert 1.0 < min_low < 1.1 and 27.0 < max_high < 30.0
    high = max_high
    at_edge = calibrator.transform(np.zeros(1), np.array([[high, high]]))
    far_beyond = calibrator.transform(np.zeros(1), np.array([[600.0, 600.0]]))
    assert far_beyond == pytest.approx(at_edge, abs=1e-12)
    # unknown durations take the calibration medians
    medians = np.exp(calibrator.log_duration_medians_)
    unknown = calibrator.transform(np.zeros(2), np.array([[np.nan, 5.0], [np.nan, np.nan]]))
    assert unknown[1] == pytest.approx(calibrator.transform(np.zeros(1), medians[None])[0])
    assert calibrator.transform(np.zeros(1))[0] == pytest.approx(unknown[1])


def test_qmf_parts_add_up_to_the_llr_with_bounding():
    scores, labels, seconds = duration_scores(2_000, seed=5)
    calibrator = make_calibrator("qmf").fit(scores, labels, seconds)
    probe = np.array([-30.0, 0.0, 0.5, 30.0])
    probe_seconds = np.array([[2.0, 3.0], [1.5, 15.0], [9.0, 4.0], [3.0, 3.0]])
    parts = calibrator.parts(probe, probe_seconds)
    np.testing.assert_allclose(
        parts.slope * probe + parts.offset + parts.bounding, parts.llr, atol=1e-12
    )
    logs = log_durations(probe_seconds)
    expected_offset = calibrator.intercept_ + logs @ calibrator.duration_coefs_
    np.testing.assert_allclose(parts.offset, expected_offset, atol=1e-12)
    assert parts.bounding[0] > 0 and parts.bounding[-1] < 0  # clipped at both ends
    assert parts.llr[0] == calibrator.lower_bound_ and parts.llr[-1] == calibrator.upper_bound_
    assert parts.bounding[1:3].tolist() == [0.0, 0.0]


def test_qmf_needs_durations_to_fit():
    scores, labels, _ = duration_scores(100, seed=6)
    with pytest.raises(DataError, match="needs the speech durations"):
        make_calibrator("qmf").fit(scores, labels)
    with pytest.raises(DataError, match="every trial needs known speech durations"):
        make_calibrator("qmf").fit(scores, labels, np.full((len(scores), 2), np.nan))


def test_balanced_weights_give_each_group_and_class_equal_weight():
    labels = np.array([1, 0, 0, 0, 1, 0])
    groups = np.array(["a", "a", "a", "a", "b", "b"])
    weights = balanced_weights(labels, groups)
    assert weights.sum() == pytest.approx(6.0)
    # a: 1 target, 3 non-targets; b: 1 and 1; each class of each group holds 6 / 4
    np.testing.assert_allclose(weights, [1.5, 0.5, 0.5, 0.5, 1.5, 1.5])


@pytest.mark.parametrize("method", ["logistic", "qmf"])
def test_groups_weigh_equally(method):
    """A small group weighs as much as a large one: the same as repeating it to equal size."""
    scores, labels, seconds = duration_scores(2_000, seed=7)
    small = np.r_[np.arange(200), 2_000 + np.arange(200)]
    large = np.r_[np.arange(200, 2_000), 2_000 + np.arange(200, 2_000)]
    groups = np.where(np.isin(np.arange(len(scores)), small), "small", "large")
    rng = np.random.default_rng(0)
    large_scores = scores[large] + rng.normal(0, 0.3, len(large))  # a different population
    all_scores = np.r_[scores[small], large_scores]
    all_labels, all_seconds = (
        np.r_[labels[small], labels[large]],
        np.r_[seconds[small], seconds[large]],
    )
    all_groups = np.r_[groups[small], groups[large]]
    grouped = make_calibrator(method, bounded=False).fit(
        all_scores, all_labels, all_seconds, all_groups
    )
    repeated = np.r_[np.tile(small, 9), np.arange(len(small))]
    pooled_scores = np.r_[np.tile(scores[small], 9), large_scores]
    pooled = make_calibrator(method, bounded=False).fit(
        pooled_scores,
        np.r_[np.tile(labels[small], 9), labels[large]],
        np.r_[np.tile(seconds[small], (9, 1)), seconds[large]],
        np.zeros(len(pooled_scores)),  # one group: the same weighted fit, without groups
    )
    assert len(repeated) and grouped.groups_ == ["large", "small"]
    # qmf: the clamp ranges are percentiles of the trials as given, so they move a little
    tolerance = 1e-4 if method == "logistic" else 1e-3
    assert grouped.slope_ == pytest.approx(pooled.slope_, rel=tolerance)
    assert grouped.intercept_ == pytest.approx(pooled.intercept_, abs=tolerance)


def test_logistic_with_one_group_is_lirs_fit():
    """The same model; lir's solver stops at sklearn's default tolerance (about 1e-5 here)."""
    scores, labels, _ = duration_scores(2_000, seed=8)
    labels[:500] = 0  # unequal classes: the balancing matters
    plain = make_calibrator("logistic", bounded=False).fit(scores, labels)
    grouped = make_calibrator("logistic", bounded=False).fit(
        scores, labels, groups=["x"] * len(labels)
    )
    assert grouped.slope_ == pytest.approx(plain.slope_, rel=1e-4)
    assert grouped.intercept_ == pytest.approx(plain.intercept_, rel=1e-4)


def test_pav_with_groups_is_monotone_and_balanced():
    scores, labels, _ = duration_scores(1_000, seed=9)
    groups = np.where(np.arange(len(scores)) % 3 == 0, "a", "b")
    calibrator = make_calibrator("pav", bounded=False).fit(scores, labels, groups=groups)
    assert np.all(np.diff(calibrator.knots_llr_) >= 0)
    assert np.isfinite(calibrator.knots_llr_).all()
    assert calibrator.transform(np.array([0.0]))[0] == pytest.approx(-1.0, abs=0.5)


def test_qmf_file_round_trip_stores_every_coefficient(tmp_path):
    scores, labels, seconds = duration_scores(1_000, seed=10)
    calibrator = make_calibrator("qmf", description="unit").fit(
        scores, labels, seconds, ["g"] * 2000
    )
    calibrator.save(tmp_path / "calibration.json")
    record = json.loads((tmp_path / "calibration.json").read_text())["calibrator"]
    assert record["duration_coefs"] == calibrator.duration_coefs_
    assert record["log_duration_ranges"] == calibrator.log_duration_ranges_
    assert record["min_speech_s"] == 0.3 and record["groups"] == ["g"]
    assert record["lower_bound"] < 0 < record["upper_bound"]
    loaded = Calibrator.load(tmp_path / "calibration.json")
    probe = np.linspace(-3, 3, 7)
    probe_seconds = np.tile([[0.5, 40.0]], (7, 1))
    np.testing.assert_array_equal(
        loaded.transform(probe, probe_seconds), calibrator.transform(probe, probe_seconds)
    )


@pytest.mark.parametrize("shipped", LOGISTIC_FILES_BEFORE_QMF)
def test_existing_calibration_files_give_the_same_llrs(shipped):
    """Files written before qmf: llr = slope * s + intercept, clipped, durations ignored."""
    record = json.loads(shipped.read_text())["calibrator"]
    calibrator = Calibrator.load(shipped)
    probe = np.linspace(-50, 50, 101)
    expected = np.clip(
        record["slope"] * probe + record["intercept"], record["lower_bound"], record["upper_bound"]
    )
    np.testing.assert_array_equal(calibrator.transform(probe), expected)
    np.testing.assert_array_equal(calibrator.transform(probe, np.full((101, 2), 0.1)), expected)
    parts = calibrator.parts(probe)
    np.testing.assert_array_equal(parts.offset, record["intercept"])
