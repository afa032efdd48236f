"""The ELUB bounds of a relevant population's own comparisons (`balr.population_bounds`) and
`Calibrator.within`, by value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from balr.calibration import elub_bounds, make_calibrator
from balr.errors import ConfigError
from balr.population import Population
from balr.population_bounds import MIN_PAIRS, population_bounds, same_speaker_pairs

LN10 = math.log(10)


def population(speakers: list[str | None]) -> Population:
    vectors = np.zeros((len(speakers), 4), dtype=np.float32)
    return Population("pop.csv", tuple(f"r{k}" for k in range(len(speakers))), tuple(speakers),
                      vectors)  # fmt: skip


def calibrator(seed: int = 0):
    """A logistic calibration with ELUB bounds, fitted on separated Gaussian scores."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([1, 0], [400, 4000])
    scores = np.where(labels == 1, rng.normal(2, 1, len(labels)), rng.normal(-2, 1, len(labels)))
    return make_calibrator("logistic").fit(scores, labels)


def test_same_speaker_pairs_are_the_pairs_inside_each_labelled_speaker():
    i, j = same_speaker_pairs(population(["a", "a", "b", None, "b", "a", None]))
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (0, 5), (1, 5), (2, 4)]


def test_same_speaker_pairs_beyond_the_cap_are_a_seeded_sample():
    pop = population(["a"] * 10)  # 45 pairs
    i, j = same_speaker_pairs(pop, max_pairs=20)
    again = same_speaker_pairs(pop, max_pairs=20)
    assert len(i) == 20 and (i < j).all()
    np.testing.assert_array_equal(i, again[0])
    np.testing.assert_array_equal(j, again[1])


def test_same_speaker_pairs_of_a_huge_speaker_are_drawn_without_listing_them():
    """60,000 recordings of 3 speakers (1.2 billion same-speaker pairs): a seeded sample of
    distinct pairs, each of two recordings of one speaker, speakers in proportion to their
    pairs (20,000 / 30,000 / 10,000 recordings: 4 : 9 : 1)."""
    speakers = ["a"] * 20_000 + ["b"] * 30_000 + ["c"] * 10_000
    pop = population(speakers)
    i, j = same_speaker_pairs(pop, max_pairs=5_000)
    labels = np.array(speakers)
    assert len(i) == 5_000 and (i < j).all()
    assert (labels[i] == labels[j]).all()
    assert len(set(zip(i.tolist(), j.tolist(), strict=True))) == 5_000
    shares = [np.mean(labels[i] == s) for s in "abc"]
    np.testing.assert_allclose(shares, [4 / 14, 9 / 14, 1 / 14], atol=0.02)
    again = same_speaker_pairs(pop, max_pairs=5_000)
    np.testing.assert_array_equal(i, again[0])


def table_llrs(pop: Population, same: float, other: float, misleading: int):
    """LLRs `same` for same-speaker pairs and `other` for different-speaker ones, except the
    first `misleading` different-speaker pairs (in call order), which get `same`."""
    speakers = np.array(pop.speakers, dtype=object)

    def llrs(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        values = np.where(speakers[i] == speakers[j], same, other).astype(np.float64)
        wrong = np.flatnonzero(speakers[i] != speakers[j])[:misleading]
        values[wrong] = same
        return values

    return llrs


def test_the_bounds_are_the_populations_elub_inside_the_calibrations():
    """4 speakers x 5 recordings: 40 same- and 150 different-speaker pairs; LLRs +1.5 / -2
    (natural log), 3 different-speaker pairs at +1.5. The bounds are elub_bounds of exactly
    those LLRs (log10), inside the calibration's."""
    pop = population([s for s in "abcd" for _ in range(5)])
    cal = calibrator()
    llrs = table_llrs(pop, 1.5, -2.0, misleading=3)
    bounds = population_bounds(pop, llrs, cal)
    labels = np.repeat([1, 0], [40, 150])
    values = np.concatenate([np.full(40, 1.5), np.full(3, 1.5), np.full(147, -2.0)])
    lower10, upper10 = elub_bounds(values / LN10, labels)
    assert bounds.applied and (bounds.n_target, bounds.n_nontarget) == (40, 150)
    assert bounds.lower == pytest.approx(max(cal.lower_bound_, lower10 * LN10))
    assert bounds.upper == pytest.approx(min(cal.upper_bound_, upper10 * LN10))
    # a population this small supports far less than the calibration's 4,400 trials
    assert cal.lower_bound_ < bounds.lower < 0 < bounds.upper < cal.upper_bound_
    record = bounds.record()
    assert record["applied"] is True and record["n_target_pairs"] == 40
    assert record["upper_log10"] == pytest.approx(round(bounds.upper / LN10, 4))
    assert "own 40 same- and 150 different-speaker comparisons" in bounds.describe()


def test_bounds_wider_than_the_calibrations_leave_the_calibrations():
    """LLRs that separate the speakers perfectly and far: the population's ELUB reaches
    beyond the calibration's bounds, which stay."""
    pop = population([s for s in "abcdefghij" for _ in range(12)])  # 660 + 6600 pairs
    narrow = calibrator().within(-1.0, 1.0)
    bounds = population_bounds(pop, table_llrs(pop, 20.0, -20.0, misleading=0), narrow)
    assert (bounds.lower, bounds.upper) == (-1.0, 1.0)


def test_too_few_same_speaker_pairs_or_an_unbounded_calibration_keep_the_calibrations():
    few = population([f"s{k}" for k in range(12)] + ["a", "a"])  # 1 same-speaker pair
    called = []
    bounds = population_bounds(few, lambda i, j: called.append(1), calibrator())
    assert not bounds.applied and not called
    assert "1 pairs of recordings of one labelled speaker and 90 of two" in bounds.reason
    assert f"need {MIN_PAIRS} of each" in bounds.reason
    one = population(["a"] * 20)  # 190 same-speaker pairs, none of two speakers
    assert not population_bounds(one, lambda i, j: called.append(1), calibrator()).applied
    assert not called
    assert bounds.record()["lower_log10"] is None
    unbounded = make_calibrator("logistic", bounded=False).fit(
        np.array([-1.0, 1.0, -2.0, 2.0]), np.array([0, 1, 0, 1])
    )
    pop = population([s for s in "abcd" for _ in range(5)])
    assert "not bounded" in population_bounds(pop, table_llrs(pop, 1, -1, 0), unbounded).reason


def test_within_narrows_the_bounds_and_never_widens_them():
    cal = calibrator()
    lower, upper = cal.lower_bound_, cal.upper_bound_
    narrowed = cal.within(lower / 2, upper * 2)
    assert (narrowed.lower_bound_, narrowed.upper_bound_) == (lower / 2, upper)
    assert (cal.lower_bound_, cal.upper_bound_) == (lower, upper)  # the original is unchanged
    scores = np.linspace(-8, 8, 33)
    parts = narrowed.parts(scores)
    np.testing.assert_allclose(parts.llr, np.clip(cal.parts(scores).llr, lower / 2, upper))
    np.testing.assert_allclose(parts.llr - parts.bounding, narrowed._unbounded(scores, None)[0])
    with pytest.raises(ConfigError, match="lower <= 0 <= upper"):
        cal.within(0.5, 1.0)
    unbounded = make_calibrator("logistic", bounded=False).fit(
        np.array([-1.0, 1.0, -2.0, 2.0]), np.array([0, 1, 0, 1])
    )
    with pytest.raises(ConfigError, match="unbounded calibration"):
        unbounded.within(-1.0, 1.0)


def test_pair_scorer_takes_the_bilinear_lookups_and_equals_the_direct_path():
    """The shipped beta scorer's lookups give its own `score` of the same pairs; a scorer
    without lookups is scored `PAIR_CHUNK` pairs at a time, every pair once."""
    from balr import defaults
    from balr.population_decision import PAIR_CHUNK, pair_scorer
    from balr.scoring.base import Scorer

    scorer = Scorer.load(defaults.SCORER_CHECKPOINT)
    rng = np.random.default_rng(0)
    bits = (rng.random((300, scorer.n_attributes)) < 0.3).astype(np.float32)
    i, j = rng.integers(0, 300, 2 * PAIR_CHUNK + 5), rng.integers(0, 300, 2 * PAIR_CHUNK + 5)
    direct = scorer.score(bits[i], bits[j])
    np.testing.assert_allclose(pair_scorer(scorer, bits)(i, j), direct, atol=1e-9)

    class NoLookups:
        calls: list[int] = []

        def pairs(self, vectors):
            return None

        def score(self, enroll, test):
            self.calls.append(len(enroll))
            return scorer.score(enroll, test)

    slow = NoLookups()
    np.testing.assert_allclose(pair_scorer(slow, bits)(i, j), direct, atol=1e-9)
    assert slow.calls == [PAIR_CHUNK, PAIR_CHUNK, 5]


class _Identity:
    """A calibration that leaves the scores as natural-log LRs."""

    uses_durations = False

    def transform(self, scores, durations=None):
        return np.asarray(scores, dtype=np.float64)


def test_the_adapted_scores_are_retested_on_the_populations_own_pairs():
    """10 speakers x 4 recordings: 720 different-speaker pairs. LLR 3 (LR 20) on every pair
    of speakers 0-4, -3 elsewhere: 22.2 % of the pairs reach LR 10 where the bound allows 10 %,
    so the re-test breaks, and every scored trial is out of conditions with that reason."""
    from balr.population_decision import AdaptationDecision, retest_adapted
    from balr.scoring.jobs.checks import recheck_reasons

    pop = population([f"s{k}" for k in range(10) for _ in range(4)])
    speaker = np.repeat(np.arange(10), 4)

    def score(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return np.where((speaker[i] < 5) & (speaker[j] < 5), 3.0, -3.0)

    retest = retest_adapted(pop, score, _Identity(), np.full(40, np.nan))
    assert (retest.n_pairs, retest.n_speakers, retest.levels) == (720, 10, (1.0, 10.0))
    assert retest.reaching == (160, 160)  # 5 * 4 / 2 pairs of speakers x 4 * 4 recordings
    assert retest.excess == pytest.approx(10 * 160 / 720) and retest.broken

    class Populations:  # what `recheck_reasons` reads of `TrialPopulations`
        adaptation = AdaptationDecision(True, "test", recheck=retest)

    reasons = recheck_reasons(Populations(), np.array([True, False, True]))
    assert reasons[1] == "" and reasons[0] == reasons[2]
    assert reasons[0].startswith("the scores adapted to the population still break the bound")
    assert "22.2 % of the 720 different-speaker comparisons of the population" in reasons[0]
    calm = retest_adapted(pop, lambda i, j: np.full(len(i), -3.0), _Identity(), np.zeros(40))
    assert not calm.broken
    Populations.adaptation = AdaptationDecision(True, "test", recheck=calm)
    assert recheck_reasons(Populations(), np.array([True, True])) == ["", ""]
    assert recheck_reasons(None, np.array([True])) == [""]
