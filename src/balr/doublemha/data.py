"""Training and validation data of the DoubleMHA extractor: items, windows and pairs.

Two input styles. The list formats of the authors' reference implementation (see
`balr.doublemha`): a train labels file (`path label -1`), client and impostor pair files
(`pathA pathB`) and `files.lst` (one path a line), paths relative to a data directory and
without extension. Or datasets (CSV, directory, Kaldi dir) with a speaker column, whose
validation pairs come from a trials file or are generated.

`training_set(cfg)` and `validation_pairs(cfg)` build the two inputs of `DoubleMHATrainer.fit`.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from balr.audio import AUDIO_EXTENSIONS
from balr.data import AudioDataset, load_trials
from balr.data.tree import common_folder, mirrored_path, shared_paths
from balr.doublemha.config import TrainConfig
from balr.doublemha.features import (
    DEFAULT_RECIPE,
    FEATURE_SUFFIX,
    FeatureItem,
    FeatureLoader,
    precompute_features,
    reference_features_path,
)
from balr.errors import BalrError, ConfigError, DataError

log = logging.getLogger(__name__)
FRAMES_PER_SECOND = 100
LIST_SUFFIXES = (".lst", ".list", ".txt", ".ndx")


@dataclass
class TrainingSet:
    """Recordings labelled 0..num_speakers-1 (the classifier's classes)."""

    items: list[FeatureItem]
    num_speakers: int


@dataclass
class ValidationPairs:
    """Recordings and pairs of them (indices `first`, `second`); `labels` 1: same speaker."""

    items: list[FeatureItem]
    first: np.ndarray
    second: np.ndarray
    labels: np.ndarray


def _lines(path: str | os.PathLike) -> list[tuple[int, list[str]]]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: list file not found")
    rows = [(n, line.split()) for n, line in enumerate(path.read_text().splitlines(), 1)]
    return [(n, fields) for n, fields in rows if fields and not fields[0].startswith("#")]


def read_file_list(path: str | os.PathLike) -> list[str]:
    """A `files.lst`: one audio path per line, without extension (or with it)."""
    return [fields[0] for _, fields in _lines(path)]


def read_train_labels(path: str | os.PathLike) -> list[tuple[str, int]]:
    """A train labels file: lines `path label -1`, labels 0..N-1."""
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
    """A client (same speaker) or impostor (different speakers) file: `pathA pathB` lines."""
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


def list_item(data_dir: str | os.PathLike, rel: str, label: int = -1) -> FeatureItem:
    """A list entry: features `data_dir/rel.npy`, audio `data_dir/rel.{wav,flac,...}`.

    An entry naming an audio file with its extension (what the reference's feature script
    reads, although its README says paths come without) has its features at the path
    without the extension, where a list without extensions looks for them.
    """
    base = Path(data_dir) / rel
    audio = find_audio(base)
    if audio == base and base.suffix.lstrip(".").lower() in AUDIO_EXTENSIONS:
        base = base.with_suffix("")
    return FeatureItem(rel, base.with_name(base.name + FEATURE_SUFFIX), audio, label)


def audio_item(
    name: str,
    audio: Path,
    label: int = -1,
    features_dir: Path | None = None,
    root: Path | None = None,
) -> FeatureItem:
    """A dataset entry: features beside the audio, or under `features_dir` at the audio's
    place below `root` (default: the audio's folder); DataError for audio outside `root`."""
    if features_dir is None:
        return FeatureItem(name, audio.with_suffix(FEATURE_SUFFIX), audio, label)
    folder = os.path.abspath(root if root is not None else audio.parent)
    try:
        features = mirrored_path(audio, folder, features_dir).with_suffix(FEATURE_SUFFIX)
    except ValueError:
        raise DataError(
            f"{name}: {audio} is outside {folder}, whose tree {features_dir} mirrors"
        ) from None
    return FeatureItem(name, features, audio, label)


def feature_tree_root(root: Path, audio_paths: Sequence[Path]) -> Path:
    """The folder whose tree `features_dir` mirrors: the dataset's folder, or, when some
    recordings lie outside it, the deepest folder holding it and every recording (absolute,
    `..` removed, links not followed)."""
    return common_folder(audio_paths, root, also=[root], why=" with it")


def check_feature_paths(items: Sequence[FeatureItem], source: str | os.PathLike) -> None:
    """DataError naming two items whose different recordings would share one feature file
    (features are cached on disk and in memory by that path); one recording listed twice
    is fine."""
    paths = (os.path.abspath(item.features_path) for item in items)
    for first_index, index, path in shared_paths(paths):
        first, item = items[first_index], items[index]
        if _recording(first) != _recording(item):
            raise DataError(
                f"{source}: items '{first.name}' ({first.audio_path}) and '{item.name}' "
                f"({item.audio_path}) would share the feature file {path}; rename or move one "
                "of them (feature files are named after the audio file without its extension)"
            )


def _recording(item: FeatureItem) -> str | None:
    return None if item.audio_path is None else os.path.abspath(item.audio_path)


def has_input(item: FeatureItem) -> bool:
    """The item has features (balr's `.npy` or the reference's `.pickle`) or audio on disk."""
    if item.features_path.is_file() or item.audio_path is not None:
        return True
    return reference_features_path(item).is_file()


def usable_items(items: Sequence[FeatureItem]) -> list[FeatureItem]:
    """Items that have features or audio on disk; the others are logged and skipped."""
    kept = [item for item in items if has_input(item)]
    for item in items:
        if not has_input(item):
            log.warning(
                "skipping %s: neither %s nor its audio exists", item.name, item.features_path
            )
    return kept


def random_window(feats: np.ndarray, frames: int, rng: random.Random) -> np.ndarray:
    """A random `frames`-long window; shorter recordings are repeated to fill it. Its start
    is drawn from `[0, T - frames - 1]` as the reference's `randint(0, T - frames - 1)`."""
    if feats.shape[0] < frames:
        feats = np.tile(feats, (-(-frames // feats.shape[0]), 1))
    start = rng.randrange(max(1, feats.shape[0] - frames))
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
    """Cut a batch of windows to `randrange(min_frames, window)` frames (2-3.49 s by default)."""
    frames = batch.shape[1]
    if frames <= min_frames:
        return batch
    return batch[:, : rng.randrange(min_frames, frames)]


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


def training_set(cfg: TrainConfig) -> TrainingSet:
    """The labelled training recordings, from a train labels file or a dataset CSV."""
    if cfg.train_labels_path:
        return _listed_training_set(cfg)
    if cfg.train_csv:
        return _dataset_training_set(cfg)
    raise ConfigError("no training data: set train_labels_path=... or train_csv=...")


def validation_pairs(cfg: TrainConfig) -> ValidationPairs:
    """The validation pairs, from client/impostor files or a dataset CSV (+ trials)."""
    if cfg.valid_clients and cfg.valid_impostors:
        return _listed_pairs(cfg)
    if cfg.valid_csv:
        return _dataset_pairs(cfg)
    raise ConfigError("no validation: set valid_clients= and valid_impostors=, or valid_csv=")


def _listed_training_set(cfg: TrainConfig) -> TrainingSet:
    rows = read_train_labels(cfg.train_labels_path)
    items = usable_items([list_item(cfg.train_data_dir, rel, label) for rel, label in rows])
    check_feature_paths(items, cfg.train_labels_path)
    if not items:
        raise DataError(f"{cfg.train_labels_path}: no readable training recording")
    return TrainingSet(items, max(label for _, label in rows) + 1)


def _listed_pairs(cfg: TrainConfig) -> ValidationPairs:
    clients, impostors = read_pairs(cfg.valid_clients), read_pairs(cfg.valid_impostors)
    names = sorted({p for pair in clients + impostors for p in pair})
    items = usable_items([list_item(cfg.valid_data_dir, rel) for rel in names])
    check_feature_paths(items, f"{cfg.valid_clients} and {cfg.valid_impostors}")
    index = {item.name: i for i, item in enumerate(items)}
    pairs = [(a, b, 1) for a, b in clients] + [(a, b, 0) for a, b in impostors]
    kept = [(index[a], index[b], t) for a, b, t in pairs if a in index and b in index]
    if len(kept) < len(pairs):
        log.warning("skipping %d validation pairs with missing recordings", len(pairs) - len(kept))
    a, b, labels = (np.array(col) for col in zip(*kept, strict=True)) if kept else ([], [], [])
    return ValidationPairs(
        items, np.asarray(a, int), np.asarray(b, int), np.asarray(labels, np.int8)
    )


def _dataset_items(path: str, cfg: TrainConfig) -> tuple[list[FeatureItem], list]:
    ds = AudioDataset.from_path(path)
    usable = [item for item in ds.items if item.audio is not None and item.speaker is not None]
    for item in ds.items:
        if item.audio is None or item.speaker is None:
            log.warning("skipping %s: no audio or no speaker", item.id)
    features_dir = Path(cfg.features_dir) if cfg.features_dir else None
    root = _dataset_tree_root(Path(path), [Path(item.audio) for item in usable])
    items = [audio_item(item.id, Path(item.audio), -1, features_dir, root) for item in usable]
    check_feature_paths(items, path)
    return items, [item.speaker for item in usable]


def _dataset_tree_root(source: Path, audio_paths: Sequence[Path]) -> Path:
    """`feature_tree_root` of a dataset file (its folder) or directory."""
    return feature_tree_root(source.parent if source.is_file() else source, audio_paths)


def _dataset_training_set(cfg: TrainConfig) -> TrainingSet:
    items, speakers = _dataset_items(cfg.train_csv, cfg)
    names = sorted(set(speakers))
    code = {name: i for i, name in enumerate(names)}
    for item, speaker in zip(items, speakers, strict=True):
        item.label = code[speaker]
    if len(names) < 2:
        raise DataError(f"{cfg.train_csv}: training needs at least 2 speakers")
    return TrainingSet(items, len(names))


def _dataset_pairs(cfg: TrainConfig) -> ValidationPairs:
    items, speakers = _dataset_items(cfg.valid_csv, cfg)
    if not cfg.valid_trials:
        return ValidationPairs(items, *generate_pairs(speakers, cfg.max_valid_pairs, cfg.seed))
    trials = load_trials(cfg.valid_trials)
    index = {item.name: i for i, item in enumerate(items)}
    rows = list(zip(trials.enrollment, trials.test, strict=True))
    unknown = [ids for pair in rows for ids in pair if len(ids) != 1 or ids[0] not in index]
    if unknown:
        raise DataError(
            f"{cfg.valid_trials}: id cell {','.join(unknown[0])} is not one id of {cfg.valid_csv}"
        )
    a = np.array([index[e[0]] for e, _ in rows])
    b = np.array([index[t[0]] for _, t in rows])
    labels = (np.asarray(speakers)[a] == np.asarray(speakers)[b]).astype(np.int8)
    return ValidationPairs(items, a, b, labels)


def feature_items(
    source: Path, data_dir: Path | None = None, out_dir: Path | None = None
) -> list[FeatureItem]:
    """Items of a `files.lst` (paths under `data_dir`) or of a dataset, features in `out_dir`.

    Without `out_dir` features go beside the audio; with it, they mirror the list's paths or
    the dataset's folder tree (`feature_tree_root`) under `out_dir`. Two recordings that
    would share a feature file are refused, naming both.
    """
    if source.is_file() and source.suffix in LIST_SUFFIXES:
        base = data_dir or Path(".")
        items = [list_item(base, rel) for rel in read_file_list(source)]
        if out_dir is not None:
            for item in items:
                item.features_path = out_dir / item.features_path.relative_to(base)
        check_feature_paths(items, source)
        return items
    audios = [(it.id, Path(it.audio)) for it in AudioDataset.from_path(source).items if it.audio]
    root = _dataset_tree_root(source, [audio for _, audio in audios])
    items = [audio_item(name, audio, -1, out_dir, root) for name, audio in audios]
    check_feature_paths(items, source)
    return items


def write_features(
    source: Path,
    data_dir: Path | None = None,
    out_dir: Path | None = None,
    force: bool = False,
    recipe: str = DEFAULT_RECIPE,
) -> dict[str, int]:
    """`balr extractor features`: raw log-mel `.npy` files of a list or dataset (counts);
    train with the same `feature_recipe` as the files were computed with."""
    items = feature_items(source, data_dir, out_dir)
    if not items:
        raise DataError(f"{source}: no audio items")
    return precompute_features(items, force, recipe)
