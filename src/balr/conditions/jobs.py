"""Conditions of a dataset's recordings, for the scoring jobs: the description of the
calibration recordings (`score calibrate`) and the check of each trial (`score test`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from balr.conditions.description import DEFAULT_SIMILARITY_PERCENTILE, ConditionsDescription
from balr.conditions.trials import NO_DESCRIPTION, TrialConditions, trial_conditions

if TYPE_CHECKING:
    from balr.data import AudioDataset, Trials


def describe_recordings(
    dataset: AudioDataset,
    ids: Sequence[str],
    durations: dict[str, float],
    kind: str,
    similarity_percentile: float = DEFAULT_SIMILARITY_PERCENTILE,
) -> ConditionsDescription:
    """The conditions description of the recordings `ids` of `dataset` (`kind` vectors)."""
    from balr.data.speech import side_seconds  # balr.data imports torch: on use

    present, vectors = dataset.stack_vectors(kind, [dataset.index_of(i) for i in ids])
    items = [dataset.items[i] for i in present]
    speech = side_seconds([[item.id] for item in items], durations)
    speakers = [item.speaker for item in items]
    description = ConditionsDescription(similarity_percentile=similarity_percentile)
    return description.fit(vectors, speech, speakers, vector_kind=kind)


def check_trial_conditions(
    description: ConditionsDescription | None,
    dataset: AudioDataset,
    trials: Trials,
    valid: np.ndarray,
    durations: dict[str, float] | None,
) -> TrialConditions:
    """Whether each trial of calibrated scores lies in the conditions its calibration was
    fitted in (`description`, None when the calibration has none: every trial is out, with
    that reason); out, with the reason, when a recording has no valid vector."""
    from balr.data.speech import side_seconds

    if description is None:
        return TrialConditions.unchecked(len(trials), NO_DESCRIPTION)
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
        speech = side_seconds([[name] for name in names], durations)
        checked = trial_conditions(
            description.check_recordings(vectors, speech),
            [[row_of[i] for i in trials.enrollment[t]] for t in keep],
            [[row_of[i] for i in trials.test[t]] for t in keep],
            names,
        )
        result.in_conditions[keep] = checked.in_conditions
        for t, reason in zip(keep, checked.reasons, strict=True):
            result.reasons[t] = reason
    return result


def _all_in(cells: list[list[str]], rows: dict[str, int]) -> np.ndarray:
    return np.array([all(i in rows for i in cell) for cell in cells], bool)
