"""Dirichlet-multinomial (Beta-Bernoulli for bits) scorer; alpha by Minka's fixed point.

The per-speaker activation rate of each attribute follows a Dirichlet (Beta for 2 states)
prior, fitted by maximum likelihood on the reference speakers' counts with the fixed-point
iteration of Minka, "Estimating a Dirichlet distribution" (2000), from a moment-matching start.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import numpy as np
from scipy.special import digamma, gammaln

from balr import records
from balr.errors import ConfigError, DataError
from balr.scoring.marginal import MarginalScorer
from balr.scoring.statistics import CountHistogram

logger = logging.getLogger(__name__)


def moment_alpha(histogram: CountHistogram, min_alpha: float) -> np.ndarray:
    """Moment-matching start `(attributes, states)` from per-speaker proportions."""
    totals = histogram.counts.sum(axis=1, keepdims=True)
    seen = totals[:, 0] > 0  # rows of speakers with recordings
    shares = np.divide(
        histogram.counts, totals, out=np.zeros_like(histogram.counts), where=totals > 0
    )
    n_seen = np.maximum(histogram.total(seen), 1)[:, None]
    mean = histogram.total(shares) / n_seen
    spread = (shares[:, 0] - mean[histogram.attribute, 0]) ** 2 * seen
    variance = histogram.total(spread) / n_seen[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = mean[:, 0] * (1 - mean[:, 0]) / variance - 1
    unusable = ~np.isfinite(precision) | (precision <= 0)  # no spread, or wider than binomial
    precision = np.clip(np.where(unusable, 1.0, precision), 1e-2, 1e4)
    return np.maximum(mean * precision[:, None], min_alpha)


def digamma_sums(histogram: CountHistogram):
    """`alpha -> (numerator (attributes, states), denominator (attributes,))` of Minka's
    fixed point: `sum_l psi(x_lk + alpha_k) - psi(alpha_k)` and the same of the totals.

    For integer counts `psi(x + a) - psi(a) = sum_{j < x} 1 / (a + j)`, so each sum is
    `sum_j c_j / (a + j)` with `c_j` the number of speakers whose count exceeds j (Minka
    2000, the histogram form): no digamma, no loop over speakers. Other counts use the
    digamma form over the histogram's rows."""
    counts, totals = histogram.counts, histogram.counts.sum(axis=1)
    if not histogram.integral:

        def rowwise(alpha: np.ndarray):
            a, a0 = alpha[histogram.attribute], alpha.sum(axis=1)[histogram.attribute]
            numerator = histogram.total(digamma(counts + a) - digamma(a))
            return numerator, histogram.total(digamma(totals + a0) - digamma(a0))

        return rowwise
    state_exceed = [histogram.exceedance(counts[:, k]) for k in range(counts.shape[1])]
    total_exceed = histogram.exceedance(totals)

    def harmonic(exceed: np.ndarray, a: np.ndarray) -> np.ndarray:
        return (exceed / (a[:, None] + np.arange(exceed.shape[1]))).sum(axis=1)

    def from_exceedance(alpha: np.ndarray):
        numerator = np.stack([harmonic(c, alpha[:, k]) for k, c in enumerate(state_exceed)], 1)
        return numerator, harmonic(total_exceed, alpha.sum(axis=1))

    return from_exceedance


def fit_dirichlet(
    stats: np.ndarray, *, n_iterations: int, tol: float, min_alpha: float
) -> np.ndarray:
    """Maximum-likelihood Dirichlet-multinomial `alpha (attributes, states)`.

    Minka's (2000) fixed point `alpha_k <- alpha_k sum_l [psi(x_lk + alpha_k) - psi(alpha_k)]
    / sum_l [psi(N_l + alpha_0) - psi(alpha_0)]`, vectorised over attributes and computed on
    the count histogram (cost independent of the number of speakers); stops when no alpha
    moves by a relative `tol`; alpha stays >= `min_alpha`.
    """
    stats = np.asarray(stats, dtype=np.float64)
    if stats.ndim != 3 or stats.shape[2] < 2:
        raise DataError(f"beta needs (speakers, attributes, states) statistics, got {stats.shape}")
    histogram = CountHistogram.from_statistics(stats)
    sums = digamma_sums(histogram)
    alpha = moment_alpha(histogram, min_alpha)
    for iteration in range(n_iterations):
        numerator, denominator = sums(alpha)
        update = np.divide(
            numerator, denominator[:, None], out=np.ones_like(alpha), where=denominator[:, None] > 0
        )
        new_alpha = np.maximum(alpha * update, min_alpha)
        change = np.max(np.abs(new_alpha - alpha) / alpha)
        alpha = new_alpha
        if change < tol:
            logger.debug("Dirichlet fixed point converged after %d iterations", iteration + 1)
            break
    return alpha


#: `prior` choices: balr's maximum-likelihood fit, or the reference library's fit
PRIORS = ("ml", "reference")
#: the reference's `eps` (`scorer.eps`, 1e-8) of its moment start
REFERENCE_START_EPS = 1e-8


def reference_start_alpha(stats: np.ndarray, eps: float = REFERENCE_START_EPS) -> np.ndarray:
    """The reference library's start `(attributes, states)`: per-speaker proportions, their
    mean `E` and unbiased variance `V`, ONE precision for every attribute (the geometric
    mean over attributes and states of `(E (1 - E) + 2 eps) / (V + eps) - 1`), `alpha =
    E precision + eps` (`balr/scoring/beta.py:92-129` of the reference)."""
    shares = stats / (stats.sum(axis=-1, keepdims=True) + eps)
    mean = shares.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN where the reference's is
        precision = (mean * (1 - mean) + 2 * eps) / (shares.var(axis=0, ddof=1) + eps) - 1.0
        precision = np.exp(np.log(precision).mean())
    return mean * precision + eps


def fit_reference_dirichlet(stats: np.ndarray, n_iterations: int) -> np.ndarray:
    """The reference library's fit: `reference_start_alpha`, then exactly `n_iterations` of
    Minka's fixed-point steps, no tolerance and no floor (its scorer.n_iterations: 100)."""
    stats = np.asarray(stats, dtype=np.float64)
    sums = digamma_sums(CountHistogram.from_statistics(stats))
    alpha = reference_start_alpha(stats)
    for _ in range(n_iterations):
        numerator, denominator = sums(alpha)
        alpha = alpha * numerator / denominator[:, None]
    return alpha


def log_beta(values: np.ndarray) -> np.ndarray:
    """Multivariate log Beta over the last axis: `sum_k lgamma(v_k) - lgamma(sum_k v_k)`."""
    return gammaln(values).sum(axis=-1) - gammaln(values.sum(axis=-1))


class BetaScorer(MarginalScorer):
    """`log LR = log B(alpha+e+t) + log B(alpha) - log B(alpha+e) - log B(alpha+t)`.

    Fitted by at most `n_iterations` fixed-point steps (relative tolerance `tol`), alpha
    floored at `min_alpha`; `prior="reference"` fits as the reference library does
    (`fit_reference_dirichlet`: its start, exactly `n_iterations` steps; give 100 for its
    default).
    """

    name = "beta"
    state_names = ("alpha_",)
    state_ndims = {"alpha_": 2}
    explain_names = ("alpha",)

    def __init__(
        self,
        n_iterations: int = 1000,
        tol: float = 1e-7,
        min_alpha: float = 1e-6,
        prior: str = "ml",
    ):
        if prior not in PRIORS:
            raise ConfigError(f"beta prior '{prior}': expected one of {', '.join(PRIORS)}")
        self.n_iterations, self.tol, self.min_alpha = (
            int(n_iterations),
            float(tol),
            float(min_alpha),
        )
        self.prior = prior
        self.alpha_: np.ndarray | None = None

    @classmethod
    def check_state(cls, path: str | os.PathLike, state: Mapping[str, np.ndarray]) -> None:
        """alpha `(attributes, states >= 2)`, every value > 0 (a Dirichlet parameter)."""
        super().check_state(path, state)
        if "alpha_" in state:
            records.check_shape(path, "alpha_", state["alpha_"], (records.ANY, records.ANY))
            if np.shape(state["alpha_"])[1] < 2:
                raise records.fail(path, "alpha_", "must have at least 2 states (columns)")
            records.check_positive(path, "alpha_", state["alpha_"])

    def fit(self, stats: np.ndarray) -> BetaScorer:
        if self.prior == "reference":
            self.alpha_ = fit_reference_dirichlet(stats, self.n_iterations)
        else:
            self.alpha_ = fit_dirichlet(
                stats, n_iterations=self.n_iterations, tol=self.tol, min_alpha=self.min_alpha
            )
        return self

    def log_marginal(self, counts: np.ndarray) -> np.ndarray:
        if counts.shape[-1] != self.alpha_.shape[1]:
            raise DataError(
                f"beta was fitted on {self.alpha_.shape[1]} states, counts have {counts.shape[-1]}"
            )
        return log_beta(self.alpha_ + counts)
