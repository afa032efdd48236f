"""Straight-through binarisation, inference output, strict and safe checkpoint loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from balr.binary_attributes.model import BinaryAttributeEncoder, binarize_ste
from balr.errors import ModelError


def test_ste_forward_is_a_hard_threshold_at_zero():
    z = torch.tensor([-0.5, 0.0, 0.2, 1.5, -2.0])
    assert binarize_ste(z).tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]


def test_ste_backward_gate_passes_gradient_inside_the_hard_tanh_clip_only():
    z = torch.tensor([-0.5, 0.0, 0.2, 1.0, 1.5, -2.0], requires_grad=True)
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    (binarize_ste(z, "gate") * weights).sum().backward()
    # d/dz = weight where |z| <= 1 (hard-tanh slope 1), 0 outside.
    assert z.grad.tolist() == [1.0, 2.0, 3.0, 4.0, 0.0, 0.0]


@pytest.mark.difference("BA-ste-backward")
def test_ste_backward_clip_is_the_references_hardtanh_of_the_gradient():
    z = torch.tensor([-0.5, 0.0, 0.2, 1.0, 1.5, -2.0], requires_grad=True)
    weights = torch.tensor([0.5, -2.0, 3.0, -0.25, 5.0, 1.0])
    (binarize_ste(z) * weights).sum().backward()
    # hardtanh of each incoming gradient, whatever z is
    assert z.grad.tolist() == [0.5, -1.0, 1.0, -0.25, 1.0, 1.0]


@pytest.mark.difference("BA-weight-init")
def test_kaiming_normal_init_of_the_linear_weights():
    from balr.binary_attributes.trainer import initialise_weights

    torch.manual_seed(0)
    model = BinaryAttributeEncoder(256, 512)
    # torch: uniform, std 1 / sqrt(3 * 256)
    default_std = float(model.encoder[0].weight.detach().std())
    initialise_weights(model, "kaiming_normal")
    std = float(model.encoder[0].weight.detach().std())
    assert abs(default_std - (1 / (3 * 256)) ** 0.5) < 0.002
    assert abs(std - (2 / 256) ** 0.5) < 0.003  # He et al.: gain sqrt(2), fan-in 256


def test_forward_shapes_and_bits():
    torch.manual_seed(0)
    model = BinaryAttributeEncoder(16, 32)
    out = model(torch.randn(5, 16))
    assert out.z.shape == (5, 32) and out.reconstruction.shape == (5, 16)
    assert torch.all((out.z > -1) & (out.z < 1))
    assert torch.equal(out.codes, (out.z > 0).float())


def test_binarize_returns_counts_b_and_one_minus_b():
    torch.manual_seed(0)
    model = BinaryAttributeEncoder(16, 32)
    x = np.random.default_rng(0).normal(size=(7, 16)).astype(np.float32)
    counts = model.binarize(x, batch_size=3)
    assert model.training  # binarize runs in eval mode, then restores training mode
    assert counts.shape == (7, 32, 2)
    model.eval()
    bits = (model.encoder(torch.from_numpy(x)) > 0).numpy()
    assert np.array_equal(counts[..., 0], bits)
    assert np.array_equal(counts[..., 1], 1 - bits)


def test_binarize_rejects_wrong_dimension():
    with pytest.raises(ModelError, match=r"\(n, 16\)"):
        BinaryAttributeEncoder(16, 32).binarize(np.zeros((2, 15), np.float32))


def test_save_and_load_round_trip(tmp_path: Path):
    torch.manual_seed(1)
    model = BinaryAttributeEncoder(16, 32)
    model(torch.randn(64, 16))  # updates BatchNorm running statistics
    model.save(tmp_path / "w.safetensors", epoch=3)
    loaded = BinaryAttributeEncoder.load(tmp_path / "w.safetensors")
    x = np.random.default_rng(1).normal(size=(9, 16)).astype(np.float32)
    assert np.array_equal(loaded.binarize(x), model.binarize(x))
    assert (tmp_path / "w.json").read_text().count('"epoch": 3') == 1


def balr_state_dict(d: int = 8, m: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict laid out as the original balr library saves it (keys written by hand)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    return {
        "encoder.0.weight": r(m, d),
        "encoder.0.bias": r(m),
        "encoder.2.weight": r(m),
        "encoder.2.bias": r(m),
        "encoder.2.running_mean": r(m),
        "encoder.2.running_var": r(m).abs() + 0.5,
        "encoder.2.num_batches_tracked": torch.tensor(10),
        "encoder.3.weight": r(m, m),
        "encoder.3.bias": r(m),
        "decoder.0.weight": r(m, m),
        "decoder.0.bias": r(m),
        "decoder.2.weight": r(d, m),
        "decoder.2.bias": r(d),
    }


@pytest.mark.difference("BA-bae-keys")
def test_loads_an_original_balr_state_dict_and_computes_the_spec_network(tmp_path: Path):
    state = balr_state_dict()
    torch.save(state, tmp_path / "balr.pt")
    model = BinaryAttributeEncoder.load(tmp_path / "balr.pt")
    assert (model.input_dim, model.latent_dim) == (8, 16)
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(5))
    # the encoder: Linear -> ReLU -> BatchNorm (eval: running stats, eps 1e-5) -> Linear -> Tanh.
    h = torch.relu(x @ state["encoder.0.weight"].T + state["encoder.0.bias"])
    h = (h - state["encoder.2.running_mean"]) / torch.sqrt(state["encoder.2.running_var"] + 1e-5)
    h = h * state["encoder.2.weight"] + state["encoder.2.bias"]
    z = torch.tanh(h @ state["encoder.3.weight"].T + state["encoder.3.bias"])
    with torch.no_grad():
        out = model(x)
    assert torch.allclose(out.z, z, atol=1e-5)
    assert np.array_equal(model.binarize(x.numpy())[..., 0], (z > 0).numpy())


def test_ddp_module_prefix_is_stripped(tmp_path: Path):
    state = {f"module.{k}": v for k, v in balr_state_dict().items()}
    torch.save(state, tmp_path / "ddp.pt")
    assert BinaryAttributeEncoder.load(tmp_path / "ddp.pt").latent_dim == 16


def test_mixed_prefix_is_an_error(tmp_path: Path):
    state = balr_state_dict()
    state["module.encoder.0.bias"] = state.pop("encoder.0.bias")
    torch.save(state, tmp_path / "mixed.pt")
    with pytest.raises(ModelError, match="mixes 'module.'"):
        BinaryAttributeEncoder.load(tmp_path / "mixed.pt")


@pytest.mark.parametrize("change", ["extra", "missing", "shape"])
def test_mismatched_state_dict_is_an_error_naming_the_file(tmp_path: Path, change: str):
    state = balr_state_dict()
    if change == "extra":
        state["encoder.9.weight"] = torch.zeros(1)
    elif change == "missing":
        del state["decoder.2.bias"]
    else:
        state["encoder.3.weight"] = torch.zeros(16, 15)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ModelError, match=r"bad\.pt: state dict does not match"):
        BinaryAttributeEncoder.load(tmp_path / "bad.pt")


class _Payload:
    """Unpickling this would create a file: proof that loading ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_loading_never_runs_code_from_the_file(tmp_path: Path):
    marker = tmp_path / "code-ran"
    state = balr_state_dict()
    state["payload"] = _Payload(marker)
    torch.save(state, tmp_path / "evil.pt")
    with pytest.raises(ModelError, match=r"evil\.pt: cannot read checkpoint"):
        BinaryAttributeEncoder.load(tmp_path / "evil.pt")
    assert not marker.exists()


def test_missing_and_non_encoder_files(tmp_path: Path):
    with pytest.raises(ModelError, match="not found"):
        BinaryAttributeEncoder.load(tmp_path / "absent.safetensors")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a binary-attribute encoder"):
        BinaryAttributeEncoder.load(tmp_path / "other.pt")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_one_line_naming_the_tensor(tmp_path: Path, value: float):
    state = balr_state_dict()
    state["decoder.2.weight"][3, 1] = value
    torch.save(state, tmp_path / "best.pt")
    with pytest.raises(ModelError) as caught:
        BinaryAttributeEncoder.load(tmp_path / "best.pt")
    assert str(caught.value) == (
        f"{tmp_path / 'best.pt'}: field 'decoder.2.weight' holds 1 non-finite value(s) (NaN or inf)"
    )


def test_bad_embedding_dim_metadata_is_one_line(tmp_path: Path):
    path = tmp_path / "bae.safetensors"
    state = {k: v.contiguous() for k, v in balr_state_dict().items()}
    save_file(state, str(path), metadata={"embedding_model": "ge2e", "embedding_dim": "-8"})
    with pytest.raises(
        ModelError,
        match=r"bae\.safetensors: metadata 'embedding_dim' must be "
        "positive, got -8$",
    ):
        BinaryAttributeEncoder.load(path)
