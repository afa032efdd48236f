"""The jobs of `balr vectors`: gather a dataset's vectors into one store, or export them
as a Kaldi archive."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from balr.data.dataset import AudioDataset
from balr.data.kaldi import write_kaldi_vectors
from balr.data.ledger import LedgerRow, LedgerWriter, store_location, vector_digest
from balr.data.vectors import VECTOR_KINDS, check_kind, write_vector_store
from balr.errors import DataError


def dataset_vectors(dataset: AudioDataset, kind: str) -> tuple[list[str], np.ndarray]:
    """Ids and stacked vectors of the items that have one (DataError when none has)."""
    indices, vectors = dataset.stack_vectors(check_kind(kind))
    if len(indices) == 0:
        raise DataError(f"{dataset.source}: no {VECTOR_KINDS[kind]} vectors found")
    return [dataset.items[i].id for i in indices], vectors


def pack_vectors(
    dataset_path: str | os.PathLike, kind: str = "emb", output_dir: str | os.PathLike | None = None
) -> tuple[int, Path]:
    """Write every vector of the dataset (found in `output_dir` or beside the data) into one
    memory-mapped store; returns the count and the store's path without suffix."""
    dataset = AudioDataset.from_path(dataset_path, output_dir=output_dir)
    ids, vectors = dataset_vectors(dataset, kind)
    base = dataset.store_base(kind)
    write_vector_store(base, ids, vectors)
    record_packed(dataset, kind, ids, vectors, base)
    return len(ids), base


def record_packed(
    dataset: AudioDataset, kind: str, ids: list[str], vectors: np.ndarray, base: Path
) -> None:
    """Ledger rows for the packed copies: made from what the copies they repeat were made
    from, now current (`balr.data.ledger`)."""
    at, now = store_location(f"{base}.npy"), time.time_ns()
    rows = []
    for item_id, vector in zip(ids, vectors, strict=True):
        known = dataset.vector_record(dataset.index_of(item_id), kind)
        if known is not None and not known.removed:  # the same vector: the same digest
            made = (known.source, known.stamp, known.model, known.digest or vector_digest(vector))
        else:
            made = ("", "", "", vector_digest(vector))
        rows.append(LedgerRow(kind, item_id, at, *made, now))
    writer = LedgerWriter(dataset.records_folder(), kind)
    try:
        writer.add_rows(rows)
    finally:
        writer.close()


def export_kaldi_vectors(
    dataset_path: str | os.PathLike,
    ark: str | os.PathLike,
    kind: str = "emb",
    output_dir: str | os.PathLike | None = None,
) -> tuple[int, Path]:
    """Write the dataset's vectors to the Kaldi archive `ark` and its `.scp` index; returns
    the count and the scp path."""
    dataset = AudioDataset.from_path(dataset_path, output_dir=output_dir)
    ids, vectors = dataset_vectors(dataset, kind)
    return len(ids), write_kaldi_vectors(ark, ids, vectors)
