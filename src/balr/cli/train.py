"""`balr train`: fit the binary-attribute encoder on a training and a validation dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from balr.binary_attributes.config import train_config
from balr.binary_attributes.trainer import BAETrainer
from balr.data.labelled import labelled_embeddings
from balr.distributed import is_main_process, resolve_device, session, shared_run_dir
from balr.errors import ConfigError


def train(
    train_data: Path = typer.Argument(..., help="Training dataset (CSV, dir, Kaldi dir)."),
    val_data: Path = typer.Argument(..., help="Validation dataset (other speakers)."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Default: runs/trainN."),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:N or cuda:0,1 (torchrun)."),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Train the binary-attribute encoder (embeddings + speaker labels -> 512 bits)."""
    cfg = train_config(overrides)
    if cfg.trainer.resume and save_dir is None:
        raise ConfigError("trainer.resume=true needs --save-dir (the run to continue)")
    torch_device = resolve_device(device)
    train_set, val_set = labelled_embeddings(train_data), labelled_embeddings(val_data)
    with session(torch_device):
        save_dir = save_dir or shared_run_dir("runs", "train")
        history = BAETrainer(cfg, save_dir, torch_device).fit(train_set, val_set)
    if is_main_process() and history:
        last = history[-1]
        score = last.get("val", last["train"])["total"]
        typer.echo(f"epoch {last['epoch']}: loss {score:.4f}; weights in {save_dir / 'weights'}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
