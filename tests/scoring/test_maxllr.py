"""MaxLLR: EM recovers f, p, q from simulated speakers; LLRs stay finite; p > q."""

import numpy as np

from balr.scoring import MaxLLRScorer


def simulate(f, p, q, n_speakers, n_recordings, rng):
    """(speakers, attributes, 2) counts: presence ~ Bernoulli(f), activations ~ Bin(m, p or q)."""
    f, p, q = (np.asarray(v, dtype=float) for v in (f, p, q))
    present = rng.random((n_speakers, len(f))) < f
    active = rng.binomial(n_recordings, np.where(present, p, q))
    return np.stack([active, n_recordings - active], axis=-1).astype(float)


def test_em_recovers_known_parameters():
    rng = np.random.default_rng(7)
    f, p, q = [0.1, 0.3, 0.5, 0.7], [0.9, 0.8, 0.7, 0.95], [0.05, 0.2, 0.1, 0.3]
    stats = simulate(f, p, q, n_speakers=2000, n_recordings=8, rng=rng)
    scorer = MaxLLRScorer(f=0.5, p=0.9, q=0.1, n_iterations=200).fit(stats)
    np.testing.assert_allclose(scorer.f_, f, atol=0.05)
    np.testing.assert_allclose(scorer.p_, p, atol=0.05)
    np.testing.assert_allclose(scorer.q_, q, atol=0.05)


def test_p_above_q_and_finite_llrs_on_degenerate_data():
    # attribute 0 always active, attribute 1 never: EM drives p, q to 0/1 -> clamped by eps
    stats = np.zeros((20, 2, 2))
    stats[:, 0, 0] = 5
    stats[:, 1, 1] = 5
    scorer = MaxLLRScorer(n_iterations=100, eps=1e-6).fit(stats)
    assert np.all(scorer.p_ > scorer.q_)
    for values in (scorer.f_, scorer.p_, scorer.q_):
        assert np.all((values >= 1e-6) & (values <= 1 - 1e-6))
    enroll = np.array([[1, 1], [0, 0], [1, 0]])
    test = np.array([[0, 1], [1, 1], [1, 0]])
    assert np.all(np.isfinite(scorer.explain(enroll, test)))


def test_class_swap_keeps_p_above_q():
    # started with the classes the wrong way round in the data (most speakers "absent" with a
    # high rate): the fitted p must still exceed q, with f the share of the high-rate class
    rng = np.random.default_rng(3)
    stats = simulate([0.8], [0.9], [0.2], n_speakers=1500, n_recordings=10, rng=rng)
    scorer = MaxLLRScorer(f=0.5, p=0.6, q=0.5, n_iterations=300).fit(stats)
    assert scorer.p_[0] > scorer.q_[0]
    np.testing.assert_allclose(
        [scorer.f_[0], scorer.p_[0], scorer.q_[0]], [0.8, 0.9, 0.2], atol=0.05
    )


def test_llr_formula_by_hand():
    # f = 0.5, p = 0.8, q = 0.2, one recording each side, both active:
    #   L(1, 0) = 0.5 * 0.8 + 0.5 * 0.2 = 0.5 ; L(2, 0) = 0.5 * 0.64 + 0.5 * 0.04 = 0.34
    #   log LR = log 0.34 - 2 log 0.5 = log 1.36
    scorer = MaxLLRScorer()
    scorer.f_, scorer.p_, scorer.q_ = np.array([0.5]), np.array([0.8]), np.array([0.2])
    np.testing.assert_allclose(scorer.score([[1]], [[1]]), [np.log(1.36)], rtol=1e-12)
    # one active, one not: L(1, 1) = 0.5 * 0.8 * 0.2 + 0.5 * 0.2 * 0.8 = 0.16 -> log(0.16 / 0.25)
    np.testing.assert_allclose(scorer.score([[1]], [[0]]), [np.log(0.64)], rtol=1e-12)


def test_em_on_distinct_counts_equals_em_over_every_speaker():
    """The fit runs EM on the count histogram; the plain per-speaker EM gives the same."""
    from scipy.special import expit

    rng = np.random.default_rng(5)
    has = rng.random((500, 4)) < [0.2, 0.4, 0.6, 0.8]
    recordings = rng.integers(2, 7, size=(500, 1))
    active = rng.binomial(recordings, np.where(has, 0.85, 0.1))
    stats = np.stack([active, recordings - active], axis=-1).astype(np.float64)
    a, n = stats[..., 0], stats[..., 1]
    f, p, q = np.full(4, 0.5), np.full(4, 0.9), np.full(4, 0.1)
    for _ in range(30):  # EM written over every speaker
        present = np.log(f) + a * np.log(p) + n * np.log1p(-p)
        absent = np.log1p(-f) + a * np.log(q) + n * np.log1p(-q)
        w = expit(present - absent)
        f = w.mean(axis=0)
        p = (a * w).sum(axis=0) / ((a + n) * w).sum(axis=0)
        q = (a * (1 - w)).sum(axis=0) / ((a + n) * (1 - w)).sum(axis=0)
    scorer = MaxLLRScorer(n_iterations=30, tol=0.0).fit(stats)
    np.testing.assert_allclose(scorer.f_, f, atol=1e-12)
    np.testing.assert_allclose(scorer.p_, p, atol=1e-12)
    np.testing.assert_allclose(scorer.q_, q, atol=1e-12)
