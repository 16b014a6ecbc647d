"""The task's trivial predictors scored on the labels of a test pass, printed beside the run's metrics.

A number such as "mean F1 0.39" says little until it stands next to what predicting every AU present
scores on the same test items (0.48 on synthetic BP4D fold 1); ``make evidence`` compares a method
with its trained controls over seeds, this puts the untrained reference into every run's record.
"""
from __future__ import annotations

from typing import Any

import lightning as L

from affectlab.evidence.trivial import LABEL_KEYS, for_task, label_names


class TrivialReference(L.Callback):
    """Keeps the label entries (``LABEL_KEYS``) of every test batch and scores the trivial predictors
    of ``task`` (``affectlab.evidence.trivial``) on exactly the items the test pass scored."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.predictors = for_task(task)
        self.batches: list[dict[str, Any]] = []

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.predictors and isinstance(batch, dict):
            self.batches.append({k: batch[k].detach().cpu() for k in LABEL_KEYS[self.task] if k in batch})

    def scores(self, datamodule: Any) -> dict[str, dict[str, float]]:
        """{predictor: its test metrics}; empty when the task has none or no batch carried labels."""
        if not self.batches:
            return {}
        names = label_names(self.task, datamodule)
        return {name: p.score_batches(names, self.batches) for name, p in self.predictors.items()}
