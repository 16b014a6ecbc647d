"""End-to-end: `train METHOD=tcae` on the tiny synthetic copy (pretrain on videos pairs → BP4D probe)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectlab.config import compose
from affectlab.engine.runner import train
from affectlab.schema import ConfigError

synth = pytest.importorskip("affectlab.synth")  # the synth_root fixture needs the generator
if not hasattr(synth, "generate"):
    pytest.skip("affectlab.synth.generate not available yet", allow_module_level=True)


def overrides(synth_root, tmp_path, *extra):
    return [
        "METHOD=tcae", f"data.root={synth_root / 'BP4D'}", f"method.pretrain_root={synth_root / 'videos'}",
        f"run_root={tmp_path}", "logger.wandb.enabled=false", "leaderboard.enabled=false",
        "trainer.enable_progress_bar=false", "data.num_workers=0", "data.limit_items=64",
        "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "method.pretrain_batch_size=2",
        "method.pretrain_eval_batch_size=2", "method.grid_rows=2", "data.batch_size=16",
        "method.pretrain_val_every_n_epochs=1", *extra,
    ]


def test_two_stage_pipeline_records_per_au_f1_and_the_probe_runs_alone(synth_root, tmp_path):
    # the CPU default's step-based pretraining (2 steps, validation and online probe at step 2)
    cfg = compose(overrides(synth_root, tmp_path, "method.pretrain_epochs=-1", "method.pretrain_max_steps=2",
                            "method.pretrain_val_every_n_steps=2", "method.probe_epochs=1"))
    record = train(cfg)
    names = ["au01", "au02", "au04", "au06", "au07", "au10", "au12", "au14", "au15", "au17", "au23", "au24"]
    assert set(record["metrics"]) >= {f"f1_{a}" for a in names} | {"f1_mean"}
    run = Path(record["run_dir"])
    assert json.loads((run / "results.json").read_text())["method"] == "tcae"
    assert list((run / "artifacts").glob("tcae_val_epoch*.png"))
    curve = json.loads((run / "artifacts" / "online_probe_pretrain.json").read_text())["curve"]
    assert [point["step"] for point in curve] == [2] and 0.0 <= curve[0]["f1"] <= 1.0
    assert record["training"]["stages"]["pretrain"]["steps"] == 2
    ckpt = json.loads((run / "stages" / "pretrain" / "done.json").read_text())["checkpoint"]

    alone = train(compose(overrides(synth_root, tmp_path / "alone", f"method.pretrained_checkpoint={ckpt}",
                                    "method.probe_epochs=1")))
    alone_run = Path(alone["run_dir"])
    assert not (alone_run / "stages" / "pretrain").exists()
    assert "f1_mean" in alone["metrics"]



def test_pretraining_on_bp4d_frames_draws_the_configured_pairs_per_track(synth_root, tmp_path):
    from affectlab.methods.tcae import pretrain_datamodule

    def pairs(n: int):
        cfg = compose(overrides(synth_root, tmp_path, "method.pretrain_data=bp4d", "method.pretrain_root=null",
                                f"method.pretrain_pairs_per_track={n}"))
        return pretrain_datamodule(cfg).dataset("train")

    one, four = pairs(1), pairs(4)
    assert len(four) == 4 * len(one) > 0
    assert "au" not in four[0]  # frames without labels
    with pytest.raises(ConfigError, match="method.pretrain_pairs_per_track must be >= 1"):
        pairs(0)


def test_random_init_control_gets_batchnorm_statistics_from_training_frames(synth_root, tmp_path):
    """`pretrain_epochs=0` (the evidence control): the untrained encoder's BN running statistics are
    estimated on training batches before the probe instead of staying at their 0 / 1 start."""
    from affectlab.methods import METHODS
    from affectlab.methods.base import RunContext
    from torch import nn

    batches = 2
    cfg = compose(overrides(synth_root, tmp_path, "method.pretrain_epochs=0",
                            f"method.random_init_bn_batches={batches}"))
    stages = METHODS.get("tcae")().stages(cfg, RunContext(run_dir=tmp_path, cfg=cfg))
    probe = next(stages)
    assert probe.name == "probe"
    norms = [m for m in probe.module.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.running_mean.abs().sum() > 0 for m in norms)
    assert all(int(m.num_batches_tracked) == batches for m in norms)
