"""`balr extract` as one library call: an audio source + an `ExtractionRun` -> vectors.

`extract_config` composes the `extract` config from `embeddings.*` overrides (the model chosen
by `embeddings.model=NAME`, `balr.defaults.EMBEDDING_MODEL` by default); the CLI composes it
once into an `ExtractionRun`. `extract_dataset_embeddings` builds the model, reads the
dataset, keeps this process's shard under torchrun and runs the batch extraction
(`balr.embeddings.batch`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from balr.config import compose_config, register_config
from balr.data import AudioDataset
from balr.data.channel_profiles import CHANNEL_FILE
from balr.data.dataset import DatasetReading
from balr.data.provenance import (
    EmbeddingProvenance,
    provenance_path,
    read_provenance,
    write_provenance,
)
from balr.data.speech import SPEECH_FILE
from balr.defaults import EMBEDDING_MODEL
from balr.distributed import is_main_process, rank, resolve_device, world_size
from balr.embeddings.base import (
    MODEL_GROUP,
    EmbeddingModel,
    build_embedding_model,
    select_model_overrides,
)
from balr.embeddings.batch import ExtractionOptions, extract_embeddings
from balr.embeddings.report import ERRORS_FILE, ExtractionReport
from balr.errors import DataError
from balr.fileio import sha256_file

logger = logging.getLogger(__name__)
CONFIG_NAME = "extract"


@dataclass
class EmbeddingsConfig(ExtractionOptions):
    """`embeddings.*`: the model (a config group) and the extraction loop's settings."""

    model: Any = None
    vector_format: str = "txt"  # txt, npy, pkl or store (one memory-mapped file)
    threads: int = 0  # torch threads for the model; 0 keeps torch's default


@dataclass
class ExtractConfig:
    """Composed with `embeddings.model=NAME` and `embeddings.KEY=VALUE` overrides."""

    defaults: list = field(default_factory=lambda: ["_self_", {MODEL_GROUP: EMBEDDING_MODEL}])
    embeddings: EmbeddingsConfig = field(default_factory=EmbeddingsConfig)


def extract_config(overrides: Sequence[str] | None = None) -> DictConfig:
    """The resolved `extract` config (model chosen by `embeddings.model=NAME`)."""
    register_config(CONFIG_NAME, ExtractConfig)
    return compose_config(CONFIG_NAME, select_model_overrides(overrides))


def errors_path(folder: str | Path, name: str = ERRORS_FILE) -> Path:
    """`folder/extract_errors.tsv` (or another `name`); under torchrun one per rank:
    `extract_errors.rankN.tsv`."""
    if world_size() > 1:
        stem, suffix = name.rsplit(".", 1)
        return Path(folder) / f"{stem}.rank{rank()}.{suffix}"
    return Path(folder) / name


@dataclass(frozen=True)
class ExtractionRun:
    """How `balr extract` runs: the composed `extract` config (`extract_config`; None: its
    defaults), the vectors' folder (`save_dir`, None: beside the audio), `force` (extract
    the recordings done again), the device (None: cpu), how the dataset is read, whether a
    progress bar is shown and whether anything is written (`save_output`)."""

    config: DictConfig | None = None
    save_dir: Path | None = None
    force: bool = False
    device: str | None = None
    reading: DatasetReading = field(default_factory=DatasetReading)
    progress: bool = True
    save_output: bool = True


def extract_dataset_embeddings(
    source: str | Path, run: ExtractionRun | None = None
) -> ExtractionReport:
    """Embed every recording of `source` (audio file, directory, CSV or Kaldi dir) that has
    no embedding yet (all with `run.force`); vectors go beside the audio or under
    `run.save_dir` (a CSV's relative paths are below `run.reading.root_dir`), the run
    records (reports, model, vectors ledger) under `save_dir`, else in `.balr/` of the
    dataset's folder. Without `run.save_output` the embeddings are computed and counted,
    and nothing is written (no vectors, provenance or reports).

    Unreadable or too short recordings, and those with less net speech than `min_speech_s`,
    are listed in the report's `errors_path` and skipped; the net speech duration of each
    embedded one goes to `speech_path` (`speech_durations.tsv`), its channel profile to
    `profiles_path` (`channel_profiles.tsv`, what `balr score test` checks the channel by).
    """
    run = run or ExtractionRun()
    cfg = (run.config if run.config is not None else extract_config()).embeddings
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    model = build_embedding_model(cfg.model).to(resolve_device(run.device))
    ds = run.reading.open(source, run.save_dir, cfg.vector_format)
    if len(ds) == 0:
        raise DataError(f"{source}: no recordings found")
    ds.check_vector_paths()  # two items sharing a vector file: refused before any work
    options = ExtractionOptions.from_config(cfg)
    options.force = options.force or run.force
    folder = ds.records_folder()  # the save dir, else `.balr/` (nothing beside each audio)
    shard = ds.shard()
    if not run.save_output:
        return extract_embeddings(shard, model, options, progress=run.progress, save=False)
    record_provenance(folder, model_provenance(model, cfg.model), shard, options.force)
    return extract_embeddings(
        shard,
        model,
        options,
        errors_path(folder),
        run.progress,
        errors_path(folder, SPEECH_FILE),
        profiles_path=errors_path(folder, CHANNEL_FILE),
    )


def model_provenance(model: EmbeddingModel, cfg) -> EmbeddingProvenance:
    """What `embedding_model.json` records for `model` (built from `cfg`, its
    `embeddings.model` node): `wespeaker_<architecture>` (e.g. `wespeaker_resnet34`),
    `doublemha:<first 12 hex digits of the checkpoint's sha256>`, else the model's name."""
    name = model.name
    if name == "wespeaker":
        name = f"wespeaker_{_wespeaker_architecture(model.network).lower()}"
    elif name == "doublemha":
        from balr.doublemha.checkpoint import resolve_checkpoint

        name = f"doublemha:{sha256_file(resolve_checkpoint(cfg.checkpoint_path))[:12]}"
    return EmbeddingProvenance(name, int(model.embedding_dim))


def record_provenance(
    folder: str | Path, provenance: EmbeddingProvenance, dataset: AudioDataset, force: bool
) -> None:
    """Write `folder/embedding_model.json` before any vector is saved. A folder recorded for
    another model is refused unless `force` (every vector is then made again); a folder
    already holding embeddings without a record stays unrecorded (their model is unknown)."""
    record, recorded = provenance_path(folder), read_provenance(folder)
    if recorded is None and dataset.output_dir is None:  # where balr wrote it before `.balr/`
        record, recorded = provenance_path(dataset.root), read_provenance(dataset.root)
    if recorded is not None and recorded != provenance and not force:
        raise DataError(
            f"{record.parent}: holds embeddings of {recorded} ({record}); "
            f"extracting {provenance} there would mix two models: use another --save-dir, "
            "or --force to extract every recording again"
        )
    if (
        recorded is None
        and not force
        and any(dataset.has_vector(i, "emb") for i in range(len(dataset)))
    ):
        logger.warning(
            "%s: embeddings already there have no recorded model; %s is not recorded "
            "(--force extracts all again and records it)",
            folder,
            provenance,
        )
        return
    if is_main_process() and recorded != provenance:
        write_provenance(folder, provenance)


def _wespeaker_architecture(network) -> str:
    """The Wespeaker ResNet name (ResNet34...) of a built network, from its block counts."""
    from balr.embeddings.wespeaker_resnet import ARCHITECTURES

    layers = (network.layer1, network.layer2, network.layer3, network.layer4)
    shape = (type(network.layer1[0]), tuple(len(layer) for layer in layers))
    for arch, known in ARCHITECTURES.items():
        if known == shape:
            return arch
    return "resnet"
