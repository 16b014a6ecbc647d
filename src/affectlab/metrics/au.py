"""AU metrics: per-AU F1 for occurrence, ICC(3,1)/MAE/PCC for intensity.

Both are torchmetrics ``Metric``s, so Lightning syncs them across DDP ranks: detection sums
per-AU confusion counts, intensity concatenates (prediction, target, mask) triplets.
Labels marked unknown (BP4D code 9) have ``mask = False`` and are excluded everywhere.
"""
from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def metric_key(prefix: str, au_name: str) -> str:
    """``("f1", "AU01") -> "f1_au01"``."""
    return f"{prefix}_{au_name.lower()}"


class AUDetectionMetrics(Metric):
    """Per-AU F1 (binary, positive class = AU present) and their mean, the standard
    BP4D/DISFA detection protocol (F1 of each AU over all test frames, then averaged)."""

    full_state_update = False

    def __init__(self, au_names: list[str], threshold: float = 0.5) -> None:
        super().__init__()
        self.au_names = list(au_names)
        self.threshold = threshold
        k = len(self.au_names)
        for name in ("tp", "fp", "fn", "tn"):
            self.add_state(name, default=torch.zeros(k, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """``probs`` (N,K) probabilities, ``target`` (N,K) 0/1, ``mask`` (N,K) bool (labelled)."""
        pred = probs >= self.threshold
        truth = target > 0.5
        valid = torch.ones_like(truth) if mask is None else mask.bool()
        self.tp += (pred & truth & valid).sum(0)
        self.fp += (pred & ~truth & valid).sum(0)
        self.fn += (~pred & truth & valid).sum(0)
        self.tn += (~pred & ~truth & valid).sum(0)

    def compute(self) -> dict[str, torch.Tensor]:
        denom = (2 * self.tp + self.fp + self.fn).float()
        f1 = torch.where(denom > 0, 2 * self.tp.float() / denom.clamp(min=1), torch.zeros_like(denom))
        out = {metric_key("f1", n): f1[i] for i, n in enumerate(self.au_names)}
        out["f1_mean"] = f1.mean()
        return out


def icc_3_1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ICC(3,1), two-way mixed, consistency, single rater (Shrout & Fleiss), raters = (pred, target).

    ``(BMS - EMS) / (BMS + (k - 1) EMS)`` with k = 2 from the two-way ANOVA decomposition.
    """
    y = torch.stack([pred.double(), target.double()], dim=1)  # (n, k)
    n, k = y.shape
    if n < 2:
        return torch.tensor(float("nan"))
    grand = y.mean()
    ss_rows = k * ((y.mean(1) - grand) ** 2).sum()
    ss_cols = n * ((y.mean(0) - grand) ** 2).sum()
    ss_total = ((y - grand) ** 2).sum()
    ss_err = ss_total - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    denom = bms + (k - 1) * ems
    return (bms - ems) / denom if denom > 0 else torch.tensor(0.0, dtype=torch.float64)


def _pearson(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = pred.double() - pred.double().mean()
    t = target.double() - target.double().mean()
    denom = p.norm() * t.norm()
    return (p * t).sum() / denom if denom > 0 else torch.tensor(0.0, dtype=torch.float64)


class AUIntensityMetrics(Metric):
    """Per-AU ICC(3,1), MAE and Pearson correlation on labelled frames, and their means."""

    full_state_update = False

    def __init__(self, au_names: list[str]) -> None:
        super().__init__()
        self.au_names = list(au_names)
        for name in ("preds", "targets", "masks"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Tensors of shape (..., K); leading dims (batch, time) are flattened."""
        k = len(self.au_names)
        pred, target = pred.reshape(-1, k).float(), target.reshape(-1, k).float()
        mask = torch.ones_like(target, dtype=torch.bool) if mask is None else mask.reshape(-1, k).bool()
        self.preds.append(pred.detach())
        self.targets.append(target.detach())
        self.masks.append(mask)

    def compute(self) -> dict[str, torch.Tensor]:
        pred, target, mask = (dim_zero_cat(s) for s in (self.preds, self.targets, self.masks))
        out: dict[str, torch.Tensor] = {}
        columns: dict[str, list[torch.Tensor]] = {"icc": [], "mae": [], "pcc": []}
        for i, name in enumerate(self.au_names):
            m = mask[:, i]
            p, t = pred[m, i], target[m, i]
            values = {
                "icc": icc_3_1(p, t).float(),
                "mae": (p - t).abs().mean() if len(p) else torch.tensor(float("nan")),
                "pcc": _pearson(p, t).float() if len(p) > 1 else torch.tensor(float("nan")),
            }
            for metric, value in values.items():
                out[metric_key(metric, name)] = value.float()
                columns[metric].append(value.float())
        for metric, values in columns.items():
            out[f"{metric}_mean"] = torch.stack(values).nanmean()
        return out
