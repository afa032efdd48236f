"""The DoubleMHA speaker classifier: front-end -> pooling -> FC head (embedding) -> AM-softmax.

The architecture of India et al., "Double Multi-Head Attention for Speaker Verification",
ICASSP 2021 (arXiv 2007.13199): a VGG-style CNN turns log-mel frames into frame vectors, an
attention pooling turns them into one utterance vector, two fully connected layers give the
speaker embedding, and an AM-softmax layer classifies the training speakers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from balr import records
from balr.doublemha.checkpoint import load_checkpoint, save_checkpoint
from balr.doublemha.config import ModelSettings
from balr.doublemha.frontends import build_front_end
from balr.doublemha.heads import AMSoftmax
from balr.doublemha.pooling import Pooled, build_pooling
from balr.errors import ConfigError, ModelError
from balr.estimator import Estimator


class SpeakerClassifier(nn.Module, Estimator):
    """Log-mel `(B, T, n_mels)` -> logits; `embed` gives the speaker embedding.

    An estimator (`balr.estimator`) whose one hyper-parameter is its `settings` and whose
    weights are its state (a torch module counts as fitted); `save(path)` writes a checkpoint
    and `SpeakerClassifier.load(path)` reads one back in eval mode, settings included.
    """

    estimator_label: ClassVar[str] = "the DoubleMHA speaker classifier"

    def __init__(self, settings: ModelSettings):
        super().__init__()
        if settings.num_spkrs < 2:
            raise ConfigError(f"num_spkrs {settings.num_spkrs}: need at least 2 speakers")
        self.settings = settings
        self.front_end = build_front_end(settings.front_end, settings.kernel_size, settings.n_mels)
        self.pooling = build_pooling(
            settings.pooling_method,
            self.front_end.output_dim,
            settings.heads_number,
            settings.mask_prob,
        )
        size = settings.embedding_size
        self.embedding_head = nn.Sequential(
            nn.Linear(self.pooling.output_dim, size),
            nn.ReLU(),
            nn.Linear(size, size),
            nn.ReLU(),
            nn.BatchNorm1d(size),
        )
        self.classifier_layer = nn.Linear(size, size)
        self.prediction_layer = AMSoftmax(
            size,
            settings.num_spkrs,
            settings.scalingFactor,
            settings.marginFactor,
            settings.annealing,
        )

    def _pool(self, feats: torch.Tensor, lengths: torch.Tensor | None) -> Pooled:
        frames, frame_lengths = self.front_end(feats, lengths)
        return self.pooling(frames, frame_lengths)

    def embed(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Speaker embeddings `(B, embedding_size)`; `lengths` are valid frames per row."""
        return self.embedding_head(self._pool(feats, lengths).vector)

    def forward(
        self,
        feats: torch.Tensor,
        labels: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
        step: int = 0,
    ) -> torch.Tensor:
        """AM-softmax logits `(B, num_spkrs)` (margin applied when labels are given)."""
        hidden = self.classifier_layer(self.embed(feats, lengths))
        return self.prediction_layer(hidden, labels, step)

    def alignment(
        self, feats: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Time-by-head attention `(B, T', H)` and head weights `(B, H)`.

        Head weights are learned for DoubleMHA; MHA concatenates heads, so they are uniform.
        """
        pooled = self._pool(feats, lengths)
        heads = pooled.time_weights.shape[-1]
        head_weights = pooled.head_weights
        if head_weights is None:
            head_weights = torch.full((feats.shape[0], heads), 1.0 / heads, device=feats.device)
        return pooled.time_weights, head_weights

    def save(self, path: str | os.PathLike) -> Path:
        """Write the weights and settings as a checkpoint (plus `settings.json` beside it);
        the checkpoint's path."""
        save_checkpoint(path, self, None, self.settings.to_dict(), epoch=0, step=0)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> SpeakerClassifier:
        """The classifier of a checkpoint file or training directory, in eval mode."""
        payload = load_checkpoint(path, device)
        try:
            model = cls(ModelSettings.from_dict(payload["settings"]))
        except (ConfigError, ValueError, TypeError) as exc:
            raise ModelError(f"{path}: field 'settings' is not valid ({exc})") from None
        expected = {name: tuple(value.shape) for name, value in model.state_dict().items()}
        records.check_state_dict(path, payload["model"], expected)
        model.load_state_dict(payload["model"])
        return model.to(device).eval()
