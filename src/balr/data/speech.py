"""Net speech durations of recordings: the `speech_durations.tsv` file (id, path, speech_s)
that `balr extract` writes in its save dir or the dataset folder's `.balr/`, and the seconds
of speech of each trial side.

`SpeechLog` writes the file during an extraction (a `balr.data.recording_log.RecordingLog`:
crash-safe, resumable, one writer per folder); `read_speech_durations`,
`find_speech_durations` and `load_speech_durations` read it; `side_seconds` and
`trial_seconds` sum it over the recordings of each trial side (what `qmf` calibration and the
conditions check use).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from balr.data.recording_log import RecordingLog
from balr.data.trials import Trials
from balr.errors import DataError

SPEECH_FILE = "speech_durations.tsv"


class SpeechLog(RecordingLog[float]):
    """`speech_durations.tsv` (id, path, speech_s): a `RecordingLog` (crash-safe, resumable,
    one writer per folder) of each recording's net speech seconds."""

    file_name: ClassVar[str] = SPEECH_FILE
    value_columns: ClassVar[tuple[str, ...]] = ("speech_s",)

    @staticmethod
    def format_value(value: float) -> str:
        return f"{value:.3f}"

    @staticmethod
    def parse_value(cells: list[str]) -> float | None:
        if len(cells) != 1:
            return None
        try:
            return float(cells[0])
        except ValueError:
            return None


def read_speech_durations(path: str | Path, with_paths: bool = False) -> dict:
    """`{id: speech_s}` from a `speech_durations.tsv` (`{id: (path, speech_s)}` with
    `with_paths`); the latest row of an id wins, incomplete rows are skipped."""
    rows = SpeechLog.read(path)
    return rows if with_paths else {i: seconds for i, (_, seconds) in rows.items()}


def find_speech_durations(folder: str | Path) -> dict[str, float] | None:
    """`{id: speech_s}` of the `speech_durations.tsv` in `folder`, else in its records folder
    `folder/.balr` (with those of every rank of a torchrun extraction,
    `speech_durations.rankN.tsv`); None when there is none."""
    rows = SpeechLog.find(folder)
    return None if rows is None else {i: seconds for i, (_, seconds) in rows.items()}


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
