"""Using a trained extractor on audio files: embeddings and attention alignments."""

from __future__ import annotations

import os

import numpy as np
import torch

from balr.extractor.model import SpeakerClassifier
from balr.features import logmel


def file_features(path: str | os.PathLike, normalization: str) -> torch.Tensor:
    """Normalised `(1, T, 80)` features of an audio file."""
    return torch.from_numpy(logmel.file_features(path, normalization)).unsqueeze(0)


@torch.no_grad()
def embed_file(model: SpeakerClassifier, path: str | os.PathLike) -> np.ndarray:
    """The embedding `(embedding_size,)` of a whole audio file."""
    feats = file_features(path, model.settings.normalization)
    return model.eval().embed(feats)[0].numpy()


@torch.no_grad()
def file_alignment(
    model: SpeakerClassifier, path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features `(T, 80)`, time-by-head attention `(T', H)` and head weights `(H,)` of a file."""
    feats = file_features(path, model.settings.normalization)
    time_weights, head_weights = model.eval().alignment(feats)
    return feats[0].numpy(), time_weights[0].numpy(), head_weights[0].numpy()
