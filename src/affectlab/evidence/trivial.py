"""Trivial predictors: controls scored on the test labels of a method's own datamodule, never trained.

Each reads the labels of the test split exactly as the test pass sees them (the datamodule's
``test_dataloader``, honouring ``trainer.limit_test_batches``) and scores a fixed prediction with the
metric classes the methods use, so its numbers are comparable with the trained arms'.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch

from affectlab.registry import Registry


#: the batch entries a task's trivial predictors read (labels only, never images)
LABEL_KEYS = {"au_occurrence": ("au", "au_mask"), "expression": ("label",)}


@dataclass
class TrivialPredictor:
    """A fixed prediction for one task. ``score_batches(names, batches)`` scores it on label batches
    (``LABEL_KEYS``; ``names`` the datamodule's AU or class names); ``score(datamodule, limit)`` on the
    datamodule's test split."""

    task: str
    help: str
    score_batches: Callable[[list[str], Iterable[dict]], dict[str, float]]

    def score(self, datamodule: Any, limit: Any = 1.0) -> dict[str, float]:
        return self.score_batches(label_names(self.task, datamodule), labelled_test_batches(datamodule, limit))


def label_names(task: str, datamodule: Any) -> list[str]:
    """The names a task's metrics are reported under: class names (expression) or AU names."""
    return list(datamodule.class_names if task == "expression" else datamodule.au_names)


TRIVIAL: Registry[TrivialPredictor] = Registry("trivial predictor")


def _register(name: str, task: str, help: str):
    def decorator(fn: Callable[[list[str], Iterable[dict]], dict[str, float]]):
        TRIVIAL.register(name)(TrivialPredictor(task, help, fn))
        return fn

    return decorator


def for_task(task: str) -> dict[str, TrivialPredictor]:
    """The trivial predictors registered for ``task`` (none for AU intensity: a constant scores ICC 0)."""
    return {name: TRIVIAL.get(name) for name in TRIVIAL if TRIVIAL.get(name).task == task}


def labelled_test_batches(datamodule: Any, limit: Any = 1.0) -> Iterator[dict]:
    """The test batches of ``datamodule`` (prepared and set up here), cut as ``limit_test_batches`` cuts them."""
    datamodule.prepare_data()
    datamodule.setup("test")
    loader = datamodule.test_dataloader()
    if isinstance(limit, float) and not isinstance(limit, bool):
        n = len(loader) if limit >= 1.0 else max(1, int(math.floor(len(loader) * limit)))
    else:
        n = int(limit)
    for i, batch in enumerate(loader):
        if i >= n:
            break
        yield batch


def _plain(metrics: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


@_register("all_positive", "au_occurrence", "predicts every AU present in every frame (no training)")
def all_positive(au_names: list[str], batches: Iterable[dict]) -> dict[str, float]:
    """Per-AU F1 of the constant prediction "present": 2p / (1 + p) for an AU with positive rate p."""
    from affectlab.metrics import AUDetectionMetrics

    metric = AUDetectionMetrics(list(au_names))
    for batch in batches:
        target = batch["au"]
        metric.update(torch.ones_like(target, dtype=torch.float32), target, batch.get("au_mask"))
    return _plain(metric.compute())


@_register("chance", "expression",
           "one constant class for every clip: UAR = 1 / classes in the test fold (no training)")
def chance(class_names: list[str], batches: Iterable[dict]) -> dict[str, float]:
    """UAR and WAR of predicting one class for every clip (the test fold's most frequent one): its UAR,
    1 / (number of classes present), is that of any constant or uniformly random guess."""
    from affectlab.metrics import ExpressionMetrics

    labels = torch.cat([batch["label"].reshape(-1).long() for batch in batches])
    metric = ExpressionMetrics(list(class_names))
    metric.update(torch.full_like(labels, int(torch.bincount(labels).argmax())), labels)
    return _plain(metric.compute())
