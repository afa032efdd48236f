"""Hydra structured configs of `balr score`: the `scorer` group (one option per scorer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from balr.config import compose_config, register_config

SCORE_CONFIG = "score"


@dataclass
class CosineConfig:
    name: str = "cosine"
    checkpoint_path: str | None = None
    vectors: str = "ba"  # ba: summed activation counts; emb: summed embeddings


@dataclass
class DNAConfig:
    name: str = "dna"
    checkpoint_path: str | None = None
    drop_in: float = 0.12
    typicality_threshold: float = 1e-4


@dataclass
class SpeechConfig(DNAConfig):
    name: str = "speech"


@dataclass
class MaxLLRConfig:
    name: str = "maxllr"
    checkpoint_path: str | None = None
    f: float = 0.5  # EM start values (p > q)
    p: float = 0.9
    q: float = 0.1
    n_iterations: int = 50
    tol: float = 1e-6
    eps: float = 1e-6  # probabilities stay in [eps, 1 - eps]


@dataclass
class BetaConfig:
    name: str = "beta"
    checkpoint_path: str | None = None
    n_iterations: int = 1000  # Minka fixed-point iterations (at most)
    tol: float = 1e-7
    min_alpha: float = 1e-6


@dataclass
class ScoreConfig:
    defaults: list[Any] = field(default_factory=lambda: [{"scorer": "beta"}, "_self_"])
    scorer: Any = MISSING
    chunk_size: int = 32768  # trials scored at once (bounds memory)


SCORER_CONFIGS = {
    "cosine": CosineConfig,
    "dna": DNAConfig,
    "speech": SpeechConfig,
    "maxllr": MaxLLRConfig,
    "beta": BetaConfig,
}


def register_score_configs() -> None:
    """Register the `score` config and one `scorer` group option per scorer."""
    register_config(SCORE_CONFIG, ScoreConfig)
    for name, node in SCORER_CONFIGS.items():
        register_config(name, node, group="scorer")


def score_config(overrides: Sequence[str] | None = None) -> DictConfig:
    """The `balr score` config with Hydra overrides applied (`scorer=maxllr scorer.f=0.1`)."""
    register_score_configs()
    return compose_config(SCORE_CONFIG, overrides)


def scorer_params(cfg: DictConfig) -> dict[str, Any]:
    """The scorer's hyper-parameters: its config without `name` and `checkpoint_path`."""
    params = OmegaConf.to_container(cfg.scorer, resolve=True)
    return {k: v for k, v in params.items() if k not in ("name", "checkpoint_path")}
