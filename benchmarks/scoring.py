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
from balr.scoring.fast import TrialCells, matrix_scores, score_trials  # noqa: E402

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


def bench_scorer(name: str, stats, bits, enroll, test, matrix_size: int) -> dict:
    scorer = make_scorer(name, **({"n_iterations": 200} if name == "beta" else {})).fit(stats)
    cells = TrialCells(enroll[:, None], test[:, None])
    scores, trials_s = time_call(score_trials, scorer, bits, cells)
    sample = slice(0, 2000)
    error = float(
        np.abs(scores[sample] - scorer.score(bits[enroll[sample]], bits[test[sample]])).max()
    )
    matrix, matrix_s = time_call(matrix_scores, scorer, bits[:matrix_size])
    corner = scorer.score(bits[:50].repeat(50, 0), np.tile(bits[:50], (50, 1))).reshape(50, 50)
    error = max(error, float(np.abs(matrix[:50, :50] - corner).max()))
    del matrix
    figures = {
        "trials_seconds": trials_s,
        "matrix_seconds": matrix_s,
        "max_abs_error_vs_direct": error,
        "meets_trials_target": trials_s <= TRIALS_TARGET_S,
        "meets_matrix_target": matrix_s <= MATRIX_TARGET_S,
    }
    print(
        f"{name}: {len(enroll)} trials {trials_s:.3f} s; {matrix_size}^2 matrix "
        f"{matrix_s:.3f} s; max |fast - direct| {error:.2e}",
        flush=True,
    )
    return figures


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
    for name in args.scorers.split(","):
        results["scorers"][name] = bench_scorer(name, stats, bits, enroll, test, args.matrix)
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(f"peak RSS: {results['peak_rss_mb']} MiB")
    write_results("scoring", results, args.out)


if __name__ == "__main__":
    main()
