"""Research (issue 13), step 2: seeded speaker-disjoint splits and trial lists.

Per corpus, speakers are shuffled with numpy default_rng(SEED) (sorted names first) and cut
into parts: enc (BAE training), ref (reference population: scorer fit, cohort), cal
(calibration trials), test (held out, reported). VoxCeleb (6 speakers x 3 clips once the 4
example speakers are out) is too small to split: it is test only.
Trials: all unordered pairs of items inside one part of one corpus. LibriSpeech same-speaker
trials are segments of one utterance (the corpus has one recording per speaker); the
other corpora's same-speaker trials are always different recordings.
Writes CACHE/splits.csv (corpus, speaker, part) and prints the sizes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 0
SIZES = {  # enc, ref, cal, test (-1: the rest)
    "librispeech": {"enc": 100, "ref": 50, "cal": 50, "test": -1},
    "speechocean": {"enc": 100, "ref": 50, "cal": 50, "test": -1},
    "commonvoice": {"enc": 300, "ref": 150, "cal": 150, "test": -1},
    "voxceleb": {"test": -1},
}


def split(speakers, sizes, seed=SEED):
    pool = sorted(set(speakers))
    order = np.random.default_rng(seed).permutation(len(pool))
    shuffled = [pool[i] for i in order]
    out, start = {}, 0
    for name, size in sizes.items():
        stop = len(shuffled) if size < 0 else start + size
        out[name] = shuffled[start:stop]
        start = stop
    return out


def load_items(cache: Path) -> pd.DataFrame:
    """All cached items with their part; embeddings row-aligned in the same order."""
    frames = []
    for corpus in SIZES:
        f = pd.read_csv(cache / "emb" / f"{corpus}.csv", dtype={"id": str, "speaker": str})
        f["row"] = np.arange(len(f))
        frames.append(f)
    items = pd.concat(frames, ignore_index=True)
    parts = pd.read_csv(cache / "splits.csv", dtype=str)
    return items.merge(parts, on=["corpus", "speaker"], how="left", validate="m:1")


def load_embeddings(cache: Path, items: pd.DataFrame) -> np.ndarray:
    """(items, 256) embeddings in the row order of `load_items`."""
    arrays = {c: np.load(cache / "emb" / f"{c}.npy") for c in SIZES}
    return np.stack([arrays[c][r] for c, r in zip(items.corpus, items.row, strict=True)])


def pairs(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(len(index), k=1)
    return index[i], index[j]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=Path("/work/research_cache"))
    args = ap.parse_args()
    rows = []
    for corpus, sizes in SIZES.items():
        f = pd.read_csv(args.cache / "emb" / f"{corpus}.csv", dtype={"speaker": str})
        for part, spk in split(f.speaker.unique(), sizes).items():
            rows += [{"corpus": corpus, "speaker": s, "part": part} for s in spk]
    pd.DataFrame(rows).to_csv(args.cache / "splits.csv", index=False)
    items = load_items(args.cache)
    for (corpus, part), g in items.groupby(["corpus", "part"]):
        spk = g.speaker.to_numpy()
        n = len(g)
        tar = sum(c * (c - 1) // 2 for c in g.speaker.value_counts())
        print(
            f"{corpus:12s} {part:5s} {g.speaker.nunique():4d} spk {n:5d} items "
            f"{n * (n - 1) // 2 - tar:7d} non-target {tar:6d} target trials"
        )


if __name__ == "__main__":
    main()
