"""DoubleMHA speaker-embedding extractor: VGG front-ends, attention poolings, AM-softmax
classifier, its training, checkpoints and the attention view."""

from balr.extractor.checkpoint import load_checkpoint, load_extractor, save_checkpoint
from balr.extractor.inference import embed_file, file_alignment
from balr.extractor.model import AMSoftmax, ModelSettings, SpeakerClassifier, annealed_factor

__all__ = [
    "AMSoftmax",
    "ModelSettings",
    "SpeakerClassifier",
    "annealed_factor",
    "embed_file",
    "file_alignment",
    "load_checkpoint",
    "load_extractor",
    "save_checkpoint",
]
