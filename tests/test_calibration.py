"""Calibration: known LLR recovery, Cllr improvement on held-out data, lir parity, files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from lir.algorithms.bayeserror import elub
from lir.algorithms.isotonic_regression import IsotonicCalibrator

from balr.calibration import Calibrator, make_calibrator
from balr.errors import ConfigError, DataError, ModelError
from balr.evaluation import cllr

#: the shipped logistic calibration files as they were before qmf, groups and conditions
#: (balr 0.1's format; the shipped files have since been rebuilt as qmf / with conditions)
LOGISTIC_FILES_BEFORE_QMF = [
    Path(__file__).parent / "fixtures" / "calibration_logistic_before_qmf.json",
    Path(__file__).parent / "fixtures" / "calibration_cosine_logistic_before_qmf.json",
]


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
    calibrator = make_calibrator("logistic", bounded=False).fit(scores, labels)
    assert calibrator.slope_ == pytest.approx(40.0, rel=0.05)
    assert calibrator.intercept_ == pytest.approx(-12.0, rel=0.05)
    # at s = 0.3 (x = 0) the evidence is neutral
    assert calibrator.transform(np.array([0.3]))[0] == pytest.approx(0.0, abs=0.2)


@pytest.mark.parametrize("method", ["logistic", "pav"])
def test_calibrated_cllr_beats_raw_on_held_out_trials(method):
    train_scores, train_labels = gaussian_scores(300, 3000, seed=2)
    test_scores, test_labels = gaussian_scores(300, 3000, seed=3)
    raw = cllr(test_scores, test_labels)  # raw scores read as LLRs: badly scaled
    calibrator = make_calibrator(method).fit(train_scores, train_labels)
    calibrated = cllr(calibrator.transform(test_scores), test_labels)
    assert calibrated < raw
    # the ideal LLR 40 s - 12 bounds what any calibrator can reach
    ideal = cllr(40 * test_scores - 12, test_labels)
    assert calibrated < ideal + 0.05


def test_pav_equals_lir_and_is_monotone_and_finite():
    scores, labels = gaussian_scores(200, 2000, seed=4)
    ours = make_calibrator("pav", bounded=False).fit(scores, labels)
    theirs = IsotonicCalibrator(add_misleading=1).fit(scores, labels)
    grid = np.linspace(scores.min() - 1, scores.max() + 1, 500)
    np.testing.assert_allclose(
        ours.transform(grid), theirs.transform(grid) * math.log(10), atol=1e-9
    )
    llrs = ours.transform(grid)
    assert np.isfinite(llrs).all() and (np.diff(llrs) >= -1e-12).all()


def test_elub_bounds_are_lirs_in_natural_log():
    scores, labels = gaussian_scores(100, 1000, seed=5)
    calibrator = make_calibrator("logistic").fit(scores, labels)
    unbounded = make_calibrator("logistic", bounded=False).fit(scores, labels)
    lower10, upper10 = elub(unbounded.transform(scores) / math.log(10), labels.copy())
    assert calibrator.lower_bound_ == pytest.approx(lower10 * math.log(10))
    assert calibrator.upper_bound_ == pytest.approx(upper10 * math.log(10))
    # ELUB never exceeds log10(n_nontarget + 1) on the same-speaker side
    assert calibrator.upper_bound_ <= math.log(1001) + 1e-9
    extreme = calibrator.transform(np.array([-100.0, 100.0]))
    assert extreme.tolist() == [calibrator.lower_bound_, calibrator.upper_bound_]


def test_save_load_round_trip_is_plain_json(tmp_path):
    scores, labels = gaussian_scores(100, 1000, seed=6)
    for method in ("logistic", "pav"):
        calibrator = make_calibrator(method, description="unit test").fit(scores, labels)
        path = tmp_path / f"{method}.json"
        calibrator.save(path)
        assert json.loads(path.read_text())["calibrator"]["method"] == method
        loaded = Calibrator.load(path)
        np.testing.assert_array_equal(loaded.transform(scores), calibrator.transform(scores))
        assert loaded.n_target_ == 100 and loaded.n_nontarget_ == 1000


def test_bad_inputs():
    with pytest.raises(DataError, match="needs both target and non-target"):
        make_calibrator().fit(np.zeros(5), np.ones(5))
    with pytest.raises(DataError, match="NaN or infinite"):
        make_calibrator().fit(np.array([0.0, np.nan]), np.array([0, 1]))
    with pytest.raises(ConfigError, match="calibration method 'spline'"):
        make_calibrator("spline")


def test_load_errors(tmp_path):
    with pytest.raises(ModelError, match="calibration file not found"):
        Calibrator.load(tmp_path / "none.json")
    (tmp_path / "x.json").write_text('{"something": 1}')
    with pytest.raises(ModelError, match="not a balr calibration file"):
        Calibrator.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"calibrator": {"method": "logistic", "scale": 2}}')
    with pytest.raises(ModelError, match="not a balr calibration file"):
        Calibrator.load(tmp_path / "y.json")
    (tmp_path / "z.json").write_text('{"calibrator": {"method": "spline"}}')
    with pytest.raises(ModelError, match="z.json: field 'method' is 'spline'"):
        Calibrator.load(tmp_path / "z.json")


@pytest.mark.parametrize("shipped", LOGISTIC_FILES_BEFORE_QMF)
def test_file_format_is_unchanged(shipped, tmp_path):
    """A calibration.json written before the estimator API loads and saves back identically."""
    calibrator = Calibrator.load(shipped)
    assert calibrator.bounded and calibrator.method == "logistic"
    calibrator.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == shipped.read_text()
    record = json.loads(shipped.read_text())["calibrator"]
    assert list(record) == [
        "method",
        "slope",
        "intercept",
        "knots_x",
        "knots_llr",
        "lower_bound",
        "upper_bound",
        "n_target",
        "n_nontarget",
        "description",
    ]


def test_unfitted_calibrator_is_an_error(tmp_path):
    with pytest.raises(ModelError, match="not fitted"):
        make_calibrator().transform(np.zeros(3))
    with pytest.raises(ModelError, match="not fitted"):
        make_calibrator().save(tmp_path / "c.json")


@pytest.mark.parametrize("seed", range(6))
def test_elub_bounds_equal_lir_elub(seed):
    """Same definition as lir's `elub`, without its trials x thresholds matrix."""
    from balr.calibration import elub_bounds

    rng = np.random.default_rng(seed)
    n_target, n_nontarget = rng.integers(5, 300, size=2)
    separation = rng.uniform(0.5, 4.0)
    llrs = np.concatenate(
        [rng.normal(separation, 1.5, n_target), rng.normal(-separation, 1.5, n_nontarget)]
    )
    labels = np.concatenate([np.ones(n_target), np.zeros(n_nontarget)])
    assert elub_bounds(llrs, labels) == pytest.approx(elub(llrs.copy(), labels.copy()), abs=1e-12)


def test_elub_bounds_of_half_a_million_trials_in_little_memory():
    import resource

    from balr.calibration import elub_bounds

    rng = np.random.default_rng(0)
    labels = (rng.random(500_000) < 0.01).astype(float)
    llrs = np.where(
        labels == 1, rng.normal(2.0, 1.0, labels.size), rng.normal(-2.0, 1.0, labels.size)
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lower, upper = elub_bounds(llrs, labels)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert lower < 0 < upper
    assert grown_mib < 200  # lir's matrix would be 500k x ~600 thresholds: gigabytes
