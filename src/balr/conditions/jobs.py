"""Conditions of a dataset's recordings, for the scoring jobs: the description of the
calibration recordings (`score calibrate`) and the check of each trial (`score test`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from balr.conditions.description import DEFAULT_SIMILARITY_PERCENTILE, ConditionsDescription
from balr.conditions.trials import NO_DESCRIPTION, TrialConditions, trial_conditions

if TYPE_CHECKING:
    from balr.calibration import Calibrator
    from balr.data import AudioDataset, Trials


def describe_recordings(
    dataset: AudioDataset,
    trials: Trials,
    durations: dict[str, float],
    kind: str,
    similarity_percentile: float = DEFAULT_SIMILARITY_PERCENTILE,
    groups: Sequence[str] | None = None,
) -> ConditionsDescription:
    """The conditions description of the recordings of the calibration `trials` of `dataset`
    (`kind` vectors): the speech range of the trials' sides (each side's total), and with
    `groups` (each trial's corpus) a similarity threshold balanced over corpora, each
    recording counted in the corpus of most of its trials."""
    from balr.data.speech import side_seconds  # balr.data imports torch: on use

    ids = trials.unique_ids()
    present, vectors = dataset.stack_vectors(kind, [dataset.index_of(i) for i in ids])
    items = [dataset.items[i] for i in present]
    sides = {tuple(cell) for cell in [*trials.enrollment, *trials.test]}
    speech = side_seconds(sorted(sides), durations)
    speakers = [item.speaker for item in items]
    corpora = None if groups is None else recording_groups(trials, groups, items)
    description = ConditionsDescription(similarity_percentile=similarity_percentile)
    return description.fit(vectors, speech, speakers, vector_kind=kind, groups=corpora)


def recording_groups(trials: Trials, groups: Sequence[str], items: Sequence) -> list[str]:
    """The group of each of `items` (dataset items): the most frequent among the trials that
    use it (ties: the first name in sorted order)."""
    counts: dict[str, Counter] = {}
    for group, enrollment, test in zip(groups, trials.enrollment, trials.test, strict=True):
        for name in {*enrollment, *test}:
            counts.setdefault(name, Counter())[str(group)] += 1
    return [min(counts[item.id].items(), key=lambda kv: (-kv[1], kv[0]))[0] for item in items]


def check_trial_conditions(
    description: ConditionsDescription | None,
    dataset: AudioDataset,
    trials: Trials,
    valid: np.ndarray,
    durations: dict[str, float] | None,
    calibrator: Calibrator | None = None,
) -> TrialConditions:
    """Whether each trial of calibrated scores lies in the conditions its calibration was
    fitted in (`description`, None when the calibration has none: every trial is out, with
    that reason); out, with the reason, when a recording has no valid vector. Speech is
    checked per side (its recordings' total); the notes say where `calibrator` clamps a
    duration (`Calibrator.duration_notes`) and where speech is longer than calibrated."""
    from balr.data.speech import trial_seconds

    seconds = trial_seconds(trials, durations)
    notes = [""] * len(trials)
    if calibrator is not None:
        notes = [note if ok else "" for note, ok in zip(
            calibrator.duration_notes(seconds), valid, strict=True)]  # fmt: skip
    if description is None:
        return TrialConditions.unchecked(len(trials), NO_DESCRIPTION).with_notes(notes)
    present, vectors = dataset.stack_vectors(
        description.vector_kind_, [dataset.index_of(i) for i in trials.unique_ids()], bad=[]
    )
    names = [dataset.items[i].id for i in present]
    row_of = {name: row for row, name in enumerate(names)}
    checkable = valid & _all_in(trials.enrollment, row_of) & _all_in(trials.test, row_of)
    result = TrialConditions.unchecked(len(trials), "not scored: a recording has no valid vector")
    for t in np.flatnonzero(valid & ~checkable):
        result.reasons[t] = f"a recording has no {description.vector_kind_} vector to check"
    keep = np.flatnonzero(checkable)
    if len(keep):  # then `names` holds every recording of these trials
        checked = trial_conditions(
            description.check_recordings(vectors),
            [[row_of[i] for i in trials.enrollment[t]] for t in keep],
            [[row_of[i] for i in trials.test[t]] for t in keep],
            seconds[keep],
            description.speech_range_s_,
            names,
        )
        result.in_conditions[keep] = checked.in_conditions
        for t, reason, note in zip(keep, checked.reasons, checked.notes, strict=True):
            result.reasons[t], result.notes[t] = reason, note
    return result.with_notes(notes)


def _all_in(cells: list[list[str]], rows: dict[str, int]) -> np.ndarray:
    return np.array([all(i in rows for i in cell) for cell in cells], bool)
