"""`NumpyGE2E` (GE2E in numpy, `balr compare`) against the torch GE2E on short signals: the
same unit vectors whatever the batch, silence and quiet input included; the bundled clips
are compared in tests/test_compare_numpy.py."""

from __future__ import annotations

import numpy as np
import torch

from balr.embeddings.ge2e_numpy import GE2EConfig, NumpyGE2E, partial_counts


def _torch_embeddings(model, waves: list[np.ndarray]) -> np.ndarray:
    lengths = torch.tensor([len(w) for w in waves])
    padded = torch.zeros(len(waves), int(lengths.max()))
    for row, wave in enumerate(waves):
        padded[row, : len(wave)] = torch.from_numpy(wave)
    return model.embed(padded, lengths).numpy()


def test_numpy_ge2e_equals_the_torch_model(ge2e):
    rng = np.random.default_rng(0)
    t = np.arange(40000) / 16000
    voiced = (0.3 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(
        np.float32
    )
    waves = [
        voiced,  # 2.5 s: 3 partial windows
        (0.01 * rng.normal(size=9000)).astype(np.float32),  # quiet: raised to -30 dBFS
        np.zeros(6000, np.float32),  # silence: a zero vector stays a zero vector
    ]
    model = NumpyGE2E.load(GE2EConfig())
    ours, theirs = model.embed(waves), _torch_embeddings(ge2e, waves)
    assert ours.shape == (3, 256) and ours.dtype == np.float32
    for row in range(2):
        assert float(ours[row] @ theirs[row]) >= 0.99999
        assert abs(np.linalg.norm(ours[row]) - 1) < 1e-5
    np.testing.assert_allclose(ours[2], theirs[2], atol=1e-6)
    np.testing.assert_allclose(model.embed(waves[:1])[0], ours[0], atol=1e-6)  # batch-free


def test_partial_windows_follow_resemblyzer():
    # 1.3 partials per second: a window of 160 frames (1.6 s) every 12 frames; 1 + samples //
    # 160 frames, ceil((frames - 160 + 13) / 12) windows (e.g. 3 s: 301 frames, 13 windows)
    lengths = np.array([1, 25600, 25600 + 1920, 48000])
    np.testing.assert_array_equal(partial_counts(lengths, 12, 0.75), [1, 2, 3, 13])
