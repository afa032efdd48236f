"""Vectors are checked when read: finite, counts or bits, one shape per dataset; a bad
vector is named by its file (or store and id), or skipped and listed in batch mode."""

from __future__ import annotations

import numpy as np
import pytest

from balr.data import AudioDataset, DatasetItem, VectorStoreWriter, write_vector
from balr.data.validation import BadVector, bad_rows, vector_problem
from balr.errors import DataError

RNG = np.random.default_rng(3)


def _counts(n_attributes: int = 512) -> np.ndarray:
    bits = RNG.integers(0, 2, n_attributes)
    return np.stack([bits, 1 - bits], axis=1)


def _dataset(tmp_path, n: int = 3) -> AudioDataset:
    return AudioDataset([DatasetItem(id=f"u{i}") for i in range(n)], tmp_path)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ([[0.3, 0.7], [1, 0]], "holds 0.3 at attribute 0 (counts must be non-negative integers)"),
        ([[1, 0], [5, -4]], "holds -4 at attribute 1 (counts must be non-negative integers)"),
        ([[1, 0], [2, 1]], "counts 3 recordings at attribute 1 but 1 at attribute 0"),
        ([[0, 0], [0, 0]], "counts no recording"),
        ([[1, 0], [np.nan, 1]], "1 non-finite values (NaN/inf)"),
    ],
)
def test_ba_vector_that_is_not_counts_is_named(tmp_path, cells, message):
    write_vector(tmp_path / "u0_ba.txt", np.array(cells, dtype=float))
    ds = _dataset(tmp_path, 1)
    with pytest.raises(DataError, match="u0_ba.txt: ") as error:
        ds.stack_vectors("ba")
    assert message in str(error.value)
    with pytest.raises(DataError, match="u0_ba.txt: "):
        ds.get_vector(0, "ba")


def test_bits_must_be_zero_or_one(tmp_path):
    write_vector(tmp_path / "u0_ba.txt", np.array([1.0, 0.0, 2.0]))
    with pytest.raises(DataError, match=r"u0_ba.txt: BA vector holds 2 at attribute 2 \(bits"):
        _dataset(tmp_path, 1).stack_vectors("ba")


def test_counts_of_several_recordings_are_accepted(tmp_path):
    write_vector(tmp_path / "u0_ba.txt", np.array([[2, 1], [0, 3], [3, 0]]))
    _, stacked = _dataset(tmp_path, 1).stack_vectors("ba")
    assert stacked.shape == (1, 3, 2)


def test_nan_embedding_is_named_and_skipped_in_batch_mode(tmp_path):
    emb = RNG.normal(size=(3, 8)).astype(np.float32)
    emb[1, [0, 3, 5]] = [np.nan, np.inf, -np.inf]
    for i, vector in enumerate(emb):
        write_vector(tmp_path / f"u{i}_emb.npy", vector)
    ds = _dataset(tmp_path)
    with pytest.raises(DataError, match=r"u1_emb.npy: 3 non-finite values \(NaN/inf\)"):
        ds.stack_vectors("emb")
    bad: list[BadVector] = []
    indices, stacked = ds.stack_vectors("emb", bad=bad)
    assert indices.tolist() == [0, 2] and np.isfinite(stacked).all()
    assert [(b.item_id, b.problem) for b in bad] == [("u1", "3 non-finite values (NaN/inf)")]


def test_bad_store_row_is_named_by_store_and_id(tmp_path):
    with VectorStoreWriter(tmp_path / "binary_attributes") as writer:
        writer.put("u0", _counts(4).astype(np.float32))
        writer.put("u1", np.array([[1, 0], [0.5, 0.5], [1, 0], [0, 1]]))
        writer.put("u2", _counts(4))
    ds = _dataset(tmp_path)
    with pytest.raises(DataError, match=r"binary_attributes.npy \(id 'u1'\): BA vector holds 0.5"):
        ds.stack_vectors("ba")
    bad: list[BadVector] = []
    assert ds.stack_vectors("ba", bad=bad)[0].tolist() == [0, 2]
    assert [b.item_id for b in bad] == ["u1"]


def test_wrong_shape_names_the_odd_file_not_the_good_one(tmp_path):
    write_vector(tmp_path / "u0_ba.txt", _counts(300))  # the odd one comes first
    for i in (1, 2):
        write_vector(tmp_path / f"u{i}_ba.txt", _counts(512))
    ds = _dataset(tmp_path)
    odd = r"u0_ba.txt: vector shape \(300, 2\) differs from \(512, 2\)"
    with pytest.raises(DataError, match=odd):
        ds.stack_vectors("ba")
    bad: list[BadVector] = []
    indices, stacked = ds.stack_vectors("ba", bad=bad)
    assert indices.tolist() == [1, 2] and stacked.shape == (2, 512, 2)
    assert [b.item_id for b in bad] == ["u0"]


def test_stacked_rows_check_agrees_with_the_per_vector_check():
    one = np.stack([_counts(6) for _ in range(8)]).astype(np.float32)
    rows = one.copy()
    rows[1] *= 2  # two recordings, both alike: valid
    rows[2, 0] = [2, 1]  # 3 recordings at attribute 0, 1 elsewhere
    rows[3, 4, 1] = np.inf
    rows[4, 2] = [-1, 2]
    rows[5, 5] = [0.5, 0.5]
    rows[6] = 0  # no recording
    expected = [vector_problem(row, "ba") is not None for row in rows]
    assert expected == [False, False, True, True, True, True, True, False]
    assert bad_rows(rows, "ba").tolist() == expected
    bits = one[..., 0].copy()
    bits[3, 1] = 2
    bits[5, 0] = np.nan
    assert np.flatnonzero(bad_rows(bits, "ba")).tolist() == [3, 5]
    assert np.flatnonzero(bad_rows(bits, "emb")).tolist() == [5]
