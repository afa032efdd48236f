"""Acoustic front-ends: Kaldi-compatible filterbanks (Wespeaker models)."""

from balr.features.fbank import FbankOptions, kaldi_fbank, mean_normalize, num_frames

__all__ = ["FbankOptions", "kaldi_fbank", "mean_normalize", "num_frames"]
