"""wandb: offline without credentials, config and directory wiring, never fatal."""
from __future__ import annotations

import pytest

from affectlab.config import compose
from affectlab.engine import loggers as loggers_mod
from affectlab.engine.loggers import build_loggers, resolve_wandb_mode


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
