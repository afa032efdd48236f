"""Logistic-regression calibration: `llr = slope * s + intercept`, balanced classes
(Brümmer & du Preez, "Application-independent evaluation of speaker detection", Computer
Speech and Language 2006), fitted through lir's public API (groups: balanced weights)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from balr.calibration.base import Calibrator, check_neutral
from balr.calibration.fitting import balanced_weights, fit_logistic, fit_weighted_logistic
from balr.records import read_number


class LogisticCalibrator(Calibrator):
    """`llr = slope_ * s + intercept_` (`slope_` > 0: a higher score is more target-like)."""

    method: ClassVar[str] = "logistic"
    fitted_attributes: ClassVar[tuple[str, ...]] = (
        *Calibrator.fitted_attributes,
        "slope_",
        "intercept_",
    )

    def __init__(self, bounded: bool = True, description: str = ""):
        super().__init__(bounded, description)
        self.slope_: float | None = None
        self.intercept_: float | None = None

    def _fit_map(
        self,
        scores: np.ndarray,
        labels: np.ndarray,
        durations: np.ndarray | None,
        groups: np.ndarray | None,
    ) -> None:
        if groups is None:
            self.slope_, self.intercept_ = fit_logistic(scores, labels)
            return
        weights = balanced_weights(labels, groups)
        coefs, self.intercept_ = fit_weighted_logistic(scores[:, None], labels, weights)
        self.slope_ = coefs[0]

    def _unbounded(
        self, scores: np.ndarray, durations: np.ndarray | None
    ) -> tuple[np.ndarray, float | None, np.ndarray]:
        offset = np.full_like(scores, self.intercept_)
        return self.slope_ * scores + offset, self.slope_, offset

    def _map_record(self) -> dict[str, Any]:
        return {"slope": self.slope_, "intercept": self.intercept_}

    def _read_map(self, record: Mapping[str, Any], source: str) -> None:
        self.slope_ = read_number(record, "slope", source, positive=True)
        self.intercept_ = read_number(record, "intercept", source)
        check_neutral(record, ("knots_x", "knots_llr"), source)
