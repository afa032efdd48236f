"""Scores must be finite: a NaN or infinite log-LR is an error naming the trials, not a
silently empty evaluation (a reference file fitted to a probability of exactly 0 or 1 can
give them where the reference gives them too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from balr.data import Trials
from balr.errors import ModelError

#: trials named in the message before "and N more"
NAMED_TRIALS = 3


def check_finite_scores(
    scores: np.ndarray, scored: np.ndarray, trials: Trials, scorer: str, checkpoint: Path | None
) -> None:
    """ModelError, one line, when a scored trial (`scored` mask) has a NaN or infinite
    score: how many, the first trials by number (1 = first) and ids, and the scorer file."""
    bad = np.flatnonzero(scored & ~np.isfinite(scores))
    if not bad.size:
        return
    named = ", ".join(f"{i + 1} ({_ids(trials, i)})" for i in bad[:NAMED_TRIALS])
    more = f" and {bad.size - NAMED_TRIALS} more" if bad.size > NAMED_TRIALS else ""
    source = f" from {checkpoint}" if checkpoint is not None else ""
    raise ModelError(
        f"scorer '{scorer}'{source} gives non-finite scores (NaN or infinite) for "
        f"{bad.size} of {int(scored.sum())} trials: {'trial' if bad.size == 1 else 'trials'} "
        f"{named}{more}; nothing was written "
        "(refit the scorer with `balr score train`)"
    )


def _ids(trials: Trials, index: int) -> str:
    return f"{','.join(trials.enrollment[index])} :: {','.join(trials.test[index])}"
