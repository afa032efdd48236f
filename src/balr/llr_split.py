"""One comparison's calibrated LLR split into exactly additive, explainable parts.

The LR scorer gives one log-LR term per attribute; a linear calibrator (logistic, qmf)
maps their sum to `slope * score + offset`, clipped by the ELUB bounds, so the calibrated
LLR is still an exact sum: `slope * term_i` per attribute, plus the offset (the intercept;
for qmf with the speech duration terms, "recording durations"), plus the change made by the
bounds. PAV is not linear: the contributions stay the scorer's raw terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from balr.calibration import Calibrator

#: the label of the offset line of a logistic calibration (qmf: `DURATIONS_LABEL`)
OFFSET_LABEL = "calibration offset"
DURATIONS_LABEL = "recording durations"


@dataclass(frozen=True)
class LLRSplit:
    """`llr = contributions.sum() + offset + bounding` (natural logs)."""

    llr: float  # calibrated natural-log LR (the scorer's log-LR when uncalibrated)
    contributions: np.ndarray  # (K,) per-attribute terms on the calibrated scale
    offset: float = 0.0  # intercept (+ duration terms for qmf)
    bounding: float = 0.0  # change made by the ELUB bounds (0 inside them)
    offset_label: str = OFFSET_LABEL
    notes: list[str] = field(default_factory=list)


def split_llr(
    calibrator: Calibrator | None, terms: np.ndarray, seconds: Sequence[float]
) -> LLRSplit:
    """The calibrated LLR of the scorer's per-attribute `terms` and its exact parts;
    `seconds`: net speech of the enrollment and test side (used by qmf)."""
    score = float(np.sum(terms))
    if calibrator is None:
        notes = ["Uncalibrated: the LLR is the scorer's own log-LR."]
        return LLRSplit(score, terms.copy(), notes=notes)
    parts = calibrator.parts(np.array([score]), np.array([list(seconds)]))
    llr, bounding = float(parts.llr[0]), float(parts.bounding[0])
    if parts.slope is None:
        notes = ["PAV calibration is not linear: contributions are the scorer's raw terms."]
        return LLRSplit(llr, terms.copy(), notes=notes)
    offset = float(parts.offset[0])
    notes = []
    if bounding:
        notes.append(
            f"The calibrated ln LR {llr - bounding:.2f} was limited to {llr:.2f} by the "
            "empirical lower/upper bounds (ELUB) of the calibration data."
        )
    label = OFFSET_LABEL
    if calibrator.uses_durations:
        label = DURATIONS_LABEL
        notes.append(
            f"qmf calibration: the offset {offset:+.2f} is the intercept plus the terms of "
            f"the net speech durations ({seconds[0]:.1f} s enrollment, {seconds[1]:.1f} s "
            "test)."
        )
    return LLRSplit(llr, parts.slope * terms, offset, bounding, label, notes)
