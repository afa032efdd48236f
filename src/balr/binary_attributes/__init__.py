"""Binary-attribute encoder (BAE): auto-encoder, losses, NxM samplers and trainer."""

from balr.binary_attributes.losses import (
    BAELoss,
    CodeArcFaceLoss,
    CodeTripletLoss,
    ReconstructionMSE,
    SparsityLoss,
    WeightedLosses,
    build_losses,
)
from balr.binary_attributes.model import BinaryAttributeEncoder, binarize_ste
from balr.binary_attributes.samplers import (
    ExhaustiveNxMSampler,
    NxMSampler,
    RandomNxMSampler,
    sampler_class,
)
from balr.binary_attributes.trainer import BAETrainer

__all__ = [
    "BAELoss",
    "BAETrainer",
    "BinaryAttributeEncoder",
    "CodeArcFaceLoss",
    "CodeTripletLoss",
    "ExhaustiveNxMSampler",
    "NxMSampler",
    "RandomNxMSampler",
    "ReconstructionMSE",
    "SparsityLoss",
    "WeightedLosses",
    "binarize_ste",
    "build_losses",
    "sampler_class",
]
