"""Sweeps: files valid for wandb and for affectlab's config, macro expansion, offline engine runs."""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from affectlab.leaderboard import Store
from affectlab.sweeps import LocalSweep, Trial, expand_command, load_sweep_file, plain
from tests.leaderboard.conftest import FAKE_TRAIN

SWEEP_FILES = sorted((Path(__file__).resolve().parents[2] / "experiments" / "sweeps").glob("*.yaml"))
EXPECTED = {"baseline", "tcae", "ial", "region_relation", "contrastive_intensity"}


def test_one_sweep_file_per_method_and_all_valid():
    assert {p.stem for p in SWEEP_FILES} == EXPECTED
    for path in SWEEP_FILES:
        config = load_sweep_file(path)  # sweeps.SweepConfig (wandb's JSON schema)
        assert "${args_no_hyphens}" in config["command"] and f"METHOD={path.stem}" in config["command"]
        assert config["metric"]["name"].startswith("val/")


def test_schema_violation_is_reported_with_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: random\nmetric: {name: val/x, goal: maximise}\nparameters: {a: {values: [1]}}\n")
    with pytest.raises(ValueError, match="bad.yaml: not a valid wandb sweep"):
        load_sweep_file(bad)


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.stem)
def test_sweep_parameters_are_valid_config_keys(path):
    """A suggested trial's overrides compose (affectlab.config raises ConfigError on unknown keys)."""
    from affectlab.config import compose
    from affectlab.leaderboard.records import MAIN_METRIC
    from affectlab.methods import METHODS

    if path.stem not in METHODS:
        pytest.skip(f"method {path.stem!r} is not registered on this branch yet: its keys cannot be checked")
    config = load_sweep_file(path)
    params = LocalSweep(config, root="/tmp/unused-sweep-root", record=False).suggest()
    argv = expand_command(config["command"], params, env={"WANDB_SWEEP_ID": "local-test"})
    overrides = argv[argv.index("train") + 1:]
    cfg = compose(overrides)
    for key, value in params.items():
        assert OmegaConf.select(cfg, key) == value
    assert cfg.sweep_id == "local-test"
    assert config["metric"]["name"] == "val/" + MAIN_METRIC[METHODS.get(path.stem).task]


def test_expand_command_matches_the_agent_and_casts_values(tmp_path):
    params = {"method.lr": np.float64(0.00123), "data.batch_size": np.int64(32), "x.flag": np.bool_(True),
              "x.none": None, "x.list": [1, 2], "x.name": "adamw"}
    argv = expand_command(["${env}", "${interpreter}", "${program}", "K=${envvar:MYVAR}", "${args_no_hyphens}"],
                          params, program="train.py", env={"MYVAR": "v"})
    assert argv[1] == sys.executable and argv[2:4] == ["train.py", "K=v"]
    dotlist = argv[4:]
    assert dotlist == ["method.lr=0.00123", "data.batch_size=32", "x.flag=true", "x.none=null",
                       "x.list=[1, 2]", "x.name=adamw"]
    parsed = OmegaConf.to_container(OmegaConf.from_dotlist(dotlist))
    assert parsed == {"method": {"lr": 0.00123}, "data": {"batch_size": 32},
                      "x": {"flag": True, "none": None, "list": [1, 2], "name": "adamw"}}
    assert expand_command(["${args}"], {"a": 1}) == ["--a=1"]
    assert type(plain(np.float32(0.5))) is float and OmegaConf.create(plain({"lr": np.float64(0.1)}))


def _sweep_config(tmp_path, method="random", parameters=None):
    return {
        "method": method, "metric": {"name": "val/f1_mean", "goal": "maximize"},
        "command": ["${env}", "${interpreter}", str(FAKE_TRAIN), "METHOD=fake", "DATA=disfa",
                    f"run_root={tmp_path / 'runs'}", "sweep_id=${envvar:WANDB_SWEEP_ID}",
                    f"leaderboard.url=sqlite:///{tmp_path / 'board.sqlite'}", "${args_no_hyphens}"],
        "parameters": parameters or {
            "method.lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1},
            "method.dropout": {"values": [None, 0.1]},
        },
    }


def test_offline_random_sweep_three_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'board.sqlite'}"
    sweep = LocalSweep(_sweep_config(tmp_path), root=tmp_path / "sweeps", leaderboard_url=url)
    trials = sweep.run(count=3)
    assert [t.state for t in trials] == ["finished"] * 3, [t.message for t in trials]
    for trial in trials:
        record = json.loads((Path(trial.run_dir) / "results.json").read_text())
        assert float(record["config"]["method.lr"]) == trial.params["method.lr"]
        assert record["config"]["method.dropout"] == ("null" if trial.params["method.dropout"] is None else "0.1")
        assert trial.metric == pytest.approx(record["metrics"]["f1_mean"])  # last val/f1_mean of the history
        assert len(trial.history) == 3
    board = Store(url)
    assert {r["sweep_id"] for r in board.records()} == {sweep.sweep_id}
    assert [t["state"] for t in board.trials(sweep.sweep_id)] == ["finished"] * 3
    assert sweep.best().metric == max(t.metric for t in trials)
    saved = json.loads((sweep.dir / "sweep.json").read_text())
    assert len(saved["trials"]) == 3
    resumed = LocalSweep(_sweep_config(tmp_path), root=tmp_path / "sweeps", sweep_id=sweep.sweep_id)
    assert len(resumed.trials) == 3


def test_crashed_trial_is_recorded_and_grid_continues(tmp_path):
    params = {"method.crash": {"values": [True, False]}, "method.lr": {"value": 0.01}}
    sweep = LocalSweep(_sweep_config(tmp_path, "grid", params), root=tmp_path / "sweeps",
                       leaderboard_url=f"sqlite:///{tmp_path / 'board.sqlite'}")
    trials = sweep.run()  # a grid runs until exhausted
    assert [(t.params["method.crash"], t.state) for t in trials] == [(True, "failed"), (False, "finished")]
    assert "simulated crash" in Path(trials[0].log).read_text()
    assert sweep.suggest() is None
    assert [t["state"] for t in Store(f"sqlite:///{tmp_path / 'board.sqlite'}").trials()] == ["failed", "finished"]


def test_bayes_suggestion_uses_finished_trials_and_is_builtin(tmp_path):
    config = _sweep_config(tmp_path, "bayes", {"method.lr": {"distribution": "uniform", "min": 0.0, "max": 1.0}})
    sweep = LocalSweep(config, root=tmp_path / "sweeps", record=False)
    for i, lr in enumerate((0.1, 0.3, 0.5, 0.7, 0.9)):
        sweep.trials.append(Trial(f"t{i}", {"method.lr": lr}, state="finished", metric=-(lr - 0.3) ** 2,
                                  history=[{"val/f1_mean": -(lr - 0.3) ** 2}]))
    sweep.trials.append(Trial("t-failed", {"method.lr": 0.2}, state="failed"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = sweep.suggest()
    assert type(params["method.lr"]) is float and 0.0 <= params["method.lr"] <= 1.0
    OmegaConf.create(params)  # numpy floats would raise UnsupportedValueType here


def test_online_dispatch_creates_the_sweep_and_runs_an_agent(tmp_path, monkeypatch, capsys):
    """Online (credentials, no offline mode): the unchanged file goes to wandb.sweep, then wandb.agent
    runs `--count` trials; `--local` keeps the search on this machine even when online."""
    import argparse

    import wandb

    from affectlab.commands import sweep as sweep_cmd

    calls = []
    monkeypatch.setattr(wandb, "sweep", lambda config, project=None, entity=None: calls.append(
        ("sweep", config, project, entity)) or "sw42")
    monkeypatch.setattr(wandb, "agent", lambda sweep_id, count=None, project=None, entity=None: calls.append(
        ("agent", sweep_id, count, project)))
    monkeypatch.setattr("affectlab.sweeps.wandb_online", lambda: True)
    parser = argparse.ArgumentParser()
    sweep_cmd.add_arguments(parser)
    path = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "baseline.yaml"
    assert sweep_cmd.run(parser.parse_args([str(path), "--count", "2", "--project", "p"])) == 0
    assert calls == [("sweep", load_sweep_file(path), "p", None), ("agent", "sw42", 2, "p")]
    assert "wandb sweep sw42 done" in capsys.readouterr().out

    calls.clear()
    config = _sweep_config(tmp_path)
    local_file = tmp_path / "local.yaml"
    local_file.write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    args = parser.parse_args([str(local_file), "--count", "1", "--local", "--root", str(tmp_path / "sweeps")])
    assert sweep_cmd.run(args) == 0 and calls == []


def test_sweep_command_takes_train_overrides_prints_its_id_first_and_progress(tmp_path, capsys):
    """`affectlab sweep FILE --local --count N KEY=VALUE ...` (what `make sweep ARGS=...` runs): every
    trial gets the overrides, the sweep id comes before the first trial, and each trial start/end is shown."""
    from affectlab.cli import main

    config = _sweep_config(tmp_path, "grid", {"method.lr": {"values": [0.01, 0.02]},
                                              "method.crash": {"values": [False]}})
    config["command"].remove("DATA=disfa")
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(config))
    url = f"sqlite:///{tmp_path / 'board.sqlite'}"
    argv = ["sweep", str(path), "--local", "--count", "2", "--root", str(tmp_path / "sweeps"),
            "--leaderboard-url", url, "DATA=bp4d", "method.dropout=0.1"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    sweep_id = lines[0].split()[1]
    assert lines[0].startswith(f"sweep {sweep_id} (new; continue it with --resume {sweep_id})")
    assert [line.split()[:3] for line in lines[1:5]] == [
        ["[1/2]", "trial-001", "started"], ["[1/2]", "trial-001", "finished"],
        ["[2/2]", "trial-002", "started"], ["[2/2]", "trial-002", "finished"]]
    records = Store(url).records()
    assert {(r["dataset"], r["config"]["method.dropout"]) for r in records} == {("bp4d", "0.1")}
    assert {r["sweep_id"] for r in records} == {sweep_id}


def test_failed_trial_message_carries_the_error_line(tmp_path):
    sweep = LocalSweep(_sweep_config(tmp_path, "grid", {"method.crash": {"values": [True]}}),
                       root=tmp_path / "sweeps", record=False)
    (trial,) = sweep.run()
    assert trial.state == "failed" and "(simulated crash)" in trial.message
