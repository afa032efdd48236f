"""Kaldi-compatible log mel filterbanks in torch (what Wespeaker models are trained on).

Matches Kaldi's `compute-fbank-feats` / kaldi-native-fbank with: snip_edges, remove_dc_offset,
pre-emphasis, a Hamming (or Povey) window, an FFT padded to a power of two, power spectrum,
Kaldi's mel scale `1127 ln(1 + f/700)` with triangles built in the mel domain, and `log(max(x,
eps))`; no energy, no dither. Batched: `(B, samples)` in, `(B, frames, bins)` out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

FLOAT_EPS = float(torch.finfo(torch.float32).eps)


@dataclass(frozen=True)
class FbankOptions:
    """Kaldi fbank settings (Wespeaker defaults: 80 bins, 25/10 ms, Hamming)."""

    sample_rate: int = 16000
    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    preemphasis: float = 0.97
    remove_dc_offset: bool = True
    window: str = "hamming"
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from the Nyquist frequency, as in Kaldi

    @property
    def frame_length(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def frame_shift(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000)

    @property
    def fft_size(self) -> int:
        return 1 << math.ceil(math.log2(self.frame_length))


def num_frames(num_samples: torch.Tensor | int, opts: FbankOptions = FbankOptions()):
    """Frames Kaldi produces from `num_samples` samples (snip_edges: whole frames only)."""
    if isinstance(num_samples, torch.Tensor):
        frames = (num_samples - opts.frame_length) // opts.frame_shift + 1
        return torch.clamp(frames, min=0)
    return max(0, (num_samples - opts.frame_length) // opts.frame_shift + 1)


def kaldi_window(opts: FbankOptions, dtype=torch.float32) -> torch.Tensor:
    """Kaldi's analysis window (symmetric: denominator N - 1)."""
    n = opts.frame_length
    phase = 2 * math.pi * torch.arange(n, dtype=torch.float64) / (n - 1)
    if opts.window == "hamming":
        window = 0.54 - 0.46 * torch.cos(phase)
    elif opts.window == "hanning":
        window = 0.5 - 0.5 * torch.cos(phase)
    elif opts.window == "povey":
        window = (0.5 - 0.5 * torch.cos(phase)) ** 0.85
    elif opts.window == "rectangular":
        window = torch.ones(n, dtype=torch.float64)
    else:
        raise ValueError(f"unknown window '{opts.window}'")
    return window.to(dtype)


def kaldi_mel_banks(opts: FbankOptions, dtype=torch.float32) -> torch.Tensor:
    """`(fft_size // 2 + 1, num_mel_bins)` triangles on Kaldi's mel scale (Nyquist row 0)."""
    nyquist = opts.sample_rate / 2
    high = opts.high_freq if opts.high_freq > 0 else nyquist + opts.high_freq
    mel_low, mel_high = _mel(torch.tensor(opts.low_freq)), _mel(torch.tensor(high))
    delta = (mel_high - mel_low) / (opts.num_mel_bins + 1)
    edges = mel_low + delta * torch.arange(opts.num_mel_bins + 2, dtype=torch.float64)
    left, center, right = edges[:-2], edges[1:-1], edges[2:]
    n_bins = opts.fft_size // 2
    freqs = torch.arange(n_bins, dtype=torch.float64) * opts.sample_rate / opts.fft_size
    mel = _mel(freqs)[:, None]
    rising = (mel - left) / (center - left)
    falling = (right - mel) / (right - center)
    weights = torch.where(mel <= center, rising, falling)
    weights = torch.where((mel > left) & (mel < right), weights, torch.zeros_like(weights))
    nyquist_row = torch.zeros(1, opts.num_mel_bins, dtype=torch.float64)
    return torch.cat([weights, nyquist_row]).to(dtype)


def kaldi_fbank(waves: torch.Tensor, opts: FbankOptions = FbankOptions()) -> torch.Tensor:
    """Log mel filterbanks of 16-bit-scaled waves: `(B, samples)` -> `(B, frames, bins)`.

    A 1-D wave gives `(frames, bins)`. Items of a zero-padded batch are exact on their first
    `num_frames(length)` frames.
    """
    single = waves.dim() == 1
    waves = waves[None] if single else waves
    waves = waves.to(torch.float32)
    if waves.shape[-1] < opts.frame_length:
        out = waves.new_zeros(waves.shape[0], 0, opts.num_mel_bins)
        return out[0] if single else out
    frames = waves.unfold(-1, opts.frame_length, opts.frame_shift)
    if opts.remove_dc_offset:
        frames = frames - frames.mean(dim=-1, keepdim=True)
    if opts.preemphasis:
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = frames - opts.preemphasis * previous
    frames = frames * kaldi_window(opts).to(frames.device)
    spectrum = torch.fft.rfft(frames, n=opts.fft_size).abs().pow(2)
    mel = spectrum @ kaldi_mel_banks(opts).to(frames.device)
    feats = torch.log(torch.clamp(mel, min=FLOAT_EPS))
    return feats[0] if single else feats


def mean_normalize(
    feats: torch.Tensor, frames: torch.Tensor | None = None, variance: bool = False
) -> torch.Tensor:
    """Per-utterance mean (and optionally variance) normalisation over each item's frames."""
    if feats.dim() == 2:
        feats = feats[None]
    count = feats.shape[1]
    frames = frames if frames is not None else torch.full((feats.shape[0],), count)
    mask = torch.arange(count, device=feats.device)[None] < frames.to(feats.device)[:, None]
    mask = mask[..., None].to(feats.dtype)
    n = torch.clamp(frames.to(feats.device), min=1).to(feats.dtype)[:, None, None]
    mean = (feats * mask).sum(dim=1, keepdim=True) / n
    centred = (feats - mean) * mask
    if variance:
        std = torch.sqrt((centred**2).sum(dim=1, keepdim=True) / n).clamp(min=1e-5)
        centred = centred / std
    return centred


def _mel(freq: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(freq.to(torch.float64) / 700.0)
