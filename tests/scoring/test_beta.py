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


def direct_fixed_point(stats: np.ndarray, iterations: int = 3000) -> np.ndarray:
    """Minka's fixed point written over every speaker with digamma, from alpha = 1."""
    from scipy.special import digamma

    alpha = np.ones(stats.shape[1:])
    totals = stats.sum(axis=2)
    for _ in range(iterations):
        a0 = alpha.sum(axis=1)
        numerator = (digamma(stats + alpha) - digamma(alpha)).sum(axis=0)
        denominator = (digamma(totals + a0) - digamma(a0)).sum(axis=0)
        alpha = alpha * numerator / denominator[:, None]
    return alpha


def test_histogram_fit_equals_the_fixed_point_over_every_speaker():
    """The fit sums over distinct counts (harmonic sums of exceedance counts); it must reach
    the maximum-likelihood alpha that the plain per-speaker iteration reaches."""
    rng = np.random.default_rng(11)
    recordings = rng.integers(1, 9, size=400)
    active = rng.binomial(recordings[:, None], rng.beta(0.6, 2.0, size=(400, 6)))
    stats = np.stack([active, recordings[:, None] - active], axis=-1).astype(np.float64)
    fitted = BetaScorer(n_iterations=5000, tol=1e-12).fit(stats).alpha_
    np.testing.assert_allclose(fitted, direct_fixed_point(stats), rtol=1e-6)
