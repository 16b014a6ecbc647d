"""Callbacks and plugins the runner adds to every Trainer."""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside it, then renames it into place,
    so a run killed mid-save never leaves a truncated ``last.ckpt`` behind."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


class RNGStateCallback(L.Callback):
    """Saves python/numpy/torch RNG states in checkpoints and restores them when training
    resumes (after the sanity check, which would otherwise consume random numbers), so a
    resumed run draws the same shuffles and augmentations as an uninterrupted one."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint["affectlab_rng"] = {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        self._pending = checkpoint.get("affectlab_rng")

    def on_train_start(self, trainer, pl_module) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if state.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def fault_injection_from_env() -> L.Callback | None:
    value = os.environ.get("AFFECTLAB_FAULT_AFTER_EPOCHS")
    return KillAfterEpochs(int(value)) if value else None


class KillAfterEpochs(L.Callback):
    """Kills the process after N finished epochs (``AFFECTLAB_FAULT_AFTER_EPOCHS``), once the
    epoch's checkpoint is on disk: how the tests prove that ``resume=auto`` survives a crash."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # ModelCheckpoint (registered before this callback) has saved last.ckpt by now.
        if trainer.current_epoch + 1 >= self.epochs:
            print(f"[affectlab] fault injection: killing the run after epoch {trainer.current_epoch + 1}", flush=True)
            os._exit(17)
