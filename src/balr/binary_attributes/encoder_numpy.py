"""The binary-attribute encoder's inference in numpy (eval mode), for `balr compare` without
torch; and what an encoder file says it was trained on (`read_trained_on`), read without torch.

`encoder = [Linear(d, m), ReLU, BatchNorm1d(m) with its running statistics, Linear(m, m),
Tanh]`, then `b = 1[z > 0]`: the bits of `BinaryAttributeEncoder.binarize`
(`balr.binary_attributes.model`, the torch module that is trained and saved), computed in
float32 from the same safetensors weights (identical bits: `tests/test_compare_numpy.py` on
the bundled clips, `tests/binary_attributes/test_encoder_numpy.py`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from balr.data.provenance import EmbeddingProvenance
from balr.data.vectors import bits_to_counts
from balr.errors import ModelError
from balr.fileio import sha256_file
from balr.records import check_state_dict
from balr.reference_paths import resolve_reference_path

SAFETENSORS_SUFFIX = ".safetensors"
BATCH_NORM_EPS = 1e-5  # torch.nn.BatchNorm1d's default

#: encoder checkpoints without metadata, known by their SHA-256: the reference library's
#: `resources/models/BAE/BAE_mse.pt` (Wespeaker voxceleb-resnet34-LM embeddings, its README)
KNOWN_CHECKPOINTS = {
    "9211ab5d594421fdb0f37771ebd3212ed19c37007779018aa4f7a6f698763d15": EmbeddingProvenance(
        "wespeaker_resnet34", 256
    ),
}


class NumpyEncoder:
    """The encoder half of a binary-attribute encoder checkpoint: embeddings -> bits."""

    def __init__(self, state: dict[str, np.ndarray], trained_on: EmbeddingProvenance | None):
        self.state = state
        self.latent_dim, self.input_dim = state["encoder.0.weight"].shape
        self.trained_on = trained_on

    @classmethod
    def load(cls, path: str | os.PathLike) -> NumpyEncoder | None:
        """The encoder of a `.safetensors` checkpoint that passes every check the torch
        loader makes; None for any other file (the torch loader then reads it, or says in
        one line what is wrong with it)."""
        path = resolve_reference_path(path, "encoder")
        if path.suffix != SAFETENSORS_SUFFIX or not path.is_file():
            return None
        try:
            from safetensors.numpy import load_file

            state = load_file(str(path))
            check_state_dict(path, state, expected_shapes(state))
            trained_on = read_trained_on(path)
        except Exception:  # any problem: the torch loader gives the one-line error
            return None
        return cls({k: v.astype(np.float32) for k, v in state.items()}, trained_on)

    def binarize(self, embeddings: np.ndarray) -> np.ndarray:
        """Bits of each embedding as `(n, m, 2)` int8 counts `[b, 1 - b]`."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.input_dim:
            raise ModelError(
                f"embeddings of shape {embeddings.shape}: the encoder expects (n, {self.input_dim})"
            )
        s = self.state
        hidden = np.maximum(embeddings @ s["encoder.0.weight"].T + s["encoder.0.bias"], 0)
        scale = s["encoder.2.weight"] / np.sqrt(s["encoder.2.running_var"] + BATCH_NORM_EPS)
        hidden = (hidden - s["encoder.2.running_mean"]) * scale + s["encoder.2.bias"]
        z = np.tanh(hidden @ s["encoder.3.weight"].T + s["encoder.3.bias"])
        return bits_to_counts((z > 0).astype(np.int8))


def expected_shapes(state: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """The tensors of an encoder + decoder state dict, with the dimensions read from its
    first layer (ModelError when that layer is missing)."""
    weight = state.get("encoder.0.weight")
    if weight is None or weight.ndim != 2 or 0 in weight.shape:
        raise ModelError("no usable 'encoder.0.weight'")
    m, d = weight.shape
    shapes = {"encoder.0.weight": (m, d), "encoder.0.bias": (m,)}
    for name in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"encoder.2.{name}"] = (m,)
    shapes["encoder.2.num_batches_tracked"] = ()
    shapes |= {"encoder.3.weight": (m, m), "encoder.3.bias": (m,)}
    shapes |= {"decoder.0.weight": (m, m), "decoder.0.bias": (m,)}
    return shapes | {"decoder.2.weight": (d, m), "decoder.2.bias": (d,)}


def read_trained_on(path: str | os.PathLike) -> EmbeddingProvenance | None:
    """The embedding model an encoder checkpoint was trained on: its safetensors metadata,
    else a known checkpoint's SHA-256 (`KNOWN_CHECKPOINTS`), else None (unknown)."""
    from safetensors import safe_open

    path = Path(path)
    if path.suffix != SAFETENSORS_SUFFIX:
        return KNOWN_CHECKPOINTS.get(sha256_file(path))
    with safe_open(str(path), "np") as handle:
        metadata = handle.metadata() or {}
    if "embedding_model" not in metadata:
        return KNOWN_CHECKPOINTS.get(sha256_file(path))
    try:
        dim = int(metadata["embedding_dim"])
    except (KeyError, ValueError):
        raise ModelError(f"{path}: metadata 'embedding_dim' missing or not a number") from None
    if dim <= 0:
        raise ModelError(f"{path}: metadata 'embedding_dim' must be positive, got {dim}")
    return EmbeddingProvenance(metadata["embedding_model"], dim)
