"""`balr evaluate`: metrics table, metrics.json, DET/Tippett/PAV/ECE plots from a CSV of scores."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from balr.errors import ConfigError, DataError
from balr.evaluation import compute_metrics, write_evaluation
from balr.fileio import next_run_dir

log = logging.getLogger(__name__)

TARGET_LABELS = {"1", "1.0", "true", "target"}
NONTARGET_LABELS = {"0", "0.0", "false", "nontarget", "non-target", "non_target"}
UNKNOWN_LABELS = {"-1", "-1.0", "nan", "", "unknown"}

METRIC_MEANINGS = {
    "eer": "equal error rate",
    "eer_threshold": "score where FAR is nearest FRR",
    "cllr": "LLR cost in bits (0 perfect, 1 no info)",
    "min_cllr": "Cllr after optimal (PAV) calibration",
    "min_dcf_0.01": "minimum normalised DCF, p_target 0.01",
    "min_dcf_0.05": "minimum normalised DCF, p_target 0.05",
    "act_dcf_0.01": "DCF at the Bayes threshold, p_target 0.01",
    "act_dcf_0.05": "DCF at the Bayes threshold, p_target 0.05",
    "threshold": "statistics below accept score >= it",
    "tp": "targets accepted",
    "tn": "non-targets rejected",
    "fp": "non-targets accepted",
    "fn": "targets rejected",
    "far": "false acceptance rate FP / non-targets",
    "frr": "false rejection rate FN / targets",
    "precision": "TP / (TP + FP)",
    "recall": "TP / targets",
    "f_score": "harmonic mean of precision and recall",
    "mcc": "Matthews correlation coefficient",
    "n_target": "target trials",
    "n_nontarget": "non-target trials",
}


def _read_table(path: Path, columns: list[str], sep: str) -> pd.DataFrame:
    """Read only the needed columns of a CSV; DataError naming the file on any problem."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        header = pd.read_csv(path, sep=sep, nrows=0).columns
        missing = [c for c in columns if c not in header]
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
        row = int(np.flatnonzero(bad)[0])
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
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: line {row + 2}: score {values.iloc[row]!r} is not a number "
            f"({int(bad.sum())} such rows)"
        )
    return scores


def read_scores(
    path: Path, score_column: str, label_column: str, sep: str
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and 1/0 labels of a CSV; rows with an unknown label are reported and skipped."""
    table = _read_table(path, [score_column, label_column], sep)
    labels = parse_labels(table[label_column], path)
    scores = parse_scores(table[score_column], path)
    known = labels >= 0
    if not known.all():
        log.warning(
            "%s: skipped %d rows without a target/non-target label", path, int((~known).sum())
        )
    return scores[known], labels[known]


def _format(value: float | int) -> str:
    """Counts as integers, other values with 4 decimals."""
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def metrics_table(metrics: dict, title: str) -> Table:
    """A rich table of metric, value and meaning."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    for name, value in metrics.items():
        table.add_row(name, _format(value), METRIC_MEANINGS.get(name, ""))
    return table


def evaluate(
    scores_csv: Path = typer.Argument(..., help="CSV with a score column and a label column."),
    score_column: str = typer.Option("scores", help="Column holding the scores (LLRs)."),
    label_column: str = typer.Option(
        "label", help="Column holding 1/0, true/false or target/nontarget."
    ),
    sep: str = typer.Option(",", help="Column separator of the CSV (use '\\t' for TSV)."),
    save_dir: Path | None = typer.Option(
        None, help="Output folder [default: runs/evaluate/evalN]."
    ),
    threshold: float | None = typer.Option(
        None, help="Threshold of the detection statistics [default: the EER threshold]."
    ),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides (none apply)."),
) -> None:
    """EER, Cllr, minCllr, minDCF, actDCF and detection statistics; DET, Tippett, PAV, ECE plots."""
    if overrides:
        raise ConfigError(f"evaluate takes no key=value overrides (got {' '.join(overrides)})")
    sep = "\t" if sep in ("\\t", "tab") else sep
    scores, labels = read_scores(scores_csv, score_column, label_column, sep)
    try:
        metrics = compute_metrics(scores, labels, threshold)
    except DataError as exc:
        raise DataError(f"{scores_csv}: {exc}") from None
    out = save_dir if save_dir is not None else next_run_dir("runs/evaluate", prefix="eval")
    written = write_evaluation(out, metrics, scores, labels, title=scores_csv.name)
    console = Console()
    console.print(metrics_table(metrics, title=str(scores_csv)))
    console.print(f"wrote {', '.join(written)} to {out}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
