"""Trial lists: tab-separated `enrollment` / `test` cells of comma-separated item ids."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from balr.audio import AUDIO_EXTENSIONS
from balr.errors import TrialsError

TARGET, NONTARGET, UNKNOWN = 1, 0, -1


@dataclass
class Trials:
    """A trials list as read: the original frame plus the parsed id lists of both sides."""

    frame: pd.DataFrame
    enrollment: list[list[str]]
    test: list[list[str]]
    source: str = "trials"
    sep: str = "\t"
    has_header: bool = True

    def __len__(self) -> int:
        return len(self.enrollment)

    def subset(self, keep: np.ndarray) -> Trials:
        """The trials where `keep` (a boolean mask) is true, in order."""
        rows = np.flatnonzero(keep)
        return Trials(
            self.frame.iloc[rows].reset_index(drop=True),
            [self.enrollment[i] for i in rows],
            [self.test[i] for i in rows],
            self.source,
            self.sep,
            self.has_header,
        )

    def unique_ids(self) -> list[str]:
        """Every id used by some cell, once: enrollment cells first, then test cells."""
        return list(dict.fromkeys(i for cell in (*self.enrollment, *self.test) for i in cell))

    def check_ids(self, known_ids: Sequence[str] | Mapping[str, object]) -> None:
        """TrialsError naming the first id not in `known_ids` (and, for an id the dataset
        has with an audio extension, saying that ids keep it)."""
        known = known_ids if isinstance(known_ids, Mapping) else set(known_ids)
        for side, cells in (("enrollment", self.enrollment), ("test", self.test)):
            for row, cell in enumerate(cells):
                for item_id in cell:
                    if item_id not in known:
                        raise TrialsError(
                            f"{self.source}: unknown id '{item_id}' in the {side} cell of trial "
                            f"{row + 1}{_extension_hint(item_id, known)}"
                        )

    def labels(self, dataset) -> np.ndarray:
        """1 target / 0 non-target / -1 speaker unknown, from the dataset's speakers."""
        return self.labels_from_speakers(dict(zip(dataset.ids, dataset.speakers, strict=True)))

    def side_speakers(
        self, speaker_of: Mapping[str, str | None]
    ) -> tuple[list[str | None], list[str | None]]:
        """Per trial, the enrollment side's and the test side's speaker (None: unknown);
        unknown ids and mixed-speaker cells are errors."""
        self.check_ids(speaker_of)
        enroll = [
            self._cell_speaker(c, r, "enrollment", speaker_of)
            for r, c in enumerate(self.enrollment)
        ]
        test = [self._cell_speaker(c, r, "test", speaker_of) for r, c in enumerate(self.test)]
        return enroll, test

    def labels_from_speakers(self, speaker_of: Mapping[str, str | None]) -> np.ndarray:
        """Labels from an id -> speaker map; unknown ids and mixed-speaker cells are errors."""
        return labels_of_sides(*self.side_speakers(speaker_of))

    def _cell_speaker(
        self, cell: list[str], row: int, side: str, speaker_of: Mapping[str, str | None]
    ) -> str | None:
        speakers = {speaker_of[i] for i in cell}
        if len(speakers) > 1:
            names = ", ".join(sorted(str(s) for s in speakers))
            raise TrialsError(
                f"{self.source}: the {side} cell '{','.join(cell)}' of trial {row + 1} mixes "
                f"speakers ({names})"
            )
        return speakers.pop()


def load_trials(
    path: str | os.PathLike, sep: str = "\t", known_ids: Collection[str] | None = None
) -> Trials:
    """Read a trials file; column 1 is enrollment and column 2 test unless a header names
    `enrollment` and `test` columns (any case). The first line is a header when it names
    them, or, given the dataset's `known_ids`, when it holds ids the dataset does not have:
    the reference library always reads the first line as a header, whatever its names."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep=sep, header=None, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise TrialsError(f"{path}: trials file not found") from None
    except pd.errors.EmptyDataError:
        raise TrialsError(f"{path}: the trials file is empty: it lists no trials") from None
    except Exception as exc:
        raise TrialsError(f"{path}: cannot read trials ({exc})") from None
    if frame.shape[1] < 2:
        raise TrialsError(
            f"{path}: expected 2 columns separated by {sep!r}, found {frame.shape[1]}"
        )
    first = [str(v).strip().lower() for v in frame.iloc[0]]
    has_header = "enrollment" in first and "test" in first
    if not has_header and known_ids is not None:
        has_header = _names_columns(frame.iloc[0, :2], known_ids)
        first = ["enrollment", "test", *first[2:]] if has_header else first
    if has_header:
        frame.columns = [str(v).strip() for v in frame.iloc[0]]
        frame = frame.iloc[1:].reset_index(drop=True)
        enroll_col = frame.columns[first.index("enrollment")]
        test_col = frame.columns[first.index("test")]
    else:
        names = ["enrollment", "test"] + [f"column{i + 3}" for i in range(frame.shape[1] - 2)]
        frame.columns = names
        enroll_col, test_col = "enrollment", "test"
    if frame.empty:
        raise TrialsError(
            f"{path}: the trials file has no trials (only a header); list one "
            "'enrollment<sep>test' pair of ids per line"
        )
    enrollment = [_split_cell(v, path, r, "enrollment") for r, v in enumerate(frame[enroll_col])]
    test = [_split_cell(v, path, r, "test") for r, v in enumerate(frame[test_col])]
    return Trials(frame, enrollment, test, str(path), sep, has_header)


def _names_columns(cells: pd.Series, known_ids: Collection[str]) -> bool:
    """Whether a first line's two cells are column names rather than ids: some id in them
    is not in the dataset (a data row with an unknown id would be an error anyway)."""
    known = known_ids if isinstance(known_ids, set | frozenset | Mapping) else set(known_ids)
    ids = (i.strip() for cell in cells for i in str(cell).split(",") if i.strip())
    return any(i not in known for i in ids)


def _extension_hint(item_id: str, known: Collection[str]) -> str:
    """For an id the dataset has with an audio extension (`spk1/utt1` vs `spk1/utt1.wav`):
    why it does not match. balr 0.1 dropped the extension from the ids of directory datasets
    and of CSVs without an `id` column; they keep it now, as in the reference library."""
    with_extension = sorted(
        k
        for k in known
        if Path(k).suffix.lower().lstrip(".") in AUDIO_EXTENSIONS
        and k[: -len(Path(k).suffix)] == item_id
    )
    if not with_extension:
        return ""
    return (
        f"; the dataset has '{with_extension[0]}': ids of audio files keep their extension "
        "(the reference library's rule; balr 0.1 dropped it), so write "
        f"'{with_extension[0]}' in the trials file"
    )


def _split_cell(value: str, path: Path, row: int, side: str) -> list[str]:
    ids = [v.strip() for v in str(value).split(",") if v.strip()]
    if not ids:
        raise TrialsError(f"{path}: empty {side} cell in trial {row + 1}")
    return ids


def labels_of_sides(enrollment: Sequence[str | None], test: Sequence[str | None]) -> np.ndarray:
    """1 target / 0 non-target / -1 unknown from each trial's two sides' speakers
    (`Trials.side_speakers`)."""
    e, t = np.asarray(enrollment, dtype=object), np.asarray(test, dtype=object)
    known = np.not_equal(e, None) & np.not_equal(t, None)
    labels = np.where(e == t, TARGET, NONTARGET).astype(np.int8)
    return np.where(known, labels, UNKNOWN).astype(np.int8)
