"""The binary-attribute auto-encoder: embedding -> Z in (-1, 1) -> bits (Ben-Amor,
Bonastre & Mdhaffar, "Extraction of interpretable and shared speaker-specific speech
attributes through binary auto-encoder", Interspeech 2024).

Checkpoints are safetensors weights plus a JSON sidecar (`<name>.json`: model config and
training metadata). The embedding model the encoder was trained on (`trained_on`, see
`balr.data.provenance`) is stored in the safetensors metadata (`embedding_model`,
`embedding_dim`), so the weights file alone carries it; the reference library's
`BAE_mse.pt` is recognised by its SHA-256. Layer indices follow the original balr library,
so its plain state dicts load strictly:
`encoder = [Linear(d, m), ReLU, BatchNorm1d(m), Linear(m, m), Tanh]` and
`decoder = [Linear(m, m), Tanh, Linear(m, d)]`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from balr.binary_attributes.config import LATENT_DIM, EncoderConfig
from balr.binary_attributes.encoder_numpy import (  # noqa: F401  (KNOWN_CHECKPOINTS: re-exported)
    KNOWN_CHECKPOINTS,
    SAFETENSORS_SUFFIX,
    read_trained_on,
)
from balr.data.provenance import EmbeddingProvenance
from balr.data.vectors import bits_to_counts
from balr.errors import ModelError, load_failure_reason
from balr.estimator import Estimator
from balr.fileio import atomic_path, atomic_write_text, sha256_file  # noqa: F401
from balr.records import check_finite_tensors
from balr.reference_paths import resolve_reference_path

logger = logging.getLogger(__name__)

#: straight-through gradients: `clip` passes hardtanh(gradient) (the reference library's),
#: `gate` the gradient where |z| <= 1 (balr 0.1's; always open after tanh)
STE_GRADIENTS = ("clip", "gate")


class BinarizeSTE(torch.autograd.Function):
    """`b = 1[z > 0]`; backward passes the incoming gradient straight through, its values
    clipped to [-1, 1] (`clip`), or where |z| <= 1 only (`gate`)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, gradient: str = "clip") -> torch.Tensor:
        ctx.gradient = gradient
        ctx.save_for_backward(z)
        return (z > 0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        if ctx.gradient == "clip":
            return torch.nn.functional.hardtanh(grad_output), None
        (z,) = ctx.saved_tensors
        return grad_output * (z.abs() <= 1).to(grad_output.dtype), None


def binarize_ste(z: torch.Tensor, gradient: str = "clip") -> torch.Tensor:
    """Hard bits in the forward pass, straight-through gradient in the backward pass."""
    return BinarizeSTE.apply(z, gradient)


class EncoderOutput(NamedTuple):
    """What one forward pass gives the losses."""

    z: torch.Tensor  # (B, m) continuous codes in (-1, 1)
    codes: torch.Tensor  # (B, m) bits {0, 1} with a straight-through gradient
    reconstruction: torch.Tensor  # (B, d) decoded embedding


class BinaryAttributeEncoder(nn.Module, Estimator):
    """Auto-encoder turning a d-dim speaker embedding into m binary attributes.

    An estimator (`balr.estimator`): its hyper-parameters are its constructor arguments, its
    weights its state (a torch module is always usable: it counts as fitted); trained by
    `balr.binary_attributes.trainer`, written by `save` and read back by `load`."""

    estimator_label: ClassVar[str] = "the binary-attribute encoder"

    def __init__(self, input_dim: int = 256, latent_dim: int = LATENT_DIM, ste_gradient="clip"):
        super().__init__()
        self.input_dim = input_dim
        if ste_gradient not in STE_GRADIENTS:
            raise ModelError(f"ste_gradient '{ste_gradient}': expected one of {STE_GRADIENTS}")
        self.ste_gradient = ste_gradient  # training only: not part of the saved model
        self.trained_on: EmbeddingProvenance | None = None  # the embeddings' model, if known
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Linear(input_dim, latent_dim),
            nn.ReLU(),
            nn.BatchNorm1d(latent_dim),
            nn.Linear(latent_dim, latent_dim),
            nn.Tanh(),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, latent_dim),
            nn.Tanh(),
            nn.Linear(latent_dim, input_dim),
        )

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        z = self.encoder(x)
        codes = binarize_ste(z, self.ste_gradient)
        return EncoderOutput(z, codes, self.decoder(codes))

    def config(self) -> dict:
        """The constructor arguments, saved beside the weights."""
        return {"input_dim": self.input_dim, "latent_dim": self.latent_dim}

    @torch.no_grad()
    def binarize(
        self,
        embeddings: np.ndarray,
        batch_size: int = EncoderConfig.batch_size,
        device: torch.device | None = None,
    ) -> np.ndarray:
        """Bits of each embedding as `(n, m, 2)` int8 counts `[b, 1 - b]` (eval mode)."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.input_dim:
            raise ModelError(
                f"embeddings of shape {embeddings.shape}: the encoder expects (n, {self.input_dim})"
            )
        device = device or next(self.parameters()).device
        was_training = self.training
        self.eval()
        bits = np.empty((len(embeddings), self.latent_dim), dtype=np.int8)
        for start in range(0, len(embeddings), batch_size):
            chunk = torch.from_numpy(embeddings[start : start + batch_size]).to(device)
            bits[start : start + len(chunk)] = (self.encoder(chunk) > 0).cpu().numpy()
        self.train(was_training)
        return bits_to_counts(bits)

    def save(self, path: str | os.PathLike, **meta) -> Path:
        """Write weights as safetensors (with `trained_on` in its metadata) and `<path>.json`
        (model config, `trained_on` as `embedding_model` + `meta`), atomically; the weights'
        path."""
        path = Path(path)
        if path.suffix != SAFETENSORS_SUFFIX:
            raise ModelError(f"{path}: encoder weights are saved as {SAFETENSORS_SUFFIX}")
        state = {key: value.detach().cpu().contiguous() for key, value in self.state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(state, str(tmp), metadata=provenance_metadata(self.trained_on))
        info = {"model": self.config(), **meta}
        if self.trained_on is not None:
            info["embedding_model"] = self.trained_on.to_dict()
        atomic_write_text(path.with_suffix(".json"), json.dumps(info, indent=2, default=str))
        return path

    @classmethod
    def load(
        cls, path: str | os.PathLike, device: torch.device | str = "cpu"
    ) -> BinaryAttributeEncoder:
        """A checkpoint (ours, or the original balr's plain state dict) loaded strictly, in
        eval mode; the dimensions are read from the weights. The reference's `best.pt`
        names balr's `weights/best.safetensors` beside it (`balr.reference_paths`)."""
        path = resolve_reference_path(path, "encoder")
        state = read_state_dict(path)
        check_finite_tensors(path, state)
        input_dim, latent_dim = _dims_from_state(state, str(path))
        model = cls(input_dim, latent_dim)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())
            raise ModelError(
                f"{path}: state dict does not match the encoder ({detail[:300]})"
            ) from None
        model.trained_on = read_trained_on(path)
        return model.to(device).eval()


def provenance_metadata(provenance: EmbeddingProvenance | None) -> dict[str, str]:
    """Safetensors metadata (strings) of an encoder's weights: format, and `embedding_model`
    / `embedding_dim` when the embeddings' model is known."""
    metadata = {"format": "pt"}
    if provenance is not None:
        metadata.update(embedding_model=provenance.model, embedding_dim=str(provenance.dim))
    return metadata


def strip_ddp_prefix(state: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Remove the `module.` prefix that DDP adds, if every key has it (error if only some)."""
    prefixed = [key.startswith("module.") for key in state]
    if not any(prefixed):
        return dict(state)
    if not all(prefixed):
        raise ModelError(f"{source}: state dict mixes 'module.'-prefixed and plain keys")
    logger.info("%s: stripping the DDP 'module.' prefix from %d keys", source, len(state))
    return {key[len("module.") :]: value for key, value in state.items()}


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file or a `torch.save`d state dict (weights_only, no code)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    try:
        if path.suffix == SAFETENSORS_SUFFIX:
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: cannot read checkpoint ({load_failure_reason(exc)})") from None
    if (
        isinstance(state, Mapping)
        and "state_dict" in state
        and isinstance(state["state_dict"], Mapping)
    ):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ModelError(f"{path}: not a state dict of tensors")
    return strip_ddp_prefix(state, str(path))


def _dims_from_state(state: Mapping[str, torch.Tensor], source: str) -> tuple[int, int]:
    """`(d, m)` read from the first Linear layer's weight, shape (m, d)."""
    weight = state.get("encoder.0.weight")
    if weight is None or weight.ndim != 2:
        raise ModelError(f"{source}: no 'encoder.0.weight' matrix: not a binary-attribute encoder")
    if 0 in weight.shape:
        raise ModelError(f"{source}: 'encoder.0.weight' is empty, shape {tuple(weight.shape)}")
    return int(weight.shape[1]), int(weight.shape[0])
