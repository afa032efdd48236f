"""The two ways a dataset's vectors are saved, both crash-safe: one file per item
(`SidecarWriter`) or one store for the whole dataset (`StoreWriter`). Each vector saved
with what it was made from adds a row to the ledger of the records folder
(`balr.data.ledger`), after the vector is on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from balr.data.ledger import REMOVED, LedgerWriter, MadeFrom, records_folder, vector_digest
from balr.data.lookup import VectorLookup
from balr.data.vectors import VectorStoreWriter, write_vector
from balr.distributed import rank, world_size


class VectorWriter:
    """Saves vectors of one kind by item index; `close()` finishes the job."""

    location = ""  # where the vectors go, in words (for messages)
    ledger: LedgerWriter | None = None
    items: list = []

    def put(self, index: int, vector: np.ndarray, made_from: MadeFrom | None = None) -> None:
        raise NotImplementedError

    def remove(self, index: int) -> None:
        """Remove the item's saved vector (its input is no longer valid), and record it."""

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()

    def _record(self, index: int, at: str, vector: np.ndarray | None, made_from) -> None:
        digest = vector_digest(vector) if vector is not None else ""
        self.ledger.add(self.items[index].id, at, made_from, digest)


class SidecarWriter(VectorWriter):
    """One atomic file per item (explicit CSV path if given, else the sidecar location);
    a dataset in which two items would write one file is refused before anything is written,
    and a vectors folder records the folder whose tree it mirrors (`audio_root.txt`)."""

    def __init__(self, lookup: VectorLookup, kind: str):
        lookup.check_vector_paths()
        lookup.record_tree_root()
        self.lookup, self.kind, self.items = lookup, kind, lookup.items
        folder = lookup.output_dir
        self.location = f"files under {folder}" if folder else "files beside the audio"
        self.ledger = LedgerWriter(records_folder(folder, lookup.root), kind)

    def put(self, index: int, vector: np.ndarray, made_from: MadeFrom | None = None) -> None:
        path = self._path(index)
        write_vector(path, vector)
        self._record(index, os.path.abspath(path), vector, made_from)

    def remove(self, index: int) -> None:
        """Delete the item's vector file in every format, then record the removal (when
        there was a vector to remove)."""
        if self.lookup.locate(index, self.kind) is None:
            return
        path = self._path(index)
        explicit = self.lookup.items[index].explicit_vector(self.kind) is not None
        for suffix in [path.suffix] if explicit else [".txt", ".npy", ".pkl"]:
            path.with_suffix(suffix).unlink(missing_ok=True)
        self._record(index, REMOVED, None, None)

    def _path(self, index: int) -> Path:
        explicit = self.lookup.items[index].explicit_vector(self.kind)
        return Path(explicit or self.lookup.sidecar_path(index, self.kind))


class StoreWriter(VectorWriter):
    """Append to the dataset's store; under torchrun each rank writes its own shard."""

    def __init__(self, lookup: VectorLookup, kind: str):
        base = lookup.store_base(kind)
        if world_size() > 1:
            base = base.with_name(f"{base.name}.rank{rank()}")
        self.items, self.lookup, self.kind = lookup.items, lookup, kind
        self.writer = VectorStoreWriter(base)
        self.location = f"the store {base}.npy"
        self.key = os.path.abspath(f"{base}.npy")
        self.ledger = LedgerWriter(records_folder(lookup.output_dir, lookup.root), kind)

    def put(self, index: int, vector: np.ndarray, made_from: MadeFrom | None = None) -> None:
        self.writer.put(self.items[index].id, vector)
        self._record(index, self.key, vector, made_from)

    def remove(self, index: int) -> None:
        """Record the removal (when there was a vector): readers no longer take the item's
        row from any store."""
        if self.lookup.locate(index, self.kind) is not None:
            self._record(index, REMOVED, None, None)

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            super().close()


class DiscardingWriter(VectorWriter):
    """Writes none of the vectors it is given (`--no-save-output`)."""

    location = "nowhere (--no-save-output)"

    def put(self, index: int, vector: np.ndarray, made_from: MadeFrom | None = None) -> None:
        pass


def open_vector_writer(lookup: VectorLookup, kind: str, save: bool = True) -> VectorWriter:
    """A store writer for `vector_format="store"` datasets, else a sidecar writer; one that
    writes nothing when not `save`."""
    if not save:
        return DiscardingWriter()
    if lookup.vector_format == "store":
        return StoreWriter(lookup, kind)
    return SidecarWriter(lookup, kind)
