"""`EmbeddingCentring`: the population's mean removed and rows length-normalised, by value;
saved and loaded without code; damaged files refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from balr.embedding_centring import EmbeddingCentring
from balr.errors import DataError, ModelError
from balr.estimator import NotFittedError


def test_a_shared_channel_direction_is_removed():
    """Two orthogonal speakers plus one shared channel direction c (|c| = 2): their cosine
    is (a + c).(b + c) / (|a + c| |b + c|) = 4 / 5 before, 0 once the mean of a population
    of other speakers through the same channel (= c) is removed."""
    channel = np.array([0.0, 0.0, 2.0])
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    population = np.array([[1.0, 1.0, 2.0], [-1.0, -1.0, 2.0]])  # mean = channel
    x = np.stack([a + channel, b + channel])
    before = x[0] @ x[1] / (np.linalg.norm(x[0]) * np.linalg.norm(x[1]))
    assert before == pytest.approx(4 / 5)
    centring = EmbeddingCentring().fit(population)
    np.testing.assert_allclose(centring.mean_, channel)
    assert centring.n_recordings_ == 2
    out = centring.transform(x)
    np.testing.assert_allclose(out, [a, b])
    assert out[0] @ out[1] == pytest.approx(0.0)


def test_the_population_mean_moves_to_the_target():
    """With target t (a calibration's mean), the same two speakers become a + t and b + t:
    with t = (0, 0, 1), their cosine is 1 / 2 (the scale the calibration saw), not 0."""
    population = np.array([[1.0, 1.0, 2.0], [-1.0, -1.0, 2.0]])  # mean (0, 0, 2)
    target = np.array([0.0, 0.0, 1.0])
    x = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 2.0]])
    fitted = EmbeddingCentring().fit(population, target)
    out = fitted.transform(x)
    np.testing.assert_allclose(
        out, [[1 / np.sqrt(2), 0, 1 / np.sqrt(2)], [0, 1 / np.sqrt(2), 1 / np.sqrt(2)]]
    )
    assert out[0] @ out[1] == pytest.approx(0.5)
    with pytest.raises(DataError, match="target of shape"):
        EmbeddingCentring().fit(population, np.ones(2))


def test_a_row_equal_to_the_mean_stays_zero_and_dimensions_must_match():
    centring = EmbeddingCentring().fit(np.array([[1.0, 3.0], [3.0, 1.0]]))
    np.testing.assert_array_equal(centring.transform(np.array([[2.0, 2.0]])), [[0.0, 0.0]])
    with pytest.raises(DataError, match="3-dim embeddings, fitted on 2-dim ones"):
        centring.transform(np.ones((1, 3)))
    with pytest.raises(DataError, match="not all finite"):
        EmbeddingCentring().fit(np.array([[1.0, np.nan]]))
    with pytest.raises(NotFittedError):
        EmbeddingCentring().transform(np.ones((1, 2)))


def test_saved_and_loaded_by_value(tmp_path):
    rng = np.random.default_rng(0)
    fitted = EmbeddingCentring().fit(rng.normal(size=(7, 5)))
    loaded = EmbeddingCentring.load(fitted.save(tmp_path / "centring.safetensors"))
    np.testing.assert_array_equal(loaded.mean_, fitted.mean_)
    np.testing.assert_array_equal(loaded.target_, np.zeros(5))
    assert loaded.n_recordings_ == 7
    moved = EmbeddingCentring().fit(rng.normal(size=(7, 5)), np.arange(5.0))
    again = EmbeddingCentring.load(moved.save(tmp_path / "moved.safetensors"))
    np.testing.assert_array_equal(again.target_, np.arange(5.0))
    x = rng.normal(size=(3, 5))
    np.testing.assert_array_equal(loaded.transform(x), fitted.transform(x))


def test_damaged_files_are_one_line_errors(tmp_path):
    path = tmp_path / "bad.safetensors"
    save_file({"mean": np.array([np.inf, 1.0])}, str(path),
              metadata={"format": "balr-embedding-centring", "n_recordings": "3"})  # fmt: skip
    with pytest.raises(ModelError, match="field 'mean' must be a finite vector"):
        EmbeddingCentring.load(path)
    save_file({"mean": np.ones(2)}, str(path), metadata={"format": "other"})
    with pytest.raises(ModelError, match="field 'format' is not balr-embedding-centring"):
        EmbeddingCentring.load(path)
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="not a readable embedding centring"):
        EmbeddingCentring.load(path)
