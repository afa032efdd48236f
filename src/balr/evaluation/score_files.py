"""Files of scored trials: a score column and a label column, or the scores.csv of `balr
score test`, labelled by the speakers of a dataset (`balr score calibrate`, `balr evaluate
--data`); and their evaluation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from balr.data import AudioDataset, Trials, load_trials
from balr.errors import DataError
from balr.evaluation.metrics import compute_metrics
from balr.evaluation.outputs import write_evaluation
from balr.fileio import next_run_dir

logger = logging.getLogger(__name__)

TARGET_LABELS = {"1", "1.0", "true", "target"}
NONTARGET_LABELS = {"0", "0.0", "false", "nontarget", "non-target", "non_target"}
UNKNOWN_LABELS = {"-1", "-1.0", "nan", "", "unknown"}
EVALUATE_RUNS_DIR = Path("runs") / "evaluate"
#: separators tried, in order, on the header line when none is given
SEPARATORS = ("\t", ",", ";")


def detect_separator(path: Path) -> str:
    """The column separator of a delimited text file, from its header line: the first of
    tab, comma and semicolon that occurs in it (comma when none does)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    return next((sep for sep in SEPARATORS if sep in header), ",")


def _read_table(path: Path, columns: list[str], sep: str) -> pd.DataFrame:
    """Read only the needed columns of a CSV; DataError naming the file on any problem."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        header = pd.read_csv(path, sep=sep, nrows=0).columns
        missing = [c for c in columns if c not in header]
        if missing and {"enrollment", "test"} <= set(header):
            raise DataError(
                f"{path}: no column {', '.join(missing)}; a scores.csv of `balr score test` is "
                "labelled by the speakers of its dataset: add --data DATASET"
            )
        if missing:
            raise DataError(
                f"{path}: no column {', '.join(missing)} "
                f"(columns: {', '.join(map(str, header))}); see --score-column, "
                f"--label-column and --sep"
            )
        return pd.read_csv(
            path, sep=sep, usecols=columns, dtype={columns[1]: str}, keep_default_na=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as CSV ({str(exc).splitlines()[0]})") from None


def parse_labels(values: pd.Series, path: Path) -> np.ndarray:
    """Map label cells to 1 (target), 0 (non-target) or -1 (unknown, e.g. empty or -1)."""
    text = values.astype(str).str.strip().str.lower()
    labels = np.full(len(text), -1, dtype=np.int8)
    labels[text.isin(TARGET_LABELS).to_numpy()] = 1
    labels[text.isin(NONTARGET_LABELS).to_numpy()] = 0
    bad = ~text.isin(TARGET_LABELS | NONTARGET_LABELS | UNKNOWN_LABELS).to_numpy()
    if bad.any():
        row = _first(bad)
        raise DataError(
            f"{path}: line {row + 2}: label {values.iloc[row]!r} is not "
            f"1/0, true/false or target/nontarget"
        )
    return labels


def parse_scores(values: pd.Series, path: Path) -> np.ndarray:
    """Scores as float64; DataError naming the first line whose score is missing or not a number."""
    scores = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(scores)
    if bad.any():
        row = _first(bad)
        raise DataError(
            f"{path}: line {row + 2}: score {values.iloc[row]!r} is not a number "
            f"({int(bad.sum())} such rows)"
        )
    return scores


def _first(mask: np.ndarray) -> int:
    """Index of the first true entry."""
    return int(np.flatnonzero(mask)[0])


def read_scores(
    path: Path, score_column: str, label_column: str, sep: str
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and 1/0 labels of a CSV; rows with an unknown label are reported and skipped."""
    table = _read_table(path, [score_column, label_column], sep)
    labels = parse_labels(table[label_column], path)
    scores = parse_scores(table[score_column], path)
    known = labels >= 0
    if not known.all():
        logger.warning(
            "%s: skipped %d rows without a target/non-target label", path, int((~known).sum())
        )
    return scores[known], labels[known]


@dataclass(frozen=True)
class LabelledTrials:
    """The trials of a `score test` scores.csv with a known speaker on both sides and a
    finite score: `trials` (all rows of the file), `keep` (the rows used) and their scores
    and 1/0 labels, from `column`."""

    trials: Trials
    keep: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    column: str


def read_labelled_trials(
    path: Path, dataset: AudioDataset, sep: str = "\t", column: str | None = None
) -> LabelledTrials:
    """The labelled, scored trials of a `score test` scores.csv; labels come from the
    dataset's speakers. The raw scores (`raw_score`) are preferred over calibrated ones
    unless `column` is given."""
    trials = load_trials(path, sep=sep, known_ids=set(dataset.ids))
    columns = list(trials.frame.columns)
    column = column or ("raw_score" if "raw_score" in columns else "scores")
    if column not in columns:
        raise DataError(f"{path}: no '{column}' column (columns: {', '.join(columns)})")
    scores = pd.to_numeric(trials.frame[column], errors="coerce").to_numpy(np.float64)
    labels = trials.labels(dataset)
    keep = (labels >= 0) & np.isfinite(scores)
    if not keep.all():
        logger.warning(
            "%s: skipped %d of %d trials without a score or a known speaker on both sides",
            path,
            int((~keep).sum()),
            len(keep),
        )
    return LabelledTrials(trials, keep, scores[keep], labels[keep], column)


@dataclass(frozen=True)
class ScoreFileEvaluation:
    """What `evaluate_score_file` computed and wrote."""

    metrics: dict
    files: list[str]
    save_dir: Path


def read_evaluation_scores(
    path: Path, score_column: str, label_column: str, sep: str | None, data: Path | None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and 1/0 labels: from the label column, or, given the dataset `data`, from the
    speakers of the `enrollment` / `test` ids (a `balr score test` scores.csv). The
    separator is detected from the header when `sep` is None."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    sep = sep or detect_separator(path)
    if data is None:
        return read_scores(path, score_column, label_column, sep)
    labelled = read_labelled_trials(path, AudioDataset.from_path(data), sep, score_column)
    return labelled.scores, labelled.labels


def evaluate_score_file(
    path: Path,
    score_column: str = "scores",
    label_column: str = "label",
    sep: str | None = None,
    save_dir: Path | None = None,
    threshold: float | None = None,
    data: Path | None = None,
) -> ScoreFileEvaluation:
    """Metrics, metrics.json and the four plots of a file of scores (`balr evaluate`),
    labelled by its label column or by the speakers of dataset `data` (see
    `read_evaluation_scores`); detection statistics at `threshold` (default: the EER
    threshold). Without `save_dir` the files go to a new `runs/evaluate/evalN`."""
    scores, labels = read_evaluation_scores(path, score_column, label_column, sep, data)
    try:
        metrics = compute_metrics(scores, labels, threshold)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    out = save_dir if save_dir is not None else next_run_dir(EVALUATE_RUNS_DIR, prefix="eval")
    files = write_evaluation(out, metrics, scores, labels, title=path.name)
    return ScoreFileEvaluation(metrics, files, out)
