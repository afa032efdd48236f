"""`balr extract` as one library call: an audio source + `embeddings.*` overrides -> vectors.

`extract_dataset_embeddings` composes the config (the model chosen by `embeddings.model=NAME`,
`balr.defaults.EMBEDDING_MODEL` by default), builds the model, reads the dataset, keeps this
process's shard under torchrun and runs the batch extraction (`balr.embeddings.batch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from balr.config import compose_config, register_config
from balr.data import AudioDataset
from balr.defaults import EMBEDDING_MODEL
from balr.distributed import rank, resolve_device, world_size
from balr.embeddings.base import MODEL_GROUP, build_embedding_model, select_model_overrides
from balr.embeddings.batch import (
    ERRORS_FILE,
    SPEECH_FILE,
    ExtractionOptions,
    ExtractionReport,
    extract_embeddings,
)
from balr.errors import DataError

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


def extract_dataset_embeddings(
    source: str | Path,
    save_dir: str | Path | None = None,
    overrides: Sequence[str] | None = None,
    force: bool = False,
    device: str | None = None,
    audio_formats: Sequence[str] | None = None,
    progress: bool = True,
) -> ExtractionReport:
    """Embed every recording of `source` (audio file, directory, CSV or Kaldi dir) that has
    no embedding yet (all with `force`); vectors go beside the audio or under `save_dir`.

    Unreadable or too short recordings, and those with less net speech than `min_speech_s`,
    are listed in the report's `errors_path` and skipped; the net speech duration of each
    embedded one goes to `speech_path` (`speech_durations.tsv`).
    """
    cfg = extract_config(overrides).embeddings
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    model = build_embedding_model(cfg.model).to(resolve_device(device))
    ds = AudioDataset.from_path(
        source,
        list(audio_formats or []) or None,
        output_dir=save_dir,
        vector_format=cfg.vector_format,
    )
    if len(ds) == 0:
        raise DataError(f"{source}: no recordings found")
    ds.check_vector_paths()  # two items sharing a vector file: refused before any work
    options = ExtractionOptions(**{f.name: cfg[f.name] for f in fields(ExtractionOptions)})
    options.force = options.force or force
    folder = save_dir or ds.root
    return extract_embeddings(
        ds.shard(), model, options, errors_path(folder), progress, errors_path(folder, SPEECH_FILE)
    )
