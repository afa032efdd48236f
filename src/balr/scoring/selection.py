"""Which scorer and which calibration score a trial: the one place that decides.

Scorer: an explicit checkpoint (`scorer.checkpoint_path`), else the one shipped with balr for
the scorer name (beta, speech), else a cosine scorer (nothing to fit). Calibration: an
explicit `calibration.json`, else the shipped one matching a shipped scorer (beta; cosine of
embeddings), else none. Used by `balr score test`, `balr score matrix` and `balr compare`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from balr import defaults
from balr.calibration import CalibrationBundle, Calibrator
from balr.conditions import ConditionsDescription
from balr.errors import ConfigError
from balr.reference_paths import resolve_reference_path
from balr.scoring import SCORERS, Scorer, make_scorer
from balr.scoring.config import ScoreSettings, scorer_params

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScorerChoice:
    """The scorer to score with, the checkpoint it was read from (None: a cosine scorer
    built on the spot) and whether that checkpoint was given by the user."""

    scorer: Scorer
    checkpoint: Path | None
    user_checkpoint: bool

    def describe(self) -> str:
        """The scorer's name, and `(shipped: PATH)` when no scorer.checkpoint_path was given,
        so that the summary line says which scorer scored."""
        if self.checkpoint is not None and not self.user_checkpoint:
            return f"{self.scorer.name} (shipped: {self.checkpoint}; no scorer.checkpoint_path)"
        return self.scorer.name


@dataclass(frozen=True)
class CalibrationChoice:
    """The calibrator to apply (None: raw scores), where it came from, or why none, the
    description of its calibration conditions (None: the file has none) and the population
    record of a calibration fitted on population-adapted scores."""

    calibrator: Calibrator | None
    source: str
    conditions: ConditionsDescription | None = None
    population: dict | None = None  # the population its scores were adapted to

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> CalibrationChoice:
        bundle = CalibrationBundle.load(path)
        return cls(bundle.calibrator, str(path), bundle.conditions, bundle.population)


def select_scorer(
    name: str,
    checkpoint: str | os.PathLike | None = None,
    params: Mapping[str, Any] | None = None,
    chosen: str | None = None,
    set_keys: Collection[str] = (),
    quiet: bool = False,
) -> ScorerChoice:
    """The scorer named `name` (the `scorer=` config option): read from `checkpoint`, else
    the shipped one, else built from `params` when it needs no fitting (cosine).

    `chosen` is the scorer the user named (`scorer=NAME`): a checkpoint holding another is a
    ConfigError. The scoring-time hyper-parameters among the user's `set_keys`
    (`Scorer.scoring_params`, e.g. `drop_in`) replace the saved ones, from `params`.
    `quiet` logs nothing.
    """
    params = dict(params or {})
    user_checkpoint = bool(checkpoint)
    if not checkpoint:
        if name in SCORERS and not SCORERS[name].needs_fit:
            return ScorerChoice(make_scorer(name, **params), None, False)
        checkpoint = defaults.shipped_scorer(name)
        if checkpoint is None:
            raise ConfigError(
                f"scorer '{name}' needs scorer.checkpoint_path=PATH (a "
                "scorer.safetensors from `balr score train`); balr ships only beta and speech"
            )
        if not quiet:
            logger.warning(
                "no scorer.checkpoint_path: using the shipped %s scorer %s", name, checkpoint
            )
    else:  # the reference's runs/scorer/train/scorer.pt: balr's scorer.safetensors there
        checkpoint = resolve_reference_path(checkpoint, "scorer")
    scorer = Scorer.load(checkpoint)
    if chosen is not None and chosen != scorer.name:
        raise ConfigError(f"{checkpoint}: holds a '{scorer.name}' scorer, not '{chosen}'")
    for key in sorted(set(set_keys) & set(scorer.scoring_params)):  # may change when fitted
        setattr(scorer, key, type(getattr(scorer, key))(params[key]))
    return ScorerChoice(scorer, Path(checkpoint), user_checkpoint)


def select_configured_scorer(settings: ScoreSettings) -> ScorerChoice:
    """`select_scorer` for composed `balr score` settings."""
    cfg = settings.config
    return select_scorer(
        cfg.scorer.name,
        cfg.scorer.checkpoint_path,
        scorer_params(cfg),
        settings.chosen_scorer,
        settings.set_keys,
    )


def select_calibration(
    choice: ScorerChoice,
    path: str | os.PathLike | None = None,
    disabled: bool = False,
    quiet: bool = False,
) -> CalibrationChoice:
    """The calibration of the chosen scorer's scores: `path` (`--calibration`), else the
    shipped one matching a shipped scorer, else none; `disabled` (`--no-calibration`) gives
    none. `quiet` logs nothing (otherwise: why scores stay uncalibrated, which file is used).
    """
    if disabled:
        if path is not None:
            raise ConfigError("--calibration and --no-calibration exclude each other")
        return CalibrationChoice(None, "none (--no-calibration)")
    if path is not None:
        return CalibrationChoice.from_file(path)
    scorer = choice.scorer
    if choice.user_checkpoint:
        if not quiet:
            logger.warning(
                "scorer.checkpoint_path given without --calibration: scores are not calibrated "
                "(fit a calibrator with `balr score calibrate`)"
            )
        return CalibrationChoice(None, "none (user checkpoint without --calibration)")
    shipped = defaults.shipped_calibration(scorer.name, scorer.vector_kind)
    if shipped is None:
        if not quiet:
            logger.warning(
                "no shipped calibration for scorer '%s': scores are not calibrated", scorer.name
            )
        return CalibrationChoice(None, f"none (no shipped calibration for {scorer.name})")
    if not quiet:
        if scorer.name == "cosine":
            logger.info(
                "cosine of embeddings: the shipped calibration assumes the default %s embeddings",
                defaults.EMBEDDING_MODEL,
            )
        logger.info("calibrating with the shipped %s", shipped)
    return CalibrationChoice.from_file(shipped)
