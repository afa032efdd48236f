"""`NumpyEncoder` (the encoder's inference in numpy, used by `balr compare`) gives the bits of
the torch `BinaryAttributeEncoder`, and leaves every file it does not fully check to it."""

from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from balr.binary_attributes.encoder_numpy import NumpyEncoder
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.data.provenance import EmbeddingProvenance


def _trained_like_encoder(path):
    """A random 16 -> 32 encoder whose BatchNorm has non-trivial running statistics."""
    torch.manual_seed(0)
    model = BinaryAttributeEncoder(16, 32)
    batch_norm = model.encoder[2]
    batch_norm.running_mean.uniform_(-1, 1)
    batch_norm.running_var.uniform_(0.2, 3)
    batch_norm.weight.data.uniform_(0.5, 2)
    batch_norm.bias.data.uniform_(-0.5, 0.5)
    model.trained_on = EmbeddingProvenance("ge2e", 16)
    return model.eval().save(path)


def test_bits_equal_the_torch_encoder(tmp_path):
    path = _trained_like_encoder(tmp_path / "bae.safetensors")
    ours, theirs = NumpyEncoder.load(path), BinaryAttributeEncoder.load(path)
    assert (ours.input_dim, ours.latent_dim) == (16, 32)
    assert ours.trained_on == theirs.trained_on == EmbeddingProvenance("ge2e", 16)
    embeddings = np.random.default_rng(0).normal(size=(500, 16)).astype(np.float32)
    counts = ours.binarize(embeddings)
    assert counts.shape == (500, 32, 2) and counts.dtype == np.int8
    np.testing.assert_array_equal(counts, theirs.binarize(embeddings))
    assert 0.1 < counts[..., 0].mean() < 0.9  # both bit values occur


def test_files_it_does_not_fully_check_are_left_to_the_torch_loader(tmp_path):
    path = _trained_like_encoder(tmp_path / "bae.safetensors")
    state = load_file(str(path))
    torch.save(state, tmp_path / "bae.pt")
    assert NumpyEncoder.load(tmp_path / "bae.pt") is None
    save_file({f"module.{k}": v for k, v in state.items()}, str(tmp_path / "ddp.safetensors"))
    assert NumpyEncoder.load(tmp_path / "ddp.safetensors") is None  # torch strips the prefix
    state["encoder.3.bias"] = torch.full_like(state["encoder.3.bias"], float("nan"))
    save_file(state, str(tmp_path / "nan.safetensors"))
    assert NumpyEncoder.load(tmp_path / "nan.safetensors") is None
    assert NumpyEncoder.load(tmp_path / "missing.safetensors") is None
