"""Acoustic front-ends of the pretrained embedding models, in torch: Kaldi-compatible
filterbanks (Wespeaker models, `fbank`) and the GE2E mel spectrogram (`ge2e_mel`).

The DoubleMHA extractor's log-mel lives with that model, in `balr.doublemha.features`.
"""

from balr.features.fbank import FbankOptions, kaldi_fbank, mean_normalize, num_frames
from balr.features.ge2e_mel import GE2EMel, slaney_mel_filterbank

__all__ = [
    "FbankOptions",
    "GE2EMel",
    "kaldi_fbank",
    "mean_normalize",
    "num_frames",
    "slaney_mel_filterbank",
]
