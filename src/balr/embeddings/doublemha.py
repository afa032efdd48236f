"""`embeddings.model=doublemha`: embeddings from a checkpoint trained by `balr extractor train`
or by the authors' reference implementation (its `{model_name}_{step}.chkpt`).

A thin adapter, like every model module of `balr.embeddings`: the registry entry and its
config live here, next to the other models `balr extract` can choose, while the model, its
features and the waveform-to-embedding computation stay in `balr.doublemha`
(`inference.embed_waves`, the same path `balr extractor embed` runs). The dependency points
one way, so `balr.doublemha` never imports the embedding registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from balr.doublemha import SpeakerClassifier, embed_waves
from balr.doublemha.features import SAMPLE_RATE
from balr.embeddings.base import EmbeddingModel, register_embedding_model
from balr.errors import ConfigError

NAME = "doublemha"


@dataclass
class DoubleMHAConfig:
    """`embeddings.model=doublemha` settings: the checkpoint file or training directory (balr's
    `best.pt` / `last.pt`, or the reference's `.chkpt`: `balr.doublemha.reference`)."""

    name: str = NAME
    checkpoint_path: str = ""
    min_duration_s: float = 0.1


class DoubleMHAEmbedder(EmbeddingModel):
    """A trained `SpeakerClassifier` behind the `EmbeddingModel` interface (16 kHz waves)."""

    name = NAME
    sample_rate = SAMPLE_RATE

    def __init__(self, cfg: DoubleMHAConfig):
        super().__init__()
        if not cfg.checkpoint_path:
            raise ConfigError("doublemha: set embeddings.model.checkpoint_path=CHECKPOINT")
        self.extractor = SpeakerClassifier.load(cfg.checkpoint_path)
        self.embedding_dim = self.extractor.settings.embedding_size
        self.min_duration_s = float(cfg.min_duration_s)

    def embed(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, samples) in [-1, 1] at 16 kHz -> (B, embedding_size)."""
        return embed_waves(self.extractor, waves.to(torch.float32), lengths)


@register_embedding_model(NAME, DoubleMHAConfig)
def build(cfg) -> DoubleMHAEmbedder:
    """Factory for the registry (cfg: the `embeddings.model` node)."""
    defaults = DoubleMHAConfig()
    values = {key: getattr(cfg, key, getattr(defaults, key)) for key in vars(defaults)}
    return DoubleMHAEmbedder(DoubleMHAConfig(**values))
