"""End to end with the real runner: `baseline` on the in-memory `toyau` folds, one epoch each.

Slow (one training process per fold / trial); the fake-runner tests in test_cv.py and
test_sweeps.py cover the same code paths fast.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

from affectlab.evaluation import CrossValidation
from affectlab.leaderboard import Store
from affectlab.leaderboard.render import render
from affectlab.sweeps import LocalSweep, load_sweep_file
from tests.leaderboard.test_render import parse_markdown_tables

pytestmark = pytest.mark.slow

TINY = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "logger.wandb.enabled=false"]


def test_cv_sweep_and_board_with_the_real_baseline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("PYTHONPATH", "src:.")
    url = f"sqlite:///{tmp_path / 'board.sqlite'}"
    overrides = ["METHOD=baseline", "DATA=toyau", f"run_root={tmp_path / 'runs'}", f"leaderboard.url={url}", *TINY]
    cv = CrossValidation(overrides, echo=False)
    summary = cv.run()
    assert [o.status for o in summary["outcomes"]] == ["finished"] * 3
    result = summary["aggregate"]
    per_fold = [json.loads(Path(o.run_dir, "results.json").read_text())["metrics"] for o in summary["outcomes"]]
    for name in per_fold[0]:
        assert result["metrics"][name] == pytest.approx(statistics.fmean(m[name] for m in per_fold))
    assert result["protocol"] == "toyau/3fold"

    config = load_sweep_file(Path("experiments/sweeps/baseline.yaml"))
    config["command"] = [*config["command"][:-1], "DATA=toyau", f"run_root={tmp_path / 'runs'}",
                         f"leaderboard.url={url}", *TINY, config["command"][-1]]
    sweep = LocalSweep(config, root=tmp_path / "sweeps", leaderboard_url=url)
    trials = sweep.run(count=3)
    assert [t.state for t in trials] == ["finished"] * 3, [t.message for t in trials]

    board = Store(url)
    records = board.records()
    assert sorted(r["kind"] for r in records) == ["cv"] + ["run"] * 6
    assert sum(r.get("sweep_id") == sweep.sweep_id for r in records) == 3
    out = render(records, tmp_path / "board", png=False)
    table = next(t for t in parse_markdown_tables(out["markdown"].read_text()) if t[0][0] == "rank")
    assert table[1][1:3] == ["baseline", "cv 3 folds"]
