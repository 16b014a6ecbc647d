"""contrastive_intensity end to end through the runner: both stages on a miniature DISFA release and a
folder of unlabelled face tracks written here (official layouts), 2 steps each."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from data_modules.disfa import DISFA_INTENSITY_AUS, PARTS

N_FRAMES = 16


def _frame(k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed * 1000 + k)
    img = np.full((40, 40, 3), 60 + 5 * k, np.uint8)
    img[10:30, 10:30] = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
    return img


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("contrastive_data")
    disfa = root / "DISFA"
    rng = np.random.default_rng(0)
    for i, s in enumerate(sorted(x for p in PARTS.values() for x in p)):
        path = disfa / "Videos_LeftCamera" / f"LeftVideoSN{s[2:]}_comp.avi"
        path.parent.mkdir(parents=True, exist_ok=True)
        wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (40, 40))
        for k in range(N_FRAMES):
            wr.write(_frame(k, i))
        wr.release()
        labels = disfa / "ActionUnit_Labels" / s
        labels.mkdir(parents=True, exist_ok=True)
        for au in DISFA_INTENSITY_AUS:
            values = rng.integers(0, 6, N_FRAMES)
            (labels / f"{s}_au{au}.txt").write_text("".join(f"{f + 1},{v}\n" for f, v in enumerate(values)))
    videos = root / "videos"
    for ident in range(4):
        for track in range(2):
            d = videos / f"id{ident:05d}" / f"clip{track}"
            d.mkdir(parents=True)
            for k in range(12):
                cv2.imwrite(str(d / f"{k:04d}.jpg"), _frame(k, 100 + ident * 2 + track))
    return root


def _cfg(root, tmp_path, *extra):
    from affectlab.config import compose

    return compose([
        "METHOD=contrastive_intensity", "TRAINER=cpu", f"run_root={tmp_path / 'runs'}",
        f"data.root={root / 'DISFA'}", f"method.pretrain.root={root / 'videos'}", "data.num_workers=0",
        "data.image_size=32", "data.sequence_length=8", "data.batch_size=4", "data.label_fraction=0.1",
        "method.model.hidden_dim=16", "method.model.backbone_kwargs.channels=[8,8,16,16]",
        "method.model.backbone_kwargs.stem_width=8", "method.pretrain.clip_length=6",
        "method.pretrain.temporal_jitter=2", "method.pretrain.horizon=2", "method.pretrain.min_context=2",
        "method.pretrain.batch_size=4", "method.pretrain.data.val_fraction=0.25",
        "method.pretrain.max_steps=2", "method.regress.max_steps=2", "trainer.limit_val_batches=2",
        "trainer.enable_progress_bar=false", "logger.wandb.enabled=false", "leaderboard.enabled=false",
        *extra,
    ])


@pytest.mark.parametrize("extra", [[], ["method.pretrain.source=videos", "method.model.grid=0"],
                                   ["method.pretrain.enabled=false", "method.regress.label_scope=global"]])
def test_both_stages_through_the_runner(mini_root, tmp_path, extra):
    from affectlab.engine.runner import train

    record = train(_cfg(mini_root, tmp_path, *extra))
    metrics = record["metrics"]
    assert record["method"] == "contrastive_intensity" and record["dataset"] == "disfa"
    assert {f"icc_au{a:02d}" for a in DISFA_INTENSITY_AUS} <= set(metrics)
    assert {"icc_mean", "mae_mean", "pcc_mean"} <= set(metrics)
    run_dir = record["run_dir"]
    stages = sorted(p.name for p in (tmp_path / "runs").rglob("done.json") for p in [p.parent])
    assert stages == (["regress"] if "method.pretrain.enabled=false" in extra else ["pretrain", "regress"])
    png = next((tmp_path / "runs").rglob("intensity_traces.png"))
    assert png.read_bytes()[:4] == b"\x89PNG" and str(png).startswith(run_dir)
    assert json.loads((png.parents[1] / "results.json").read_text())["metrics"] == metrics


def test_sequences_training_mask_is_sparse_seeded_and_evaluation_dense(mini_root):
    from data_modules import create_datamodule

    def train_masks(seed):
        dm = create_datamodule("disfa", root=str(mini_root / "DISFA"), task="sequences", sequence_length=8,
                               label_fraction=0.25, label_mask_seed=seed, num_workers=0)
        return [w["mask"].any(1) for w in dm.dataset("train").windows], dm

    first, dm = train_masks(0)
    again, _ = train_masks(0)
    other, _ = train_masks(1)
    per_sequence = [np.concatenate(first[i:i + 2]) for i in range(0, len(first), 2)]  # 16 frames = 2 windows
    assert all(m.sum() == 4 for m in per_sequence)  # round(0.25 * 16) labelled frames per sequence
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other))
    assert all(w["mask"].all() for w in dm.dataset("test").windows)
