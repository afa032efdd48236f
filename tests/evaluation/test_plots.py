"""DET and Tippett PNGs: written atomically, decodable, of a sensible size; curve helpers."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from balr.errors import DataError
from balr.evaluation import plot_det, plot_tippett
from balr.evaluation.metrics import score_sweep
from balr.evaluation.plots import MAX_PLOT_POINTS, _det_indices, _tippett_curve


def gaussian_trials(n_tar: int, n_non: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = np.concatenate((rng.normal(3, 2.5, n_tar), rng.normal(-3, 2.5, n_non)))
    labels = np.concatenate((np.ones(n_tar, int), np.zeros(n_non, int)))
    return scores, labels


def assert_png(path, tmp_path):
    """The file decodes as an image of a plausible size, is not blank, and no temp file is left."""
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert 300 <= height <= 1000 and 300 <= width <= 1200
    assert image.shape[2] in (3, 4)
    assert image[..., :3].std() > 0.05  # lines and text on a white background
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("plot", [plot_det, plot_tippett])
def test_plot_writes_png(plot, tmp_path):
    path = plot(*gaussian_trials(200, 2000), tmp_path / "sub" / "plot.png")
    assert path == tmp_path / "sub" / "plot.png"
    assert_png(path, tmp_path / "sub")


@pytest.mark.parametrize("plot", [plot_det, plot_tippett])
def test_plot_large_and_infinite_scores(plot, tmp_path):
    # 50 000 trials take the decimated path; PAV-style infinite LLRs are drawn at the edges.
    scores, labels = gaussian_trials(5000, 45000, seed=1)
    scores[0], scores[-1] = np.inf, -np.inf
    assert_png(plot(scores, labels, tmp_path / "plot.png"), tmp_path)


@pytest.mark.parametrize("plot", [plot_det, plot_tippett])
def test_plot_bad_input_writes_nothing(plot, tmp_path):
    with pytest.raises(DataError, match="no non-target"):
        plot(np.array([1.0, 2.0]), np.array([1, 1]), tmp_path / "plot.png")
    assert list(tmp_path.iterdir()) == []


def test_tippett_curve_by_hand():
    # Sorted [1, 2, 2, 3]: entry i carries (n - i) / n = 4/4, 3/4, 2/4, 1/4. Drawn as 'pre'
    # steps, the value on (1, 2] is the first tied entry's 3/4, which is P(x >= 2) = 3/4.
    x, y = _tippett_curve(np.array([3.0, 1.0, 2.0, 2.0]))
    np.testing.assert_array_equal(x, [1, 2, 2, 3])
    np.testing.assert_allclose(y, [1.0, 0.75, 0.5, 0.25])


def test_det_indices_keep_ends_and_shape():
    scores, labels = gaussian_trials(3000, 30000, seed=2)
    sweep = score_sweep(scores, labels)
    keep = _det_indices(sweep.frr, sweep.far)
    assert keep[0] == 0 and keep[-1] == sweep.frr.size - 1
    assert np.all(np.diff(keep) > 0)
    assert keep.size <= 2 * MAX_PLOT_POINTS + 2 < sweep.frr.size
    # No probit-grid cell is skipped: FRR never jumps by more than a grid step's worth where
    # the curve is visible (rates between 1% and 99%).
    frr = sweep.frr[keep]
    visible = (frr > 0.01) & (frr < 0.99)
    assert np.abs(np.diff(frr[visible])).max() < 0.01
