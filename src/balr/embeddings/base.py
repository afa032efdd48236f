"""The embedding-model interface and registry shared by every speaker encoder.

Contract (what a model module provides):

- A config dataclass with a field ``name: str`` whose default is the registered name, plus the
  model's own keys (``model_dir``, ``device``...). ``min_duration_s`` is optional (default 0).
- A factory ``build(cfg) -> EmbeddingModel`` decorated with
  ``@register_embedding_model(NAME, ConfigCls)``. Registration also stores the config in Hydra's
  ConfigStore under group ``embeddings/model`` (package ``embeddings.model``). A command config
  declares ``embeddings.model: Any = None`` and the defaults list
  ``["_self_", {"embeddings/model": balr.defaults.EMBEDDING_MODEL}]`` (``_self_`` first, so
  the group fills the node; see ``balr.embeddings.extract.ExtractConfig``);
  passing its overrides through ``select_model_overrides`` makes ``embeddings.model=NAME``
  choose a model and ``embeddings.model.KEY=V`` set its keys (unknown keys are errors).
- ``EmbeddingModel.embed(waves, lengths)``: waves ``(B, samples)`` float32 in [-1, 1] at
  ``self.sample_rate``, zero-padded after each item's ``lengths[i]`` samples -> ``(B,
  embedding_dim)`` float32. Items of any length >= ``min_samples`` must be accepted; the padding
  must not change an item's embedding (up to float error). ``normalized = True`` declares unit
  outputs, so the average over the windows of a long recording is renormalised.
- Optionally ``embed_features(feats)``: ``(B, frames, bins)`` features of the model's own
  front-end (equal lengths) -> ``(B, embedding_dim)``, for callers that compute features once.
- ``build_embedding_model(cfg)`` dispatches on ``cfg.name`` (cfg: the ``embeddings.model`` node).
  The registry is `balr.embeddings.registry` (no torch: `balr compare` composes its config
  without it); a new model module is listed in its ``MODEL_MODULES``.

Weights are loaded with ``torch.load(..., weights_only=True)`` or safetensors: never pickle.
"""

from __future__ import annotations

import abc

import torch

from balr.embeddings.registry import (  # noqa: F401  (the registry, re-exported)
    MODEL_GROUP,
    build_embedding_model,
    register_embedding_model,
    registered_models,
    select_model_overrides,
)
from balr.errors import ModelError


class EmbeddingModel(torch.nn.Module, abc.ABC):
    """A speaker encoder: a batch of padded waveforms in, one vector per item out."""

    name: str = ""
    sample_rate: int = 16000
    embedding_dim: int = 0
    min_duration_s: float = 0.0
    normalized: bool = False  # outputs are unit vectors (averages of windows are renormalised)

    @abc.abstractmethod
    def embed(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, samples) float32 in [-1, 1], (B,) lengths in samples -> (B, embedding_dim)."""

    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Optional: (B, frames, bins) features of the model's own front-end -> (B, dim)."""
        raise ModelError(f"embedding model '{self.name}' takes waveforms only")

    @property
    def min_samples(self) -> int:
        """Shortest input (in samples) the model accepts; shorter items are reported, not run."""
        return max(1, int(round(self.min_duration_s * self.sample_rate)))

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters (CPU for a model without any)."""
        for tensor in self.parameters():
            return tensor.device
        return torch.device("cpu")

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Alias of `embed`, so the model works under DistributedDataParallel and hooks."""
        return self.embed(waves, lengths)
