"""Structured configs (dataclasses) composed with Hydra: `key=value` overrides on the CLI.

Each command registers its dataclass under a config name in Hydra's ConfigStore (and
option groups, e.g. `scorer/beta`), then calls `compose_config(name, overrides)`. The full
Hydra override grammar works: `trainer.epochs=50`, `'trainer.losses=[mse, arcface]'`,
`scorer=maxllr`, `+new.key=1`. The reference library's `NODE._target_=CLASS.PATH`
overrides are read as the balr option they mean (`balr.config_targets`); no class is imported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from balr.config_targets import resolve_target_overrides
from balr.errors import ConfigError
from balr.fileio import atomic_write_text
from balr.hub_keys import HUB_KEYS, check_hub_keys, hub_key_overrides


def register_config(name: str, node: Any, group: str | None = None, package: str | None = None):
    """Register a structured config (a dataclass or its instance) in Hydra's ConfigStore."""
    ConfigStore.instance().store(name=name, node=node, group=group, package=package)


def compose_config(name: str, overrides: Sequence[str] | None = None) -> DictConfig:
    """Compose the registered config `name` with Hydra `key=value` overrides.

    A malformed override or an unknown key raises ConfigError with Hydra's one-line reason;
    `NODE._target_=PATH` becomes the option it means (`balr.config_targets`).
    """
    overrides = list(overrides or [])
    for item in overrides:
        if "=" not in item and not item.startswith("~"):
            raise ConfigError(f"override '{item}' is not of the form key=value")
    overrides = [_reference_append(item) for item in resolve_target_overrides(overrides)]
    hub = hub_key_overrides(overrides)  # the reference's hub keys under any embedding model
    if hub:
        check_hub_keys(_compose(name, [item for item in overrides if item not in hub]), hub)
    return _compose(name, overrides)


def _compose(name: str, overrides: list[str]) -> DictConfig:
    """Hydra's composition of the registered config `name`; failures as ConfigError."""
    GlobalHydra.instance().clear()
    try:
        with initialize(version_base=None, config_path=None):
            return compose(config_name=name, overrides=overrides)
    except Exception as exc:  # hydra and omegaconf raise many exception types
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise ConfigError(f"config '{name}': {message or repr(exc)}") from None
    finally:
        GlobalHydra.instance().clear()


# keys that the reference's configs lack, so that its README sets them with `+KEY=VALUE`;
# balr's configs have them, where Hydra would refuse to append: read as `KEY=VALUE`
REFERENCE_APPENDED_KEYS = ("embeddings.model.model_dir", *HUB_KEYS)


def _reference_append(item: str) -> str:
    key = item.split("=", 1)[0]
    return item[1:] if key.startswith("+") and key[1:] in REFERENCE_APPENDED_KEYS else item


def save_config(cfg: DictConfig | dict, path: str | os.PathLike) -> None:
    """Write a resolved config as YAML, atomically."""
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(cfg)
    atomic_write_text(path, OmegaConf.to_yaml(cfg, resolve=True))


def config_file_overrides(config_path: str | os.PathLike, config_name: str = "config") -> list[str]:
    """The `key=value` overrides a user YAML config stands for (the reference's
    `--config-path DIR --config-name NAME`: `DIR/NAME.yaml`), read as data: nested keys
    become dotted ones, `{group: option}` entries of its `defaults` list become group
    choices (`scorer: maxllr` -> `scorer=maxllr`), other `defaults` entries (`_self_`,
    the base config's name) are ignored, and `_target_` keys are read like the overrides."""
    path = Path(config_path) / config_name
    if path.suffix not in (".yaml", ".yml"):
        path = path.with_name(f"{path.name}.yaml")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (--config-path DIR --config-name NAME)")
    cfg = OmegaConf.to_container(load_config(path), resolve=False)
    overrides = []
    for entry in cfg.pop("defaults", None) or []:
        if isinstance(entry, dict):
            overrides.extend(f"{group}={_hydra_value(option)}" for group, option in entry.items())
    overrides.extend(f"{key}={_hydra_value(value)}" for key, value in _flatten(cfg))
    return overrides


def _flatten(node: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """`(dotted key, value)` of every leaf of a nested mapping."""
    leaves = []
    for key, value in node.items():
        if isinstance(value, dict) and value:
            leaves.extend(_flatten(value, f"{prefix}{key}."))
        else:
            leaves.append((f"{prefix}{key}", value))
    return leaves


def _hydra_value(value: Any) -> str:
    """A YAML value written in Hydra's override grammar (strings quoted)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_hydra_value(v)}" for k, v in value.items()) + "}"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def load_config(path: str | os.PathLike) -> DictConfig:
    """Read a YAML/JSON config written by `save_config` (plain data, no code executed)."""
    try:
        cfg = OmegaConf.load(str(path))
    except Exception as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: config must be a mapping")
    return cfg
