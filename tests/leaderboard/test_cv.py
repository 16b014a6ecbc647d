"""Cross-validation: every fold, skip finished folds, one fold per process, aggregate = folds."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from affectlab.evaluation import CrossValidation, aggregate_metrics, num_folds
from affectlab.leaderboard import Store
from affectlab.synth import GENERATOR_VERSION

REPO = Path(__file__).resolve().parents[2]


def _cv(tmp_path, cmd, **kw):
    url = f"sqlite:///{tmp_path / 'board.sqlite'}"
    overrides = ["METHOD=fake", "DATA=disfa", f"run_root={tmp_path / 'runs'}", f"leaderboard.url={url}"]
    return CrossValidation(overrides, train_command=cmd, echo=False, **kw), url


def test_protocol_fold_counts():
    assert [num_folds(d) for d in ("bp4d", "disfa", "dfew", "ferv39k")] == [3, 3, 5, 1]


def test_aggregate_matches_hand_computed_mean_and_std():
    mean, std, n = aggregate_metrics({1: {"a": 0.1, "b": 1.0}, 2: {"a": 0.3, "b": float("nan")}, 3: {"a": 0.5}})
    assert mean["a"] == pytest.approx(0.3) and std["a"] == pytest.approx(0.2)  # sample std of .1 .3 .5
    assert mean["b"] == 1.0 and "b" not in std and n == {"a": 3, "b": 1}


def test_cv_runs_all_folds_and_aggregates(tmp_path, fake_train_command):
    cv, url = _cv(tmp_path, fake_train_command)
    summary = cv.run()
    assert [o.status for o in summary["outcomes"]] == ["finished"] * 3
    result = json.loads((cv.cv_dir / "cv_results.json").read_text())
    folds = {k: json.loads((cv.cv_dir / f"fold{k}.json").read_text())["record"] for k in (1, 2, 3)}
    for name in folds[1]["metrics"]:
        values = [folds[k]["metrics"][name] for k in (1, 2, 3)]
        assert result["metrics"][name] == pytest.approx(statistics.fmean(values))
        assert result["metrics_std"][name] == pytest.approx(statistics.stdev(values))
    assert result["folds"] == [1, 2, 3] and result["protocol"] == "disfa/3fold" and result["kind"] == "cv"
    md = (cv.cv_dir / "cv_results.md").read_text()
    assert "| f1_mean |" in md and "± " in md
    records = Store(url).records()  # 3 fold records from the runs + 1 CV record
    assert sorted(r["kind"] for r in records) == ["cv", "run", "run", "run"]
    # a rerun trains nothing and adds no duplicate CV record
    again = cv.run()
    assert [o.status for o in again["outcomes"]] == ["skipped"] * 3
    assert len(Store(url).records()) == 4


def test_failed_fold_is_retried_and_blocks_aggregation(tmp_path, fake_train_command):
    cv, _ = _cv(tmp_path, fake_train_command, env={"FAKE_TRAIN_FAIL_FOLD": "2"})
    summary = cv.run()
    assert [o.status for o in summary["outcomes"]] == ["finished", "failed", "finished"]
    assert summary["aggregate"] is None and "simulated failure" in (cv.cv_dir / "fold2.log").read_text()
    with pytest.raises(RuntimeError, match=r"folds \[2\]"):
        cv.aggregate()
    cv.env = {}
    assert [o.status for o in cv.run()["outcomes"]] == ["skipped", "finished", "skipped"]
    assert (cv.cv_dir / "cv_results.json").is_file()


def test_one_fold_per_call(tmp_path, fake_train_command):
    """`--fold k` runs only fold k; the call that completes the protocol aggregates."""
    for k in (3, 1):
        cv, _ = _cv(tmp_path, fake_train_command)
        assert cv.run([k])["aggregate"] is None
    cv, _ = _cv(tmp_path, fake_train_command)
    assert cv.run([2])["aggregate"]["folds"] == [1, 2, 3]


@pytest.mark.slow
def test_one_fold_per_process_via_cli(tmp_path, fake_train_command):
    """Three `affectlab cv --fold k` processes at once, like an array job; the last one aggregates."""
    url = f"sqlite:///{tmp_path / 'board.sqlite'}"
    code = ("import sys; sys.argv=['cv']+sys.argv[1:]; import argparse; from affectlab.commands import cv; "
            "p=argparse.ArgumentParser(); cv.add_arguments(p); sys.exit(cv.run(p.parse_args(sys.argv[1:])))")
    base = ["METHOD=fake", "DATA=disfa", f"run_root={tmp_path / 'runs'}", f"leaderboard.url={url}",
            "--train-command", " ".join(fake_train_command)]
    procs = [subprocess.Popen([sys.executable, "-c", code, *base, "--fold", str(k)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for k in (1, 2, 3)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    cv, _ = _cv(tmp_path, fake_train_command)
    assert (cv.cv_dir / "cv_results.json").is_file()
    kinds = sorted(r["kind"] for r in Store(url).records())
    assert kinds == ["cv", "run", "run", "run"]


def test_fold_override_is_refused(tmp_path, fake_train_command):
    with pytest.raises(ValueError, match="--fold"):
        CrossValidation(["METHOD=fake", "DATA=disfa", "data.fold=2"], train_command=fake_train_command)


@pytest.mark.slow
def test_cv_over_the_synthetic_disfa_folds_with_the_real_runner(tmp_path, synth_root, monkeypatch):
    """`affectlab train` itself on each fold of the tiny synthetic DISFA (a few batches per fold):
    three subject-exclusive folds, aggregate = mean/std of the fold records, all in the store.
    Slow (three real training processes, ~50 s); in `make test` the orchestration and aggregation are
    covered by ``test_cv_runs_all_folds_and_aggregates`` and the record of a real run by tests/foundation."""
    monkeypatch.setenv("PYTHONPATH", f"{REPO / 'src'}:{REPO}")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    url = f"sqlite:///{tmp_path / 'board.sqlite'}"
    overrides = ["METHOD=baseline", "DATA=disfa", f"data.root={synth_root / 'DISFA'}", "data.image_size=32",
                 "data.num_workers=0", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
                 "trainer.limit_val_batches=2", "trainer.enable_progress_bar=false", "logger.wandb.enabled=false",
                 f"run_root={tmp_path / 'runs'}", f"leaderboard.url={url}"]
    summary = CrossValidation(overrides, echo=False).run()
    assert [o.status for o in summary["outcomes"]] == ["finished"] * 3
    folds = [json.loads((Path(o.run_dir) / "results.json").read_text()) for o in summary["outcomes"]]
    assert [f["fold"] for f in folds] == [1, 2, 3] and {f["protocol"] for f in folds} == {"disfa/3fold"}
    result = summary["aggregate"]
    for name in folds[0]["metrics"]:
        values = [f["metrics"][name] for f in folds]
        assert result["metrics"][name] == pytest.approx(statistics.fmean(values))
        assert result["metrics_std"][name] == pytest.approx(statistics.stdev(values))
    assert result["data_source"] == f"synthetic-v{GENERATOR_VERSION}-tiny-seed0"  # the release folder's own marker
    assert sorted(r["kind"] for r in Store(url).records()) == ["cv", "run", "run", "run"]
