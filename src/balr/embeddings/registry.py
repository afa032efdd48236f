"""The embedding-model registry: `embeddings.model=NAME` -> a config and a factory.

No torch here: `balr compare` composes its config with the default model's config
(`register_model_config`) and imports the model modules, which import torch, only when
another model is named (`select_model_overrides(..., import_models=False)`). The contract of
a model module is in `balr.embeddings.base`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from balr.config import register_config
from balr.errors import ConfigError

if TYPE_CHECKING:
    from balr.embeddings.base import EmbeddingModel

MODEL_GROUP = "embeddings/model"

#: the modules defining a model (each registers itself when imported)
MODEL_MODULES = (
    "balr.embeddings.doublemha",
    "balr.embeddings.ge2e",
    "balr.embeddings.wespeaker_resnet",
)

_FACTORIES: dict[str, Callable[[Any], EmbeddingModel]] = {}
_CONFIGS: dict[str, type] = {}


def register_model_config(name: str, config_cls: type) -> None:
    """Register a model's config dataclass (its field `name` defaults to `name`) in Hydra's
    ConfigStore, group `embeddings/model`."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    if "name" not in fields or fields["name"].default != name:
        raise ConfigError(f"config {config_cls.__name__} needs a field name: str = '{name}'")
    _CONFIGS[name] = config_cls
    register_config(name=name, node=config_cls, group=MODEL_GROUP)


def register_embedding_model(name: str, config_cls: type) -> Callable:
    """Decorator: register `build(cfg) -> EmbeddingModel` under `name` and its config in Hydra."""
    register_model_config(name, config_cls)

    def decorator(factory: Callable[[Any], EmbeddingModel]) -> Callable[[Any], EmbeddingModel]:
        _FACTORIES[name] = factory
        return factory

    return decorator


def registered_models() -> list[str]:
    """Names accepted by `embeddings.model=NAME`."""
    import_model_modules()
    return sorted(_FACTORIES)


def build_embedding_model(cfg: DictConfig | Any) -> EmbeddingModel:
    """Build the model named by `cfg.name` (cfg: the `embeddings.model` config node)."""
    import_model_modules()
    name = cfg.get("name") if isinstance(cfg, DictConfig) else getattr(cfg, "name", None)
    if name not in _FACTORIES:
        known = ", ".join(sorted(_FACTORIES))
        raise ConfigError(f"unknown embedding model '{name}' (known: {known})")
    return _FACTORIES[name](cfg)


def select_model_overrides(
    overrides: Sequence[str] | None, import_models: bool = True
) -> list[str]:
    """Turn `embeddings.model=NAME` into Hydra's group choice `embeddings/model=NAME`.
    Without `import_models`, the model modules are imported only when a model whose config
    is not registered yet is named."""
    chosen = [value.strip() for key, value in _model_choices(overrides)]
    if import_models or not set(chosen) <= set(_CONFIGS):
        import_model_modules()
    result = []
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if sep and key.strip() == "embeddings.model":
            if value.strip() not in _CONFIGS:
                known = ", ".join(sorted(_FACTORIES))
                raise ConfigError(f"unknown embedding model '{value.strip()}' (known: {known})")
            item = f"{MODEL_GROUP}={value.strip()}"
        result.append(item)
    return result


def _model_choices(overrides: Sequence[str] | None) -> list[tuple[str, str]]:
    pairs = [item.partition("=") for item in overrides or []]
    return [(key, value) for key, sep, value in pairs if sep and key.strip() == "embeddings.model"]


def import_model_modules() -> None:
    """Import every model module, so each registers itself."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
