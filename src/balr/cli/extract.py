"""`balr extract`: speaker embeddings (`_emb` vectors) for every recording of a dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from balr.cli.options import (
    audio_formats_option,
    config_name_option,
    config_path_option,
    device_option,
    force_option,
    root_dir_option,
    run_options,
    save_output_option,
    with_config_file,
)
from balr.distributed import rank, world_size


def extract(
    input_data: Path = typer.Argument(..., help="Audio file, directory, CSV or Kaldi data dir."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Write vectors here."),
    force: bool = force_option("embeddings"),
    save_output: bool | None = save_output_option(),
    device: str | None = device_option(),
    audio_formats: list[str] | None = audio_formats_option(),
    root_dir: Path | None = root_dir_option(),
    config_path: Path | None = config_path_option(),
    config_name: str = config_name_option(),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Embed every recording that has no embedding yet; report unreadable ones and go on."""
    from balr.embeddings.extract import ExtractionRun, extract_config, extract_dataset_embeddings

    run = run_options(
        with_config_file(config_path, config_name, overrides),
        save_output=save_output,
        save_dir=save_dir,
        audio_formats=audio_formats,
        device=device,
    )
    options = ExtractionRun(
        config=extract_config(run.overrides),
        save_dir=run.save_dir,
        force=force,
        device=run.device,
        reading=run.reading(root_dir),
        save_output=run.save_output,
    )
    report = extract_dataset_embeddings(input_data, options)
    typer.echo(report.summary(_shard_note()))
    if not run.save_output:
        typer.echo("--no-save-output: nothing was written")
    if report.failures:
        typer.echo(f"errors: {report.errors_path}")
    if report.speech_path is not None and report.speech_path.is_file():
        typer.echo(f"net speech durations: {report.speech_path}")
    if report.profiles_path is not None and report.profiles_path.is_file():
        typer.echo(f"channel profiles: {report.profiles_path}")
    if report.succeeded + report.skipped == 0:
        raise typer.Exit(code=1)


def _shard_note() -> str:
    return f" on rank {rank()}/{world_size()}" if world_size() > 1 else ""


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
