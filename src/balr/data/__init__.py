"""Datasets, vector files and stores, trial lists and Kaldi interop."""

from balr.data.dataset import AudioDataset
from balr.data.items import DatasetItem
from balr.data.trials import Trials, load_trials
from balr.data.vectors import (
    VectorStore,
    VectorStoreWriter,
    as_ba_counts,
    read_vector,
    write_vector,
    write_vector_store,
)

__all__ = [
    "AudioDataset",
    "DatasetItem",
    "Trials",
    "VectorStore",
    "VectorStoreWriter",
    "as_ba_counts",
    "load_trials",
    "read_vector",
    "write_vector",
    "write_vector_store",
]
