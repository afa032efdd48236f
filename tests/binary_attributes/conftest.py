"""Speaker-clustered synthetic embeddings (stand-ins for real ones) and CSV datasets of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def clustered_embeddings(
    n_speakers: int, per_speaker: int, dim: int = 256, noise: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm speaker centroids plus isotropic noise, like length-normalised embeddings."""
    rng = np.random.default_rng(seed)
    centroids = rng.normal(size=(n_speakers, dim))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_speakers), per_speaker)
    x = centroids[labels] + noise / np.sqrt(dim) * rng.normal(size=(len(labels), dim))
    return x.astype(np.float32), labels


def write_embedding_csv(
    folder: Path, x: np.ndarray, labels: np.ndarray, prefix: str = "spk", missing: int = 0
) -> Path:
    """A CSV dataset (id, embedding, speaker) with one `_emb.txt` per item.

    The last `missing` items are listed without an embedding file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["id,embedding,speaker"]
    for i, (vector, label) in enumerate(zip(x, labels, strict=True)):
        item = f"{prefix}{label}_utt{i}"
        if i >= len(x) - missing:
            rows.append(f"{item},,{prefix}{label}")
            continue
        np.savetxt(folder / f"{item}_emb.txt", vector)
        rows.append(f"{item},{item}_emb.txt,{prefix}{label}")
    path = folder / "data.csv"
    path.write_text("\n".join(rows) + "\n")
    return path
