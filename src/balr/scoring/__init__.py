"""Scorers of BA-LR trials (cosine, dna, speech, maxllr, beta), fast paths and explanations.

Every scorer is an estimator (`Scorer`): `make_scorer(name, **params)` builds one,
`fit(stats)` learns from speaker statistics, `save(path)` writes it and `Scorer.load(path)`
reads back whichever scorer a checkpoint holds.
"""

from __future__ import annotations

from balr.errors import ConfigError
from balr.scoring.base import CHECKPOINT_NAME, LRScorer, Scorer
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
    "make_scorer",
    "speaker_statistics",
]
