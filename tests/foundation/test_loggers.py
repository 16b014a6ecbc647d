"""wandb: offline without credentials, config and directory wiring, never fatal."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from affectlab.config import compose
from affectlab.engine import loggers as loggers_mod
from affectlab.engine.loggers import build_loggers, resolve_wandb_mode
from tests.foundation.helpers import wait_for_offline_wandb_keys


def test_auto_mode_is_offline_without_credentials_and_env_wins(monkeypatch):
    cfg = compose(["METHOD=baseline"])
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setattr(loggers_mod, "has_wandb_credentials", lambda: False)
    assert resolve_wandb_mode(cfg) == "offline"
    monkeypatch.setattr(loggers_mod, "has_wandb_credentials", lambda: True)
    assert resolve_wandb_mode(cfg) == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode(cfg) == "disabled"
    assert resolve_wandb_mode(compose(["METHOD=baseline", "logger.wandb.enabled=false"])) == "disabled"


def test_offline_wandb_run_lives_in_the_run_directory_with_the_resolved_config(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose(["METHOD=baseline", "seed=3"])
    loggers, run_id = build_loggers(cfg, tmp_path, "supervised", None)
    try:
        wandb_logger = [lg for lg in loggers if type(lg).__name__ == "WandbLogger"][0]
        assert run_id and wandb_logger.experiment.config["seed"] == 3
        assert wandb_logger.experiment.config["method"]["name"] == "baseline"
    finally:
        wandb_logger.experiment.finish()
    assert list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}-supervised"))


def test_a_wandb_failure_degrades_to_csv_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")

    def broken(*args, **kwargs):
        raise RuntimeError("service unreachable")

    monkeypatch.setattr("lightning.pytorch.loggers.WandbLogger", broken)
    with pytest.warns(UserWarning, match="wandb logging disabled"):
        loggers, run_id = build_loggers(compose(["METHOD=baseline"]), tmp_path, "s", None)
    assert run_id is None and [type(lg).__name__ for lg in loggers] == ["CSVLogger"]


class WandbLogger:
    """Stands in for Lightning's logger: records its arguments and the sweep variables wandb.init would see."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    @property
    def experiment(self):
        self.env_at_init = (os.environ.get("WANDB_SWEEP_ID"), os.environ.get("WANDB_RUN_ID"))
        return self


def test_under_a_sweep_agent_only_the_evaluated_stage_joins_the_agents_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SWEEP_ID", "sw123")
    monkeypatch.setenv("WANDB_RUN_ID", "agentrun")
    monkeypatch.setattr("lightning.pytorch.loggers.WandbLogger", WandbLogger)
    cfg = compose(["METHOD=baseline"])
    (_, pre), pre_id = build_loggers(cfg, tmp_path, "pretrain", None)
    assert pre_id != "agentrun" and pre.kwargs["id"] == f"{pre_id}-pretrain"
    assert pre.env_at_init == (None, None)  # its own run, not filed under the sweep
    assert os.environ["WANDB_SWEEP_ID"] == "sw123" and os.environ["WANDB_RUN_ID"] == "agentrun"
    (_, probe), probe_id = build_loggers(cfg, tmp_path, "probe", None, sweep_run=True)
    assert probe_id == "agentrun" and probe.kwargs["id"] == "agentrun"
    assert probe.env_at_init == ("sw123", "agentrun")
    monkeypatch.delenv("WANDB_SWEEP_ID")
    (_, alone), alone_id = build_loggers(cfg, tmp_path, "probe", None, sweep_run=True)
    assert alone.kwargs["id"] == f"{alone_id}-probe" != "agentrun-probe"


def test_test_pass_metrics_reach_the_evaluated_stages_wandb_run(tmp_path, monkeypatch):
    from affectlab.engine.runner import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SWEEP_ID", "sw123")
    monkeypatch.setenv("WANDB_RUN_ID", "trial7")
    cfg = compose(["METHOD=baseline", "DATA=toyau", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                   "leaderboard.enabled=false", f"run_root={tmp_path}"])
    record = train(cfg)
    assert record["wandb_run_id"] == "trial7"
    (run,) = Path(record["run_dir"], "wandb").glob("offline-run-*-trial7")
    assert wait_for_offline_wandb_keys(run / "run-trial7.wandb", [b"test/f1_mean", b"test/f1_au01", b"val/f1_mean"]) == []
    assert not list(Path(record["run_dir"], "wandb").glob("offline-run-*-supervised"))


def test_log_image_reaches_only_wandb_loggers(tmp_path):
    class WandbLogger:  # matched by class name, as the real one is imported lazily
        def __init__(self):
            self.calls = []

        def log_image(self, key, images, step=None, **kwargs):
            for name, values in kwargs.items():  # Lightning's check: one entry per image
                assert len(values) == len(images), name
            self.calls.append({"key": key, "images": images, **kwargs})

    class CSVLogger:
        def log_image(self, **kwargs):  # pragma: no cover - must not be called
            raise AssertionError("a CSV logger got an image")

    wandb = WandbLogger()
    loggers_mod.log_image([CSVLogger(), wandb], "val/grid", tmp_path / "grid.png", caption="a | b")
    loggers_mod.log_image([wandb], "test/confusion_matrix", tmp_path / "cm.png")
    assert wandb.calls == [
        {"key": "val/grid", "images": [str(tmp_path / "grid.png")], "caption": ["a | b"]},
        {"key": "test/confusion_matrix", "images": [str(tmp_path / "cm.png")]},
    ]
