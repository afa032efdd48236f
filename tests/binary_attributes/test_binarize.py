"""`binarize_dataset`, the library call behind `balr binarize`, on a dataset made in the test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from balr.binary_attributes.binarize import BinarizeReport, binarize_dataset
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.data import AudioDataset, DatasetItem
from balr.data.convert import pack_vectors
from balr.errors import DataError, ModelError

from .conftest import clustered_embeddings, write_embedding_csv


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


def _encoders() -> tuple[BinaryAttributeEncoder, BinaryAttributeEncoder]:
    torch.manual_seed(0)
    first = BinaryAttributeEncoder(16, 32).eval()
    torch.manual_seed(1)
    return first, BinaryAttributeEncoder(16, 32).eval()


def test_sidecars_made_again_after_a_pack_are_read_not_the_older_store(tmp_path, caplog):
    """Issue 19: `vectors pack --kind ba`, then `binarize --force` with another encoder: the
    store held the old vectors and was read first, so the scores never changed."""
    x, labels = clustered_embeddings(2, 3, dim=16, seed=7)
    data = write_embedding_csv(tmp_path, x, labels)
    first, second = _encoders()
    binarize_dataset(AudioDataset.from_path(data), first)
    assert pack_vectors(data, "ba")[0] == 6
    assert binarize_dataset(AudioDataset.from_path(data), second, force=True).binarized == 6
    _, counts = AudioDataset.from_path(data).stack_vectors("ba")
    np.testing.assert_array_equal(counts, second.binarize(x))
    assert not np.array_equal(counts, first.binarize(x))
    assert "6 _ba vectors of" in caplog.text
    assert "binary_attributes.npy are older than copies made since" in caplog.text
    pack_vectors(data, "ba")  # packed again: the store is the newest copy, read silently
    caplog.clear()
    _, repacked = AudioDataset.from_path(data).stack_vectors("ba")
    np.testing.assert_array_equal(repacked, second.binarize(x))
    assert "older than copies" not in caplog.text


def test_force_over_a_now_invalid_embedding_removes_its_old_ba_vector(tmp_path):
    """Issue 19: `binarize --force` over a NaN embedding skipped it but left its old `_ba`
    file, which `score test` then scored."""
    x, labels = clustered_embeddings(2, 3, dim=16, seed=8)
    data = write_embedding_csv(tmp_path, x, labels)
    first, _ = _encoders()
    binarize_dataset(AudioDataset.from_path(data), first)
    assert (tmp_path / "spk0_utt1_ba.txt").is_file()
    np.savetxt(tmp_path / "spk0_utt1_emb.txt", np.full(16, np.nan))
    ds = AudioDataset.from_path(data)
    report = binarize_dataset(ds, first, force=True)
    assert (report.binarized, [b.item_id for b in report.bad]) == (5, ["spk0_utt1"])
    assert not (tmp_path / "spk0_utt1_ba.txt").exists()
    reader = AudioDataset.from_path(data)
    indices, _ = reader.stack_vectors("ba")
    assert [reader.items[i].id for i in indices] == [i for i in reader.ids if i != "spk0_utt1"]


def test_force_over_a_now_invalid_embedding_hides_its_row_in_a_store(dataset):
    first, _ = _encoders()
    binarize_dataset(dataset, first)
    dataset.save_vectors("emb", [2], [np.full(16, np.nan, np.float32)])
    assert binarize_dataset(dataset, first, force=True).binarized == 4
    assert not dataset.has_vector(2, "ba") and dataset.get_vector(2, "ba") is None
    assert len(dataset.stack_vectors("ba")[0]) == 4


def test_ba_vector_of_an_embedding_made_again_is_refused_then_redone(dataset, caplog):
    first, _ = _encoders()
    binarize_dataset(dataset, first)
    x, _ = clustered_embeddings(2, 3, dim=16, seed=9)
    dataset.save_vectors("emb", [1], [x[1]])  # the embedding is made again
    bad = []
    indices, _ = dataset.stack_vectors("ba", bad=bad)
    assert [b.item_id for b in bad] == ["u1"] and 1 not in indices
    assert "made from an embedding that was made again since" in bad[0].problem
    with pytest.raises(DataError, match=r"id 'u1'.*made from an embedding that was made again"):
        dataset.get_vector(1, "ba")
    assert binarize_dataset(dataset, first) == BinarizeReport(1, 4, 1)
    np.testing.assert_array_equal(dataset.get_vector(1, "ba"), first.binarize(x[1:2])[0])


def test_ba_vectors_of_another_encoder_are_made_again(dataset, caplog):
    first, second = _encoders()
    binarize_dataset(dataset, first)
    assert binarize_dataset(dataset, first) == BinarizeReport(0, 5, 1)
    assert binarize_dataset(dataset, second) == BinarizeReport(5, 0, 1)
    assert "binarizing again 5 _ba vectors made by another encoder (not bae:" in caplog.text
    _, counts = dataset.stack_vectors("ba")
    np.testing.assert_array_equal(counts, second.binarize(dataset.stack_vectors("emb")[1]))
