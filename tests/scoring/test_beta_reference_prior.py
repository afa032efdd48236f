"""`scorer.prior=reference`: the beta scorer fitted as the reference library fits it (its
moment start with one precision for all attributes, then exactly `n_iterations` Minka
steps), which the default maximum-likelihood fit does not reproduce."""

import numpy as np
import pytest
import torch

from balr.errors import ConfigError
from balr.scoring import BetaScorer
from balr.scoring.config import score_config, scorer_params
from tests.scoring.test_reference_checkpoints import reference_stats


def reference_fit(stats: np.ndarray, n_iterations: int, eps: float = 1e-8) -> np.ndarray:
    """The reference `DirichletMultinomialScorer._fit_prior`, in torch (float64)."""
    referential = torch.from_numpy(stats)
    p_ = referential / (referential.sum(dim=-1, keepdim=True) + eps)
    ep = p_.mean(dim=0)
    gmean = (ep * (1 - ep) + 2 * eps) / (p_.var(dim=0) + eps) - 1.0
    gmean = gmean.log().mean().exp()
    alpha = ep * gmean + eps
    for _ in range(n_iterations):
        sum_alpha = alpha.sum(dim=1)
        num = alpha * (torch.digamma(referential + alpha) - torch.digamma(alpha)).sum(dim=0)
        denom = (torch.digamma(referential.sum(dim=-1) + sum_alpha) - torch.digamma(sum_alpha)).sum(
            dim=0
        )
        alpha = num / denom.unsqueeze(1)
    return alpha.numpy()


@pytest.mark.difference("BA-scorer-n-iterations")
def test_reference_prior_reproduces_the_reference_fit():
    stats = reference_stats()
    for steps in (0, 1, 100):
        fitted = BetaScorer(prior="reference", n_iterations=steps).fit(stats).alpha_
        np.testing.assert_allclose(fitted, reference_fit(stats, steps), rtol=1e-10)
    # the default fit is another (converged, per-attribute start) alpha
    default = BetaScorer().fit(stats).alpha_
    assert np.max(np.abs(default / reference_fit(stats, 100) - 1)) > 0.01


def test_prior_key_and_its_choices():
    params = scorer_params(score_config(["scorer=beta", "scorer.prior=reference"]))
    assert params["prior"] == "reference" and params["n_iterations"] == 1000
    assert scorer_params(score_config(["scorer=beta"]))["prior"] == "ml"
    with pytest.raises(ConfigError, match="beta prior 'moments': expected one of ml, reference"):
        BetaScorer(prior="moments")
