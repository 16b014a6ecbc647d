"""Supervised baseline: a timm CNN with a multi-label AU head and class-balanced BCE.

The row every comparison needs: the same backbone family the papers build on, trained
directly on the labels. BCE weights each AU's positives by (1 - p) / p, p = the AU's
positive rate on the training split (so rare AUs are not ignored). The head pools the last
feature map to a ``grid`` × ``grid`` layout before its linear layer (ours, default 2): a global
average (``grid: 1``, timm's own head) discards *where* on the face a feature fires, which is
most of what tells AUs apart (docs/methods/baseline.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn
from omegaconf import DictConfig
from torchmetrics import SumMetric

from affectlab.engine.au_head import AUOccurrenceModule, positive_weights
from affectlab.engine.scaling import scaled_lr
from affectlab.evidence.arms import Arm, Evidence
from affectlab.methods.base import METHODS, MethodConfig, MethodSpec, RunContext, Stage
from affectlab.metrics.au import metric_key
from affectlab.schema import ConfigError


@dataclass
class BaselineConfig(MethodConfig):
    """``method`` keys of the supervised baseline (experiments/method/baseline.yaml)."""

    backbone: str = "resnet10t"
    #: local checkpoint for the backbone (weights are never downloaded)
    checkpoint: str | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-4
    #: clip on the positive weight of very rare AUs
    max_pos_weight: float = 10.0
    #: the head average-pools the last feature map to grid × grid cells, then one linear layer;
    #: 1 = timm's global-average head
    grid: int = 2


class AUClassifier(AUOccurrenceModule):
    """timm backbone → grid-pooled map → K logits; BCE with per-AU positive weights; per-AU F1 metrics."""

    def __init__(self, cfg: DictConfig, au_names: list[str], pos_rate: torch.Tensor) -> None:
        m = cfg.method
        super().__init__(au_names, positive_weights(pos_rate, m.max_pos_weight))
        self.cfg = cfg
        self.net = timm.create_model(m.backbone, pretrained=False, num_classes=len(au_names),
                                     checkpoint_path=m.checkpoint or "")
        if m.grid < 1:
            raise ConfigError(f"method.grid must be >= 1 (cells per side of the pooled map), got {m.grid}")
        if m.grid > 1:  # keep the spatial layout: backbone map → grid×grid average → linear
            self.net.reset_classifier(0, global_pool="")
            self.net = nn.Sequential(self.net, nn.AdaptiveAvgPool2d(m.grid), nn.Flatten(),
                                     nn.Linear(self.net.num_features * m.grid ** 2, len(au_names)))
        self.val_frames = SumMetric()  # proves DDP gathers validation from every rank
        self.artifact_dir: Path | None = None  # set by the runner
        self._test_outputs: list[tuple[torch.Tensor, ...]] = []

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)

    def logits(self, batch: dict) -> torch.Tensor:
        return self(batch["image"])

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = super().validation_step(batch, batch_idx)
        self.val_frames.update(torch.tensor(float(len(logits))))
        return logits

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.log("val/n_frames", self.val_frames.compute())
        self.val_frames.reset()

    def on_test_epoch_start(self) -> None:
        self._test_outputs = []

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        probs = super().test_step(batch, batch_idx)
        self._test_outputs.append((probs.detach().cpu(), batch["au"].cpu(), batch["au_mask"].cpu()))
        return probs

    def on_test_epoch_end(self) -> None:
        metrics = self.log_test_metrics()
        if self.artifact_dir is not None and self.trainer.is_global_zero and self._test_outputs:
            self._write_test_plots(metrics)
        self._test_outputs = []

    def _write_test_plots(self, metrics: dict[str, torch.Tensor]) -> None:
        """``au_f1.png`` (per-AU F1 bars) and ``au_pr_curves.png`` (per-AU precision-recall) in the run's artifacts."""
        from affectlab.evaluation.au_plots import save_au_f1_bars, save_pr_curves  # matplotlib: only when plotting

        probs, target, mask = (torch.cat(parts).float().numpy() for parts in zip(*self._test_outputs))
        directory = Path(self.artifact_dir)
        title = f"baseline on {self.cfg.data.name}, fold {self.cfg.data.fold} (test)"
        save_au_f1_bars({a: float(metrics[metric_key("f1", a)]) for a in self.au_names}, directory / "au_f1.png", title)
        save_pr_curves(probs, target, mask, self.au_names, directory / "au_pr_curves.png", title=title)

    def configure_optimizers(self):
        lr = scaled_lr(self.cfg, self.cfg.method.lr)
        opt = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=self.cfg.method.weight_decay)
        epochs = max(int(self.trainer.max_epochs or 1), 1)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


@METHODS.register("baseline")
class Baseline(MethodSpec):
    """Supervised timm CNN + class-balanced BCE: the reference row for AU detection."""

    Config = BaselineConfig
    default_data = "bp4d"
    task = "au_occurrence"
    evidence = Evidence(metric="f1_mean", arms=(
        Arm("default", help="supervised CNN, class-balanced BCE"),
        Arm("all_positive", trivial="all_positive", help="trivial: every AU present in every frame (no training)"),
    ))

    def stages(self, cfg: DictConfig, ctx: RunContext):
        from data_modules import create_datamodule

        dm = create_datamodule(cfg.data)
        module = AUClassifier(cfg, dm.au_names, dm.train_pos_rate())
        yield Stage("supervised", module, dm, monitor="val/f1_mean", mode="max", evaluate=True)
