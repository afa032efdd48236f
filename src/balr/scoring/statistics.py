"""Per-speaker statistics: sums of BA count vectors over a speaker's recordings (vectorised),
and their lossless compression into count histograms, on which scorers are fitted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def dataset_statistics(dataset, bad: list | None = None) -> tuple[list[str], np.ndarray]:
    """Speaker statistics of a `balr.data.AudioDataset`; DataError naming a missing vector.
    A bad vector raises DataError naming its file, or, with a `bad` list (of
    `balr.data.validation.BadVector`), is collected there and left out."""
    indices, vectors = dataset.stack_vectors("ba", bad=bad)
    skipped = {b.item_id for b in bad or ()}
    if len(indices) + len(skipped) < len(dataset):
        absent = np.setdiff1d(np.arange(len(dataset)), indices)
        absent = np.array([i for i in absent if dataset.items[i].id not in skipped])
        raise DataError(
            f"item '{dataset.items[absent[0]].id}' has no binary-attribute vector "
            f"({len(absent)} of {len(dataset)} items without; run `balr binarize` first)"
        )
    speakers = [dataset.items[i].speaker for i in indices]
    ids = [dataset.items[i].id for i in indices]
    return speaker_statistics(vectors, speakers, ids)


#: largest key space (attributes x distinct count vectors) counted with one bincount
DENSE_KEYS = 50_000_000


@dataclass(frozen=True)
class CountHistogram:
    """Speaker statistics `(speakers, attributes, states)` compressed without loss.

    Row `u` is one distinct count vector `counts[u]` of attribute `attribute[u]`, held by
    `weight[u]` speakers. Small integer counts (a speaker's recordings) make this tiny: a few
    dozen rows per attribute for any number of speakers, so fitting costs O(rows), not
    O(speakers). Non-integer statistics keep one row per speaker and attribute (still exact).
    """

    attribute: np.ndarray  # (U,) intp
    counts: np.ndarray  # (U, states) float64
    weight: np.ndarray  # (U,) float64
    n_attributes: int
    integral: bool

    @classmethod
    def from_statistics(cls, stats: np.ndarray) -> CountHistogram:
        stats = np.asarray(stats, dtype=np.float64)
        _, n_attributes, n_states = stats.shape
        attribute = np.broadcast_to(np.arange(n_attributes), stats.shape[:2]).ravel()
        rows = stats.reshape(-1, n_states)
        integral = bool(rows.size and np.all(rows >= 0) and np.all(rows == np.floor(rows)))
        base = int(rows.max()) + 1 if integral else 0
        if not integral or base**n_states * n_attributes > 2**62:
            return cls(attribute.astype(np.intp), rows, np.ones(len(rows)), n_attributes, False)
        key = attribute.astype(np.int64)
        for state in range(n_states):
            key = key * base + rows[:, state].astype(np.int64)
        n_keys = n_attributes * base**n_states
        if n_keys <= DENSE_KEYS:
            weight = np.bincount(key, minlength=n_keys)
            distinct = np.flatnonzero(weight)
            weight = weight[distinct]
        else:
            distinct, weight = np.unique(key, return_counts=True)
        counts = np.empty((len(distinct), n_states))
        rest = distinct
        for state in reversed(range(n_states)):
            rest, counts[:, state] = np.divmod(rest, base)
        return cls(rest.astype(np.intp), counts, weight.astype(np.float64), n_attributes, True)

    def total(self, values: np.ndarray) -> np.ndarray:
        """Per-attribute sums over speakers of `values` given per row: `(attributes, ...)`."""
        values = np.asarray(values, dtype=np.float64)
        flat = values.reshape(len(self.weight), -1) * self.weight[:, None]
        sums = [np.bincount(self.attribute, column, self.n_attributes) for column in flat.T]
        return np.stack(sums, axis=1).reshape(self.n_attributes, *values.shape[1:])

    def exceedance(self, values: np.ndarray) -> np.ndarray:
        """`(attributes, max value)`: speakers whose integer `values` (one per row) exceed j,
        for j = 0, 1, ...; the sums `sum_l f(x_l) = sum_j c_j (f(j+1) - f(j))` need no loop
        over speakers."""
        values = np.asarray(values).astype(np.intp)
        top = int(values.max(initial=0))
        hist = np.zeros((self.n_attributes, top + 1))
        np.add.at(hist, (self.attribute, values), self.weight)
        at_least = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]
        return at_least[:, 1:]
