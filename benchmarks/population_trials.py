"""`score test --population` with per-trial exclusion: time and memory of scoring a large
trials list against the dataset's own other speakers, against plain scoring.

Generated BA bits (512 attributes) of `--speakers` speakers x `--per-speaker` recordings;
`--trials` random trials (a tenth same-speaker); the population is the same recordings, so
every trial leaves out its own speaker(s). Times the per-trial populations (left-out sets
and sizes), the per-trial adapted scoring, and the plain scorer on the same trials; checks
a sample of trials against `adapt_to_population` one by one. Writes JSON (default
benchmarks/results/population_trials.json).

    python benchmarks/population_trials.py [--speakers 200] [--per-speaker 10] [--trials 100000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, timed, write_results  # noqa: E402

from balr.data.trials import Trials  # noqa: E402
from balr.population import Population, adapt_to_population, exclude_case  # noqa: E402
from balr.scoring.beta import BetaScorer  # noqa: E402
from balr.scoring.population_trials import TrialPopulations, TrialwiseBeta  # noqa: E402
from balr.scoring.trials import TrialCells, score_trials  # noqa: E402

N_ATTRIBUTES = 512
CHECKED = 20  # trials checked against the definition


def generated(speakers: int, per_speaker: int, n_trials: int, rng):
    """`(ids, speaker labels, counts (recordings, 512, 2), trials, enroll rows, test rows)`."""
    n = speakers * per_speaker
    ids = [f"s{i // per_speaker}/r{i % per_speaker}" for i in range(n)]
    labels = [f"s{i // per_speaker}" for i in range(n)]
    rates = np.where(rng.random((speakers, N_ATTRIBUTES)) < 0.3, 0.85, 0.1)
    bits = rng.random((n, N_ATTRIBUTES)) < np.repeat(rates, per_speaker, axis=0)
    enroll = rng.integers(0, n, n_trials)
    test = rng.integers(0, n, n_trials)
    same = rng.random(n_trials) < 0.1
    test[same] = (enroll[same] // per_speaker) * per_speaker + rng.integers(0, per_speaker)
    frame = pd.DataFrame({"enrollment": np.take(ids, enroll), "test": np.take(ids, test)})
    trials = Trials(frame, [[ids[i]] for i in enroll], [[ids[i]] for i in test])
    counts = np.stack([bits, ~bits], axis=2).astype(np.float64)
    return ids, labels, counts, trials, enroll, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speakers", type=int, default=200)
    parser.add_argument("--per-speaker", type=int, default=10)
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    ids, labels, counts, trials, enroll, test = generated(
        args.speakers, args.per_speaker, args.trials, rng
    )
    scorer = BetaScorer()
    scorer.alpha_ = rng.uniform(0.2, 5.0, (N_ATTRIBUTES, 2))
    population = Population("own", tuple(ids), tuple(labels), counts[..., 0])
    cells = TrialCells(enroll, test)
    results: dict = {"speakers": args.speakers, "recordings": len(ids), "trials": args.trials}
    with timed(results, "plain_scoring_s"):
        score_trials(scorer, counts, cells)
    with timed(results, "per_trial_populations_s"):
        pops = TrialPopulations.of_trials(population, trials, dict(zip(ids, labels, strict=True)))
    results["left_out_sets"] = int(pops.removed.shape[0])
    with timed(results, "per_trial_scoring_s"):
        scores = TrialwiseBeta(scorer, pops).score(counts, cells)
    worst = 0.0
    for j in rng.choice(args.trials, CHECKED, replace=False):
        left = exclude_case(population, {ids[enroll[j]], ids[test[j]]},
                            {labels[enroll[j]], labels[test[j]]})  # fmt: skip
        expected = score_trials(adapt_to_population(scorer, left)[0], counts, cells.one(j))[0]
        worst = max(worst, abs(scores[j] - expected))
    results["max_abs_difference_to_definition"] = worst
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(results)
    write_results("population_trials", results, args.out)


if __name__ == "__main__":
    main()
