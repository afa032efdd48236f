"""Per-speaker statistics: vectorised sums, errors naming the item."""

import numpy as np
import pytest

from balr.errors import DataError
from balr.scoring import dataset_statistics, speaker_statistics


def test_sums_per_speaker():
    # items: s2 [1,0], s1 [0,1], s2 [1,0], s1 [1,0] for one attribute
    #   s1: a = 0 + 1 = 1, n = 1 + 0 = 1 ; s2: a = 2, n = 0
    ba = np.array([[[1, 0]], [[0, 1]], [[1, 0]], [[1, 0]]], dtype=np.float32)
    names, stats = speaker_statistics(ba, ["s2", "s1", "s2", "s1"])
    assert names == ["s1", "s2"]
    np.testing.assert_array_equal(stats, [[[1, 1]], [[2, 0]]])
    assert stats.dtype == np.float64


def test_bits_and_large_random_set_match_a_loop():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (500, 8))
    speakers = [f"spk{i}" for i in rng.integers(0, 37, 500)]
    names, stats = speaker_statistics(bits, speakers)
    for row, name in enumerate(names):
        mine = bits[[s == name for s in speakers]]
        np.testing.assert_array_equal(stats[row, :, 0], mine.sum(0))
        np.testing.assert_array_equal(stats[row, :, 1], (1 - mine).sum(0))


def test_missing_speaker_names_the_item():
    with pytest.raises(DataError, match="item 'b'"):
        speaker_statistics(np.zeros((2, 3, 2)), ["x", None], ids=["a", "b"])


def test_dataset_missing_vector_names_the_item(tmp_path):
    from balr.data import AudioDataset

    (tmp_path / "set.csv").write_text("id,speaker\nu1,s1\nu2,s1\nu3,s2\n")
    dataset = AudioDataset.from_path(tmp_path / "set.csv")
    with dataset.vector_writer("ba") as writer:
        writer.put(0, np.array([[1, 0], [0, 1]], dtype=np.float32))
        writer.put(2, np.array([[0, 1], [0, 1]], dtype=np.float32))
    with pytest.raises(DataError, match="item 'u2' has no binary-attribute vector"):
        dataset_statistics(dataset)
    with dataset.vector_writer("ba") as writer:
        writer.put(1, np.array([[1, 0], [1, 0]], dtype=np.float32))
    names, stats = dataset_statistics(dataset)
    assert names == ["s1", "s2"]
    np.testing.assert_array_equal(stats[0], [[2, 0], [1, 1]])


def test_count_histogram_keeps_every_speaker_sum_and_exceedance():
    from balr.scoring.statistics import CountHistogram

    # 3 speakers, 2 attributes: attribute 0 counts (2,1), (2,1), (0,3); attribute 1 (1,2) x3
    stats = np.array([[[2, 1], [1, 2]], [[2, 1], [1, 2]], [[0, 3], [1, 2]]], dtype=np.float64)
    histogram = CountHistogram.from_statistics(stats)
    assert histogram.integral and len(histogram.weight) == 3  # distinct (attribute, counts)
    rows = {
        (int(a), *map(int, c)): w
        for a, c, w in zip(histogram.attribute, histogram.counts, histogram.weight, strict=True)
    }
    assert rows == {(0, 0, 3): 1, (0, 2, 1): 2, (1, 1, 2): 3}
    values = histogram.counts[:, 0] ** 2 + histogram.counts[:, 1]  # any function of the counts
    np.testing.assert_allclose(
        histogram.total(values), (stats[..., 0] ** 2 + stats[..., 1]).sum(axis=0)
    )
    # speakers whose activation count exceeds j = 0, 1: attribute 0 -> 2, 2; attribute 1 -> 3, 0
    np.testing.assert_array_equal(histogram.exceedance(histogram.counts[:, 0]), [[2, 2], [3, 0]])


def test_count_histogram_of_non_integer_statistics_keeps_one_row_each():
    from balr.scoring.statistics import CountHistogram

    stats = np.random.default_rng(0).random((5, 3, 2)) * 2
    histogram = CountHistogram.from_statistics(stats)
    assert not histogram.integral and len(histogram.weight) == 15
    np.testing.assert_allclose(histogram.total(histogram.counts), stats.sum(axis=0))
