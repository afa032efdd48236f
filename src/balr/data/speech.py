"""Net speech durations of recordings: the `speech_durations.tsv` file (id, path, speech_s)
that `balr extract` writes in its save dir or the dataset folder's `.balr/`, and the seconds
of speech of each trial side.

`SpeechLog` writes the file during an extraction (crash-safe, resumable, one writer per
folder); `read_speech_durations`, `find_speech_durations` and `load_speech_durations` read
it; `side_seconds` and `trial_seconds` sum it over the recordings of each trial side (what
`qmf` calibration and the conditions check use).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from balr.data.ledger import RECORDS_DIR
from balr.data.trials import Trials
from balr.errors import DataError
from balr.fileio import WriterLock, atomic_write_text

SPEECH_FILE = "speech_durations.tsv"


class SpeechLog:
    """`speech_durations.tsv` (id, path, speech_s), crash-safe and resumable: each row is
    appended and flushed just before its vector is saved (a row cut short by a crash is
    dropped when the file is opened again), and
    `close()` rewrites the file atomically with the latest row of each id, sorted by id.
    One extraction at a time writes to a folder: the log holds `speech_durations.tsv.lock`
    (removed when it closes), and a second process extracting into the same folder is
    refused with a clear message."""

    HEADER = ("id", "path", "speech_s")

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
            self.file.write("\t".join(self.HEADER) + "\n")
            self.file.flush()

    def add(self, item_id: str, audio: str, speech_s: float) -> None:
        """Append one row and flush it to the file."""
        self.file.write(f"{item_id}\t{audio}\t{speech_s:.3f}\n")
        self.file.flush()

    def close(self) -> None:
        """Close, then keep one row per id (the latest) in a tidy file."""
        self.file.close()
        try:
            rows = read_speech_durations(self.path, with_paths=True)
            lines = ["\t".join(self.HEADER)]
            lines += [f"{i}\t{audio}\t{s:.3f}" for i, (audio, s) in sorted(rows.items())]
            atomic_write_text(self.path, "\n".join(lines) + "\n")
        finally:
            self.lock.release()


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


def read_speech_durations(path: str | Path, with_paths: bool = False) -> dict:
    """`{id: speech_s}` from a `speech_durations.tsv` (`{id: (path, speech_s)}` with
    `with_paths`); the latest row of an id wins, incomplete rows are skipped."""
    rows: dict = {}
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            cells = line.rstrip("\n").split("\t")
            if len(cells) != 3 or cells[0] == "id":
                continue
            try:
                speech_s = float(cells[2])
            except ValueError:
                continue
            rows[cells[0]] = (cells[1], speech_s) if with_paths else speech_s
    return rows


def find_speech_durations(folder: str | Path) -> dict[str, float] | None:
    """`{id: speech_s}` of the `speech_durations.tsv` in `folder`, else in its records folder
    `folder/.balr` (with those of every rank of a torchrun extraction,
    `speech_durations.rankN.tsv`); None when there is none."""
    found = _speech_durations_in(folder)
    return found if found is not None else _speech_durations_in(Path(folder) / RECORDS_DIR)


def _speech_durations_in(folder: str | Path) -> dict[str, float] | None:
    """`{id: speech_s}` of the speech-duration files directly in `folder`; None if none."""
    stem, suffix = SPEECH_FILE.rsplit(".", 1)
    paths = sorted(Path(folder).glob(f"{stem}.rank*.{suffix}"))
    if (Path(folder) / SPEECH_FILE).is_file():
        paths.insert(0, Path(folder) / SPEECH_FILE)
    if not paths:
        return None
    durations: dict[str, float] = {}
    for path in paths:
        durations.update(read_speech_durations(path))
    return durations


def load_speech_durations(path: Path | None, folder: Path) -> dict[str, float] | None:
    """`{id: net speech seconds}` written by `balr extract`: the file `path` if given
    (`--speech-durations`), else the `speech_durations.tsv` of `folder` or `folder/.balr`
    (where `extract` writes it); None when there is none."""
    if path is not None:
        if not Path(path).is_file():
            raise DataError(f"--speech-durations {path}: no such file")
        return read_speech_durations(path)
    return find_speech_durations(folder)


def side_seconds(cells: Sequence[Sequence[str]], durations: dict[str, float] | None) -> np.ndarray:
    """Net speech seconds of each cell: the sum over its recordings (NaN if one is unknown)."""
    durations = durations or {}
    return np.array([sum(durations.get(i, np.nan) for i in cell) for cell in cells], float)


def trial_seconds(trials: Trials, durations: dict[str, float] | None) -> np.ndarray:
    """`(trials, 2)` net speech seconds of the enrollment and test side of each trial."""
    return np.column_stack(
        [side_seconds(trials.enrollment, durations), side_seconds(trials.test, durations)]
    )
