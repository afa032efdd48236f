"""NxM batch samplers: each batch is N blocks of M consecutive indices of one speaker.

Both samplers are seeded (`seed + epoch`, set with `set_epoch`), so every replica draws the
same batches and takes its share round-robin (`batches[rank::num_replicas]`); the number of
batches is evened out across replicas (truncated with `drop_last`, else wrapped around) so
that DDP processes never wait on one another.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from balr.binary_attributes.config import TrainerConfig
from balr.config_targets import SAMPLER_MODULES, sampler_name
from balr.distributed import rank as current_rank
from balr.distributed import world_size
from balr.errors import ConfigError


class NxMSampler:
    """Base class: yields lists of N*M dataset indices (blocks of M per class)."""

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        n_classes: int,
        m_samples: int,
        seed: int = TrainerConfig.seed,
        shuffle: bool = True,
        drop_last: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        if n_classes < 1 or m_samples < 1:
            raise ConfigError(f"NxM sampler: N={n_classes} and M={m_samples} must be >= 1")
        self.labels = np.asarray(labels)
        self.n_classes = n_classes
        self.m_samples = m_samples
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.num_replicas = world_size() if num_replicas is None else num_replicas
        self.rank = current_rank() if rank is None else rank
        self.epoch = 0
        self.classes, inverse = np.unique(self.labels, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(self.classes)))[:-1]
        self.members = np.split(order, bounds)  # indices of each class, ascending

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for this epoch (same draw on every replica)."""
        self.epoch = epoch

    def all_batches(self) -> list[list[int]]:
        """Every replica's batches for the current epoch, before sharding."""
        raise NotImplementedError

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed + self.epoch)

    def _class_samples(self, rng: np.random.Generator, cls: int, count: int) -> np.ndarray:
        """`count` indices of class `cls`: its (shuffled) samples, repeated cyclically."""
        members = self.members[cls]
        if self.shuffle:
            members = rng.permutation(members)
        return np.resize(members, count)

    def _shard(self, batches: list[list[int]]) -> list[list[int]]:
        """This replica's round-robin share; all replicas get the same count."""
        if self.num_replicas == 1:
            return batches
        per_replica, extra = divmod(len(batches), self.num_replicas)
        if extra and not self.drop_last:
            per_replica += 1
            batches = batches + batches[: per_replica * self.num_replicas - len(batches)]
        return batches[: per_replica * self.num_replicas][self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._shard(self.all_batches()))

    def __len__(self) -> int:
        return len(self._shard(self.all_batches()))


class RandomNxMSampler(NxMSampler):
    """Every class once per epoch, M samples each, N distinct classes per batch.

    The last group of fewer than N classes is dropped (`drop_last`) or padded with classes
    drawn from the others.
    """

    def all_batches(self) -> list[list[int]]:
        rng = self._rng()
        n_total = len(self.classes)
        order = rng.permutation(n_total) if self.shuffle else np.arange(n_total)
        groups = [order[i : i + self.n_classes] for i in range(0, n_total, self.n_classes)]
        if groups and len(groups[-1]) < self.n_classes:
            if self.drop_last or n_total < self.n_classes:
                groups.pop()
            else:
                groups[-1] = self._pad_group(rng, groups[-1], n_total)
        return [
            np.concatenate([self._class_samples(rng, c, self.m_samples) for c in group]).tolist()
            for group in groups
        ]

    def _pad_group(self, rng: np.random.Generator, group: np.ndarray, n_total: int) -> np.ndarray:
        """Fill a short group with distinct classes not yet in it (random, or in order)."""
        others = np.setdiff1d(np.arange(n_total), group)
        need = self.n_classes - len(group)
        extra = rng.choice(others, need, replace=False) if self.shuffle else others[:need]
        return np.concatenate([group, extra])


class ExhaustiveNxMSampler(NxMSampler):
    """Every sample at least once per epoch, in batches of N blocks of M.

    Each class's samples are repeated up to the next multiple of M and cut into blocks; the
    blocks are shuffled and batched N at a time (a last short batch is dropped with
    `drop_last`, else kept with fewer blocks).
    """

    def all_batches(self) -> list[list[int]]:
        rng = self._rng()
        m = self.m_samples
        blocks = []
        for cls, members in enumerate(self.members):
            count = -(-len(members) // m) * m
            blocks.extend(self._class_samples(rng, cls, count).reshape(-1, m))
        if self.shuffle:
            blocks = [blocks[i] for i in rng.permutation(len(blocks))]
        batches = [
            np.concatenate(blocks[i : i + self.n_classes]).tolist()
            for i in range(0, len(blocks), self.n_classes)
        ]
        if batches and self.drop_last and len(batches[-1]) < self.n_classes * m:
            batches.pop()
        return batches


class PlainBatchSampler(NxMSampler):
    """Batches of `batch_size` samples in random (or dataset) order, speakers mixed: the
    reference's `data.sampler=null` (a plain data loader). Shards across replicas like the
    NxM samplers."""

    def __init__(self, labels, batch_size: int, **options):
        super().__init__(labels, batch_size, 1, **options)

    def all_batches(self) -> list[list[int]]:
        n = len(self.labels)
        order = self._rng().permutation(n) if self.shuffle else np.arange(n)
        batches = [order[i : i + self.n_classes].tolist() for i in range(0, n, self.n_classes)]
        if batches and self.drop_last and len(batches[-1]) < self.n_classes:
            batches.pop()
        return batches


SAMPLERS = {cls.__name__: cls for cls in (RandomNxMSampler, ExhaustiveNxMSampler)}


def sampler_class(name: str) -> type[NxMSampler]:
    """The sampler `RandomNxMSampler` or `ExhaustiveNxMSampler`, named alone or by the
    reference's (`balr.samplers.nxm_samplers.X`) or balr's class path; no other module is
    imported, so any other path is refused."""
    short = sampler_name(name) or name
    if short in SAMPLERS:
        return SAMPLERS[short]
    accepted = [*SAMPLERS, *(f"{p}.{s}" for p in SAMPLER_MODULES for s in SAMPLERS)]
    raise ConfigError(
        f"data.sampler '{name}': not a sampler balr knows (balr imports no class named in a "
        f"config); accepted: {', '.join(accepted)}, or null for plain batches"
    )
