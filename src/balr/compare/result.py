"""The outcome of one comparison, with everything needed to explain it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from balr.calibration.split import OFFSET_LABEL
from balr.compare.inputs import check_explain
from balr.population import Population
from balr.population_check import PopulationCheck
from balr.population_decision import AdaptationDecision
from balr.report.html import Recording
from balr.report.text import bits_text
from balr.scoring.explain import top_attributes as top_k

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class ComparisonResult:
    """The outcome of one comparison, with everything needed to explain it."""

    enrollment: list[Recording]
    test: list[Recording]
    score: float  # the scorer's log-LR: the sum of `terms`
    llr: float  # calibrated natural-log LR (equals `score` without calibration)
    terms: np.ndarray  # (K,) per-attribute log-LR terms of the scorer
    contributions: np.ndarray  # (K,) terms on the calibrated scale (slope * term)
    offset: float  # intercept (+ duration terms for qmf): llr = contributions.sum() + offset
    #             + bounding
    enroll_counts: np.ndarray  # (K, 2) activations / non-activations summed over recordings
    test_counts: np.ndarray
    attribute_parameters: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # shown before the LR (same recording)
    bounding: float = 0.0  # change made by the ELUB bounds (0 inside them)
    offset_label: str = OFFSET_LABEL  # "recording durations" for qmf
    in_conditions: bool | None = None  # None: uncalibrated, nothing to check
    conditions_warning: str = ""  # why the comparison is outside the calibration conditions
    population: Population | None = None  # the relevant population given
    population_adaptation: AdaptationDecision | None = None  # whether the scorer adapted to it
    population_check: PopulationCheck | None = None  # the case LR among the population's
    population_files: dict = field(default_factory=dict)  # role -> files read (audit)
    population_conditions: dict | None = None  # which conditions were checked (its record)

    def llr_lines(self) -> list[tuple[str, float]]:
        """The exactly additive parts of the LLR, as `(label, value)` lines: the attribute
        contributions, the offset, the ELUB bounding when it changed the LLR."""
        lines = [
            (f"sum of {len(self.contributions)} attribute contributions", self.contributions.sum()),
            (self.offset_label, self.offset),
        ]
        if self.bounding:
            lines.append(("bounded by calibration data (ELUB)", self.bounding))
        return lines

    def top_attributes(self, k: int) -> pd.DataFrame:
        """The k attributes pushing most towards same speaker, then the k most towards different."""
        import pandas as pd

        return pd.DataFrame(self.top_attribute_rows(k))

    def top_attribute_rows(self, k: int) -> list[dict[str, str | float]]:
        """`top_attributes` as a list of rows (column -> value), without pandas."""
        check_explain(k)
        high, low = top_k(self.contributions[None, :], k)
        same = [i for i in high[0] if self.contributions[i] > 0]
        different = [i for i in low[0] if self.contributions[i] < 0]
        rows = []
        for direction, chosen in (("same", same), ("different", different)):
            for attribute in chosen:
                row = {
                    "towards": direction,
                    "attribute": f"BA{attribute}",
                    "contribution": float(self.contributions[attribute]),
                    "enrollment": bits_text(self.enroll_counts[attribute]),
                    "test": bits_text(self.test_counts[attribute]),
                }
                row.update({n: float(v[attribute]) for n, v in self.attribute_parameters.items()})
                rows.append(row)
        return rows
