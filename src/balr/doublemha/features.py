"""Log-mel features of the DoubleMHA extractor, computed with torch, and their `.npy` files.

Two recipes (`feature_recipe`), both on the waveform scaled to the 16-bit range, with
pre-emphasis 0.97, a 25 ms Hamming window (periodic, centred in a 512-point FFT), a 10 ms hop,
the magnitude spectrum, 80 Slaney-scale mel bands from 0 Hz to Nyquist, `log(max(1, x))`,
then per-utterance `cmn` or `cmvn`:

- `reference` (the default): as the authors' reference implementation of India et al.,
  "Double Multi-Head Attention for Speaker Verification", ICASSP 2021 computes it (librosa
  `stft(center=False)` and `melspectrogram(norm=None)`): frames start at sample 0 with no
  padding (`1 + (n - 512) // 160` frames), the mel filters are not area-normalised, and the
  first pre-emphasised sample is `0.03 x[0]`;
- `centred`: what balr 0.1 computed: frames centred on the hop grid (zero-padded by
  n_fft/2 on both sides, `1 + n // 160` frames), area-normalised (Slaney) filters, first
  sample kept. Checkpoints saved before the recipe was recorded in their settings use it, so
  their embeddings do not change.

Feature files hold the *raw* log-mel (`(T, 80)` float32 `.npy`, no pickle); the
normalisation is applied when they are read, so one set of files serves `cmn` and `cmvn`.
With the `reference` recipe, the reference's own feature files (`<path>.pickle`, a pickled
`(80, T)` array) are read where no `.npy` exists, with an unpickler that rebuilds only
numpy arrays and torch tensors.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from balr.audio import INT16_SCALE, load_audio
from balr.errors import BalrError, ConfigError, DataError
from balr.fileio import atomic_path

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
N_MELS = 80
N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
PREEMPHASIS = 0.97
NORMALIZATIONS = ("cmn", "cmvn", "none")
FEATURE_RECIPES = ("reference", "centred")
DEFAULT_RECIPE = "reference"
STD_FLOOR = 0.01  # cmvn divides by 1 where the std is not above this (the reference's rule)
FEATURE_SUFFIX = ".npy"
REFERENCE_FEATURE_SUFFIX = ".pickle"


def check_recipe(recipe: str) -> str:
    if recipe not in FEATURE_RECIPES:
        raise ConfigError(f"feature_recipe '{recipe}': expected one of {FEATURE_RECIPES}")
    return recipe


@functools.lru_cache(maxsize=8)
def mel_filterbank(
    sample_rate: int = SAMPLE_RATE, n_mels: int = N_MELS, area_normalised: bool = False
) -> torch.Tensor:
    """The `(n_mels, N_FFT // 2 + 1)` Slaney-scale mel filterbank as a float32 tensor."""
    import librosa

    norm = "slaney" if area_normalised else None
    fb = librosa.filters.mel(sr=sample_rate, n_fft=N_FFT, n_mels=n_mels, norm=norm)
    return torch.from_numpy(np.asarray(fb, dtype=np.float32))


def num_frames(num_samples: int | torch.Tensor, recipe: str = DEFAULT_RECIPE):
    """Frames of a signal of `num_samples` samples (0 when too short for one frame)."""
    if recipe == "centred":
        return num_samples // HOP_LENGTH + 1
    if isinstance(num_samples, torch.Tensor):
        return ((num_samples - N_FFT) // HOP_LENGTH + 1).clamp(min=0)
    return max(0, (num_samples - N_FFT) // HOP_LENGTH + 1)


def log_mel(
    waves: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | None = None,
    sample_rate: int = SAMPLE_RATE,
    n_mels: int = N_MELS,
    recipe: str = DEFAULT_RECIPE,
) -> torch.Tensor:
    """Raw log-mel: `(samples,)` -> `(T, n_mels)`, `(B, samples)` -> `(B, T, n_mels)`.

    `waves` are float samples in [-1, 1]; scaling to 16 bits happens here. With `lengths`
    the padding is zeroed after pre-emphasis, so a padded item's valid frames equal its own.
    """
    centred = check_recipe(recipe) == "centred"
    x = torch.as_tensor(waves, dtype=torch.float32)
    single = x.dim() == 1
    x = x.reshape(-1, x.shape[-1]) * INT16_SCALE
    first = x[:, :1] if centred else x[:, :1] * (1.0 - PREEMPHASIS)
    x = torch.cat([first, x[:, 1:] - PREEMPHASIS * x[:, :-1]], dim=1)
    if not centred and x.shape[1] < N_FFT:  # shorter than one frame: no frame at all
        empty = x.new_zeros(x.shape[0], 0, n_mels)
        return empty[0] if single else empty
    if lengths is not None:
        x = x * (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None])
    window = torch.hamming_window(WIN_LENGTH, periodic=True, dtype=torch.float32, device=x.device)
    spec = torch.stft(
        x,
        N_FFT,
        hop_length=HOP_LENGTH,
        win_length=WIN_LENGTH,
        window=window,
        center=centred,
        pad_mode="constant",
        return_complex=True,
    ).abs()
    mel = torch.matmul(mel_filterbank(sample_rate, n_mels, centred).to(x.device), spec)
    feats = torch.log(torch.clamp(mel, min=1.0)).transpose(1, 2)
    return feats[0] if single else feats


def normalize(
    feats: torch.Tensor, normalization: str = "cmn", lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-utterance mean (`cmn`) or mean+variance (`cmvn`) normalisation over time.

    `cmvn` divides each band by its std, or by 1 where the std is at most `STD_FLOOR`.

    Accepts `(T, F)` or `(B, T, F)`; with `lengths` (frames per row) only valid frames count
    and padded frames are set to 0.
    """
    if normalization not in NORMALIZATIONS:
        raise ConfigError(f"normalization '{normalization}': expected one of {NORMALIZATIONS}")
    single = feats.dim() == 2
    x = feats.unsqueeze(0) if single else feats
    if lengths is None:
        lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
    lengths = lengths.to(x.device)
    valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
    mask = valid.unsqueeze(-1).to(x.dtype)
    count = lengths.clamp(min=1).to(x.dtype)[:, None, None]
    if normalization != "none":
        mean = (x * mask).sum(1, keepdim=True) / count
        x = x - mean
        if normalization == "cmvn":
            std = ((x * mask) ** 2).sum(1, keepdim=True).div(count).sqrt()
            x = x / torch.where(std > STD_FLOOR, std, torch.ones_like(std))
    x = x * mask
    return x[0] if single else x


def compute_features(
    waves: torch.Tensor | np.ndarray,
    normalization: str = "cmn",
    lengths: torch.Tensor | None = None,
    recipe: str = DEFAULT_RECIPE,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Normalised `(B, T, 80)` features of zero-padded 16 kHz waves `(B, samples)`; frame counts."""
    lengths = None if lengths is None else torch.as_tensor(lengths)
    feats = log_mel(waves, lengths, recipe=recipe)
    frame_lengths = None if lengths is None else num_frames(lengths, recipe)
    return normalize(feats, normalization, frame_lengths), frame_lengths


def file_features(
    path: str | os.PathLike, normalization: str = "none", recipe: str = DEFAULT_RECIPE
) -> np.ndarray:
    """Features `(T, 80)` float32 of one audio file (any format, resampled to 16 kHz)."""
    wave = load_audio(path, SAMPLE_RATE)
    with torch.no_grad():
        feats = log_mel(wave, recipe=recipe)
    if feats.shape[0] == 0:
        raise DataError(f"{path}: shorter than one {N_FFT}-sample analysis frame")
    return normalize(feats, normalization).numpy()


@dataclass
class FeatureItem:
    """One recording: where its features are (or will be cached) and its audio, if known."""

    name: str
    features_path: Path
    audio_path: Path | None = None
    label: int = -1


class FeatureLoader:
    """Raw log-mel of an item from its `.npy` file, else computed from audio (kept in memory)."""

    def __init__(
        self, normalization: str = "cmn", cache: bool = True, recipe: str = DEFAULT_RECIPE
    ):
        self.normalization = normalization
        self.cache = cache
        self.recipe = check_recipe(recipe)
        self._memory: dict[Path, np.ndarray] = {}

    def raw(self, item: FeatureItem) -> np.ndarray:
        if item.features_path in self._memory:
            return self._memory[item.features_path]
        reference = reference_features_path(item)
        if item.features_path.is_file():
            feats = load_features(item.features_path)
        elif self.recipe == DEFAULT_RECIPE and reference.is_file():
            feats = load_reference_features(reference)
        elif item.audio_path is not None:
            feats = file_features(item.audio_path, recipe=self.recipe)
        else:
            raise DataError(f"{item.features_path}: no features and no audio for {item.name}")
        if self.cache:
            self._memory[item.features_path] = feats
        return feats

    def __call__(self, item: FeatureItem) -> np.ndarray:
        """Normalised `(T, 80)` float32 features of the whole recording."""
        feats = torch.from_numpy(np.ascontiguousarray(self.raw(item)))
        return normalize(feats, self.normalization).numpy()


def load_features(path: Path) -> np.ndarray:
    """A `(T, 80)` float32 `.npy` file (no pickle allowed)."""
    try:
        feats = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read features ({exc})") from None
    if feats.ndim != 2 or feats.shape[0] == 0:
        raise DataError(f"{path}: features must be a non-empty (T, n_mels) array")
    return feats.astype(np.float32, copy=False)


def reference_features_path(item: FeatureItem) -> Path:
    """Where the reference's feature script would have written the item's features."""
    return item.features_path.with_suffix(REFERENCE_FEATURE_SUFFIX)


def load_reference_features(path: Path) -> np.ndarray:
    """The reference's `.pickle` features, a raw `(80, T)` log-mel array, as `(T, 80)` float32;
    an unpickler that rebuilds only numpy arrays and torch tensors reads it (no code runs)."""
    from balr.data.vectors import read_pickled_vector

    try:
        feats = read_pickled_vector(path)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read the reference's features ({exc})") from None
    if feats.ndim != 2 or feats.shape[0] != N_MELS or feats.shape[1] == 0:
        raise DataError(
            f"{path}: the reference's features are ({N_MELS}, frames) arrays, got {feats.shape}"
        )
    return np.ascontiguousarray(feats.T, dtype=np.float32)


def save_features(path: Path, feats: np.ndarray) -> None:
    """Write `(T, 80)` float32 features as `.npy`, atomically."""
    with atomic_path(path, suffix=FEATURE_SUFFIX) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(feats, dtype=np.float32), allow_pickle=False)


def precompute_features(
    items: Sequence[FeatureItem], force: bool = False, recipe: str = DEFAULT_RECIPE
) -> dict[str, int]:
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
            save_features(item.features_path, file_features(item.audio_path, recipe=recipe))
            counts["written"] += 1
        except BalrError as exc:
            log.warning("skipping %s", exc)
            counts["failed"] += 1
    return counts
