"""Where a dataset's vectors are on disk, and reading them back one by one or stacked.

An item's vector of kind `emb` or `ba` is looked for in three places: the path its CSV row
gives, the dataset's single-file vector stores (`embeddings.npy` + `embeddings.ids.txt`,
their rank shards and unfinished parts, in `output_dir` and the dataset root; later writes
win), and sidecar files (`utt_emb.txt` beside `utt.wav`, or under `output_dir` mirroring
the tree below the deepest folder that holds every item's audio, as the reference library
does). `vector_format` is the sidecar format looked for first. Where the vectors ledger
(`balr.data.ledger`) names another copy of an item's vector as the newer one, that copy is
read (said once per read), and a vector whose source changed since it was made is refused.
Two items that would share a vector file (`a.wav` and `a.flac` in one folder) are refused
before any sidecar is read or written, naming both.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from balr.data.items import DatasetItem, describe_item
from balr.data.ledger import LedgerView, record_folders, store_location
from balr.data.tree import common_folder, mirrored_path, shared_paths
from balr.data.validation import (
    BadVector,
    bad_rows,
    describe_bad,
    majority_shape,
    vector_problem,
)
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
from balr.fileio import atomic_write_text

logger = logging.getLogger(__name__)

#: the file of a vectors folder (`--save-dir`) naming the folder whose tree it mirrors
TREE_RECORD = "audio_root.txt"


class VectorLookup:
    """Finds and reads the vectors of `items` (a dataset rooted at `root`)."""

    def __init__(
        self,
        items: Sequence[DatasetItem],
        root: Path,
        output_dir: Path | None,
        vector_format: str,
        tree_root: Path | None = None,
        source: Path | None = None,
    ):
        self.items = items
        self.root = root
        self.output_dir = output_dir
        self.vector_format = vector_format
        self.source = source or root
        self._tree_root = tree_root
        self._stores: dict[str, list[VectorStore]] = {}
        self._shared_sidecars: set[int] | None = None  # items sharing a file (stores only)
        self.ledger = LedgerView(record_folders(output_dir, root)[:2])

    # ------------------------------------------------------------------ locations
    @property
    def tree_root(self) -> Path:
        """The folder whose tree `output_dir` mirrors: the one named in its `audio_root.txt`
        (written with its first vectors), else the deepest folder holding every item's audio
        (absolute, `..` removed, links not followed); the root when no item has audio."""
        if self._tree_root is None:
            common = self._common_audio_folder()
            recorded = self._recorded_tree_root() if common is not None else None
            if recorded is not None and not _is_within(common, recorded):
                raise DataError(
                    f"{self.output_dir}: its vectors mirror the folder {recorded} (named in "
                    f"{TREE_RECORD}), but {self.source} has recordings outside it (below "
                    f"{common}); give another folder for its vectors, or one dataset holding "
                    f"all the recordings (delete {TREE_RECORD} if the recordings moved)"
                )
            self._tree_root = recorded or common or Path(_absolute(self.root))
        return self._tree_root

    def record_tree_root(self) -> None:
        """Name `tree_root` in `output_dir/audio_root.txt` (once), so that a later dataset of
        some of the recordings (a split, a torchrun shard) finds their vectors where they are,
        and one of other recordings is refused instead of mixing two trees."""
        if self.output_dir is None or not any(item.audio for item in self.items):
            return
        record = self.output_dir / TREE_RECORD
        if not record.is_file():
            self.output_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(record, f"{self.tree_root}\n")

    def _common_audio_folder(self) -> Path | None:
        audio = (item.audio for item in self.items if item.audio)
        return common_folder(audio, self.source, why=", so --save-dir cannot mirror their tree")

    def _recorded_tree_root(self) -> Path | None:
        record = self.output_dir / TREE_RECORD if self.output_dir is not None else None
        if record is None or not record.is_file():
            return None
        return Path(record.read_text(encoding="utf-8").strip())

    def sidecar_path(self, index: int, kind: str, fmt: str | None = None) -> Path:
        """Where the item's sidecar vector is written (output dir mirrors the audio tree)."""
        check_kind(kind)
        self.check_vector_paths()
        return self._sidecar_path(index, kind, fmt or self._sidecar_format())

    def check_vector_paths(self) -> None:
        """DataError naming two items that would write or read one vector file (a sidecar,
        or an explicit CSV path); checked once, before the first sidecar is used. A store
        dataset keys its vectors by id: there such items are allowed, but never read from
        the sidecar they would share."""
        if self._shared_sidecars is not None:
            return
        fmt = self._sidecar_format()
        shared: set[int] = set()
        bases: list[str | None] = [None] * len(self.items)  # sidecar path less `_kind.fmt`

        def targets(kind: str) -> Iterator[str]:
            for index, item in enumerate(self.items):
                explicit = item.explicit_vector(kind)
                if explicit is not None:
                    yield _absolute(explicit)
                    continue
                if bases[index] is None:
                    bases[index] = _absolute(self._sidecar_base(index, self.output_dir))
                yield f"{bases[index]}_{kind}.{fmt}"

        for kind in VECTOR_KINDS:
            for first, index, target in shared_paths(targets(kind)):
                if self.vector_format != "store":
                    self._refuse_shared_path(first, index, target)
                shared.update((first, index))
        self._shared_sidecars = shared

    def _refuse_shared_path(self, first: int, second: int, path: str) -> None:
        a, b = self.items[first], self.items[second]
        raise DataError(
            f"{self.source}: items '{a.id}' ({describe_item(a)}) and '{b.id}' "
            f"({describe_item(b)}) would share the vector file {path}; rename or move one "
            "of them (vector files are named after the audio file without its extension)"
        )

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
        """Reopen the stores (and the ledger) on the next read (after they were written)."""
        self._stores.pop(kind, None)
        self.ledger.forget(kind)

    def locate(self, index: int, kind: str) -> Path | VectorStore | None:
        """Explicit path, then stores (newest first), then sidecars (output dir first)."""
        explicit = self._explicit_file(index, check_kind(kind))
        if explicit is not None:
            return explicit
        item_id = self.items[index].id
        for store in reversed(self.stores(kind)):
            if item_id in store and self._store_is_current(kind, item_id, store):
                return store
        found = self._find_sidecar(index, kind)
        return None if found and self.ledger.removed_after(kind, item_id, found) else found

    def _store_is_current(self, kind: str, item_id: str, store: VectorStore) -> bool:
        """Whether the store's copy of the item may be read (see `LedgerView.is_current`)."""
        return self.ledger.is_current(kind, item_id, store_location(store.source))

    # ------------------------------------------------------------------ reading
    def read(self, index: int, kind: str) -> np.ndarray | None:
        """The item's vector (`emb`: 1-D float32; `ba`: `(K, 2)` counts), or None; DataError
        naming the file (or store and id) when the vector is not valid."""
        found = self.locate(index, kind)
        if found is None:
            return None
        item_id = self.items[index].id
        if isinstance(found, VectorStore):
            vector, source = found.get(item_id), _store_source(found, item_id)
        else:
            vector, source = read_vector(found), str(found)
        problem = vector_problem(vector, kind) or self.ledger.stale(
            kind, item_id, _location_key(found)
        )
        if problem is not None:
            raise DataError(f"{source}: {problem}")
        return _as_kind(vector, kind, source)

    def stack(
        self,
        kind: str,
        indices: Sequence[int] | None,
        bad: list[BadVector] | None = None,
        prefer_shape: tuple[int, ...] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`(indices that have a valid vector, stacked vectors)`; missing items are logged.

        Store rows are gathered as whole arrays (newest store first: later writes win);
        only items left over are looked up as sidecar files, one by one. Every vector is
        checked (`balr.data.validation`), and all must share the shape most of them have
        (`prefer_shape` on a tie). A bad vector raises DataError naming its file, or, when a
        `bad` list is given, is appended to it, logged and left out.
        """
        indices = (
            np.arange(len(self.items)) if indices is None else np.asarray(indices, dtype=np.int64)
        )
        ids = [self.items[i].id for i in indices]
        problems: list[BadVector] = []
        parts, sources, todo = self._stack_stores(kind, ids, problems)
        missing = self._stack_sidecars(kind, indices, todo, parts, sources, problems)
        if missing:
            logger.warning(
                "%d of %d items have no %s vector (first: %s): skipped",
                len(missing),
                len(indices),
                VECTOR_KINDS[kind],
                ids[min(missing)],
            )
        parts = _drop_odd_shapes(parts, sources, ids, prefer_shape, problems)
        _report_bad(problems, bad, len(indices))
        if not parts:
            return np.zeros(0, np.int64), np.zeros((0,), np.float32)
        return indices[np.sort(np.concatenate([p for p, _ in parts]))], _merge_parts(parts)

    def _stack_stores(
        self, kind: str, ids: list[str], problems: list[BadVector]
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[VectorStore | str], np.ndarray]:
        """The valid rows the stores hold for `ids`: `(positions, rows)` per store, the
        stores, and the positions no store holds; invalid rows go to `problems`."""
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        sources: list[VectorStore | str] = []
        todo = np.arange(len(ids))
        for store in reversed(self.stores(check_kind(kind))):
            hit = np.fromiter((ids[t] in store.index for t in todo), bool, count=len(todo))
            hit[hit] = self.ledger.current_in_store(kind, store.source, [ids[t] for t in todo[hit]])
            if hit.any():
                positions = todo[hit]
                rows = store.gather([ids[t] for t in positions])
                stale = self.ledger.stale_rows(
                    kind, [ids[t] for t in positions], store_location(store.source)
                )
                wrong = bad_rows(rows, kind) | (stale != None)  # noqa: E711
                for row in np.flatnonzero(wrong):
                    item_id = ids[positions[row]]
                    problem = vector_problem(rows[row], kind) or stale[row]
                    problems.append(BadVector(item_id, _store_source(store, item_id), problem))
                if wrong.any():
                    positions, rows = positions[~wrong], rows[~wrong]
                if kind == "ba" and rows.ndim == 2:  # stored as bits
                    rows = bits_to_counts(rows)
                parts.append((positions, rows))
                sources.append(store)
            todo = todo[~hit]
        return parts, sources, todo

    def _stack_sidecars(
        self,
        kind: str,
        indices: np.ndarray,
        todo: np.ndarray,
        parts: list[tuple[np.ndarray, np.ndarray]],
        sources: list[VectorStore | str],
        problems: list[BadVector],
    ) -> list[int]:
        """Read the explicit or sidecar file of each position in `todo`: a valid vector is
        appended to `parts` (one part per file), an invalid one to `problems`; returns the
        positions without a file."""
        missing = []
        for t in todo:
            index = int(indices[t])
            path = self._explicit_file(index, kind) or self._find_sidecar(index, kind)
            if path is None:
                missing.append(int(t))
                continue
            item_id = self.items[index].id
            if self.ledger.removed_after(kind, item_id, path):
                missing.append(int(t))
                continue
            try:
                raw = read_vector(path)
                problem = vector_problem(raw, kind) or self.ledger.stale(
                    kind, item_id, _location_key(path)
                )
                vector = None if problem else _as_kind(raw, kind, str(path))
            except DataError as exc:
                problem, vector = str(exc).removeprefix(f"{path}: "), None
            if vector is None:
                problems.append(BadVector(item_id, str(path), problem))
                continue
            parts.append((np.array([t], np.int64), vector[None]))
            sources.append(str(path))
        return missing

    # ------------------------------------------------------------------ internals
    def _sidecar_format(self) -> str:
        """The sidecar format written (and looked for first); `npy` for store datasets."""
        return self.vector_format if self.vector_format in VECTOR_FORMATS else "npy"

    def _sidecar_path(self, index: int, kind: str, fmt: str) -> Path:
        base = self._sidecar_base(index, self.output_dir)
        return base.with_name(f"{base.name}_{kind}.{fmt}")

    def _sidecar_base(self, index: int, base_dir: Path | None) -> Path:
        """Sidecar path without `_kind.fmt`: beside the audio, or under `base_dir` at the
        audio's place below `tree_root`; items without audio: `<base_dir or root>/<id>`."""
        item = self.items[index]
        if item.audio is None:
            return (base_dir or self.root) / item.id
        if base_dir is None:
            return Path(item.audio).with_suffix("")
        return mirrored_path(item.audio, self.tree_root, base_dir).with_suffix("")

    def _explicit_file(self, index: int, kind: str) -> Path | None:
        explicit = self.items[index].explicit_vector(kind)
        return Path(explicit) if explicit is not None and Path(explicit).is_file() else None

    def _find_sidecar(self, index: int, kind: str) -> Path | None:
        self.check_vector_paths()
        if index in self._shared_sidecars:
            return None  # a store dataset's item whose sidecar would be another item's too
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


def _is_within(folder: Path, ancestor: Path) -> bool:
    return os.path.commonpath([folder, ancestor]) == str(ancestor)


def _absolute(path: str | os.PathLike) -> str:
    """The path made absolute with `.` and `..` removed, without following links (a
    dataset of links keeps its own tree)."""
    return os.path.abspath(path)


def _as_kind(vector: np.ndarray, kind: str, source: str) -> np.ndarray:
    """An embedding as float32, a BA vector as `(K, 2)` counts."""
    return as_ba_counts(vector, source) if kind == "ba" else np.asarray(vector, np.float32)


def _location_key(found: Path | VectorStore) -> str:
    """How the ledger names where a vector was found."""
    return (
        store_location(found.source) if isinstance(found, VectorStore) else os.path.abspath(found)
    )


def _store_source(store: VectorStore, item_id: str) -> str:
    """How a store's vector is named in messages: the store file and the id."""
    return f"{store.source} (id '{item_id}')"


def _drop_odd_shapes(
    parts: list[tuple[np.ndarray, np.ndarray]],
    sources: list[VectorStore | str],
    ids: list[str],
    prefer: tuple[int, ...] | None,
    problems: list[BadVector],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Keep the parts whose vectors have the shape most vectors have; the others go to
    `problems`, named by their file (or store and id)."""
    counts: Counter = Counter()
    for positions, rows in parts:
        counts[rows.shape[1:]] += len(positions)
    if len(counts) < 2:
        return parts
    shape = majority_shape(counts, prefer)
    kept = []
    for (positions, rows), source in zip(parts, sources, strict=True):
        if rows.shape[1:] == shape:
            kept.append((positions, rows))
            continue
        problem = (
            f"vector shape {rows.shape[1:]} differs from {shape}, the shape of "
            f"{counts[shape]} other vectors"
        )
        for t in positions:
            name = _store_source(source, ids[t]) if isinstance(source, VectorStore) else source
            problems.append(BadVector(ids[t], name, problem))
    return kept


def _report_bad(problems: list[BadVector], bad: list[BadVector] | None, total: int) -> None:
    """Raise DataError on the first problem, or (with a `bad` list) log and collect them."""
    if not problems:
        return
    if bad is None:
        more = f" (and {len(problems) - 1} more bad vectors)" if len(problems) > 1 else ""
        raise DataError(f"{problems[0]}{more}")
    logger.warning("%d of %d items left out: %s", len(problems), total, describe_bad(problems))
    bad.extend(problems)


def _merge_parts(parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Rows of every part (all of one shape) placed in the order of their positions."""
    if len(parts) == 1:
        return parts[0][1]
    shape = parts[0][1].shape[1:]
    positions = np.concatenate([p for p, _ in parts])
    out = np.empty((len(positions), *shape), dtype=np.result_type(*(r for _, r in parts)))
    out[np.argsort(np.argsort(positions, kind="stable"))] = np.concatenate([r for _, r in parts])
    return out
