"""Hydra structured configs of `balr train` and `balr binarize`.

Each loss is an option of the config group `trainer/losses` placed at
`trainer.losses.<name>`, so `'trainer.losses=[mse, arcface]'` selects losses and
`trainer.losses.arcface.margin=0.5` tunes one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from balr.config import compose_config, register_config
from balr.errors import ConfigError

TRAIN_CONFIG = "bae_train"
BINARIZE_CONFIG = "bae_binarize"
DEFAULT_LOSSES = ["mse", "triplet"]  # the reference library's


@dataclass
class LossConfig:
    weight: float = 1.0  # of this loss in the total


@dataclass
class MSELossConfig(LossConfig):
    pass


@dataclass
class TripletLossConfig(LossConfig):
    margin: float = 0.3  # the miner's
    type_of_triplets: str = "all"  # all, hard, semihard or easy
    loss_margin: float = 0.05  # the hinge's (pytorch-metric-learning's default)
    backend: str = "dense"  # dense (fast) or pml (pytorch-metric-learning's miner + loss)


@dataclass
class ArcFaceLossConfig(LossConfig):
    weight: float = 0.001
    margin: float = 0.3  # the triplet miner's, whose mined samples weight the loss
    type_of_triplets: str = "all"
    angular_margin: float = 28.6  # ArcFace's margin, in degrees (pytorch-metric-learning's)
    scale: float = 64.0


@dataclass
class SparsityLossConfig(LossConfig):
    weight: float = 1e-4


LATENT_DIM = 512  # binary attributes, when neither model.latent_dim nor trainer.internal_dim


@dataclass
class ModelConfig:
    input_dim: int | None = None  # None: the embeddings' dimension
    latent_dim: int | None = None  # None: trainer.internal_dim, else LATENT_DIM


@dataclass
class DataConfig:
    """Batching. `sampler=null` gives plain batches of `batch_size` (speakers mixed); with an
    NxM sampler `batch_size`, if set, must equal N x M (as in the reference library).
    `num_workers`, `normalize_mean` and `normalize_var` are the reference's data-loader and
    filterbank options: accepted, with no effect on training, whose embeddings are already
    extracted and held in memory."""

    N_classes_per_batch: int = 8
    M_samples_per_class: int = 8
    sampler: str | None = "RandomNxMSampler"  # or ExhaustiveNxMSampler, a dotted path, null
    val_sampler: str | None = "ExhaustiveNxMSampler"
    batch_size: int | None = None  # None: N x M
    shuffle: bool = True  # shuffle the training batches every epoch
    drop_last: bool = False  # training: drop the last short NxM batch instead of padding it
    num_workers: int = 1
    normalize_mean: bool = True
    normalize_var: bool = False


@dataclass
class TrainerConfig:
    epochs: int = 64
    learning_rate: float = 1e-3
    seed: int = 1234
    val_period: int = 10  # validate every k epochs and after the last one (0: never)
    log_period: int = 2  # train losses to TensorBoard every k epochs (0: never)
    step_log_period: int = 0  # also the step loss every k steps (0: never)
    save_period: int = 0  # also keep weights/epochN every k epochs (0: only last and best)
    checkpoint_period: int = 1  # write last/best, state, history every k epochs and after
    # the last one (0: only after the last; best is then the best of the epochs written)
    ste_gradient: str = "clip"  # straight-through gradient: clip (the reference's) or gate
    weight_init: str = "kaiming_normal"  # of the Linear weights: kaiming_normal (the
    # reference's, fan-in) or pytorch (torch's default)
    resume: bool = False  # continue from <save_dir>/weights/last
    # the reference's names of model.input_dim and model.latent_dim (its defaults 256 / 512;
    # None: not given, the embeddings' dimension / LATENT_DIM)
    input_dim: int | None = None
    internal_dim: int | None = None
    progress: bool = True
    losses: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    defaults: list[Any] = field(
        default_factory=lambda: [{"trainer/losses": list(DEFAULT_LOSSES)}, "_self_"]
    )
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


@dataclass
class EncoderModelConfig:
    checkpoint_path: str | None = None
    # the reference's shape keys (its defaults 256 / 512); None: the checkpoint's. Set, they
    # must match the checkpoint's weights (`balr.binary_attributes.binarize.check_shape`)
    input_dim: int | None = None
    internal_dim: int | None = None


@dataclass
class EncoderConfig:
    model: EncoderModelConfig = field(default_factory=EncoderModelConfig)
    batch_size: int = 4096
    # apply the encoder to embeddings recorded for another model than it was trained on
    allow_other_embedding_model: bool = False


@dataclass
class BinarizeConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    vector_format: str = "txt"  # txt, npy, pkl or store


LOSS_CONFIGS = {
    "mse": MSELossConfig,
    "triplet": TripletLossConfig,
    "arcface": ArcFaceLossConfig,
    "sparsity": SparsityLossConfig,
}


def register_bae_configs() -> None:
    """Register the train/binarize configs and one `trainer/losses` option per loss."""
    register_config(TRAIN_CONFIG, TrainConfig)
    register_config(BINARIZE_CONFIG, BinarizeConfig)
    for name, node in LOSS_CONFIGS.items():
        register_config(name, node, group="trainer/losses", package=f"trainer.losses.{name}")


_LOSS_SELECTION = re.compile(r"^trainer\.losses=")


def _as_group_override(item: str) -> str:
    """`trainer.losses=[..]` selects options of the group `trainer/losses`."""
    return _LOSS_SELECTION.sub("trainer/losses=", item)


def train_config(overrides: Sequence[str] | None = None) -> DictConfig:
    """The `balr train` config with Hydra overrides applied, its `model` dimensions
    resolved (`resolve_dimensions`)."""
    register_bae_configs()
    cfg = compose_config(TRAIN_CONFIG, [_as_group_override(o) for o in overrides or []])
    resolve_dimensions(cfg)
    return cfg


#: the reference's `trainer.*` dimension keys and the `model.*` keys they mean
REFERENCE_DIMENSIONS = {"input_dim": "input_dim", "internal_dim": "latent_dim"}


def resolve_dimensions(cfg: DictConfig) -> None:
    """Read the reference's `trainer.input_dim` / `trainer.internal_dim` as `model.input_dim`
    / `model.latent_dim` (ConfigError when both names are given different values); an unset
    `model.latent_dim` becomes `LATENT_DIM`. `model.input_dim` stays None unless given: the
    embeddings' dimension, checked against it when training starts."""
    for reference_key, key in REFERENCE_DIMENSIONS.items():
        value, current = cfg.trainer[reference_key], cfg.model[key]
        if value is None:
            continue
        if current is not None and current != value:
            raise ConfigError(
                f"trainer.{reference_key}={value} and model.{key}={current} differ: they are "
                "one setting (the reference's name and balr's), give one of them"
            )
        cfg.model[key] = value
    if cfg.model.latent_dim is None:
        cfg.model.latent_dim = LATENT_DIM


def binarize_config(overrides: Sequence[str] | None = None) -> DictConfig:
    """The `balr binarize` config with Hydra overrides applied."""
    register_bae_configs()
    return compose_config(BINARIZE_CONFIG, overrides)
