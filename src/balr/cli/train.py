"""`balr train`: fit the binary-attribute encoder on a training and a validation dataset."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import typer

from balr.binary_attributes.config import train_config
from balr.binary_attributes.trainer import BAETrainer
from balr.data import AudioDataset
from balr.distributed import (
    cleanup_distributed,
    init_distributed,
    is_main_process,
    resolve_device,
)
from balr.errors import ConfigError, DataError
from balr.fileio import next_run_dir

logger = logging.getLogger(__name__)

RUNS_DIR = Path("runs")


def labelled_embeddings(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """`(embeddings (n, d), speaker labels (n,))` of the items that have an embedding."""
    ds = AudioDataset.from_path(path)
    indices, embeddings = ds.stack_vectors("emb")
    if len(indices) == 0:
        raise DataError(f"{path}: no embeddings found (run `balr extract` first)")
    speakers = [ds.items[i].speaker for i in indices]
    unlabelled = [ds.items[i].id for i, s in zip(indices, speakers, strict=True) if s is None]
    if unlabelled:
        raise DataError(
            f"{path}: {len(unlabelled)} items have no speaker label (first: {unlabelled[0]})"
        )
    return embeddings.astype(np.float32), np.asarray(speakers)


def shared_run_dir(device: torch.device) -> Path:
    """`runs/trainN`, chosen by rank 0 and broadcast so that every process agrees."""
    number = torch.tensor([int(next_run_dir(RUNS_DIR).name[len("train") :])], device=device)
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(number, src=0)
    return RUNS_DIR / f"train{int(number.item())}"


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
    train_x, train_y = labelled_embeddings(train_data)
    val_x, val_y = labelled_embeddings(val_data)
    try:
        init_distributed(torch_device)
        save_dir = save_dir or shared_run_dir(torch_device)
        history = BAETrainer(cfg, save_dir, torch_device).fit(train_x, train_y, val_x, val_y)
    finally:
        cleanup_distributed()
    if is_main_process() and history:
        last = history[-1]
        score = last.get("val", last["train"])["total"]
        typer.echo(f"epoch {last['epoch']}: loss {score:.4f}; weights in {save_dir / 'weights'}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
