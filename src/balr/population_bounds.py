"""ELUB bounds from a relevant population's own comparisons: no LR stronger than the data of
the case's conditions support.

The ELUB bounds of a calibration (`balr.calibration.elub_bounds`, Vergeer et al. 2016) say
how far its data let an LR go; those data are the calibration's conditions, not the case's.
With a labelled relevant population, the beta scorer's LLRs are therefore also bounded by
the ELUB bounds of the population's own comparisons (its pairs of recordings of one speaker
and of two), scored as the trials are (adapted to it or not, with the calibration and its
offset, before any bound). The calibration's bounds are only ever narrowed, never widened.
The population recordings that any trial leaves out (its own speakers and recordings) take
no part, so no trial's evidence sets its own bounds.

Measured on held-out speakers, 5 and 20 population speakers
(`benchmarks/population_robustness.py`, recipes/research/r20_population_bounds.log, and
docs/population.md): through shared channels, different-speaker LR > 100 0.05-1.23 % ->
0-0.49 % of trials and same-speaker LR < 1/100 0-1.27 % -> 0 %, EER unchanged but for one
case (+0.39 points), Cllr -0.06 to +0.04; as recorded, Common Voice's same-speaker
LR < 1/100 0.67 / 1.08 % -> 0 %, Cllr +0.001 to +0.08. The cosine keeps its calibration's
bounds (`balr.scoring.jobs.population`): its population's are so narrow that the ties cost
its EER.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from balr.calibration import Calibrator, elub_bounds
from balr.lr_bound import BoundTest
from balr.population import Population
from balr.population_decision import (
    MAX_BOUND_PAIRS,
    at_most,
    different_speaker_pairs,
    pair_durations,
    retest_adapted,
)

LN10 = math.log(10)
#: same- and different-speaker pairs a population needs for bounds of its own (fewer: the
#: calibration's)
MIN_PAIRS = 10


@dataclass(frozen=True)
class PopulationBounds:
    """The ELUB bounds (natural-log LR) of a population's own comparisons, intersected with
    the calibration's; `lower`/`upper` None where they were not applied, and why."""

    reason: str
    lower: float | None = None
    upper: float | None = None
    n_target: int = 0
    n_nontarget: int = 0

    @property
    def applied(self) -> bool:
        return self.lower is not None

    def describe(self) -> str:
        if not self.applied:
            return f"LRs within the calibration's ELUB bounds: {self.reason}"
        return (
            f"LRs within log10 LR [{self.lower / LN10:.2f}, {self.upper / LN10:.2f}]: {self.reason}"
        )

    def record(self) -> dict:
        def log10(value: float | None) -> float | None:
            return None if value is None else round(value / LN10, 4)

        return {
            "applied": self.applied,
            "lower_log10": log10(self.lower),
            "upper_log10": log10(self.upper),
            "n_target_pairs": self.n_target,
            "n_nontarget_pairs": self.n_nontarget,
            "reason": self.reason,
        }


def same_speaker_pairs(
    population: Population, max_pairs: int = MAX_BOUND_PAIRS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`(rows i, rows j)` of the population's pairs of two recordings of one labelled
    speaker: all of them, or a seeded sample of `max_pairs` when there are more (drawn
    without listing every pair, so a speaker with 100,000 recordings costs no more)."""
    rows_of: dict[str, list[int]] = {}
    for row, speaker in enumerate(population.speakers):
        if speaker:
            rows_of.setdefault(speaker, []).append(row)
    groups = [np.asarray(rows) for rows in rows_of.values() if len(rows) > 1]
    counts = np.array([len(rows) for rows in groups], dtype=np.int64)
    if not len(groups):
        return np.array([], dtype=np.intp), np.array([], dtype=np.intp)
    if int((counts * (counts - 1) // 2).sum()) <= 4 * max_pairs:
        pairs = [np.triu_indices(len(rows), k=1) for rows in groups]
        i = np.concatenate([rows[a] for rows, (a, _) in zip(groups, pairs, strict=True)])
        j = np.concatenate([rows[b] for rows, (_, b) in zip(groups, pairs, strict=True)])
        return at_most(i, j, max_pairs, seed)
    return _drawn_same_speaker_pairs(groups, counts, max_pairs, seed)


def _drawn_same_speaker_pairs(
    groups: list[np.ndarray], counts: np.ndarray, max_pairs: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of distinct same-speaker pairs: a speaker drawn in proportion to its
    pairs, then two of its recordings."""
    rng = np.random.default_rng(seed)
    pair_counts = counts * (counts - 1) / 2
    speaker = rng.choice(len(groups), size=4 * max_pairs, p=pair_counts / pair_counts.sum())
    first = np.floor(rng.random(len(speaker)) * counts[speaker]).astype(np.int64)
    second = np.floor(rng.random(len(speaker)) * (counts[speaker] - 1)).astype(np.int64)
    second += second >= first  # a different recording of the same speaker
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    flat = np.concatenate(groups)
    a, b = flat[starts[speaker] + first], flat[starts[speaker] + second]
    drawn = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), axis=0)
    return at_most(drawn[:, 0], drawn[:, 1], max_pairs, seed)


def population_bounds(
    population: Population,
    unbounded_llrs: Callable[[np.ndarray, np.ndarray], np.ndarray],
    calibrator: Calibrator,
) -> PopulationBounds:
    """The ELUB bounds of `population`'s own same- and different-speaker pairs, whose
    calibrated LLRs before any bound `unbounded_llrs(i, j)` gives (rows i vs j, scored as
    adapted to this population), intersected with `calibrator`'s bounds."""
    if calibrator.lower_bound_ is None or calibrator.upper_bound_ is None:
        return PopulationBounds("the calibration is not bounded (--unbounded)")
    same_i, same_j = same_speaker_pairs(population)
    other_i, other_j = different_speaker_pairs(population)
    if min(len(same_i), len(other_i)) < MIN_PAIRS:
        return PopulationBounds(
            f"the population has {len(same_i)} pairs of recordings of one labelled speaker "
            f"and {len(other_i)} of two, the case's own speakers and recordings left out "
            f"(bounds of its own need {MIN_PAIRS} of each)"
        )
    labels = np.concatenate([np.ones(len(same_i), np.int64), np.zeros(len(other_i), np.int64)])
    llrs = unbounded_llrs(np.concatenate([same_i, other_i]), np.concatenate([same_j, other_j]))
    finite = np.isfinite(llrs)
    lower10, upper10 = elub_bounds(llrs[finite] / LN10, labels[finite])
    lower = max(calibrator.lower_bound_, lower10 * LN10)
    upper = min(calibrator.upper_bound_, upper10 * LN10)
    reason = (
        f"the ELUB bounds of the population's own {len(same_i)} same- and {len(other_i)} "
        f"different-speaker comparisons (log10 [{lower10:.2f}, {upper10:.2f}]; the "
        f"calibration's [{calibrator.lower_bound_ / LN10:.2f}, "
        f"{calibrator.upper_bound_ / LN10:.2f}]): no LR beyond what they support"
    )
    return PopulationBounds(reason, lower, upper, len(same_i), len(other_i))


def scored_population_bounds(
    population: Population,
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    calibrator: Calibrator,
    speech_s: np.ndarray,
) -> PopulationBounds:
    """`population_bounds` with the population's pairs scored by `score(i, j)` (raw scores
    of rows i vs j, as the trials are scored: `balr.population_decision.pair_scorer`) and
    calibrated with each recording's net speech `speech_s` (NaN: the calibration's medians)
    before any bound."""

    def unbounded(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        parts = calibrator.parts(score(i, j), pair_durations(calibrator, speech_s, i, j))
        return parts.llr - parts.bounding

    return population_bounds(population, unbounded, calibrator)


def checked_against_own(
    population: Population,
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    calibrator: Calibrator,
    speech_s: np.ndarray,
    adapted: bool,
    bounds: PopulationBounds | None = None,
) -> tuple[PopulationBounds, Calibrator, BoundTest | None]:
    """`(bounds, calibrator narrowed to them, re-test)` of a case's scores against the
    population's own comparisons (scored by `score(i, j)` as the case is; `speech_s` per
    recording): their ELUB bounds (`scored_population_bounds`, unless `bounds` are given)
    and, where the scorer `adapted`, its bounded LLRs tested against the bound of calibrated
    LRs again (`balr.population_decision.retest_adapted`; None otherwise)."""
    if bounds is None:
        bounds = scored_population_bounds(population, score, calibrator, speech_s)
    if bounds.applied:
        calibrator = calibrator.within(bounds.lower, bounds.upper)
    retest = retest_adapted(population, score, calibrator, speech_s) if adapted else None
    return bounds, calibrator, retest
