"""The reference's hub keys (`embeddings.model.model_repo`, `model_name`, `config_name`) on
any embedding model: the reference's default model is Wespeaker from the Hugging Face hub, so
a reference command line may set them without `embeddings.model=wespeaker`. balr reads
models from local folders only: under another model the keys give one clear message instead
of Hydra's "Could not override"."""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

from balr.errors import ConfigError

HUB_KEYS = tuple(f"embeddings.model.{key}" for key in ("model_repo", "model_name", "config_name"))
HUB_MESSAGE = "balr does not fetch hub models; put it in a local dir and pass model_dir"
#: the embedding model whose config has the hub keys (a local folder as model_repo works)
HUB_MODEL = "wespeaker"


def hub_key_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides (`KEY=VALUE`, also `+KEY=VALUE`) that set one of the hub keys."""
    return [item for item in overrides if item.split("=", 1)[0].lstrip("+") in HUB_KEYS]


def check_hub_keys(cfg: DictConfig, hub_overrides: Sequence[str]) -> None:
    """ConfigError with the one message when hub keys are set and `cfg`'s embedding model
    (composed without them) is not Wespeaker's; nothing under Wespeaker, which has them, or
    in a config without an embedding model (Hydra then refuses the unknown key)."""
    model = OmegaConf.select(cfg, "embeddings.model.name")
    if not hub_overrides or model in (HUB_MODEL, None):
        return
    raise ConfigError(
        f"{hub_overrides[0].lstrip('+')}: a key of the reference's hub model, not of "
        f"embeddings.model={model}; {HUB_MESSAGE} (embeddings.model=wespeaker "
        "embeddings.model.model_dir=DIR)"
    )
