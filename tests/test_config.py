"""Hydra composition of structured configs with key=value overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from omegaconf import MISSING

from balr.config import compose_config, load_config, register_config, save_config
from balr.errors import ConfigError


@dataclass
class _Optim:
    learning_rate: float = 1e-3
    epochs: int = 10


@dataclass
class _Fast:
    name: str = "fast"
    speed: int = 3


@dataclass
class _Slow:
    name: str = "slow"
    patience: float = 0.5


@dataclass
class _Root:
    defaults: list = field(default_factory=lambda: ["_self_", {"engine": "fast"}])
    trainer: _Optim = field(default_factory=_Optim)
    engine: Any = MISSING
    tags: list = field(default_factory=list)


register_config("test_root", _Root)
register_config("fast", _Fast, group="engine")
register_config("slow", _Slow, group="engine")


def test_defaults_and_typed_overrides():
    cfg = compose_config("test_root", ["trainer.epochs=50", "trainer.learning_rate=0.002"])
    assert cfg.trainer.epochs == 50 and cfg.trainer.learning_rate == 0.002
    assert cfg.engine.name == "fast" and cfg.engine.speed == 3


def test_group_selection_list_values_and_group_fields():
    cfg = compose_config("test_root", ["engine=slow", "engine.patience=2", "tags=[a, b]"])
    assert cfg.engine.name == "slow" and cfg.engine.patience == 2.0
    assert list(cfg.tags) == ["a", "b"]


def test_bad_overrides_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="not of the form key=value"):
        compose_config("test_root", ["epochs"])
    with pytest.raises(ConfigError, match="config 'test_root': .*nope"):
        compose_config("test_root", ["trainer.nope=1"])
    with pytest.raises(ConfigError, match="config 'test_root'"):
        compose_config("test_root", ["trainer.epochs=many"])


def test_save_and_load_round_trip(tmp_path):
    cfg = compose_config("test_root", ["trainer.epochs=7"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml").trainer.epochs == 7
    (tmp_path / "bad.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(tmp_path / "bad.yaml")
