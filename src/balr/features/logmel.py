"""Log-mel features of the DoubleMHA extractor (SPEC section 2), computed with torch.

Recipe: waveform scaled to the 16-bit range, pre-emphasis 0.97, 25 ms Hamming window
(periodic, centred in a 512-point FFT), 10 ms hop, frames centred on the hop grid (the
signal is zero-padded by n_fft/2 on both sides), magnitude spectrum, 80 mel bands, then
`log(max(1, x))` and per-utterance `cmn` or `cmvn`. The filterbank is librosa's default:
Slaney mel scale with Slaney (area) normalisation, 0 Hz to Nyquist.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch

from balr.audio import INT16_SCALE, load_audio
from balr.errors import ConfigError

SAMPLE_RATE = 16000
N_MELS = 80
N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
PREEMPHASIS = 0.97
NORMALIZATIONS = ("cmn", "cmvn", "none")
STD_FLOOR = 1e-5


@functools.lru_cache(maxsize=4)
def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS):
    """The `(n_mels, n_fft // 2 + 1)` Slaney mel filterbank as a float32 tensor."""
    import librosa

    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
    return torch.from_numpy(np.asarray(fb, dtype=np.float32))


def num_frames(num_samples: int | torch.Tensor, hop_length: int = HOP_LENGTH):
    """Frames produced for a signal of `num_samples` samples (centred framing)."""
    return num_samples // hop_length + 1


def log_mel(
    waves: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | None = None,
    sample_rate: int = SAMPLE_RATE,
    n_mels: int = N_MELS,
) -> torch.Tensor:
    """Raw log-mel: `(samples,)` -> `(T, n_mels)`, `(B, samples)` -> `(B, T, n_mels)`.

    `waves` are float samples in [-1, 1]; scaling to 16 bits happens here. With `lengths`
    the padding is zeroed after pre-emphasis, so a padded item's valid frames equal its own.
    """
    x = torch.as_tensor(waves, dtype=torch.float32)
    single = x.dim() == 1
    x = x.reshape(-1, x.shape[-1]) * INT16_SCALE
    x = torch.cat([x[:, :1], x[:, 1:] - PREEMPHASIS * x[:, :-1]], dim=1)
    if lengths is not None:
        x = x * (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None])
    window = torch.hamming_window(WIN_LENGTH, periodic=True, dtype=torch.float32, device=x.device)
    spec = torch.stft(
        x,
        N_FFT,
        hop_length=HOP_LENGTH,
        win_length=WIN_LENGTH,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    ).abs()
    mel = torch.matmul(mel_filterbank(sample_rate, N_FFT, n_mels).to(x.device), spec)
    feats = torch.log(torch.clamp(mel, min=1.0)).transpose(1, 2)
    return feats[0] if single else feats


def normalize(
    feats: torch.Tensor, normalization: str = "cmn", lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-utterance mean (`cmn`) or mean+variance (`cmvn`) normalisation over time.

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
            std = ((x * mask) ** 2).sum(1, keepdim=True).div(count).sqrt().clamp(min=STD_FLOOR)
            x = x / std
    x = x * mask
    return x[0] if single else x


def compute_features(
    waves: torch.Tensor | np.ndarray,
    normalization: str = "cmn",
    lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Normalised `(B, T, 80)` features of zero-padded 16 kHz waves `(B, samples)`; frame counts."""
    lengths = None if lengths is None else torch.as_tensor(lengths)
    feats = log_mel(waves, lengths)
    frame_lengths = None if lengths is None else num_frames(lengths)
    return normalize(feats, normalization, frame_lengths), frame_lengths


def file_features(path: str | os.PathLike, normalization: str = "none") -> np.ndarray:
    """Features `(T, 80)` float32 of one audio file (any format, resampled to 16 kHz)."""
    wave = load_audio(path, SAMPLE_RATE)
    with torch.no_grad():
        return normalize(log_mel(wave), normalization).numpy()
