"""Pool-adjacent-violators calibration (isotonic regression; Zadrozny & Elkan, KDD 2002): a
monotone map through knots, with one misleading score added beyond each end of the data so
that no LLR is infinite, fitted through lir's public API (groups: balanced weights)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from balr.calibration.base import Calibrator, check_neutral
from balr.calibration.fitting import fit_pav, sigmoid
from balr.records import fail, read_numbers


class PAVCalibrator(Calibrator):
    """A monotone map through `knots_x_` (increasing scores) -> `knots_llr_` (non-decreasing
    LLRs), interpolated on posteriors as lir does."""

    method: ClassVar[str] = "pav"
    fitted_attributes: ClassVar[tuple[str, ...]] = (
        *Calibrator.fitted_attributes,
        "knots_x_",
        "knots_llr_",
    )

    def __init__(self, bounded: bool = True, description: str = ""):
        super().__init__(bounded, description)
        self.knots_x_: list[float] | None = None
        self.knots_llr_: list[float] | None = None

    def _fit_map(
        self,
        scores: np.ndarray,
        labels: np.ndarray,
        durations: np.ndarray | None,
        groups: np.ndarray | None,
    ) -> None:
        self.knots_x_, self.knots_llr_ = fit_pav(scores, labels, groups)

    def _unbounded(
        self, scores: np.ndarray, durations: np.ndarray | None
    ) -> tuple[np.ndarray, float | None, np.ndarray]:
        posterior = np.interp(scores, self.knots_x_, sigmoid(np.asarray(self.knots_llr_)))
        posterior = np.clip(posterior, 1e-300, 1 - 1e-16)
        return np.log(posterior) - np.log1p(-posterior), None, np.zeros_like(scores)

    def _map_record(self) -> dict[str, Any]:
        return {"knots_x": self.knots_x_, "knots_llr": self.knots_llr_}

    def _read_map(self, record: Mapping[str, Any], source: str) -> None:
        check_neutral(record, ("slope", "intercept"), source)
        knots_x = read_numbers(record, "knots_x", source)
        knots_llr = read_numbers(record, "knots_llr", source, length=len(knots_x))
        if len(knots_x) < 2:
            raise fail(source, "knots_x", f"must have 2 knots or more, has {len(knots_x)}")
        if np.any(np.diff(knots_x) <= 0):
            raise fail(source, "knots_x", "must be strictly increasing")
        if np.any(np.diff(knots_llr) < 0):
            raise fail(source, "knots_llr", "must be non-decreasing (a PAV map is monotone)")
        self.knots_x_, self.knots_llr_ = knots_x.tolist(), knots_llr.tolist()
