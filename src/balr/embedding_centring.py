"""Embeddings adapted to a relevant population: moved from the population's mean to a
target mean (0: centring) and length-normalised, the adaptation of the cosine of embeddings
(issue 18).

A channel shared by every recording of a case adds the same direction to all embeddings,
so different speakers' cosines rise together; subtracting the mean of recordings of other
speakers in the case's conditions removes that direction. A calibrated cosine needs the
scale its calibration saw, so `score test` moves the population's mean to the mean of the
calibration's reference embeddings (`target`; `balr.scoring.population_cosine`, per trial).
Measured on the held-out speakers of `benchmarks/population_robustness.py` (cosine EER, 5 /
20 population speakers, `recipes/research/r14_cosine_population.log`): speechocean762
through a telephone channel 16.3 -> 15.4 / 15.2 % moved to the calibration's mean, but
16.6 / 17.7 % centred on 0; as recorded, centring on 0 raised it (3.3 -> 4.6 / 5.5 %), which
is why `score test` adapts only where the population breaks the bound of calibrated LRs
(`balr.population_decision`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

import numpy as np

from balr.errors import DataError, ModelError
from balr.estimator import Estimator
from balr.fileio import read_fitted_tensors, save_fitted_tensors

FORMAT = "balr-embedding-centring"


class EmbeddingCentring(Estimator):
    """`fit(population embeddings, target)` learns `mean_`, `target_` (default 0) and
    `n_recordings_`; `transform(x)` returns each row of `x` minus `mean_` plus `target_`,
    scaled to unit length (a row that lands on 0 stays zero)."""

    fitted_attributes: ClassVar[tuple[str, ...]] = ("mean_", "target_", "n_recordings_")
    estimator_label: ClassVar[str] = "the embedding centring"
    saved_as: ClassVar[str] = "a file"

    def __init__(self):
        self.mean_: np.ndarray | None = None
        self.target_: np.ndarray | None = None
        self.n_recordings_: int | None = None

    def fit(self, embeddings: np.ndarray, target: np.ndarray | None = None) -> EmbeddingCentring:
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.ndim != 2 or not len(embeddings):
            raise DataError(
                f"embedding centring: expected (recordings, dim), got {embeddings.shape}"
            )
        if not np.isfinite(embeddings).all():
            raise DataError("embedding centring: the population's embeddings are not all finite")
        target = np.zeros(embeddings.shape[1]) if target is None else np.asarray(target, float)
        if target.shape != embeddings.shape[1:] or not np.isfinite(target).all():
            raise DataError(
                f"embedding centring: target of shape {target.shape} for {embeddings.shape[1]}-dim"
                " embeddings (give finite values)"
            )
        self.mean_ = embeddings.mean(axis=0)
        self.target_ = target
        self.n_recordings_ = len(embeddings)
        return self

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        self.check_fitted()
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.shape[-1] != len(self.mean_):
            raise DataError(
                f"embedding centring: {embeddings.shape[-1]}-dim embeddings, fitted on "
                f"{len(self.mean_)}-dim ones"
            )
        centred = embeddings - self.mean_ + self.target_
        norms = np.linalg.norm(centred, axis=-1, keepdims=True)
        return np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 0)

    def save(self, path: str | os.PathLike) -> Path:
        """Write `mean` and `target` with the number of recordings as metadata (atomic)."""
        self.check_fitted()
        meta = {"params": json.dumps(self.get_params()), "n_recordings": str(self.n_recordings_)}
        tensors = {"mean": self.mean_, "target": self.target_}
        return save_fitted_tensors(path, tensors, FORMAT, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> EmbeddingCentring:
        """A fitted centring; ModelError (one line naming the file and field) if damaged."""
        tensors, meta = read_fitted_tensors(path, FORMAT, "embedding centring")
        mean = tensors.get("mean")
        if mean is None or mean.ndim != 1 or not np.isfinite(mean).all():
            raise ModelError(f"{path}: field 'mean' must be a finite vector")
        target = tensors.get("target", np.zeros_like(mean))  # files before targets: 0
        if target.shape != mean.shape or not np.isfinite(target).all():
            raise ModelError(f"{path}: field 'target' must be a finite vector like 'mean'")
        centring = cls()
        centring.mean_, centring.target_ = mean.astype(np.float64), target.astype(np.float64)
        centring.n_recordings_ = n_recordings(meta, path)
        return centring


def n_recordings(meta: dict[str, str], path: str | os.PathLike) -> int:
    """The positive `n_recordings` of a fitted population file's metadata (ModelError)."""
    try:
        n = int(meta["n_recordings"])
    except (KeyError, ValueError):
        raise ModelError(f"{path}: field 'n_recordings' is malformed") from None
    if n < 1:
        raise ModelError(f"{path}: field 'n_recordings' must be positive, got {n}")
    return n
