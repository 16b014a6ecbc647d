"""One progress bar over a whole run (every stage), with the ETA of the steps planned so far."""
from __future__ import annotations

import math
import sys
from typing import Any

import lightning as L
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar as _LightningProgressBar


class RunProgress:
    """The run's single tqdm bar. Each stage adds its planned optimiser steps when it starts (a later
    stage's length is known only once the earlier ones have trained it, so the total grows per stage);
    the ETA is tqdm's, from the rate over the run so far (validation time included)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.stages: list[str] = []

    def add_stage(self, name: str, steps: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=0, unit="step", dynamic_ncols=True, file=sys.stderr, leave=True)
        self.stages.append(name)
        self.bar.total = (self.bar.total or 0) + max(int(steps), 0)
        self.bar.set_description(f"{name} (stage {len(self.stages)})")
        self.bar.refresh()

    def advance(self, postfix: dict[str, Any] | None = None) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def skip(self, steps: int) -> None:
        """Steps a stage no longer takes (it stopped early, or resumed part-way): drop them from the total."""
        if self.bar is not None and steps > 0:
            self.bar.total = max(self.bar.n, self.bar.total - steps)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _planned_steps(trainer: L.Trainer) -> int:
    steps = trainer.estimated_stepping_batches
    return 0 if steps is None or math.isinf(steps) else int(steps)


class RunProgressBar(_LightningProgressBar):
    """Lightning progress-bar callback that drives the run's :class:`RunProgress` (replacing Lightning's
    bar per epoch): one tick per optimiser step, postfix with the latest logged progress-bar metrics."""

    def __init__(self, progress: RunProgress, stage: str) -> None:
        super().__init__()
        self.progress, self.stage = progress, stage
        self._enabled = True
        self._planned = 0
        self._seen = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _active(self, trainer: L.Trainer) -> bool:
        return self._enabled and trainer.is_global_zero

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer):
            self._planned = max(_planned_steps(trainer) - int(trainer.global_step), 0)
            self.progress.add_stage(self.stage, self._planned)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not self._active(trainer) or (batch_idx + 1) % trainer.accumulate_grad_batches:
            return
        self._seen += 1
        postfix = None
        # reading the logged values (tensors) makes the CPU wait for the GPU: only as often as they are logged
        if self._seen == 1 or self._seen % max(1, trainer.log_every_n_steps) == 0:
            metrics = self.get_metrics(trainer, pl_module)
            metrics.pop("v_num", None)
            postfix = {k: v for k, v in list(metrics.items())[:4]}
        self.progress.advance(postfix)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer):
            self.progress.skip(self._planned - self._seen)
