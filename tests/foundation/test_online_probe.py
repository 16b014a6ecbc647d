"""Online linear probe (``affectlab.engine.online_probe``): hand-checkable fits, gradient isolation, cadence."""
from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from affectlab.engine.online_probe import OnlineProbe, OnlineProbeConfig, fit_ridge, probe_score

AUS = ["AU01", "AU02", "AU04"]


def _occurrence(n: int, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, :3] + torch.tensor([0.5, -0.5, 0.8]) > 0).float()  # AU k present ⇔ a linear test on x
    return x, y, torch.ones_like(y, dtype=torch.bool)


def _all_positive_f1(y: torch.Tensor) -> float:
    p = y.mean(0)
    return float((2 * p / (1 + p)).mean())


def test_logistic_probe_reaches_high_f1_when_features_determine_the_labels():
    score = probe_score("au_occurrence", _occurrence(400), _occurrence(200, seed=1), AUS, OnlineProbeConfig())
    assert score["f1"] > 0.9


def test_logistic_probe_stays_trivial_on_noise():
    xt, yt, mt = _occurrence(400)
    xv, yv, mv = _occurrence(200, seed=1)
    noise = torch.randn_like(xt), torch.randn_like(xv)
    score = probe_score("au_occurrence", (noise[0], yt, mt), (noise[1], yv, mv), AUS, OnlineProbeConfig())
    assert score["f1"] < _all_positive_f1(yv) + 0.03  # no better than predicting every AU present


def test_ridge_matches_least_squares_and_scores_icc():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=g)
    w = torch.randn(5, 3, generator=g)
    y = x @ w + 2.0
    mask = torch.ones_like(y, dtype=torch.bool)
    mask[:100, 1] = False  # each AU is fitted on its own labelled rows
    wh, bh = fit_ridge(x, y, mask, l2=0.0)
    assert torch.allclose(wh, w, atol=1e-4) and torch.allclose(bh, torch.full((3,), 2.0), atol=1e-4)
    score = probe_score("au_intensity", (x, y, mask), (x[:50], y[:50], mask[:50]), AUS, OnlineProbeConfig())
    assert score["icc"] > 0.99
    noise = probe_score("au_intensity", (torch.randn(300, 5, generator=g), y, mask),
                        (torch.randn(100, 5, generator=g), y[:100], mask[:100]), AUS, OnlineProbeConfig())
    assert abs(noise["icc"]) < 0.3


class _Frames(Dataset):
    def __init__(self, n: int, seed: int) -> None:
        self.x, self.y, _ = _occurrence(n, seed=seed)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.x[i], "au": self.y[i], "au_mask": torch.ones(3, dtype=torch.bool)}


class _LabelledData:
    """Stands in for the probe stage's datamodule (``dataset(split)``)."""

    def __init__(self) -> None:
        self.sets = {"train": _Frames(300, 0), "val": _Frames(150, 1)}

    def dataset(self, split: str) -> Dataset:
        return self.sets[split]


class _SelfSupervised(L.LightningModule):
    """A toy 'pretraining' module: an encoder trained by a label-free loss, exposing ``probe_features``."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(8, 8)
        self.artifact_dir = None
        self.validated_at: list[int] = []

    def probe_features(self, batch: dict) -> torch.Tensor:
        return self.encoder(batch["image"])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return (self.encoder(batch["image"]) - batch["image"]).pow(2).mean()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.log("val/loss", (self.encoder(batch["image"]) - batch["image"]).pow(2).mean())

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.validated_at.append(self.trainer.global_step)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_probe_labels_never_reach_the_encoder_and_rng_is_restored():
    module = _SelfSupervised()
    probe = OnlineProbe(_LabelledData(), "au_occurrence", AUS, OnlineProbeConfig(train_items=200, val_items=100))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    module.train()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    score = probe.evaluate(module)
    assert torch.equal(torch.rand(3), expected)  # the probe consumed no global random numbers
    assert score["f1"] > 0.85  # an identity-like random linear map keeps the labels linearly decodable
    assert all(p.grad is None for p in module.parameters())
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert module.training  # its mode is restored


def test_step_based_validation_runs_the_probe_every_n_steps_and_writes_the_curve(tmp_path):
    from omegaconf import OmegaConf

    from affectlab.config import TrainerConfig
    from affectlab.engine.runner import build_trainer
    from affectlab.methods import Stage

    class _Unlabelled(L.LightningDataModule):
        def train_dataloader(self):  # 3 batches per epoch: validation every 4 steps crosses epochs
            return DataLoader(_Frames(12, 2), batch_size=4)

        def val_dataloader(self):
            return DataLoader(_Frames(8, 3), batch_size=4)

    cfg = OmegaConf.create({"trainer": OmegaConf.structured(TrainerConfig), "deterministic": False})
    cfg.trainer.enable_progress_bar = False
    module = _SelfSupervised()
    module.artifact_dir = tmp_path / "artifacts"
    probe = OnlineProbe(_LabelledData(), "au_occurrence", AUS, OnlineProbeConfig(train_items=100, val_items=50),
                        stage="pretrain")
    stage = Stage("pretrain", module, _Unlabelled(), max_epochs=-1, max_steps=10, val_every_n_steps=4,
                  callbacks=[probe])
    trainer, _ = build_trainer(cfg, stage, tmp_path, [])
    trainer.fit(module, datamodule=stage.datamodule)
    assert module.validated_at == [4, 8]
    assert [h["step"] for h in probe.history] == [4, 8]
    assert "online_probe/f1" in trainer.callback_metrics
    curve = json.loads((tmp_path / "artifacts" / "online_probe_pretrain.json").read_text())
    assert curve["metric"] == "f1" and len(curve["curve"]) == 2
    assert (tmp_path / "artifacts" / "online_probe_pretrain.png").stat().st_size > 0
    lines = (tmp_path / "artifacts" / "online_probe_pretrain.csv").read_text().splitlines()
    assert lines[0] == "step,epoch,f1,seconds" and len(lines) == 3


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="task"):
        OnlineProbe(_LabelledData(), "expression", AUS, OnlineProbeConfig())
