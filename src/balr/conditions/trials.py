"""Conditions results: per recording (`RecordingConditions`), per trial
(`TrialConditions`, `trial_conditions`), and the check of one comparison of several
recordings a side (`check_comparison`, used by `balr compare`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from balr.conditions.description import ConditionsDescription

#: reason of a trial checked against no description (the calibration has none)
NO_DESCRIPTION = "no conditions description in this calibration"
#: reason of a recording whose net speech is not known
UNKNOWN_SPEECH = "speech duration unknown (no speech_durations.tsv)"


@dataclass(frozen=True)
class RecordingConditions:
    """Per recording: in conditions or not, and what is wrong (`problems[i]` phrases such as
    `speech 0.4 s below the calibrated 0.9-12.0 s`, empty when in conditions)."""

    in_conditions: np.ndarray
    problems: list[list[str]]


@dataclass(frozen=True)
class TrialConditions:
    """Per trial: in conditions or not, and the reason (empty when in conditions)."""

    in_conditions: np.ndarray
    reasons: list[str]

    @classmethod
    def unchecked(cls, n_trials: int, reason: str) -> TrialConditions:
        """Every trial out of conditions for one reason (e.g. no description)."""
        return cls(np.zeros(n_trials, bool), [reason] * n_trials)

    def counts(self) -> dict[str, int]:
        inside = int(np.count_nonzero(self.in_conditions))
        return {"in_conditions": inside, "out_of_conditions": len(self.reasons) - inside}


def trial_conditions(
    recordings: RecordingConditions,
    enrollment_rows: Sequence[Sequence[int]],
    test_rows: Sequence[Sequence[int]],
    recording_names: Sequence[str] | None = None,
) -> TrialConditions:
    """Trials from their recordings' checks: trial i uses the recordings at rows
    `enrollment_rows[i]` and `test_rows[i]`; it is in conditions iff all of them are. The
    reason names the side (`enrollment speech 0.4 s below ...`), and the recording when a
    side has several (`test rec7: recording unlike ...`)."""
    inside = np.ones(len(enrollment_rows), bool)
    reasons = []
    for trial, sides in enumerate(zip(enrollment_rows, test_rows, strict=True)):
        found = []
        for side, rows in zip(("enrollment", "test"), sides, strict=True):
            for row in rows:
                label = side
                if len(rows) > 1 and recording_names is not None:
                    label = f"{side} {recording_names[row]}:"
                found += [f"{label} {problem}" for problem in recordings.problems[row]]
        inside[trial] = not found
        reasons.append("; ".join(found))
    return TrialConditions(inside, reasons)


def check_comparison(
    description: ConditionsDescription | None, vectors: np.ndarray, speech_s: Sequence[float],
    n_enrollment: int, names: Sequence[str],
) -> TrialConditions:  # fmt: skip
    """One trial of several recordings a side (rows before `n_enrollment` enrollment, the
    rest test) checked against `description`; out of conditions when there is none."""
    if description is None:
        return TrialConditions.unchecked(1, NO_DESCRIPTION)
    recordings = description.check_recordings(vectors, np.asarray(speech_s, dtype=np.float64))
    rows = list(range(len(names)))
    return trial_conditions(recordings, [rows[:n_enrollment]], [rows[n_enrollment:]], names)
