"""`balr extract`: speaker embeddings (`_emb` vectors) for every recording of a dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from balr.cli.options import config_name_option, config_path_option, with_config_file
from balr.distributed import rank, world_size
from balr.embeddings.extract import extract_dataset_embeddings


def extract(
    input_data: Path = typer.Argument(..., help="Audio file, directory, CSV or Kaldi data dir."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Write vectors here."),
    force: bool = typer.Option(False, "--force", help="Recompute existing embeddings."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, cuda:N or cuda:0,1."),
    audio_formats: list[str] | None = typer.Option(
        None, "--audio-formats", help="Extensions to scan, e.g. wav,flac (repeatable)."
    ),
    config_path: Path | None = config_path_option(),
    config_name: str = config_name_option(),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Embed every recording that has no embedding yet; report unreadable ones and go on."""
    formats = [f for value in audio_formats or [] for f in value.split(",") if f.strip()]
    overrides = with_config_file(config_path, config_name, overrides)
    report = extract_dataset_embeddings(input_data, save_dir, overrides, force, device, formats)
    typer.echo(report.summary(_shard_note()))
    if report.failures:
        typer.echo(f"errors: {report.errors_path}")
    if report.speech_path is not None and report.speech_path.is_file():
        typer.echo(f"net speech durations: {report.speech_path}")
    if report.succeeded + report.skipped == 0:
        raise typer.Exit(code=1)


def _shard_note() -> str:
    return f" on rank {rank()}/{world_size()}" if world_size() > 1 else ""


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
