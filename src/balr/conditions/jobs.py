"""Conditions of a dataset's recordings, for the scoring jobs: the description of the
calibration recordings (`score calibrate`), the check of each trial (`score test`) and of its
recordings' channels against the shipped calibration's (`check_trial_channels`, from the
`channel_profiles.tsv` that `balr extract` wrote)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from balr.conditions.channel import (
    ChannelReference,
    name_channel_problems,
    shipped_channel_reference,
)
from balr.conditions.description import DEFAULT_SIMILARITY_PERCENTILE, ConditionsDescription
from balr.conditions.trials import (
    NO_DESCRIPTION,
    RecordingConditions,
    TrialConditions,
    trial_conditions,
)

if TYPE_CHECKING:
    from balr.calibration import Calibrator
    from balr.data import AudioDataset, Trials
    from balr.scoring.selection import CalibrationChoice

log = logging.getLogger(__name__)


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
    described: Described | None = None,
) -> TrialConditions:
    """Whether each trial of calibrated scores lies in the conditions its calibration was
    fitted in (`description`, None when the calibration has none: every trial is out, with
    that reason); out, with the reason, when a recording has no valid vector. Speech is
    checked per side (its recordings' total); the notes say where `calibrator` clamps a
    duration (`Calibrator.duration_notes`) and where speech is longer than calibrated.
    `described`: the trials' recordings already checked (`described_recordings`)."""
    from balr.data.speech import trial_seconds

    seconds = trial_seconds(trials, durations)
    notes = [""] * len(trials)
    if calibrator is not None:
        notes = [note if ok else "" for note, ok in zip(
            calibrator.duration_notes(seconds), valid, strict=True)]  # fmt: skip
    if description is None:
        return TrialConditions.unchecked(len(trials), NO_DESCRIPTION).with_notes(notes)
    names, recordings = described or described_recordings(description, dataset, trials.unique_ids())
    row_of = {name: row for row, name in enumerate(names)}
    checkable = valid & cells_within(trials.enrollment, row_of) & cells_within(trials.test, row_of)
    result = TrialConditions.unchecked(len(trials), "not scored: a recording has no valid vector")
    for t in np.flatnonzero(valid & ~checkable):
        result.reasons[t] = f"a recording has no {description.vector_kind_} vector to check"
    keep = np.flatnonzero(checkable)
    if len(keep):  # then `names` holds every recording of these trials
        checked = trial_conditions(
            recordings,
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


#: recordings checked against a conditions description: their ids and their results
Described = tuple[list[str], RecordingConditions]


def described_recordings(
    description: ConditionsDescription, dataset: AudioDataset, ids: Sequence[str]
) -> Described:
    """The recordings `ids` (items of `dataset`) that have a vector of the kind
    `description` compares, checked against it (`ConditionsDescription.check_recordings`)."""
    present, vectors = dataset.stack_vectors(
        description.vector_kind_, [dataset.index_of(i) for i in ids], bad=[]
    )
    if not len(present):
        return [], RecordingConditions(np.zeros(0, bool), [], [])
    return [dataset.items[i].id for i in present], description.check_recordings(vectors)


def recording_problems(
    description: ConditionsDescription | None,
    described: Described | None,
    ids: Sequence[str],
    channel: ChannelReference | None,
    profiles: dict[str, np.ndarray],
) -> dict[str, list[str]]:
    """Per recording id, what puts it out of the calibration's conditions on its own
    (`calibration_problems`, from the recordings `described` against `description`; a
    recording without a vector: said)."""
    if description is None or described is None:
        return {i: [NO_DESCRIPTION] for i in ids}
    found = {i: [f"no {description.vector_kind_} vector to check"] for i in ids}
    names, recordings = described
    problems = [list(p) for p in recordings.problems]
    rows = [profiles.get(i) for i in names]
    return found | dict(zip(names, with_channel(problems, channel, rows), strict=True))


def calibration_problems(
    description: ConditionsDescription | None,
    vectors: np.ndarray,
    channel: ChannelReference | None,
    profiles: Sequence[np.ndarray | None],
) -> list[list[str]]:
    """Per recording (`vectors`, the kind `description` compares, and its channel profile,
    None: not checked by the channel), what puts it out of the calibration's conditions on
    its own: its similarity to the calibration population (`description`; none:
    `NO_DESCRIPTION`) and, with the calibration's `channel` reference, its channel."""
    if description is None:
        return [[NO_DESCRIPTION] for _ in profiles]
    found = [list(p) for p in description.check_recordings(vectors).problems]
    return with_channel(found, channel, profiles)


def with_channel(
    found: list[list[str]], channel: ChannelReference | None, profiles: Sequence
) -> list[list[str]]:
    """`found` (per recording, its problems) with its channel's against the calibration's
    `channel` reference added (`profiles[k]` None: not checked)."""
    rows = [k for k, profile in enumerate(profiles) if profile is not None]
    if channel is not None and rows:
        problems = channel.problems(np.stack([profiles[k] for k in rows]))
        for k, problem in zip(rows, problems, strict=True):
            found[k] += [problem] if problem else []
    return found


def cells_within(cells: Sequence[Sequence[str]], known) -> np.ndarray:
    """Per cell (a trial side's ids), whether every id is in `known` (a dict or set)."""
    return np.array([all(i in known for i in cell) for cell in cells], bool)


@dataclass(frozen=True)
class ChannelCheck:
    """The channel check of a trials list: per trial the reason its recordings' channels put
    it out of conditions ('' when none does), and the counts metrics.json records."""

    reasons: list[str]
    recordings_checked: int
    recordings_flagged: int
    recordings_without_profile: int
    stale_profiles: int
    threshold: float

    @property
    def trials_flagged(self) -> int:
        return sum(bool(reason) for reason in self.reasons)

    def record(self) -> dict:
        """metrics.json's `channel_check`."""
        return {
            "recordings_checked": self.recordings_checked,
            "recordings_flagged": self.recordings_flagged,
            "recordings_without_profile": self.recordings_without_profile,
            "stale_profiles": self.stale_profiles,
            "trials_flagged": self.trials_flagged,
            "threshold": round(self.threshold, 4),
        }

    def summary(self) -> str:
        return (
            f"channel check: {self.recordings_flagged} of {self.recordings_checked} recordings "
            f"unlike the calibration recordings' channel, {self.trials_flagged} of "
            f"{len(self.reasons)} trials out of conditions by it; not checked: "
            f"{self.recordings_without_profile} without a profile, {self.stale_profiles} with a "
            "stale one (another audio path)"
        )


def trial_channel_check(
    calibrated: CalibrationChoice, dataset: AudioDataset, trials: Trials, valid: np.ndarray,
    folder: str | Path, population=None,
) -> ChannelCheck | None:  # fmt: skip
    """The channel check of the scored (`valid`) trials when the calibration is a shipped one
    and `folder` (the vectors') holds `channel_profiles.tsv`; None otherwise, saying why in
    the log (`check_trial_channels`). Not run where a relevant `population` (a
    `TrialPopulations`) tested the calibration and its conditions are checked
    (`balr.conditions.population`: a recording out of the population's channel and the
    calibration's); run as without one where it did not (unlabelled, too few pairs, adapted
    scores still breaking the bound, no channel profiles of its own): such a population
    cannot vouch for the trials' channel."""
    from balr.data.channel_profiles import CHANNEL_FILE, read_channel_profiles  # balr.data: on use

    if calibrated.calibrator is None:
        return None
    if population is not None and isinstance(getattr(population, "conditions", None), str):
        log.info("the relevant population %s cannot vouch for the trials' channel (%s): "
                 "channel check as without it", population.population.source,
                 population.conditions)  # fmt: skip
    elif population is not None:
        log.info("no channel check alone: the trials are checked against the conditions of "
                 "the relevant population %s or the calibration's",
                 population.population.source)  # fmt: skip
        return None
    reference = shipped_channel_reference(calibrated)
    if reference is None:
        log.info("no channel check: the channel reference describes the shipped calibration's "
                 "recordings only, not %s", calibrated.source)  # fmt: skip
        return None
    profiles = read_channel_profiles(folder)
    if profiles is None:
        log.info("no channel check: no %s in %s (balr extract writes it)", CHANNEL_FILE, folder)
        return None
    check = check_trial_channels(reference, dataset, trials, valid, profiles)
    log.info(check.summary())
    return check


def check_trial_channels(
    reference: ChannelReference, dataset: AudioDataset, trials: Trials, valid: np.ndarray,
    profiles: dict[str, tuple[str, np.ndarray]],
) -> ChannelCheck:  # fmt: skip
    """Each recording of the scored (`valid`) trials checked against `reference` by its
    profile (`{id: (audio path, profile)}`, `balr.data.channel_profiles`); a profile of
    another audio path than the dataset item's is stale (not used), and a recording without
    one is not checked. Trials are named as `balr compare` names them (`name_channel_problems`)."""
    ids = scored_ids(trials, valid)
    found, missing, stale = usable_profiles(dataset, ids, profiles)
    usable = list(found.items())
    problems = reference.problems(np.stack([p for _, p in usable])) if usable else []
    problem_of = {
        item_id: problem for (item_id, _), problem in zip(usable, problems, strict=True) if problem
    }  # the flagged recordings only: most trials have none and are passed over
    reasons = [""] * len(trials)
    for t in np.flatnonzero(valid) if problem_of else ():
        names = [*trials.enrollment[t], *trials.test[t]]
        if problem_of.keys().isdisjoint(names):
            continue
        found = [problem_of.get(name, "") for name in names]
        reasons[t] = name_channel_problems(found, names, len(trials.enrollment[t]))
    return ChannelCheck(reasons, len(usable), len(problem_of), missing, stale, reference.threshold_)


def scored_ids(trials: Trials, valid: np.ndarray) -> list[str]:
    """The ids of the recordings of the scored (`valid`) trials, sorted."""
    return sorted(
        {i for t in np.flatnonzero(valid) for i in (*trials.enrollment[t], *trials.test[t])}
    )


def usable_profiles(
    dataset: AudioDataset, ids: Sequence[str], profiles: dict[str, tuple[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], int, int]:
    """`({id: profile}, missing, stale)`: the profiles (`{id: (audio path, profile)}`,
    `balr.data.channel_profiles`) of `ids` (items of `dataset`) written for the item's
    audio; one of another audio path is stale (not used), a recording without one missing."""
    usable, missing, stale = {}, 0, 0
    for item_id in ids:
        row = profiles.get(item_id)
        audio = dataset.items[dataset.index_of(item_id)].audio
        if row is None:
            missing += 1
        elif audio is None or not _same_path(row[0], audio):
            stale += 1
        else:
            usable[item_id] = row[1]
    return usable, missing, stale


def _same_path(written: str, audio: str | Path) -> bool:
    """Whether a profile's audio path names the item's audio (relative paths: from here)."""
    return os.path.abspath(written) == os.path.abspath(audio)
