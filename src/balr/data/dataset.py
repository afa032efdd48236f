"""Datasets of recordings: from one audio file, a directory, a CSV or a Kaldi data dir.

Items carry an id, an optional speaker, an optional audio path and optional explicit
vector paths. Audio and vectors load lazily. Vectors are found as sidecar files
(`utt_emb.txt` beside `utt.wav`, or under `output_dir` mirroring the audio tree) or in a
single-file vector store (`embeddings.npy` + `embeddings.ids.txt` in `output_dir` or the
dataset root); both forms are read transparently, and `vector_format` picks the one written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch.utils.data

from balr import audio as audio_io
from balr.data.vectors import (
    VECTOR_FORMATS,
    VECTOR_KINDS,
    VectorStore,
    VectorStoreWriter,
    as_ba_counts,
    check_kind,
    open_store_family,
    read_vector,
    write_vector,
)
from balr.distributed import rank, world_size
from balr.errors import DataError

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("id", "audio", "embedding", "binary_attributes", "speaker")
WRITE_FORMATS = (*VECTOR_FORMATS, "store")
_EXPLICIT_COLUMN = {"emb": "embedding", "ba": "binary_attributes"}


@dataclass(frozen=True)
class DatasetItem:
    """One recording: id, optional speaker, audio path and explicit vector paths."""

    id: str
    audio: Path | None = None
    speaker: str | None = None
    embedding: Path | None = None
    binary_attributes: Path | None = None


class AudioDataset(torch.utils.data.Dataset):
    """Items with lazy audio and vectors; see the module docstring for where vectors live."""

    def __init__(
        self,
        items: Sequence[DatasetItem],
        root: str | os.PathLike,
        output_dir: str | os.PathLike | None = None,
        vector_format: str = "txt",
    ):
        if vector_format not in WRITE_FORMATS:
            raise DataError(f"vector format '{vector_format}': expected one of {WRITE_FORMATS}")
        self.items = list(items)
        self.root = Path(root)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.vector_format = vector_format
        self._index: dict[str, int] | None = None
        self._stores: dict[str, list[VectorStore]] = {}
        _check_unique_ids(self.items, self.root)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike,
        audio_formats: Sequence[str] | None = None,
        output_dir: str | os.PathLike | None = None,
        vector_format: str = "txt",
    ) -> AudioDataset:
        """Build from an audio file, a directory, a CSV or a Kaldi data dir (wav.scp)."""
        path = Path(path)
        formats = tuple(f.lower().lstrip(".") for f in (audio_formats or audio_io.AUDIO_EXTENSIONS))
        kwargs = {"output_dir": output_dir, "vector_format": vector_format}
        if path.is_dir():
            if (path / "wav.scp").is_file():
                from balr.data.kaldi import read_kaldi_data_dir

                return cls(read_kaldi_data_dir(path), path, **kwargs)
            return cls(_scan_directory(path, formats), path, **kwargs)
        if not path.exists():
            raise DataError(f"{path}: no such file or directory")
        if path.suffix.lower() in (".csv", ".tsv"):
            return cls(_read_csv_items(path), path.parent, **kwargs)
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
        """A dataset of the given items, sharing root, output dir and format."""
        return AudioDataset(
            [self.items[i] for i in indices], self.root, self.output_dir, self.vector_format
        )

    def shard(self) -> AudioDataset:
        """This process's share of the items under torchrun (rank::world_size)."""
        return self.subset(range(rank(), len(self), world_size())) if world_size() > 1 else self

    def load_audio(self, index: int, sample_rate: int | None = 16000, **kwargs) -> np.ndarray:
        """Decode the item's audio (AudioError naming the file when it is unusable)."""
        item = self.items[index]
        if item.audio is None:
            raise DataError(f"item '{item.id}' has no audio file")
        return audio_io.load_audio(item.audio, sample_rate, **kwargs)

    # ------------------------------------------------------------------ vectors
    def sidecar_path(self, index: int, kind: str, fmt: str | None = None) -> Path:
        """Where the item's sidecar vector is written (output dir mirrors the audio tree)."""
        check_kind(kind)
        fmt = fmt or (self.vector_format if self.vector_format != "store" else "npy")
        base = self._sidecar_base(index, self.output_dir)
        return base.with_name(f"{base.name}_{kind}.{fmt}")

    def has_vector(self, index: int, kind: str) -> bool:
        """Whether the item has a vector of this kind, without loading it."""
        return self._locate(index, kind) is not None

    def get_vector(self, index: int, kind: str) -> np.ndarray | None:
        """The item's vector (`emb`: 1-D float32; `ba`: `(K, 2)` counts), or None."""
        found = self._locate(index, kind)
        if found is None:
            return None
        vector = (
            found.get(self.items[index].id)
            if isinstance(found, VectorStore)
            else read_vector(found)
        )
        if kind == "ba":
            return as_ba_counts(vector, str(getattr(found, "source", found)))
        return np.asarray(vector, dtype=np.float32)

    def stack_vectors(
        self, kind: str, indices: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`(indices that have the vector, stacked vectors)`; missing items are logged.

        Store rows are gathered as whole arrays (newest store first: later writes win);
        only items left over are looked up as sidecar files, one by one.
        """
        indices = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        ids = [self.items[i].id for i in indices]
        parts: list[tuple[np.ndarray, np.ndarray]] = []  # (positions in `indices`, rows)
        todo = np.arange(len(indices))
        for store in reversed(self._open_stores(check_kind(kind))):
            hit = np.fromiter((ids[t] in store.index for t in todo), bool, count=len(todo))
            if hit.any():
                rows = store.gather([ids[t] for t in todo[hit]])
                if kind == "ba" and rows.ndim == 2:  # stored as bits: make [b, 1 - b] counts
                    rows = np.stack([rows, 1 - rows], axis=-1)
                parts.append((todo[hit], rows))
            todo = todo[~hit]
        sidecars = [(t, self._read_sidecar(int(indices[t]), kind)) for t in todo]
        found = [(t, v) for t, v in sidecars if v is not None]
        if found:
            positions = np.array([t for t, _ in found], dtype=np.int64)
            parts.append(
                (positions, _stack_checked([v for _, v in found], [ids[t] for t in positions]))
            )
        missing = [t for t, v in sidecars if v is None]
        if missing:
            logger.warning(
                "%d of %d items have no %s vector (first: %s): skipped",
                len(missing),
                len(indices),
                VECTOR_KINDS[kind],
                ids[min(missing)],
            )
        if not parts:
            return np.zeros(0, np.int64), np.zeros((0,), np.float32)
        return indices[np.sort(np.concatenate([p for p, _ in parts]))], _merge_parts(parts, ids)

    @contextmanager
    def vector_writer(self, kind: str) -> Iterator[_VectorWriter]:
        """Context manager whose `put(index, vector)` saves vectors crash-safely."""
        check_kind(kind)
        if self.vector_format == "store":
            base = self._store_base(kind)
            if world_size() > 1:
                base = base.with_name(f"{base.name}.rank{rank()}")
            writer: _VectorWriter = _StoreWriter(self, VectorStoreWriter(base))
        else:
            writer = _SidecarWriter(self, kind)
        try:
            yield writer
        finally:
            writer.close()
            self._stores.pop(kind, None)

    def save_vectors(
        self, kind: str, indices: Sequence[int], vectors: Sequence[np.ndarray]
    ) -> None:
        """Save several vectors at once (atomic per file / per store)."""
        with self.vector_writer(kind) as writer:
            for index, vector in zip(indices, vectors, strict=True):
                writer.put(int(index), vector)

    # ------------------------------------------------------------------ internals
    def _sidecar_base(self, index: int, base_dir: Path | None) -> Path:
        item = self.items[index]
        if item.audio is not None:
            audio = Path(item.audio)
            if base_dir is None:
                return audio.with_suffix("")
            try:
                relative = audio.resolve().relative_to(self.root.resolve())
            except ValueError:
                relative = Path(audio.name)
            return (base_dir / relative).with_suffix("")
        return (base_dir or self.root) / item.id

    def _store_base(self, kind: str) -> Path:
        return (self.output_dir or self.root) / VECTOR_KINDS[kind]

    def _open_stores(self, kind: str) -> list[VectorStore]:
        if kind not in self._stores:
            stores: list[VectorStore] = []
            for folder in dict.fromkeys(d for d in (self.root, self.output_dir) if d is not None):
                stores.extend(open_store_family(folder / VECTOR_KINDS[kind]))
            self._stores[kind] = stores
        return self._stores[kind]

    def _locate(self, index: int, kind: str) -> Path | VectorStore | None:
        """Explicit path, then stores (newest first), then sidecars (output dir first)."""
        item = self.items[index]
        explicit = getattr(item, _EXPLICIT_COLUMN[check_kind(kind)])
        if explicit is not None and Path(explicit).is_file():
            return Path(explicit)
        for store in reversed(self._open_stores(kind)):
            if item.id in store:
                return store
        return self._find_sidecar(index, kind)

    def _find_sidecar(self, index: int, kind: str) -> Path | None:
        preferred = self.vector_format if self.vector_format in VECTOR_FORMATS else "npy"
        formats = (preferred, *(f for f in VECTOR_FORMATS if f != preferred))
        bases = [self._sidecar_base(index, self.output_dir)]
        if self.output_dir is not None:
            bases.append(self._sidecar_base(index, None))
        for base in bases:
            for fmt in formats:
                candidate = base.with_name(f"{base.name}_{kind}.{fmt}")
                if candidate.is_file():
                    return candidate
        return None

    def _read_sidecar(self, index: int, kind: str) -> np.ndarray | None:
        item = self.items[index]
        explicit = getattr(item, _EXPLICIT_COLUMN[kind])
        path = Path(explicit) if explicit is not None and Path(explicit).is_file() else None
        path = path or self._find_sidecar(index, kind)
        if path is None:
            return None
        vector = read_vector(path)
        return as_ba_counts(vector, str(path)) if kind == "ba" else vector.astype(np.float32)


class _VectorWriter:
    def put(self, index: int, vector: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to finish for per-file writers."""


class _SidecarWriter(_VectorWriter):
    """One atomic file per item (explicit CSV path if given, else the sidecar location)."""

    def __init__(self, dataset: AudioDataset, kind: str):
        self.dataset, self.kind = dataset, kind

    def put(self, index: int, vector: np.ndarray) -> None:
        explicit = getattr(self.dataset.items[index], _EXPLICIT_COLUMN[self.kind])
        target = (
            Path(explicit) if explicit is not None else self.dataset.sidecar_path(index, self.kind)
        )
        write_vector(target, vector)


class _StoreWriter(_VectorWriter):
    """Append to the dataset's single-file store."""

    def __init__(self, dataset: AudioDataset, writer: VectorStoreWriter):
        self.dataset, self.writer = dataset, writer

    def put(self, index: int, vector: np.ndarray) -> None:
        self.writer.put(self.dataset.items[index].id, vector)

    def close(self) -> None:
        self.writer.close()


# ---------------------------------------------------------------------- builders


def _scan_directory(root: Path, formats: Sequence[str]) -> list[DatasetItem]:
    """Audio files under `root` (recursive, sorted); id = relative path without suffix."""
    wanted = {f".{f}" for f in formats}
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix.lower() in wanted:
                items.append(
                    DatasetItem(id=path.relative_to(root).with_suffix("").as_posix(), audio=path)
                )
    if not items:
        raise DataError(f"{root}: no audio files with extension {', '.join(formats)}")
    return items


def _read_csv_items(path: Path) -> list[DatasetItem]:
    """Items from a CSV with columns among id, audio, embedding, binary_attributes, speaker."""
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from None
    columns = [c.strip() for c in frame.columns]
    frame.columns = columns
    if not set(columns) & set(CSV_COLUMNS):
        raise DataError(f"{path}: no known column (expected some of {', '.join(CSV_COLUMNS)})")
    if "audio" not in columns and "id" not in columns:
        raise DataError(f"{path}: an 'id' column is required when there is no 'audio' column")
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown:
        logger.warning("%s: ignoring unknown columns %s", path, unknown)

    def paths(column: str) -> list[Path | None]:
        if column not in columns:
            return [None] * len(frame)
        return [(path.parent / v) if v.strip() else None for v in frame[column].str.strip()]

    audio = paths("audio")
    if "id" in columns:
        ids = frame["id"].str.strip().tolist()
    else:
        ids = [Path(v).with_suffix("").as_posix() for v in frame["audio"].str.strip()]
    for row, item_id in enumerate(ids):
        if not item_id:
            raise DataError(f"{path}: row {row + 2} has an empty id")
    speakers = (
        frame["speaker"].str.strip().tolist() if "speaker" in columns else [None] * len(frame)
    )
    return [
        DatasetItem(id=i, audio=a, speaker=s or None, embedding=e, binary_attributes=b)
        for i, a, s, e, b in zip(
            ids, audio, speakers, paths("embedding"), paths("binary_attributes"), strict=True
        )
    ]


def _check_unique_ids(items: Sequence[DatasetItem], root: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise DataError(f"{root}: duplicate id '{item.id}'")
        seen.add(item.id)


def _merge_parts(parts: list[tuple[np.ndarray, np.ndarray]], ids: list[str]) -> np.ndarray:
    """Rows of every part placed in the order of their positions (all shapes must agree)."""
    shape = parts[0][1].shape[1:]
    for positions, rows in parts:
        if rows.shape[1:] != shape:
            raise DataError(
                f"item '{ids[positions[0]]}': vector shape {rows.shape[1:]} differs from {shape}"
            )
    if len(parts) == 1:
        return parts[0][1]
    positions = np.concatenate([p for p, _ in parts])
    out = np.empty((len(positions), *shape), dtype=np.result_type(*(r for _, r in parts)))
    out[np.argsort(np.argsort(positions, kind="stable"))] = np.concatenate([r for _, r in parts])
    return out


def _stack_checked(vectors: list[np.ndarray], ids: list[str]) -> np.ndarray:
    shape = vectors[0].shape
    for vector, item_id in zip(vectors, ids, strict=True):
        if vector.shape != shape:
            raise DataError(f"item '{item_id}': vector shape {vector.shape} differs from {shape}")
    return np.stack(vectors)
