"""The conditions of a relevant population that tested the calibration.

Where a labelled population's own comparisons have tested the calibration in the case's
conditions (its different-speaker comparisons respect the bound of calibrated LRs, or, where
the scorer adapted, its adapted comparisons pass the re-test: `balr.population_decision`),
the LRs are validated in the conditions of *its* recordings as well as in the calibration's.
A trial's recording is then out of conditions only when it is out of both (`combined_problem`):

- **the population's**: its channel profile (`balr.conditions.channel`) against the
  population's: the mean distance to its `NEIGHBOURS` nearest population profiles of other
  speakers (never its own speaker's or itself; `MAX_PROFILES` of them at most, a seeded
  sample beyond), the values standardised as the shipped channel reference standardises
  them; beyond the `POPULATION_PERCENTILE` (98 %) of the population recordings' own
  distances (each to the other speakers' profiles), the channel is not the population's;
- **the calibration's**: what the check without a population finds of the recording alone
  (its similarity to the calibration population, and with the shipped calibration its
  channel: `balr.conditions.jobs.recording_problems`).

A side's net speech puts a trial out when it is unknown, or below both the population's
shortest recording (where its speech is known) and the calibration's range. A trial whose
recordings do not all have a channel profile (vectors from elsewhere than `balr extract`)
keeps the calibration's check alone.

Measured (recipes/research/r22_population_conditions.log, held-out speakers as recorded and
through a shared telephone / hall channel, populations of 5 and 20 speakers): a population of
another channel than the trials leaves every telephone and hall trial out, where the
calibration's check alone flagged 6-62 % of them; a population of the trials' channel
leaves 0-22 % of its trials out (the population's channel alone: 0-55 %, Common Voice's many
microphones against 5 speakers), where the calibration's check flagged 0.6-62 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from balr.conditions.channel import ChannelReference, knn_distance, name_channel_problems
from balr.conditions.jobs import cells_within, scored_ids, usable_profiles
from balr.conditions.trials import UNKNOWN_SPEECH, TrialConditions, apart
from balr.population import Population

if TYPE_CHECKING:
    from balr.conditions.description import ConditionsDescription
    from balr.data import AudioDataset, Trials

#: % of the population recordings' own channel distances at or below the threshold
POPULATION_PERCENTILE = 98.0
#: nearest population profiles a recording's channel distance averages
NEIGHBOURS = 10
#: query recordings compared with the population's profiles at once
CHUNK = 1024
#: population profiles kept at most (a seeded sample beyond): the fit compares each with
#: every other, and each query with every one
MAX_PROFILES = 5000


def population_tested(decision) -> bool:
    """Whether the population's own comparisons tested the calibration and found it to hold
    (an `AdaptationDecision`: the bound held, or the scorer adapted and its adapted LLRs
    pass the re-test); False when untested (no labels, too few pairs, no calibration)."""
    if decision is None or decision.bound is None:
        return False
    if not decision.adapt:
        return True
    return decision.recheck is not None and not decision.recheck.broken


def unchecked_reason(calibrated: bool, decision) -> str | None:
    """Why a case is not checked against its population's conditions (None: it is): its
    scores are not calibrated, or the population did not test the calibration."""
    if not calibrated:
        return "uncalibrated scores: no conditions to check"
    return None if population_tested(decision) else untested_reason(decision)


def untested_reason(decision) -> str:
    """Why trials keep the calibration's conditions check with this population (an
    `AdaptationDecision` that `population_tested` refuses)."""
    if decision is None or decision.bound is None:
        why = decision.reason if decision is not None else "no decision"
        return f"the population did not test the calibration ({why})"
    if decision.recheck is None:
        return "too few of the population's own comparisons to re-test its adapted scores"
    return "the scores adapted to the population still break the bound on its own comparisons"


@dataclass(frozen=True)
class PopulationConditions:
    """The population's channel profiles and shortest speech, as a trial is checked
    against them (`check_trials`)."""

    source: str
    reference: ChannelReference  # the population's profiles, standardised as the shipped
    ids: np.ndarray  # the population recording of each reference profile
    speakers: np.ndarray  # and its speaker
    speech_floor_s: float  # a side below this is out (NaN: not checked)

    @classmethod
    def fit(
        cls,
        population: Population,
        profiles: dict[str, np.ndarray],
        speech_s: np.ndarray,
        calibrated_low_s: float | None,
        scale: ChannelReference,
    ) -> PopulationConditions | str:
        """The conditions of `population` from its recordings' channel `profiles`
        (`{id: (96,)}`) and net speech `speech_s` (NaN: unknown), with the calibration's
        lowest calibrated speech `calibrated_low_s` (None: none) and the values
        standardised as `scale` (the shipped channel reference); why not, as text, when too
        few recordings have a profile."""
        rows = [k for k, i in enumerate(population.ids) if i in profiles]
        if len(rows) <= NEIGHBOURS:
            return (
                f"{len(rows)} of its {len(population.ids)} recordings have a channel profile, "
                f"more than {NEIGHBOURS} are needed (balr extract writes them)"
            )
        if len(rows) > MAX_PROFILES:
            rows = sorted(np.random.default_rng(0).choice(rows, MAX_PROFILES, replace=False))
        ids = np.array([population.ids[k] for k in rows])
        speakers = np.array([population.speakers[k] or population.ids[k] for k in rows])
        reference = ChannelReference(NEIGHBOURS, POPULATION_PERCENTILE).fit(
            np.stack([profiles[i] for i in ids]), ["population"] * len(ids), speakers, scale
        )
        known = np.asarray(speech_s, dtype=np.float64)
        known = known[np.isfinite(known)]
        floors = [float(known.min())] if len(known) else []  # unknown: it vouches for none
        floors += [] if calibrated_low_s is None else [float(calibrated_low_s)]
        floor = min(floors) if floors else np.nan
        return cls(population.source, reference, ids, speakers, floor)

    @classmethod
    def for_calibration(
        cls,
        population: Population,
        profiles: dict[str, np.ndarray],
        speech_s: np.ndarray,
        description: ConditionsDescription | None,
    ) -> PopulationConditions | str:
        """`fit` with the lowest speech of the calibration's conditions `description` (None:
        none) and the shipped channel reference's scale."""
        from balr import defaults

        low = None if description is None else description.speech_range_s_[0]
        scale = ChannelReference.load(
            defaults.require(defaults.CHANNEL_REFERENCE, "channel reference")
        )
        return cls.fit(population, profiles, speech_s, low, scale)

    @property
    def threshold(self) -> float:
        return self.reference.threshold_

    def distances(
        self, ids: Sequence[str], speakers: Sequence[str | None], profiles: np.ndarray
    ) -> np.ndarray:
        """Each recording's channel distance to the population's profiles, its own
        recording and speaker's left out (`speakers[i]` None: unlabelled, only itself)."""
        profiles = np.asarray(profiles, dtype=np.float64).reshape(len(ids), -1)
        scale = self.reference
        references = (scale.profiles_.astype(np.float64) - scale.shift_) / scale.scale_
        queries = (profiles - scale.shift_) / scale.scale_
        # integer codes compare fast: a query's speaker (its id where unlabelled) and its
        # own recording among the population's, -1 where it has none there
        speaker_code = {name: code for code, name in enumerate(np.unique(self.speakers))}
        references_speaker = np.array([speaker_code[s] for s in self.speakers])
        row_of = {name: row for row, name in enumerate(self.ids)}
        own_speaker = np.array([speaker_code.get(s if s else i, -1)
                                for i, s in zip(ids, speakers, strict=True)])  # fmt: skip
        own_row = np.array([row_of.get(i, -1) for i in ids])
        every_row = np.arange(len(self.ids))
        out = np.empty(len(ids))
        for start in range(0, len(ids), CHUNK):
            rows = slice(start, start + CHUNK)
            exclude = (own_speaker[rows, None] == references_speaker[None, :]) | (
                own_row[rows, None] == every_row[None, :]
            )
            out[rows] = knn_distance(queries[rows], references, NEIGHBOURS, exclude)
        return out

    def channel_problem(self, distance: float) -> str:
        """The out-of-conditions reason of one recording's distance ('' within)."""
        if distance <= self.threshold:
            return ""
        value, bound = apart(float(distance), self.threshold, decimals=2)
        return f"channel unlike the population's (profile distance {value} > {bound})"

    @staticmethod
    def combined_problem(population_problem: str, calibration_problems: Sequence[str]) -> str:
        """A recording's reason to be out ('' when in): unlike the population's channel and
        out of the calibration's conditions too (`calibration_problems`: what the check
        without a population finds, none: in them)."""
        if not population_problem or not calibration_problems:
            return ""
        return f"{population_problem}, and {'; '.join(calibration_problems)}"

    def speech_problem(self, side: str, seconds: float) -> str:
        """The reason a side's net speech puts a trial out ('' when it does not)."""
        if np.isnan(seconds):
            return f"{side} {UNKNOWN_SPEECH}"
        if not np.isfinite(self.speech_floor_s) or not seconds < self.speech_floor_s:
            return ""
        value, floor = apart(float(seconds), self.speech_floor_s)
        return (
            f"{side} speech {value} s below the population's and the calibration's shortest "
            f"({floor} s)"
        )

    def trial_reason(
        self, problems: Sequence[str], names: Sequence[str], n_enrollment: int, sides_s
    ) -> str:
        """Why one trial is out ('' when in): its sides' net speech (`sides_s`: enrollment,
        test seconds) and its recordings' channel `problems` (rows before `n_enrollment` the
        enrollment side's, named as `name_channel_problems` names them)."""
        found = [self.speech_problem(side, sides_s[k])
                 for k, side in enumerate(("enrollment", "test"))]  # fmt: skip
        found.append(name_channel_problems(problems, names, n_enrollment))
        return "; ".join(text for text in found if text)

    def check_trials(
        self,
        enrollment: Sequence[Sequence[str]],
        test: Sequence[Sequence[str]],
        side_speech_s: np.ndarray,
        problem_of: dict[str, str],
    ) -> TrialConditions:
        """Trials (each side's ids, net speech per side) from their recordings' channel
        problems (`problem_of[id]`, '' within) and their sides' speech."""
        sides = np.asarray(side_speech_s, dtype=np.float64).reshape(-1, 2)
        with np.errstate(invalid="ignore"):
            speech = np.isnan(sides).any(axis=1) | (sides < self.speech_floor_s).any(axis=1)
        flagged = {name for name, problem in problem_of.items() if problem}
        reasons = [""] * len(sides)
        for t, (enroll, tested) in enumerate(zip(enrollment, test, strict=True)):
            if not speech[t] and flagged.isdisjoint(enroll) and flagged.isdisjoint(tested):
                continue  # most trials: nothing to name
            names = [*enroll, *tested]
            problems = [problem_of[n] for n in names]
            reasons[t] = self.trial_reason(problems, names, len(enroll), sides[t])
        inside = np.array([not reason for reason in reasons], bool)
        return TrialConditions(inside, reasons, [""] * len(reasons))

    def check_comparison(
        self, profiles: np.ndarray, speech_s: Sequence[float], names: Sequence[str],
        n_enrollment: int, calibration_problems: Sequence[Sequence[str]],
    ) -> TrialConditions:  # fmt: skip
        """One comparison (`balr compare`) as one trial: its recordings' channel `profiles`,
        net speech (rows before `n_enrollment` the enrollment side's) and problems with the
        calibration's conditions (`combined_problem`)."""
        labels = np.full(len(names), None)  # the case's speakers are not the population's
        distances = self.distances(np.array(names, object), labels, profiles)
        speech_s = np.asarray(speech_s, dtype=np.float64)
        sides = [speech_s[:n_enrollment].sum(), speech_s[n_enrollment:].sum()]
        problems = [self.combined_problem(self.channel_problem(d), found)
                    for d, found in zip(distances, calibration_problems, strict=True)]  # fmt: skip
        reason = self.trial_reason(problems, names, n_enrollment, sides)
        return TrialConditions(np.array([not reason]), [reason], [""])

    def record(self) -> dict:
        """What the check is (`population_conditions` of metrics.json and the audit record,
        with counts where trials were checked)."""
        return {
            "applied": True,
            "source": self.source,
            "n_profiles": len(self.ids),
            "channel_threshold": round(self.threshold, 4),
            "speech_floor_s": None if np.isnan(self.speech_floor_s) else self.speech_floor_s,
        }


def check_against_population(
    conditions: PopulationConditions,
    dataset: AudioDataset,
    trials: Trials,
    valid: np.ndarray,
    durations: dict[str, float] | None,
    profiles: dict[str, tuple[str, np.ndarray]] | None,
    calibration_check: TrialConditions,
    calibration_problems: dict[str, list[str]],
) -> tuple[TrialConditions, dict]:
    """`(trials' conditions, metrics.json record)`: each scored (`valid`) trial whose
    recordings all have a channel profile (`{id: (audio path, profile)}` of the vectors'
    folder, `balr.data.channel_profiles`) checked against the population's `conditions` or
    the calibration's (`calibration_problems`: per recording id, what the check without a
    population finds; `combined_problem`), instead of the calibration's alone
    (`calibration_check`, kept for the other trials, and its notes for all)."""
    from balr.data.speech import trial_seconds  # balr.data imports torch: on use

    usable, _, _ = usable_profiles(dataset, scored_ids(trials, valid), profiles or {})
    names = np.array(sorted(usable), dtype=object)
    speakers = np.array([dataset.items[dataset.index_of(i)].speaker for i in names], object)
    distances = (
        conditions.distances(names, speakers, np.stack([usable[i] for i in names]))
        if len(names) else np.zeros(0)
    )  # fmt: skip
    problem_of = {
        i: conditions.combined_problem(conditions.channel_problem(d), calibration_problems[i])
        for i, d in zip(names, distances, strict=True)
    }
    profiled = cells_within(trials.enrollment, usable) & cells_within(trials.test, usable)
    rows = np.flatnonzero(valid & profiled)
    checked = conditions.check_trials(
        [trials.enrollment[t] for t in rows], [trials.test[t] for t in rows],
        trial_seconds(trials, durations)[rows], problem_of,
    )  # fmt: skip
    inside, reasons = calibration_check.in_conditions.copy(), list(calibration_check.reasons)
    inside[rows] = checked.in_conditions
    for t, reason in zip(rows, checked.reasons, strict=True):
        reasons[t] = reason
    result = TrialConditions(inside, reasons, calibration_check.notes)
    flagged = sum(bool(p) for p in problem_of.values())
    counts = {
        "recordings_checked": len(names),
        "recordings_flagged": flagged,
        "trials_checked": len(rows),
        "trials_flagged": int((~checked.in_conditions).sum()),
    }
    return result, conditions.record() | counts
