"""Using a trained extractor on audio: the one path from waveforms to embeddings.

`embed_waves` (log-mel with the checkpoint's normalisation -> `SpeakerClassifier.embed`) is
what `balr extractor embed` (through `embed_file`) and `balr extract
embeddings.model=doublemha` (through the adapter in `balr.embeddings.doublemha`) both run.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from balr.audio import load_audio
from balr.doublemha.features import SAMPLE_RATE, compute_features
from balr.doublemha.model import SpeakerClassifier


@torch.no_grad()
def embed_waves(
    model: SpeakerClassifier, waves: torch.Tensor, lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """Embeddings `(B, embedding_size)` of 16 kHz waves `(B, samples)` in [-1, 1].

    With `lengths` (samples per row) the zero padding after each item is masked: an item's
    embedding does not depend on the batch it is in.
    """
    device = next(model.parameters()).device
    lengths = None if lengths is None else lengths.to(device)
    settings = model.settings
    feats, frames = compute_features(
        waves.to(device), settings.normalization, lengths, settings.feature_recipe
    )
    return model.embed(feats, frames)


def file_features(model: SpeakerClassifier, path: str | os.PathLike) -> torch.Tensor:
    """Normalised `(1, T, 80)` features of an audio file (any format, resampled to 16 kHz)."""
    wave = torch.from_numpy(load_audio(path, SAMPLE_RATE)).unsqueeze(0)
    settings = model.settings
    return compute_features(wave, settings.normalization, recipe=settings.feature_recipe)[0]


def embed_file(model: SpeakerClassifier, path: str | os.PathLike) -> np.ndarray:
    """The embedding `(embedding_size,)` of a whole audio file."""
    wave = torch.from_numpy(load_audio(path, SAMPLE_RATE)).unsqueeze(0)
    return embed_waves(model.eval(), wave)[0].cpu().numpy()


@torch.no_grad()
def file_alignment(
    model: SpeakerClassifier, path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features `(T, 80)`, time-by-head attention `(T', H)` and head weights `(H,)` of a file."""
    feats = file_features(model, path)
    time_weights, head_weights = model.eval().alignment(feats)
    return feats[0].numpy(), time_weights[0].numpy(), head_weights[0].numpy()
