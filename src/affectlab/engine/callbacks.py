"""Callbacks and plugins the runner adds to every Trainer."""
from __future__ import annotations

import os
import random
import tempfile
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

from affectlab.engine.checkpoints import LAST, PREVIOUS


class ProgressBar(TQDMProgressBar):
    """Lightning's progress bar without ``v_num``: the logger version (the tail of a wandb id or an
    empty CSV version) names nothing a user can act on; the run directory is printed at the end."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside it, then renames it into place,
    so a run killed mid-save never leaves a truncated ``last.ckpt`` behind. The ``last.ckpt`` a save
    replaces is kept as ``last-previous.ckpt``: a resume falls back to it when ``last.ckpt`` was
    damaged afterwards (see ``engine.checkpoints``)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            torch.save(checkpoint, tmp)
            if path.name == LAST and path.exists():
                os.replace(path, path.with_name(PREVIOUS))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


class LastEveryEpochCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that writes ``last.ckpt`` at every save point, also when the monitored
    metric did not improve or nothing is monitored, and once more when training ends after the last
    save point. Lightning 2.6 writes it only beside a new best, so a resumed run restarted from the last
    improving epoch and a stage without ``monitor`` had no ``last.ckpt`` at all; and a step-based stage
    whose ``max_steps`` is not a multiple of its validation interval handed the next stage the weights of
    its last validation, not of its last step. A stage validated every n steps also writes it at each
    epoch end: its validations fall inside epochs, and only a checkpoint from an epoch boundary resumes
    exactly (``RNGStateCallback``). (Uses ModelCheckpoint's own helpers, private in Lightning 2.6.)"""

    def _save_last_now(self, trainer: L.Trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if trainer.check_val_every_n_epoch is None:
            # validated by steps: also here, replacing a validation's save at this very step (it holds the
            # loop state inside the epoch; only this one resumes exactly), so the same-step rule is lifted
            self._last_global_step_saved = -1
            self._save_last_now(trainer)
        elif self._should_save_on_train_epoch_end(trainer):
            self._save_last_now(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_now(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._save_last_now(trainer)  # skipped when the last save point was this very step


def _numpy_state_to_plain(state: tuple) -> list:
    # plain Python types so the checkpoint loads with torch.load(weights_only=True)
    name, keys, pos, has_gauss, cached = state
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _numpy_state_from_plain(state: list) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached


class RNGStateCallback(L.Callback):
    """Saves python/numpy/torch RNG states in checkpoints and restores them when the first new
    epoch after a resume starts. Restoring any earlier would be undone: the sanity check and
    Lightning's wrap-up of the interrupted epoch both draw random numbers (dataloader seeds), so
    only this timing gives a resumed run the same shuffles and augmentations as an uninterrupted one."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None
        self._saved_epoch = -1
        #: where a resumed fit picked up (``None``: not resumed); the runner writes it to ``done.json``
        self.resumed: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint["affectlab_rng"] = {
            "python": random.getstate(),
            "numpy": _numpy_state_to_plain(np.random.get_state()),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if trainer.max_steps != -1:
            close_epoch_of_step_based_checkpoint(checkpoint)
        self._pending = checkpoint.get("affectlab_rng")
        self._saved_epoch = int(checkpoint.get("epoch", -1))
        self.resumed = {"global_step": int(checkpoint.get("global_step", 0)), "mid_epoch": saved_mid_epoch(checkpoint)}
        if self.resumed["mid_epoch"]:
            warnings.warn(f"resuming from a checkpoint written inside an epoch (step {self.resumed['global_step']}): "
                          "Lightning restarts that epoch's data order, so this run will not reproduce an uninterrupted "
                          "one; its record says so (training.resumed)")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self._pending is None or trainer.current_epoch <= self._saved_epoch:
            return
        state, self._pending = self._pending, None
        if not self.resumed["mid_epoch"] and trainer.max_steps != -1:
            _start_persistent_validation_workers(trainer)
        random.setstate(state["python"])
        np.random.set_state(_numpy_state_from_plain(state["numpy"]))
        torch.set_rng_state(state["torch"])
        if state.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)
        if not self.resumed["mid_epoch"] and fetcher is not None:
            # A resumed fit's first epoch would iterate the DataLoader iterator that Lightning made in
            # FitLoop.setup_data, before this restore and before the sampler's set_epoch (so with stale worker
            # seeds and an early base-seed draw); an uninterrupted run makes it after the epoch-start hooks.
            # Make it again here, from the restored RNG, as that run does.
            iter(fetcher)


def _start_persistent_validation_workers(trainer: L.Trainer) -> None:
    """Make the validation DataLoaders' persistent iterators now, before the RNG restore, as the
    sanity check of an uninterrupted run made them before training: Lightning skips that check when a
    step-based fit resumes, and the first validation would otherwise draw their base seed from the
    restored stream."""
    val_loop = trainer.fit_loop.epoch_loop.val_loop
    if trainer.val_dataloaders is None:
        val_loop.setup_data()
    for loader in val_loop._combined_loader.flattened if val_loop._combined_loader is not None else []:
        if getattr(loader, "persistent_workers", False) and getattr(loader, "_iterator", 1) is None:
            iter(loader)


def close_epoch_of_step_based_checkpoint(checkpoint: dict[str, Any]) -> None:
    """Mark the epoch of a checkpoint written at its end (``on_train_epoch_end``) as completed, in place.

    Lightning 2.6 counts that epoch completed only after the epoch-end hooks. On a resume by epochs it
    fixes the count itself (``FitLoop.on_run_start``), but not when a stage trains by ``max_steps``:
    there the resume re-enters the finished epoch, draws one more batch from a new iterator and
    shifts every later epoch number, sampler order and RNG restore. Callbacks load before the loops,
    so the loop state is corrected here, before Lightning reads it: the epoch completed, the next one
    at its first batch."""
    loop = checkpoint.get("loops", {}).get("fit_loop", {})
    epochs = loop.get("epoch_progress", {})
    batches = loop.get("epoch_loop.batch_progress", {})
    if not (epochs and batches.get("is_last_batch")):
        return
    p = epochs.get("current", {})
    if not (p and p["ready"] == p["started"] == p["processed"] == p["completed"] + 1):
        return
    for scope in ("total", "current"):
        epochs[scope]["completed"] = epochs[scope]["processed"]
    batches["current"] = {key: 0 for key in batches["current"]}   # the next epoch starts at its first batch
    batches["is_last_batch"] = False


def saved_mid_epoch(checkpoint: dict[str, Any]) -> bool:
    """Whether a Lightning checkpoint was written inside an epoch (a validation every n steps): Lightning
    restarts that epoch's data order on resume, so the resumed run cannot reproduce an uninterrupted one."""
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress", {})
    return bool(progress.get("current", {}).get("completed", 0)) and not progress.get("is_last_batch", True)


def fault_injection_from_env() -> L.Callback | None:
    value = os.environ.get("AFFECTLAB_FAULT_AFTER_EPOCHS")
    return KillAfterEpochs(int(value)) if value else None


class KillAfterEpochs(L.Callback):
    """Kills the process at the start of epoch N (``AFFECTLAB_FAULT_AFTER_EPOCHS``): how the tests prove
    that ``resume=auto`` survives a crash. For an epoch-based stage the checkpoint of epoch N−1's
    validation is then on disk; a stage validating every n steps may have saved last at an earlier step."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        # epoch-based: the previous epoch's checkpoint was written at its validation end
        if trainer.current_epoch >= self.epochs:
            print(f"[affectlab] fault injection: killing the run after epoch {trainer.current_epoch}", flush=True)
            os._exit(17)
