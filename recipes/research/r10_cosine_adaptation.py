"""Research (issue 18, point 2): which population adaptation of the GE2E embeddings helps the
cosine score on held-out speakers in shared channels, measured on the cached folders of
benchmarks/population_robustness.py (their trials, their 5- and 20-speaker populations).

Adaptations (the population's recordings only; no labels used except by LDA-free S-norm):
  raw        cosine of the embeddings as extracted
  centre     minus the population mean, length-normalised
  whiten     centred, then whitened by the population covariance shrunk toward the
             identity (weight n / (n + 256)), length-normalised
  s-norm     symmetric score normalisation with the population recordings as cohort
  as-norm    adaptive S-norm: the top 50 % of each side's cohort scores
Prints the EER of each on every corpus, variant and population size.

    python recipes/research/r10_cosine_adaptation.py [--work runs/population_robustness]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from balr.data import AudioDataset
from balr.evaluation.metrics import eer


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def centre(vectors: np.ndarray, pop: np.ndarray) -> np.ndarray:
    return unit(vectors - pop.mean(axis=0))


def whiten(vectors: np.ndarray, pop: np.ndarray) -> np.ndarray:
    shifted = pop - pop.mean(axis=0)
    n, d = shifted.shape
    cov = shifted.T @ shifted / n
    weight = n / (n + d)
    cov = weight * cov + (1 - weight) * np.eye(d) * np.trace(cov) / d
    values, vecs = np.linalg.eigh(cov)
    transform = vecs / np.sqrt(np.maximum(values, 1e-10))
    return unit((vectors - pop.mean(axis=0)) @ transform)


def snorm(scores, e, t, pop, top: float = 1.0):
    """Symmetric normalisation with `pop` as cohort (`top`: share of highest cohort scores)."""

    def stats(side):
        cohort = np.sort(side @ pop.T, axis=1)[:, ::-1]
        cohort = cohort[:, : max(2, int(round(top * cohort.shape[1])))]
        return cohort.mean(axis=1), cohort.std(axis=1) + 1e-9

    (me, se), (mt, st) = stats(e), stats(t)
    return 0.5 * ((scores - me) / se + (scores - mt) / st)


def folder_eers(folder: Path, size: int) -> dict[str, float]:
    dataset = AudioDataset.from_path(folder / "all.csv")
    rows, vectors = dataset.stack_vectors("emb")
    ids = [dataset.items[r].id for r in rows]
    row = {name: k for k, name in enumerate(ids)}
    vectors = unit(np.asarray(vectors, dtype=np.float64))
    pop_ids = set(pd.read_csv(folder / f"pop{size}.csv", dtype=str)["id"])
    pop = vectors[[i in pop_ids for i in ids]]
    trials = pd.read_csv(folder / "trials.tsv", sep="\t", dtype=str)
    trials = trials[trials["enrollment"].isin(row) & trials["test"].isin(row)]
    speaker = dict(pd.read_csv(folder / "all.csv", dtype=str)[["id", "speaker"]].values)
    labels = (trials["enrollment"].map(speaker) == trials["test"].map(speaker)).to_numpy(int)
    ei, ti = trials["enrollment"].map(row).to_numpy(), trials["test"].map(row).to_numpy()

    def cosine(v):
        return np.einsum("ij,ij->i", v[ei], v[ti])

    raw = cosine(vectors)
    out = {"raw": raw, "centre": cosine(centre(vectors, pop)),
           "whiten": cosine(whiten(vectors, pop)),
           "s-norm": snorm(raw, vectors[ei], vectors[ti], pop),
           "as-norm": snorm(raw, vectors[ei], vectors[ti], pop, top=0.5)}  # fmt: skip
    return {name: eer(scores, labels)[0] for name, scores in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("runs/population_robustness"))
    options = ap.parse_args()
    names = ("raw", "centre", "whiten", "s-norm", "as-norm")
    print("| corpus/variant | population | " + " | ".join(names) + " |")
    for folder in sorted(p.parent for p in options.work.glob("*/*/extracted")):
        for size in (5, 20):
            if (folder / f"pop{size}.csv").is_file():
                found = folder_eers(folder, size)
                cells = " | ".join(f"{100 * found[n]:.2f} %" for n in names)
                print(f"| {folder.parent.name}/{folder.name} | {size} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
