"""`balr binarize`: turn a dataset's embeddings into binary-attribute (`_ba`) vectors."""

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


def binarize(
    input_data: Path = typer.Argument(..., help="Dataset with embeddings (CSV, dir, Kaldi)."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Write vectors here."),
    force: bool = force_option("_ba vectors"),
    save_output: bool | None = save_output_option(),
    exist_ok: bool | None = typer.Option(
        None,
        "--exist-ok/--no-exist-ok",
        help="Accepted as in the reference, where binarize never reads it (vectors are files).",
        show_default=False,
    ),
    audio_formats: list[str] | None = audio_formats_option(),
    root_dir: Path | None = root_dir_option(),
    device: str | None = device_option(),
    config_path: Path | None = config_path_option(),
    config_name: str = config_name_option(),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Encode each item's embedding as binary attributes with a trained encoder."""
    from balr.binary_attributes.binarize import BinarizeRun, binarize_path
    from balr.binary_attributes.config import binarize_config
    from balr.distributed import resolve_device

    run = run_options(
        with_config_file(config_path, config_name, overrides),
        save_output=save_output,
        save_dir=save_dir,
        exist_ok=exist_ok,
        audio_formats=audio_formats,
        device=device,
    )
    options = BinarizeRun(
        config=binarize_config(run.overrides),
        save_dir=run.save_dir,
        force=force,
        device=resolve_device(run.device),
        reading=run.reading(root_dir),
        save_output=run.save_output,
    )
    report = binarize_path(input_data, options)
    typer.echo(report.summary())
    if not run.save_output:
        typer.echo("--no-save-output: nothing was written")


def register(app: typer.Typer) -> None:
    app.command("binarize")(binarize)
