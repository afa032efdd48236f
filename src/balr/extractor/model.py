"""The DoubleMHA speaker classifier: front-end -> pooling -> FC head (embedding) -> AM-softmax."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from balr.errors import ConfigError
from balr.extractor.frontends import build_front_end
from balr.extractor.pooling import Pooled, build_pooling

ANNEALING_BASE = 1000.0
ANNEALING_GAMMA = 1e-4
ANNEALING_POWER = 2.0


@dataclass
class ModelSettings:
    """Architecture settings; names and defaults are the seed's (`scripts/train.py`)."""

    front_end: str = "VGG4L"
    kernel_size: int = 1024
    embedding_size: int = 400
    heads_number: int = 32
    pooling_method: str = "DoubleMHA"
    mask_prob: float = 0.3
    scalingFactor: float = 30.0  # noqa: N815 (seed option name)
    marginFactor: float = 0.4  # noqa: N815 (seed option name)
    annealing: bool = False
    num_spkrs: int = 2
    n_mels: int = 80
    normalization: str = "cmn"

    @classmethod
    def from_dict(cls, values: dict) -> ModelSettings:
        """Keep only the known keys of a (possibly larger) settings mapping."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


def annealed_factor(step: int) -> float:
    """alpha = max(0, 1000 / (1 + 1e-4 step)^2): weight of the margin-free cosine early on."""
    return max(0.0, ANNEALING_BASE / (1.0 + ANNEALING_GAMMA * step) ** ANNEALING_POWER)


class AMSoftmax(nn.Module):
    """Additive-margin softmax logits `s * (cos - m)` on the target class, `s * cos` elsewhere.

    With annealing the target cosine is `(cos - m + alpha cos) / (1 + alpha)`.
    """

    def __init__(self, input_dim: int, num_classes: int, s: float, m: float, annealing: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, input_dim))
        nn.init.xavier_normal_(self.weight)
        self.s, self.m, self.annealing = s, m, annealing

    def cosine(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t()

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        cos = self.cosine(x)
        if labels is None:
            return self.s * cos
        target = cos - self.m
        if self.annealing:
            alpha = annealed_factor(step)
            target = (target + alpha * cos) / (1.0 + alpha)
        is_target = F.one_hot(labels, cos.shape[1]).bool()
        return self.s * torch.where(is_target, target, cos)


class SpeakerClassifier(nn.Module):
    """Log-mel `(B, T, n_mels)` -> logits; `embed` gives the speaker embedding."""

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
