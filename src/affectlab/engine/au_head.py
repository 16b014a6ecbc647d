"""What every AU-occurrence stage shares: masked, positive-weighted BCE and per-AU F1.

The baseline classifier, the TCAE linear probe and the region_relation probe differ only in the
network that turns a batch into K logits; their loss, steps and metrics live here once.
"""
from __future__ import annotations

from typing import Optional

import lightning as L
import torch
import torch.nn.functional as F

from affectlab.metrics import AUDetectionMetrics


def positive_weights(pos_rate: torch.Tensor, max_weight: Optional[float] = None) -> torch.Tensor:
    """Per-AU BCE positive weights ``(1 − p) / p`` from training base rates ``p`` (floored at 1e-3),
    capped at ``max_weight`` when given."""
    weight = (1 - pos_rate) / pos_rate.clamp(min=1e-3)
    return (weight if max_weight is None else weight.clamp(max=max_weight)).float()


def masked_bce(logits: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor],
               pos_weight: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with per-AU positive weights, averaged over the labelled (frame, AU)
    entries only (``mask`` (N, K), None = all labelled)."""
    per_item = F.binary_cross_entropy_with_logits(logits, target.float(), pos_weight=pos_weight, reduction="none")
    mask = torch.ones_like(per_item) if mask is None else mask.float()
    return (per_item * mask).sum() / mask.sum().clamp(min=1)


class AUOccurrenceModule(L.LightningModule):
    """K per-AU sigmoid outputs trained with :func:`masked_bce` and scored with per-AU F1 at
    ``threshold`` (``val/f1_<au>``, ``val/f1_mean`` and ``val/loss``; the F1s under ``test/``: the
    record's metrics are scores only).

    Subclasses build their network and implement :meth:`logits` (batch → (N, K) logits).
    """

    def __init__(self, au_names: list[str], pos_weight: Optional[torch.Tensor] = None, threshold: float = 0.5) -> None:
        super().__init__()
        self.au_names = list(au_names)
        k = len(self.au_names)
        self.register_buffer("pos_weight", torch.ones(k) if pos_weight is None else pos_weight.float())
        self.val_metrics = AUDetectionMetrics(self.au_names, threshold)
        self.test_metrics = AUDetectionMetrics(self.au_names, threshold)

    def logits(self, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def au_loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return masked_bce(logits, batch["au"], batch.get("au_mask"), self.pos_weight)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self.logits(batch)
        loss = self.au_loss(logits, batch)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=logits.shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self.logits(batch)
        self.log("val/loss", self.au_loss(logits, batch), on_epoch=True, sync_dist=True, batch_size=logits.shape[0])
        self.val_metrics.update(torch.sigmoid(logits), batch["au"], batch.get("au_mask"))
        return logits

    def on_validation_epoch_end(self) -> None:
        self.log_dict({f"val/{k}": v for k, v in self.val_metrics.compute().items()})
        self.val_metrics.reset()

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        probs = torch.sigmoid(self.logits(batch))
        self.test_metrics.update(probs, batch["au"], batch.get("au_mask"))
        return probs

    def on_test_epoch_end(self) -> None:
        self.log_test_metrics()

    def log_test_metrics(self) -> dict[str, torch.Tensor]:
        """Log ``test/…`` from the accumulated test batches, reset, and return the values."""
        metrics = self.test_metrics.compute()
        self.log_dict({f"test/{k}": v for k, v in metrics.items()})
        self.test_metrics.reset()
        return metrics
