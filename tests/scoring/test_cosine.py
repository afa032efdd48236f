"""Cosine scorer: the reference's product of column cosines, by hand and on every path."""

import numpy as np
import pytest

from balr.data.vectors import bits_to_counts
from balr.errors import ConfigError
from balr.scoring import CosineScorer
from balr.scoring.pairs import matrix_scores
from balr.scoring.trials import CellSide, TrialCells, score_trials


@pytest.mark.difference("BA-cosine-score")
def test_reference_formula_by_hand():
    """e = bits 1 1 0 0, t = 1 0 1 0: activations cos = 1 / (sqrt 2 sqrt 2) = 0.5, the
    non-activation columns (0 0 1 1 vs 0 1 0 1) also 0.5: the reference scores 0.25."""
    enroll = bits_to_counts(np.array([[1, 1, 0, 0]]))
    test = bits_to_counts(np.array([[1, 0, 1, 0]]))
    assert CosineScorer().score(enroll, test) == pytest.approx([0.25])
    assert CosineScorer(columns="activation").score(enroll, test) == pytest.approx([0.5])


def test_summed_counts_of_several_recordings():
    # enrollment: two recordings, counts a = (2, 1, 0), n = (0, 1, 2); test a = n = (1, 1, 1)
    enroll = np.array([[[2, 0], [1, 1], [0, 2]]], dtype=float)
    test = np.array([[[1, 1], [1, 1], [1, 1]]], dtype=float)
    cos_a = 3 / (np.sqrt(5) * np.sqrt(3))
    cos_n = 3 / (np.sqrt(5) * np.sqrt(3))
    assert CosineScorer().score(enroll, test) == pytest.approx([cos_a * cos_n])


def test_pairs_trials_and_matrix_paths_equal_the_formula():
    rng = np.random.default_rng(4)
    counts = bits_to_counts(rng.integers(0, 2, size=(30, 64))).astype(float)
    scorer = CosineScorer()
    direct = np.array(
        [[scorer.score(counts[[i]], counts[[j]])[0] for j in range(30)] for i in range(30)]
    )
    np.testing.assert_allclose(matrix_scores(scorer, counts), direct, atol=1e-12)
    enroll, test = rng.integers(0, 30, 50), rng.integers(0, 30, 50)
    single = TrialCells(CellSide(enroll[:, None]), CellSide(test[:, None]))
    np.testing.assert_allclose(
        score_trials(scorer, counts, single), direct[enroll, test], atol=1e-12
    )
    pairs = TrialCells(CellSide([[0, 1]]), CellSide([[2, 3, 4]]))
    expected = scorer.score(
        counts[[0, 1]].sum(0, keepdims=True), counts[[2, 3, 4]].sum(0, keepdims=True)
    )
    np.testing.assert_allclose(score_trials(scorer, counts, pairs), expected, atol=1e-12)


def test_embeddings_keep_their_plain_cosine():
    emb = np.array([[1.0, 0.0], [1.0, 1.0]])
    scorer = CosineScorer(vectors="emb")
    assert scorer.score(emb[:1], emb[1:]) == pytest.approx([1 / np.sqrt(2)])


@pytest.mark.difference("BA-cosine-keys")
def test_reference_options_dim_and_eps():
    assert CosineScorer(dim=1, eps=1e-8).eps == 1e-8
    with pytest.raises(ConfigError, match="only dim=1"):
        CosineScorer(dim=0)
    with pytest.raises(ConfigError, match="columns"):
        CosineScorer(columns="inactive")
