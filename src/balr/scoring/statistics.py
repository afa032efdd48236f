"""Per-speaker statistics: sums of BA count vectors over a speaker's recordings (vectorised)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from balr.data.vectors import bits_to_counts
from balr.errors import DataError


def speaker_statistics(
    vectors: np.ndarray, speakers: Sequence[str | None], ids: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """`(speaker names sorted, (speakers, attributes, states) float64 sums)`.

    A sort by speaker then one `np.add.reduceat`: no Python loop over items. An item
    without speaker raises DataError naming it.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim == 2:
        vectors = bits_to_counts(vectors)
    if vectors.ndim != 3 or len(vectors) != len(speakers):
        raise DataError(
            f"expected (items, attributes, states) vectors for {len(speakers)} items, "
            f"got {vectors.shape}"
        )
    labels = np.array([s if s is not None else "" for s in speakers], dtype=str)
    missing = np.flatnonzero(labels == "")
    if missing.size:
        name = ids[missing[0]] if ids is not None else f"#{missing[0]}"
        raise DataError(f"item '{name}' has no speaker label ({missing.size} items without)")
    if not len(labels):
        raise DataError("no items to compute speaker statistics from")
    names, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(names)))
    sums = np.add.reduceat(vectors[order], starts, axis=0, dtype=np.float64)
    return names.tolist(), sums


def dataset_statistics(dataset) -> tuple[list[str], np.ndarray]:
    """Speaker statistics of a `balr.data.AudioDataset`; DataError naming a missing vector."""
    indices, vectors = dataset.stack_vectors("ba")
    if len(indices) < len(dataset):
        absent = np.setdiff1d(np.arange(len(dataset)), indices)
        raise DataError(
            f"item '{dataset.items[absent[0]].id}' has no binary-attribute vector "
            f"({len(absent)} of {len(dataset)} items without; run `balr binarize` first)"
        )
    speakers = [dataset.items[i].speaker for i in indices]
    ids = [dataset.items[i].id for i in indices]
    return speaker_statistics(vectors, speakers, ids)
