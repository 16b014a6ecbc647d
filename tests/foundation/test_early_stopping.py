"""``trainer.early_stopping_patience`` stops monitored stages and says when a stage cannot use it."""
from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from affectlab.config import TrainerConfig
from affectlab.engine.runner import build_trainer
from affectlab.methods import Stage


class _Flat(L.LightningModule):
    """Its validation metric never improves, so a patience of 2 stops it after 3 validations."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/score", 0.5)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Data(L.LightningDataModule):
    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.ones(2, 1)), batch_size=1)

    def val_dataloader(self):
        return DataLoader(TensorDataset(torch.ones(1, 1)), batch_size=1)


def _trainer(tmp_path, monitor):
    cfg = OmegaConf.create({"trainer": OmegaConf.structured(TrainerConfig), "deterministic": False})
    cfg.trainer.update(enable_progress_bar=False, max_epochs=20, early_stopping_patience=2)
    trainer, _ = build_trainer(cfg, Stage("fit", _Flat(), _Data(), monitor=monitor), tmp_path, [])
    trainer.num_sanity_val_steps = 0
    return trainer


def test_a_monitored_stage_stops_after_its_patience(tmp_path):
    trainer = _trainer(tmp_path, "val/score")
    trainer.fit(_Flat(), datamodule=_Data())
    assert trainer.current_epoch == 3   # the first validation sets the best, two more without improvement


def test_a_stage_without_monitor_warns_that_patience_does_not_apply(tmp_path):
    with pytest.warns(UserWarning, match="early_stopping_patience is ignored for stage 'fit'"):
        trainer = _trainer(tmp_path, None)
    assert not any(isinstance(c, EarlyStopping) for c in trainer.callbacks)
