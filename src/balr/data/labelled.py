"""Embeddings with speaker labels: what a trainer fits on, read from a dataset."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from balr.data.dataset import AudioDataset
from balr.data.provenance import EmbeddingProvenance, dataset_provenance
from balr.errors import DataError


@dataclass(frozen=True)
class LabelledEmbeddings:
    """Embeddings `(n, d)` and the speaker label of each row (`n` labels of any type), and
    the embedding model recorded for them (None: unknown)."""

    embeddings: np.ndarray
    speakers: np.ndarray
    provenance: EmbeddingProvenance | None = None

    def __len__(self) -> int:
        return len(self.embeddings)


def labelled_embeddings(
    path: str | os.PathLike,
    audio_formats: Sequence[str] | None = None,
    root_dir: str | os.PathLike | None = None,
) -> LabelledEmbeddings:
    """The float32 embeddings and speakers of a dataset's items that have an embedding
    (DataError when there is none, or when one of them has no speaker), with the embedding
    model recorded by `balr extract` (`balr.data.provenance`). `audio_formats` and
    `root_dir` read the dataset as `AudioDataset.from_path`."""
    ds = AudioDataset.from_path(path, audio_formats, root_dir=root_dir)
    indices, embeddings = ds.stack_vectors("emb")
    if len(indices) == 0:
        raise DataError(f"{path}: no embeddings found (run `balr extract` first)")
    speakers = [ds.items[i].speaker for i in indices]
    unlabelled = [ds.items[i].id for i, s in zip(indices, speakers, strict=True) if s is None]
    if unlabelled:
        raise DataError(
            f"{path}: {len(unlabelled)} items have no speaker label (first: {unlabelled[0]})"
        )
    provenance, _ = dataset_provenance(ds)
    return LabelledEmbeddings(embeddings.astype(np.float32), np.asarray(speakers), provenance)
