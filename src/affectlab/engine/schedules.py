"""Learning-rate schedules shared by the methods, aware of step-based stages."""
from __future__ import annotations

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
