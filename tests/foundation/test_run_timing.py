"""Time accounting (share of wall time inside training steps) and the single run-wide progress bar."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import lightning as L
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from affectlab.config import TrainerConfig
from affectlab.engine.progress import RunProgress, RunProgressBar
from affectlab.engine.runner import build_trainer
from affectlab.engine.timing import StepTimer, format_timing, overall
from affectlab.methods import Stage

STEP_S, VAL_S = 0.05, 0.2


class _Sleepy(L.LightningModule):
    """Training steps of known length (STEP_S) and a validation that costs VAL_S outside them."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        time.sleep(STEP_S)
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        time.sleep(VAL_S)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Data(L.LightningDataModule):
    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=2)  # 4 steps per epoch

    def val_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(2, 2)), batch_size=2)


def _cfg(progress_bar: bool = False):
    cfg = OmegaConf.create({"trainer": OmegaConf.structured(TrainerConfig), "deterministic": False})
    cfg.trainer.enable_progress_bar = progress_bar
    cfg.trainer.log_every_n_steps = 1
    return cfg


def _fit(cfg, stage, tmp_path, progress=None):
    trainer, _ = build_trainer(cfg, stage, tmp_path / stage.name, [], progress)
    trainer.num_sanity_val_steps = 0
    started = time.perf_counter()
    trainer.fit(stage.module, datamodule=stage.datamodule)
    timer = next(c for c in trainer.callbacks if isinstance(c, StepTimer))
    timer.wall_s = time.perf_counter() - started
    return trainer, timer


def test_step_timer_counts_only_training_steps(tmp_path):
    stage = Stage("pretrain", _Sleepy(), _Data(), max_epochs=-1, max_steps=6, val_every_n_steps=3)
    trainer, timer = _fit(_cfg(), stage, tmp_path)
    summary = timer.summary({"online_probe_s": 0.5})
    assert summary["steps"] == 6
    assert 6 * STEP_S <= summary["train_steps_s"] < 6 * STEP_S + 0.25
    # two validations of VAL_S each (steps 3 and 6) lie outside the steps, inside the wall time
    assert summary["wall_s"] >= summary["train_steps_s"] + 2 * VAL_S
    assert abs(summary["train_step_share"] - summary["train_steps_s"] / summary["wall_s"]) < 1e-3
    assert summary["online_probe_s"] == 0.5


def test_overall_share_and_the_printed_line():
    stages = {"pretrain": {"wall_s": 100.0, "train_steps_s": 80.0, "steps": 10, "train_step_share": 0.8,
                           "online_probe_s": 4.0},
              "probe": {"wall_s": 50.0, "train_steps_s": 25.0, "steps": 5, "train_step_share": 0.5},
              "restored": None}
    assert overall(stages) == {"wall_s": 150.0, "train_steps_s": 105.0, "train_step_share": 0.7}
    line = format_timing(stages, run_wall_s=210.0)
    assert line == ("time inside training steps: pretrain 80 % of 100 s; probe 50 % of 50 s; all stages 70 % "
                    "(50 % of the run's 210 s); online probe 4.0 s")


def test_one_progress_bar_spans_every_stage(tmp_path, monkeypatch):
    read = []  # the postfix reads the logged tensors (a GPU sync): at the first step, then as often as logging
    original = RunProgressBar.get_metrics
    monkeypatch.setattr(RunProgressBar, "get_metrics",
                        lambda self, t, m: read.append(t.global_step) or original(self, t, m))
    cfg = _cfg(progress_bar=True)
    cfg.trainer.log_every_n_steps = 4
    progress = RunProgress()
    first = Stage("pretrain", _Sleepy(), _Data(), max_epochs=-1, max_steps=6, val_every_n_steps=3)
    trainer, _ = _fit(cfg, first, tmp_path, progress)
    assert isinstance(trainer.progress_bar_callback, RunProgressBar)  # Lightning's epoch bar is replaced
    assert (progress.bar.n, progress.bar.total) == (6, 6)
    assert len(read) == 2  # steps 1 and 4 of 6
    second = Stage("probe", _Sleepy(), _Data(), max_epochs=1)
    _fit(cfg, second, tmp_path, progress)
    assert (progress.bar.n, progress.bar.total) == (10, 10)
    assert progress.stages == ["pretrain", "probe"]
    progress.close()


def test_a_run_records_and_prints_its_time_share(tmp_path, capsys):
    from affectlab.config import compose
    from affectlab.engine.runner import print_summary, train

    cfg = compose(["METHOD=baseline", "DATA=toyau", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                   "logger.wandb.enabled=false", "leaderboard.enabled=false", f"run_root={tmp_path}"])
    record = train(cfg)
    timing = record["training"]["timing"]
    stage = timing["stages"]["supervised"]
    assert stage["steps"] > 0 and 0 < stage["train_step_share"] <= 1
    assert abs(timing["overall"]["train_step_share"] - stage["train_step_share"]) < 1e-3
    print_summary(record)
    assert "time inside training steps: supervised" in capsys.readouterr().out


def test_channels_last_auto_follows_the_methods_cpu_measurement():
    import pytest

    from affectlab.config import ConfigError, compose
    from affectlab.engine.runner import use_channels_last
    from affectlab.methods import METHODS

    for name in METHODS.names():
        cfg = compose([f"METHOD={name}"])
        assert cfg.trainer.channels_last == "auto"
        assert use_channels_last(cfg) == METHODS.get(name).channels_last_cpu
    gpu = compose(["METHOD=tcae", "trainer.accelerator=gpu"])
    assert not use_channels_last(gpu)  # auto is off on GPU (the gpu presets set true)
    assert use_channels_last(compose(["METHOD=baseline", "trainer.channels_last=true"]))
    with pytest.raises(ConfigError, match="channels_last"):
        compose(["METHOD=baseline", "trainer.channels_last=sometimes"])


def test_trainer_threads_set_the_runs_intra_op_threads(tmp_path):
    from affectlab.config import ConfigError, compose
    from affectlab.engine.evaluate import evaluate_run
    from affectlab.engine.runner import train

    assert compose(["METHOD=ial"]).trainer.threads == 1
    assert compose(["METHOD=ial", "EXP=ial_paper"]).trainer.threads == "auto"
    assert compose(["METHOD=tcae"]).trainer.threads == "auto"
    for bad in ("0", "two", "true"):
        with pytest.raises(ConfigError, match="trainer.threads"):
            compose(["METHOD=baseline", f"trainer.threads={bad}"])
    before = torch.get_num_threads()
    try:
        cfg = compose(["METHOD=baseline", "DATA=toyau", "trainer.threads=1", "trainer.max_epochs=1",
                       "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                       "data.num_workers=0", "logger.wandb.enabled=false", "leaderboard.enabled=false",
                       f"run_root={tmp_path}"])
        record = train(cfg)
        assert torch.get_num_threads() == 1
        run = json.loads((Path(record["run_dir"]) / "run.json").read_text())
        assert run["environment"]["torch_threads"] == 1
        torch.set_num_threads(2)   # re-evaluation (`affectlab test`) runs with the run's threads too
        evaluate_run(record["run_dir"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_cpu_defaults_pretrain_by_steps_and_paper_presets_keep_their_epochs():
    from affectlab.config import compose

    def pretrain(name, exp=None):
        cfg = compose([f"METHOD={name}"] + ([f"EXP={exp}"] if exp else []))
        m = cfg.method
        if name == "contrastive_intensity":
            return m.pretrain.max_epochs, m.pretrain.max_steps, m.pretrain.val_every_n_steps, m.online_probe.enabled
        return m.pretrain_epochs, m.pretrain_max_steps, m.pretrain_val_every_n_steps, m.online_probe.enabled

    assert pretrain("tcae") == (-1, 300, 20, True)
    assert pretrain("region_relation") == (-1, 432, 72, True)
    assert pretrain("contrastive_intensity") == (-1, 450, 45, True)
    assert pretrain("tcae", "tcae_paper") == (2000, None, None, False)
    assert pretrain("region_relation", "region_relation_paper") == (50, None, None, False)
    assert pretrain("contrastive_intensity", "contrastive_intensity_paper") == (50, None, None, False)
