"""Per-recording TSV files that `balr extract` writes beside the vectors (`id`, `path`, then
the values of one recording): `RecordingLog` appends a row just before each vector is saved,
so the file is crash-safe and resumable, and tidies it when the extraction ends; it also reads
such files back and finds them in a vectors folder (with a torchrun extraction's per-rank
files). `balr.data.speech.SpeechLog` (net speech) and
`balr.data.channel_profiles.ChannelProfileLog` (channel profiles) are its two kinds.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from balr.data.ledger import RECORDS_DIR
from balr.fileio import WriterLock, atomic_write_text

Value = TypeVar("Value")


class RecordingLog(Generic[Value]):
    """One row per recording (`id`, `path`, then `format_value(value)`'s cells), each
    appended and flushed just before its vector is saved (a row cut short by a crash is
    dropped when the file is opened again); `close()` rewrites the file atomically with the
    latest row of each id, sorted by id. One extraction at a time writes to a folder: the log
    holds `<file>.lock` (removed when it closes), and a second process extracting into the
    same folder is refused with a clear message. A subclass names its `file_name`, its
    `value_columns` and how a value is written (`format_value`) and read (`parse_value`)."""

    file_name: ClassVar[str]
    value_columns: ClassVar[tuple[str, ...]]

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = WriterLock(self.path.with_name(self.path.name + ".lock"), str(self.path.parent))
        try:
            _drop_cut_row(self.path)
            self.file = self.path.open("a", encoding="utf-8", newline="")
        except BaseException:
            self.lock.release()
            raise
        if self.file.tell() == 0:
            self.file.write(self.header_line() + "\n")
            self.file.flush()

    @classmethod
    def header_line(cls) -> str:
        return "\t".join(("id", "path", *cls.value_columns))

    @staticmethod
    def format_value(value: Value) -> str:
        """The value's cells, tab-joined."""
        raise NotImplementedError

    @staticmethod
    def parse_value(cells: list[str]) -> Value | None:
        """The value of a row's cells after `id` and `path` (None: not a complete row)."""
        raise NotImplementedError

    def add(self, item_id: str, audio: str, value: Value) -> None:
        """Append one row and flush it to the file."""
        self.file.write(f"{item_id}\t{audio}\t{self.format_value(value)}\n")
        self.file.flush()

    def close(self) -> None:
        """Close, then keep one row per id (the latest) in a tidy file."""
        self.file.close()
        try:
            rows = self.read(self.path)
            lines = [self.header_line()]
            lines += [
                f"{i}\t{audio}\t{self.format_value(value)}"
                for i, (audio, value) in sorted(rows.items())
            ]
            atomic_write_text(self.path, "\n".join(lines) + "\n")
        finally:
            self.lock.release()

    @classmethod
    def read(cls, path: str | Path) -> dict[str, tuple[str, Value]]:
        """`{id: (path, value)}` of one file; the latest row of an id wins, incomplete or
        unreadable rows (and the header) are skipped."""
        rows: dict[str, tuple[str, Value]] = {}
        with Path(path).open(encoding="utf-8") as handle:
            for line in handle:
                cells = line.rstrip("\n").split("\t")
                if len(cells) < 3 or cells[0] == "id":
                    continue
                value = cls.parse_value(cells[2:])
                if value is not None:
                    rows[cells[0]] = (cells[1], value)
        return rows

    @classmethod
    def find(cls, folder: str | Path) -> dict[str, tuple[str, Value]] | None:
        """`{id: (path, value)}` of the `file_name` in `folder`, else in its records folder
        `folder/.balr` (with those of every rank of a torchrun extraction,
        `<stem>.rankN.tsv`); None when there is none."""
        found = cls._find_in(Path(folder))
        return found if found is not None else cls._find_in(Path(folder) / RECORDS_DIR)

    @classmethod
    def files(cls, folder: str | Path) -> list[Path]:
        """The files `find` reads: those directly in `folder`, else in `folder/.balr`."""
        return cls._files_in(Path(folder)) or cls._files_in(Path(folder) / RECORDS_DIR)

    @classmethod
    def _files_in(cls, folder: Path) -> list[Path]:
        """The main file and every rank's file directly in `folder` (main file first)."""
        stem, suffix = cls.file_name.rsplit(".", 1)
        paths = sorted(folder.glob(f"{stem}.rank*.{suffix}"))
        if (folder / cls.file_name).is_file():
            paths.insert(0, folder / cls.file_name)
        return paths

    @classmethod
    def _find_in(cls, folder: Path) -> dict[str, tuple[str, Value]] | None:
        """The rows of the files directly in `folder` (main file first); None if none."""
        paths = cls._files_in(folder)
        if not paths:
            return None
        rows: dict[str, tuple[str, Value]] = {}
        for path in paths:
            rows.update(cls.read(path))
        return rows


def _drop_cut_row(path: Path) -> None:
    """Remove a last row that a crash cut short (no newline): its vector was never saved."""
    if not path.is_file():
        return
    with path.open("rb+") as handle:
        size = handle.seek(0, 2)
        start = max(size - 65536, 0)
        handle.seek(start)
        tail = handle.read()
        if tail and not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n")
            handle.truncate(start + cut + 1 if cut >= 0 else 0)
