"""Scorers of BA-LR trials (cosine, dna, speech, maxllr, beta), fast paths and explanations."""

from __future__ import annotations

import os

from balr.errors import ConfigError, ModelError
from balr.scoring.base import CHECKPOINT_NAME, LRScorer, Scorer, read_checkpoint
from balr.scoring.beta import BetaScorer
from balr.scoring.cosine import CosineScorer
from balr.scoring.maxllr import MaxLLRScorer
from balr.scoring.statistics import dataset_statistics, speaker_statistics
from balr.scoring.typicality import DNAScorer, SpeechScorer

SCORERS: dict[str, type[Scorer]] = {
    cls.name: cls for cls in (CosineScorer, DNAScorer, SpeechScorer, MaxLLRScorer, BetaScorer)
}
DEFAULT_SCORER = "beta"


def make_scorer(name: str, **params) -> Scorer:
    """A new (unfitted) scorer by registry name."""
    if name not in SCORERS:
        raise ConfigError(f"unknown scorer '{name}' (expected one of {', '.join(SCORERS)})")
    try:
        return SCORERS[name](**params)
    except TypeError as exc:
        raise ConfigError(f"scorer '{name}': {exc}") from None


def load_scorer(path: str | os.PathLike) -> Scorer:
    """A fitted scorer from a checkpoint; ModelError when it holds no learned state."""
    name, params, state = read_checkpoint(path)
    if name not in SCORERS:
        raise ModelError(f"{path}: unknown scorer '{name}' in checkpoint")
    scorer = SCORERS[name].from_state(params, state)
    if not scorer.is_fitted:
        missing = [n for n in scorer.state_names if n not in state]
        raise ModelError(f"{path}: scorer '{name}' is not fitted (missing {', '.join(missing)})")
    return scorer


__all__ = [
    "CHECKPOINT_NAME",
    "DEFAULT_SCORER",
    "SCORERS",
    "BetaScorer",
    "CosineScorer",
    "DNAScorer",
    "LRScorer",
    "MaxLLRScorer",
    "Scorer",
    "SpeechScorer",
    "dataset_statistics",
    "load_scorer",
    "make_scorer",
    "speaker_statistics",
]
