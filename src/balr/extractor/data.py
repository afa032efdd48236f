"""Training inputs: the seed's list formats, dataset CSVs, features, random windows, pairs."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from balr.audio import AUDIO_EXTENSIONS
from balr.errors import BalrError, DataError
from balr.features import logmel
from balr.fileio import atomic_path

log = logging.getLogger(__name__)
FRAMES_PER_SECOND = 100
FEATURE_SUFFIX = ".npy"


@dataclass
class FeatureItem:
    """One recording: where its features are (or will be cached) and its audio, if known."""

    name: str
    features_path: Path
    audio_path: Path | None = None
    label: int = -1


def _lines(path: str | os.PathLike) -> list[tuple[int, list[str]]]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: list file not found")
    rows = [(n, line.split()) for n, line in enumerate(path.read_text().splitlines(), 1)]
    return [(n, fields) for n, fields in rows if fields and not fields[0].startswith("#")]


def read_file_list(path: str | os.PathLike) -> list[str]:
    """The seed's `files.lst`: one audio path per line, without extension."""
    return [fields[0] for _, fields in _lines(path)]


def read_train_labels(path: str | os.PathLike) -> list[tuple[str, int]]:
    """The seed's train labels file: lines `path label -1`, labels 0..N-1."""
    rows = []
    for n, fields in _lines(path):
        if len(fields) not in (2, 3):
            raise DataError(f"{path}:{n}: expected 'path label -1', got {len(fields)} fields")
        try:
            rows.append((fields[0], int(fields[1])))
        except ValueError:
            raise DataError(f"{path}:{n}: label '{fields[1]}' is not an integer") from None
    negative = [label for _, label in rows if label < 0]
    if negative:
        raise DataError(f"{path}: labels must be non-negative integers (got {negative[0]})")
    return rows


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The seed's client/impostor trial files: one `pathA pathB` per line."""
    pairs = []
    for n, fields in _lines(path):
        if len(fields) != 2:
            raise DataError(f"{path}:{n}: expected 'pathA pathB', got {len(fields)} fields")
        pairs.append((fields[0], fields[1]))
    return pairs


def find_audio(base: Path) -> Path | None:
    """`base` itself when it is a file, else `base` + the first audio extension found."""
    if base.is_file():
        return base
    for ext in ("wav", "flac", *[e for e in AUDIO_EXTENSIONS if e not in ("wav", "flac")]):
        candidate = base.with_name(f"{base.name}.{ext}")
        if candidate.is_file():
            return candidate
    return None


def seed_item(data_dir: str | os.PathLike, rel: str, label: int = -1) -> FeatureItem:
    """A seed list entry: features `data_dir/rel.npy`, audio `data_dir/rel.{wav,flac,...}`."""
    base = Path(data_dir) / rel
    return FeatureItem(rel, base.with_name(base.name + FEATURE_SUFFIX), find_audio(base), label)


def audio_item(
    name: str,
    audio: Path,
    label: int = -1,
    features_dir: Path | None = None,
    root: Path | None = None,
) -> FeatureItem:
    """A dataset entry: features beside the audio, or under `features_dir` mirroring `root`."""
    if features_dir is None:
        features = audio.with_suffix(FEATURE_SUFFIX)
    else:
        rel = audio.relative_to(root) if root and audio.is_relative_to(root) else Path(audio.name)
        features = (features_dir / rel).with_suffix(FEATURE_SUFFIX)
    return FeatureItem(name, features, audio, label)


def usable_items(items: Sequence[FeatureItem]) -> list[FeatureItem]:
    """Items that have features or audio on disk; the others are logged and skipped."""
    kept = [it for it in items if it.features_path.is_file() or it.audio_path is not None]
    for item in items:
        if not (item.features_path.is_file() or item.audio_path is not None):
            log.warning(
                "skipping %s: neither %s nor its audio exists", item.name, item.features_path
            )
    return kept


class FeatureLoader:
    """Raw log-mel of an item from its `.npy` file, else computed from audio (kept in memory)."""

    def __init__(self, normalization: str = "cmn", cache: bool = True):
        self.normalization = normalization
        self.cache = cache
        self._memory: dict[Path, np.ndarray] = {}

    def raw(self, item: FeatureItem) -> np.ndarray:
        if item.features_path in self._memory:
            return self._memory[item.features_path]
        if item.features_path.is_file():
            feats = load_features(item.features_path)
        elif item.audio_path is not None:
            feats = logmel.file_features(item.audio_path)
        else:
            raise DataError(f"{item.features_path}: no features and no audio for {item.name}")
        if self.cache:
            self._memory[item.features_path] = feats
        return feats

    def __call__(self, item: FeatureItem) -> np.ndarray:
        """Normalised `(T, 80)` float32 features of the whole recording."""
        feats = torch.from_numpy(np.ascontiguousarray(self.raw(item)))
        return logmel.normalize(feats, self.normalization).numpy()


def load_features(path: Path) -> np.ndarray:
    """A `(T, 80)` float32 `.npy` file (no pickle allowed)."""
    try:
        feats = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read features ({exc})") from None
    if feats.ndim != 2 or feats.shape[0] == 0:
        raise DataError(f"{path}: features must be a non-empty (T, n_mels) array")
    return feats.astype(np.float32, copy=False)


def random_window(feats: np.ndarray, frames: int, rng: random.Random) -> np.ndarray:
    """A random `frames`-long window; shorter recordings are repeated to fill it."""
    if feats.shape[0] < frames:
        feats = np.tile(feats, (-(-frames // feats.shape[0]), 1))
    start = rng.randrange(feats.shape[0] - frames + 1)
    return feats[start : start + frames]


class WindowDataset(torch.utils.data.Dataset):
    """Yields `(random window (frames, 80), label)`: one window per recording per epoch.

    Each DataLoader worker draws its windows from its own generator (seed + 1 + worker id):
    copies of one generator would give every worker the same window offsets.
    """

    def __init__(
        self, items: Sequence[FeatureItem], loader: FeatureLoader, window_size: float, seed: int = 0
    ):
        self.items = list(items)
        self.loader = loader
        self.frames = int(round(window_size * FRAMES_PER_SECOND))
        self.seed = seed
        self.rng = random.Random(seed)
        self._worker: int | None = None

    def __len__(self) -> int:
        return len(self.items)

    def _worker_rng(self) -> random.Random:
        """The generator of the current process (reseeded once in each DataLoader worker)."""
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker != info.id:
            self._worker = info.id
            self.rng = random.Random(self.seed + 1 + info.id)
        return self.rng

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        self._worker_rng()
        for _ in range(5):
            item = self.items[index]
            try:
                window = random_window(self.loader(item), self.frames, self.rng)
                return torch.from_numpy(np.ascontiguousarray(window)), item.label
            except BalrError as exc:
                log.warning("skipping %s: %s", item.name, exc)
                index = self.rng.randrange(len(self.items))
        raise DataError(f"5 unreadable recordings in a row (last: {item.name})")


def random_slice(batch: torch.Tensor, rng: random.Random, min_frames: int = 200) -> torch.Tensor:
    """Cut a batch of windows to a random length in [min_frames, window] (2-3.5 s by default)."""
    frames = batch.shape[1]
    if frames <= min_frames:
        return batch
    return batch[:, : rng.randrange(min_frames, frames + 1)]


def generate_pairs(
    speakers: Sequence[str], max_pairs: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Same-speaker and different-speaker index pairs of a labelled set: `(a, b, is_target)`.

    All target pairs (sampled down to `max_pairs`), and as many random non-target pairs.
    """
    codes = np.unique(np.asarray(speakers), return_inverse=True)[1]
    first, second = np.triu_indices(len(codes), k=1)
    same = codes[first] == codes[second]
    rng = np.random.default_rng(seed)
    targets = rng.permutation(np.flatnonzero(same))[:max_pairs]
    nontargets = rng.permutation(np.flatnonzero(~same))[: max(len(targets), 1)]
    if len(targets) == 0 or len(nontargets) == 0:
        raise DataError("validation needs a speaker with 2 recordings and 2 speakers")
    chosen = np.concatenate([targets, nontargets])
    labels = np.concatenate([np.ones(len(targets), np.int8), np.zeros(len(nontargets), np.int8)])
    return first[chosen], second[chosen], labels


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """EER (fraction) of scores with labels 1 (target) / 0 (non-target): where FAR meets FRR."""
    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    n_tar, n_non = labels.sum(), (~labels).sum()
    if n_tar == 0 or n_non == 0:
        raise DataError("EER needs both target and non-target trials")
    order = np.argsort(-scores, kind="mergesort")
    hits = np.concatenate([[0], np.cumsum(labels[order])])
    false_alarms = np.concatenate([[0], np.cumsum(~labels[order])])
    ranked = scores[order]
    cut = np.concatenate([[True], ranked[1:] != ranked[:-1], [True]])  # thresholds between ties
    frr = (1.0 - hits / n_tar)[cut]
    far = (false_alarms / n_non)[cut]
    best = np.argmin(np.abs(far - frr))
    return float((far[best] + frr[best]) / 2.0)


def save_features(path: Path, feats: np.ndarray) -> None:
    """Write `(T, 80)` float32 features as `.npy`, atomically."""
    with atomic_path(path, suffix=FEATURE_SUFFIX) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(feats, dtype=np.float32), allow_pickle=False)


def precompute_features(items: Sequence[FeatureItem], force: bool = False) -> dict[str, int]:
    """Raw log-mel `.npy` for every item with audio; existing files are kept unless `force`.

    A bad recording is reported and skipped; returns counts of written/existing/failed.
    """
    counts = {"written": 0, "existing": 0, "failed": 0}
    for item in tqdm(items, desc="features", unit="file"):
        if item.features_path.is_file() and not force:
            counts["existing"] += 1
            continue
        try:
            if item.audio_path is None:
                raise DataError(f"{item.name}: no audio file found (.wav/.flac/...)")
            save_features(item.features_path, logmel.file_features(item.audio_path))
            counts["written"] += 1
        except BalrError as exc:
            log.warning("skipping %s", exc)
            counts["failed"] += 1
    return counts
