"""Binary-attribute encoder (BAE): auto-encoder, losses, NxM samplers and trainer.

The names below are imported from their modules on first use (PEP 562), so that using the
encoder (`balr compare`, `balr binarize`) does not import the training losses and their
pytorch-metric-learning.
"""

from balr.lazy import lazy_names

#: public name -> the module of this package that defines it
_MODULE_OF = {
    "BAELoss": "losses",
    "CodeArcFaceLoss": "losses",
    "CodeTripletLoss": "losses",
    "ReconstructionMSE": "losses",
    "SparsityLoss": "losses",
    "WeightedLosses": "losses",
    "build_losses": "losses",
    "BinaryAttributeEncoder": "model",
    "binarize_ste": "model",
    "ExhaustiveNxMSampler": "samplers",
    "NxMSampler": "samplers",
    "RandomNxMSampler": "samplers",
    "sampler_class": "samplers",
    "BAETrainer": "trainer",
}

__all__ = sorted(_MODULE_OF)
__getattr__, __dir__ = lazy_names(__name__, _MODULE_OF, globals())
