"""`balr train`: fit the binary-attribute encoder on a training and a validation dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from balr.binary_attributes.trainer import train_encoder
from balr.cli.options import config_name_option, config_path_option, with_config_file
from balr.distributed import is_main_process


def train(
    train_data: Path = typer.Argument(..., help="Training dataset (CSV, dir, Kaldi dir)."),
    val_data: Path = typer.Argument(..., help="Validation dataset (other speakers)."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Default: runs/trainN."),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:N or cuda:0,1 (torchrun)."),
    config_path: Path | None = config_path_option(),
    config_name: str = config_name_option(),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Train the binary-attribute encoder (embeddings + speaker labels -> 512 bits)."""
    overrides = with_config_file(config_path, config_name, overrides)
    run = train_encoder(train_data, val_data, save_dir, overrides, device)
    if is_main_process() and run.history:
        typer.echo(run.summary())


def register(app: typer.Typer) -> None:
    app.command("train")(train)
