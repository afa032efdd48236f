"""The dataset's own check of its calibration: each trial against the bound of calibrated
LRs on the different-speaker trials of the dataset's *other* speakers.

A shift that a whole dataset shares (one channel, one recording setup) makes every pair
look alike; no check of one pair sees it, but the different-speaker comparisons of the
dataset's other speakers do, because calibrated LRs obey `P(LR >= x | different speakers)
<= 1/x` (`balr.lr_bound`). Where the dataset's speakers are labelled, `score test` counts,
for each trial, the different-speaker trials of the list that involve neither of its two
speakers; where they break the bound, the trial is out of the calibration's conditions.
A trial's own label and its speakers' comparisons never enter its check. Unlabelled
trials (casework) cannot be checked this way: give a relevant population
(`--population`, docs/population.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from balr.lr_bound import BoundTest, SpeakerPairCounts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetBoundCheck:
    """Per trial, the bound test of the other speakers' different-speaker trials (None:
    not testable), and the test of all of them."""

    per_trial: list[BoundTest | None]
    whole: BoundTest | None

    @property
    def flagged(self) -> np.ndarray:
        return np.array([t is not None and t.broken for t in self.per_trial], dtype=bool)

    def reasons(self) -> list[str]:
        """Per trial, why it is out of conditions by this check ('' when it is not)."""
        return [
            f"the calibration does not hold on this dataset: {t.describe('its other speakers')}"
            if t is not None and t.broken
            else ""
            for t in self.per_trial
        ]

    def record(self) -> dict:
        """metrics.json's `bound_check`."""
        return {
            "left_out": "each trial's own two speakers",
            "all_trials": None if self.whole is None else self.whole.record(),
            "n_trials_flagged": int(self.flagged.sum()),
            "n_trials_checked": sum(t is not None for t in self.per_trial),
        }


def check_dataset_bound(
    llrs: np.ndarray,
    enrollment_speakers: Sequence[str | None],
    test_speakers: Sequence[str | None],
    usable: np.ndarray,
) -> DatasetBoundCheck:
    """The check of every trial from the calibrated `llrs` of the trials `usable` as
    comparisons (scored, not a recording against itself) with both speakers known."""
    e = np.asarray(enrollment_speakers, dtype=object)
    t = np.asarray(test_speakers, dtype=object)
    known = usable & np.array([a is not None and b is not None for a, b in zip(e, t, strict=True)])
    counts = SpeakerPairCounts.from_comparisons(llrs[known], e[known], t[known])
    return DatasetBoundCheck(counts.per_trial(e, t), counts.without())


def check_trials_bound(trials, dataset, llrs: np.ndarray, usable: np.ndarray) -> DatasetBoundCheck:
    """`check_dataset_bound` of a trials list (`balr.data.Trials`) over the speakers of
    `dataset` (an `AudioDataset`), with one warning line when it flags trials."""
    speaker_of = dict(zip(dataset.ids, dataset.speakers, strict=True))
    enrollment, test = trials.side_speakers(speaker_of)
    check = check_dataset_bound(np.asarray(llrs, dtype=np.float64), enrollment, test, usable)
    warn_bound(check)
    return check


def warn_bound(check: DatasetBoundCheck) -> None:
    """One warning line when the dataset's different-speaker trials break the bound."""
    flagged = int(check.flagged.sum())
    if flagged:
        whole = check.whole.describe("this dataset") if check.whole is not None else ""
        logger.warning(
            "the calibration does not hold on this dataset: %s; %d trials out of conditions "
            "for it (a relevant population adapts the LRs: --population, docs/population.md)",
            whole,
            flagged,
        )
