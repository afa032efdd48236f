"""The population check: case LR against both sides' LRs with each population speaker."""

from __future__ import annotations

import numpy as np

from balr.population import Population
from balr.population_check import PopulationCheck, check_against_population, speaker_cells
from balr.scoring.beta import BetaScorer


def _scorer(n_attributes: int = 4) -> BetaScorer:
    scorer = BetaScorer()
    scorer.alpha_ = np.array([[1.0, 3.0]] * n_attributes)
    return scorer


def test_share_and_warning_by_value():
    check = PopulationCheck(2.0, ("a", "b"), np.array([2.5, -1.0]), np.array([0.0, -3.0]))
    assert (check.n_reaching, check.share, check.exceptional) == (1, 0.25, False)
    assert check.warning() == (
        "the case's LR is not exceptional among the population: 1 of 4 comparisons with 2 "
        "population speakers (25.0 %) reach the case's LR (threshold 5 %)"
    )
    lone = PopulationCheck(9.0, ("a",) * 20, np.zeros(20), np.zeros(20))
    assert lone.exceptional and lone.warning() is None and lone.share == 0.0


def test_speaker_cells_sum_each_speakers_recordings():
    bits = np.array([[1, 0], [1, 1], [0, 1]], dtype=float)
    population = Population("pop", ("r1", "r2", "r3"), ("x", "x", None), bits)
    names, cells = speaker_cells(_scorer(2), population)
    assert names == ("x", "r3")
    np.testing.assert_array_equal(cells[:, :, 0], [[2, 1], [0, 1]])  # active counts
    np.testing.assert_array_equal(cells[:, :, 1], [[0, 1], [1, 0]])  # inactive counts


def test_scores_match_direct_scoring():
    scorer = _scorer()
    rng = np.random.default_rng(0)
    bits = (rng.random((6, 4)) < 0.5).astype(float)
    population = Population("pop", tuple(map(str, range(6))), ("a", "a", "b", "b", "c", "c"), bits)
    enroll = scorer.cell_vectors(np.array([[1, 1, 0, 0]], dtype=float))[0]
    test = scorer.cell_vectors(np.array([[1, 1, 0, 1]], dtype=float))[0]
    case = float(scorer.score_cells(enroll[None], test[None])[0])
    check = check_against_population(scorer, enroll, test, population, case)
    names, cells = speaker_cells(scorer, population)
    expected = [scorer.score_cells(cell[None], test[None])[0] for cell in cells]
    np.testing.assert_allclose(check.test_llrs, expected)
    assert names == check.speakers == ("a", "b", "c")
    shifted = check_against_population(
        scorer, enroll, test, population, case, calibrate=lambda raw, side: 2 * raw + 1
    )
    np.testing.assert_allclose(shifted.test_llrs, 2 * np.array(expected) + 1)
