"""ELUB bounds on the calibration's corpus-balanced weights, and the qmf notes on clamped
durations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from balr.calibration import balanced_weights, elub_bounds, make_calibrator
from tests.test_calibration_qmf import duration_scores


def direct_elub(llrs10, labels, weights, step=0.01):
    """Vergeer et al.'s bounds, one threshold at a time: weighted shares of each class above
    the threshold, one misleading trial of average weight added to each class."""
    llrs10, target = np.clip(llrs10, -9, 9), labels == 1
    low = max(llrs10.min(), -math.log10(target.sum() + 1))
    high = min(llrs10.max(), math.log10((~target).sum() + 1))
    first, last = min(0, int(low // step)), max(0, int(high // step) + 1)
    lower, upper = first * step, last * step
    worse_below, worse_above = [], []
    for t in np.linspace(first * step, last * step, last - first + 1):
        w_t, w_n = weights[target], weights[~target]
        p_t = w_t[llrs10[target] > t].sum() / (w_t.sum() + w_t.mean())
        p_n = (w_n[llrs10[~target] > t].sum() + w_n.mean()) / (w_n.sum() + w_n.mean())
        system = 1 - p_t + 10**t * p_n
        neutral = 10**t if t < 0 else 1.0
        if neutral / system < 1:
            (worse_below if t <= 0 else worse_above).append(t)
            if t == 0:
                worse_above.append(t)
    lower = max(worse_below) + step if worse_below else lower
    upper = min(worse_above) - step if worse_above else upper
    return min(lower, 0.0), max(upper, 0.0)


def two_corpora(seed: int = 0):
    """A large well-separated corpus and a small one whose non-targets reach high LLRs."""
    rng = np.random.default_rng(seed)
    big = np.r_[rng.normal(2, 1, 500), rng.normal(-2, 1, 5000)]
    small = np.r_[rng.normal(2, 1, 100), rng.normal(-1, 1.5, 97), [3.0, 3.5, 4.0]]
    llrs = np.r_[big, small]
    labels = np.r_[np.ones(500), np.zeros(5000), np.ones(100), np.zeros(100)].astype(int)
    groups = np.array(["big"] * 5500 + ["small"] * 200)
    return llrs, labels, groups


def test_weighted_elub_is_the_direct_weighted_definition():
    llrs, labels, groups = two_corpora()
    weights = balanced_weights(labels, groups)
    expected = direct_elub(llrs, labels, weights)
    assert elub_bounds(llrs, labels, weights=weights) == pytest.approx(expected, abs=1e-9)
    unweighted = elub_bounds(llrs, labels)
    assert unweighted == pytest.approx(direct_elub(llrs, labels, np.ones(len(llrs))), abs=1e-9)
    # the small corpus's misleading non-targets weigh as much as the large corpus: a lower cap
    assert elub_bounds(llrs, labels, weights=weights)[1] < unweighted[1]


def test_equal_weights_within_each_class_give_the_unweighted_bounds_exactly():
    llrs, labels, _ = two_corpora(seed=1)
    weights = np.where(labels == 1, 3.7, 0.2)
    assert elub_bounds(llrs, labels, weights=weights) == elub_bounds(llrs, labels)


@pytest.mark.parametrize("method", ["logistic", "qmf"])
def test_bounds_are_fitted_on_the_groups_balanced_weights(method):
    scores, labels, seconds = duration_scores(1_000, seed=8)
    groups = np.where(np.arange(len(scores)) % 10 == 0, "small", "large")
    scores = np.where((groups == "small") & (labels == 0), scores + 2.0, scores)  # it misleads
    calibrator = make_calibrator(method).fit(scores, labels, seconds, groups)
    unbounded = make_calibrator(method, bounded=False).fit(scores, labels, seconds, groups)
    llrs10 = unbounded.transform(scores, seconds) / math.log(10)
    weighted = elub_bounds(llrs10, labels, weights=balanced_weights(labels, groups))
    assert (calibrator.lower_bound_, calibrator.upper_bound_) == pytest.approx(
        (weighted[0] * math.log(10), weighted[1] * math.log(10)), abs=1e-12
    )
    assert weighted != elub_bounds(llrs10, labels)  # the pooled trials give other bounds


def test_qmf_notes_say_where_it_clamps_a_duration():
    scores, labels, seconds = duration_scores(2_000, seed=4)
    calibrator = make_calibrator("qmf", bounded=False).fit(scores, labels, seconds)
    (min_low, min_high), (max_low, max_high) = np.exp(calibrator.log_duration_ranges_)
    durations = np.array([[5.0, 6.0], [0.5, 600.0], [np.nan, 5.0]])
    notes = calibrator.duration_notes(durations)
    assert notes[0] == "" and notes[2] == ""
    assert notes[1] == (
        f"the qmf duration terms count the shorter side's 0.5 s of speech as {min_low:.1f} s, "
        f"the calibrated {min_low:.1f}-{min_high:.1f} s; the qmf duration terms count the "
        f"longer side's 600.0 s of speech as {max_high:.1f} s, the calibrated "
        f"{max_low:.1f}-{max_high:.1f} s"
    )
    assert make_calibrator("logistic").fit(scores, labels).duration_notes(durations) == [""] * 3
