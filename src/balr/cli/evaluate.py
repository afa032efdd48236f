"""`balr evaluate`: metrics table, metrics.json, DET/Tippett/PAV/ECE plots from a CSV of scores."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from balr.errors import ConfigError

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
    scores_csv: Path = typer.Argument(
        ..., help="CSV with a score and a label column, or the scores.csv of `score test`."
    ),
    score_column: str = typer.Option("scores", help="Column holding the scores (LLRs)."),
    label_column: str = typer.Option(
        "label", help="Column holding 1/0, true/false or target/nontarget."
    ),
    sep: str | None = typer.Option(
        None, help="Column separator ('\\t' for TSV) (default: detected from the header)."
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Dataset whose speakers label the trials' enrollment/test ids (for the "
        "scores.csv of `balr score test`, which has no label column).",
    ),
    save_dir: Path | None = typer.Option(
        None, help="Output folder (default: runs/evaluate/evalN)."
    ),
    threshold: float | None = typer.Option(
        None, help="Threshold of the detection statistics (default: the EER threshold)."
    ),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides (none apply)."),
) -> None:
    """EER, Cllr, minCllr, minDCF, actDCF and detection statistics; DET, Tippett, PAV, ECE plots."""
    from balr.evaluation.score_files import evaluate_score_file

    if overrides:
        raise ConfigError(f"evaluate takes no key=value overrides (got {' '.join(overrides)})")
    sep = "\t" if sep in ("\\t", "tab") else sep
    result = evaluate_score_file(
        scores_csv, score_column, label_column, sep, save_dir, threshold, data
    )
    console = Console()
    console.print(metrics_table(result.metrics, title=str(scores_csv)))
    console.print(f"wrote {', '.join(result.files)} to {result.save_dir}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
