"""Scoring speed per LR scorer: 1,000,000 single-recording trials and an all-vs-all matrix.

Targets (2 CPU cores): <= 2 s for 1,000,000 trials over 20,000 distinct 512-attribute
recordings, <= 10 s for a 10,000 x 10,000 matrix, per scorer. Also checks a sample of the
fast scores against the direct formula and reports peak RSS.

    python benchmarks/scoring.py [--trials 1000000] [--recordings 20000] [--matrix 10000]
        [--attributes 512] [--scorers dna,speech,maxllr,beta] [--out results.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, write_results  # noqa: E402

from balr.scoring import make_scorer  # noqa: E402
from balr.scoring.pairs import matrix_scores  # noqa: E402
from balr.scoring.trials import TrialCells, score_trials  # noqa: E402

TRIALS_TARGET_S, MATRIX_TARGET_S = 2.0, 10.0


def simulated_reference(n_speakers: int, n_attributes: int, rng) -> np.ndarray:
    """Speaker statistics of `n_speakers` x 8 recordings with sparse speaker profiles."""
    profiles = rng.random((n_speakers, n_attributes)) < rng.uniform(0.05, 0.5, n_attributes)
    active = rng.binomial(8, np.where(profiles, 0.85, 0.05))
    return np.stack([active, 8 - active], axis=-1).astype(np.float64)


def time_call(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, round(time.perf_counter() - start, 3)


def bench_trials(scorer, bits, enroll, test) -> dict:
    cells = TrialCells(enroll[:, None], test[:, None])
    scores, seconds = time_call(score_trials, scorer, bits, cells)
    sample = slice(0, 2000)
    direct = scorer.score(bits[enroll[sample]], bits[test[sample]])
    error = float(np.abs(scores[sample] - direct).max())
    print(f"{scorer.name}: {len(enroll)} trials {seconds:.3f} s (|fast - direct| {error:.1e})")
    return {
        "trials_seconds": seconds,
        "trials_max_abs_error": error,
        "meets_trials_target": seconds <= TRIALS_TARGET_S,
    }


def bench_matrix(scorer, bits) -> dict:
    matrix, seconds = time_call(matrix_scores, scorer, bits)
    corner = scorer.score(bits[:50].repeat(50, 0), np.tile(bits[:50], (50, 1))).reshape(50, 50)
    error = float(np.abs(matrix[:50, :50] - corner).max())
    print(f"{scorer.name}: {len(bits)}^2 matrix {seconds:.3f} s (|fast - direct| {error:.1e})")
    return {
        "matrix_seconds": seconds,
        "matrix_max_abs_error": error,
        "meets_matrix_target": seconds <= MATRIX_TARGET_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1_000_000)
    parser.add_argument("--recordings", type=int, default=20_000)
    parser.add_argument("--matrix", type=int, default=10_000)
    parser.add_argument("--attributes", type=int, default=512)
    parser.add_argument("--speakers", type=int, default=1000)
    parser.add_argument("--scorers", default="dna,speech,maxllr,beta")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    stats = simulated_reference(args.speakers, args.attributes, rng)
    bits = (rng.random((args.recordings, args.attributes)) < 0.3).astype(np.uint8)
    enroll = rng.integers(0, args.recordings, args.trials)
    test = rng.integers(0, args.recordings, args.trials)
    results: dict = {
        "trials": args.trials,
        "recordings": args.recordings,
        "attributes": args.attributes,
        "matrix_size": args.matrix,
        "targets_seconds": {"trials": TRIALS_TARGET_S, "matrix": MATRIX_TARGET_S},
        "scorers": {},
    }
    scorers = {}
    for name in args.scorers.split(","):
        params = {"n_iterations": 200} if name == "beta" else {}
        scorers[name] = make_scorer(name, **params).fit(stats)
        results["scorers"][name] = bench_trials(scorers[name], bits, enroll, test)
    results["peak_rss_mb_after_trials"] = round(peak_rss_mb(), 1)
    print(f"peak RSS after the trial lists: {results['peak_rss_mb_after_trials']} MiB")
    for name, scorer in scorers.items():
        results["scorers"][name].update(bench_matrix(scorer, bits[: args.matrix]))
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(f"peak RSS: {results['peak_rss_mb']} MiB")
    write_results("scoring", results, args.out)


if __name__ == "__main__":
    main()
