"""Binarizing a dataset: each item's embedding becomes a binary-attribute (`_ba`) vector.

    report = binarize_dataset(dataset, BinaryAttributeEncoder.load(path))

`binarize_path` is the whole `balr binarize` job: the encoder named by the config (or the
shipped default), the dataset read from a path, then `binarize_dataset`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from balr import defaults
from balr.binary_attributes.config import EncoderConfig, binarize_config
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.data import AudioDataset
from balr.data.dataset import DatasetReading
from balr.data.ledger import MadeFrom, made_by_other, model_digest, vector_digest
from balr.data.provenance import check_encoder_fits, dataset_provenance
from balr.data.validation import BadVector, describe_bad
from balr.errors import Interrupted, ModelError
from balr.fileio import interrupt_deferred
from balr.reference_paths import resolve_reference_path

logger = logging.getLogger(__name__)

CHUNK = 65536  # embeddings held in memory at once


@dataclass(frozen=True)
class BinarizeReport:
    """Item counts of one run: binarized now, skipped as already done, without embedding;
    and the items skipped for a bad embedding (not finite, odd shape), with the problem."""

    binarized: int
    already_done: int
    without_embedding: int
    bad: tuple[BadVector, ...] = ()

    def summary(self) -> str:
        text = (
            f"binarized {self.binarized} items; {self.already_done} already had _ba vectors; "
            f"{self.without_embedding} without an embedding were skipped"
        )
        if self.bad:
            text += f"; {describe_bad(list(self.bad))} were skipped"
        return text


def binarize_dataset(
    dataset: AudioDataset,
    encoder: BinaryAttributeEncoder,
    batch_size: int = EncoderConfig.batch_size,
    device: torch.device | None = None,
    force: bool = False,
    encoder_source: str | os.PathLike = "",
    allow_other_model: bool = False,
    save_output: bool = True,
) -> BinarizeReport:
    """Write the `_ba` vector (`(m, 2)` counts) of every item that has an embedding, in the
    dataset's vector format. Items that already have a valid one are skipped unless `force`
    (a bad one is logged and redone); items whose embedding is bad (NaN/inf, another shape
    than the others') are skipped and listed in the report; `encoder_source` names the
    encoder's file in errors. Embeddings recorded for another model than the encoder's are
    refused unless `allow_other_model`, another dimension always
    (`balr.data.provenance.check_encoder_fits`). Without `save_output` the vectors are
    computed and counted, and none is written. Ctrl-C closes the writer (a store is
    merged) and raises `Interrupted` saying what was saved."""
    recorded, folder = dataset_provenance(dataset)
    check_encoder_fits(
        recorded,
        encoder.trained_on,
        encoder.input_dim,
        folder,
        encoder_source or "given",
        allow_other_model,
    )
    model_id = f"bae:{model_digest(encoder)}"  # recorded in the ledger
    todo = np.arange(len(dataset)) if force else _todo(dataset, model_id)
    done, location = 0, "the dataset's vectors"
    bad: list[BadVector] = []
    try:
        with dataset.vector_writer("ba", save_output) as writer:
            location = writer.location
            for start in tqdm(range(0, len(todo), CHUNK), desc="binarize", unit="chunk"):
                indices, embeddings = dataset.stack_vectors(
                    "emb", todo[start : start + CHUNK], bad, prefer_shape=(encoder.input_dim,)
                )
                if len(indices) == 0:
                    continue
                _check_dimension(embeddings, encoder.input_dim, dataset.source, encoder_source)
                counts = encoder.binarize(embeddings, batch_size, device)
                made = _made_from(dataset, indices, embeddings, model_id)
                with interrupt_deferred() as received:  # Ctrl-C: `done` counts what was written
                    for index, vector, source in zip(indices, counts, made, strict=True):
                        writer.put(int(index), vector, source)
                        done += 1
                        if received:  # stop after this vector; the block then raises
                            break
            for item in bad:  # an old _ba vector of a now-invalid embedding is not kept
                writer.remove(dataset.index_of(item.item_id))
    except KeyboardInterrupt:  # the writer is closed (a store merged) by now
        raise Interrupted(
            f"interrupted: {done} _ba vectors saved by this run to {location}; run the "
            "same command again to resume (existing _ba vectors are skipped unless --force)"
        ) from None
    return BinarizeReport(done, len(dataset) - len(todo), len(todo) - done - len(bad), tuple(bad))


def _todo(dataset: AudioDataset, model_id: str) -> np.ndarray:
    """Items without a valid, fresh `_ba` vector made by `model_id`; the others are logged."""
    redo: list[BadVector] = []
    valid = dataset.with_valid_vector("ba", redo)
    if redo:
        logger.warning("binarizing again %s", describe_bad(redo))
    other = [i for i in valid if made_by_other(dataset.vector_record(int(i), "ba"), model_id)]
    if other:
        logger.warning(
            "binarizing again %d _ba vectors made by another encoder (not %s; first: %s)",
            *(len(other), model_id, dataset.items[int(other[0])].id),
        )
    return np.setdiff1d(np.arange(len(dataset)), np.setdiff1d(valid, other))


def _made_from(
    dataset: AudioDataset, indices: np.ndarray, embeddings: np.ndarray, model_id: str
) -> list[MadeFrom]:
    """What each `_ba` vector is made from: its embedding (where the ledger has it, and its
    digest as recorded there, else of the values read) and the encoder."""
    made = []
    for index, embedding in zip(indices, embeddings, strict=True):
        record = dataset.vector_record(int(index), "emb")
        if record is not None and not record.removed and record.digest:
            made.append(MadeFrom(record.vector, record.digest, model_id))
        else:
            made.append(MadeFrom("", vector_digest(embedding), model_id))
    return made


@dataclass(frozen=True)
class BinarizeRun:
    """How `balr binarize` runs: the composed `binarize` config (`binarize_config`; None:
    its defaults), the folder of the vectors (`save_dir`, None: where the dataset's vectors
    are), `force` (binarize again the items done), the device, how the dataset is read and
    whether the vectors are written (`save_output`)."""

    config: DictConfig | None = None
    save_dir: Path | None = None
    force: bool = False
    device: torch.device | None = None
    reading: DatasetReading = field(default_factory=DatasetReading)
    save_output: bool = True


def binarize_path(input_data: str | os.PathLike, run: BinarizeRun | None = None) -> BinarizeReport:
    """`balr binarize`: binarize the dataset at `input_data` (vectors under `run.save_dir`
    if given) with the encoder of the `balr binarize` config, or the shipped one."""
    run = run or BinarizeRun()
    config = run.config if run.config is not None else binarize_config()
    checkpoint = encoder_checkpoint(config.encoder.model.checkpoint_path)
    encoder = BinaryAttributeEncoder.load(checkpoint, run.device or "cpu")
    check_shape(config.encoder.model, encoder, checkpoint)
    dataset = run.reading.open(input_data, run.save_dir, config.vector_format)
    return binarize_dataset(
        dataset,
        encoder,
        config.encoder.batch_size,
        run.device,
        run.force,
        encoder_source=checkpoint,
        allow_other_model=config.encoder.allow_other_embedding_model,
        save_output=run.save_output,
    )


def check_shape(model: DictConfig, encoder: BinaryAttributeEncoder, source: object) -> None:
    """ModelError when `encoder.model.input_dim` / `internal_dim` (the reference's keys)
    are set and contradict the loaded encoder's weights."""
    for key, actual in (("input_dim", encoder.input_dim), ("internal_dim", encoder.latent_dim)):
        wanted = model.get(key)
        if wanted is not None and wanted != actual:
            raise ModelError(
                f"encoder.model.{key}={wanted}, but the encoder {source} has {key} {actual} "
                "(leave it unset to take the checkpoint's)"
            )


def encoder_checkpoint(configured: str | None) -> str | Path:
    """The configured checkpoint (the reference's `runs/train/best.pt`: balr's
    `weights/best.safetensors` there), or the shipped encoder (logged) when none is given."""
    if configured:
        return resolve_reference_path(configured, "encoder")
    checkpoint = defaults.require(defaults.BAE_CHECKPOINT, "binary-attribute encoder")
    logger.info(
        "no encoder.model.checkpoint_path: using the shipped encoder %s (trained on %s embeddings)",
        checkpoint,
        defaults.EMBEDDING_MODEL,
    )
    return checkpoint


def _check_dimension(
    embeddings: np.ndarray, expected: int, data: Path, checkpoint: str | os.PathLike
) -> None:
    """ModelError naming both files when the embeddings do not fit the encoder."""
    if embeddings.shape[1] != expected:
        name = f" {checkpoint}" if str(checkpoint) else ""
        raise ModelError(
            f"{data}: {embeddings.shape[1]}-dim embeddings, but the encoder{name} takes "
            f"{expected}-dim ones (the shipped encoder fits the default "
            f"{defaults.EMBEDDING_MODEL} embeddings; pass encoder.model.checkpoint_path=PATH "
            "for others)"
        )
