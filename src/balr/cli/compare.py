"""`balr compare ENROLL... --test TEST...`: audio in, calibrated and explained LR out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from balr.cli.options import population_adapt_option
from balr.errors import ConfigError, DataError
from balr.report import LN_LR, format_lr, verbal_scale

if TYPE_CHECKING:  # balr.compare (numpy, hydra, models): imported only when the command runs
    from balr.compare import ComparisonResult

USAGE = "ENROLL... --test TEST... [OPTIONS] [key=value]..."
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
SHORT_HEADERS = {"contribution": LN_LR, "enrollment": "enroll", "typicality": "typical."}
POPULATION_HELP = (
    "Relevant population: a dataset of other speakers in the case's conditions (20+ "
    "recordings, 5+ speakers where labelled); the scorer adapts to it where it shows that the "
    "calibration does not hold there, and the LR is checked against it (docs/population.md)."
)
POPULATION_VECTORS_HELP = (
    "Folder of the population's BA vectors (default: beside its audio; without vectors its "
    "recordings are extracted on the way)."
)


def compare(
    args: list[str] = typer.Argument(
        ...,
        help="Recordings of the known speaker, then --test and the questioned ones; "
        "key=value overrides may follow.",
        metavar="ENROLL... --test TEST...",
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Write a self-contained HTML report."
    ),
    explain: int = typer.Option(5, "--explain", help="Attributes listed for each side."),
    plot: Path | None = typer.Option(None, "--plot", help="PNG bar chart of the contributions."),
    calibration: Path | None = typer.Option(None, "--calibration", help="calibration.json"),
    no_calibration: bool = typer.Option(False, "--no-calibration", help="Report raw scores."),
    reference: Path | None = typer.Option(
        None,
        "--reference",
        help="NPZ of reference LLRs (arrays target, nontarget). Only the --report uses it (its "
        "Tippett plot); it never changes the LR, so without --report it is an error.",
    ),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda or cuda:N."),
    population: Path | None = typer.Option(None, "--population", help=POPULATION_HELP),
    population_vectors: Path | None = typer.Option(
        None, "--population-vectors", help=POPULATION_VECTORS_HELP
    ),
    population_adapt: str = population_adapt_option(),
) -> None:
    """Compare recordings of a known speaker with questioned ones: LR, verbal scale, reasons."""
    from balr.compare import compare_files
    from balr.compare.config import compare_config
    from balr.compare.inputs import check_audio_files

    enrollment, test, overrides = split_compare_args(args)
    check_outputs(explain, report, reference)
    check_audio_files([*enrollment, *test])  # before the config is composed, as before
    comparison = compare_files(
        enrollment,
        test,
        compare_config(overrides),
        calibration,
        not no_calibration,
        device,
        population,
        population_vectors,
        population_adapt,
    )
    print_result(comparison.result, explain)
    if plot is not None:
        comparison.write_plot(plot, explain)
        typer.echo(f"contribution chart: {plot}")
    if report is not None:
        comparison.write_report(report, explain, reference)
        typer.echo(f"report: {report}")


def check_outputs(explain: int, report: Path | None, reference: Path | None) -> None:
    """Refuse bad options before any audio is processed: a negative --explain, a --reference
    without --report (it would be ignored), an unreadable --reference, a folder as --report."""
    from balr.compare.inputs import check_explain
    from balr.report.reference import load_reference_llrs

    check_explain(explain)
    if reference is not None and report is None:
        raise ConfigError(
            f"--reference {reference}: the reference LLRs only go into the HTML report (they "
            "never change the LR); add --report FILE.html, or drop --reference"
        )
    if reference is not None:
        load_reference_llrs(reference)
    if report is not None and report.is_dir():
        raise ConfigError(f"--report {report}: is a directory; give the HTML file to write")


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
            speech = "" if rec.speech_s is None else f", {rec.speech_s:.1f} s net speech"
            line = f"{side:>10}: {rec.path} ({rec.duration_s:.1f} s{speech})"
            console.print(line, highlight=False)
    verdict = verbal_scale(result.llr)
    if result.population is not None:
        adaptation = result.population_adaptation
        console.print(f"\n{result.population.describe()}", highlight=False)
        if adaptation is not None:
            console.print(adaptation.describe(), highlight=False)
        console.print(f"population check: {result.population_check.summary()}", highlight=False)
    for warning in [result.conditions_warning, *result.warnings]:
        if warning:
            console.print(f"\n[bold red]WARNING:[/] {warning}", highlight=False, soft_wrap=True)
    console.print(
        f"\nLR = {format_lr(result.llr)}   log10 LR = {verdict.log10_lr:.2f}   "
        f"{LN_LR} = {result.llr:.3f}",
        highlight=False,
    )
    console.print(
        f"[bold]{verdict.sentence[0].upper() + verdict.sentence[1:]}[/] (ENFSI verbal scale)"
    )
    rows = result.top_attribute_rows(k)
    columns = list(rows[0]) if rows else []
    shown = [c for c in PRINTED_COLUMNS if c in columns] or columns
    if {"typicality", "dropout"} - set(columns):
        shown = columns
    if rows:
        title = f"Top {k} attributes each way ({LN_LR}; contributions sum to the {LN_LR})"
        rich_table = Table(title=title)
        for column in shown:
            rich_table.add_column(
                SHORT_HEADERS.get(column, column),
                justify="left" if column == "towards" else "right",
            )
        for row in rows:
            values = (row[column] for column in shown)
            rich_table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in values))
        console.print(rich_table)
    (first, total), *rest = result.llr_lines()
    parts = "".join(f" + {label} {value:.3f}" for label, value in rest)
    console.print(f"{first} ({LN_LR}) {total:.3f}{parts}", highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)


class CompareCommand(typer.core.TyperCommand):
    """`balr compare` with its usage line in the order it is typed (files, then options)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [USAGE]


def register(app: typer.Typer) -> None:
    app.command(
        "compare",
        cls=CompareCommand,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(compare)
