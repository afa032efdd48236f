"""The GE2E encoder's front-end: 40-band mel power spectrogram of 16 kHz audio, in torch.

The input of the GE2E speaker encoder (Wan et al., "Generalized End-to-End Loss for Speaker
Verification", ICASSP 2018) as resemblyzer computes it: 25 ms periodic Hann window, 10 ms
hop, frames centred on the hop grid (the signal zero-padded by n_fft/2 on both sides), power
spectrum, 40 mel bands of Slaney's scale with Slaney (area) normalisation from 0 Hz to
Nyquist (librosa's default filterbank), no log. Batched: `(B, samples)` -> `(B, frames, 40)`.
"""

from __future__ import annotations

import torch
from torch import nn

from balr.embeddings.ge2e_numpy import HOP, N_FFT, N_MELS, SAMPLE_RATE
from balr.embeddings.ge2e_numpy import slaney_mel_filterbank as numpy_filterbank

__all__ = ["HOP", "N_FFT", "N_MELS", "SAMPLE_RATE", "GE2EMel", "num_frames"]


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
    """`(n_fft // 2 + 1, n_mels)` Slaney-scale, area-normalised triangles from 0 to Nyquist
    (`balr.embeddings.ge2e_numpy.slaney_mel_filterbank`, as a tensor)."""
    return torch.from_numpy(numpy_filterbank(sample_rate, n_fft, n_mels))
