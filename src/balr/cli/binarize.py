"""`balr binarize`: turn a dataset's embeddings into binary-attribute (`_ba`) vectors."""

from __future__ import annotations

from pathlib import Path

import typer

from balr.binary_attributes.binarize import binarize_path
from balr.binary_attributes.config import binarize_config
from balr.cli.options import config_name_option, config_path_option, with_config_file
from balr.distributed import resolve_device


def binarize(
    input_data: Path = typer.Argument(..., help="Dataset with embeddings (CSV, dir, Kaldi)."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Write vectors here."),
    force: bool = typer.Option(False, "--force", help="Recompute existing _ba vectors."),
    device: str | None = typer.Option(None, help="cpu, cuda or cuda:N."),
    config_path: Path | None = config_path_option(),
    config_name: str = config_name_option(),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Encode each item's embedding as binary attributes with a trained encoder."""
    cfg = binarize_config(with_config_file(config_path, config_name, overrides))
    report = binarize_path(input_data, cfg, save_dir, force, resolve_device(device))
    typer.echo(report.summary())


def register(app: typer.Typer) -> None:
    app.command("binarize")(binarize)
