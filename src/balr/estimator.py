"""The one estimator contract every fitted stage follows (after scikit-learn's).

- Hyper-parameters are the arguments of `__init__`, kept as attributes of the same name:
  `get_params()` reads them from the constructor signature.
- `fit(...)` returns the estimator; what it learns lives in attributes ending in `_`,
  named by `fitted_attributes` (all of them set: `is_fitted`).
- `check_fitted()` raises `NotFittedError` (a `ModelError`, so the CLI prints one line).
- `save(path) -> Path` writes the fitted estimator atomically and returns the file written;
  the classmethod `load(path)` reads it back without executing code from the file.

Stages: the scorers (`balr.scoring.base.Scorer`), the calibrators (`balr.calibration`), the
conditions description (`balr.conditions`), the binary-attribute encoder and the DoubleMHA
speaker classifier (torch modules: their weights are their state, so they count as fitted).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, ClassVar

from balr.errors import ModelError


class NotFittedError(ModelError):
    """An estimator was used (scored, applied, saved) before `fit` or `load`."""


class Estimator:
    """Base of every fitted stage: `get_params`, `is_fitted`, `check_fitted`, `save`, `load`."""

    #: learned attributes (ending in `_`) that must all be set for the estimator to be fitted
    fitted_attributes: ClassVar[tuple[str, ...]] = ()
    #: how messages name the estimator (e.g. "the calibrator")
    estimator_label: ClassVar[str] = "the estimator"
    #: what to load instead of fitting, for the not-fitted message
    saved_as: ClassVar[str] = "a saved one"

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters given to `__init__`, read back from their attributes."""
        return {key: getattr(self, key) for key in self._param_names()}

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            name
            for name, param in signature.parameters.items()
            if name != "self" and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
        ]

    def _fitted_names(self) -> tuple[str, ...]:
        return self.fitted_attributes

    @property
    def is_fitted(self) -> bool:
        """Whether every learned attribute is set (an estimator with none always is)."""
        return all(getattr(self, name, None) is not None for name in self._fitted_names())

    def check_fitted(self) -> None:
        """`NotFittedError` when the estimator has learned nothing yet."""
        if not self.is_fitted:
            raise NotFittedError(
                f"{self.estimator_label} is not fitted: call fit() or load {self.saved_as}"
            )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted estimator atomically; the path of the file written."""
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | os.PathLike) -> Estimator:
        """An estimator saved by `save` (no code from the file is executed)."""
        raise NotImplementedError
