"""Hydra structured configs of `balr score`: the `scorer` group (one option per scorer).

Each option is derived from its scorer class: `name`, `checkpoint_path`, then the parameters
of the scorer's `__init__` with their types and defaults, which are defined there only.
`ScoreSettings` is the composed config and what the user set in it, built once from the
command line's `key=value` overrides; the scoring jobs take it.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, make_dataclass
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from balr.config import compose_config, register_config
from balr.config_targets import resolve_target_overrides
from balr.errors import ConfigError
from balr.scoring import DEFAULT_SCORER, SCORERS, Scorer

logger = logging.getLogger(__name__)

SCORE_CONFIG = "score"


#: keys of the reference's scorer configs, with its defaults. Those that are no parameter
#: of a balr scorer are accepted and checked or unused: `n_attributes` (every scorer; null
#: = the vectors' count, else checked against them), `n_iterations` (EM steps of maxllr,
#: a parameter there; the reference's other scorers ignore it too), and the beta scorer's
#: `K` (states per attribute: 2 for binary attributes) and `eps` (the stability constant of
#: the reference's moment fit; balr fits beta by maximum likelihood)
REFERENCE_KEYS = {"n_attributes": (int | None, None), "n_iterations": (int, 100)}
SCORER_REFERENCE_KEYS = {"beta": {"K": (int, 2), "eps": (float, 1e-8)}}
REFERENCE_EPS = SCORER_REFERENCE_KEYS["beta"]["eps"][1]


def _init_parameters(scorer: type[Scorer]) -> list[inspect.Parameter]:
    return list(inspect.signature(scorer.__init__).parameters.values())[1:]  # no self


def reference_only_keys(scorer: type[Scorer]) -> dict[str, tuple[Any, Any]]:
    """The reference's keys of `scorer`'s option that its `__init__` does not take."""
    taken = {p.name for p in _init_parameters(scorer)}
    keys = REFERENCE_KEYS | SCORER_REFERENCE_KEYS.get(scorer.name, {})
    return {key: spec for key, spec in keys.items() if key not in taken}


def scorer_config(scorer: type[Scorer]) -> type:
    """The config dataclass of one scorer option, built from the scorer's `__init__`, with
    the reference's other keys (`reference_only_keys`)."""
    hints = typing.get_type_hints(scorer.__init__)
    extra = reference_only_keys(scorer)
    return make_dataclass(
        f"{scorer.__name__.removesuffix('Scorer')}Config",
        [
            ("name", str, field(default=scorer.name)),
            ("checkpoint_path", str | None, field(default=None)),
            *((p.name, hints[p.name], field(default=p.default)) for p in _init_parameters(scorer)),
            *((key, kind, field(default=default)) for key, (kind, default) in extra.items()),
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


@dataclass(frozen=True)
class ScoreSettings:
    """The composed `balr score` config (`config`: scorer option, chunk size) and what the
    user set in it: the scorer named by `scorer=NAME` (`chosen_scorer`; a checkpoint holding
    another scorer is refused) and the `scorer.KEY` keys given (`set_keys`; a scoring-time
    hyper-parameter among them replaces a fitted scorer's saved value)."""

    config: DictConfig
    chosen_scorer: str | None = None
    set_keys: frozenset[str] = frozenset()

    @classmethod
    def from_overrides(cls, overrides: Sequence[str] = ()) -> ScoreSettings:
        """The settings of Hydra-style overrides (`scorer=maxllr scorer.f=0.1`; the
        reference's `scorer._target_=CLASS` names a scorer as `scorer=NAME` does)."""
        resolved = resolve_target_overrides(list(overrides))
        pairs = [item.partition("=")[::2] for item in resolved]
        chosen = [value for key, value in pairs if key == "scorer"]
        set_keys = {key.removeprefix("scorer.") for key, _ in pairs if key.startswith("scorer.")}
        return cls(score_config(overrides), chosen[-1] if chosen else None, frozenset(set_keys))


def scorer_params(cfg: DictConfig) -> dict[str, Any]:
    """The scorer's hyper-parameters: its config without `name`, `checkpoint_path` and the
    reference keys that balr checks (`check_reference_keys`)."""
    check_reference_keys(cfg)
    params = OmegaConf.to_container(cfg.scorer, resolve=True)
    skipped = {"name", "checkpoint_path", *reference_only_keys(SCORERS[cfg.scorer.name])}
    return {k: v for k, v in params.items() if k not in skipped}


def check_reference_keys(cfg: DictConfig) -> None:
    """`scorer.K` must be 2 (binary attributes); a changed `scorer.eps` of the beta scorer
    (a reference key, not a balr parameter) is reported unused; maxllr's `eps` is its own."""
    scorer = cfg.scorer
    if "K" in scorer and scorer.K != 2:
        raise ConfigError(
            f"scorer.K={scorer.K}: balr's attributes are binary (K=2 states per attribute)"
        )
    if "eps" in reference_only_keys(SCORERS[scorer.name]) and scorer.eps != REFERENCE_EPS:
        logger.warning(
            "scorer.eps=%s: unused (it steadies the reference's moment fit; balr fits the "
            "beta scorer by maximum likelihood, floored at scorer.min_alpha)",
            scorer.eps,
        )


def check_attribute_count(cfg: DictConfig, found: int, source: object) -> None:
    """ConfigError when `scorer.n_attributes` is set and the vectors of `source` have
    `found` attributes instead."""
    expected = cfg.scorer.get("n_attributes")
    if expected is not None and expected != found:
        raise ConfigError(
            f"scorer.n_attributes={expected}, but the vectors of {source} have {found} "
            "attributes (leave it unset to take the vectors' count)"
        )
