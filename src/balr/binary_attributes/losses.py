"""Training losses of the binary-attribute encoder, all with one call signature.

Each loss is called as `loss(inputs, labels, codes, reconstruction, z)` and returns a scalar;
`WeightedLosses` sums them with per-loss weights and reports each part.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from torch import nn

from balr.binary_attributes.config import (
    LOSS_CONFIGS,
    ArcFaceLossConfig,
    LossConfig,
    TrainerConfig,
    TripletLossConfig,
)
from balr.errors import ConfigError

TRIPLET_TYPES = ("all", "hard", "semihard", "easy")


def triplet_miner(margin: float, type_of_triplets: str) -> pml_miners.TripletMarginMiner:
    """pytorch-metric-learning's triplet miner, its type checked (ConfigError otherwise)."""
    if type_of_triplets not in TRIPLET_TYPES:
        raise ConfigError(f"triplet type '{type_of_triplets}': expected one of {TRIPLET_TYPES}")
    return pml_miners.TripletMarginMiner(margin=margin, type_of_triplets=type_of_triplets)


class BAELoss(nn.Module):
    """Base class: a named loss over one batch of the auto-encoder's outputs."""

    name = "loss"
    # True when the loss only makes sense for the training speakers (class weights).
    needs_training_classes = False

    def forward(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        codes: torch.Tensor,
        reconstruction: torch.Tensor,
        z: torch.Tensor,
    ) -> torch.Tensor:
        raise NotImplementedError


class ReconstructionMSE(BAELoss):
    """Mean squared error between the embedding and its reconstruction from the bits."""

    name = "mse"

    def forward(self, inputs, labels, codes, reconstruction, z):
        return torch.mean((reconstruction - inputs) ** 2)


class CodeTripletLoss(BAELoss):
    """Triplet margin loss (Schroff, Kalenichenko & Philbin, CVPR 2015) on the bits, over
    triplets mined in the batch.

    Distances are Euclidean between L2-normalised codes; a triplet (a, p, n) is mined by its
    margin `d_an - d_ap` against the miner's `margin`: `type_of_triplets` "all" keeps those
    <= margin, "hard" those <= 0, "semihard" those in (0, margin], "easy" those > margin; the
    loss is the mean of the non-zero `relu(d_ap - d_an + loss_margin)` over the mined
    triplets. As the reference library: a miner margin of 0.3 and pytorch-metric-learning's
    default loss margin of 0.05. These are pytorch-metric-learning's definitions
    (TripletMarginMiner + TripletMarginLoss), which `backend="pml"` calls directly. The
    default `backend="dense"` computes the same value on an (anchors, positives, batch)
    array: pml enumerates all B^3 index triples first, about 50x slower for B = 512.
    """

    name = "triplet"

    def __init__(
        self,
        margin: float = TripletLossConfig.margin,
        type_of_triplets: str = TripletLossConfig.type_of_triplets,
        loss_margin: float = TripletLossConfig.loss_margin,
        backend: str = TripletLossConfig.backend,
    ):
        super().__init__()
        self.miner = triplet_miner(margin, type_of_triplets)
        if backend not in ("dense", "pml"):
            raise ConfigError(f"triplet backend '{backend}': expected dense or pml")
        self.margin, self.loss_margin = margin, loss_margin
        self.triplets = type_of_triplets
        self.backend = backend
        self.loss = pml_losses.TripletMarginLoss(margin=loss_margin)

    def forward(self, inputs, labels, codes, reconstruction, z):
        if self.backend == "pml":
            return self.loss(codes, labels, self.miner(codes, labels))
        return self._dense(codes, labels)

    def _dense(self, codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Sum of hinges per (anchor, positive) from sorted negative distances: O(B^2 log B).

        For a threshold t, the negatives with d_an < t number k and sum to S (prefix sums
        of the sorted row), so the sum of `d_ap + loss_margin - d_an` over them is
        `k (d_ap + loss_margin) - S`. A mined triplet counts when its hinge is not zero:
        `d_an < d_ap + loss_margin`.
        """
        if self.triplets == "easy" and self.loss_margin <= self.margin:  # every hinge is 0
            return codes.sum() * 0
        unit = nn.functional.normalize(codes, p=2, dim=1)
        dist = torch.cdist(unit, unit)
        same = labels[:, None] == labels[None, :]
        is_positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        n_pos = int(is_positive.sum(dim=1).max()) if len(labels) else 0
        if n_pos == 0 or bool(same.all()):
            return codes.sum() * 0
        # each anchor's positives first (stable sort of the mask), padded to the largest count
        order = torch.sort(is_positive.to(torch.int8), dim=1, descending=True, stable=True)
        positive_ok = order.values[:, :n_pos].bool()
        d_ap = dist.gather(1, order.indices[:, :n_pos])
        negatives, _ = torch.sort(dist.masked_fill(same, math.inf), dim=1)
        finite = torch.where(torch.isinf(negatives), torch.zeros_like(negatives), negatives)
        prefix = nn.functional.pad(torch.cumsum(finite, dim=1), (1, 0))
        anchor_positive = d_ap.detach()
        top = anchor_positive + min(self.margin, self.loss_margin)

        def below(threshold: torch.Tensor, inclusive: bool = False):
            return self._hinges_below(negatives, prefix, d_ap, threshold, inclusive)

        if self.triplets == "all":  # d_an <= d_ap + margin, hinge > 0
            hinge_sum, count = below(top)
        elif self.triplets == "hard":  # d_an <= d_ap
            hinge_sum, count = below(anchor_positive, True)
        elif self.triplets == "semihard":  # d_ap < d_an <= d_ap + margin, hinge > 0
            (high, n_high), (low, n_low) = below(top), below(anchor_positive, True)
            hinge_sum, count = high - low, n_high - n_low
        else:  # easy: d_ap + margin < d_an < d_ap + loss_margin
            (high, n_high) = below(anchor_positive + self.loss_margin)
            (low, n_low) = below(anchor_positive + self.margin, True)
            hinge_sum, count = high - low, n_high - n_low
        hinge_sum = hinge_sum * positive_ok
        return hinge_sum.sum() / (count * positive_ok).sum().clamp(min=1)

    def _hinges_below(self, negatives, prefix, d_ap, threshold, inclusive: bool = False):
        """Sum of `d_ap + loss_margin - d_an` and count over negatives with d_an < (<=)
        threshold."""
        count = torch.searchsorted(negatives.detach(), threshold.contiguous(), right=inclusive)
        below = prefix.gather(1, count)
        return count * (d_ap + self.loss_margin) - below, count


class CodeArcFaceLoss(BAELoss):
    """ArcFace (Deng et al., CVPR 2019) on the bits; its class-weight matrix is a trained
    parameter. As in the reference library, triplets are mined first (`margin`,
    `type_of_triplets`: the triplet miner's) and weight each sample by how often it was
    mined (pytorch-metric-learning's indices-to-weights rule; equal weights when none is);
    `angular_margin` is ArcFace's own margin, in degrees, and `scale` its logit scale."""

    name = "arcface"
    needs_training_classes = True

    def __init__(
        self,
        num_classes: int,
        latent_dim: int,
        margin: float = ArcFaceLossConfig.margin,
        type_of_triplets: str = ArcFaceLossConfig.type_of_triplets,
        angular_margin: float = ArcFaceLossConfig.angular_margin,
        scale: float = ArcFaceLossConfig.scale,
    ):
        super().__init__()
        self.miner = triplet_miner(margin, type_of_triplets)
        self.loss = pml_losses.ArcFaceLoss(
            num_classes, latent_dim, margin=angular_margin, scale=scale
        )

    def forward(self, inputs, labels, codes, reconstruction, z):
        return self.loss(codes, labels, self.miner(codes, labels))


class SparsityLoss(BAELoss):
    """Penalise speakers whose summed Z exceeds a per-attribute target (the sparsity loss of
    Ben-Amor, Bonastre & Mdhaffar, Interspeech 2024).

    Rows come in blocks of M utterances of one speaker (NxM samplers). For block s and
    attribute j: `S_sj = sum of the M rows of Z`; the loss sums `clamp(S_sj - target_j, 0,
    1) ** 2` over the attributes and averages it over the blocks (the reference library's
    reduction), `target_j` a random integer in [0, M) drawn once. Unlike the reference code,
    the result stays in the graph, so it trains the encoder.
    """

    name = "sparsity"

    def __init__(self, latent_dim: int, samples_per_class: int, seed: int = TrainerConfig.seed):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        target = torch.randint(0, samples_per_class, (latent_dim,), generator=generator)
        self.samples_per_class = samples_per_class
        self.register_buffer("target", target.to(torch.float32))

    def forward(self, inputs, labels, codes, reconstruction, z):
        m = self.samples_per_class
        if z.shape[0] % m:
            raise ConfigError(f"batch of {z.shape[0]} rows is not made of blocks of M={m}")
        per_speaker = z.reshape(-1, m, z.shape[1]).sum(dim=1)
        return (torch.clamp(per_speaker - self.target, 0, 1) ** 2).sum(dim=1).mean()


class WeightedLosses(nn.Module):
    """A weighted sum of named losses; returns the total and each unweighted part."""

    def __init__(self, losses: Mapping[str, BAELoss], weights: Mapping[str, float]):
        super().__init__()
        self.losses = nn.ModuleDict(losses)
        self.weights = dict(weights)

    def forward(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        codes: torch.Tensor,
        reconstruction: torch.Tensor,
        z: torch.Tensor,
        training_classes: bool = True,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`training_classes=False` (validation on other speakers) skips class-weight losses."""
        parts = {
            name: loss(inputs, labels, codes, reconstruction, z)
            for name, loss in self.losses.items()
            if training_classes or not loss.needs_training_classes
        }
        total = sum(self.weights[name] * value for name, value in parts.items())
        return total, parts


def build_losses(
    specs: Mapping[str, Mapping],
    num_classes: int,
    latent_dim: int,
    samples_per_class: int,
    seed: int = TrainerConfig.seed,
) -> WeightedLosses:
    """Losses from the config `{name: {weight: .., other params}}` (names: LOSS_NAMES)."""
    if not specs:
        raise ConfigError("trainer.losses is empty: select at least one loss")
    losses, weights = {}, {}
    for name, params in specs.items():
        params = dict(params)
        weights[name] = float(params.pop("weight", LossConfig.weight))
        if name == "mse":
            losses[name] = ReconstructionMSE()
        elif name == "triplet":
            losses[name] = CodeTripletLoss(**params)
        elif name == "arcface":
            losses[name] = CodeArcFaceLoss(num_classes, latent_dim, **params)
        elif name == "sparsity":
            losses[name] = SparsityLoss(latent_dim, samples_per_class, seed=seed)
        else:
            raise ConfigError(f"unknown loss '{name}': expected one of {LOSS_NAMES}")
    return WeightedLosses(losses, weights)


LOSS_NAMES = tuple(LOSS_CONFIGS)
