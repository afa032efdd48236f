"""The population check of one case: how many population speakers reach the case's LR.

The test recording(s) are scored against every population speaker, and so is the
enrolment: each of these comparisons is a different-speaker trial in the case's
conditions. The share of them whose LR reaches the case's LR is an empirical false-alarm
rate for this very case; a case LR that population speakers reach is not exceptional.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from balr.population import Population

#: a case LR reached by this share of the population's comparisons or more is "not
#: exceptional": one population speaker in 20 does as well as the suspect
NOT_EXCEPTIONAL_SHARE = 0.05


@dataclass(frozen=True)
class PopulationCheck:
    """Case LLR against the LLRs of both sides with each population speaker."""

    case_llr: float
    speakers: tuple[str, ...]
    test_llrs: np.ndarray  # test side against each population speaker
    enrollment_llrs: np.ndarray  # enrolment side against each population speaker

    @property
    def llrs(self) -> np.ndarray:
        return np.concatenate([self.test_llrs, self.enrollment_llrs])

    @property
    def n_reaching(self) -> int:
        return int(np.sum(self.llrs >= self.case_llr))

    @property
    def share(self) -> float:
        """Empirical false-alarm rate: the share of comparisons reaching the case LLR."""
        return self.n_reaching / len(self.llrs)

    @property
    def exceptional(self) -> bool:
        return self.share < NOT_EXCEPTIONAL_SHARE

    def summary(self) -> str:
        return (
            f"{self.n_reaching} of {len(self.llrs)} comparisons with {len(self.speakers)} "
            f"population speakers ({100 * self.share:.1f} %) reach the case's LR"
        )

    def warning(self) -> str | None:
        """A warning when the case LR is not exceptional among the population."""
        if self.exceptional:
            return None
        return (
            f"the case's LR is not exceptional among the population: {self.summary()} "
            f"(threshold {100 * NOT_EXCEPTIONAL_SHARE:g} %)"
        )

    def record(self) -> dict:
        return {
            "case_llr": self.case_llr,
            "n_comparisons": len(self.llrs),
            "n_reaching": self.n_reaching,
            "share": self.share,
            "exceptional": self.exceptional,
        }


def speaker_cells(scorer, population: Population) -> tuple[tuple[str, ...], np.ndarray]:
    """`(names, summed cell vectors)`: one cell per population speaker (a recording is its
    own speaker where the population has no labels)."""
    names, index = population.speaker_index()
    rows = scorer.cell_vectors(population.bits)
    cells = np.zeros((len(names),) + rows.shape[1:])
    np.add.at(cells, index, rows)
    return names, cells


def check_against_population(
    scorer,
    enrollment: np.ndarray,
    test: np.ndarray,
    population: Population,
    case_llr: float,
    calibrate: Callable[[np.ndarray, str], np.ndarray] | None = None,
) -> PopulationCheck:
    """Score both case sides (summed cell vectors of one side each) against every
    population speaker. `calibrate(raw, side)` maps raw scores to LLRs the way the case's
    were (`side`: "test" or "enrollment", for duration-aware calibrations); None: raw."""
    names, cells = speaker_cells(scorer, population)

    def against(side: np.ndarray, name: str) -> np.ndarray:
        repeated = np.broadcast_to(side, cells.shape)
        raw = scorer.score_cells(cells, np.ascontiguousarray(repeated))
        return calibrate(raw, name) if calibrate is not None else raw

    return PopulationCheck(
        float(case_llr), names, against(test, "test"), against(enrollment, "enrollment")
    )
