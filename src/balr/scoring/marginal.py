"""Scorers whose log-LR is a difference of log marginals over counts (MaxLLR, Beta)."""

from __future__ import annotations

import numpy as np

from balr.scoring.base import LRScorer, as_counts

#: summed counts below this are read from per-attribute tables of the log marginal
MAX_TABLE_COUNT = 256


class MarginalScorer(LRScorer):
    """An LR of the form `h(e + t) - h(e) - h(t) + h(0)` with `h` a per-attribute log marginal.

    `h(x)` is the log probability of counts `x` under the speaker model (MaxLLR: latent
    presence; Beta: Dirichlet-multinomial), so small integer counts can be tabulated.
    """

    def log_marginal(self, counts: np.ndarray) -> np.ndarray:
        """`(trials, attributes)` log marginal of `(trials, attributes, states)` counts."""
        raise NotImplementedError

    def log_lr_terms(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        zero = self.log_marginal(np.zeros((1, *enroll.shape[1:])))
        with np.errstate(invalid="ignore"):  # -inf - -inf: NaN as the reference's (reported)
            return (
                self.log_marginal(enroll + test)
                - self.log_marginal(enroll)
                - self.log_marginal(test)
                + zero
            )

    def marginal_table(self, max_count: int) -> np.ndarray:
        """`(attributes, M+1, M+1)` of `h(a, n)` for 2-state counts `0 <= a, n <= M`."""
        self.check_fitted()
        grid = np.arange(max_count + 1, dtype=np.float64)
        a, n = np.meshgrid(grid, grid, indexing="ij")
        counts = np.stack([a.ravel(), n.ravel()], axis=-1)  # (cells, 2)
        k = self.n_attributes
        values = self.log_marginal(np.broadcast_to(counts[:, None, :], (len(counts), k, 2)))
        return values.T.reshape(k, max_count + 1, max_count + 1)

    def cell_terms(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Per-attribute terms of summed sides, read from lookup tables over small counts.

        With integer 2-state counts, `h(a, n)` is tabulated once per attribute up to the
        largest count present; other counts use the direct formula.
        """
        enroll, test = as_counts(enroll), as_counts(test)
        if not _small_integer_counts(enroll, test):
            return self.explain(enroll, test)
        self.check_fitted()
        if enroll.shape[1] != self.n_attributes:
            return self.explain(enroll, test)  # raises the shape error
        joint = enroll + test
        size = int(joint.max()) + 1
        table = self.marginal_table(size - 1).reshape(-1)
        base = (np.arange(enroll.shape[1], dtype=np.intp) * size * size)[None, :]

        def lookup(counts: np.ndarray) -> np.ndarray:
            cells = counts[..., 0].astype(np.intp) * size + counts[..., 1].astype(np.intp)
            return table.take(cells + base)

        return lookup(joint) - lookup(enroll) - lookup(test) + table.take(base)


def _small_integer_counts(enroll: np.ndarray, test: np.ndarray) -> bool:
    if enroll.shape[-1] != 2 or enroll.size == 0:
        return False
    joint_max = (enroll + test).max()
    integral = np.all(enroll == np.round(enroll)) and np.all(test == np.round(test))
    return bool(integral and enroll.min() >= 0 and test.min() >= 0 and joint_max < MAX_TABLE_COUNT)
