"""The dataset's own check of its calibration: its different-speaker trials against the
bound of calibrated LRs.

A shift that a whole dataset shares (one channel, one recording setup) makes every pair
look alike; no check of one pair sees it, but the dataset's different-speaker comparisons
do, because calibrated LRs obey `P(LR >= x | different speakers) <= 1/x` (`balr.lr_bound`).
Where the dataset's speakers are labelled, `score test` tests its different-speaker trials
(scored, not a recording against itself); where they break the bound, every trial is out of
the calibration's conditions. The test is one per run, not per trial: leaving each trial's
own speakers out was measured to let through exactly the misleading trials where a few
look-alike speakers break the bound (speechocean762 through a telephone channel, adapted to
20 population speakers: 8.6 % LR > 100 among the trials it left un-warned). Unlabelled
trials (casework) cannot be checked this way: give a relevant population (`--population`,
docs/population.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from balr.lr_bound import BoundTest, bound_of_llrs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetBoundCheck:
    """The bound test of a dataset's different-speaker trials (None: too few to test) and
    the trials it applies to (scored ones)."""

    test: BoundTest | None
    scored: np.ndarray  # (trials,) bool

    @property
    def flagged(self) -> np.ndarray:
        broken = self.test is not None and self.test.broken
        return self.scored & broken

    def reason(self) -> str:
        return f"the calibration does not hold on this dataset: {self.test.describe('it')}"

    def reasons(self) -> list[str]:
        """Per trial, why it is out of conditions by this check ('' when it is not)."""
        reason = self.reason() if self.flagged.any() else ""
        return [reason if flag else "" for flag in self.flagged]

    def record(self) -> dict:
        """metrics.json's `bound_check`."""
        return {
            "test": None if self.test is None else self.test.record(),
            "n_trials_flagged": int(self.flagged.sum()),
        }


def check_dataset_bound(
    llrs: np.ndarray,
    enrollment_speakers: Sequence[str | None],
    test_speakers: Sequence[str | None],
    comparisons: np.ndarray,
    with_population: bool = False,
) -> DatasetBoundCheck:
    """The check from the calibrated `llrs` of the trials usable as `comparisons` (scored,
    not a recording against itself) whose two speakers are known and differ, with one
    warning line when it flags trials (its hint: give a relevant population, or, when the
    LRs already had one (`with_population`), that they still break the bound)."""
    llrs = np.asarray(llrs, dtype=np.float64)
    e = np.asarray(enrollment_speakers, dtype=object)
    t = np.asarray(test_speakers, dtype=object)
    known = np.not_equal(e, None) & np.not_equal(t, None)
    different = comparisons & known & (e != t) & np.isfinite(llrs)
    speakers = len(set(e[different]) | set(t[different]))
    test = bound_of_llrs(llrs[different], speakers) if different.any() else None
    check = DatasetBoundCheck(test, np.isfinite(llrs))
    if check.flagged.any():
        hint = (
            "even with the relevant population given"
            if with_population
            else "a relevant population adapts the LRs: --population, docs/population.md"
        )
        logger.warning(
            "%s; %d trials out of conditions for it (%s)",
            check.reason(),
            int(check.flagged.sum()),
            hint,
        )
    return check
