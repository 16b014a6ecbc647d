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
from typing import Any, Iterator, Optional, Sequence, Sized

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

_EPOCH_STRIDE = 1_000_003


class EpochSeededSampler(Sampler[int]):
    """Random permutation of ``range(len(data))`` determined by ``seed`` and the current epoch; with
    ``weights``, ``len(data)`` indices drawn with replacement in proportion to them instead."""

    def __init__(self, data: Sized, seed: int, weights: Optional[Sequence[float]] = None) -> None:
        self.data, self.seed, self.epoch = data, int(seed), 0
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if self.weights is not None and (len(self.weights) != len(data) or not (self.weights >= 0).all()
                                         or self.weights.sum() <= 0):
            raise ValueError(f"sampling weights must be {len(data)} non-negative numbers, not all 0")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def epoch_seed(self) -> int:
        return self.seed * _EPOCH_STRIDE + self.epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.epoch_seed())
        if self.weights is not None:
            return iter(torch.multinomial(self.weights, len(self.data), True, generator=generator).tolist())
        return iter(torch.randperm(len(self.data), generator=generator).tolist())

    def __len__(self) -> int:
        return len(self.data)


def _seed_worker(sampler: EpochSeededSampler, worker_id: int) -> None:
    seed = (sampler.epoch_seed() * 97 + worker_id) % 2**32
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_balanced_weights(labels: Sequence[int]) -> np.ndarray:
    """Per-item sampling weight 1 / (number of items of its class): every class drawn equally often."""
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


def seeded_train_loader(dataset: Dataset, batch_size: int, seed: int, weights: Optional[Sequence[float]] = None,
                        **kwargs: Any) -> DataLoader:
    """Shuffled training DataLoader that drops the last partial batch (BatchNorm needs more than
    one item, and DDP ranks must see equal batch counts) and resumes bit-exactly; ``weights`` draw
    items with replacement in proportion to them (``EpochSeededSampler``)."""
    sampler = EpochSeededSampler(dataset, seed, weights)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                      worker_init_fn=functools.partial(_seed_worker, sampler), **kwargs)
