"""Training windows start where the reference's do: `randint(0, max(0, T - W - 1))`
(`scripts/data.py` `__sampleSpectogramWindow`), i.e. in [0, T - W - 1] (W = 350 at 3.5 s)."""

import random

import numpy as np
import pytest

from balr.doublemha import data


@pytest.mark.difference("DMHA-window-start")
def test_window_starts_cover_the_reference_range_exactly():
    frames, length = 20, 50
    feats = np.arange(length, dtype=np.float32)[:, None]
    rng = random.Random(0)
    starts = {int(data.random_window(feats, frames, rng)[0, 0]) for _ in range(3000)}
    assert starts == set(range(length - frames))  # 0 .. T - W - 1 = 29, never 30
    exact = np.arange(frames, dtype=np.float32)[:, None]
    assert data.random_window(exact, frames, rng)[0, 0] == 0  # T = W: start 0, as randint(0, 0)
