"""Research (issue 18): how strongly the beta scorer's typicality should follow a small
relevant population, measured on the cached folders of benchmarks/population_robustness.py.

The adaptation (`balr.population`) moves each attribute's rate toward the population's,
`m = (n p + T m_ref) / (n + T)`. Variants: `n` = population recordings or speakers (segments
of one LibriSpeech utterance are not independent draws), `p` = pooled rate or mean of the
per-speaker rates, and T. Each variant replaces `adapt_to_population` inside `balr score
test` (everything else as shipped) and prints EER, Cllr, minCllr and the strongly
misleading shares per corpus, variant and population size.

    python recipes/research/r09_population_shrinkage.py [--work runs/population_robustness]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from balr.evaluation.metrics import cllr, eer, min_cllr, misleading_shares
from balr.population import PopulationAdaptation, check_population_size
from balr.scoring.jobs import TrialScoring, score_trials_file
from balr.scoring.jobs import test as test_job


def eb_rate(population, reference: np.ndarray) -> np.ndarray:
    """Empirical-Bayes rates: each attribute's shift `d = p - m_ref` (p: mean of the
    per-speaker rates) shrunk by `tau2 / (tau2 + sigma2_i)`, `sigma2_i` the variance of the
    per-speaker rates over the number of speakers (the noise of p), `tau2` the spread of the
    true shifts (mean d^2 minus mean noise, floored at 0)."""
    names, index = population.speaker_index()
    sums = np.zeros((len(names), population.bits.shape[1]))
    np.add.at(sums, index, population.bits)
    rates = sums / np.bincount(index)[:, None]
    shift = rates.mean(axis=0) - reference
    noise = rates.var(axis=0, ddof=1) / len(names)
    tau2 = max(float(np.mean(shift**2 - noise)), 0.0)
    return reference + tau2 / (tau2 + noise + 1e-12) * shift


def adaptation(basis: str, shrinkage: float, pooled: bool):
    """An `adapt_to_population` replacement for one variant."""

    def adapt(scorer, population, _shrinkage=None):
        check_population_size(population)
        if basis == "eb":
            alpha = scorer.alpha_
            reference = alpha[:, 0] / alpha.sum(axis=1)
            fitted = PopulationAdaptation(0.0).fit(population.bits)
            fitted.activation_rate_ = np.clip(eb_rate(population, reference), 1e-4, 1 - 1e-4)
            return fitted.adapt(scorer), fitted
        names, index = population.speaker_index()
        if pooled:
            rate = population.bits.mean(axis=0)
        else:
            sums = np.zeros((len(names), population.bits.shape[1]))
            np.add.at(sums, index, population.bits)
            rate = (sums / np.bincount(index)[:, None]).mean(axis=0)
        fitted = PopulationAdaptation(shrinkage).fit(population.bits)
        fitted.activation_rate_ = rate
        fitted.n_recordings_ = len(names) if basis == "speakers" else len(population.bits)
        return fitted.adapt(scorer), fitted

    return adapt


VARIANTS = {
    "recordings T=10 (shipped)": ("recordings", 10.0, True),
    "recordings T=30": ("recordings", 30.0, True),
    "speakers T=10, speaker means": ("speakers", 10.0, False),
    "speakers T=5, speaker means": ("speakers", 5.0, False),
    "speakers T=20, speaker means": ("speakers", 20.0, False),
    "empirical Bayes per attribute": ("eb", 0.0, False),
}


def figures(folder: Path, size: int, name: str) -> dict:
    test_job.adapt_to_population = adaptation(*VARIANTS[name])
    with tempfile.TemporaryDirectory() as tmp:
        options = TrialScoring(save_dir=Path(tmp), exist_ok=True, population=(
            folder / f"pop{size}.csv") if size else None, same_recording_by_id=True)  # fmt: skip
        score_trials_file(folder / "all.csv", folder / "trials.tsv", options)
        scores = pd.read_csv(Path(tmp) / "scores.csv", sep="\t", dtype=str)
    speaker = dict(pd.read_csv(folder / "all.csv", dtype=str)[["id", "speaker"]].values)
    labels = (scores["enrollment"].map(speaker) == scores["test"].map(speaker)).to_numpy(int)
    llr = scores["scores"].astype(float).to_numpy()
    shares = misleading_shares(llr, labels)
    return {"eer": eer(llr, labels)[0], "cllr": cllr(llr, labels),
            "min_cllr": min_cllr(llr, labels), **shares}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("runs/population_robustness"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 20])
    options = ap.parse_args()
    print("| folder | population | variant | EER | Cllr | minCllr | non>100 | tar<1/100 |")
    for folder in sorted(p.parent for p in options.work.glob("*/*/extracted")):
        for size in options.sizes:
            if not (folder / f"pop{size}.csv").is_file():
                continue
            for name in VARIANTS:
                f = figures(folder, size, name)
                print(f"| {folder.parent.name}/{folder.name} | {size} | {name} | "
                      f"{100 * f['eer']:.2f} % | {f['cllr']:.3f} | {f['min_cllr']:.3f} | "
                      f"{100 * f['nontarget_lr_above_100']:.2f} % | "
                      f"{100 * f['target_lr_below_0.01']:.2f} % |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
