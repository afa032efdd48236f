"""Beta / Dirichlet-multinomial: Minka fixed point recovers alpha; LR by hand."""

import numpy as np

from balr.scoring import BetaScorer


def test_fixed_point_recovers_alpha_from_beta_binomial_counts():
    rng = np.random.default_rng(11)
    alpha = np.array([[2.0, 5.0], [0.5, 0.5], [8.0, 2.0]])
    n_speakers, n_recordings = 3000, 12
    rates = rng.beta(alpha[:, 0], alpha[:, 1], size=(n_speakers, 3))
    active = rng.binomial(n_recordings, rates)
    stats = np.stack([active, n_recordings - active], axis=-1).astype(float)
    fitted = BetaScorer(n_iterations=5000, tol=1e-10).fit(stats).alpha_
    np.testing.assert_allclose(fitted, alpha, rtol=0.10)


def test_fixed_point_with_three_states():
    rng = np.random.default_rng(5)
    alpha = np.array([[1.0, 2.0, 3.0]])
    rates = rng.dirichlet(alpha[0], size=3000)
    counts = np.stack([rng.multinomial(10, r) for r in rates])[:, None, :].astype(float)
    np.testing.assert_allclose(
        BetaScorer(n_iterations=5000, tol=1e-10).fit(counts).alpha_, alpha, rtol=0.10
    )


def test_beta_score_by_hand():
    # alpha = (1, 1); B(x, y) = Gamma(x) Gamma(y) / Gamma(x + y)
    # e = t = (1, 0): LR = B(3, 1) B(1, 1) / (B(2, 1) B(2, 1)) = (1/3 * 1) / (1/2 * 1/2) = 4/3
    # e = (1, 0), t = (0, 1): LR = B(2, 2) B(1, 1) / (B(2, 1) B(1, 2)) = (1/6) / (1/4) = 2/3
    # two enrollment recordings (2, 0), t = (1, 0): B(4, 1) B(1, 1) / (B(3, 1) B(2, 1))
    #   = (1/4) / (1/3 * 1/2) = 3/2
    scorer = BetaScorer()
    scorer.alpha_ = np.array([[1.0, 1.0]])
    enroll = np.array([[[1, 0]], [[1, 0]], [[2, 0]]], dtype=float)
    test = np.array([[[1, 0]], [[0, 1]], [[1, 0]]], dtype=float)
    np.testing.assert_allclose(
        scorer.score(enroll, test), np.log([4 / 3, 2 / 3, 3 / 2]), rtol=1e-12
    )
