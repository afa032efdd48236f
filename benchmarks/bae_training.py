"""Binary-attribute encoder training speed: seconds per epoch on CPU.

100,000 synthetic 256-dim embeddings of 6,000 speakers, N=32 speakers x M=16 utterances
per batch, losses mse + triplet + sparsity (the defaults). Target: <= 30 s per epoch.
One torch thread by default: on a shared 2-core machine more threads only contend.

    python benchmarks/bae_training.py [--embeddings 100000] [--speakers 6000] [--epochs 2]
        [--threads 1] [--triplet-backend dense|pml] [--out results.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, write_results  # noqa: E402

from balr.binary_attributes.config import train_config  # noqa: E402
from balr.binary_attributes.trainer import BAETrainer  # noqa: E402
from balr.data.labelled import LabelledEmbeddings  # noqa: E402


def synthetic_embeddings(n: int, speakers: int, dim: int, seed: int = 0):
    """Speaker centroids plus noise; every speaker has at least one embedding."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(speakers), rng.integers(0, speakers, n - speakers)])
    centroids = rng.normal(size=(speakers, dim)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    noise = rng.normal(scale=0.5 / np.sqrt(dim), size=(n, dim)).astype(np.float32)
    return centroids[labels] + noise, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", type=int, default=100_000)
    parser.add_argument("--speakers", type=int, default=6_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--triplet-backend", default="dense", choices=["dense", "pml"])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    x, y = synthetic_embeddings(args.embeddings, args.speakers, args.dim)
    cfg = train_config(
        [
            f"trainer.epochs={args.epochs}",
            "data.N_classes_per_batch=32",
            "data.M_samples_per_class=16",
            "trainer/losses=[mse, triplet, sparsity]",
            f"trainer.losses.triplet.backend={args.triplet_backend}",
            "trainer.val_period=0",
            "trainer.progress=false",
        ]
    )
    with tempfile.TemporaryDirectory() as out_dir:
        history = BAETrainer(cfg, out_dir, "cpu").fit(LabelledEmbeddings(x, y))
    seconds = [record["train_seconds"] for record in history]
    for record in history:
        print(
            f"epoch {record['epoch']}: {record['train_seconds']:.2f} s, "
            f"loss {record['train']['total']:.4f}",
            flush=True,
        )
    results = {
        "embeddings": args.embeddings,
        "speakers": args.speakers,
        "dim": args.dim,
        "batch": "N=32 x M=16",
        "losses": "mse+triplet+sparsity",
        "triplet_backend": args.triplet_backend,
        "torch_threads": args.threads,
        "seconds_per_epoch": seconds,
        "mean_seconds_per_epoch": round(float(np.mean(seconds)), 3),
        "target_seconds_per_epoch": 30,
        "train_loss": [record["train"]["total"] for record in history],
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(f"mean: {results['mean_seconds_per_epoch']:.2f} s per epoch (target <= 30 s)")
    write_results("bae_training", results, args.out)


if __name__ == "__main__":
    main()
