"""The GE2E encoder's front-end: 40-band mel power spectrogram of 16 kHz audio, in torch.

The input of the GE2E speaker encoder (Wan et al., "Generalized End-to-End Loss for Speaker
Verification", ICASSP 2018) as resemblyzer computes it: 25 ms periodic Hann window, 10 ms
hop, frames centred on the hop grid (the signal zero-padded by n_fft/2 on both sides), power
spectrum, 40 mel bands of Slaney's scale with Slaney (area) normalisation from 0 Hz to
Nyquist (librosa's default filterbank), no log. Batched: `(B, samples)` -> `(B, frames, 40)`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40


def num_frames(num_samples: torch.Tensor | int) -> torch.Tensor | int:
    """Frames of a signal of `num_samples` samples (centred framing: 1 + samples // hop)."""
    return num_samples // HOP + 1


class GE2EMel(nn.Module):
    """Mel power spectrogram; the window and filterbank are buffers (they follow `.to`)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)
        self.register_buffer("mel_basis", slaney_mel_filterbank(), persistent=False)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, frames, 40) mel power spectrogram (centred, zero-padded frames)."""
        spec = torch.stft(
            waves,
            N_FFT,
            HOP,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        return (power.transpose(1, 2) @ self.mel_basis).contiguous()


def slaney_mel_filterbank(
    sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS
) -> torch.Tensor:
    """`(n_fft // 2 + 1, n_mels)` Slaney-scale, area-normalised triangles from 0 to Nyquist."""
    fft_freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mel_edges = torch.linspace(
        _hz_to_slaney(0.0), _hz_to_slaney(sample_rate / 2), n_mels + 2, dtype=torch.float64
    )
    hz_edges = _slaney_to_hz(mel_edges)
    widths = torch.diff(hz_edges)
    ramps = hz_edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0)
    weights *= (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    return weights.T.to(torch.float32).contiguous()


def _hz_to_slaney(hz: float) -> float:
    """Slaney mel: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above."""
    if hz < 1000:
        return 3.0 * hz / 200.0
    return 15.0 + math.log(hz / 1000.0) / (math.log(6.4) / 27.0)


def _slaney_to_hz(mel: torch.Tensor) -> torch.Tensor:
    linear = 200.0 * mel / 3.0
    log = 1000.0 * torch.exp((math.log(6.4) / 27.0) * (mel - 15.0))
    return torch.where(mel >= 15.0, log, linear)
