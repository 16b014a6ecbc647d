"""Expression metrics: UAR (mean per-class recall), WAR (accuracy) and per-class recall."""
from __future__ import annotations

import torch
from torchmetrics import Metric


class ExpressionMetrics(Metric):
    """Confusion-matrix based DFER metrics (DFEW/FERV39k protocol: UAR and WAR)."""

    full_state_update = False

    def __init__(self, class_names: list[str]) -> None:
        super().__init__()
        self.class_names = list(class_names)
        c = len(self.class_names)
        self.add_state("confusion", default=torch.zeros(c, c, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits_or_pred: torch.Tensor, target: torch.Tensor) -> None:
        """``logits_or_pred`` (N,C) scores or (N,) class ids; ``target`` (N,) class ids."""
        pred = logits_or_pred.argmax(-1) if logits_or_pred.ndim == 2 else logits_or_pred
        c = len(self.class_names)
        idx = target.long() * c + pred.long()
        self.confusion += torch.bincount(idx, minlength=c * c).reshape(c, c)

    def compute(self) -> dict[str, torch.Tensor]:
        cm = self.confusion.float()
        support = cm.sum(1)
        recall = torch.where(support > 0, cm.diag() / support.clamp(min=1), torch.zeros_like(support))
        present = support > 0
        out = {f"recall_{n.lower()}": recall[i] for i, n in enumerate(self.class_names)}
        out["uar"] = recall[present].mean() if present.any() else torch.tensor(0.0)
        out["war"] = cm.diag().sum() / cm.sum().clamp(min=1)
        return out

    def confusion_matrix(self) -> torch.Tensor:
        """Rows = true class, columns = predicted class (counts, synced across ranks)."""
        return self.confusion.clone()
