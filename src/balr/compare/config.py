"""The `compare` config: the embedding model and extraction settings, encoder and scorer.

Registered in Hydra's ConfigStore when it is composed (`compare_config`), not on import;
composing it imports no torch unless another embedding model than GE2E is named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from balr import defaults
from balr.config import compose_config, register_config
from balr.embeddings.ge2e_numpy import NAME as GE2E_NAME
from balr.embeddings.ge2e_numpy import GE2EConfig
from balr.embeddings.registry import MODEL_GROUP, register_model_config, select_model_overrides
from balr.embeddings.segments import ExtractionOptions

CONFIG_NAME = "compare"


@dataclass
class CompareEmbeddingsConfig(ExtractionOptions):
    """`embeddings.*`: the model (a config group) and the extraction settings; a comparison
    embeds a few files in this process (no workers, small batches)."""

    model: Any = None
    batch_size: int = 8
    num_workers: int = 0


@dataclass
class EncoderModelConfig:
    checkpoint_path: str | None = None  # default: the shipped BAE


@dataclass
class EncoderConfig:
    model: EncoderModelConfig = field(default_factory=EncoderModelConfig)
    # use the encoder on another embedding model's vectors than it was trained on
    allow_other_embedding_model: bool = False


@dataclass
class CompareScorerConfig:
    checkpoint_path: str | None = None  # default: the shipped beta scorer + its calibration


@dataclass
class CompareConfig:
    defaults: list = field(
        default_factory=lambda: ["_self_", {MODEL_GROUP: defaults.EMBEDDING_MODEL}]
    )
    embeddings: CompareEmbeddingsConfig = field(default_factory=CompareEmbeddingsConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    scorer: CompareScorerConfig = field(default_factory=CompareScorerConfig)


def compare_config(overrides: Sequence[str] | None = None) -> DictConfig:
    """The resolved `compare` config (model chosen by `embeddings.model=NAME`). The model
    modules (torch) are imported only when another model than GE2E is named."""
    register_config(CONFIG_NAME, CompareConfig)
    register_model_config(GE2E_NAME, GE2EConfig)
    return compose_config(
        CONFIG_NAME, select_model_overrides(overrides, defaults.EMBEDDING_MODEL != GE2E_NAME)
    )
