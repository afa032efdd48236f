"""Dataset items, and the readers that list them from a directory of audio or a CSV.

An item is one recording: an id, an optional speaker, an optional audio path and optional
explicit vector paths (CSV columns `embedding`, `binary_attributes`). Kaldi data dirs are
read by `balr.data.kaldi`; `AudioDataset.from_path` picks the reader for a path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from balr.errors import DataError

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("id", "audio", "embedding", "binary_attributes", "speaker")
#: the CSV column that gives an item's vector of each kind explicitly
VECTOR_COLUMNS = {"emb": "embedding", "ba": "binary_attributes"}


@dataclass(frozen=True)
class DatasetItem:
    """One recording: id, optional speaker, audio path and explicit vector paths."""

    id: str
    audio: Path | None = None
    speaker: str | None = None
    embedding: Path | None = None
    binary_attributes: Path | None = None

    def explicit_vector(self, kind: str) -> Path | None:
        """The vector path given for `kind` (`emb` or `ba`), whether or not the file exists."""
        return getattr(self, VECTOR_COLUMNS[kind])


def scan_directory(root: Path, formats: Sequence[str]) -> list[DatasetItem]:
    """Audio files under `root` (recursive; extensions matched in any case), sorted by id;
    id = the path relative to `root` with its extension, `/`-separated (`spk1/utt1.wav`),
    the reference library's rule."""
    wanted = {f".{f.lower()}" for f in formats}
    items = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if path.suffix.lower() in wanted:
                items.append(DatasetItem(id=path.relative_to(root).as_posix(), audio=path))
    if not items:
        raise DataError(f"{root}: no audio files with extension {', '.join(formats)}")
    return sorted_by_id(items)


def sorted_by_id(items: list[DatasetItem]) -> list[DatasetItem]:
    """Items sorted by id, as the reference library orders them."""
    return sorted(items, key=lambda item: item.id)


def read_csv_items(path: Path, root_dir: Path | None = None) -> list[DatasetItem]:
    """Items from a CSV (`.tsv`: tab-separated) with columns among `CSV_COLUMNS`.

    Relative paths are below `root_dir` (default: the CSV's folder). The id is the `id`
    cell as written (`007` stays `007`), or without an `id` column the `audio` cell as
    written, extension included (`spk1/utt1.wav`, before it is made relative to the root);
    surrounding spaces are dropped.
    """
    frame = _read_csv(path)
    columns = list(frame.columns)
    root = root_dir if root_dir is not None else path.parent

    def paths(column: str) -> list[Path | None]:
        if column not in columns:
            return [None] * len(frame)
        return [(root / v) if v.strip() else None for v in frame[column].str.strip()]

    if "id" in columns:
        ids = frame["id"].str.strip().tolist()
    else:
        ids = frame["audio"].str.strip().tolist()
    for row, item_id in enumerate(ids):
        if not item_id:
            raise DataError(f"{path}: row {row + 2} has an empty id")
    speakers = (
        frame["speaker"].str.strip().tolist() if "speaker" in columns else [None] * len(frame)
    )
    audio, embeddings, attributes = (paths(c) for c in ("audio", "embedding", "binary_attributes"))
    return [
        DatasetItem(id=i, audio=a, speaker=s or None, embedding=e, binary_attributes=b)
        for i, a, s, e, b in zip(ids, audio, speakers, embeddings, attributes, strict=True)
    ]


def check_unique_ids(items: Sequence[DatasetItem], source: Path) -> None:
    """DataError naming the first id that occurs twice, and both items' files."""
    seen: dict[str, DatasetItem] = {}
    for item in items:
        first = seen.setdefault(item.id, item)
        if first is not item:
            raise DataError(
                f"{source}: duplicate id '{item.id}': {describe_item(first)} and "
                f"{describe_item(item)} share it; every item needs its own id"
            )


def describe_item(item: DatasetItem) -> str:
    """An item in messages: its audio file, else its vector files, else its id."""
    files = [p for p in (item.audio, item.embedding, item.binary_attributes) if p is not None]
    return ", ".join(str(p) for p in files) if files else "an item without files"


def _read_csv(path: Path) -> pd.DataFrame:
    """The CSV as strings with stripped column names; errors for unusable column sets."""
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from None
    columns = [c.strip() for c in frame.columns]
    frame.columns = columns
    if not set(columns) & set(CSV_COLUMNS):
        raise DataError(f"{path}: no known column (expected some of {', '.join(CSV_COLUMNS)})")
    if "audio" not in columns and "id" not in columns:
        raise DataError(f"{path}: an 'id' column is required when there is no 'audio' column")
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown:
        logger.warning("%s: ignoring unknown columns %s", path, unknown)
    return frame
