"""The two ways a dataset's vectors are saved, both crash-safe: one file per item
(`SidecarWriter`) or one store for the whole dataset (`StoreWriter`)."""

from __future__ import annotations

import numpy as np

from balr.data.lookup import VectorLookup
from balr.data.vectors import VectorStoreWriter, write_vector
from balr.distributed import rank, world_size


class VectorWriter:
    """Saves vectors of one kind by item index; `close()` finishes the job."""

    location = ""  # where the vectors go, in words (for messages)

    def put(self, index: int, vector: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to finish for per-file writers."""


class SidecarWriter(VectorWriter):
    """One atomic file per item (explicit CSV path if given, else the sidecar location);
    a dataset in which two items would write one file is refused before anything is written,
    and a vectors folder records the folder whose tree it mirrors (`audio_root.txt`)."""

    def __init__(self, lookup: VectorLookup, kind: str):
        lookup.check_vector_paths()
        lookup.record_tree_root()
        self.lookup, self.kind = lookup, kind
        folder = lookup.output_dir
        self.location = f"files under {folder}" if folder else "files beside the audio"

    def put(self, index: int, vector: np.ndarray) -> None:
        explicit = self.lookup.items[index].explicit_vector(self.kind)
        write_vector(explicit or self.lookup.sidecar_path(index, self.kind), vector)


class StoreWriter(VectorWriter):
    """Append to the dataset's store; under torchrun each rank writes its own shard."""

    def __init__(self, lookup: VectorLookup, kind: str):
        base = lookup.store_base(kind)
        if world_size() > 1:
            base = base.with_name(f"{base.name}.rank{rank()}")
        self.items = lookup.items
        self.writer = VectorStoreWriter(base)
        self.location = f"the store {base}.npy"

    def put(self, index: int, vector: np.ndarray) -> None:
        self.writer.put(self.items[index].id, vector)

    def close(self) -> None:
        self.writer.close()


class DiscardingWriter(VectorWriter):
    """Writes none of the vectors it is given (`--no-save-output`)."""

    location = "nowhere (--no-save-output)"

    def put(self, index: int, vector: np.ndarray) -> None:
        pass


def open_vector_writer(lookup: VectorLookup, kind: str, save: bool = True) -> VectorWriter:
    """A store writer for `vector_format="store"` datasets, else a sidecar writer; one that
    writes nothing when not `save`."""
    if not save:
        return DiscardingWriter()
    if lookup.vector_format == "store":
        return StoreWriter(lookup, kind)
    return SidecarWriter(lookup, kind)
