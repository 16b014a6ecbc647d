"""Learning-rate schedules shared by the methods, aware of step-based stages."""
from __future__ import annotations

import functools
import math
from typing import Any

import lightning as L
import torch


def stage_length(module: L.LightningModule) -> tuple[str, int]:
    """How the fitting stage is bounded: ``("step", max_steps)`` for a step-based stage (no epoch limit,
    ``max_epochs=-1`` with ``max_steps > 0``), else ``("epoch", max_epochs)``; ``("epoch", 1)`` without a trainer."""
    trainer = module._trainer
    if trainer is None:
        return "epoch", 1
    epochs, steps = trainer.max_epochs, int(trainer.max_steps or -1)
    if (epochs is None or epochs < 0) and steps > 0:
        return "step", steps
    return "epoch", max(int(epochs or 1), 1)


def cosine_schedule(module: L.LightningModule, opt: torch.optim.Optimizer) -> dict[str, Any]:
    """Cosine decay to 0 over the stage: stepped per optimiser step in a step-based stage, else per epoch."""
    interval, length = stage_length(module)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=length)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval}}


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """LR factor: linear warm-up (step+1)/warmup over ``warmup`` steps, then cosine from 1 to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_schedule(opt: torch.optim.Optimizer, warmup: int, total: int) -> dict[str, Any]:
    """Per-step :func:`warmup_cosine` (linear warm-up over ``warmup`` steps, cosine to 0 at ``total``)."""
    sched = torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(warmup_cosine, warmup=warmup, total=total))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
