"""The GE2E mel front-end: librosa's Slaney filterbank, centred frames, padding-independent."""

import librosa
import numpy as np
import torch

from balr.audio import load_audio
from balr.features.ge2e_mel import GE2EMel, num_frames, slaney_mel_filterbank
from tests.conftest import EXAMPLES


def test_filterbank_matches_librosa_slaney_default():
    ours = slaney_mel_filterbank().numpy()
    theirs = librosa.filters.mel(sr=16000, n_fft=400, n_mels=40).T
    assert ours.shape == (201, 40)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


def test_power_spectrogram_of_real_speech_matches_numpy():
    wave = load_audio(EXAMPLES / "audio" / "id03184" / "00022.flac", 16000)
    mels = GE2EMel()(torch.from_numpy(wave)[None])[0].numpy()
    assert mels.shape == (num_frames(len(wave)), 40) == (52608 // 160 + 1, 40)
    x = np.pad(wave.astype(np.float64), 200)  # centred frames: n_fft / 2 zeros on each side
    frames = np.stack([x[i * 160 : i * 160 + 400] for i in range(mels.shape[0])])
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)  # periodic
    power = np.abs(np.fft.rfft(frames * hann, axis=1)) ** 2
    reference = power @ librosa.filters.mel(sr=16000, n_fft=400, n_mels=40).T
    np.testing.assert_allclose(mels, reference, rtol=1e-3, atol=1e-6 * reference.max())
