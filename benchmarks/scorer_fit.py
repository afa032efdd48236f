"""Fit time of every LR scorer on a reference population of 1k, 10k and 100k speakers.

Targets (2 CPU cores, 512 attributes): beta <= 0.5 s for 1,000 speakers and <= 30 s for
100,000. Also prints each fit's training log-likelihood (beta: Dirichlet-multinomial; maxllr:
latent-presence mixture), so a faster fit can be checked to fit as well, and peak RSS.

    python benchmarks/scorer_fit.py [--speakers 1000,10000,100000] [--attributes 512]
        [--scorers dna,speech,maxllr,beta] [--out results.json]
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

BETA_TARGETS_S = {1_000: 0.5, 100_000: 30.0}


def simulated_statistics(n_speakers: int, n_attributes: int, rng) -> np.ndarray:
    """`(speakers, attributes, 2)` counts of 2-11 recordings per speaker with speaker-level
    activation rates drawn from Beta(0.3, 2): sparse attributes, as binary attributes are."""
    recordings = rng.integers(2, 12, size=n_speakers)
    rates = rng.beta(0.3, 2.0, size=(n_speakers, n_attributes))
    active = rng.binomial(recordings[:, None], rates)
    return np.stack([active, recordings[:, None] - active], axis=-1).astype(np.float64)


def training_log_likelihood(scorer, stats: np.ndarray) -> float | None:
    """Sum over speakers and attributes of the log probability of each speaker's counts under
    the fitted model (up to the multinomial coefficients, which do not depend on the fit):
    `log_marginal(counts) - log_marginal(0)`."""
    log_marginal = getattr(scorer, "log_marginal", None)
    if log_marginal is None:
        return None
    return float(np.sum(log_marginal(stats) - log_marginal(np.zeros_like(stats))))


def bench(name: str, stats: np.ndarray) -> dict:
    started = time.perf_counter()
    scorer = make_scorer(name).fit(stats)
    seconds = round(time.perf_counter() - started, 3)
    loglik = training_log_likelihood(scorer, stats) if name in ("beta", "maxllr") else None
    target = BETA_TARGETS_S.get(len(stats)) if name == "beta" else None
    line = f"{name:>7} {len(stats):>7} speakers: fit {seconds:8.3f} s"
    if loglik is not None:
        line += f"   log-likelihood {loglik:.6e}"
    if target is not None:
        line += f"   (target <= {target} s: {'met' if seconds <= target else 'MISSED'})"
    print(line, flush=True)
    return {"seconds": seconds, "log_likelihood": loglik, "target_s": target}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", default="1000,10000,100000")
    parser.add_argument("--attributes", type=int, default=512)
    parser.add_argument("--scorers", default="dna,speech,maxllr,beta")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON path (default: results/scorer_fit.json)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    results: dict = {"attributes": args.attributes, "fits": {}}
    for n_speakers in map(int, args.speakers.split(",")):
        stats = simulated_statistics(n_speakers, args.attributes, rng)
        results["fits"][n_speakers] = {name: bench(name, stats) for name in args.scorers.split(",")}
    results["peak_rss_mb"] = peak_rss_mb()
    print(f"peak RSS {results['peak_rss_mb']:.0f} MB")
    write_results("scorer_fit", results, args.out)


if __name__ == "__main__":
    main()
