"""`affectlab train METHOD=ial` through the runner on a miniature DFEW release (official layout):
two optimisation steps, the results record, the confusion-matrix artefact."""
import json

import cv2
import numpy as np
import pytest

from affectlab.config import compose
from affectlab.engine.evaluate import evaluate_run
from affectlab.engine.runner import train


def _write_dfew(root, n_clips=28, seed=0):
    """DFEW layout: ``Clip/clip_224x224/<id>/<id>_<k>.jpg`` and 1-based ``set_k.csv`` split files."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_clips) % 7
    for i, y in enumerate(labels):
        d = root / "Clip" / "clip_224x224" / f"{i + 1:05d}"
        d.mkdir(parents=True)
        for k in range(int(rng.integers(5, 9))):
            img = (rng.random((48, 48, 3)) * 60).astype(np.uint8)
            img[6 * y:6 * y + 6] += 150
            cv2.imwrite(str(d / f"{i + 1:05d}_{k + 1:05d}.jpg"), img)
    for fold in range(1, 6):
        test = set(range(fold - 1, n_clips, 5))
        for role, ids in (("train", [j for j in range(n_clips) if j not in test]), ("test", sorted(test))):
            p = root / "EmoLabel_DataSplit" / f"{role}(single-labeled)"
            p.mkdir(parents=True, exist_ok=True)
            (p / f"set_{fold}.csv").write_text("video_name,label\n" + "".join(f"{j + 1},{labels[j] + 1}\n" for j in ids))
    return labels


@pytest.mark.parametrize("select, on_test, selected_on, monitor", [
    ("last", False, "last_epoch", None), ("best", False, "val", "val/uar"),
    ("best", True, "test", "val/uar"), ("last", True, "last_epoch", None),   # select_on_test: val split = test split
])
def test_train_two_steps_through_runner(tmp_path, select, on_test, selected_on, monitor):
    labels = _write_dfew(tmp_path / "DFEW")
    cfg = compose([
        "METHOD=ial", f"method.select={select}", f"data.select_on_test={on_test}", f"data.root={tmp_path / 'DFEW'}", f"run_root={tmp_path / 'runs'}", "data.image_size=32",
        "data.clip_segments=4", "data.batch_size=4", "data.num_workers=0", "trainer.limit_train_batches=2",
        "trainer.max_epochs=1", "logger.wandb.enabled=false", "leaderboard.enabled=false",
        "trainer.enable_progress_bar=false", "data.train_transforms=[{name: RandomResizedCrop, size: [32, 32], scale: [0.85, 1.0]}]",
    ])
    record = train(cfg)
    assert record["method"] == "ial" and record["dataset"] == "dfew" and record["selected_on"] == selected_on
    assert {"uar", "war", "recall_happy", "recall_fear"} <= set(record["metrics"])
    assert not any(k.startswith(("uar_", "war_")) for k in record["metrics"])  # a real release has no bands
    run = tmp_path / "runs" / "ial" / "dfew"
    run_dir = next(run.iterdir())
    assert json.loads((run_dir / "stages" / "supervised" / "done.json").read_text())["monitor"] == monitor
    csv = (run_dir / "artifacts" / "confusion_matrix_fold1.csv").read_text().strip().splitlines()
    counts = np.array([[int(v) for v in line.split(",")[1:]] for line in csv[1:]])
    n_test = len(range(0, len(labels), 5))
    assert counts.sum() == n_test  # every fold-1 test clip counted once
    assert np.array_equal(counts.sum(1), np.bincount(labels[::5], minlength=7))  # rows are true classes
    war = np.trace(counts) / counts.sum()
    assert abs(record["metrics"]["war"] - war) < 1e-6
    # the untrained reference: one constant class scores UAR 1 / (classes in the test fold), WAR its share
    truth = np.bincount(labels[::5], minlength=7)
    chance = record["reference"]["chance"]
    assert chance["uar"] == pytest.approx(1 / np.count_nonzero(truth)) and chance["war"] == pytest.approx(truth.max() / n_test)
    assert (run_dir / "artifacts" / "confusion_matrix_fold1.png").stat().st_size > 1000
    assert evaluate_run(run_dir)["selected_on"] == selected_on   # re-evaluation records the same selection


def test_a_synthetic_release_adds_uar_and_war_per_intensity_band(tmp_path):
    """Beside a generator-written release (its `.complete-*` marker and `groundtruth/dfew.csv.gz`) the
    test pass also scores each intensity band of the generator."""
    import pandas as pd

    labels = _write_dfew(tmp_path / "DFEW")
    (tmp_path / ".complete-test").write_text("")
    (tmp_path / "groundtruth").mkdir()
    bands = ["none" if y == 2 else ("low", "medium", "high")[i % 3] for i, y in enumerate(labels)]  # 2 = Neutral
    pd.DataFrame({"sequence": [f"{i + 1:05d}" for i in range(len(labels))],
                  "path": [f"Clip/clip_224x224/{i + 1:05d}/{i + 1:05d}_00001.jpg" for i in range(len(labels))],
                  "band": [None if b == "none" else b for b in bands]}).to_csv(
        tmp_path / "groundtruth" / "dfew.csv.gz", index=False)
    cfg = compose([
        "METHOD=ial", f"data.root={tmp_path / 'DFEW'}", f"run_root={tmp_path / 'runs'}", "data.image_size=32",
        "data.clip_segments=4", "data.batch_size=4", "data.num_workers=0", "trainer.max_steps=1",
        "trainer.max_epochs=1", "logger.wandb.enabled=false", "leaderboard.enabled=false",
        "trainer.enable_progress_bar=false",
    ])
    metrics = train(cfg)["metrics"]
    for band in ("low", "medium", "high"):
        assert 0.0 <= metrics[f"uar_{band}"] <= 1.0 and 0.0 <= metrics[f"war_{band}"] <= 1.0
