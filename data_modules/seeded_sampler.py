"""Training order and worker seeds as pure functions of (seed, epoch, worker).

The default ``RandomSampler`` and the DataLoader's worker seeds draw from the global RNG each
time an epoch's iterator is created, and Lightning creates iterators at other moments when it
resumes from a checkpoint, so a resumed run would see other batches and augmentations.
``EpochSeededSampler`` derives each epoch's permutation from ``(seed, epoch)`` (Lightning calls
``set_epoch`` before every epoch) and ``seeded_train_loader`` seeds every worker from
``(seed, epoch, worker id)``, so a resumed run replays the uninterrupted one exactly.
"""
from __future__ import annotations

import functools
import random
from typing import Any, Iterator, Sized

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

_EPOCH_STRIDE = 1_000_003


class EpochSeededSampler(Sampler[int]):
    """Random permutation of ``range(len(data))`` determined by ``seed`` and the current epoch."""

    def __init__(self, data: Sized, seed: int) -> None:
        self.data, self.seed, self.epoch = data, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def epoch_seed(self) -> int:
        return self.seed * _EPOCH_STRIDE + self.epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.epoch_seed())
        return iter(torch.randperm(len(self.data), generator=generator).tolist())

    def __len__(self) -> int:
        return len(self.data)


def _seed_worker(sampler: EpochSeededSampler, worker_id: int) -> None:
    seed = (sampler.epoch_seed() * 97 + worker_id) % 2**32
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def seeded_train_loader(dataset: Dataset, batch_size: int, seed: int, **kwargs: Any) -> DataLoader:
    """Shuffled training DataLoader that drops the last partial batch (BatchNorm needs more than
    one item, and DDP ranks must see equal batch counts) and resumes bit-exactly."""
    sampler = EpochSeededSampler(dataset, seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                      worker_init_fn=functools.partial(_seed_worker, sampler), **kwargs)
