"""`balr binarize`: turn a dataset's embeddings into binary-attribute (`_ba`) vectors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import typer
from tqdm import tqdm

from balr import defaults
from balr.binary_attributes.config import binarize_config
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.data import AudioDataset
from balr.distributed import resolve_device
from balr.errors import ModelError

logger = logging.getLogger(__name__)

CHUNK = 65536  # embeddings held in memory at once


def binarize(
    input_data: Path = typer.Argument(..., help="Dataset with embeddings (CSV, dir, Kaldi)."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Write vectors here."),
    force: bool = typer.Option(False, "--force", help="Recompute existing _ba vectors."),
    device: str | None = typer.Option(None, help="cpu, cuda or cuda:N."),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Encode each item's embedding as binary attributes with a trained encoder."""
    cfg = binarize_config(overrides)
    checkpoint = cfg.encoder.model.checkpoint_path
    if not checkpoint:
        checkpoint = defaults.require(defaults.BAE_CHECKPOINT, "binary-attribute encoder")
        logger.info(
            "no encoder.model.checkpoint_path: using the shipped encoder %s (trained on %s "
            "embeddings)",
            checkpoint,
            defaults.EMBEDDING_MODEL,
        )
    torch_device = resolve_device(device)
    model = BinaryAttributeEncoder.load(checkpoint, torch_device)
    ds = AudioDataset.from_path(input_data, output_dir=save_dir, vector_format=cfg.vector_format)
    todo = np.array([i for i in range(len(ds)) if force or not ds.has_vector(i, "ba")], np.int64)
    done = 0
    with ds.vector_writer("ba") as writer:
        for start in tqdm(range(0, len(todo), CHUNK), desc="binarize", unit="chunk"):
            indices, embeddings = ds.stack_vectors("emb", todo[start : start + CHUNK])
            if len(indices) == 0:
                continue
            _check_dimension(embeddings, model.input_dim, input_data, checkpoint)
            counts = model.binarize(embeddings, cfg.encoder.batch_size, torch_device)
            for index, vector in zip(indices, counts, strict=True):
                writer.put(int(index), vector)
            done += len(indices)
    typer.echo(
        f"binarized {done} items; {len(ds) - len(todo)} already had _ba vectors; "
        f"{len(todo) - done} without an embedding were skipped"
    )


def _check_dimension(embeddings: np.ndarray, expected: int, data: Path, checkpoint) -> None:
    """ModelError naming both files when the embeddings do not fit the encoder."""
    if embeddings.shape[1] != expected:
        raise ModelError(
            f"{data}: {embeddings.shape[1]}-dim embeddings, but the encoder {checkpoint} takes "
            f"{expected}-dim ones (the shipped encoder fits the default ge2e embeddings; pass "
            "encoder.model.checkpoint_path=PATH for others)"
        )


def register(app: typer.Typer) -> None:
    app.command("binarize")(binarize)
