"""Online linear probe: see whether a self-supervised stage learns while it runs.

As solo-learn's base method does for image SSL, a linear head on *detached* features of labelled
frames scores the encoder at every validation of a pretraining stage, so a flat curve shows long
before the final probe. Here the head is refitted from scratch each time on a fixed small labelled
subset (the probe stage's own data: its training split for fitting, its validation split for
scoring), which needs no optimiser state and costs a few feature passes:

* ``au_occurrence``: logistic regression (full-batch Adam on standardised features, positives
  weighted by the subset's (1 − p)/p), scored by per-AU F1 at 0.5 → ``online_probe/f1``;
* ``au_intensity``: closed-form ridge regression per AU, scored by ICC(3,1) → ``online_probe/icc``.

The stage's module exposes ``probe_features(batch) -> Tensor`` ((N,D), or (B,T,D) for sequences,
aligned with the batch's labels). Labels reach only this head: features are computed under
``no_grad`` and detached, and the global RNG streams are restored afterwards, so training proceeds
exactly as with the probe off. The curve is written atomically to ``artifacts/online_probe_<stage>``
(``.csv``, ``.json``, ``.png``) and logged to the Lightning loggers (CSV, wandb).
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from affectlab.engine.io import atomic_save_figure, atomic_write_json, atomic_write_text

TASK_KEYS = {"au_occurrence": ("au", "au_mask", "f1"), "au_intensity": ("intensity", "intensity_mask", "icc")}


@dataclass
class OnlineProbeConfig:
    """``method.online_probe``: the learning monitor of a self-supervised stage (see module docstring)."""

    enabled: bool = False
    #: labelled items (frames, or sequence windows) of the probe data's train split the head is fitted on
    train_items: int = 512
    #: items of its validation split the head is scored on
    val_items: int = 256
    #: full-batch Adam steps of the logistic head (occurrence)
    steps: int = 100
    lr: float = 0.05
    #: L2 penalty: weight decay of the logistic head, λ of the ridge head (on standardised features)
    l2: float = 1e-3
    #: run the probe at every n-th validation of the stage
    every_n_validations: int = 1
    #: items per feature-extraction batch
    batch_size: int = 64
    #: seed of the fixed subsets
    seed: int = 0


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore the python, numpy and torch (CPU and CUDA) RNG states on exit."""
    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, steps: int = 100, lr: float = 0.05,
                 weight_decay: float = 1e-3, max_pos_weight: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-AU logistic regression on (N,D) features (standardise them first), masked BCE with positives
    weighted by (1 − p)/p of the labelled rows (clamped to ``max_pos_weight``). Returns (W (D,K), b (K,))."""
    with torch.inference_mode(False), torch.enable_grad():
        x, y, m = x.detach().clone().float(), y.detach().clone().float(), mask.detach().clone().float()
        rate = (y * m).sum(0) / m.sum(0).clamp(min=1.0)
        pos_weight = ((1 - rate) / rate.clamp(min=1e-3)).clamp(max=max_pos_weight)
        w = torch.zeros(x.shape[1], y.shape[1], requires_grad=True)
        b = torch.logit(rate.clamp(1e-3, 1 - 1e-3)).detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([w, b], lr=lr, weight_decay=0.0)
        for _ in range(int(steps)):
            opt.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(x @ w + b, y, pos_weight=pos_weight, reduction="none")
            loss = (loss * m).sum() / m.sum().clamp(min=1.0) + weight_decay * (w * w).sum()
            loss.backward()
            opt.step()
        return w.detach(), b.detach()


def fit_ridge(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, l2: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form ridge regression per target column on its labelled rows: ``w = (XᵀX + λnI)⁻¹Xᵀy``
    on centred data (λ scaled by the row count), bias = mean target minus mean prediction."""
    x, y = x.double(), y.double()
    d, k = x.shape[1], y.shape[1]
    w, b = torch.zeros(d, k, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
    for j in range(k):
        rows = mask[:, j].bool()
        if int(rows.sum()) < 2:
            continue
        xj, yj = x[rows], y[rows, j]
        mx, my = xj.mean(0), yj.mean()
        xc = xj - mx
        gram = xc.T @ xc + l2 * len(xj) * torch.eye(d, dtype=torch.float64)
        w[:, j] = torch.linalg.solve(gram, xc.T @ (yj - my))
        b[j] = my - mx @ w[:, j]
    return w.float(), b.float()


def probe_score(task: str, train: tuple[torch.Tensor, ...], val: tuple[torch.Tensor, ...],
                au_names: list[str], cfg: OnlineProbeConfig) -> dict[str, float]:
    """Fit the task's head on ``train`` = (features, labels, mask) and score it on ``val``:
    ``{"f1": mean F1}`` (occurrence) or ``{"icc": mean ICC(3,1)}`` (intensity)."""
    from affectlab.metrics import AUDetectionMetrics, AUIntensityMetrics

    (xt, yt, mt), (xv, yv, mv) = train, val
    mean, std = xt.mean(0), xt.std(0).clamp(min=1e-6)
    xt, xv = (xt - mean) / std, (xv - mean) / std
    if task == "au_occurrence":
        w, b = fit_logistic(xt, yt, mt, cfg.steps, cfg.lr, cfg.l2)
        metric = AUDetectionMetrics(au_names)
        metric.update(torch.sigmoid(xv @ w + b), yv, mv)
        return {"f1": float(metric.compute()["f1_mean"])}
    w, b = fit_ridge(xt, yt, mt, cfg.l2)
    metric = AUIntensityMetrics(au_names)
    metric.update(xv @ w + b, yv, mv)
    return {"icc": float(metric.compute()["icc_mean"])}


def _subset(dataset: Any, n: int, seed: int, batch_size: int) -> list[dict]:
    """A fixed seeded subset of ``n`` items of ``dataset``, collated into batches of ``batch_size``."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[: min(n, len(dataset))]
    idx = sorted(order.tolist())
    return [default_collate([dataset[i] for i in idx[s:s + batch_size]]) for s in range(0, len(idx), batch_size)]


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class OnlineProbe(L.Callback):
    """Fits and scores a linear head on the detached ``probe_features`` of a fixed labelled subset at
    every ``every_n_validations``-th validation of a stage; logs ``online_probe/<metric>`` and writes the
    curve to ``<artifact_dir>/online_probe_<stage>.{csv,json,png}`` (see the module docstring).

    ``datamodule``: the labelled probe data (``dataset(split)`` or ``setup`` + loaders); ``train_mask``:
    optional ``batch -> mask`` replacing the train items' label mask (e.g. a label budget)."""

    def __init__(self, datamodule: Any, task: str, au_names: list[str], cfg: OnlineProbeConfig | Any,
                 stage: str = "pretrain", train_mask: Optional[Callable[[dict], torch.Tensor]] = None) -> None:
        if task not in TASK_KEYS:
            raise ValueError(f"online probe task must be one of {sorted(TASK_KEYS)}, got {task!r}")
        self.datamodule, self.task, self.au_names = datamodule, task, list(au_names)
        self.cfg, self.stage, self.train_mask = cfg, stage, train_mask
        self.metric = TASK_KEYS[task][2]
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0
        self._validations = 0
        self._batches: dict[str, list[dict]] | None = None

    # --- data ------------------------------------------------------------------------------
    def _dataset(self, split: str) -> Any:
        dm = self.datamodule
        if hasattr(dm, "dataset"):
            return dm.dataset(split)
        dm.setup("fit")
        return (dm.train_dataloader() if split == "train" else dm.val_dataloader()).dataset

    def _load(self) -> dict[str, list[dict]]:
        if self._batches is None:
            c = self.cfg
            size, seed = int(c.batch_size), int(c.seed)
            self._batches = {"train": _subset(self._dataset("train"), int(c.train_items), seed, size),
                             "val": _subset(self._dataset("val"), int(c.val_items), seed + 1, size)}
        return self._batches

    @torch.no_grad()
    def _features(self, module: L.LightningModule, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        label_key, mask_key, _ = TASK_KEYS[self.task]
        k = len(self.au_names)
        xs, ys, ms = [], [], []
        for batch in self._load()[split]:
            batch = _to(batch, module.device)
            feats = module.probe_features(batch).detach().float()
            labels = batch[label_key].float()
            mask = batch.get(mask_key, torch.ones_like(labels)).bool()
            if split == "train" and self.train_mask is not None:
                kept = self.train_mask(batch).to(mask.device).bool()
                mask = mask & kept.reshape(mask.shape[:-1] + (-1,)).expand_as(mask)
            feats, labels, mask = feats.reshape(-1, feats.shape[-1]), labels.reshape(-1, k), mask.reshape(-1, k)
            keep = mask.any(1)
            xs.append(feats[keep].cpu())
            ys.append(labels[keep].cpu())
            ms.append(mask[keep].cpu())
        return torch.cat(xs), torch.cat(ys), torch.cat(ms)

    def evaluate(self, module: L.LightningModule) -> dict[str, float]:
        """Score ``module``'s current features (restores its train/eval mode and every RNG state)."""
        was_training = module.training
        module.eval()
        try:
            with preserved_rng():
                train, val = self._features(module, "train"), self._features(module, "val")
                if len(train[0]) < 2 or len(val[0]) == 0:
                    return {self.metric: math.nan}
                return probe_score(self.task, train, val, self.au_names, self.cfg)
        finally:
            module.train(was_training)

    # --- Lightning hooks --------------------------------------------------------------------
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._validations += 1
        if (self._validations - 1) % max(int(self.cfg.every_n_validations), 1):
            return
        start = time.perf_counter()
        score = self.evaluate(pl_module)[self.metric]
        seconds = time.perf_counter() - start
        self.seconds += seconds
        pl_module.log(f"online_probe/{self.metric}", score, on_epoch=True, prog_bar=True)
        self.history.append({"step": int(trainer.global_step), "epoch": int(trainer.current_epoch),
                             self.metric: score, "seconds": round(seconds, 3)})
        artifacts = getattr(pl_module, "artifact_dir", None)
        if artifacts is not None and trainer.is_global_zero:
            self.write(Path(artifacts))

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "seconds": self.seconds, "validations": self._validations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self.seconds = float(state_dict.get("seconds", 0.0))
        self._validations = int(state_dict.get("validations", 0))

    # --- artefacts --------------------------------------------------------------------------
    def write(self, folder: Path) -> Path:
        """Write the curve as ``online_probe_<stage>.csv``/``.json``/``.png`` in ``folder`` (atomically)."""
        stem = folder / f"online_probe_{self.stage}"
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["step", "epoch", self.metric, "seconds"])
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write_text(stem.with_suffix(".csv"), out.getvalue())
        atomic_write_json(stem.with_suffix(".json"), {"stage": self.stage, "task": self.task, "metric": self.metric,
                                                     "seconds_total": round(self.seconds, 3), "curve": self.history})
        plot_curve(self.history, self.metric, stem.with_suffix(".png"), f"online probe ({self.stage})")
        return stem


def plot_curve(history: list[dict[str, float]], metric: str, path: Path, title: str) -> Path:
    """Line plot of ``metric`` against ``step``, saved atomically (temporary file, then rename)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([h["step"] for h in history], [h[metric] for h in history], marker="o")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"online probe {metric}")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return atomic_save_figure(fig, path, dpi=100)
