"""`balr train`: fit the binary-attribute encoder on a training and a validation dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from balr.cli.options import (
    audio_formats_option,
    config_name_option,
    config_path_option,
    device_option,
    exist_ok_option,
    root_dir_option,
    run_options,
    with_config_file,
)
from balr.distributed import is_main_process


def train(
    train_data: Path = typer.Argument(..., help="Training dataset (CSV, dir, Kaldi dir)."),
    val_data: Path = typer.Argument(..., help="Validation dataset (other speakers)."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Default: runs/train."),
    exist_ok: bool | None = exist_ok_option(),
    audio_formats: list[str] | None = audio_formats_option(),
    root_dir: Path | None = root_dir_option(),
    device: str | None = device_option(),
    config_path: Path | None = config_path_option(),
    config_name: str = config_name_option(),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Train the binary-attribute encoder (embeddings + speaker labels -> 512 bits)."""
    from balr.binary_attributes.config import train_config
    from balr.binary_attributes.trainer import TrainingRun, train_encoder

    run = run_options(
        with_config_file(config_path, config_name, overrides),
        save_dir=save_dir,
        exist_ok=exist_ok,
        audio_formats=audio_formats,
        device=device,
    )
    options = TrainingRun(
        config=train_config(run.overrides),
        save_dir=run.save_dir,
        exist_ok=run.exist_ok,
        device=run.device,
        reading=run.reading(root_dir),
    )
    result = train_encoder(train_data, val_data, options)
    if is_main_process() and result.history:
        typer.echo(result.summary())


def register(app: typer.Typer) -> None:
    app.command("train")(train)
