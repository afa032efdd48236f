"""`embeddings.model=doublemha`: embeddings from a checkpoint trained by `balr extractor train`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from balr.embeddings.base import EmbeddingModel, register_embedding_model
from balr.errors import ConfigError
from balr.extractor.checkpoint import load_extractor
from balr.features import logmel

NAME = "doublemha"


@dataclass
class DoubleMHAConfig:
    """`embeddings.model=doublemha` settings: the checkpoint file or training directory."""

    name: str = NAME
    checkpoint_path: str = ""
    min_duration_s: float = 0.1


class DoubleMHAEmbedder(EmbeddingModel):
    """Log-mel (the checkpoint's normalisation) -> trained extractor -> embedding layer output."""

    name = NAME
    sample_rate = logmel.SAMPLE_RATE

    def __init__(self, cfg: DoubleMHAConfig):
        super().__init__()
        if not cfg.checkpoint_path:
            raise ConfigError("doublemha: set embeddings.model.checkpoint_path=CHECKPOINT")
        self.extractor, settings = load_extractor(cfg.checkpoint_path)
        self.normalization = settings.get("normalization", "cmn")
        self.embedding_dim = self.extractor.settings.embedding_size
        self.min_duration_s = float(cfg.min_duration_s)

    @torch.no_grad()
    def embed(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, samples) in [-1, 1] at 16 kHz -> (B, embedding_size)."""
        waves = waves.to(self.device, torch.float32)
        feats, frames = logmel.compute_features(waves, self.normalization, lengths.to(self.device))
        return self.extractor.embed(feats, frames)


@register_embedding_model(NAME, DoubleMHAConfig)
def build(cfg) -> DoubleMHAEmbedder:
    """Factory for the registry (cfg: the `embeddings.model` node)."""
    defaults = DoubleMHAConfig()
    values = {key: getattr(cfg, key, getattr(defaults, key)) for key in vars(defaults)}
    return DoubleMHAEmbedder(DoubleMHAConfig(**values))
