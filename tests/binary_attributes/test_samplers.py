"""NxM samplers: index sequences derived by hand, seeding, sharding across replicas."""

from __future__ import annotations

import numpy as np
import pytest

from balr.binary_attributes.samplers import (
    ExhaustiveNxMSampler,
    RandomNxMSampler,
    sampler_class,
)
from balr.errors import ConfigError

# index:  0  1  2  3  4  5  6  7  8  9
LABELS = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
# class members: 0 -> [0, 1, 2], 1 -> [3, 4], 2 -> [5, 6, 7, 8], 3 -> [9]


def ordered(cls, labels=LABELS, n=2, m=2, **kwargs):
    return cls(labels, n, m, shuffle=False, num_replicas=1, rank=0, **kwargs)


def test_random_in_order_takes_m_samples_per_class_repeating_short_classes():
    # classes (0, 1) then (2, 3); class 0 takes its first two; class 3 repeats its only one.
    assert list(ordered(RandomNxMSampler)) == [[0, 1, 3, 4], [5, 6, 9, 9]]


def test_random_last_short_group_dropped_or_padded():
    labels = LABELS + [4, 4]  # class 4 -> [10, 11]; groups (0, 1), (2, 3), (4)
    assert list(ordered(RandomNxMSampler, labels)) == [[0, 1, 3, 4], [5, 6, 9, 9]]
    padded = list(ordered(RandomNxMSampler, labels, drop_last=False))
    # the short group (4) is padded with the first class not in it: class 0
    assert padded == [[0, 1, 3, 4], [5, 6, 9, 9], [10, 11, 0, 1]]


def test_exhaustive_in_order_repeats_samples_to_multiples_of_m():
    # class 0 -> [0, 1, 2, 0] -> blocks [0, 1], [2, 0]; 1 -> [3, 4]; 2 -> [5, 6], [7, 8];
    # 3 -> [9, 9]; six blocks, two per batch.
    assert list(ordered(ExhaustiveNxMSampler)) == [[0, 1, 2, 0], [3, 4, 5, 6], [7, 8, 9, 9]]


def test_exhaustive_short_last_batch():
    # N=4: blocks 0-3 form one batch; blocks [7, 8], [9, 9] are a short batch.
    assert list(ordered(ExhaustiveNxMSampler, n=4)) == [[0, 1, 2, 0, 3, 4, 5, 6]]
    assert list(ordered(ExhaustiveNxMSampler, n=4, drop_last=False)) == [
        [0, 1, 2, 0, 3, 4, 5, 6],
        [7, 8, 9, 9],
    ]


def test_string_labels_work_like_integers():
    labels = ["b", "b", "a", "a"]  # sorted classes: a -> [2, 3], b -> [0, 1]
    assert list(ordered(RandomNxMSampler, labels, n=1)) == [[2, 3], [0, 1]]


@pytest.mark.parametrize("drop_last", [True, False])
def test_sharding_round_robin_with_equal_counts(drop_last):
    batches = [[0, 1, 2, 0], [3, 4, 5, 6], [7, 8, 9, 9]]

    def shard(rank):
        sampler = ExhaustiveNxMSampler(
            LABELS, 2, 2, shuffle=False, drop_last=drop_last, num_replicas=2, rank=rank
        )
        return list(sampler)

    if drop_last:  # 3 batches -> 1 each, the odd one dropped
        assert (shard(0), shard(1)) == ([batches[0]], [batches[1]])
    else:  # wrapped around to 4: rank 0 gets 0 and 2, rank 1 gets 1 and 0 again
        assert (shard(0), shard(1)) == (
            [batches[0], batches[2]],
            [batches[1], batches[0]],
        )


def many_labels(n_classes=40, seed=0):
    rng = np.random.default_rng(seed)
    return np.repeat(np.arange(n_classes), rng.integers(1, 9, n_classes))


def test_random_shuffled_is_reproducible_and_changes_with_epoch():
    labels = many_labels()
    a, b = RandomNxMSampler(labels, 4, 3, seed=7), RandomNxMSampler(labels, 4, 3, seed=7)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert list(RandomNxMSampler(labels, 4, 3, seed=8)) != first


def test_random_shuffled_covers_every_class_once_with_n_distinct_classes():
    labels = many_labels()
    batches = np.array(list(RandomNxMSampler(labels, 4, 3, seed=1, num_replicas=1, rank=0)))
    assert batches.shape == (10, 12)  # 40 classes / N=4, each batch N*M = 12
    blocks = labels[batches].reshape(10, 4, 3)
    assert np.all(blocks == blocks[..., :1])  # every block of M is one class
    assert np.array_equal(np.sort(blocks[..., 0].ravel()), np.arange(40))


def test_exhaustive_shuffled_visits_every_sample():
    labels = many_labels()
    sampler = ExhaustiveNxMSampler(labels, 4, 3, seed=2, drop_last=False, num_replicas=1, rank=0)
    flat = np.concatenate(list(sampler))
    assert set(flat.tolist()) == set(range(len(labels)))
    assert np.all(labels[flat].reshape(-1, 3) == labels[flat].reshape(-1, 3)[:, :1])


def test_shuffled_shards_partition_the_same_epoch_draw():
    labels = many_labels()
    full = RandomNxMSampler(labels, 4, 3, seed=5, num_replicas=1, rank=0)
    full.set_epoch(3)
    shards = []
    for rank in (0, 1, 2):
        sampler = RandomNxMSampler(labels, 4, 3, seed=5, num_replicas=3, rank=rank)
        sampler.set_epoch(3)
        shards.append(list(sampler))
    everything = list(full)  # 10 batches -> 3 per replica, one dropped
    assert [len(s) for s in shards] == [3, 3, 3]
    assert shards[1] == everything[1:9:3]


def test_sampler_names():
    assert sampler_class("RandomNxMSampler") is RandomNxMSampler
    path = "balr.binary_attributes.samplers.ExhaustiveNxMSampler"
    assert sampler_class(path) is ExhaustiveNxMSampler
    with pytest.raises(ConfigError, match="data.sampler 'Nope'"):
        sampler_class("Nope")
    with pytest.raises(ConfigError, match="data.sampler 'os.path'"):
        sampler_class("os.path")
    with pytest.raises(ConfigError, match="N=0"):
        RandomNxMSampler([0, 1], 0, 2)
