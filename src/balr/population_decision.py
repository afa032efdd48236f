"""Whether the scorer adapts to a relevant population (`--population-adapt`).

Re-estimating the typicality on a few speakers (`balr.population`) removes the misleading
LRs of conditions the calibration never saw, but where the calibration holds it only adds
the noise of a small sample. The population is therefore first a test of the calibration:
its different-speaker comparisons against the bound of calibrated LRs (`balr.lr_bound`).
Where the bound breaks, the scorer adapts; where it holds, the LRs are those without a
population, moved by one offset that puts the population's median different-speaker LLR
on the calibration's reference one (at most `MAX_OFFSET` either way), when the calibration
has a reference (the shipped one: its reference LLRs). Measured on held-out speakers:
recipes/research/r12_population_shift.log, docs/population.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from balr.errors import ConfigError
from balr.lr_bound import BoundTest, bound_of_llrs
from balr.population import Population

if TYPE_CHECKING:
    from balr.population_bounds import PopulationBounds

logger = logging.getLogger(__name__)

#: how `--population` adapts the scorer: `auto` only where the population shows that the
#: calibration does not hold (`decide_adaptation`), `always` whatever the population shows
ADAPT_MODES = ("auto", "always")
#: different-speaker pairs of a population scored for the bound test at most (a seeded
#: sample beyond: the shares it estimates are then within about 0.3 points)
MAX_BOUND_PAIRS = 100_000
#: the largest offset (natural-log LR) a population that respects the bound moves the LRs
#: by: measured offsets on held-out speakers as recorded were -0.5 to +0.6 (r12)
MAX_OFFSET = 1.0
#: population pairs scored at once for the bound test (a few `(pairs, attributes)` arrays)
PAIR_CHUNK = 4096


@dataclass(frozen=True)
class AdaptationDecision:
    """Whether the scorer adapts to the population, and why (`bound`: the population's
    different-speaker comparisons under the unadapted scorer and the calibration, when
    tested: `balr.lr_bound`)."""

    adapt: bool
    reason: str
    bound: BoundTest | None = None
    offset: float = 0.0  # LLR offset of the unadapted LRs (`Calibrator.shifted`)
    bounds: PopulationBounds | None = None  # ELUB bounds of its own comparisons, when sought
    recheck: BoundTest | None = None  # the adapted LLRs of its own comparisons, re-tested

    def describe(self) -> str:
        verb = "adapted to" if self.adapt else "not adapted to"
        text = f"{verb} the population: {self.reason}"
        if self.bounds is not None and self.bounds.applied:
            text += f"; {self.bounds.describe()}"
        return text

    def record(self) -> dict:
        return {
            "adapted": self.adapt,
            "reason": self.reason,
            "bound": None if self.bound is None else self.bound.record(),
            "offset": self.offset,
            "elub": None if self.bounds is None else self.bounds.record(),
            "recheck": None if self.recheck is None else self.recheck.record(),
        }


def different_speaker_pairs(
    population: Population, max_pairs: int = MAX_BOUND_PAIRS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`(rows i, rows j)` of the population's pairs of recordings of two different labelled
    speakers: all of them, or a seeded sample of `max_pairs` when there are more (drawn
    without listing every pair, so a population of a million recordings costs no more)."""
    labels = np.array([s or "" for s in population.speakers], dtype=object)
    n = len(labels)
    if n * (n - 1) // 2 <= 4 * max_pairs:
        i, j = np.triu_indices(n, k=1)
    else:
        drawn = np.random.default_rng(seed).integers(0, n, size=(4 * max_pairs, 2))
        drawn = np.unique(np.sort(drawn, axis=1), axis=0)
        i, j = drawn[:, 0], drawn[:, 1]
    keep = (i != j) & (labels[i] != "") & (labels[j] != "") & (labels[i] != labels[j])
    return at_most(i[keep], j[keep], max_pairs, seed)


def at_most(
    i: np.ndarray, j: np.ndarray, max_pairs: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs `(i, j)`, or a seeded sample of `max_pairs` of them in their order."""
    if len(i) > max_pairs:
        pick = np.sort(np.random.default_rng(seed).choice(len(i), max_pairs, replace=False))
        i, j = i[pick], j[pick]
    return i, j


def decide_adaptation(
    mode: str,
    population: Population,
    pair_llrs: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    fitted_on_population: bool = False,
    reference_median: float | None = None,
) -> AdaptationDecision:
    """Adapt to the population (`adapt_to_population`) or keep the unadapted LRs.

    The adaptation re-estimates the typicality from a few speakers: it removes the
    misleading LRs of conditions the calibration never saw, but where the calibration holds
    it only adds the noise of a small sample (in-domain EER +0.5-1.6 points measured,
    recipes/research/r12_population_shift.log). So `auto` adapts only where the population's
    different-speaker comparisons (`pair_llrs(i, j)`: the calibrated LLRs of population rows
    i vs j, unadapted) break the bound of calibrated LRs; and always when that cannot be
    tested: no calibration (`pair_llrs` None), a calibration fitted on population-adapted
    scores (`fitted_on_population`), or too few labelled speakers or pairs. Where the bound
    holds and the calibration's median different-speaker LLR is known (`reference_median`),
    the kept LRs are offset so that the population's median lands on it (`MAX_OFFSET` at
    most either way)."""
    if mode not in ADAPT_MODES:
        raise ConfigError(f"--population-adapt {mode}: choose one of {', '.join(ADAPT_MODES)}")
    if mode == "always":
        return AdaptationDecision(True, "--population-adapt always")
    if fitted_on_population:
        return AdaptationDecision(True, "the calibration was fitted on population-adapted scores")
    if pair_llrs is None:
        return AdaptationDecision(True, "uncalibrated scores: no bound of calibrated LRs to test")
    i, j = different_speaker_pairs(population)
    llrs = pair_llrs(i, j) if len(i) else np.array([])
    bound = bound_of_llrs(llrs, population.n_speakers or 0) if len(i) else None
    if bound is None:
        return AdaptationDecision(
            True, "too few labelled speakers or pairs to test the calibration on the population"
        )
    if bound.broken:
        return AdaptationDecision(True, bound.describe("the population"), bound)
    reason = (
        f"its {bound.n_pairs} different-speaker comparisons respect the bound of calibrated "
        f"LRs ({bound.shares_text()}): the calibration holds there, LRs as without a population"
    )
    offset = 0.0
    if reference_median is not None:
        median = float(np.median(llrs[np.isfinite(llrs)]))
        offset = float(np.clip(reference_median - median, -MAX_OFFSET, MAX_OFFSET))
        reason += (
            f", offset by {offset:+.2f} (their median LLR {median:.2f}, the calibration's "
            f"{reference_median:.2f})"
        )
    return AdaptationDecision(False, reason, bound, offset)


def decide_for(
    mode: str,
    population: Population,
    scorer,
    calibrator,
    speech_s: np.ndarray,
    calibration_source: str | None,
    fitted_on_population: bool,
) -> AdaptationDecision:
    """`decide_adaptation` for a run: the population's different-speaker pairs scored by the
    unadapted `scorer` (a chunk at a time) and calibrated by `calibrator` (None: uncalibrated)
    with each recording's net speech `speech_s` (NaN: the calibration's medians); the
    reference median when `calibration_source` is the shipped calibration. Logged."""
    pair_llrs = reference = None
    if calibrator is not None:
        pair_score = pair_scorer(scorer, population.vectors)

        def pair_llrs(i: np.ndarray, j: np.ndarray) -> np.ndarray:
            return calibrator.transform(
                pair_score(i, j), pair_durations(calibrator, speech_s, i, j)
            )

        reference = shipped_reference_median(calibration_source, calibrator.groups_)
    fitted = calibrator is not None and fitted_on_population
    decision = decide_adaptation(mode, population, pair_llrs, fitted, reference)
    logger.info("--population %s: %s", population.source, decision.describe())
    return decision


def retest_adapted(
    population: Population,
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    calibrator,
    speech_s: np.ndarray,
) -> BoundTest | None:
    """The population's own different-speaker pairs, scored by `score(i, j)` (the scorer
    adapted to it) and calibrated (bounds included; `speech_s` per recording, NaN: the
    calibration's medians), against the bound of calibrated LRs again: where they still
    break it, the adaptation did not make the calibration hold (None: too few pairs)."""
    i, j = different_speaker_pairs(population)
    if not len(i):
        return None
    sides = pair_durations(calibrator, speech_s, i, j)
    return bound_of_llrs(calibrator.transform(score(i, j), sides), population.n_speakers or 0)


def pair_durations(calibrator, speech_s: np.ndarray, i: np.ndarray, j: np.ndarray):
    """The `(pairs, 2)` net speech seconds of population rows i and j as `calibrator` takes
    them (None when it uses no durations; NaN: the calibration's medians)."""
    return np.column_stack([speech_s[i], speech_s[j]]) if calibrator.uses_durations else None


def retest_reason(retest: BoundTest) -> str:
    """Why trials are out of conditions when the adapted scores still break the bound."""
    return (
        "the scores adapted to the population still break the bound of calibrated LRs on its "
        f"own comparisons: {retest.describe('the population')}"
    )


def retest_warning(source: str, retest: BoundTest) -> str:
    """The one line said when the adapted scores still break the bound."""
    return f"--population {source}: {retest_reason(retest)}; the calibrated LRs may mislead"


def pair_scorer(scorer, vectors: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """`score(i, j)`: raw scores of rows i vs j of `vectors` (one recording each), by the
    scorer's bilinear lookups where it has them (`Scorer.pairs`: 200,000 beta-scorer pairs
    in 0.9 s instead of 26 s, benchmarks/population_bounds.py), else `PAIR_CHUNK` pairs at a
    time."""
    fast = scorer.pairs(vectors)
    if fast is not None:
        return fast.score

    def score(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        raw = np.empty(len(i))
        for start in range(0, len(i), PAIR_CHUNK):
            rows = slice(start, start + PAIR_CHUNK)
            raw[rows] = scorer.score(vectors[i[rows]], vectors[j[rows]])
        return raw

    return score


def shipped_reference_median(calibration_source: str | None, groups: list[str] | None):
    """The shipped calibration's median different-speaker LLR over the corpora it was fitted
    on (`groups`), from its reference LLRs (`balr.defaults.REFERENCE_LLRS`: held-out test
    trials of each corpus, as many per corpus), when `calibration_source` is the shipped
    calibration; None for any other (no reference to offset to)."""
    from pathlib import Path

    from balr import defaults

    if not calibration_source or not defaults.REFERENCE_LLRS.is_file():
        return None
    if Path(calibration_source).resolve() != defaults.CALIBRATION.resolve():
        return None
    reference = np.load(defaults.require(defaults.REFERENCE_LLRS, "reference LLRs"))
    corpora = [str(name) for name in reference["corpora"]]
    covered = [k for k, name in enumerate(corpora) if not groups or name in groups]
    chosen = np.isin(reference["nontarget_corpus"], covered)
    return float(np.median(reference["nontarget"][chosen].astype(np.float64)))
