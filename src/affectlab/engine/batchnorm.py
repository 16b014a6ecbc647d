"""BatchNorm statistics of a network that was never trained on the data it is evaluated on."""
from __future__ import annotations

from typing import Callable, Iterable, Optional

import torch
from torch import nn


@torch.no_grad()
def calibrate_batchnorm(module: nn.Module, batches: Iterable[torch.Tensor],
                        forward: Optional[Callable[[torch.Tensor], object]] = None) -> int:
    """Set every BatchNorm's running mean and variance to their average over ``batches`` (each batch
    weighted by its size), changing no weight; returns the number of inputs seen.

    A randomly initialised network keeps running statistics 0 / 1, which mis-scale every layer at
    evaluation time; a fair random-init control calibrates them as training would have
    (``forward`` defaults to ``module`` itself, e.g. ``model.features`` for a sub-forward).
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
    was_training = module.training
    module.train()
    seen = 0
    for x in batches:
        seen += len(x)
        for m in norms:  # this batch's share of the running average over everything seen so far
            m.momentum = len(x) / seen
        (forward or module)(x)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    module.train(was_training)
    return seen
