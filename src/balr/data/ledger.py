"""What each saved vector was made from: the append-only ledger `vectors_ledger.tsv`.

Every vector that `extract`, `binarize` or `vectors pack` saves adds one row to the ledger
of its records folder (`records_folder`: the `--save-dir`, else `.balr/` in the dataset's
folder), after the vector itself is on disk:

    kind  id  vector  source  stamp  model  digest  written

- `vector`: where the copy is (absolute sidecar path, or a store's `NAME.npy`); `-` when
  the vector was removed (its input became invalid under `--force`);
- `source`: what it was made from (the audio file; for a `_ba` vector, its embedding's
  location) and `stamp`, that source's state then (`SIZE:MTIME_NS:SHA256` of the audio,
  `SIZE:MTIME_NS` in rows of balr before the digest; the content digest of the embedding);
- `model`: the model that made it (`NAME:DIGEST`, the digest of its weights);
- `digest`: the content digest of the vector; `written`: time in ns.

The latest row of an id (largest `written`) says which copy is current and what it is
made from. Readers (`balr.data.lookup`) read that copy rather than an older one found
first (a store packed before the sidecars were made again, or the other way round) and
refuse a vector whose source changed since; writers re-make such vectors. An audio source
is unchanged when its size and modification time are the recorded ones; when only the time
differs (a copied or re-synced dataset), the sha256 of its bytes decides where the row has
one (hashed once per file and `LedgerView`; `extract` then records the new time). Rows are
appended whole under an flock of the ledger itself (no lock file), so concurrent ranks
never interleave; a row cut short by a crash is ignored.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

LEDGER_FILE = "vectors_ledger.tsv"
#: the records folder of a dataset written without `--save-dir` (not beside each audio file)
RECORDS_DIR = ".balr"
REMOVED = "-"
HEADER = ("kind", "id", "vector", "source", "stamp", "model", "digest", "written")


@dataclass(frozen=True)
class MadeFrom:
    """What a vector is made from: its source, the source's stamp and the model."""

    source: str
    stamp: str
    model: str


@dataclass(frozen=True)
class LedgerRow:
    """One ledger row (see the module docstring)."""

    kind: str
    id: str
    vector: str
    source: str
    stamp: str
    model: str
    digest: str
    written: int

    @property
    def removed(self) -> bool:
        return self.vector == REMOVED

    def line(self) -> str:
        cells = [*(str(getattr(self, name)) for name in HEADER)]
        return "\t".join(cells) + "\n"


def made_by_other(record: LedgerRow | None, model_id: str) -> bool:
    """Whether a ledger row says another model than `model_id` made the vector."""
    return record is not None and bool(record.model) and record.model != model_id


def records_folder(output_dir: str | os.PathLike | None, root: str | os.PathLike) -> Path:
    """Where a job writes its run records: `output_dir`, else `root/.balr`."""
    return Path(output_dir) if output_dir is not None else Path(root) / RECORDS_DIR


def record_folders(output_dir: str | os.PathLike | None, root: str | os.PathLike) -> list[Path]:
    """Where run records are looked for, first match wins: `output_dir`, `root/.balr`, and
    `root` itself (where balr before 0.x wrote them)."""
    folders = [Path(output_dir)] if output_dir is not None else []
    folders += [Path(root) / RECORDS_DIR, Path(root)]
    return list(dict.fromkeys(folders))


def store_location(source: str | os.PathLike) -> str:
    """How the ledger names a store: its finished `NAME.npy` (for unfinished parts too)."""
    text = str(source)
    if text.endswith(".partial.bin"):
        text = text[: -len(".partial.bin")] + ".npy"
    return os.path.abspath(text)


def copy_exists(location: str) -> bool:
    """Whether the sidecar file or store (`NAME.npy` with its `NAME.ids.txt`) is there."""
    if location.endswith(".npy") and os.path.isfile(location[: -len(".npy")] + ".ids.txt"):
        return True
    return os.path.isfile(location)


def file_stamp(path: str | os.PathLike) -> str:
    """`SIZE:MTIME_NS` of a file (`missing` when there is none)."""
    try:
        info = os.stat(path)
    except OSError:
        return "missing"
    return f"{info.st_size}:{info.st_mtime_ns}"


def content_stamp(path: str | os.PathLike) -> str:
    """`SIZE:MTIME_NS:SHA256` of a file (an audio source's stamp): the size and time of the
    open file and the sha256 of its bytes; `missing` when there is none."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return "missing"
    return f"{info.st_size}:{info.st_mtime_ns}:{digest}"


def split_stamp(stamp: str) -> tuple[str, str]:
    """`(SIZE:MTIME_NS, SHA256)` of an audio stamp; the digest is "" in rows without one."""
    size, _, rest = stamp.partition(":")
    mtime, _, digest = rest.partition(":")
    return f"{size}:{mtime}", digest


def vector_digest(vector: np.ndarray) -> str:
    """Content digest of a vector (dtype-independent for float vectors)."""
    array = np.ascontiguousarray(vector, dtype=np.float32)
    return hashlib.blake2b(array.tobytes(), digest_size=8).hexdigest()


def model_digest(module) -> str:
    """Digest of a torch module's weights: shapes and values in the order of their names
    (not the names, so a wrapped or renamed module keeps its digest)."""
    import torch

    digest = hashlib.blake2b(digest_size=6)
    for _, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{tuple(value.shape)}{value.dtype}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class LedgerWriter:
    """Appends rows to `folder/vectors_ledger.tsv` (created with its header by the first
    row: a job that saves nothing writes no ledger)."""

    def __init__(self, folder: str | os.PathLike, kind: str):
        self.path = Path(folder) / LEDGER_FILE
        self.kind = kind
        self._fd = -1

    def add(
        self, item_id: str, vector_at: str, made_from: MadeFrom | None, digest: str = ""
    ) -> None:
        """Record that `item_id`'s vector is now at `vector_at` (or REMOVED)."""
        made = made_from or MadeFrom("", "", "")
        row = LedgerRow(
            self.kind,
            item_id,
            vector_at,
            made.source,
            made.stamp,
            made.model,
            digest,
            time.time_ns(),
        )
        self.add_rows([row])

    def add_rows(self, rows: list[LedgerRow]) -> None:
        """Append whole rows under an exclusive flock of the ledger."""
        data = "".join(_clean(row).line() for row in rows).encode("utf-8")
        if self._fd < 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if os.fstat(self._fd).st_size == 0:
                data = ("\t".join(HEADER) + "\n").encode() + data
            os.write(self._fd, data)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _clean(row: LedgerRow) -> LedgerRow:
    """Tabs and newlines in paths or ids would break the row: they become spaces."""
    fix = {
        name: str(getattr(row, name)).replace("\t", " ").replace("\n", " ")
        for name in ("id", "vector", "source")
    }
    return replace(row, **fix)


def read_ledger(folders: list[Path], kind: str) -> dict[str, LedgerRow]:
    """The latest row of each id of `kind` over the ledgers in `folders`."""
    latest: dict[str, LedgerRow] = {}
    for folder in dict.fromkeys(folders):
        path = Path(folder) / LEDGER_FILE
        if not path.is_file():
            continue
        for row in _rows(path, kind):
            known = latest.get(row.id)
            if known is None or row.written >= known.written:
                latest[row.id] = row
    return latest


def _rows(path: Path, kind: str):
    with path.open(encoding="utf-8", newline="") as handle:
        for line in handle:
            if not line.endswith("\n"):
                return  # cut short by a crash
            cells = line[:-1].split("\t")
            if len(cells) != len(HEADER) or cells[0] != kind:
                continue
            try:
                written = int(cells[7])
            except ValueError:
                continue
            yield LedgerRow(*cells[:7], written=written)


class LedgerView:
    """The latest ledger rows of a dataset (from `folders`), per kind, and the checks a
    reader makes with them."""

    def __init__(self, folders: list[Path]):
        self.folders = folders
        self._rows: dict[str, dict[str, LedgerRow]] = {}
        self._hashed: dict[tuple[str, str], str] = {}  # (path, SIZE:MTIME_NS) -> its stamp
        self._restamped: dict[tuple[str, str], LedgerRow] = {}  # (kind, id) -> new row

    def rows(self, kind: str) -> dict[str, LedgerRow]:
        if kind not in self._rows:
            self._rows[kind] = read_ledger(self.folders, kind)
        return self._rows[kind]

    def row(self, kind: str, item_id: str) -> LedgerRow | None:
        rows = self.rows(kind)
        return rows.get(item_id) if rows else None

    def forget(self, kind: str) -> None:
        self._rows.pop(kind, None)

    def is_current(self, kind: str, item_id: str, location: str) -> bool:
        """Whether the copy at `location` may be read: no row, the row names it, or the
        copy the row names is gone; never once removed."""
        row = self.row(kind, item_id)
        if row is None or row.vector == location:
            return True
        return not row.removed and not copy_exists(row.vector)

    def current_in_store(self, kind: str, source: Path, item_ids: list[str]) -> np.ndarray:
        """Which of `item_ids` (held by the store read from `source`) may be read from it;
        those with a newer copy elsewhere are logged once."""
        keep = np.ones(len(item_ids), bool)
        if not self.rows(kind):
            return keep
        location = store_location(source)
        for at, item_id in enumerate(item_ids):
            keep[at] = self.is_current(kind, item_id, location)
        if not keep.all():
            logger.warning(
                "%d _%s vectors of %s are older than copies made since, or were removed "
                "(first: id '%s'): reading the newer copies (balr vectors pack --kind %s "
                "repacks the store)",
                *((~keep).sum(), kind, source, item_ids[int(np.argmin(keep))], kind),
            )
        return keep

    def removed_after(self, kind: str, item_id: str, path: Path) -> bool:
        """Whether the vector was removed after the file `path` was written."""
        row = self.row(kind, item_id)
        if row is None or not row.removed:
            return False
        try:
            return path.stat().st_mtime_ns <= row.written
        except OSError:
            return True

    def stale(self, kind: str, item_id: str, location: str) -> str | None:
        """Why the copy at `location` is stale (its source changed since it was made), or
        None (fresh, or nothing recorded about it)."""
        row = self.row(kind, item_id)
        if row is None or row.removed or row.vector != location or not row.stamp:
            return None
        if kind == "emb":
            if row.source and os.path.isfile(row.source) and self.source_changed(row):
                return (
                    f"made from {row.source}, which changed since (size/modification time); "
                    "extract it again"
                )
            return None
        embedding = self.row("emb", item_id)
        if embedding is not None and not embedding.removed and embedding.digest != row.stamp:
            return (
                "made from an embedding that was made again since (ledger "
                f"{LEDGER_FILE}); binarize it again"
            )
        return None

    def source_changed(self, row: LedgerRow) -> bool:
        """Whether the audio file `row.source` changed since `row.stamp`: not when its size
        and time are the same; when only the time differs, its sha256 decides (if recorded)."""
        recorded, digest = split_stamp(row.stamp)
        now = file_stamp(row.source)
        if now == recorded:
            return False
        if not digest or now.partition(":")[0] != recorded.partition(":")[0]:
            return True
        key = (row.source, now)
        if key not in self._hashed:
            self._hashed[key] = content_stamp(row.source)
        if split_stamp(self._hashed[key])[1] != digest:
            return True
        logger.debug("%s: modification time changed, same sha256: unchanged", row.source)
        self._restamped[(row.kind, row.id)] = replace(
            row, stamp=self._hashed[key], written=time.time_ns()
        )
        return False

    def restamped(self, kind: str) -> dict[str, LedgerRow]:
        """By id, the rows of `kind` whose source had a new modification time and the same
        bytes, with the new stamp: a writer appends them, so later readers hash nothing."""
        return {item_id: row for (of, item_id), row in self._restamped.items() if of == kind}

    def stale_rows(self, kind: str, item_ids: list[str], location: str) -> np.ndarray:
        """`stale` of each id at `location` (an object array: reason or None)."""
        reasons = np.full(len(item_ids), None, dtype=object)
        if self.rows(kind):
            for row, item_id in enumerate(item_ids):
                reasons[row] = self.stale(kind, item_id, location)
        return reasons
