"""Cosine similarity of the summed vectors of each side (BA activation counts or embeddings)."""

from __future__ import annotations

import numpy as np

from balr.errors import DataError
from balr.scoring.base import Scorer
from balr.scoring.pairs import CosinePairs, unit_rows


class CosineScorer(Scorer):
    """Cosine similarity; no fitting. 3-D BA counts use the activation counts `a`.

    `vectors`: `ba` (activation counts of the binary attributes) or `emb` (embeddings).
    """

    name = "cosine"
    scoring_params = ("vectors",)
    needs_fit = False

    def __init__(self, vectors: str = "ba"):
        if vectors not in ("ba", "emb"):
            raise DataError(f"cosine vectors must be 'ba' or 'emb', got '{vectors}'")
        self.vectors = vectors

    @property
    def vector_kind(self) -> str:
        return self.vectors

    def fit(self, stats: np.ndarray | None = None) -> CosineScorer:
        """Nothing to learn."""
        return self

    @staticmethod
    def as_vectors(values: np.ndarray) -> np.ndarray:
        """`(trials, dim)`: embeddings as given, BA counts `(trials, K, 2)` -> activations."""
        values = np.asarray(values, dtype=np.float64)
        return values[..., 0] if values.ndim == 3 else values

    def score(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        enroll, test = self.as_vectors(enroll), self.as_vectors(test)
        if enroll.shape != test.shape or enroll.ndim != 2:
            raise DataError(f"cosine: enrollment {enroll.shape} and test {test.shape} differ")
        return (unit_rows(enroll) * unit_rows(test)).sum(axis=1)

    def cell_vectors(self, vectors: np.ndarray) -> np.ndarray:
        return self.as_vectors(vectors)

    def pairs(self, vectors: np.ndarray) -> CosinePairs:
        return CosinePairs(self.as_vectors(vectors))
