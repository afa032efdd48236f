"""`binarize_dataset`, the library call behind `balr binarize`, on a dataset made in the test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from balr.binary_attributes.binarize import BinarizeReport, binarize_dataset
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.data import AudioDataset, DatasetItem
from balr.errors import ModelError

from .conftest import clustered_embeddings


@pytest.fixture
def dataset(tmp_path) -> AudioDataset:
    """Six items, five with an embedding in a store (the last has none)."""
    x, _ = clustered_embeddings(2, 3, dim=16, seed=4)
    items = [DatasetItem(id=f"u{i}") for i in range(6)]
    ds = AudioDataset(items, tmp_path, vector_format="store", source=tmp_path / "items.csv")
    ds.save_vectors("emb", range(5), x[:5])
    return ds


def test_binarize_dataset_writes_counts_once_and_reports(dataset):
    torch.manual_seed(0)
    encoder = BinaryAttributeEncoder(16, 32).eval()
    report = binarize_dataset(dataset, encoder)
    assert report == BinarizeReport(binarized=5, already_done=0, without_embedding=1)
    indices, embeddings = dataset.stack_vectors("emb")
    _, counts = dataset.stack_vectors("ba")
    np.testing.assert_array_equal(counts, encoder.binarize(embeddings))
    assert counts.shape == (5, 32, 2) and (counts.sum(axis=-1) == 1).all()
    assert binarize_dataset(dataset, encoder) == BinarizeReport(0, 5, 1)
    assert binarize_dataset(dataset, encoder, force=True) == BinarizeReport(5, 0, 1)


def test_dimension_mismatch_names_dataset_and_encoder(dataset):
    with pytest.raises(ModelError, match=r"items\.csv: 16-dim embeddings, but the encoder e\.pt"):
        binarize_dataset(dataset, BinaryAttributeEncoder(8, 32), encoder_source="e.pt")


def test_nan_embedding_is_refused_per_item_not_binarized(tmp_path):
    """A NaN embedding used to become an all-zero attribute vector, scored as any other."""
    x, _ = clustered_embeddings(2, 2, dim=16, seed=5)
    x[1, 3] = np.nan
    items = [DatasetItem(id=f"u{i}") for i in range(4)]
    ds = AudioDataset(items, tmp_path, vector_format="npy")
    ds.save_vectors("emb", range(4), x)
    torch.manual_seed(0)
    report = binarize_dataset(ds, BinaryAttributeEncoder(16, 32).eval())
    assert (report.binarized, report.without_embedding) == (3, 0)
    assert [(b.item_id, b.problem) for b in report.bad] == [("u1", "1 non-finite values (NaN/inf)")]
    assert "1 bad vector (" in report.summary() and "u1_emb.npy: 1 non-finite" in report.summary()
    assert not ds.has_vector(1, "ba") and ds.has_vector(2, "ba")


def test_saved_ba_vector_that_is_not_counts_is_binarized_again(tmp_path, caplog):
    x, _ = clustered_embeddings(2, 2, dim=16, seed=6)
    ds = AudioDataset([DatasetItem(id=f"u{i}") for i in range(4)], tmp_path, vector_format="txt")
    ds.save_vectors("emb", range(4), x)
    torch.manual_seed(0)
    encoder = BinaryAttributeEncoder(16, 32).eval()
    binarize_dataset(ds, encoder)
    np.savetxt(tmp_path / "u2_ba.txt", np.full((32, 2), 0.5))
    assert binarize_dataset(ds, encoder) == BinarizeReport(1, 3, 0)
    assert "u2_ba.txt: BA vector holds 0.5 at attribute 0" in caplog.text
    np.testing.assert_array_equal(ds.get_vector(2, "ba"), encoder.binarize(x[2:3])[0])
