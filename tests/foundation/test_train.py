"""End-to-end training through the runner: outputs, provenance, learning, resume, evaluation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from affectlab.config import compose
from affectlab.engine.runner import train
from tests.foundation.helpers import TINY, results_of, run_cli


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cfg = compose([*TINY, f"run_root={root}"])
    record = train(cfg)
    return Path(record["run_dir"]), record


def test_run_directory_holds_config_provenance_checkpoints_and_results(finished_run):
    run_dir, record = finished_run
    for name in ("config.yaml", "run.json", "results.json", "stages/supervised/last.ckpt",
                 "stages/supervised/done.json", "logs/supervised/metrics.csv"):
        assert (run_dir / name).exists(), name
    assert list((run_dir / "stages/supervised").glob("best-*.ckpt"))
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished" and info["seed"] == 0 and "torch" in info["environment"]
    assert "git_commit" in info and "git_dirty" in info
    assert results_of(run_dir) == json.loads(json.dumps(record))
    for key in ("method", "dataset", "task", "protocol", "fold", "selected_on", "metrics", "seed",
                "git_commit", "config_hash", "config", "data_source", "test_pass"):
        assert key in record
    assert record["selected_on"] == "val" and record["test_pass"] == "single_process"
    assert set(record["metrics"]) == {"f1_au01", "f1_au02", "f1_au03", "f1_au04", "f1_mean"}
    for plot in ("au_f1.png", "au_pr_curves.png"):  # the baseline's test-pass figures
        assert (run_dir / "artifacts" / plot).stat().st_size > 5_000, plot


def test_baseline_learns_beyond_the_all_positive_predictor(finished_run):
    _, record = finished_run
    from data_modules import create_datamodule

    dm = create_datamodule("toyau")
    test = dm.manifest("test")[dm.au_names].to_numpy()
    rate = torch.tensor(test.mean(0))
    all_positive_f1 = (2 * rate / (1 + rate)).mean().item()
    assert record["metrics"]["f1_mean"] > all_positive_f1 + 0.1


def test_cli_train_prints_table_and_run_dir_last(tmp_path):
    result = run_cli(["train", *TINY, "trainer.max_epochs=1", f"run_root={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    run_dir = Path(lines[-1])
    assert (run_dir / "results.json").exists()
    assert any("f1_mean" in line for line in lines) and any(line.strip().startswith("AU01") for line in lines)


def test_resume_auto_after_a_crash_reaches_the_uninterrupted_metrics(tmp_path):
    common = ["train", *TINY, "trainer.max_epochs=3", "data.batch_size=8"]
    straight = run_cli([*common, f"run_root={tmp_path / 'a'}"], cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]
    crashed = run_cli([*common, f"run_root={tmp_path / 'b'}"], cwd=tmp_path,
                      env={"AFFECTLAB_FAULT_AFTER_EPOCHS": "2"})
    assert crashed.returncode == 17, crashed.stderr[-3000:]
    run_dirs = list((tmp_path / "b/baseline/toyau").iterdir())
    assert len(run_dirs) == 1 and not (run_dirs[0] / "results.json").exists()
    resumed = run_cli([*common, f"run_root={tmp_path / 'b'}", "resume=auto"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming stage 'supervised'" in resumed.stdout
    assert Path(resumed.stdout.strip().splitlines()[-1]) == run_dirs[0]
    a = results_of(Path(straight.stdout.strip().splitlines()[-1]))["metrics"]
    b = results_of(run_dirs[0])["metrics"]
    assert a == pytest.approx(b, abs=1e-6)
    assert json.loads((run_dirs[0] / "run.json").read_text())["resumes"] == 1


def test_affectlab_test_re_evaluates_the_selected_checkpoint(finished_run, tmp_path):
    run_dir, record = finished_run
    result = run_cli(["test", str(run_dir)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(Path(result.stdout.strip().splitlines()[-1]).read_text())
    assert out["metrics"] == pytest.approx(record["metrics"], abs=1e-6)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "METHOD=nope"], "Valid methods: baseline"),
        (["train", "METHOD=baseline", "DATA=nope"], "Valid datasets:"),
        (["train", "METHOD=baseline", "TRAINER=nope"], "Valid presets: cpu"),
        (["train", "METHOD=baseline", "trainer.max_epoch=1"], "Valid keys at trainer"),
        (["config", "METHOD=baseline", "seed=abc"], "bad value for 'seed'"),
        (["test", "/nonexistent/run"], "config.yaml not found"),
        (["train", "METHOD=baseline", "DATA=bp4d", "data.root=/nonexistent/BP4D"], "/nonexistent/BP4D"),
        (["train", "METHOD=baseline", "DATA=bp4d", "data.root=/nonexistent/BP4D"], "AUCoding/AU_OCC"),
    ],
)
def test_cli_failures_exit_non_zero_with_a_useful_message(args, expected, capsys):
    from affectlab.cli import main

    assert main(args) == 2
    assert expected in capsys.readouterr().err


def test_cli_list_and_config_succeed(capsys):
    from affectlab.cli import main

    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "baseline" in listed and "ddp_cpu" in listed and "valid combinations" in listed
    assert main(["config", "METHOD=baseline", "data.fold=2"]) == 0
    assert "fold: 2" in capsys.readouterr().out
