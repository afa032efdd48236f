"""The bound of calibrated LRs on different-speaker comparisons (`balr.lr_bound`), the
dataset's own check of its calibration (`balr.conditions.bound`) and the adaptation
decision of `--population` (`balr.population_decision.decide_adaptation`), by value."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from balr import defaults
from balr.calibration import CalibrationBundle
from balr.conditions import TrialConditions
from balr.conditions.bound import check_dataset_bound
from balr.errors import ConfigError
from balr.lr_bound import BOUND_LRS, BoundTest, bound_of_llrs, bound_test
from balr.population import Population
from balr.population_decision import (
    MAX_OFFSET,
    decide_adaptation,
    different_speaker_pairs,
    shipped_reference_median,
)


def gaussian_nontarget_llrs(d_prime: float, n: int, shift: float = 0.0, seed: int = 0):
    """Non-target LLRs of two equal-variance Gaussian classes `d_prime` apart: calibrated
    LLRs are N(-d^2/2, d^2) under Hd; `shift` miscalibrates them."""
    rng = np.random.default_rng(seed)
    return rng.normal(-(d_prime**2) / 2, d_prime, n) + shift


def test_levels_tested_depend_on_the_pairs_the_bound_allows():
    assert bound_test(270, 5, [13, 0, 0]).levels == (1.0, 10.0)  # 270 / 100 < 10 pairs
    assert bound_test(1000, 5, [13, 2, 0]).levels == BOUND_LRS
    assert bound_test(9, 5, [1, 0, 0]) is None  # 9 pairs: not even LR >= 1 testable
    assert bound_test(1000, 4, [13, 2, 0]) is None  # 4 speakers
    assert bound_test(270, 5, [13, 0, 0]).reaching == (13, 0)


def test_excess_is_the_largest_level_times_share_and_breaks_above_one():
    at_bound = bound_test(270, 5, [135, 27, 0])  # 50 % at LR >= 1, 10 % at LR >= 10
    assert at_bound.excess == pytest.approx(1.0)
    assert not at_bound.broken
    over = bound_test(270, 5, [135, 28, 0])
    assert over.excess == pytest.approx(280 / 270)
    assert over.broken
    assert over.worst() == (10.0, pytest.approx(28 / 270))
    assert over.describe("X") == (
        "10.4 % of the 270 different-speaker comparisons of X (5 speakers) reach LR >= 10, "
        "where calibrated LRs allow at most 10 %"
    )
    assert over.shares_text() == "LR >= 1: 50.0 % (at most 100 %), LR >= 10: 10.4 % (at most 10 %)"


def test_calibrated_gaussian_llrs_respect_the_bound_and_shifted_ones_break_it():
    """d' = 2: P(LLR >= ln x | Hd) = Phi((-ln x - 2) / 2): 0.159, 0.0158, 0.00048 at x = 1,
    10, 100 (x * share 0.159 at most); shifted by +3 nats, 100 * P(LLR >= ln 100) = 3.6."""
    llrs = gaussian_nontarget_llrs(2.0, 200_000)
    test = bound_of_llrs(llrs, 50)
    expected = [norm.cdf((-np.log(x) - 2.0) / 2.0) for x in BOUND_LRS]
    shares = np.array(test.reaching) / test.n_pairs
    np.testing.assert_allclose(shares, expected, rtol=0.1)  # 91 pairs expected at LR >= 100
    assert test.excess == pytest.approx(expected[0], rel=0.02)
    assert not test.broken
    shifted = bound_of_llrs(gaussian_nontarget_llrs(2.0, 200_000, shift=3.0), 50)
    worst = max(x * norm.cdf((1.0 - np.log(x)) / 2.0) for x in BOUND_LRS)  # now N(1, 2^2)
    assert worst == pytest.approx(100 * norm.cdf(-1.8), rel=0.01)  # 3.6, at LR >= 100
    assert shifted.excess == pytest.approx(worst, rel=0.03)
    assert shifted.broken


def test_non_finite_llrs_are_not_counted():
    test = bound_of_llrs(np.array([0.5, np.nan, -1.0, np.inf * -1] + [-3.0] * 20), 5)
    assert test.n_pairs == 22 and test.reaching == (1,)  # 22 pairs: LR >= 1 only


def look_alike_trials(n_speakers: int = 8, per_pair: int = 40, seed: int = 2):
    """All speaker pairs compared `per_pair` times with calibrated LLRs (d' = 2), except
    that every comparison of speaker s0 reaches LR 1000 (a voice like everyone's)."""
    rng = np.random.default_rng(seed)
    e, t, llrs = [], [], []
    for i in range(n_speakers):
        for j in range(i + 1, n_speakers):
            e += [f"s{i}"] * per_pair
            t += [f"s{j}"] * per_pair
            values = gaussian_nontarget_llrs(2.0, per_pair, seed=int(rng.integers(1 << 30)))
            llrs.append(np.full(per_pair, np.log(1000)) if i == 0 else values)
    return np.array(e, dtype=object), np.array(t, dtype=object), np.concatenate(llrs)


def test_the_dataset_check_flags_every_scored_trial_when_the_bound_breaks():
    """s0's 7 x 40 comparisons all reach LR 1000 among 28 x 40 (25 %, where LR >= 100 allows
    1 %): the dataset's calibration does not hold, every scored trial is out of conditions
    (one test per run: s0's own trials too), a trial without a score is not."""
    e, t, llrs = look_alike_trials()
    llrs[5] = np.nan
    check = check_dataset_bound(llrs, e, t, np.isfinite(llrs))
    assert (check.test.n_pairs, check.test.n_speakers) == (28 * 40 - 1, 8)
    assert check.test.reaching[2] >= 7 * 40 - 1 and check.test.broken  # trial 5: s0 vs s1
    expected = np.ones(len(llrs), bool)
    expected[5] = False
    np.testing.assert_array_equal(check.flagged, expected)
    reasons = check.reasons()
    assert reasons[5] == ""
    level, share = check.test.worst()
    assert level == 100.0
    assert reasons[0] == (
        f"the calibration does not hold on this dataset: {100 * share:.1f} % of the 1119 "
        "different-speaker comparisons of it (8 speakers) reach LR >= 100, where calibrated "
        "LRs allow at most 1 %"
    )
    assert check.record() == {"test": check.test.record(), "n_trials_flagged": len(llrs) - 1}


def test_the_warning_hints_at_a_population_unless_one_was_given(caplog):
    e, t, llrs = look_alike_trials()
    check_dataset_bound(llrs, e, t, np.isfinite(llrs))
    check_dataset_bound(llrs, e, t, np.isfinite(llrs), with_population=True)
    first, second = (r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert first.endswith(
        "1120 trials out of conditions for it (a relevant population adapts the LRs: "
        "--population, docs/population.md)"
    )
    assert second.endswith("1120 trials out of conditions for it (even with the relevant "
                           "population given)")  # fmt: skip


def test_unusable_same_speaker_and_unlabelled_trials_are_not_comparisons():
    e, t, llrs = look_alike_trials()
    usable = (e != "s0") & (t != "s0")  # e.g. s0's trials compare a recording with itself
    check = check_dataset_bound(llrs, e, t, usable)
    assert (check.test.n_pairs, check.test.n_speakers) == (21 * 40, 7)
    assert not check.test.broken and not check.flagged.any()
    assert check.reasons() == [""] * len(llrs)
    unknown = np.where(e == "s0", None, e)
    everyone = np.ones(len(llrs), bool)
    assert check_dataset_bound(llrs, unknown, t, everyone).test.n_pairs == 21 * 40
    same = check_dataset_bound(llrs, e, e, everyone)  # all same-speaker: nothing to test
    assert same.test is None and not same.flagged.any()


def test_conditions_take_the_extra_reasons():
    conditions = TrialConditions(np.array([True, True, False]), ["", "", "speech short"])
    marked = conditions.with_reasons(["", "bound broken", "bound broken"])
    np.testing.assert_array_equal(marked.in_conditions, [True, False, False])
    assert marked.reasons == ["", "bound broken", "speech short; bound broken"]


def population(speakers: list[str | None], n_attributes: int = 4) -> Population:
    bits = np.zeros((len(speakers), n_attributes))
    ids = tuple(f"r{k}" for k in range(len(speakers)))
    return Population("pop.csv", ids, tuple(speakers), bits)


def test_different_speaker_pairs_are_labelled_pairs_of_two_speakers():
    pop = population(["a", "a", "b", None, "c"])
    i, j = different_speaker_pairs(pop)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [
        (0, 2),
        (0, 4),
        (1, 2),
        (1, 4),
        (2, 4),
    ]
    big = population([f"s{k % 1000}" for k in range(200_000)], n_attributes=1)
    i, j = different_speaker_pairs(big, max_pairs=5000)  # 2e10 pairs: sampled, not listed
    assert len(i) == 5000 and (i < j).all()
    assert all(big.speakers[x] != big.speakers[y] for x, y in zip(i, j, strict=True))
    assert len(set(zip(i.tolist(), j.tolist(), strict=True))) == 5000
    i, j = different_speaker_pairs(pop, max_pairs=3)
    assert len(i) == 3 and all(
        pop.speakers[x] != pop.speakers[y] for x, y in zip(i, j, strict=True)
    )


def test_adaptation_decision_by_mode_and_by_the_bound():
    pop = population([f"s{k // 4}" for k in range(24)])  # 6 speakers x 4: 240 pairs
    calibrated = lambda i, j: np.full(len(i), -3.0)  # noqa: E731  (respects the bound)
    miscalibrated = lambda i, j: np.full(len(i), 3.0)  # noqa: E731  (every pair LR 20)
    kept = decide_adaptation("auto", pop, calibrated)
    assert not kept.adapt
    assert kept.bound == BoundTest(240, 6, (1.0, 10.0), (0, 0))
    assert kept.record()["adapted"] is False and kept.record()["bound"]["excess"] == 0.0
    broken = decide_adaptation("auto", pop, miscalibrated)
    assert broken.adapt and broken.bound.excess == pytest.approx(10.0)
    assert broken.reason.startswith("100.0 % of the 240 different-speaker comparisons")
    assert decide_adaptation("always", pop, calibrated).reason == "--population-adapt always"
    assert decide_adaptation("auto", pop, calibrated, fitted_on_population=True).adapt
    assert decide_adaptation("auto", pop, None).reason.startswith("uncalibrated scores")
    unlabelled = decide_adaptation("auto", population([None] * 24), calibrated)
    assert unlabelled.adapt and "too few labelled speakers" in unlabelled.reason
    with pytest.raises(ConfigError, match="--population-adapt never: choose one of auto, always"):
        decide_adaptation("never", pop, calibrated)


def test_a_population_that_respects_the_bound_offsets_to_the_reference_median():
    pop = population([f"s{k // 4}" for k in range(24)])
    llrs = lambda i, j: np.where(i % 2 == 0, -3.0, -4.0)  # noqa: E731  (median -3.5)
    moved = decide_adaptation("auto", pop, llrs, reference_median=-3.8)
    assert not moved.adapt and moved.offset == pytest.approx(-0.3)
    assert moved.record()["offset"] == pytest.approx(-0.3)
    assert moved.reason.endswith(
        "offset by -0.30 (their median LLR -3.50, the calibration's -3.80)"
    )
    assert decide_adaptation("auto", pop, llrs, reference_median=-6.0).offset == -MAX_OFFSET
    assert decide_adaptation("auto", pop, llrs, reference_median=0.0).offset == MAX_OFFSET
    assert decide_adaptation("auto", pop, llrs).offset == 0.0  # no reference: no offset


def test_only_the_shipped_calibration_has_a_reference_median(tmp_path):
    """The shipped reference LLRs hold 20,000 different-speaker trials per covered corpus."""
    reference = np.load(defaults.REFERENCE_LLRS)
    covered = np.isin(reference["nontarget_corpus"], [0, 1, 2])
    expected = float(np.median(reference["nontarget"][covered].astype(np.float64)))
    groups = ["commonvoice", "librispeech", "speechocean"]
    assert shipped_reference_median(str(defaults.CALIBRATION), groups) == pytest.approx(expected)
    assert shipped_reference_median(str(tmp_path / "calibration.json"), groups) is None
    assert shipped_reference_median(None, groups) is None


def test_a_shifted_calibrator_moves_every_llr_before_the_bounds():
    shipped = CalibrationBundle.load(defaults.CALIBRATION).calibrator
    scores = np.array([-60.0, -20.0, 0.0, 20.0, 120.0])
    seconds = np.full((5, 2), 3.0)
    before, after = shipped.parts(scores, seconds), shipped.shifted(0.5).parts(scores, seconds)
    np.testing.assert_allclose(after.offset, before.offset + 0.5)
    unbounded = before.llr - before.bounding + 0.5
    np.testing.assert_allclose(
        after.llr, np.clip(unbounded, shipped.lower_bound_, shipped.upper_bound_)
    )
    np.testing.assert_allclose(after.llr, after.slope * scores + after.offset + after.bounding)
    assert shipped.population_offset == 0.0  # the original is untouched
