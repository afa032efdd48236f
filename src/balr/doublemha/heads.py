"""The classifier head trained on speaker labels: additive-margin softmax, optional annealing.

AM-softmax (Wang et al., "Additive Margin Softmax for Face Verification", IEEE Signal
Processing Letters 2018), as used for the DoubleMHA extractor by India et al. (ICASSP 2021):
logits `s * (cos - m)` for the target class and `s * cos` for the others, where `cos` is
the cosine between the input and each class's weight vector.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ANNEALING_BASE = 1000.0
ANNEALING_GAMMA = 1e-4
ANNEALING_POWER = 2.0


def annealed_factor(step: int) -> float:
    """alpha = max(0, 1000 / (1 + 1e-4 step)^2): weight of the margin-free cosine early on."""
    return max(0.0, ANNEALING_BASE / (1.0 + ANNEALING_GAMMA * step) ** ANNEALING_POWER)


class AMSoftmax(nn.Module):
    """Additive-margin softmax logits `s * (cos - m)` on the target class, `s * cos` elsewhere.

    With annealing the target cosine is `(cos - m + alpha cos) / (1 + alpha)`, so the margin
    is phased in as `alpha` (`annealed_factor`) decays with the training step.
    """

    def __init__(self, input_dim: int, num_classes: int, s: float, m: float, annealing: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, input_dim))
        nn.init.xavier_normal_(self.weight)
        self.s, self.m, self.annealing = s, m, annealing

    def cosine(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t()

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        cos = self.cosine(x)
        if labels is None:
            return self.s * cos
        target = cos - self.m
        if self.annealing:
            alpha = annealed_factor(step)
            target = (target + alpha * cos) / (1.0 + alpha)
        is_target = F.one_hot(labels, cos.shape[1]).bool()
        return self.s * torch.where(is_target, target, cos)
