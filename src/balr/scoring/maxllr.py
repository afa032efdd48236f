"""MaxLLR: latent attribute presence per speaker, fitted by EM (f, p, q per attribute).

Each attribute is a two-component binomial mixture over speakers: a speaker has the attribute
(probability `f`) and then activates it at rate `p`, or not and activates it at rate `q`. The
mixture is fitted by expectation-maximisation (Dempster, Laird & Rubin, JRSS B 1977).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import numpy as np
from scipy.special import expit, xlog1py, xlogy

from balr import records
from balr.errors import DataError
from balr.scoring.marginal import MarginalScorer
from balr.scoring.statistics import CountHistogram

logger = logging.getLogger(__name__)


def _log_likelihoods(
    active: np.ndarray, inactive: np.ndarray, f: np.ndarray, p: np.ndarray, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Log of `f p^a (1-p)^n` (present) and `(1-f) q^a (1-q)^n` (absent).

    As the reference's `p ** a`, a zero count contributes a factor 1 even where the
    probability is 0 or 1 (`0 log 0 = 0`, not NaN), so a reference file whose fit left a `p`
    or `q` at exactly 0 or 1 scores finite where the reference does."""
    with np.errstate(divide="ignore"):
        present = np.log(f) + xlogy(active, p) + xlog1py(inactive, -p)
        absent = np.log1p(-f) + xlogy(active, q) + xlog1py(inactive, -q)
    return present, absent


def _weighted_rate(histogram: CountHistogram, w: np.ndarray, old: np.ndarray) -> np.ndarray:
    """`sum a w / sum (a + n) w` over speakers, keeping the old value where no count carries
    weight."""
    active, total = histogram.counts[:, 0], histogram.counts.sum(axis=1)
    denominator = histogram.total(total * w)
    return np.divide(
        histogram.total(active * w), denominator, out=old.copy(), where=denominator > 0
    )


def fit_maxllr(
    stats: np.ndarray, *, f: float, p: float, q: float, n_iterations: int, tol: float, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EM for `(f, p, q)` of each attribute from `(speakers, attributes, 2)` statistics.

    `p > q` is kept by swapping the labels of the two latent classes when EM crosses them;
    every probability stays in `[eps, 1 - eps]` so that no LLR is infinite or NaN.
    """
    stats = np.asarray(stats, dtype=np.float64)
    if stats.ndim != 3 or stats.shape[2] != 2:
        raise DataError(f"maxllr needs (speakers, attributes, 2) statistics, got {stats.shape}")
    if not p > q:
        raise DataError(f"maxllr needs p > q to start, got p={p}, q={q}")
    histogram = CountHistogram.from_statistics(stats)  # EM over distinct counts, weighted
    active, inactive, row_of = histogram.counts[:, 0], histogram.counts[:, 1], histogram.attribute
    n_speakers = stats.shape[0]  # every speaker has counts for every attribute
    f_, p_, q_ = (np.full(histogram.n_attributes, float(v)) for v in (f, p, q))
    for iteration in range(n_iterations):
        present, absent = _log_likelihoods(active, inactive, f_[row_of], p_[row_of], q_[row_of])
        w = expit(present - absent)  # posterior that the speaker has the attribute
        new_f = np.clip(histogram.total(w) / n_speakers, eps, 1 - eps)
        new_p = np.clip(_weighted_rate(histogram, w, p_), eps, 1 - eps)
        new_q = np.clip(_weighted_rate(histogram, 1 - w, q_), eps, 1 - eps)
        new_f, new_p, new_q = _order_classes(new_f, new_p, new_q, eps)
        change = max(np.abs(new_f - f_).max(), np.abs(new_p - p_).max(), np.abs(new_q - q_).max())
        f_, p_, q_ = new_f, new_p, new_q
        if change < tol:
            logger.debug("maxllr EM converged after %d iterations", iteration + 1)
            break
    return f_, p_, q_


def _order_classes(f: np.ndarray, p: np.ndarray, q: np.ndarray, eps: float):
    """Swap the latent classes where `p < q`, and separate `p == q` by `eps`."""
    swap = p < q
    f = np.where(swap, 1 - f, f)
    p, q = np.where(swap, q, p), np.where(swap, p, q)
    tie = p <= q
    p = np.where(tie, np.minimum(q + eps, 1 - eps), p)
    q = np.where(tie, p - eps, q)
    return f, p, q


class MaxLLRScorer(MarginalScorer):
    """MaxLLR: `log LR = log L(e + t) - log L(e) - log L(t)`, any number of recordings.

    `f, p, q` start EM (p > q); at most `n_iterations` EM steps, stopped when no parameter
    moves by `tol`; probabilities stay in `[eps, 1 - eps]`.
    """

    name = "maxllr"
    state_names = ("f_", "p_", "q_")
    explain_names = ("f", "p", "q")

    def __init__(
        self,
        f: float = 0.5,
        p: float = 0.9,
        q: float = 0.1,
        n_iterations: int = 100,  # the reference's scorer.n_iterations
        tol: float = 1e-6,
        eps: float = 1e-6,
    ):
        self.f, self.p, self.q = float(f), float(p), float(q)
        self.n_iterations, self.tol, self.eps = int(n_iterations), float(tol), float(eps)
        self.f_: np.ndarray | None = None
        self.p_: np.ndarray | None = None
        self.q_: np.ndarray | None = None

    @classmethod
    def check_state(cls, path: str | os.PathLike, state: Mapping[str, np.ndarray]) -> None:
        """f, p, q: probabilities in [0, 1] (a reference file may hold exactly 0 or 1)."""
        super().check_state(path, state)
        for name in cls.state_names:
            if name in state:
                records.check_unit_interval(path, name, state[name])

    def fit(self, stats: np.ndarray) -> MaxLLRScorer:
        self.f_, self.p_, self.q_ = fit_maxllr(stats, **self.get_params())
        return self

    def log_marginal(self, counts: np.ndarray) -> np.ndarray:
        if counts.shape[-1] != 2:
            raise DataError(f"maxllr scores 2-state counts, got {counts.shape[-1]} states")
        present, absent = _log_likelihoods(
            counts[..., 0], counts[..., 1], self.f_, self.p_, self.q_
        )
        return np.logaddexp(present, absent)
