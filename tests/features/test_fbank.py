"""Kaldi fbank: equal to kaldi-native-fbank (the reference) on real speech, batch-consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from balr.audio import load_audio
from balr.features import FbankOptions, kaldi_fbank, mean_normalize, num_frames
from tests.conftest import EXAMPLES

knf = pytest.importorskip("kaldi_native_fbank")


def reference_fbank(wave: np.ndarray) -> np.ndarray:
    """kaldi-native-fbank with Wespeaker's settings (80 bins, 25/10 ms, Hamming, dither 0)."""
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "hamming"
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = 80
    opts.use_energy = False
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(16000, wave.tolist())
    fbank.input_finished()
    return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])


def speech_clip() -> np.ndarray:
    """A bundled 6 s VoxCeleb2 clip, 16-bit scaled."""
    return load_audio(EXAMPLES / "audio" / "id00906" / "00028.flac", 16000, int16_scale=True)


def test_matches_kaldi_native_fbank_on_real_speech():
    wave = speech_clip()
    ours = kaldi_fbank(torch.from_numpy(wave)).numpy()
    ref = reference_fbank(wave)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-3


def test_matches_kaldi_native_fbank_on_noise_and_odd_length():
    rng = np.random.default_rng(0)
    wave = (rng.standard_normal(16000 + 123) * 3000).astype(np.float32)
    ours = kaldi_fbank(torch.from_numpy(wave)).numpy()
    assert np.abs(ours - reference_fbank(wave)).max() < 1e-3


def test_frame_count_follows_snip_edges():
    # 1 s at 16 kHz: 1 + (16000 - 400) // 160 = 1 + 97 = 98 frames; 399 samples: none
    assert num_frames(16000) == 98
    assert num_frames(399) == 0
    assert num_frames(torch.tensor([400, 560, 559])).tolist() == [1, 2, 1]
    assert kaldi_fbank(torch.zeros(16000) + 1.0).shape == (98, 80)


def test_padded_batch_equals_single_items():
    wave = torch.from_numpy(speech_clip()[: 3 * 16000])
    short = wave[:20000]
    batch = torch.zeros(2, len(wave))
    batch[0], batch[1, : len(short)] = wave, short
    feats = kaldi_fbank(batch)
    n_short = num_frames(len(short))
    assert torch.allclose(feats[0], kaldi_fbank(wave), atol=1e-4)
    assert torch.allclose(feats[1, :n_short], kaldi_fbank(short), atol=1e-4)


def test_mean_normalize_uses_only_valid_frames():
    feats = torch.arange(12, dtype=torch.float32).reshape(1, 6, 2).repeat(2, 1, 1)
    out = mean_normalize(feats, torch.tensor([6, 2]))
    # item 0: column 0 holds 0,2,...,10 (mean 5) -> -5..5; item 1 keeps rows 0-1 (mean 1 / 2)
    assert torch.allclose(out[0, :, 0], torch.tensor([-5.0, -3, -1, 1, 3, 5]))
    assert torch.allclose(out[1, :2], torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    assert torch.all(out[1, 2:] == 0)
    scaled = mean_normalize(feats[:1], variance=True)
    assert torch.allclose(scaled.std(dim=1, unbiased=False), torch.ones(1, 2), atol=1e-5)


def test_options_derive_kaldi_sizes():
    opts = FbankOptions()
    # 25 ms at 16 kHz = 400 samples, padded FFT 512; 10 ms = 160 samples
    assert (opts.frame_length, opts.frame_shift, opts.fft_size) == (400, 160, 512)
