"""Embeddings adapted to a relevant population: centred on the population's mean and
length-normalised, the adaptation measured for the cosine of embeddings (issue 18).

A channel shared by every recording of a case adds the same direction to all embeddings,
so different speakers' cosines rise together; subtracting the mean of recordings of other
speakers in the case's conditions removes that direction. Measured on the held-out
speakers of `benchmarks/population_robustness.py` (`EER cos`, 5 / 20 population speakers):
it lowers the cosine EER through a shared channel where the population shows one (Common
Voice telephone 26.4 -> 23.7 / 21.4 %, hall 22.3 -> 19.6 / 17.7 %), and raises it as
recorded (speechocean762 3.3 -> 4.6 / 5.5 %, `recipes/research/r11_cosine_adaptation.log`):
apply it where the population breaks the bound of calibrated LRs (`balr.population.
decide_adaptation`), as the benchmark does.
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
    """`fit(population embeddings)` learns `mean_` and `n_recordings_`; `transform(x)`
    returns each row of `x` minus that mean, scaled to unit length (a row equal to the
    mean stays zero)."""

    fitted_attributes: ClassVar[tuple[str, ...]] = ("mean_", "n_recordings_")
    estimator_label: ClassVar[str] = "the embedding centring"
    saved_as: ClassVar[str] = "a file"

    def __init__(self):
        self.mean_: np.ndarray | None = None
        self.n_recordings_: int | None = None

    def fit(self, embeddings: np.ndarray) -> EmbeddingCentring:
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.ndim != 2 or not len(embeddings):
            raise DataError(
                f"embedding centring: expected (recordings, dim), got {embeddings.shape}"
            )
        if not np.isfinite(embeddings).all():
            raise DataError("embedding centring: the population's embeddings are not all finite")
        self.mean_ = embeddings.mean(axis=0)
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
        centred = embeddings - self.mean_
        norms = np.linalg.norm(centred, axis=-1, keepdims=True)
        return np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 0)

    def save(self, path: str | os.PathLike) -> Path:
        """Write `mean` with the number of recordings as metadata (atomic)."""
        self.check_fitted()
        meta = {"params": json.dumps(self.get_params()), "n_recordings": str(self.n_recordings_)}
        return save_fitted_tensors(path, {"mean": self.mean_}, FORMAT, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> EmbeddingCentring:
        """A fitted centring; ModelError (one line naming the file and field) if damaged."""
        tensors, meta = read_fitted_tensors(path, FORMAT, "embedding centring")
        mean = tensors.get("mean")
        if mean is None or mean.ndim != 1 or not np.isfinite(mean).all():
            raise ModelError(f"{path}: field 'mean' must be a finite vector")
        centring = cls()
        centring.mean_, centring.n_recordings_ = mean.astype(np.float64), n_recordings(meta, path)
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
