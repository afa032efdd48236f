"""Cosine similarity of the summed vectors of each side (BA counts or embeddings).

For BA counts the reference BA-LR library's formula is the default (`columns="both"`): the
cosine over attributes of the two sides' activation columns times the cosine of their
non-activation columns. `columns="activation"` scores the activation columns alone (what
balr 0.1 computed). Embeddings (`vectors="emb"`) get their plain cosine.
"""

from __future__ import annotations

import numpy as np

from balr.errors import ConfigError, DataError
from balr.scoring.base import Scorer
from balr.scoring.pairs import CosinePairs, unit_rows

COLUMNS = ("both", "activation")


class CosineScorer(Scorer):
    """Cosine similarity; no fitting.

    `vectors`: `ba` (binary-attribute counts) or `emb` (embeddings); `columns`: `both` (the
    reference's product of the activation and non-activation cosines) or `activation`;
    `dim` and `eps` as the reference's `torch.nn.CosineSimilarity` options: the cosine runs
    over the attributes (`dim=1`, the only value), a norm below `eps` counts as `eps`.
    """

    name = "cosine"
    scoring_params = ("vectors", "columns", "eps")
    needs_fit = False

    def __init__(self, vectors: str = "ba", columns: str = "both", dim: int = 1, eps: float = 1e-8):
        if vectors not in ("ba", "emb"):
            raise DataError(f"cosine vectors must be 'ba' or 'emb', got '{vectors}'")
        if columns not in COLUMNS:
            raise ConfigError(f"cosine columns must be one of {COLUMNS}, got '{columns}'")
        if dim != 1:
            raise ConfigError(f"cosine dim={dim}: only dim=1 (over the attributes) is defined")
        self.vectors, self.columns, self.dim, self.eps = vectors, columns, int(dim), float(eps)

    @property
    def vector_kind(self) -> str:
        return self.vectors

    def fit(self, stats: np.ndarray | None = None) -> CosineScorer:
        """Nothing to learn."""
        return self

    def as_vectors(self, values: np.ndarray) -> np.ndarray:
        """`(trials, groups, dim)`: embeddings as one group; BA counts `(trials, K, 2)` as
        their two columns (or the activation column alone)."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 2:
            return values[:, None, :]
        if values.ndim != 3:
            raise DataError(f"cosine: expected (n, dim) or (n, K, 2) vectors, got {values.shape}")
        columns = values.transpose(0, 2, 1)
        return columns if self.columns == "both" else columns[:, :1]

    def score(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        enroll, test = self.as_vectors(enroll), self.as_vectors(test)
        if enroll.shape != test.shape:
            raise DataError(f"cosine: enrollment {enroll.shape} and test {test.shape} differ")
        return self.score_cells(enroll, test)

    def cell_vectors(self, vectors: np.ndarray) -> np.ndarray:
        return self.as_vectors(vectors)

    def score_cells(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Scores of summed sides already in `(trials, groups, dim)` form."""
        cosines = (unit_rows(enroll, self.eps) * unit_rows(test, self.eps)).sum(axis=-1)
        return cosines.prod(axis=1)

    def pairs(self, vectors: np.ndarray) -> CosinePairs:
        return CosinePairs(self.as_vectors(vectors), self.eps)
