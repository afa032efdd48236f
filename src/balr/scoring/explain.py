"""Per-attribute explanations: which attributes pushed a trial towards same / different speaker."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from balr.fileio import atomic_path
from balr.scoring.base import LRScorer
from balr.scoring.pairs import DEFAULT_CHUNK

if TYPE_CHECKING:  # pandas and the trial engine (scipy) only for the tables: not in compare
    import pandas as pd

    from balr.scoring.trials import TrialCells

SAME, DIFFERENT = "same", "different"


def top_attributes(terms: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices `(trials, k)` of the k largest terms (descending) and k smallest (ascending)."""
    k = min(k, terms.shape[1])
    high = np.argpartition(-terms, k - 1, axis=1)[:, :k]
    high = np.take_along_axis(high, np.argsort(-np.take_along_axis(terms, high, 1), 1), 1)
    low = np.argpartition(terms, k - 1, axis=1)[:, :k]
    low = np.take_along_axis(low, np.argsort(np.take_along_axis(terms, low, 1), 1), 1)
    return high, low


def explanation_frame(
    first_trial: int,
    terms: np.ndarray,
    enroll: np.ndarray,
    test: np.ndarray,
    k: int,
    parameters: dict[str, np.ndarray],
) -> pd.DataFrame:
    """Long table: one row per (trial, direction, rank) with term, counts and parameters
    (each `(attributes,)`, or `(trials, attributes)` where every trial has its own)."""
    import pandas as pd

    frames = []
    for direction, chosen in zip((SAME, DIFFERENT), top_attributes(terms, k), strict=True):
        n_trials, n_ranks = chosen.shape
        rows = np.repeat(np.arange(n_trials), n_ranks)
        attributes = chosen.ravel()
        columns = {
            "trial": rows + first_trial + 1,
            "direction": direction,
            "rank": np.tile(np.arange(1, n_ranks + 1), n_trials),
            "attribute": attributes,
            "llr": terms[rows, attributes],
            "enroll_a": enroll[rows, attributes, 0],
            "enroll_n": enroll[rows, attributes, 1:].sum(axis=-1),
            "test_a": test[rows, attributes, 0],
            "test_n": test[rows, attributes, 1:].sum(axis=-1),
        }
        columns.update(
            {
                name: values[rows, attributes] if values.ndim == 2 else values[attributes]
                for name, values in parameters.items()
            }
        )
        frames.append(pd.DataFrame(columns))
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(
        ["trial", "direction", "rank"], ascending=[True, False, True], kind="stable"
    )


def write_explanations(
    path: str | os.PathLike,
    scorer: LRScorer,
    vectors: np.ndarray,
    cells: TrialCells,
    enroll_names: Sequence[str],
    test_names: Sequence[str],
    k: int,
    chunk: int = DEFAULT_CHUNK,
    trial_numbers: np.ndarray | None = None,
    explained: Iterable[tuple] | None = None,
) -> None:
    """Write the top-k attributes of every trial as CSV, chunk by chunk, atomically.

    `trial_numbers` (default 1..n) label the trials, e.g. their row in the trials file;
    `explained` (default: `explain_trials` of `scorer` with its fitted parameters) yields
    `(first trial, terms, enroll, test, parameters)` chunk by chunk."""
    import pandas as pd

    from balr.scoring.trials import explain_trials

    if trial_numbers is None:
        trial_numbers = np.arange(1, len(cells) + 1)
    if explained is None:
        parameters = scorer.attribute_parameters()
        explained = (
            (*chunk_terms, parameters)
            for chunk_terms in explain_trials(scorer, vectors, cells, chunk)
        )
    with atomic_path(path) as tmp:
        header = True
        for start, terms, enroll, test, parameters in explained:
            frame = explanation_frame(start, terms, enroll, test, k, parameters)
            rows = frame["trial"].to_numpy() - 1
            frame["trial"] = np.asarray(trial_numbers)[rows]
            frame.insert(1, "enrollment", np.asarray(enroll_names, dtype=object)[rows])
            frame.insert(2, "test", np.asarray(test_names, dtype=object)[rows])
            frame.insert(3, "score", terms.sum(axis=1)[rows - start])
            frame.to_csv(tmp, mode="w" if header else "a", header=header, index=False)
            header = False
        if header:  # no trials: still a valid file with its header
            pd.DataFrame(columns=["trial", "enrollment", "test", "score"]).to_csv(tmp, index=False)
