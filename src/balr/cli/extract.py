"""`balr extract`: speaker embeddings (`_emb` vectors) for every recording of a dataset."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import typer

from balr.config import compose_config, register_config
from balr.data import AudioDataset
from balr.distributed import rank, resolve_device, world_size
from balr.embeddings import build_embedding_model, select_model_overrides
from balr.embeddings.extraction import ERRORS_FILE, ExtractionOptions, extract_embeddings
from balr.errors import DataError

log = logging.getLogger(__name__)
DEFAULT_MODEL = "ge2e"


@dataclass
class EmbeddingsConfig(ExtractionOptions):
    """`embeddings.*`: the model (a config group) and the extraction loop's settings."""

    model: Any = None
    vector_format: str = "txt"  # txt, npy, pkl or store (one memory-mapped file)
    threads: int = 0  # torch threads for the model; 0 keeps torch's default


@dataclass
class ExtractConfig:
    """Composed with `embeddings.model=NAME` and `embeddings.KEY=VALUE` overrides."""

    defaults: list = field(default_factory=lambda: ["_self_", {"embeddings/model": DEFAULT_MODEL}])
    embeddings: EmbeddingsConfig = field(default_factory=EmbeddingsConfig)


register_config("extract", ExtractConfig)


def extract_config(overrides: list[str] | None = None):
    """The resolved `extract` config (model chosen by `embeddings.model=NAME`)."""
    return compose_config("extract", select_model_overrides(overrides))


def extract(
    input_data: Path = typer.Argument(..., help="Audio file, directory, CSV or Kaldi data dir."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Write vectors here."),
    force: bool = typer.Option(False, "--force", help="Recompute existing embeddings."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, cuda:N or cuda:0,1."),
    audio_formats: list[str] | None = typer.Option(
        None, "--audio-formats", help="Extensions to scan, e.g. wav,flac (repeatable)."
    ),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Embed every recording that has no embedding yet; report unreadable ones and go on."""
    cfg = extract_config(overrides)
    emb = cfg.embeddings
    if emb.threads:
        torch.set_num_threads(int(emb.threads))
    model = build_embedding_model(emb.model).to(resolve_device(device))
    formats = [f for value in audio_formats or [] for f in value.split(",") if f.strip()]
    ds = AudioDataset.from_path(
        input_data, formats or None, output_dir=save_dir, vector_format=emb.vector_format
    )
    if len(ds) == 0:
        raise DataError(f"{input_data}: no recordings found")
    shard = ds.shard()
    opts = ExtractionOptions(**{k: emb[k] for k in ExtractionOptions.__dataclass_fields__})
    opts.force = opts.force or force
    report = extract_embeddings(shard, model, opts, _errors_path(save_dir or ds.root))
    typer.echo(
        f"{model.name}: embedded {report.succeeded}, skipped {report.skipped} existing, "
        f"failed {len(report.failures)} of {report.total} items"
        f"{_shard_note()} ({report.audio_seconds / 60:.1f} min of audio in "
        f"{report.wall_seconds:.1f} s, {report.real_time_factor:.0f}x real time)"
    )
    if report.failures:
        typer.echo(f"errors: {_errors_path(save_dir or ds.root)}")
    if report.succeeded + report.skipped == 0:
        raise typer.Exit(code=1)


def _errors_path(folder: Path) -> Path:
    """`extract_errors.tsv`, one per rank under torchrun."""
    if world_size() > 1:
        return Path(folder) / f"extract_errors.rank{rank()}.tsv"
    return Path(folder) / ERRORS_FILE


def _shard_note() -> str:
    return f" on rank {rank()}/{world_size()}" if world_size() > 1 else ""


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
