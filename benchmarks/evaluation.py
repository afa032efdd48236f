"""Evaluation speed: compute_metrics and the DET, Tippett, PAV and ECE plots that every
`score test` writes, on 1,000,000 trials, with the peak memory.

Target (2 CPU cores): compute_metrics on 1,000,000 trials in <= 3 s, DET and Tippett in <= 3 s
(they decimate to a few thousand points, so their cost is the sort, not the drawing); PAV
(drawn by lir) and ECE in under a minute, and the whole run within 2 GB (lir's own ECE
computation held several (600 priors x trials) arrays: 3.8 GB on 158,000 trials).

    python benchmarks/evaluation.py [--trials 1000000] [--target-share 0.01] [--out results.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, timed, write_results  # noqa: E402

from balr.evaluation import (  # noqa: E402
    compute_metrics,
    plot_det,
    plot_ece,
    plot_pav,
    plot_tippett,
)


def gaussian_llrs(n_trials: int, target_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated Gaussian LLRs (targets N(4, 8), non-targets N(-4, 8)), rounded to 1e-4."""
    rng = np.random.default_rng(0)
    n_target = max(1, int(n_trials * target_share))
    labels = np.zeros(n_trials, dtype=np.int8)
    labels[:n_target] = 1
    scores = rng.normal(-4.0, np.sqrt(8.0), n_trials)
    scores[:n_target] += 8.0
    return scores.round(4), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1_000_000)
    parser.add_argument("--target-share", type=float, default=0.01)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    scores, labels = gaussian_llrs(args.trials, args.target_share)
    results: dict = {"trials": args.trials, "targets": int(labels.sum())}
    with timed(results, "compute_metrics_s"):
        metrics = compute_metrics(scores, labels)
    with tempfile.TemporaryDirectory() as folder:
        with timed(results, "plot_det_s"):
            plot_det(scores, labels, Path(folder) / "det.png")
        with timed(results, "plot_tippett_s"):
            plot_tippett(scores, labels, Path(folder) / "tippett.png")
        with timed(results, "plot_pav_s"):
            plot_pav(scores, labels, Path(folder) / "pav.png")
        with timed(results, "plot_ece_s"):
            plot_ece(scores, labels, Path(folder) / "ece.png")
    results["eer"] = metrics["eer"]
    results["min_cllr"] = metrics["min_cllr"]
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(
        f"eer {metrics['eer']:.4f}, min_cllr {metrics['min_cllr']:.4f}, "
        f"peak RSS {results['peak_rss_mb']} MiB"
    )
    write_results("evaluation", results, args.out)


if __name__ == "__main__":
    main()
