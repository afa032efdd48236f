"""Calibration: known LLR recovery, Cllr improvement on held-out data, lir parity, files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from lir.algorithms.bayeserror import elub
from lir.algorithms.isotonic_regression import IsotonicCalibrator

from balr.calibration import Calibrator, fit_calibrator
from balr.errors import DataError, ModelError
from balr.evaluation import cllr


def gaussian_scores(n_target: int, n_nontarget: int, seed: int):
    """Raw scores s = 0.1 x + 0.3 with x ~ N(+2, 1) for targets and N(-2, 1) otherwise.

    The true LLR of x is log N(x; 2, 1) - log N(x; -2, 1) = 4x, so in terms of the raw
    score it is 4 (s - 0.3) / 0.1 = 40 s - 12: slope 40, intercept -12.
    """
    rng = np.random.default_rng(seed)
    x = np.r_[rng.normal(2, 1, n_target), rng.normal(-2, 1, n_nontarget)]
    labels = np.r_[np.ones(n_target), np.zeros(n_nontarget)].astype(int)
    return 0.1 * x + 0.3, labels


def test_logistic_recovers_the_true_llr_map():
    scores, labels = gaussian_scores(20_000, 20_000, seed=1)
    calibrator = fit_calibrator(scores, labels, "logistic", bounded=False)
    assert calibrator.slope == pytest.approx(40.0, rel=0.05)
    assert calibrator.intercept == pytest.approx(-12.0, rel=0.05)
    # at s = 0.3 (x = 0) the evidence is neutral
    assert calibrator.transform(np.array([0.3]))[0] == pytest.approx(0.0, abs=0.2)


@pytest.mark.parametrize("method", ["logistic", "pav"])
def test_calibrated_cllr_beats_raw_on_held_out_trials(method):
    train_scores, train_labels = gaussian_scores(300, 3000, seed=2)
    test_scores, test_labels = gaussian_scores(300, 3000, seed=3)
    raw = cllr(test_scores, test_labels)  # raw scores read as LLRs: badly scaled
    calibrator = fit_calibrator(train_scores, train_labels, method)
    calibrated = cllr(calibrator.transform(test_scores), test_labels)
    assert calibrated < raw
    # the ideal LLR 40 s - 12 bounds what any calibrator can reach
    ideal = cllr(40 * test_scores - 12, test_labels)
    assert calibrated < ideal + 0.05


def test_pav_equals_lir_and_is_monotone_and_finite():
    scores, labels = gaussian_scores(200, 2000, seed=4)
    ours = fit_calibrator(scores, labels, "pav", bounded=False)
    theirs = IsotonicCalibrator(add_misleading=1).fit(scores, labels)
    grid = np.linspace(scores.min() - 1, scores.max() + 1, 500)
    np.testing.assert_allclose(
        ours.transform(grid), theirs.transform(grid) * math.log(10), atol=1e-9
    )
    llrs = ours.transform(grid)
    assert np.isfinite(llrs).all() and (np.diff(llrs) >= -1e-12).all()


def test_elub_bounds_are_lirs_in_natural_log():
    scores, labels = gaussian_scores(100, 1000, seed=5)
    calibrator = fit_calibrator(scores, labels, "logistic")
    unbounded = fit_calibrator(scores, labels, "logistic", bounded=False)
    lower10, upper10 = elub(unbounded.transform(scores) / math.log(10), labels.copy())
    assert calibrator.lower_bound == pytest.approx(lower10 * math.log(10))
    assert calibrator.upper_bound == pytest.approx(upper10 * math.log(10))
    # ELUB never exceeds log10(n_nontarget + 1) on the same-speaker side
    assert calibrator.upper_bound <= math.log(1001) + 1e-9
    extreme = calibrator.transform(np.array([-100.0, 100.0]))
    assert extreme.tolist() == [calibrator.lower_bound, calibrator.upper_bound]


def test_save_load_round_trip_is_plain_json(tmp_path):
    scores, labels = gaussian_scores(100, 1000, seed=6)
    for method in ("logistic", "pav"):
        calibrator = fit_calibrator(scores, labels, method, description="unit test")
        path = tmp_path / f"{method}.json"
        calibrator.save(path)
        assert json.loads(path.read_text())["calibrator"]["method"] == method
        loaded = Calibrator.load(path)
        np.testing.assert_array_equal(loaded.transform(scores), calibrator.transform(scores))
        assert loaded.n_target == 100 and loaded.n_nontarget == 1000


def test_bad_inputs():
    with pytest.raises(DataError, match="needs both target and non-target"):
        fit_calibrator(np.zeros(5), np.ones(5))
    with pytest.raises(DataError, match="NaN or infinite"):
        fit_calibrator(np.array([0.0, np.nan]), np.array([0, 1]))
    with pytest.raises(ModelError, match="calibration method 'spline'"):
        fit_calibrator(np.array([0.0, 1.0]), np.array([0, 1]), "spline")


def test_load_errors(tmp_path):
    with pytest.raises(ModelError, match="calibration file not found"):
        Calibrator.load(tmp_path / "none.json")
    (tmp_path / "x.json").write_text('{"something": 1}')
    with pytest.raises(ModelError, match="not a balr calibration file"):
        Calibrator.load(tmp_path / "x.json")
