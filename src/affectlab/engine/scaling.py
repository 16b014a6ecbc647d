"""Learning-rate scaling tied to the effective batch size (recorded with every run)."""
from __future__ import annotations

import math

from omegaconf import DictConfig

from affectlab.schema import ConfigError


def world_size(cfg: DictConfig) -> int:
    """Processes taking part in training: devices × nodes (``devices=-1`` counts visible GPUs)."""
    devices = cfg.trainer.devices
    if devices in (-1, "-1", "auto"):
        import torch

        devices = max(torch.cuda.device_count(), 1) if cfg.trainer.accelerator == "gpu" else 1
    count = len(devices) if isinstance(devices, (list, tuple)) else int(devices)
    return count * int(cfg.trainer.num_nodes)


def effective_batch_size(cfg: DictConfig, batch_size: int | None = None) -> int:
    batch = int(batch_size if batch_size is not None else cfg.data.batch_size)
    return batch * world_size(cfg) * int(cfg.trainer.accumulate_grad_batches)


def scaled_lr(cfg: DictConfig, base_lr: float, batch_size: int | None = None) -> float:
    """``base_lr`` scaled by ``cfg.trainer.lr_scaling`` (none | linear | sqrt) relative to
    ``cfg.trainer.lr_base_batch_size`` (Goyal et al. linear rule; sqrt for adaptive optimisers)."""
    rule = cfg.trainer.lr_scaling
    ratio = effective_batch_size(cfg, batch_size) / float(cfg.trainer.lr_base_batch_size)
    if rule == "none":
        return base_lr
    if rule == "linear":
        return base_lr * ratio
    if rule == "sqrt":
        return base_lr * math.sqrt(ratio)
    raise ConfigError(f"trainer.lr_scaling must be none, linear or sqrt, got {rule!r}")
