"""The DMHA log-mel recipe against a direct numpy computation on real speech; normalisation."""

import librosa
import numpy as np
import pytest
import torch

from balr.audio import load_audio
from balr.doublemha import features
from tests.conftest import EXAMPLES

CLIPS = EXAMPLES / "audio"


def reference_recipe_log_mel(wave: np.ndarray, sr: int = 16000) -> np.ndarray:
    """The authors' feature script written out with librosa: 16-bit scale, pre-emphasis
    (first sample times 0.03), uncentred STFT, magnitude, mel without area normalisation."""
    y = wave.astype(np.float64) * 32768
    y[1:] = y[1:] - 0.97 * y[:-1]
    y[0] *= 0.03
    spectrum = np.abs(
        librosa.stft(
            y, n_fft=512, hop_length=int(sr * 0.010), win_length=int(sr * 0.025),
            window="hamming", center=False,
        )
    )  # fmt: skip
    mel = librosa.feature.melspectrogram(
        S=spectrum, sr=sr, n_mels=80, fmin=0, fmax=sr / 2, norm=None
    )
    return np.log(np.maximum(1, mel)).T


@pytest.mark.slow
@pytest.mark.difference("DMHA-mel-filters", "DMHA-framing", "DMHA-pre-emphasis", "DMHA-stft")
def test_default_log_mel_is_the_reference_recipe():
    """On the bundled clip 00014.flac the reference recipe gives 294 frames of mean 8.14
    (balr 0.1's centred recipe gave 297 frames of mean 3.81)."""
    wave = load_audio(CLIPS / "id00906" / "00014.flac", 16000)
    ours = features.log_mel(wave).numpy()
    reference = reference_recipe_log_mel(wave)
    assert ours.shape == reference.shape == (1 + (47488 - 512) // 160, 80) == (294, 80)
    assert np.abs(ours - reference).max() < 2e-3  # float32 vs float64, values up to ~17
    assert float(reference.mean()) == pytest.approx(8.1399, abs=1e-3)
    assert float(ours.mean()) == pytest.approx(8.1399, abs=1e-3)


def test_checkpoints_without_a_recipe_keep_the_centred_features():
    from balr.doublemha.config import ModelSettings

    assert ModelSettings().feature_recipe == "reference"
    assert ModelSettings.from_dict({"kernel_size": 8}).feature_recipe == "centred"
    assert ModelSettings.from_dict({"feature_recipe": "reference"}).feature_recipe == "reference"


def numpy_log_mel(wave: np.ndarray) -> np.ndarray:
    """balr 0.1's `centred` recipe written out: scale, pre-emphasis, centred frames, |FFT|,
    area-normalised mel, log."""
    x = wave.astype(np.float64) * 32768.0
    x = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    x = np.pad(x, 256)  # centred frames: n_fft / 2 zeros on each side
    n_frames = 1 + (len(x) - 512) // 160
    frames = np.stack([x[i * 160 : i * 160 + 512] for i in range(n_frames)])
    hamming = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(400) / 400)  # periodic, 25 ms
    window = np.zeros(512)
    window[56:456] = hamming  # centred in the 512-point FFT
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1))
    mel = magnitude @ librosa.filters.mel(sr=16000, n_fft=512, n_mels=80).T
    return np.log(np.maximum(1.0, mel))


def test_centred_log_mel_matches_numpy_recipe_on_real_speech():
    wave = load_audio(CLIPS / "id00906" / "00028.flac", 16000)[: 16000 * 3]
    ours = features.log_mel(wave, recipe="centred").numpy()
    assert ours.shape == (16000 * 3 // 160 + 1, 80)  # 301 frames for 3 s
    reference = numpy_log_mel(wave)
    assert np.abs(ours - reference).max() < 1e-3  # float32 vs float64, values up to ~15
    assert reference.max() > 5.0  # real speech energy, not the log(1) floor


def test_cmn_and_cmvn():
    feats = torch.from_numpy(features.file_features(CLIPS / "id01184" / "00123.flac"))
    cmn = features.normalize(feats, "cmn")
    torch.testing.assert_close(cmn.mean(0), torch.zeros(80), atol=1e-4, rtol=0)
    torch.testing.assert_close(cmn.std(0), feats.std(0))  # variance untouched
    cmvn = features.normalize(feats, "cmvn")
    torch.testing.assert_close(cmvn.std(0, unbiased=False), torch.ones(80), atol=1e-4, rtol=0)


def test_normalization_counts_only_valid_frames():
    feats = torch.tensor([[[1.0], [3.0], [100.0]]])  # third frame is padding
    out = features.normalize(feats, "cmvn", torch.tensor([2]))
    # mean of (1, 3) = 2, std = 1 -> (-1, 1), padding -> 0
    torch.testing.assert_close(out, torch.tensor([[[-1.0], [1.0], [0.0]]]))


def test_padded_batch_features_equal_single_item_features():
    torch.manual_seed(0)
    short, long = torch.rand(5000) - 0.5, torch.rand(8000) - 0.5
    batch = torch.zeros(2, 8000)
    batch[0], batch[1, :5000] = long, short
    for recipe, n_short, n_long in (("reference", 29, 47), ("centred", 32, 51)):
        # reference: 1 + (samples - 512) // 160; centred: 1 + samples // 160
        feats, frames = features.compute_features(
            batch, "cmn", torch.tensor([8000, 5000]), recipe=recipe
        )
        assert frames.tolist() == [n_long, n_short]
        alone, _ = features.compute_features(short.unsqueeze(0), "cmn", recipe=recipe)
        torch.testing.assert_close(feats[1, :n_short], alone[0], atol=1e-4, rtol=1e-4)
        assert bool((feats[1, n_short:] == 0).all())


def test_audio_shorter_than_one_frame_is_refused(tmp_path):
    import soundfile as sf

    from balr.errors import DataError

    sf.write(tmp_path / "tiny.wav", np.zeros(400, np.float32), 16000)
    with pytest.raises(DataError, match="tiny.wav: shorter than one 512-sample"):
        features.file_features(tmp_path / "tiny.wav")


def test_unknown_normalization_is_a_config_error():
    from balr.errors import ConfigError

    with pytest.raises(ConfigError, match="normalization 'mvn'"):
        features.normalize(torch.zeros(3, 80), "mvn")


@pytest.mark.difference("DMHA-normalization")
def test_cmvn_divides_by_one_where_std_is_at_most_the_reference_floor():
    """The reference keeps a band's std only where it is above 0.01, else divides by 1."""
    frames = torch.tensor([[0.0, 0.0, 0.0], [0.008, 0.02, 2.0]])  # stds 0.004, 0.01, 1.0
    out = features.normalize(frames, "cmvn")
    expected = torch.tensor([[-0.004, -0.01, -1.0], [0.004, 0.01, 1.0]])
    torch.testing.assert_close(out, expected)
