"""Building blocks of the recipe that rebuilds the shipped default models
(`build_default_models.py`, run by `default_models.sh`): recipe code, not part of the
`balr` package (importable as `default_models` beside it, or `recipes.default_models`).

Data preparation (cutting utterances into segments, disjoint speaker splits, all-pairs
trial lists), the float16 copy of the encoder that is shipped, and the summary of what the
recipe measured. The stages themselves run through the `balr` commands.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from safetensors.torch import save_file
from tqdm import tqdm

from balr.audio import load_audio
from balr.binary_attributes.model import (
    BinaryAttributeEncoder,
    provenance_metadata,
    read_state_dict,
    read_trained_on,
)
from balr.errors import AudioError, DataError
from balr.fileio import atomic_path, atomic_write_text

SAMPLE_RATE = 16000


def segment_bounds(duration_s: float, segment_s: float = 3.0) -> list[tuple[float, float]]:
    """`(start, end)` of `round(duration / segment_s)` (at least 1) equal, non-overlapping
    segments covering the whole recording, so each lasts between 2/3 and 2 x `segment_s`."""
    count = max(1, int(round(duration_s / segment_s)))
    edges = np.linspace(0.0, duration_s, count + 1)
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def segment_recording(
    path: Path, speaker: str, out_dir: Path, segment_s: float = 3.0
) -> list[dict]:
    """Cut one recording into segments written as 16 kHz FLAC under `out_dir/speaker/`;
    returns one dataset row (`id, audio, speaker, source, start_s, duration_s`) each."""
    wave = load_audio(path, SAMPLE_RATE)
    rows = []
    for number, (start, end) in enumerate(segment_bounds(len(wave) / SAMPLE_RATE, segment_s)):
        item_id = f"{speaker}/{path.stem}-{number:02d}"
        target = out_dir / f"{item_id}.flac"
        piece = wave[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        if not target.is_file():
            with atomic_path(target) as tmp:
                sf.write(str(tmp), piece, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        rows.append(
            {
                "id": item_id,
                "audio": f"{item_id}.flac",
                "speaker": speaker,
                "source": path.name,
                "start_s": round(start, 3),
                "duration_s": round(len(piece) / SAMPLE_RATE, 3),
            }
        )
    return rows


def segment_corpus(
    recordings: Sequence[tuple[Path, str]], out_dir: Path, segment_s: float = 3.0
) -> pd.DataFrame:
    """Segments of every `(path, speaker)` recording; unreadable ones are reported, skipped."""
    rows: list[dict] = []
    for path, speaker in tqdm(recordings, desc="segment", unit="file"):
        try:
            rows.extend(segment_recording(path, speaker, out_dir, segment_s))
        except AudioError as exc:
            tqdm.write(f"skipped: {exc}")
    if not rows:
        raise DataError(f"{out_dir}: no recording could be segmented")
    return pd.DataFrame(rows)


def librispeech_recordings(folder: Path) -> list[tuple[Path, str]]:
    """`(path, speaker)` of LibriSpeech files `SPEAKER-CHAPTER-UTT.flac` (sorted)."""
    paths = sorted(folder.glob("*.flac"))
    if not paths:
        raise DataError(f"{folder}: no LibriSpeech .flac files")
    return [(p, p.stem.split("-")[0]) for p in paths]


def split_speakers(
    speakers: Iterable[str], sizes: dict[str, int], seed: int = 0
) -> dict[str, list[str]]:
    """Disjoint groups of the given sizes drawn from the sorted, shuffled speakers; the
    last group named takes whatever is left when its size is -1."""
    pool = sorted(set(speakers))
    order = np.random.default_rng(seed).permutation(len(pool))
    shuffled = [pool[i] for i in order]
    groups: dict[str, list[str]] = {}
    start = 0
    for name, size in sizes.items():
        stop = len(shuffled) if size < 0 else start + size
        if stop > len(shuffled):
            raise DataError(f"{len(pool)} speakers cannot fill the groups {sizes}")
        groups[name] = sorted(shuffled[start:stop])
        start = stop
    return groups


def all_pairs_trials(frame: pd.DataFrame) -> pd.DataFrame:
    """Every unordered pair of distinct items (`enrollment`, `test` ids), in frame order."""
    pairs = np.array(list(combinations(range(len(frame)), 2)), dtype=np.int64).reshape(-1, 2)
    ids = frame["id"].to_numpy()
    return pd.DataFrame({"enrollment": ids[pairs[:, 0]], "test": ids[pairs[:, 1]]})


def write_table(frame: pd.DataFrame, path: Path, sep: str = ",") -> Path:
    """A dataset CSV or trials TSV, written atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep=sep, index=False)
    return path


def save_float16_encoder(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy an encoder checkpoint with its floating-point tensors stored as float16 (half
    the size), keeping the embedding model it was trained on; `BinaryAttributeEncoder.load`
    upcasts them to the model's float32 on load."""
    state = read_state_dict(source)
    metadata = {**provenance_metadata(read_trained_on(source)), "dtype": "float16"}
    half = {
        key: (value.half() if value.is_floating_point() else value).contiguous()
        for key, value in state.items()
    }
    with atomic_path(target) as tmp:
        save_file(half, str(tmp), metadata=metadata)
    return Path(target)


def bit_agreement(
    full: str | os.PathLike, half: str | os.PathLike, embeddings: np.ndarray
) -> float:
    """Share of bits equal when the same embeddings are binarised by both checkpoints."""
    with torch.no_grad():
        bits_full = BinaryAttributeEncoder.load(full).binarize(embeddings)[..., 0]
        bits_half = BinaryAttributeEncoder.load(half).binarize(embeddings)[..., 0]
    return float((bits_full == bits_half).mean())


def read_json(path: Path) -> dict:
    """A JSON file written by a previous stage."""
    if not path.is_file():
        raise DataError(f"{path}: expected output of a previous recipe stage is missing")
    return json.loads(path.read_text())


def trial_metrics(metrics: dict) -> dict:
    """The figures reported from a `score test` metrics.json."""
    keys = ("eer", "cllr", "min_cllr", "raw_cllr", "raw_min_cllr", "n_target", "n_nontarget",
            "n_in_conditions", "n_out_of_conditions", "in_conditions_metrics")  # fmt: skip
    return {key: metrics[key] for key in keys if key in metrics}


def write_metrics(metrics: dict, path: Path) -> None:
    """metrics.json of the recipe (atomic, stable key order)."""
    atomic_write_text(path, json.dumps(metrics, indent=2))
