"""The population's own ELUB bounds (`balr.population_bounds`) on a large population: time and
memory of drawing its same- and different-speaker pairs, scoring them with the shipped beta
scorer adapted to it (its bilinear lookups, `pair_scorer`, and for comparison its direct
path) and the shipped calibration, and the ELUB bounds; then its conditions
(`balr.conditions.population`): fitted on its recordings' channel profiles (`MAX_PROFILES`
at most) and the channel distances of `--queries` trial recordings to them.

Generated BA bits of the shipped scorer's attributes, `--speakers` speakers x
`--per-speaker` recordings (each speaker its own activation rates); at most
`MAX_BOUND_PAIRS` (100,000) pairs of each kind are scored, so the cost stops growing with
the population. Writes JSON (default benchmarks/results/population_bounds.json).

    python benchmarks/population_bounds.py [--speakers 2000] [--per-speaker 50] [--queries N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, timed, write_results  # noqa: E402

from balr import defaults  # noqa: E402
from balr.calibration import CalibrationBundle  # noqa: E402
from balr.conditions.channel import PROFILE_SIZE, ChannelReference  # noqa: E402
from balr.conditions.population import PopulationConditions  # noqa: E402
from balr.population import Population, adapt_to_population  # noqa: E402
from balr.population_bounds import same_speaker_pairs, scored_population_bounds  # noqa: E402
from balr.population_decision import different_speaker_pairs, pair_scorer  # noqa: E402
from balr.scoring.base import Scorer  # noqa: E402


def generated(speakers: int, per_speaker: int, n_attributes: int, rng) -> Population:
    """A labelled population of generated 0/1 BA vectors."""
    rates = np.where(rng.random((speakers, n_attributes)) < 0.3, 0.85, 0.1)
    bits = rng.random((speakers * per_speaker, n_attributes)) < np.repeat(rates, per_speaker, 0)
    ids = tuple(f"s{i // per_speaker}/r{i % per_speaker}" for i in range(len(bits)))
    labels = tuple(f"s{i // per_speaker}" for i in range(len(bits)))
    return Population("generated", ids, labels, bits.astype(np.float32))


def chunked(scorer, vectors: np.ndarray, chunk: int = 4096):
    """`score(i, j)` by the scorer's direct path, `chunk` pairs at a time (before
    `pair_scorer` took the bilinear lookups)."""

    def score(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        parts = range(0, len(i), chunk)
        return np.concatenate(
            [scorer.score(vectors[i[k : k + chunk]], vectors[j[k : k + chunk]]) for k in parts]
        )

    return score


def population_conditions(population: Population, queries: int, results: dict) -> None:
    """Time the population's conditions: fitted on generated channel profiles (one
    channel shift per speaker), and `queries` generated trial recordings' distances."""
    rng = np.random.default_rng(1)
    names, index = population.speaker_index()
    shifts = rng.normal(0, 1, (len(names), PROFILE_SIZE))
    profiles = shifts[index] + rng.normal(0, 0.5, (len(index), PROFILE_SIZE))
    by_id = dict(zip(population.ids, profiles, strict=True))
    scale = ChannelReference.load(defaults.CHANNEL_REFERENCE)
    speech = np.full(len(population.ids), 3.0)
    with timed(results, "conditions_fit_s"):
        conditions = PopulationConditions.fit(population, by_id, speech, 1.0, scale)
    ids = np.array([f"q{k}" for k in range(queries)], object)
    trial = rng.normal(0, 1, (queries, PROFILE_SIZE)) + rng.normal(0, 0.5, (queries, PROFILE_SIZE))
    with timed(results, "conditions_distances_s"):
        conditions.distances(ids, np.full(queries, None), trial)
    results["conditions_profiles"], results["conditions_queries"] = len(conditions.ids), queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speakers", type=int, default=2000)
    parser.add_argument("--per-speaker", type=int, default=50)
    parser.add_argument("--queries", type=int, default=100_000, help="trial recordings")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    scorer = Scorer.load(defaults.SCORER_CHECKPOINT)
    calibrator = CalibrationBundle.load(defaults.CALIBRATION).calibrator
    population = generated(args.speakers, args.per_speaker, scorer.n_attributes,
                           np.random.default_rng(0))  # fmt: skip
    results: dict = {"recordings": len(population.ids), "speakers": args.speakers}
    with timed(results, "pairs_s"):
        same, other = same_speaker_pairs(population), different_speaker_pairs(population)
    results["same_speaker_pairs"], results["different_speaker_pairs"] = len(same[0]), len(other[0])
    with timed(results, "adapt_s"):
        adapted, _ = adapt_to_population(scorer, population)
    score = pair_scorer(adapted, population.vectors)
    seconds = np.full(len(population.ids), np.nan)  # the calibration's median durations
    with timed(results, "bounds_s"):
        bounds = scored_population_bounds(population, score, calibrator, seconds)
    results["bounds_log10"] = [bounds.record()["lower_log10"], bounds.record()["upper_log10"]]
    with timed(results, "bounds_direct_path_s"):  # the scorer's own `score`, chunked
        direct = scored_population_bounds(population, chunked(adapted, population.vectors),
                                          calibrator, seconds)  # fmt: skip
    assert direct.record() == bounds.record()
    population_conditions(population, args.queries, results)
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(results)
    write_results("population_bounds", results, args.out)


if __name__ == "__main__":
    main()
