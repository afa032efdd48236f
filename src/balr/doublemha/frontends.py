"""VGG-style CNN front-ends: `(B, T, 80)` features -> `(B, ceil(T/2^L), ceil(80/2^L) * k)` frames.

With `lengths`, activations past each item's valid frames are zeroed after every ReLU: as
they are non-negative, max-pooling and zero-padded convolutions then see exactly what
they would see on the unpadded item, so batching never changes an embedding.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from balr.errors import ConfigError

FRONT_END_LAYERS = {"VGG3L": 3, "VGG4L": 4}


def pooled_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """Frames left by a 2x2 ceil-mode max-pool: ceil(T / 2)."""
    return torch.div(lengths + 1, 2, rounding_mode="floor")


def _zero_padding(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    if lengths is None:
        return x
    valid = torch.arange(x.shape[2], device=x.device)[None, :] < lengths[:, None]
    return x * valid[:, None, :, None]


class VGGBlock(nn.Module):
    """conv3x3 -> ReLU -> conv3x3 -> ReLU -> maxpool 2x2 (ceil mode: odd sizes keep a frame)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = _zero_padding(torch.relu(self.conv1(x)), lengths)
        x = _zero_padding(torch.relu(self.conv2(x)), lengths)
        return self.pool(x), None if lengths is None else pooled_lengths(lengths)


class VGGFrontEnd(nn.Module):
    """L blocks whose channels grow to `kernel_size` (k/2^(L-1), ..., k/2, k)."""

    def __init__(self, num_layers: int, kernel_size: int, n_mels: int = 80):
        super().__init__()
        if kernel_size % 2 ** (num_layers - 1):
            raise ConfigError(
                f"kernel_size {kernel_size}: must be divisible by {2 ** (num_layers - 1)}"
            )
        channels = [kernel_size // 2 ** (num_layers - 1 - i) for i in range(num_layers)]
        self.blocks = nn.ModuleList(
            [VGGBlock(a, b) for a, b in zip([1, *channels[:-1]], channels, strict=True)]
        )
        self.num_layers = num_layers
        self.output_dim = math.ceil(n_mels / 2**num_layers) * kernel_size

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Frame vectors `(B, T', d)` and their valid lengths (None when not given)."""
        out = feats.unsqueeze(1)  # (B, 1, T, F)
        for block in self.blocks:
            out, lengths = block(out, lengths)
        batch, channels, frames, freqs = out.shape
        return out.permute(0, 2, 1, 3).reshape(batch, frames, channels * freqs), lengths


def build_front_end(name: str, kernel_size: int, n_mels: int = 80) -> VGGFrontEnd:
    """VGG3L or VGG4L by name."""
    if name not in FRONT_END_LAYERS:
        raise ConfigError(f"front_end '{name}': expected one of {sorted(FRONT_END_LAYERS)}")
    return VGGFrontEnd(FRONT_END_LAYERS[name], kernel_size, n_mels)
