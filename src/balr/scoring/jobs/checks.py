"""`score test`'s calibration and the checks of its trials: the calibration's conditions
(`balr.conditions.check_trial_conditions`), the bound of calibrated LRs on the dataset's own
different-speaker trials (`balr.conditions.bound`) and each recording's channel
(`balr.conditions.jobs.trial_channel_check`); with a relevant population that tested the
calibration, the population's conditions or the calibration's
(`balr.conditions.population`)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from balr.conditions import TrialConditions, check_trial_conditions
from balr.conditions.bound import check_dataset_bound
from balr.conditions.channel import shipped_channel_reference
from balr.conditions.jobs import (
    Described,
    described_recordings,
    recording_problems,
    scored_ids,
    trial_channel_check,
    usable_profiles,
)
from balr.conditions.population import PopulationConditions, check_against_population
from balr.data import AudioDataset, Trials
from balr.data.channel_profiles import read_channel_profiles
from balr.data.speech import trial_seconds
from balr.population_decision import retest_reason
from balr.scoring.population_trials import TrialPopulations
from balr.scoring.selection import CalibrationChoice

log = logging.getLogger(__name__)


def calibrate_and_check(
    calibrated: CalibrationChoice,
    scores: np.ndarray,
    dataset: AudioDataset,
    trials: Trials,
    sides: tuple[list[str | None], list[str | None]],
    valid: np.ndarray,
    same_recording: np.ndarray,
    durations: dict[str, float] | None,
    folder: Path,
    population: TrialPopulations | None = None,
) -> tuple:
    """`(raw scores, calibrated scores, conditions, checks)`: the scored trials checked
    against the calibration's conditions, or against the conditions of the relevant
    `population` where it tested the calibration (`TrialPopulations.conditions`,
    `balr.conditions.population`), the bound of calibrated LRs by the dataset's
    different-speaker trials (`sides`: each trial's speakers; scored (`valid`) trials not of
    a recording against itself), with a relevant `population` the re-test of the scores
    adapted to it (`recheck_reasons`), and without one the channel profiles in `folder`;
    `checks`: metrics.json's `bound_check`,
    `channel_check` (None: not run) and with a population `population_conditions`.
    `(None, scores, None, {})` when uncalibrated."""
    calibrator = calibrated.calibrator
    if calibrator is None:
        return None, scores, None, {}
    seconds = trial_seconds(trials, durations) if calibrator.uses_durations else None
    llrs = calibrator.transform(scores, seconds)  # NaN (no vector) stays NaN
    described = None  # the recordings checked once against the calibration's description
    if calibrated.conditions is not None:
        described = described_recordings(calibrated.conditions, dataset, trials.unique_ids())
    conditions = check_trial_conditions(
        calibrated.conditions, dataset, trials, valid, durations, calibrator, described
    )
    checks = {}
    if population is not None and population.conditions is not None:
        conditions, checks["population_conditions"] = population_checked(
            population.conditions, dataset, trials, valid, durations, folder,
            (conditions, described), calibrated,
        )  # fmt: skip
    comparisons = valid & ~same_recording
    bound = check_dataset_bound(llrs, *sides, comparisons, population is not None)
    channel = trial_channel_check(calibrated, dataset, trials, valid, folder, population)
    conditions = conditions.with_reasons(bound.reasons())
    conditions = conditions.with_reasons(channel.reasons) if channel else conditions
    conditions = conditions.with_reasons(recheck_reasons(population, valid))
    checks |= {"bound_check": bound.record(), "channel_check": channel and channel.record()}
    return scores, llrs, conditions, checks


def population_checked(
    population_conditions: PopulationConditions | str,
    dataset: AudioDataset,
    trials: Trials,
    valid: np.ndarray,
    durations: dict[str, float] | None,
    folder: Path,
    checked: tuple[TrialConditions, Described | None],
    calibrated: CalibrationChoice,
) -> tuple[TrialConditions, dict]:
    """`(conditions, record)`: the trials checked against the population's conditions or
    the `calibrated` calibration's (`balr.conditions.population.check_against_population`,
    the recordings' channel profiles from `folder`), or as they were checked against the
    calibration's alone (`checked`: those conditions, and the recordings described) and why
    not."""
    conditions, described = checked
    if isinstance(population_conditions, str):
        log.info("trials checked against the calibration's conditions: %s", population_conditions)
        return conditions, {"applied": False, "reason": population_conditions}
    profiles = read_channel_profiles(folder) or {}
    ids = scored_ids(trials, valid)
    usable = usable_profiles(dataset, ids, profiles)[0]
    calibration_problems = recording_problems(
        calibrated.conditions, described, ids, shipped_channel_reference(calibrated), usable
    )
    conditions, record = check_against_population(
        population_conditions, dataset, trials, valid, durations, profiles, conditions,
        calibration_problems,
    )  # fmt: skip
    counts = [record[k] for k in ("recordings_flagged", "recordings_checked")]
    counts += [record[k] for k in ("trials_flagged", "trials_checked")]
    log.info(
        "trials checked against the conditions of the population %s (it tested the "
        "calibration there) or the calibration's: %d of %d recordings out of both, %d of %d "
        "trials out of conditions; %d trials without every channel profile checked against "
        "the calibration's conditions alone", population_conditions.source, *counts,
        int(np.count_nonzero(valid)) - record["trials_checked"],
    )  # fmt: skip
    return conditions, record


def recheck_reasons(population: TrialPopulations | None, valid: np.ndarray) -> list[str]:
    """Per trial, why it is out of conditions when the scores adapted to the population
    still break the bound on the population's own comparisons ('' otherwise)."""
    adaptation = population.adaptation if population is not None else None
    recheck = adaptation.recheck if adaptation is not None else None
    if recheck is None or not recheck.broken:
        return [""] * len(valid)
    reason = retest_reason(recheck)
    return [reason if scored else "" for scored in valid]
