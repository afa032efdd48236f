"""Fast paths (packed-bit lookups, matrix product, count tables) equal the direct formulas."""

import numpy as np
import pytest

from balr.errors import TrialsError
from balr.scoring import SCORERS, make_scorer
from balr.scoring.base import as_counts
from balr.scoring.pairs import matrix_scores
from balr.scoring.trials import TrialCells, cell_sums, score_trials

LR_SCORERS = ["dna", "speech", "maxllr", "beta"]
N_ATTRIBUTES = 61  # not a multiple of 8: the packed bytes carry padding


@pytest.fixture(scope="module")
def reference():
    """Statistics of 60 simulated speakers x 6 recordings with speaker-dependent profiles."""
    rng = np.random.default_rng(0)
    profiles = rng.random((60, N_ATTRIBUTES)) < rng.uniform(0.05, 0.6, N_ATTRIBUTES)
    rate = np.where(profiles, 0.85, 0.05)
    active = rng.binomial(6, rate)
    return np.stack([active, 6 - active], axis=-1).astype(float)


@pytest.fixture(scope="module")
def recordings():
    rng = np.random.default_rng(1)
    return (rng.random((150, N_ATTRIBUTES)) < 0.3).astype(np.uint8)


@pytest.mark.parametrize("name", LR_SCORERS)
def test_pairs_and_matrix_equal_direct(name, reference, recordings):
    scorer = make_scorer(name).fit(reference)
    rng = np.random.default_rng(2)
    enroll, test = rng.integers(0, 150, 2000), rng.integers(0, 150, 2000)
    direct = scorer.score(recordings[enroll], recordings[test])
    cells = TrialCells([[i] for i in enroll], [[i] for i in test])
    fast = score_trials(scorer, recordings, cells, chunk=333)  # several chunks, last partial
    np.testing.assert_allclose(fast, direct, rtol=0, atol=1e-6)
    matrix = matrix_scores(scorer, recordings)
    np.testing.assert_allclose(matrix[enroll, test], direct, rtol=0, atol=1e-6)
    # counts [b, 1 - b] go through the same fast path as bits
    np.testing.assert_allclose(
        score_trials(scorer, as_counts(recordings), cells), direct, atol=1e-6
    )


@pytest.mark.parametrize("name", ["maxllr", "beta"])
def test_multi_recording_lookup_equals_direct(name, reference, recordings):
    scorer = make_scorer(name).fit(reference)
    rng = np.random.default_rng(3)
    enroll = [list(rng.integers(0, 150, rng.integers(1, 5))) for _ in range(300)]
    test = [list(rng.integers(0, 150, rng.integers(1, 3))) for _ in range(300)]
    counts = as_counts(recordings)
    e, t = cell_sums(counts, enroll), cell_sums(counts, test)
    # the sparse cell sums equal a plain loop over the ids
    np.testing.assert_array_equal(e[7], counts[enroll[7]].sum(axis=0))
    direct = scorer.score(e, t)
    np.testing.assert_allclose(scorer.cell_terms(e, t).sum(axis=1), direct, atol=1e-6)
    fast = score_trials(scorer, recordings, TrialCells(enroll, test), chunk=64)
    np.testing.assert_allclose(fast, direct, rtol=0, atol=1e-6)


def test_cosine_paths(recordings):
    scorer = make_scorer("cosine")
    rng = np.random.default_rng(4)
    enroll, test = rng.integers(0, 150, 500), rng.integers(0, 150, 500)
    a, b = recordings[enroll].astype(float), recordings[test].astype(float)
    direct = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    cells = TrialCells([[i] for i in enroll], [[i] for i in test])
    np.testing.assert_allclose(score_trials(scorer, recordings, cells), direct, atol=1e-12)
    np.testing.assert_allclose(matrix_scores(scorer, recordings)[enroll, test], direct, atol=1e-12)
    summed = score_trials(scorer, recordings, TrialCells([[0, 1]], [[2]]))
    both = recordings[0] + recordings[1].astype(float)
    expected = both @ recordings[2] / np.linalg.norm(both) / np.linalg.norm(recordings[2])
    np.testing.assert_allclose(summed, [expected])


@pytest.mark.parametrize("name", ["dna", "speech"])
def test_typicality_scorers_refuse_multi_recording_trials(name, reference, recordings):
    scorer = make_scorer(name).fit(reference)
    with pytest.raises(TrialsError, match="trial 2"):
        score_trials(scorer, recordings, TrialCells([[0], [1, 2]], [[3], [4]]))


def test_registry_default_names():
    assert set(SCORERS) == {"cosine", "dna", "speech", "maxllr", "beta"}
