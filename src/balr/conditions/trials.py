"""Conditions results: per recording (`RecordingConditions`), per trial
(`TrialConditions`, `trial_conditions`), the check of one comparison of several recordings a
side (`check_comparison`, used by `balr compare`), the findings on a side's net speech
(`speech_findings`) and the numbers of a message printed apart (`apart`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from balr.calibration import Calibrator
    from balr.conditions.description import ConditionsDescription

#: reason of a trial checked against no description (the calibration has none)
NO_DESCRIPTION = "no conditions description in this calibration"
#: reason of a recording whose net speech is not known
UNKNOWN_SPEECH = "speech duration unknown (no speech_durations.tsv)"
#: why speech longer than the calibration's is a note, not a warning (docs/scoring.md)
LONGER_SPEECH = "a note, not a warning: longer speech did not mislead in measurement"
#: the most decimals `apart` prints
MAX_DECIMALS = 6


def apart(value: float, *bounds: float, decimals: int = 1) -> list[str]:
    """`value` and `bounds` as text with the fewest decimals (at least `decimals`, at most
    `MAX_DECIMALS`) at which `value` reads differently from every bound it differs from, so
    that a message such as `2.7 s below the calibrated 2.7-5.9 s` never rounds its reason away
    (`2.68 s below the calibrated 2.70-5.90 s`)."""
    for places in range(decimals, MAX_DECIMALS + 1):
        texts = [f"{number:.{places}f}" for number in (value, *bounds)]
        if all(text != texts[0] for text, b in zip(texts[1:], bounds, strict=True) if b != value):
            break
    return texts


def speech_findings(seconds: float, speech_range_s: Sequence[float]) -> tuple[list[str], list[str]]:
    """`(problems, notes)` of one side's net speech `seconds` (NaN: unknown) against the
    calibrated `[low, high]`: unknown or below the range is a problem (out of conditions);
    above it only a note (the measurement in docs/scoring.md: long speech does not mislead)."""
    low, high = speech_range_s
    if np.isnan(seconds):
        return [UNKNOWN_SPEECH], []
    if low <= seconds <= high:
        return [], []
    value, low_text, high_text = apart(seconds, low, high)
    where = "below" if seconds < low else "above"
    found = f"speech {value} s {where} the calibrated {low_text}-{high_text} s"
    return ([found], []) if seconds < low else ([], [f"{found} ({LONGER_SPEECH})"])


@dataclass(frozen=True)
class RecordingConditions:
    """Per recording: in conditions or not, and what is wrong (`problems[i]` phrases such as
    `recording unlike the calibration population (similarity 0.41 < 0.52)`, empty when in
    conditions); `notes[i]` what is worth knowing without putting it out of conditions."""

    in_conditions: np.ndarray
    problems: list[list[str]]
    notes: list[list[str]] | None = None


@dataclass(frozen=True)
class TrialConditions:
    """Per trial: in conditions or not, the reason (empty when in conditions) and notes
    (informational, e.g. speech longer than the calibration's; empty when none)."""

    in_conditions: np.ndarray
    reasons: list[str]
    notes: list[str] = field(default_factory=list)

    @classmethod
    def unchecked(cls, n_trials: int, reason: str) -> TrialConditions:
        """Every trial out of conditions for one reason (e.g. no description)."""
        return cls(np.zeros(n_trials, bool), [reason] * n_trials, [""] * n_trials)

    def counts(self) -> dict[str, int]:
        inside = int(np.count_nonzero(self.in_conditions))
        return {"in_conditions": inside, "out_of_conditions": len(self.reasons) - inside}

    def reasons_and_notes(self) -> list[str]:
        """Per trial, the reason then the notes (`; `-joined): the `conditions_reason` column."""
        return _joined(self.reasons, self.notes or [""] * len(self.reasons))

    def with_reasons(self, extra: Sequence[str]) -> TrialConditions:
        """The same trials, each with a non-empty `extra[i]` out of conditions for it too."""
        flagged = np.array([bool(text) for text in extra], dtype=bool)
        reasons = _joined(self.reasons, extra)
        return TrialConditions(self.in_conditions & ~flagged, reasons, self.notes)

    def with_notes(self, extra: Sequence[str]) -> TrialConditions:
        """The same trials with `extra[i]` (if any) added to the notes of trial i."""
        notes = _joined(self.notes or [""] * len(self.reasons), extra)
        return TrialConditions(self.in_conditions, self.reasons, notes)


def _joined(first: Sequence[str], second: Sequence[str]) -> list[str]:
    """Per trial, the non-empty texts of `first[i]` and `second[i]`, `; `-joined."""
    return ["; ".join(t for t in pair if t) for pair in zip(first, second, strict=True)]


def trial_conditions(
    recordings: RecordingConditions,
    enrollment_rows: Sequence[Sequence[int]],
    test_rows: Sequence[Sequence[int]],
    side_speech_s: np.ndarray,
    speech_range_s: Sequence[float],
    recording_names: Sequence[str] | None = None,
) -> TrialConditions:
    """Trials from their sides' net speech and their recordings' checks: trial i uses the
    recordings at rows `enrollment_rows[i]` and `test_rows[i]`, whose net speech totals are
    `side_speech_s[i]` (`(trials, 2)` seconds, NaN: unknown). Durations are checked per side,
    as the calibration uses them (`speech_findings`); a trial is in conditions iff both sides'
    speech and all their recordings are. The reason names the side (`enrollment speech 0.40 s
    below ...`), and the recording when a side has several (`test rec7: recording unlike ...`).
    """
    inside = np.ones(len(enrollment_rows), bool)
    reasons, notes = [], []
    side_speech_s = np.asarray(side_speech_s, dtype=np.float64).reshape(-1, 2)
    for trial, sides in enumerate(zip(enrollment_rows, test_rows, strict=True)):
        found, noted = [], []
        for index, (side, rows) in enumerate(zip(("enrollment", "test"), sides, strict=True)):
            problems, side_notes = speech_findings(side_speech_s[trial, index], speech_range_s)
            found += [f"{side} {problem}" for problem in problems]
            noted += [f"{side} {note}" for note in side_notes]
            for row in rows:
                label = side
                if len(rows) > 1 and recording_names is not None:
                    label = f"{side} {recording_names[row]}:"
                found += [f"{label} {problem}" for problem in recordings.problems[row]]
        inside[trial] = not found
        reasons.append("; ".join(found))
        notes.append("; ".join(noted))
    return TrialConditions(inside, reasons, notes)


def check_comparison(
    description: ConditionsDescription | None, vectors: np.ndarray, speech_s: Sequence[float],
    n_enrollment: int, names: Sequence[str], calibrator: Calibrator | None = None,
) -> TrialConditions:  # fmt: skip
    """One trial of several recordings a side (rows before `n_enrollment` enrollment, the
    rest test) checked against `description` (out of conditions when there is none), each
    side's net speech the sum of its recordings'; with the notes of `calibrator` on durations
    it clamps (`Calibrator.duration_notes`)."""
    speech_s = np.asarray(speech_s, dtype=np.float64)
    sides = np.array([[speech_s[:n_enrollment].sum(), speech_s[n_enrollment:].sum()]])
    if description is None:
        trial = TrialConditions.unchecked(1, NO_DESCRIPTION)
    else:
        recordings = description.check_recordings(vectors)
        rows = list(range(len(names)))
        trial = trial_conditions(
            recordings, [rows[:n_enrollment]], [rows[n_enrollment:]], sides,
            description.speech_range_s_, names,
        )  # fmt: skip
    return trial if calibrator is None else trial.with_notes(calibrator.duration_notes(sides))
