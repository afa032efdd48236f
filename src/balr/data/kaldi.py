"""Kaldi interop: data dirs (`wav.scp` + `utt2spk`) in, vectors as ark/scp out (kaldiio)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import kaldiio
import numpy as np

from balr.data.items import DatasetItem
from balr.errors import DataError
from balr.fileio import atomic_path, atomic_write_text


def read_kaldi_data_dir(data_dir: str | os.PathLike) -> list[DatasetItem]:
    """Items from `wav.scp` (utt path) and, if present, `utt2spk` (utt speaker)."""
    data_dir = Path(data_dir)
    wavs = _read_two_column_file(data_dir / "wav.scp")
    speakers = {}
    if (data_dir / "utt2spk").is_file():
        speakers = dict(_read_two_column_file(data_dir / "utt2spk"))
    items = []
    for line, (utt, location) in enumerate(wavs, start=1):
        if location.endswith("|"):
            raise DataError(
                f"{data_dir / 'wav.scp'}:{line}: piped command for '{utt}' is not supported; "
                "give a file path"
            )
        audio = Path(location) if Path(location).is_absolute() else data_dir / location
        items.append(DatasetItem(id=utt, audio=audio, speaker=speakers.get(utt)))
    return items


def write_kaldi_vectors(
    ark_path: str | os.PathLike, ids: Sequence[str], vectors: np.ndarray
) -> Path:
    """Write vectors to `ark_path` and a matching `.scp` index, atomically; returns the scp."""
    ark_path = Path(ark_path)
    scp_path = ark_path.with_suffix(".scp")
    with atomic_path(ark_path) as tmp_ark, atomic_path(scp_path) as tmp_scp:
        kaldiio.save_ark(
            str(tmp_ark),
            {i: np.asarray(v) for i, v in zip(ids, vectors, strict=True)},
            scp=str(tmp_scp),
        )
        scp_text = tmp_scp.read_text().replace(str(tmp_ark), str(ark_path))
    atomic_write_text(scp_path, scp_text)
    return scp_path


def read_kaldi_vectors(scp_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Vectors of a Kaldi `.scp` (or `.ark`), keyed by utterance id."""
    scp_path = Path(scp_path)
    try:
        if scp_path.suffix == ".ark":
            return {k: np.asarray(v) for k, v in kaldiio.load_ark(str(scp_path))}
        return {k: np.asarray(v) for k, v in kaldiio.load_scp(str(scp_path)).items()}
    except Exception as exc:
        raise DataError(f"{scp_path}: cannot read Kaldi vectors ({exc})") from None


def _read_two_column_file(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    rows = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2:
            raise DataError(f"{path}:{line_no}: expected '<id> <value>', got {line.strip()!r}")
        rows.append((parts[0], parts[1].strip()))
    return rows
