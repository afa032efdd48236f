"""Where a dataset's vectors are on disk, and reading them back one by one or stacked.

An item's vector of kind `emb` or `ba` is looked for in three places: the path its CSV row
gives, the dataset's single-file vector stores (`embeddings.npy` + `embeddings.ids.txt`,
their rank shards and unfinished parts, in `output_dir` and the dataset root; later writes
win), and sidecar files (`utt_emb.txt` beside `utt.wav`, or under `output_dir` mirroring
the audio tree). `vector_format` is the sidecar format looked for first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from balr.data.items import DatasetItem
from balr.data.vectors import (
    VECTOR_FORMATS,
    VECTOR_KINDS,
    VectorStore,
    as_ba_counts,
    bits_to_counts,
    check_kind,
    open_store_family,
    read_vector,
)
from balr.errors import DataError

logger = logging.getLogger(__name__)


class VectorLookup:
    """Finds and reads the vectors of `items` (a dataset rooted at `root`)."""

    def __init__(
        self,
        items: Sequence[DatasetItem],
        root: Path,
        output_dir: Path | None,
        vector_format: str,
    ):
        self.items = items
        self.root = root
        self.output_dir = output_dir
        self.vector_format = vector_format
        self._stores: dict[str, list[VectorStore]] = {}

    # ------------------------------------------------------------------ locations
    def sidecar_path(self, index: int, kind: str, fmt: str | None = None) -> Path:
        """Where the item's sidecar vector is written (output dir mirrors the audio tree)."""
        check_kind(kind)
        fmt = fmt or self._sidecar_format()
        base = self._sidecar_base(index, self.output_dir)
        return base.with_name(f"{base.name}_{kind}.{fmt}")

    def store_base(self, kind: str) -> Path:
        """Path (without suffix) of the store this dataset writes for `kind`."""
        return (self.output_dir or self.root) / VECTOR_KINDS[kind]

    def stores(self, kind: str) -> list[VectorStore]:
        """Every non-empty store of `kind` in the root and output dir, oldest first (cached)."""
        if kind not in self._stores:
            stores: list[VectorStore] = []
            for folder in dict.fromkeys(d for d in (self.root, self.output_dir) if d is not None):
                stores.extend(open_store_family(folder / VECTOR_KINDS[kind]))
            self._stores[kind] = stores
        return self._stores[kind]

    def forget_stores(self, kind: str) -> None:
        """Reopen the stores on the next read (after they were written)."""
        self._stores.pop(kind, None)

    def locate(self, index: int, kind: str) -> Path | VectorStore | None:
        """Explicit path, then stores (newest first), then sidecars (output dir first)."""
        explicit = self._explicit_file(index, check_kind(kind))
        if explicit is not None:
            return explicit
        item_id = self.items[index].id
        for store in reversed(self.stores(kind)):
            if item_id in store:
                return store
        return self._find_sidecar(index, kind)

    # ------------------------------------------------------------------ reading
    def read(self, index: int, kind: str) -> np.ndarray | None:
        """The item's vector (`emb`: 1-D float32; `ba`: `(K, 2)` counts), or None."""
        found = self.locate(index, kind)
        if found is None:
            return None
        if isinstance(found, VectorStore):
            return _as_kind(found.get(self.items[index].id), kind, str(found.source))
        return _as_kind(read_vector(found), kind, str(found))

    def stack(self, kind: str, indices: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
        """`(indices that have the vector, stacked vectors)`; missing items are logged.

        Store rows are gathered as whole arrays (newest store first: later writes win);
        only items left over are looked up as sidecar files, one by one.
        """
        indices = (
            np.arange(len(self.items)) if indices is None else np.asarray(indices, dtype=np.int64)
        )
        ids = [self.items[i].id for i in indices]
        parts: list[tuple[np.ndarray, np.ndarray]] = []  # (positions in `indices`, rows)
        todo = np.arange(len(indices))
        for store in reversed(self.stores(check_kind(kind))):
            hit = np.fromiter((ids[t] in store.index for t in todo), bool, count=len(todo))
            if hit.any():
                rows = store.gather([ids[t] for t in todo[hit]])
                if kind == "ba" and rows.ndim == 2:  # stored as bits
                    rows = bits_to_counts(rows)
                parts.append((todo[hit], rows))
            todo = todo[~hit]
        sidecars = [(t, self._read_file(int(indices[t]), kind)) for t in todo]
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

    # ------------------------------------------------------------------ internals
    def _sidecar_format(self) -> str:
        """The sidecar format written (and looked for first); `npy` for store datasets."""
        return self.vector_format if self.vector_format in VECTOR_FORMATS else "npy"

    def _sidecar_base(self, index: int, base_dir: Path | None) -> Path:
        """Sidecar path without `_kind.fmt`: beside the audio, or mirrored under `base_dir`."""
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

    def _explicit_file(self, index: int, kind: str) -> Path | None:
        explicit = self.items[index].explicit_vector(kind)
        return Path(explicit) if explicit is not None and Path(explicit).is_file() else None

    def _find_sidecar(self, index: int, kind: str) -> Path | None:
        preferred = self._sidecar_format()
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

    def _read_file(self, index: int, kind: str) -> np.ndarray | None:
        """The vector of the item's explicit or sidecar file (stores not consulted)."""
        path = self._explicit_file(index, kind) or self._find_sidecar(index, kind)
        return None if path is None else _as_kind(read_vector(path), kind, str(path))


def _as_kind(vector: np.ndarray, kind: str, source: str) -> np.ndarray:
    """An embedding as float32, a BA vector as `(K, 2)` counts."""
    return as_ba_counts(vector, source) if kind == "ba" else np.asarray(vector, np.float32)


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
