"""`balr compare --population DATA`: the relevant population of one comparison.

Its recordings are read as BA vectors where every one has them (sidecars, or the folder
given as `--population-vectors`), else extracted on the way with the comparison's own
models. A population recording that is also a case recording (the same file, the same
decoded audio or a near-duplicate: `balr.audio_identity`) is left out and said. The beta
scorer then adapts to the population (`balr.population`), and the case's LR is checked
against the LRs of both sides with every population speaker (`balr.population_check`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from balr.audio_identity import identify, same_recording
from balr.audit import listed_files, population_files
from balr.conditions.channel import channel_profile
from balr.conditions.jobs import usable_profiles
from balr.conditions.population import PopulationConditions, unchecked_reason
from balr.data import AudioDataset
from balr.data.channel_profiles import ChannelProfileLog, read_channel_profiles
from balr.data.speech import find_speech_durations
from balr.errors import AudioError, DataError
from balr.population import Population, active_bits
from balr.population_bounds import checked_against_own
from balr.population_check import PopulationCheck, check_against_population
from balr.population_decision import AdaptationDecision, decide_for, pair_scorer

if TYPE_CHECKING:
    from balr.compare.pipeline import ComparisonPipeline
    from balr.compare.result import ComparisonResult

logger = logging.getLogger(__name__)

#: population recordings decoded and embedded at once when `compare` extracts them
EXTRACTION_BATCH = 64


@dataclass(frozen=True)
class ComparisonPopulation:
    """The population as used, with each recording's net speech seconds (NaN: unknown), and
    as given."""

    population: Population
    speech_s: np.ndarray
    files: dict[str, list[Path]]  # role -> files read (the audit record's population part)
    given: Population  # before the case recordings were left out (its `fingerprint` is the
    #                    one a calibration fitted on population-adapted scores records)
    profiles: dict[str, np.ndarray] = field(default_factory=dict)  # id -> channel profile

    def speaker_seconds(self) -> np.ndarray:
        """Net speech per population speaker (the sum of its recordings; NaN if one is
        unknown), in the order of `Population.speaker_index`."""
        names, index = self.population.speaker_index()
        return np.bincount(index, weights=self.speech_s, minlength=len(names))


def case_twins(dataset: AudioDataset, case_paths: Sequence[str | Path]) -> set[str]:
    """Ids of the population recordings that are case recordings: the same file, or the
    same decoded audio / a near-duplicate (an unreadable population file is left to the
    vector step, which reports it)."""
    case = {Path(p).resolve() for p in case_paths}
    identities = [identify(p) for p in case_paths]
    twins = set()
    for item in dataset.items:
        if item.audio is None:
            continue
        if Path(item.audio).resolve() in case:
            twins.add(item.id)
            continue
        try:
            mine = identify(item.audio)
        except AudioError:
            continue
        if any(same_recording(mine, other) for other in identities):
            twins.add(item.id)
    return twins


def read_comparison_population(
    pipeline: ComparisonPipeline,
    path: Path,
    vectors_dir: Path | None,
    case_paths: Sequence[str | Path],
) -> ComparisonPopulation:
    """The population at `path` without the case's recordings, as 0/1 BA vectors (its size
    is checked where the scorer adapts to it: `balr.population.adapt_to_population`); the
    vectors of every recording are read, so that `given` is the population as given."""
    dataset = AudioDataset.from_path(path, output_dir=vectors_dir)
    twins = case_twins(dataset, case_paths)
    if twins:
        logger.warning("--population %s: %d case recordings left out", path, len(twins))
    if len(dataset) and all(dataset.has_vector(i, "ba") for i in range(len(dataset))):
        bits, speech = _stored(dataset, vectors_dir)
        files = population_files(dataset, [item.id for item in dataset.items], path)
        profiles = _stored_profiles(dataset, vectors_dir)
        if profiles:
            folder = vectors_dir or dataset.root
            files["population channel profiles"] = ChannelProfileLog.files(folder)
    else:
        dataset = dataset.subset([i for i, it in enumerate(dataset.items) if it.audio is not None])
        bits, speech, profiles = _extracted(pipeline, dataset, path)
        files = {"population": listed_files(path),
                 "population audio": [Path(item.audio) for item in dataset.items]}  # fmt: skip
    ids = [item.id for item in dataset.items]
    given = Population(
        str(path),
        tuple(ids),
        tuple(item.speaker for item in dataset.items),
        active_bits(bits, f"--population {path}"),
    )
    keep = [i for i, item in enumerate(ids) if item not in twins]
    population = Population(
        given.source,
        tuple(given.ids[i] for i in keep),
        tuple(given.speakers[i] for i in keep),
        given.bits[keep],
        tuple(sorted(twins)),
    )
    return ComparisonPopulation(population, speech[keep], files, given, profiles)


def _stored(dataset: AudioDataset, vectors_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    indices, vectors = dataset.stack_vectors("ba")
    if len(indices) != len(dataset):
        raise DataError(f"{dataset.root}: population BA vectors unreadable")
    durations = find_speech_durations(vectors_dir or dataset.root) or {}
    speech = np.array([durations.get(item.id, np.nan) for item in dataset.items])
    return vectors, speech


def _stored_profiles(dataset: AudioDataset, vectors_dir: Path | None) -> dict[str, np.ndarray]:
    """The channel profiles `balr extract` wrote for the population's recordings (those of
    their audio files only: `balr.conditions.jobs.usable_profiles`)."""
    written = read_channel_profiles(vectors_dir or dataset.root) or {}
    return usable_profiles(dataset, [item.id for item in dataset.items], written)[0]


def _extracted(
    pipeline: ComparisonPipeline, dataset: AudioDataset, path: Path
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """`(bits, speech seconds, channel profiles)` of the population's recordings, extracted."""
    paths = [item.audio for item in dataset.items]
    if not paths:
        raise DataError(f"--population {path}: no recording with audio or BA vectors")
    logger.info("--population %s: extracting %d recordings", path, len(paths))
    rate = pipeline.embedding_model.sample_rate
    embeddings, speech, profiles = [], [], {}
    for start in range(0, len(paths), EXTRACTION_BATCH):  # the decoded audio of one batch
        waves: list[np.ndarray] = []
        vectors, seconds = pipeline.embed_with_speech(
            paths[start : start + EXTRACTION_BATCH], waves
        )
        embeddings.append(vectors)
        speech += seconds
        for item, wave in zip(dataset.items[start : start + EXTRACTION_BATCH], waves, strict=True):
            profiles[item.id] = channel_profile(wave, rate)
    bits = pipeline.encoder.binarize(np.concatenate(embeddings))
    return bits, np.asarray(speech, dtype=np.float64), profiles


def comparison_conditions(
    pipeline: ComparisonPipeline, population: ComparisonPopulation, decision: AdaptationDecision
) -> PopulationConditions | str:
    """The population's conditions the case is checked against where its own comparisons
    tested the calibration (`balr.conditions.population`), else why not."""
    why = unchecked_reason(pipeline.calibrator is not None, decision)
    if why:
        return why
    return PopulationConditions.for_calibration(
        population.population, population.profiles, population.speech_s, pipeline.conditions
    )


def comparison_adaptation(
    pipeline: ComparisonPipeline, population: ComparisonPopulation, mode: str
) -> AdaptationDecision:
    """Whether the comparison's scorer adapts to the population
    (`balr.population_decision.decide_for`, with the recordings' speech seconds)."""
    return decide_for(
        mode, population.population, pipeline.scorer, pipeline.calibrator, population.speech_s,
        pipeline.calibration_source, pipeline.calibration_population is not None,
    )  # fmt: skip


def bound_to_population(
    pipeline: ComparisonPipeline, population: ComparisonPopulation, decision: AdaptationDecision
) -> AdaptationDecision:
    """With a calibration, narrow its ELUB bounds to those of the population's own
    comparisons, scored as the case is (adapted or not, offset included:
    `balr.population_bounds.checked_against_own`); the decision with those bounds recorded
    and, where the scorer adapted, the re-test of its adapted LLRs on those comparisons."""
    if pipeline.calibrator is None:
        return decision
    pop = population.population
    score = pair_scorer(pipeline.scorer, pop.vectors)
    bounds, pipeline.calibrator, retest = checked_against_own(
        pop, score, pipeline.calibrator, population.speech_s, decision.adapt
    )
    logger.info("--population %s: %s", pop.source, bounds.describe())
    return replace(decision, bounds=bounds, recheck=retest)


def population_check(
    pipeline: ComparisonPipeline, result: ComparisonResult, population: ComparisonPopulation
) -> PopulationCheck:
    """The case's LLR against both sides' LLRs with every population speaker, calibrated
    as the case's (a population speaker's unknown speech duration: the case side's)."""
    sides = {
        "test": sum(r.speech_s or 0.0 for r in result.test),
        "enrollment": sum(r.speech_s or 0.0 for r in result.enrollment),
    }
    calibrator = pipeline.calibrator
    seconds = population.speaker_seconds()

    def calibrate(raw: np.ndarray, side: str) -> np.ndarray:
        if calibrator is None:
            return raw
        own = np.where(np.isfinite(seconds) & (seconds > 0), seconds, sides[side])
        durations = np.column_stack([own, np.full(len(own), sides[side])])
        return calibrator.transform(raw, durations if calibrator.uses_durations else None)

    return check_against_population(
        pipeline.scorer,
        result.enroll_counts,
        result.test_counts,
        population.population,
        result.llr,
        calibrate,
    )
