"""Hydra structured configs of `balr score`: the `scorer` group (one option per scorer).

Each option is derived from its scorer class: `name`, `checkpoint_path`, then the parameters
of the scorer's `__init__` with their types and defaults, which are defined there only.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, make_dataclass
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from balr.config import compose_config, register_config
from balr.scoring import DEFAULT_SCORER, SCORERS, Scorer

SCORE_CONFIG = "score"


def scorer_config(scorer: type[Scorer]) -> type:
    """The config dataclass of one scorer option, built from the scorer's `__init__`."""
    hints = typing.get_type_hints(scorer.__init__)
    parameters = list(inspect.signature(scorer.__init__).parameters.values())[1:]  # no self
    return make_dataclass(
        f"{scorer.__name__.removesuffix('Scorer')}Config",
        [
            ("name", str, field(default=scorer.name)),
            ("checkpoint_path", str | None, field(default=None)),
            *((p.name, hints[p.name], field(default=p.default)) for p in parameters),
        ],
    )


SCORER_CONFIGS = {name: scorer_config(cls) for name, cls in SCORERS.items()}


@dataclass
class ScoreConfig:
    defaults: list[Any] = field(default_factory=lambda: [{"scorer": DEFAULT_SCORER}, "_self_"])
    scorer: Any = MISSING
    chunk_size: int = 32768  # trials scored at once (bounds memory)


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
