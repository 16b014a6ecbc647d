"""A user's mistake on the command line ends in one clear line naming the bad input, never a traceback.

Each case runs the real entry point (``affectlab.cli.main``) in-process: an exception escaping it
would fail the test, so exit code 2 plus the expected words in stderr is the whole contract.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectlab.cli import main

REPO = Path(__file__).resolve().parents[2]
SWEEP = str(REPO / "experiments" / "sweeps" / "baseline.yaml")
QUIET = ["logger.wandb.enabled=false", "leaderboard.enabled=false", "trainer.enable_progress_bar=false"]


def fails(capsys, argv: list[str], *expected: str) -> str:
    """Run ``affectlab argv``; assert exit code 2, no traceback, and every ``expected`` text in stderr."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.startswith(f"affectlab {argv[0]}: error: "), err
    for text in expected:
        assert text in err, (text, err)
    return err


# --- item 6: method × dataset pairs that cannot work are refused before any work -------------------
@pytest.mark.parametrize("method, data, valid", [
    ("baseline", "dfew", "bp4d, disfa, toyau"),
    ("ial", "toyau", "dfew, ferv39k"),
    ("contrastive_intensity", "videos", "bp4d, disfa"),
])
def test_invalid_method_dataset_pair_lists_the_valid_datasets(capsys, tmp_path, method, data, valid):
    runs = tmp_path / "runs"
    fails(capsys, ["train", f"METHOD={method}", f"DATA={data}", f"run_root={runs}", *QUIET],
          f"method {method!r}", f"dataset {data!r}", f"Valid datasets for {method}: {valid}")
    assert not runs.exists()  # refused before a run directory was made


# --- item 7: config values Lightning, numpy or the DataLoader would only reject mid-run -------------------------------------
@pytest.mark.parametrize("override, expected", [
    ("trainer.precision=17", "'trainer.precision': '17'"),
    ("trainer.limit_train_batches=-3", "'trainer.limit_train_batches': -3"),
    ("trainer.limit_val_batches=1.5", "'trainer.limit_val_batches': 1.5"),
    ("trainer.accelerator=gpux", "'trainer.accelerator': 'gpux'"),
    ("trainer.lr_scaling=cubic", "'trainer.lr_scaling': 'cubic'"),
    ("trainer.accumulate_grad_batches=0", "'trainer.accumulate_grad_batches': 0"),
    ("trainer.max_epochs=0", "'trainer.max_epochs': 0"),
    ("trainer.max_steps=0", "'trainer.max_steps': 0"),
    ("seed=-1", "'seed': -1"),
    ("data.batch_size=0", "'data.batch_size': 0"),
    ("data.num_workers=-1", "'data.num_workers': -1"),
    ("data.val_fraction=1.2", "'data.val_fraction': 1.2"),
    ("method.lr=-1", "'method.lr': -1"),
    ("method.weight_decay=-0.1", "'method.weight_decay': -0.1"),
])
def test_trainer_values_are_checked_when_the_config_is_composed(capsys, tmp_path, override, expected):
    fails(capsys, ["train", "METHOD=baseline", "DATA=toyau", override, f"run_root={tmp_path}", *QUIET], expected)


@pytest.mark.parametrize("overrides, expected", [
    (["METHOD=tcae", "method.pretrain_epochs=0", "method.probe_epochs=0"], "stage 'probe' would train nothing"),
    (["METHOD=baseline", "trainer.max_epochs=-1"], "stage 'supervised' has no end"),
    (["METHOD=region_relation"], "no centre for AU03"),   # toyau's blob AUs have no place on a face
])
def test_a_stage_that_cannot_run_is_refused_before_training(capsys, tmp_path, overrides, expected):
    fails(capsys, ["train", *overrides, "DATA=toyau", f"run_root={tmp_path}", *QUIET], expected)


# values that only a network or datamodule constructor checks: named on one line, before any training
@pytest.mark.parametrize("overrides, expected", [
    (["METHOD=contrastive_intensity", "DATA=disfa", "method.model.grid=-1"], "method.model: grid must be 0"),
    (["METHOD=contrastive_intensity", "DATA=disfa", "method.model.feature_norm=layer"],
     "method.model: unknown feature_norm 'layer'"),
    (["METHOD=contrastive_intensity", "DATA=disfa", "method.regress.output=relu"],
     "method.regress.output must be one of ('sigmoid', 'linear'), got 'relu'"),
    (["METHOD=contrastive_intensity", "DATA=disfa", "method.pretrain.objective=predictive",
      "method.pretrain.min_context=12"], "method.pretrain: a clip of 12 frames cannot hold 12 context frame(s)"),
    (["METHOD=region_relation", "DATA=bp4d", "method.feature_stage=9"], "method: feature stage must be in 1..2"),
    (["METHOD=region_relation", "DATA=bp4d", "method.backbone=resnet18"], "method: backbone must be a timm Swin"),
    (["METHOD=tcae", "DATA=bp4d", "method.pretrain_test_fraction=1.5"],
     "method.pretrain_test_fraction must lie in [0, 1), got 1.5"),
    (["METHOD=baseline", "DATA=bp4d", "data.landmark_indexing=matlab"], "data.landmark_indexing must be one of"),
    (["METHOD=baseline", "DATA=disfa", "data.landmark_index_base=7"], "data.landmark_index_base must be 0, 1 or null"),
    (["METHOD=ial", "DATA=dfew", "data.filters=pil", "data.normalize=unit"], "data.normalize must be one of"),
    (["METHOD=contrastive_intensity", "DATA=disfa", "method.pretrain.clip_length=0"],
     "method.pretrain.clip_length must be >= 1, got 0"),
    (["METHOD=contrastive_intensity", "DATA=disfa", "method.pretrain.temporal_weight=-1"],
     "method.pretrain.temporal_weight must be >= 0, got -1"),
    (["METHOD=contrastive_intensity", "DATA=disfa", "method.pretrain.objective=frame",
      "method.pretrain.temporal_weight=0.5"], "objective=frame has no such term"),
    (["METHOD=tcae", "DATA=bp4d", "method.pretrain_pair_gap_min=5", "method.pretrain_pair_gap_max=2"],
     "method.pretrain_pair_gap_min / _max must satisfy 1 <= min <= max, got 5 / 2"),
    (["METHOD=baseline", "DATA=disfa", "data.occurrence_threshold=9"],
     "data.occurrence_threshold must be an intensity in 1…5"),
    (["METHOD=ial", "DATA=dfew", "data.clip_segments=1", "data.clip_frames_per_segment=1"],
     "ial: the dynamic branch needs frame differences: num_frames must be ≥ 2, got 1"),
])
def test_values_checked_by_a_constructor_fail_before_training(capsys, tmp_path, synth_root, overrides, expected):
    release = {"bp4d": "BP4D", "disfa": "DISFA", "dfew": "DFEW"}[overrides[1].split("=")[1]]
    extra = f"method.pretrain_root={synth_root / 'videos'}" if overrides[0] == "METHOD=tcae" else "data.num_workers=0"
    runs = tmp_path / "runs"
    fails(capsys, ["train", *overrides, f"data.root={synth_root / release}", extra, f"run_root={runs}", *QUIET],
          expected)
    assert not list(runs.rglob("*.ckpt"))   # refused before anything trained


def test_fold_outside_the_protocol(capsys, tmp_path):
    fails(capsys, ["train", "METHOD=baseline", "DATA=toyau", "data.fold=7", f"run_root={tmp_path}", *QUIET],
          "'data.fold'", "toyau has folds 1…3, got 7")
    fails(capsys, ["data", "summary", "DATA=toyau", "fold=0"], "toyau has folds 1…3, got 0")


@pytest.mark.parametrize("argv, expected", [
    (["config", "method=baseline"], "write METHOD=baseline"),
    (["config", "Data=bp4d"], "write DATA=bp4d"),
    (["config", "method.name=ial"], "method.name is set by the selector: write METHOD=ial"),
    (["config", "METHOD=baseline", "data.name=disfa"], "write DATA=disfa"),
    (["config", "SEED=1"], "unknown selector 'SEED'"),
    (["config", "METHOD=basline"], "Did you mean 'baseline'?"),
    (["config", "EXP=no_such_exp"], "experiment 'no_such_exp' not found"),
    (["config", "METHOD=baseline", "trainer.max_epochs=abc"], "'trainer.max_epochs'"),
    (["config", "METHOD=baseline", "method.lrr=0.1"], "unknown config key 'method.lrr'"),
    (["config", "METHOD=baseline", "logger.wandb=3"], "'logger.wandb' is a section of keys, not a value"),
    (["config", "METHOD=baseline", "logger.wandb.tags=foo"], "'logger.wandb.tags': expected a list, e.g. [a, b]"),
])
def test_config_selector_and_key_mistakes(capsys, argv, expected):
    fails(capsys, argv, expected)


def test_test_command_refuses_selectors(capsys, tmp_path):
    fails(capsys, ["test", str(tmp_path), "METHOD=ial"], "METHOD=ial", "only dotted overrides")
    fails(capsys, ["test", str(tmp_path / "nowhere")], "config.yaml not found")


def test_data_summary_of_toyau_and_bad_words(capsys):
    assert main(["data", "summary", "DATA=toyau"]) == 0
    out = capsys.readouterr().out
    assert "dataset toyau" in out and "train positive rate: AU01" in out
    fails(capsys, ["data", "summary", "DATA=toyau", "subjects"], "expected KEY=VALUE, got 'subjects'")
    fails(capsys, ["data", "summary", "DATA=affwild"], "unknown dataset 'affwild'")


def test_synth_unknown_dataset(capsys, tmp_path):
    fails(capsys, ["synth", "--datasets", "bp4d,affwild", "--out", str(tmp_path)], "'affwild'", "bp4d")


def test_synth_check_mistakes(capsys, tmp_path):
    fails(capsys, ["synth", "check", "--out", str(tmp_path)], str(tmp_path), "no groundtruth/")
    fails(capsys, ["synth", "check", "--check-seeds", "a,b"], "--check-seeds", "'a,b'")
    fails(capsys, ["synth", "preview"], "needs --out")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("line, expected", [
    ("not json", "bad.jsonl:1: not valid JSON"),
    ('{"method": "baseline"}', "bad.jsonl:1: missing required field"),
    ("[1, 2]", "bad.jsonl:1: expected a JSON object"),
    ('{"method": ["m"], "dataset": "bp4d", "task": "au_occurrence", "metrics": {"f1_mean": 0.5}}',
     "bad.jsonl:1: field 'method' must be a string"),
    ('{"method": "m", "dataset": "bp4d", "task": "au_occurrence", "metrics": {"f1_mean": 0.5}, "seed": "abc"}',
     "bad.jsonl:1: field 'seed' must be an integer or null, got 'abc'"),
    ('{"method": "m", "dataset": "bp4d", "task": "au_occurrence", "metrics": {"f1_mean": 0.5}, "tags": 5}',
     "bad.jsonl:1: field 'tags' must be a list of strings"),
])
def test_leaderboard_import_of_a_malformed_record(capsys, tmp_path, line, expected):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(line + "\n")
    fails(capsys, ["leaderboard", "import", str(bad), "--url", f"sqlite:///{tmp_path / 'b.sqlite'}"], expected)
    fails(capsys, ["leaderboard", "import", str(tmp_path / "none.jsonl"), "--url", f"sqlite:///{tmp_path / 'b.sqlite'}"],
          "none.jsonl: no such JSONL file")


def test_leaderboard_usage_mistakes(capsys, tmp_path):
    url = ["--url", f"sqlite:///{tmp_path / 'b.sqlite'}"]
    fails(capsys, ["leaderboard", "render", "DATASET=bp4d", *url, "--out", str(tmp_path)], "'DATASET=bp4d'")
    fails(capsys, ["leaderboard", "export", *url], "export FILE.jsonl")


@pytest.mark.parametrize("action", [["render"], ["export", "out.jsonl"]])
def test_leaderboard_read_of_a_missing_board_creates_nothing(capsys, tmp_path, monkeypatch, action):
    missing = tmp_path / "typo" / "board.sqlite"
    out = tmp_path / "out"
    fails(capsys, ["leaderboard", *action, "--url", f"sqlite:///{missing}", "--out", str(out)],
          f"{missing}: no leaderboard database there")
    monkeypatch.setenv("AFFECTLAB_LEADERBOARD_URL", f"sqlite:///{missing}")
    fails(capsys, ["leaderboard", *action, "--out", str(out)], "no leaderboard database there")
    assert not (tmp_path / "typo").exists() and not out.exists()


def test_cv_mistakes(capsys, tmp_path):
    cv = ["cv", "METHOD=baseline", "DATA=toyau", f"run_root={tmp_path}"]
    fails(capsys, [*cv, "--aggregate-only"], "folds [1, 2, 3]", "have not finished")
    fails(capsys, [*cv, "--fold", "9"], "fold 9 is not part of toyau/3fold")
    fails(capsys, [*cv, "data.fold=2"], "use --fold K")
    fails(capsys, ["cv", "METHOD=baseline", "DATA=dfew", f"run_root={tmp_path}"], "Valid datasets for baseline")
    fails(capsys, [*cv, "trainer.precision=17"], "'trainer.precision'")
    fails(capsys, [*cv, "--train-command", "'x"], "--train-command", "No closing quotation")
    assert not (tmp_path / "cv").exists()  # no fold was started


def test_sweep_mistakes(capsys, tmp_path):
    fails(capsys, ["sweep", str(tmp_path / "none.yaml"), "--local"], "none.yaml")
    fails(capsys, ["sweep", SWEEP, "--local", "method.lr=0.1"], "'method.lr' is a swept parameter")
    fails(capsys, ["sweep", SWEEP, "--local", "METHOD=tcae"], "already sets 'METHOD'")
    fails(capsys, ["sweep", SWEEP, "--local", "--resume", "local-none", "--root", str(tmp_path)],
          "--resume local-none: no local sweep")
    fails(capsys, ["sweep", SWEEP, "--local", "--count", "0"], "--count must be at least 1")


def test_words_after_options_are_overrides_or_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["list", "METHOD=baseline"])  # list takes no overrides: argparse's own usage error
    assert exit_info.value.code == 2
    assert "unrecognized arguments: METHOD=baseline" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["cv", "METHOD=baseline", "--fold", "1", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_sweep_record_keeps_overrides_in_the_trial_command(tmp_path):
    from affectlab.sweeps import load_sweep_file, with_overrides

    config = with_overrides(load_sweep_file(SWEEP), ["DATA=toyau", "trainer.max_epochs=1"])
    command = config["command"]
    assert command[command.index("DATA=toyau") + 1] == "trainer.max_epochs=1"
    assert command[-1] == "${args_no_hyphens}"
    assert json.loads(json.dumps(config)) == config


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`affectlab list | head -1` (or config): the closed pipe ends the command without a traceback."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    proc = subprocess.Popen([sys.executable, "-m", "affectlab", "list"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "Broken pipe" not in err, err


# --- a CLI audit of 2026-12-05: mistakes that ended in a traceback -------------------------------------
def test_unparsable_override_values_and_paths_that_are_files(capsys, tmp_path):
    fails(capsys, ["config", "METHOD=baseline", "DATA=toyau", "data.subjects=[1"],
          "command line: cannot parse overrides data.subjects=[1")
    fails(capsys, ["data", "summary", "DATA=toyau", "subjects=[1"], "cannot parse 'subjects=[1'")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    fails(capsys, ["synth", "--out", str(a_file), "--profile", "tiny", "--datasets", "bp4d"], str(a_file))
    fails(capsys, ["train", "METHOD=baseline", "DATA=toyau", f"run_root={a_file}", *QUIET], str(a_file))


def test_log_level_names_are_checked_and_case_free(capsys, monkeypatch):
    monkeypatch.setenv("AFFECTLAB_LOG", "debug")
    assert main(["list"]) == 0
    monkeypatch.setenv("AFFECTLAB_LOG", "nonsense")
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert "AFFECTLAB_LOG='nonsense' is no log level; expected one of DEBUG, INFO" in err and "Traceback" not in err


def test_a_bad_leaderboard_url_fails_before_any_training(capsys, tmp_path):
    fails(capsys, ["leaderboard", "render", "--url", "notaurl", "--out", str(tmp_path / "lb")],
          "leaderboard URL 'notaurl' cannot be parsed")
    not_a_db = tmp_path / "text.db"
    not_a_db.write_text("not a database\n")
    fails(capsys, ["leaderboard", "render", "--url", f"sqlite:///{not_a_db}", "--out", str(tmp_path / "lb")],
          "cannot be opened: file is not a database")
    runs = tmp_path / "runs"
    fails(capsys, ["train", "METHOD=baseline", "DATA=toyau", "logger.wandb.enabled=false", "leaderboard.enabled=true",
                   "leaderboard.url=notaurl", f"run_root={runs}"], "leaderboard URL 'notaurl'")
    assert not runs.exists()
    fails(capsys, ["sweep", SWEEP, "--local", "--leaderboard-url", "notaurl", "--root", str(tmp_path / "sw")],
          "leaderboard URL 'notaurl'")


def test_a_copied_run_is_tested_with_its_own_files_and_damaged_ones_are_named(capsys, tmp_path):
    import shutil

    assert main(["train", "METHOD=baseline", "DATA=toyau", "trainer.max_steps=1", f"run_root={tmp_path / 'runs'}",
                 *QUIET]) == 0
    (run,) = (tmp_path / "runs" / "baseline" / "toyau").iterdir()
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "stages" / "supervised" / "last.ckpt").write_text("garbage")
    capsys.readouterr()
    # done.json holds the original's absolute path: the copy must use (and here reject) its own checkpoint
    fails(capsys, ["test", str(copy)], f"{copy / 'stages' / 'supervised' / 'last.ckpt'}: not a checkpoint")
    (copy / "run.json").write_text("{broken")
    fails(capsys, ["test", str(copy)], f"{copy / 'run.json'}: not valid JSON")
    (copy / "config.yaml").write_text("not: [yaml")
    fails(capsys, ["test", str(copy)], f"{copy / 'config.yaml'}: not a run's config")
    shutil.rmtree(copy)
    shutil.copytree(run, copy)
    shutil.rmtree(run)  # the original is gone: the copy still tests, from its own checkpoint
    assert main(["test", str(copy)]) == 0
    assert f"restored {copy / 'stages' / 'supervised' / 'last.ckpt'}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, expected", [
    (["synth", "--out", "{tmp}/s", "--profile", "tiny", "--seed", "-5"], "--seed must be >= 0, got -5"),
    (["synth", "--out", "{tmp}/s", "--profile", "tiny", "--datasets", ","], "--datasets ',' names no dataset"),
    (["synth", "preview", "--out", "{tmp}/p.txt"], "expected a .png file"),
    (["config", "EXP={tmp}/scalar.yaml"], "section 'method' must be a mapping of keys"),
    (["train", "METHOD=tcae", "DATA=toyau", "method.curriculum_start=[0.1]", *QUIET, "run_root={tmp}/runs"],
     "method.curriculum_start must be [lo, hi]"),
])
def test_more_audited_mistakes(capsys, tmp_path, argv, expected):
    (tmp_path / "scalar.yaml").write_text("method: tcae\n")
    fails(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv], expected)
    assert not (tmp_path / "s").exists()


def test_leaderboard_render_of_a_dataset_not_on_the_board(capsys, tmp_path):
    url = ["--url", f"sqlite:///{tmp_path / 'b.sqlite'}"]
    assert main(["leaderboard", "import", str(REPO / "results" / "synthetic_board.jsonl"), *url]) == 0
    fails(capsys, ["leaderboard", "render", "DATA=bp4dd", *url, "--out", str(tmp_path / "lb")],
          "DATA=bp4dd: no records for that dataset; on the board: bp4d, dfew, disfa")


def test_a_sweep_with_a_misspelt_parameter_fails_before_its_first_trial(capsys, tmp_path):
    bad = tmp_path / "sweep.yaml"
    bad.write_text(Path(SWEEP).read_text().replace("method.weight_decay:", "method.weight_decayy:"))
    fails(capsys, ["sweep", str(bad), "--local", "--count", "1", "DATA=toyau", "--root", str(tmp_path / "sw")],
          "unknown config key 'method.weight_decayy'")
    assert not (tmp_path / "sw").exists()


def test_toyau_refuses_a_data_root_it_would_ignore(capsys, tmp_path):
    fails(capsys, ["train", "METHOD=baseline", "DATA=toyau", f"data.root={tmp_path}", f"run_root={tmp_path / 'runs'}",
                   *QUIET], "toyau is generated in memory and reads no files")
    # the run folder made before the datamodule refused says so
    (info,) = (tmp_path / "runs" / "baseline" / "toyau").glob("*/run.json")
    record = json.loads(info.read_text())
    assert record["status"] == "failed" and record["error"].startswith("ConfigError: data.root=")


def test_a_stage_whose_loader_gives_no_batch_says_so(capsys, tmp_path):
    # it used to end in "last.ckpt: no such file", which explains nothing
    assert main(["train", "METHOD=baseline", "DATA=toyau", "data.batch_size=100000", f"run_root={tmp_path}",
                 *QUIET]) == 2
    err = capsys.readouterr().err  # after Lightning's own "Trainer.fit stopped: No training batches." line
    assert "Traceback" not in err and "last.ckpt" not in err
    assert "affectlab train: error: stage 'supervised' ran no training step: its training loader gave no batch" in err
