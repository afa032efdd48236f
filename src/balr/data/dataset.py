"""`AudioDataset`: recordings from one audio file, a directory, a CSV or a Kaldi data dir,
with lazy audio and vectors.

Items are listed by the readers of `balr.data.items` and `balr.data.kaldi`; vectors are
found and read by `balr.data.lookup` (explicit CSV paths, single-file stores, sidecar
files) and saved by `balr.data.writers` in the dataset's `vector_format`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.utils.data

from balr import audio as audio_io
from balr.data.items import (
    DatasetItem,
    check_unique_ids,
    read_csv_items,
    scan_directory,
    sorted_by_id,
)
from balr.data.kaldi import read_kaldi_data_dir
from balr.data.ledger import LedgerRow, records_folder
from balr.data.lookup import VectorLookup
from balr.data.validation import BadVector
from balr.data.vectors import VECTOR_FORMATS, check_kind
from balr.data.writers import VectorWriter, open_vector_writer
from balr.distributed import rank, world_size
from balr.errors import DataError

WRITE_FORMATS = (*VECTOR_FORMATS, "store")
CHECK_CHUNK = 65536  # vectors read at once by `with_valid_vector`


@dataclass(frozen=True)
class DatasetReading:
    """How a job reads its dataset, besides the vectors' folder: the extensions scanned in a
    directory (`--audio-formats`, empty: all) and the start of a CSV's relative paths
    (`--root-dir`)."""

    audio_formats: tuple[str, ...] = ()
    root_dir: Path | None = None

    def open(
        self,
        path: str | os.PathLike,
        vectors_dir: str | os.PathLike | None = None,
        vector_format: str = "txt",
    ) -> AudioDataset:
        """The dataset at `path` read this way, its vectors under `vectors_dir` (None: beside
        the audio) in `vector_format` (`AudioDataset.from_path`)."""
        return AudioDataset.from_path(
            path,
            self.audio_formats,
            output_dir=vectors_dir,
            vector_format=vector_format,
            root_dir=self.root_dir,
        )


class AudioDataset(torch.utils.data.Dataset):
    """Items with lazy audio and vectors; see `balr.data.lookup` for where vectors live.

    `root` anchors relative paths and sidecars; `source` is what the dataset was read from
    (the CSV, directory or audio file given to `from_path`; default: `root`), for messages;
    `tree_root` is the folder whose tree `output_dir` mirrors (default: the deepest folder
    holding every item's audio).
    """

    def __init__(
        self,
        items: Sequence[DatasetItem],
        root: str | os.PathLike,
        output_dir: str | os.PathLike | None = None,
        vector_format: str = "txt",
        source: str | os.PathLike | None = None,
        tree_root: str | os.PathLike | None = None,
    ):
        if vector_format not in WRITE_FORMATS:
            raise DataError(f"vector format '{vector_format}': expected one of {WRITE_FORMATS}")
        self.items = list(items)
        self.root = Path(root)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.vector_format = vector_format
        self.source = Path(source) if source is not None else self.root
        self._index: dict[str, int] | None = None
        self._vectors = VectorLookup(
            self.items,
            self.root,
            self.output_dir,
            vector_format,
            Path(tree_root) if tree_root is not None else None,
            self.source,
        )
        check_unique_ids(self.items, self.source)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike,
        audio_formats: Sequence[str] | None = None,
        output_dir: str | os.PathLike | None = None,
        vector_format: str = "txt",
        root_dir: str | os.PathLike | None = None,
    ) -> AudioDataset:
        """Build from an audio file, a directory, a CSV or a Kaldi data dir (wav.scp); items
        sorted by id. A CSV's relative paths are below `root_dir` (`--root-dir`; default: the
        CSV's folder). Ids: the file's stem; in a directory the path relative to it with its
        extension (`spk1/utt1.wav`); in a CSV the `id` cell, else the `audio` cell as written;
        in a Kaldi dir the utterance id."""
        path = Path(path)
        formats = tuple(f.lower().lstrip(".") for f in (audio_formats or audio_io.AUDIO_EXTENSIONS))
        kwargs = {"output_dir": output_dir, "vector_format": vector_format, "source": path}
        if path.is_dir():
            if (path / "wav.scp").is_file():
                return cls(sorted_by_id(read_kaldi_data_dir(path)), path, **kwargs)
            return cls(scan_directory(path, formats), path, **kwargs)
        if not path.exists():
            raise DataError(f"{path}: no such file or directory")
        if path.suffix.lower() in (".csv", ".tsv"):
            root = Path(root_dir) if root_dir is not None else path.parent
            return cls(sorted_by_id(read_csv_items(path, root)), root, **kwargs)
        if path.suffix.lower().lstrip(".") in formats:
            return cls([DatasetItem(id=path.stem, audio=path)], path.parent, **kwargs)
        raise DataError(
            f"{path}: not a dataset (expected a directory, a .csv, a Kaldi data dir or audio "
            f"with extension {', '.join(formats)})"
        )

    # ------------------------------------------------------------------ basic access
    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> DatasetItem:
        return self.items[index]

    def __iter__(self) -> Iterator[DatasetItem]:
        return iter(self.items)

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    @property
    def speakers(self) -> list[str | None]:
        return [item.speaker for item in self.items]

    def index_of(self, item_id: str) -> int:
        """Position of `item_id` (DataError naming it when absent)."""
        if self._index is None:
            self._index = {item.id: i for i, item in enumerate(self.items)}
        try:
            return self._index[item_id]
        except KeyError:
            raise DataError(f"unknown id '{item_id}' (not in dataset {self.root})") from None

    def subset(self, indices: Sequence[int]) -> AudioDataset:
        """A dataset of the given items, sharing root, output dir, format and the output
        tree (vectors go where this dataset puts them)."""
        items = [self.items[i] for i in indices]
        return AudioDataset(
            items,
            self.root,
            self.output_dir,
            self.vector_format,
            self.source,
            self._vectors.tree_root if self.output_dir is not None else None,
        )

    def shard(self) -> AudioDataset:
        """This process's share of the items under torchrun (rank::world_size); the whole
        dataset's vector paths are checked first (`check_vector_paths`)."""
        if world_size() == 1:
            return self
        self.check_vector_paths()
        return self.subset(range(rank(), len(self), world_size()))

    def load_audio(self, index: int, sample_rate: int | None = 16000, **kwargs) -> np.ndarray:
        """Decode the item's audio (AudioError naming the file when it is unusable)."""
        item = self.items[index]
        if item.audio is None:
            raise DataError(f"item '{item.id}' has no audio file")
        return audio_io.load_audio(item.audio, sample_rate, **kwargs)

    # ------------------------------------------------------------------ vectors
    def sidecar_path(self, index: int, kind: str, fmt: str | None = None) -> Path:
        """Where the item's sidecar vector is written (output dir mirrors the audio tree)."""
        return self._vectors.sidecar_path(index, kind, fmt)

    def check_vector_paths(self) -> None:
        """DataError naming two items that would share a vector file (run before any sidecar
        is read or written; a store dataset keys vectors by id and only skips such items'
        sidecars)."""
        self._vectors.check_vector_paths()

    def store_base(self, kind: str) -> Path:
        """Path without suffix of the store this dataset writes for `kind` (e.g. embeddings)."""
        return self._vectors.store_base(check_kind(kind))

    def has_vector(self, index: int, kind: str) -> bool:
        """Whether the item has a vector of this kind, without loading it."""
        return self._vectors.locate(index, kind) is not None

    def vector_record(self, index: int, kind: str) -> LedgerRow | None:
        """The latest ledger row of the item's `kind` vector (`balr.data.ledger`), if any."""
        return self._vectors.ledger.row(check_kind(kind), self.items[index].id)

    def restamped_records(self, kind: str) -> dict[str, LedgerRow]:
        """Ledger rows (by id) of vectors found unchanged by content after their source's
        modification time changed, with the new stamp (`balr.data.ledger.LedgerView`)."""
        return self._vectors.ledger.restamped(check_kind(kind))

    def records_folder(self) -> Path:
        """Where jobs on this dataset write their run records and vectors ledger."""
        return records_folder(self.output_dir, self.root)

    def vector_files(self, index: int, kind: str) -> list[Path]:
        """The files the item's `kind` vector is read from: its sidecar, or its store's
        array and id index (empty when it has none); the audit record hashes them."""
        found = self._vectors.locate(index, kind)
        if found is None or isinstance(found, str | os.PathLike):
            return [] if found is None else [Path(found)]
        index_file = found.source.with_suffix(
            ".ids.txt" if found.source.suffix == ".npy" else ".ids"
        )
        return [found.source, *([index_file] if index_file.is_file() else [])]

    def get_vector(self, index: int, kind: str) -> np.ndarray | None:
        """The item's vector (`emb`: 1-D float32; `ba`: `(K, 2)` counts), or None."""
        return self._vectors.read(index, kind)

    def stack_vectors(
        self,
        kind: str,
        indices: Sequence[int] | None = None,
        bad: list[BadVector] | None = None,
        prefer_shape: tuple[int, ...] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`(indices that have a valid vector, stacked vectors)`; missing items are logged.
        A bad vector (not finite, BA values not counts or bits, a shape other than most
        vectors', `prefer_shape` on a tie) raises DataError naming its file; batch jobs pass
        a `bad` list instead, which collects such items (logged, left out)."""
        return self._vectors.stack(kind, indices, bad, prefer_shape)

    def with_valid_vector(self, kind: str, bad: list[BadVector]) -> np.ndarray:
        """Indices of the items whose `kind` vector exists and passes the checks of
        `stack_vectors` (read `CHECK_CHUNK` items at a time); bad ones go to `bad`."""
        have = [i for i in range(len(self)) if self.has_vector(i, kind)]
        found = [np.zeros(0, np.int64)]
        for start in range(0, len(have), CHECK_CHUNK):
            found.append(self.stack_vectors(kind, have[start : start + CHECK_CHUNK], bad)[0])
        return np.concatenate(found)

    @contextmanager
    def vector_writer(self, kind: str, save: bool = True) -> Iterator[VectorWriter]:
        """Context manager whose `put(index, vector)` saves vectors crash-safely (or, when
        not `save`, discards them: `--no-save-output`)."""
        writer = open_vector_writer(self._vectors, check_kind(kind), save)
        try:
            yield writer
        finally:
            writer.close()
            self._vectors.forget_stores(kind)

    def save_vectors(
        self, kind: str, indices: Sequence[int], vectors: Sequence[np.ndarray]
    ) -> None:
        """Save several vectors at once (atomic per file / per store)."""
        with self.vector_writer(kind) as writer:
            for index, vector in zip(indices, vectors, strict=True):
                writer.put(int(index), vector)
