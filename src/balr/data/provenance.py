"""Which embedding model made a folder's embeddings, and whether an encoder fits them.

`balr extract` writes `embedding_model.json` (`{"model": "ge2e", "dim": 256}`) in its records
folder (`--save-dir`, else `.balr/` in the dataset's folder: the directory, or the CSV's
folder), next to `speech_durations.tsv`; it covers every vector format, the single-file
store included.
A binary-attribute encoder records the same pair for the embeddings it was trained on
(`balr.binary_attributes.model`). `check_encoder_fits` compares the two: another model is
refused unless allowed, another dimension always; an unknown side (files written before
balr recorded provenance, the reference library's files) passes with a warning.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from balr.data.ledger import record_folders
from balr.errors import DataError, ModelError
from balr.fileio import atomic_write_text

logger = logging.getLogger(__name__)

PROVENANCE_FILE = "embedding_model.json"
#: the override that lets `binarize` / `compare` apply an encoder to another model's vectors
ALLOW_KEY = "encoder.allow_other_embedding_model"


@dataclass(frozen=True)
class EmbeddingProvenance:
    """An embedding model's name (`ge2e`, `wespeaker_resnet34`, `doublemha:<sha256[:12]>`)
    and the dimension of its vectors."""

    model: str
    dim: int

    def __str__(self) -> str:
        return f"{self.model} ({self.dim}-dim)"

    def to_dict(self) -> dict:
        return {"model": self.model, "dim": self.dim}

    @classmethod
    def from_dict(cls, data: object, source: str) -> EmbeddingProvenance:
        """From `{"model": str, "dim": int}`; DataError naming `source` otherwise."""
        if not (
            isinstance(data, dict)
            and isinstance(data.get("model"), str)
            and data["model"]
            and isinstance(data.get("dim"), int)
            and data["dim"] > 0
        ):
            raise DataError(f'{source}: expected {{"model": NAME, "dim": N}}, got {data!r}')
        return cls(data["model"], data["dim"])


def provenance_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / PROVENANCE_FILE


def write_provenance(folder: str | os.PathLike, provenance: EmbeddingProvenance) -> Path:
    """Record (atomically) which model made the embeddings of `folder`."""
    path = provenance_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(provenance.to_dict(), indent=2) + "\n")
    return path


def read_provenance(folder: str | os.PathLike) -> EmbeddingProvenance | None:
    """The model recorded in `folder`, or None when nothing is recorded."""
    path = provenance_path(folder)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read embedding provenance ({exc})") from None
    return EmbeddingProvenance.from_dict(data, str(path))


def dataset_provenance(dataset) -> tuple[EmbeddingProvenance | None, Path]:
    """The provenance of an `AudioDataset`'s embeddings: recorded in its output dir, else
    in its records folder `.balr/`, else in its root (`balr.data.ledger.record_folders`);
    with the folder it was found in (when none: the output dir or root)."""
    for folder in record_folders(dataset.output_dir, dataset.root):
        found = read_provenance(folder)
        if found is not None:
            return found, Path(folder)
    return None, Path(dataset.output_dir or dataset.root)


def check_encoder_fits(
    embeddings: EmbeddingProvenance | None,
    encoder: EmbeddingProvenance | None,
    encoder_dim: int,
    embeddings_source: str | os.PathLike,
    encoder_source: str | os.PathLike,
    allow_other_model: bool = False,
) -> str | None:
    """Refuse (ModelError, one line naming both sides) embeddings of another dimension than
    the encoder's input, or of another model than the one it was trained on (unless
    `allow_other_model`). Returns the warning logged when one side is unknown or the
    mismatch was allowed, else None."""
    if embeddings is not None and embeddings.dim != encoder_dim:
        raise ModelError(
            f"{embeddings_source}: {embeddings} embeddings, but the encoder {encoder_source} "
            f"takes {encoder_dim}-dim ones"
        )
    if embeddings is None or encoder is None:
        unknown = [
            what
            for what, side in (
                (f"embeddings in {embeddings_source}", embeddings),
                (f"encoder {encoder_source}", encoder),
            )
            if side is None
        ]
        warning = (
            f"cannot check that the encoder fits the embeddings: no embedding model recorded "
            f"for the {' nor the '.join(unknown)}"
        )
    elif embeddings.model == encoder.model:
        return None
    elif not allow_other_model:
        raise ModelError(
            f"{embeddings_source}: embeddings of {embeddings.model}, but the encoder "
            f"{encoder_source} was trained on {encoder.model} embeddings; extract with that "
            f"model, give an encoder trained on {embeddings.model}, or pass {ALLOW_KEY}=true "
            "to use it anyway"
        )
    else:
        warning = (
            f"{ALLOW_KEY}=true: applying the encoder {encoder_source} (trained on "
            f"{encoder.model}) to {embeddings.model} embeddings of {embeddings_source}"
        )
    logger.warning(warning)
    return warning
