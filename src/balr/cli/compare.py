"""`balr compare ENROLL... --test TEST...`: audio in, calibrated and explained LR out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from balr import defaults
from balr.compare import ComparisonPipeline, ComparisonResult
from balr.config import compose_config, register_config
from balr.distributed import resolve_device
from balr.embeddings import build_embedding_model, select_model_overrides
from balr.errors import ConfigError, DataError
from balr.report import format_lr, verbal_scale
from balr.report.html import ComparisonReport, write_report

log = logging.getLogger(__name__)
USAGE = "ENROLL... --test TEST... [key=value ...]"
# the terminal table; the HTML report lists every fitted parameter of the attribute
PRINTED_COLUMNS = (
    "towards",
    "attribute",
    "contribution",
    "enrollment",
    "test",
    "typicality",
    "dropout",
)
SHORT_HEADERS = {"contribution": "log LR", "enrollment": "enroll", "typicality": "typical."}


@dataclass
class CompareEmbeddingsConfig:
    model: Any = None
    vad: str = "none"  # none, energy or webrtc
    min_duration_s: float = 0.5


@dataclass
class EncoderModelConfig:
    checkpoint_path: str | None = None  # default: the shipped BAE


@dataclass
class EncoderConfig:
    model: EncoderModelConfig = field(default_factory=EncoderModelConfig)


@dataclass
class CompareScorerConfig:
    checkpoint_path: str | None = None  # default: the shipped beta scorer + its calibration


@dataclass
class CompareConfig:
    defaults: list = field(
        default_factory=lambda: ["_self_", {"embeddings/model": defaults.EMBEDDING_MODEL}]
    )
    embeddings: CompareEmbeddingsConfig = field(default_factory=CompareEmbeddingsConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    scorer: CompareScorerConfig = field(default_factory=CompareScorerConfig)


register_config("compare", CompareConfig)


def compare(
    args: list[str] = typer.Argument(..., help=USAGE, metavar=USAGE),
    report: Path | None = typer.Option(
        None, "--report", help="Write a self-contained HTML report."
    ),
    explain: int = typer.Option(5, "--explain", help="Attributes listed for each side."),
    plot: Path | None = typer.Option(None, "--plot", help="PNG bar chart of the contributions."),
    calibration: Path | None = typer.Option(None, "--calibration", help="calibration.json"),
    no_calibration: bool = typer.Option(False, "--no-calibration", help="Report raw scores."),
    reference: Path | None = typer.Option(
        None, "--reference", help="NPZ of reference LLRs (arrays target, nontarget) for the report."
    ),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda or cuda:N."),
) -> None:
    """Compare recordings of a known speaker with questioned ones: LR, verbal scale, reasons."""
    enrollment, test, overrides = split_compare_args(args)
    cfg = compose_config("compare", select_model_overrides(overrides))
    model = build_embedding_model(cfg.embeddings.model).to(resolve_device(device))
    pipeline = ComparisonPipeline.from_files(
        model,
        cfg.encoder.model.checkpoint_path,
        cfg.scorer.checkpoint_path,
        calibration,
        use_calibration=not no_calibration,
    )
    pipeline.extraction.vad = cfg.embeddings.vad
    pipeline.extraction.min_duration_s = cfg.embeddings.min_duration_s
    result = pipeline.compare(enrollment, test)
    print_result(result, explain)
    if plot is not None or report is not None:
        draw = _contribution_plot(result, explain)
        if plot is not None:
            draw(plot)
            typer.echo(f"contribution chart: {plot}")
        if report is not None:
            target, nontarget = _reference_llrs(reference, cfg.scorer.checkpoint_path)
            write_report(
                report,
                ComparisonReport(
                    enrollment=result.enrollment,
                    test=result.test,
                    llr=result.llr,
                    attributes=result.top_attributes(explain),
                    contribution_plot=draw,
                    reference_target_llrs=target,
                    reference_nontarget_llrs=nontarget,
                    models=pipeline.description,
                    notes=result.notes,
                ),
            )
            typer.echo(f"report: {report}")


def split_compare_args(args: list[str]) -> tuple[list[str], list[str], list[str]]:
    """`A B --test C D k=v` -> enrollment [A, B], test [C, D], overrides [k=v]."""
    if "--test" not in args:
        raise ConfigError(f"compare: missing --test (usage: balr compare {USAGE})")
    cut = args.index("--test")
    before, after = args[:cut], [a for a in args[cut + 1 :] if a != "--test"]

    def is_override(value: str) -> bool:
        return "=" in value and not Path(value).exists()

    enrollment = [a for a in before if not is_override(a)]
    test = [a for a in after if not is_override(a)]
    overrides = [a for a in (*before, *after) if is_override(a)]
    if not enrollment or not test:
        raise DataError(f"compare needs enrollment and test files (usage: balr compare {USAGE})")
    return enrollment, test, overrides


def print_result(result: ComparisonResult, k: int) -> None:
    """The LR, its log10, the ENFSI verbal equivalent and the top attributes each way."""
    console = Console()
    for side, recordings in (("enrollment", result.enrollment), ("test", result.test)):
        for rec in recordings:
            console.print(f"{side:>10}: {rec.path} ({rec.duration_s:.1f} s)", highlight=False)
    verdict = verbal_scale(result.llr)
    console.print(
        f"\nLR = {format_lr(result.llr)}   log10 LR = {verdict.log10_lr:.2f}   "
        f"(natural log {result.llr:.3f})",
        highlight=False,
    )
    console.print(
        f"[bold]{verdict.sentence[0].upper() + verdict.sentence[1:]}[/] (ENFSI verbal scale)"
    )
    table = result.top_attributes(k)
    shown = [c for c in PRINTED_COLUMNS if c in table.columns] or list(table.columns)
    if {"typicality", "dropout"} - set(table.columns):
        shown = list(table.columns)
    table = table[shown] if len(table) else table
    if len(table):
        rich_table = Table(title=f"Top {k} attributes each way (contributions sum to the LLR)")
        for column in table.columns:
            rich_table.add_column(
                SHORT_HEADERS.get(column, column),
                justify="left" if column == "towards" else "right",
            )
        for row in table.itertuples(index=False):
            rich_table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
        console.print(rich_table)
    console.print(
        f"sum of {len(result.contributions)} attribute contributions "
        f"{result.contributions.sum():.3f} + calibration offset {result.offset:.3f}",
        highlight=False,
    )
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)


def _contribution_plot(result: ComparisonResult, k: int):
    from balr.scoring.plots import plot_explanation

    total = result.contributions.sum() + result.offset
    if np.isclose(total, result.llr):
        title = f"calibrated LLR {result.llr:.2f} = contributions + offset {result.offset:.2f}"
    else:
        title = (
            f"contributions + offset {result.offset:.2f} = {total:.2f}, "
            f"limited to {result.llr:.2f} (ELUB)"
        )

    def draw(path: Path) -> None:
        plot_explanation(
            result.contributions,
            result.enroll_counts[:, 0],
            result.test_counts[:, 0],
            path,
            k,
            title=title,
        )

    return draw


def _reference_llrs(path: Path | None, scorer_checkpoint: str | None):
    """Reference same/different-speaker LLRs: given, or the shipped ones for default models."""
    if path is None and scorer_checkpoint is None and defaults.REFERENCE_LLRS.is_file():
        path = defaults.REFERENCE_LLRS
    if path is None:
        log.warning("no reference LLRs for this scorer: the report has no Tippett plot")
        return np.zeros(0), np.zeros(0)
    with np.load(path, allow_pickle=False) as data:
        try:
            return np.asarray(data["target"]), np.asarray(data["nontarget"])
        except KeyError:
            raise DataError(f"{path}: expected arrays 'target' and 'nontarget'") from None


def register(app: typer.Typer) -> None:
    app.command(
        "compare",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(compare)
