"""Each loss on a tiny batch checked by hand; sparsity gradients reach the encoder."""

from __future__ import annotations

import math

import pytest
import torch

from balr.binary_attributes.losses import (
    CodeArcFaceLoss,
    CodeTripletLoss,
    ReconstructionMSE,
    SparsityLoss,
    WeightedLosses,
    build_losses,
)
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.errors import ConfigError

UNUSED = torch.zeros(0)


@pytest.mark.difference("BA-mse-loss")
def test_mse():
    inputs = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    reconstruction = torch.tensor([[1.0, 0.0], [3.0, 5.0]])
    # squared errors 0, 4, 0, 1 -> mean 5 / 4
    value = ReconstructionMSE()(inputs, UNUSED, UNUSED, reconstruction, UNUSED)
    assert value.item() == pytest.approx(1.25)


# Bits of four utterances, speakers 0, 0, 1, 1. After L2 normalisation: a0 = a1 = (1, 0),
# b0 = (0, 1), b1 = (1, 1)/sqrt(2). Distances: d(a, a) = 0, d(a, b0) = sqrt(2),
# d(a, b1) = d(b0, b1) = sqrt(2 - sqrt(2)) = 0.7654.
CODES = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
LABELS = torch.tensor([0, 0, 1, 1])


@pytest.mark.parametrize("backend", ["dense", "pml"])
def test_triplet_all_mines_margin_violations_only(backend):
    # Triplets (anchor, positive, negative) with d_an - d_ap <= 0.3 ("all" violators):
    # anchor b1, positive b0, negatives a0/a1: 0.7654 - 0.7654 = 0 -> hinge 0 - 0 + loss
    # margin each; a-anchors (1.414 or 0.765 apart from negatives, 0 from positive) and b0
    # (0.649) are not mined. The reference's loss margin is 0.05, its miner's 0.3.
    loss = CodeTripletLoss(margin=0.3, type_of_triplets="all", loss_margin=0.3, backend=backend)
    assert loss(UNUSED, LABELS, CODES, UNUSED, UNUSED).item() == pytest.approx(0.3, abs=1e-5)
    reference = CodeTripletLoss(backend=backend)  # margin 0.3, "all", loss margin 0.05
    assert reference(UNUSED, LABELS, CODES, UNUSED, UNUSED).item() == pytest.approx(0.05, abs=1e-5)


@pytest.mark.parametrize("backend", ["dense", "pml"])
def test_triplet_easy_triplets_have_zero_loss(backend):
    # "easy" = d_an - d_ap > margin: their hinge max(0, d_ap - d_an + 0.3) is 0.
    loss = CodeTripletLoss(margin=0.3, type_of_triplets="easy", backend=backend)
    assert loss(UNUSED, LABELS, CODES, UNUSED, UNUSED).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.difference("BA-triplet-type")
def test_triplet_type_is_checked():
    with pytest.raises(ConfigError, match="triplet type 'random'"):
        CodeTripletLoss(type_of_triplets="random")
    with pytest.raises(ConfigError, match="triplet backend 'numpy'"):
        CodeTripletLoss(backend="numpy")


@pytest.mark.difference("BA-arcface-margin")
def test_arcface_on_orthogonal_class_weights():
    loss = CodeArcFaceLoss(num_classes=2, latent_dim=2, angular_margin=math.degrees(0.5), scale=1.0)
    with torch.no_grad():
        loss.loss.W.copy_(torch.eye(2))  # class 0 -> (1, 0), class 1 -> (0, 1)
    codes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # Target angle 0 -> logit s*cos(0 + 0.5); other class at 90 degrees -> logit 0.
    # Cross-entropy: log(1 + exp(-cos 0.5)) for both rows.
    expected = math.log(1 + math.exp(-math.cos(0.5)))
    value = loss(UNUSED, torch.tensor([0, 1]), codes, UNUSED, UNUSED)
    assert value.item() == pytest.approx(expected, rel=1e-4)
    assert loss.loss.W.requires_grad


@pytest.mark.difference("BA-sparsity-weight")
def test_sparsity_by_hand():
    loss = SparsityLoss(latent_dim=3, samples_per_class=2)
    loss.target.copy_(torch.tensor([0.0, 1.0, 0.0]))
    z = torch.tensor([[0.5, -0.2, 0.9], [0.3, 0.1, 0.9], [-0.5, 0.4, 0.1], [-0.5, 0.4, 0.2]])
    # speaker sums (0.8, -0.1, 1.8), (-1, 0.8, 0.3); minus target -> (0.8, -1.1, 1.8),
    # (-1, -0.2, 0.3); clamp to [0, 1] and square -> 0.64, 0, 1 | 0, 0, 0.09; summed over
    # the attributes (1.64, 0.09) and averaged over the 2 speaker blocks, as the reference.
    value = loss(UNUSED, UNUSED, UNUSED, UNUSED, z)
    assert value.item() == pytest.approx(1.73 / 2)


def test_sparsity_targets_are_seeded_integers_below_m():
    a, b = SparsityLoss(512, 16, seed=3), SparsityLoss(512, 16, seed=3)
    assert torch.equal(a.target, b.target)
    assert a.target.min() >= 0 and a.target.max() <= 15
    assert torch.equal(a.target, a.target.round())
    assert len(torch.unique(a.target)) > 8  # drawn per attribute, not one value


def test_sparsity_needs_blocks_of_m():
    with pytest.raises(ConfigError, match="blocks of M=4"):
        SparsityLoss(3, 4)(UNUSED, UNUSED, UNUSED, UNUSED, torch.zeros(6, 3))


def test_sparsity_gradient_reaches_the_first_layer():
    torch.manual_seed(0)
    model = BinaryAttributeEncoder(32, 64)
    x = torch.randn(16, 32)
    out = model(x)
    loss = SparsityLoss(64, samples_per_class=4, seed=0)
    value = loss(x, UNUSED, out.codes, out.reconstruction, out.z)
    assert value.item() > 0
    value.backward()
    assert model.encoder[0].weight.grad is not None
    assert model.encoder[0].weight.grad.abs().sum().item() > 0


def test_weighted_sum_and_validation_skip_class_losses():
    losses = build_losses(
        {"mse": {"weight": 2.0}, "arcface": {"weight": 0.5, "margin": 0.5, "scale": 1.0}},
        num_classes=2,
        latent_dim=2,
        samples_per_class=1,
    )
    assert isinstance(losses, WeightedLosses)
    inputs = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    reconstruction = torch.tensor([[1.0, 0.0], [3.0, 5.0]])
    codes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    total, parts = losses(inputs, labels, codes, reconstruction, codes)
    assert set(parts) == {"mse", "arcface"}
    assert total.item() == pytest.approx(2.0 * 1.25 + 0.5 * parts["arcface"].item())
    total, parts = losses(inputs, labels, codes, reconstruction, codes, training_classes=False)
    assert set(parts) == {"mse"} and total.item() == pytest.approx(2.5)


def test_unknown_or_empty_loss_selection():
    with pytest.raises(ConfigError, match="unknown loss 'l1'"):
        build_losses({"l1": {}}, 2, 2, 1)
    with pytest.raises(ConfigError, match="empty"):
        build_losses({}, 2, 2, 1)


@pytest.mark.parametrize("loss_margin", [0.05, 0.3, 0.5])
@pytest.mark.parametrize("triplets", ["all", "hard", "semihard", "easy"])
@pytest.mark.parametrize("bits", [True, False])
@pytest.mark.difference("BA-triplet-margin")
def test_dense_triplet_equals_pytorch_metric_learning(triplets, bits, loss_margin):
    # pml's TripletMarginMiner + TripletMarginLoss are the reference: same value and gradient.
    g = torch.Generator().manual_seed(11)
    labels = torch.arange(8).repeat_interleave(4)
    raw = torch.randn(32, 12, generator=g)
    codes = (raw > 0.3).float() if bits else raw
    pml_codes, dense_codes = codes.clone().requires_grad_(), codes.clone().requires_grad_()
    pml = CodeTripletLoss(0.3, triplets, loss_margin, backend="pml")
    reference = pml(None, labels, pml_codes, None, None)
    dense = CodeTripletLoss(0.3, triplets, loss_margin, backend="dense")(
        None, labels, dense_codes, None, None
    )
    assert dense.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-7)
    reference.backward()
    dense.backward()
    assert torch.allclose(dense_codes.grad, pml_codes.grad, atol=1e-7)


def test_dense_triplet_without_positives_or_negatives_is_zero():
    codes = torch.randn(3, 4, requires_grad=True)
    single = CodeTripletLoss()(None, torch.tensor([0, 1, 2]), codes, None, None)
    one_class = CodeTripletLoss()(None, torch.tensor([5, 5, 5]), codes, None, None)
    assert single.item() == 0 and one_class.item() == 0
    (single + one_class).backward()  # still part of the graph
