"""`balr verify REPORT_OR_RUN`: hash again every file a run or a report recorded."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from balr.audit import STATUSES, read_record, record_path, record_summary, verify_record


def verify(
    target: Path = typer.Argument(
        ...,
        help="A `score test` run folder (its run.json), a `compare` report (its .audit.json "
        "beside it) or the JSON record itself.",
        metavar="REPORT_OR_RUN",
    ),
) -> None:
    """Recompute the SHA-256 of the inputs and models a run recorded: unchanged, changed or
    missing, one line each; exit status 1 unless all are unchanged."""
    record = read_record(target)
    typer.echo(f"record: {record_path(target)}")
    for label, value in record_summary(record):
        typer.echo(f"  {label}: {value}")
    checks = verify_record(record)
    for check in checks:
        typer.echo(check.line())
    counts = Counter(check.status for check in checks)
    typer.echo(", ".join(f"{counts[status]} {status}" for status in STATUSES))
    if counts["changed"] or counts["missing"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
