"""Vector files: per-recording sidecars (`.txt`, `.npy`, `.pkl`) and single-file stores.

Sidecars sit beside the audio (`utt.wav` -> `utt_emb.txt`, `utt_ba.txt`). For large sets a
*vector store* keeps every vector in one `.npy` array plus an id index (`NAME.ids.txt`),
memory-mapped on read, so a million vectors load in seconds. A store is written
append-only to `NAME.partial.bin` / `NAME.partial.ids` while a job runs (a crash loses
nothing already appended) and turned into `NAME.npy` when the writer closes.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from balr.errors import DataError
from balr.fileio import WriterLock, atomic_path

VECTOR_FORMATS = ("txt", "npy", "pkl")
VECTOR_KINDS = {"emb": "embeddings", "ba": "binary_attributes"}


def check_kind(kind: str) -> str:
    if kind not in VECTOR_KINDS:
        raise DataError(f"unknown vector kind '{kind}' (expected one of {sorted(VECTOR_KINDS)})")
    return kind


# ----------------------------------------------------------------------------- sidecars


def _storage_from_bytes(data: bytes):
    """A tensor storage from the bytes torch pickles it as (a `torch.save` archive), read with
    `weights_only=True`: torch's own `_load_from_bytes` would unpickle them unrestricted."""
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


class VectorUnpickler(pickle.Unpickler):
    """Rebuilds exactly numpy arrays and torch tensors (the reference BA-LR library pickles
    vectors with protocol 5); any other callable named in the file is refused before it is
    looked up, so unpickling never runs code from the file."""

    _NUMPY = {
        (f"numpy.{core}.{module}", name)
        for core in ("core", "_core")
        for module, name in (
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
            ("numeric", "_frombuffer"),
        )
    } | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
    _TORCH = {
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_tensor"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _storage_from_bytes
        allowed = (module, name) in self._NUMPY | self._TORCH
        if allowed or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} (only numpy arrays and torch tensors)"
        )


def read_pickled_vector(path: Path) -> np.ndarray:
    """A `.pkl` vector (numpy array or torch tensor) as a numpy array, restricted unpickling."""
    with open(path, "rb") as f:
        value = VectorUnpickler(io.BufferedReader(f)).load()
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise DataError(
            f"{path}: pickle holds a {type(value).__name__}, not a numpy array or torch tensor"
        )
    return value


def read_vector(path: str | os.PathLike) -> np.ndarray:
    """Read one vector file (`.txt` numpy text, `.npy`, or `.pkl` holding a numpy array or a
    torch tensor, as the reference BA-LR library writes them)."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    try:
        if suffix == "txt":
            return np.loadtxt(path, dtype=np.float32, ndmin=1)
        if suffix == "npy":
            return np.load(path, allow_pickle=False)
        if suffix == "pkl":
            return read_pickled_vector(path)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read vector ({exc})") from None
    raise DataError(f"{path}: unknown vector format '.{suffix}' (expected {VECTOR_FORMATS})")


def write_vector(path: str | os.PathLike, vector: np.ndarray) -> None:
    """Write one vector file atomically; the format comes from the suffix."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    vector = np.asarray(vector)
    with atomic_path(path) as tmp:
        if suffix == "txt":
            fmt = "%d" if np.issubdtype(vector.dtype, np.integer) else "%.8g"
            np.savetxt(tmp, vector, fmt=fmt)
        elif suffix == "npy":
            with open(tmp, "wb") as f:
                np.save(f, vector, allow_pickle=False)
        elif suffix == "pkl":
            with open(tmp, "wb") as f:
                pickle.dump(np.ascontiguousarray(vector), f, protocol=4)
        else:
            raise DataError(
                f"{path}: unknown vector format '.{suffix}' (expected {VECTOR_FORMATS})"
            )


def bits_to_counts(bits: np.ndarray) -> np.ndarray:
    """Bits `b` (any shape, any dtype) as counts `[b, 1 - b]` on a new last axis of size 2:
    one recording's `(activations, non-activations)` per attribute. The one place that
    defines this conversion; sums of such arrays are the statistics of several recordings."""
    bits = np.asarray(bits)
    return np.stack([bits, 1 - bits], axis=-1)


def counts_to_bits(counts: np.ndarray) -> np.ndarray:
    """Inverse of `bits_to_counts` for single recordings: the activation column."""
    return np.asarray(counts)[..., 0]


def as_ba_counts(vector: np.ndarray, source: str = "") -> np.ndarray:
    """Normalise a BA vector to `(K, 2)` counts `[activations, non-activations]`.

    A 1-D vector of bits `b` becomes `[b, 1 - b]`.
    """
    vector = np.asarray(vector)
    if vector.ndim == 1:
        return bits_to_counts(vector)
    if vector.ndim == 2 and vector.shape[1] == 2:
        return vector
    raise DataError(f"{source or 'BA vector'}: expected shape (K, 2) or (K,), got {vector.shape}")


# ----------------------------------------------------------------------------- stores


def store_paths(base: str | os.PathLike) -> dict[str, Path]:
    """File names of the store `base` (a path without suffix, e.g. `out/embeddings`)."""
    base = Path(base)
    return {
        "array": base.with_name(base.name + ".npy"),
        "ids": base.with_name(base.name + ".ids.txt"),
        "partial": base.with_name(base.name + ".partial.bin"),
        "partial_ids": base.with_name(base.name + ".partial.ids"),
        "partial_meta": base.with_name(base.name + ".partial.json"),
    }


class VectorStore:
    """Read-only view of one store: `ids` and a memory-mapped `(N, ...)` array."""

    def __init__(self, ids: list[str], array: np.ndarray, source: Path):
        if len(ids) != len(array):
            raise DataError(f"{source}: {len(ids)} ids for {len(array)} vectors")
        self.ids = ids
        self.array = array
        self.source = source
        self._index: dict[str, int] | None = None

    @property
    def index(self) -> dict[str, int]:
        """id -> row (the last row wins when an id was written twice)."""
        if self._index is None:
            self._index = dict(zip(self.ids, range(len(self.ids)), strict=True))
        return self._index

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.index

    def get(self, item_id: str) -> np.ndarray | None:
        row = self.index.get(item_id)
        return None if row is None else np.asarray(self.array[row])

    def gather(self, item_ids: Sequence[str]) -> np.ndarray:
        """Rows for `item_ids` in order (DataError naming the first missing id)."""
        index = self.index
        try:
            rows = np.fromiter((index[i] for i in item_ids), dtype=np.int64, count=len(item_ids))
        except KeyError as exc:
            raise DataError(f"{self.source}: no vector for id {exc.args[0]!r}") from None
        return _take_rows(self.array, rows)

    @classmethod
    def open(cls, base: str | os.PathLike) -> VectorStore | None:
        """Open the finished store at `base` (None if absent)."""
        paths = store_paths(base)
        if not paths["array"].exists():
            return None
        if not paths["ids"].exists():
            raise DataError(f"{paths['array']}: id index {paths['ids'].name} is missing")
        array = np.load(paths["array"], mmap_mode="r", allow_pickle=False)
        return cls(_read_ids(paths["ids"]), array, paths["array"])

    @classmethod
    def open_partial(cls, base: str | os.PathLike) -> VectorStore | None:
        """Open the rows an unfinished (e.g. crashed) writer had appended (None if none)."""
        paths = store_paths(base)
        if not (paths["partial"].exists() and paths["partial_meta"].exists()):
            return None
        meta = json.loads(paths["partial_meta"].read_text())
        dtype, shape = np.dtype(meta["dtype"]), tuple(meta["shape"])
        row_bytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        ids = (
            _read_ids(paths["partial_ids"], complete_lines_only=True)
            if paths["partial_ids"].exists()
            else []
        )
        n_rows = min(len(ids), paths["partial"].stat().st_size // max(row_bytes, 1))
        if n_rows == 0:
            return cls([], np.zeros((0, *shape), dtype), paths["partial"])
        array = np.memmap(paths["partial"], dtype=dtype, mode="r", shape=(n_rows, *shape))
        return cls(ids[:n_rows], array, paths["partial"])


def open_store_family(base: str | os.PathLike) -> list[VectorStore]:
    """The store at `base`, its rank shards (`base.rankN`) and any unfinished parts."""
    base = Path(base)
    bases = [base] + sorted(
        base.with_name(p.name[: -len(".ids.txt")])
        for p in base.parent.glob(base.name + ".rank*.ids.txt")
    )
    bases += sorted(
        base.with_name(p.name[: -len(".partial.json")])
        for p in base.parent.glob(base.name + ".rank*.partial.json")
        if base.with_name(p.name[: -len(".partial.json")]) not in bases
    )
    stores = []
    for b in bases:
        for opener in (VectorStore.open, VectorStore.open_partial):
            store = opener(b)
            if store is not None and len(store):
                stores.append(store)
    return stores


class VectorStoreWriter:
    """Append vectors to a store; `close()` merges them into `NAME.npy` atomically.

    Rows go to `NAME.partial.bin` and ids to `NAME.partial.ids`, flushed per row, data
    before id, so after a crash every id on disk has its row. A new writer first merges
    such leftovers. Rewriting an id keeps its newest vector. One writer at a time: the
    writer holds `NAME.lock`, and a second process opening the same store gets a DataError.
    """

    def __init__(self, base: str | os.PathLike, flush_every: int = 1):
        self.base = Path(base)
        self.paths = store_paths(self.base)
        self.flush_every = flush_every
        self._data = None
        self._ids = None
        self._shape: tuple[int, ...] | None = None
        self._dtype: np.dtype | None = None
        self._pending = 0
        self.base.parent.mkdir(parents=True, exist_ok=True)
        self._lock = WriterLock(self.base.with_name(self.base.name + ".lock"), str(self.base))
        try:
            if self.paths["partial_meta"].exists():
                self._merge_partial()
        except BaseException:
            self._lock.release()
            raise

    def put(self, item_id: str, vector: np.ndarray) -> None:
        """Append one vector (all vectors of a store share one shape and dtype)."""
        if "\n" in item_id:
            raise DataError(f"id {item_id!r} contains a newline")
        vector = np.ascontiguousarray(vector)
        if self._data is None:
            self._start(vector)
        if vector.shape != self._shape:
            raise DataError(f"id {item_id}: vector shape {vector.shape}, store has {self._shape}")
        stored = vector.astype(self._dtype, copy=False)
        if np.issubdtype(self._dtype, np.integer) and not np.array_equal(stored, vector):
            raise DataError(
                f"id {item_id}: the store holds integer vectors ({self._dtype}); this one has "
                "values that are not integers (they would be truncated)"
            )
        self._data.write(stored.tobytes())
        self._data.flush()
        self._ids.write(item_id + "\n")
        self._pending += 1
        if self._pending >= self.flush_every:
            self._ids.flush()
            self._pending = 0

    def close(self) -> None:
        """Finish: merge the appended rows into the store file."""
        if self._data is not None:
            self._data.close()
            self._ids.close()
            self._data = self._ids = None
        try:
            if self.paths["partial_meta"].exists():
                self._merge_partial()
        finally:
            self._lock.release()

    def __enter__(self) -> VectorStoreWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self, vector: np.ndarray) -> None:
        self._shape, self._dtype = vector.shape, _store_dtype(vector.dtype)
        existing = VectorStore.open(self.base)
        if existing is not None and existing.array.shape[1:] != self._shape:
            raise DataError(
                f"{existing.source}: holds vectors of shape {existing.array.shape[1:]}, "
                f"cannot append shape {self._shape}"
            )
        meta = {"dtype": self._dtype.str, "shape": list(self._shape)}
        with atomic_path(self.paths["partial_meta"]) as tmp:
            tmp.write_text(json.dumps(meta))
        self._data = open(self.paths["partial"], "ab")
        self._ids = open(self.paths["partial_ids"], "a")

    def _merge_partial(self) -> None:
        stores = [
            s for s in (VectorStore.open(self.base), VectorStore.open_partial(self.base)) if s
        ]
        stores = [s for s in stores if len(s)]
        if stores:
            write_vector_store(self.base, *_merge_latest(stores))
        for key in ("partial", "partial_ids", "partial_meta"):
            self.paths[key].unlink(missing_ok=True)


def write_vector_store(
    base: str | os.PathLike, ids: Sequence[str], vectors: np.ndarray | Iterable[np.ndarray]
) -> None:
    """Write a complete store atomically (`base.npy` + `base.ids.txt`)."""
    paths = store_paths(base)
    ids = list(ids)
    if len(set(ids)) != len(ids):
        raise DataError(f"{paths['array']}: duplicate ids")
    array = vectors if isinstance(vectors, np.ndarray) else np.stack(list(vectors))
    if len(array) != len(ids):
        raise DataError(f"{paths['array']}: {len(ids)} ids for {len(array)} vectors")
    with atomic_path(paths["ids"]) as tmp_ids, atomic_path(paths["array"]) as tmp_array:
        out = np.lib.format.open_memmap(
            tmp_array, mode="w+", dtype=_store_dtype(array.dtype), shape=array.shape
        )
        for start in range(0, len(array), 65536):
            out[start : start + 65536] = array[start : start + 65536]
        out.flush()
        del out
        tmp_ids.write_text("".join(i + "\n" for i in ids))


def _merge_latest(stores: list[VectorStore]) -> tuple[list[str], np.ndarray]:
    """Concatenate stores, keeping only the last row written for each id."""
    ids = np.concatenate([np.asarray(s.ids, dtype=object) for s in stores])
    _, first_in_reversed = np.unique(ids[::-1], return_index=True)
    keep = np.sort(len(ids) - 1 - first_in_reversed)
    offsets = np.cumsum([0] + [len(s) for s in stores])
    parts = []
    for store, lo, hi in zip(stores, offsets[:-1], offsets[1:], strict=True):
        rows = keep[(keep >= lo) & (keep < hi)] - lo
        parts.append(_take_rows(store.array, rows))
    return ids[keep].tolist(), np.concatenate(parts)


def _take_rows(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Fancy-index a memmap with sorted access (fast on disk), returning rows in order."""
    if len(rows) == 0:
        return np.zeros((0, *array.shape[1:]), array.dtype)
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows), *array.shape[1:]), array.dtype)
    out[order] = array[rows[order]]
    return out


def _store_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if np.issubdtype(dtype, np.floating) else np.dtype(dtype)


def _read_ids(path: Path, complete_lines_only: bool = False) -> list[str]:
    """Ids one per line; `complete_lines_only` drops a last line cut short by a crash."""
    lines = path.read_text().split("\n")
    if complete_lines_only or lines[-1] == "":
        lines.pop()
    return lines
