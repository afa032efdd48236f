"""The relevant population in the `score` jobs (`balr.population`): each trial's population
in `score test` (`balr.scoring.population_trials`), the warning when a calibration fitted on
population-adapted scores is applied without that population, and the population record
`score calibrate` keeps with a calibration."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from balr.conditions.jobs import usable_profiles
from balr.conditions.population import PopulationConditions, unchecked_reason
from balr.data import AudioDataset, Trials
from balr.data.channel_profiles import read_channel_profiles
from balr.data.speech import load_speech_durations
from balr.embedding_centring import EmbeddingCentring
from balr.errors import ConfigError, DataError
from balr.population import (
    Population,
    adapt_to_population,
    calibration_population_warning,
    calibration_record,
    read_population,
    too_small,
)
from balr.population_bounds import PopulationBounds, checked_against_own
from balr.population_decision import (
    AdaptationDecision,
    decide_for,
    pair_scorer,
    retest_warning,
)
from balr.scoring.beta import BetaScorer
from balr.scoring.cosine import CosineScorer
from balr.scoring.jobs.common import ScoringRun
from balr.scoring.population_cosine import (
    TrialwiseCentredCosine,
    calibration_target,
    check_centrable,
)
from balr.scoring.population_trials import TrialPopulations, TrialwiseBeta
from balr.scoring.selection import CalibrationChoice

logger = logging.getLogger(__name__)

#: the cosine keeps its calibration's ELUB bounds: measured, its population's own bounds
#: are narrow (upper log10 0.4-0.7 on the telephone channel), and the LLRs tied at them
#: cost its EER (speechocean762 telephone, 20 speakers: 15.2 -> 23.3 %)
COSINE_BOUNDS = PopulationBounds(
    "the cosine keeps the calibration's: the bounds of its population's own comparisons "
    "tie too many LLRs (docs/population.md)"
)


def trial_populations(
    path: Path, dataset: AudioDataset, trials: Trials, run: ScoringRun, scorer
) -> TrialPopulations:
    """The population dataset at `path` (read as `run` reads datasets, as the vectors
    `scorer` adapts with), each trial's without its own speakers and recordings
    (`balr.scoring.population_trials`); ConfigError first for a scorer without an
    adaptation."""
    check_population_scorer(scorer)
    full = read_population(run.open_dataset(path), str(path), scorer.vector_kind)
    speaker_of = {i: dataset.items[dataset.index_of(i)].speaker for i in trials.unique_ids()}
    return TrialPopulations.of_trials(full, trials, speaker_of)


def adaptation_decision(
    mode: str, scorer, calibrated: CalibrationChoice, population: Population, seconds
) -> AdaptationDecision:
    """Whether `scorer` adapts to `population` (`balr.population_decision.decide_for`), its
    recordings' speech `seconds` (`population_seconds`)."""
    return decide_for(
        mode, population, scorer, calibrated.calibrator, seconds, calibrated.source,
        calibrated.population is not None,
    )  # fmt: skip


def population_seconds(
    run: ScoringRun, population: Population, calibrated: CalibrationChoice
) -> np.ndarray:
    """Each population recording's net speech seconds, from beside the population's vectors
    or the `--speech-durations` file (NaN where unknown, and all NaN uncalibrated)."""
    if calibrated.calibrator is None:
        return np.full(len(population.ids), np.nan)
    durations = (
        load_speech_durations(getattr(run, "speech_durations", None), population_folder(run)) or {}
    )
    return np.array([durations.get(i, np.nan) for i in population.ids])


def population_folder(run: ScoringRun) -> Path:
    """Where the population's vectors, speech durations and channel profiles are."""
    return run.vectors_dir or run.open_dataset(run.population).root


def population_conditions(
    run: ScoringRun, pop: TrialPopulations, calibrated: CalibrationChoice, seconds: np.ndarray
) -> PopulationConditions | str:
    """The conditions of the population that the trials are checked against where its own
    comparisons tested the calibration (`balr.conditions.population`; `seconds`: its
    recordings' speech), else why not."""
    why = unchecked_reason(calibrated.calibrator is not None, pop.adaptation)
    if why:
        return why
    dataset = run.open_dataset(run.population)
    profiles = read_channel_profiles(population_folder(run)) or {}
    usable, _, _ = usable_profiles(dataset, pop.population.ids, profiles)
    return PopulationConditions.for_calibration(
        pop.population, usable, seconds, calibrated.conditions
    )


def own_rows(pop: TrialPopulations) -> np.ndarray:
    """The population recordings that none of the trials leaves out (their own speakers
    and recordings), as a mask."""
    return ~(np.asarray(pop.removed[np.unique(pop.keys)].sum(axis=0)).ravel() > 0)


def own_pair_scorer(scorer, own: Population, calibrated: CalibrationChoice, adapt: bool):
    """`score(i, j)`: raw scores of rows i vs j of `own`, as the trials are scored: the beta
    scorer adapted to `own` (its typicality) or the cosine of embeddings moved from its mean
    to the calibration's reference mean where `adapt`, else the scorer as it is."""
    if isinstance(scorer, CosineScorer):
        vectors = own.vectors
        if adapt:
            centring = EmbeddingCentring().fit(vectors, calibration_target(calibrated))
            vectors = centring.transform(vectors)
        return pair_scorer(scorer, vectors)
    return pair_scorer(adapt_to_population(scorer, own)[0] if adapt else scorer, own.vectors)


def checked_against_own_population(
    scorer, calibrated: CalibrationChoice, pop: TrialPopulations, decision, seconds
) -> tuple[AdaptationDecision, CalibrationChoice]:
    """The decision with the population's own bounds (the cosine keeps the calibration's,
    `COSINE_BOUNDS`) and, where the scorer adapts, the re-test of its adapted LLRs
    (`balr.population_bounds.checked_against_own`; `seconds`: the population's speech);
    the calibration narrowed to the bounds."""
    rows = own_rows(pop)
    own = pop.population.only(rows)
    if too_small(len(own.ids), own.n_speakers):
        reason = (
            f"{own.describe()} apart from the trials' speakers and recordings: too few for "
            "bounds of its own"
        )
        return replace(decision, bounds=PopulationBounds(reason)), calibrated
    score = own_pair_scorer(scorer, own, calibrated, decision.adapt)
    given = COSINE_BOUNDS if isinstance(scorer, CosineScorer) else None
    bounds, narrowed, retest = checked_against_own(
        own, score, calibrated.calibrator, seconds[rows], decision.adapt, given
    )
    logger.info("--population %s: %s", pop.population.source, bounds.describe())
    if retest is not None and retest.broken:
        logger.warning(retest_warning(pop.population.source, retest))
    decision = replace(decision, bounds=bounds, recheck=retest)
    return decision, replace(calibrated, calibrator=narrowed)


def warn_population_mismatch(calibrated: CalibrationChoice, pop: TrialPopulations | None) -> None:
    """One warning line when the calibration was fitted on scores adapted to a population
    and this run has none, or another (`balr.population.calibration_population_warning`)."""
    if calibrated.calibrator is None:
        return
    warning = calibration_population_warning(calibrated.population, pop and pop.population)
    if warning:
        logger.warning(warning)


def trialwise_scorer(
    scorer, pop: TrialPopulations, trials: Trials, valid: np.ndarray, calibrated
) -> TrialwiseBeta | TrialwiseCentredCosine:
    """`scorer` adapted per scored trial (`valid`) to its population, after the size check
    of the smallest one: the beta scorer's typicality; for the cosine, the embeddings moved
    from the population's mean to the mean of the `calibrated` calibration's reference
    embeddings (`balr.scoring.population_cosine`)."""
    rows = np.flatnonzero(valid)

    def name(j: int) -> str:
        row = rows[j]
        return f"{row + 1} ({','.join(trials.enrollment[row])} vs {','.join(trials.test[row])})"

    scored = pop.subset(valid)
    scored.check_size(name)
    return trialwise_adaptation(scorer, scored, calibrated)


def check_population_scorer(scorer) -> None:
    """ConfigError for a scorer without a population adaptation (the beta scorer and the
    cosine of embeddings have one), before any population is read."""
    if not isinstance(scorer, BetaScorer):
        check_centrable(scorer)


def trialwise_adaptation(
    scorer, populations: TrialPopulations, calibrated: CalibrationChoice
) -> TrialwiseBeta | TrialwiseCentredCosine:
    """`scorer` adapted to each trial's (or matrix cell's) population: the beta scorer's
    typicality; for the cosine, the embeddings moved from the population's mean to the mean
    of the `calibrated` calibration's reference embeddings (`balr.scoring.population_cosine`)."""
    if not isinstance(scorer, CosineScorer):
        return TrialwiseBeta(scorer, populations)
    target = calibration_target(calibrated)
    if target is None and calibrated.calibrator is not None:
        logger.warning(
            "the calibration %s has no reference embeddings: the population's mean is "
            "moved to 0, a scale it was not fitted on; fit one with its conditions "
            "(`balr score calibrate` without --no-conditions)",
            calibrated.source,
        )
    return TrialwiseCentredCosine(scorer, populations, target)


def population_scorer(
    options: ScoringRun,
    mode: str,
    scorer,
    calibrated: CalibrationChoice,
    pop: TrialPopulations,
    trials: Trials,
    valid: np.ndarray,
) -> tuple:
    """`(scorer, populations, calibration)`: the scorer adapted per trial to its population
    where the population shows that the calibration does not hold there, else the scorer as
    it is and the calibration offset as decided; the calibration's ELUB bounds narrowed to
    the population's own (the beta scorer); the populations with that decision
    (`adaptation_decision`, `mode` as there) and the conditions their trials are checked
    against (`population_conditions`). The size check comes first."""
    adapted = trialwise_scorer(scorer, pop, trials, valid, calibrated)
    seconds = population_seconds(options, pop.population, calibrated)  # read once
    decision = adaptation_decision(mode, scorer, calibrated, pop.population, seconds)
    if decision.offset:
        calibrated = replace(calibrated, calibrator=calibrated.calibrator.shifted(decision.offset))
    if calibrated.calibrator is not None:
        scored = pop.subset(valid)
        decision, calibrated = checked_against_own_population(
            scorer, calibrated, scored, decision, seconds
        )
    pop = replace(pop, adaptation=decision)
    pop = replace(pop, conditions=population_conditions(options, pop, calibrated, seconds))
    return (adapted if decision.adapt else scorer), pop, calibrated


def scored_population(scores_csv: Path) -> dict | None:
    """The population record of the `score test` run that wrote `scores_csv` (from the
    metrics.json beside it), None when it used none (or recorded nothing)."""
    try:
        record = json.loads((scores_csv.parent / "metrics.json").read_text()).get("population")
    except (OSError, ValueError, AttributeError):
        return None
    return record if isinstance(record, dict) else None


def calibration_population(
    scores_csv: Path, population: Path | None, vectors_dir: Path | None = None
) -> dict | None:
    """The population record a calibration fitted on `scores_csv` keeps: that of the
    `score test` run that scored it (None: no population, or scores not adapted to it).
    With `population` (`score calibrate --population`), a DataError unless those scores
    were made with that very population (the same vectors: `Population.fingerprint`)."""
    scored = scored_population(scores_csv)
    if population is not None:
        dataset = AudioDataset.from_path(population, output_dir=vectors_dir)
        kind = scored.get("vectors", "ba") if scored is not None else "ba"
        used = read_population(dataset, str(population), kind)
        again = f"score the trials with `balr score test ... --population {population}` first"
        if scored is None:
            raise DataError(f"{scores_csv}: scored without a population; {again}")
        if scored.get("sha256") != used.fingerprint():
            raise DataError(
                f"{scores_csv}: scored with the population {scored.get('source')}, whose "
                f"vectors differ from those of {population}; {again}"
            )
    adaptation = scored.get("adaptation") if scored is not None else None
    if isinstance(adaptation, dict) and adaptation.get("adapted") is False:
        logger.warning(
            "%s: scored with the population %s but not adapted to it (%s): the calibration "
            "records no population",
            scores_csv,
            scored.get("source"),
            adaptation.get("reason"),
        )
        return None
    if scored is not None and not isinstance(scored.get("sha256"), str):
        logger.warning("%s: its population record has no sha256: not kept", scores_csv)
        return None
    if scored is not None and scored.get("vectors") == "emb":
        raise ConfigError(
            f"{scores_csv}: cosines of embeddings adapted to the population {scored.get('source')}"
            " are on the scale of the calibration they were scored with (its reference "
            "embeddings' mean); calibrate scores made without --population instead"
        )
    return None if scored is None else calibration_record(scored)
