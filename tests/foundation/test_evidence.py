"""`affectlab evidence` (make evidence): every method declares valid arms, a tiny baseline evidence runs
each trained arm × seed through the runner of `make train` and writes the verdict table, and a user's
mistake ends in one clear line."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from affectlab.cli import main
from affectlab.config import compose
from affectlab.evidence.collect import plan, summarise, verdict
from affectlab.evidence.trivial import TRIVIAL
from affectlab.methods import METHODS

QUIET = ["logger.wandb.enabled=false", "trainer.enable_progress_bar=false"]
TINY = ["data.num_workers=0", "data.image_size=32", "data.batch_size=8", "data.limit_items=48",
        "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_declares_arms_that_compose_to_valid_configs(method, tmp_path):
    spec = METHODS.get(method)
    ev = spec.evidence
    assert ev is not None and ev.arms[0].name == "default" and ev.controls
    p = plan([f"METHOD={method}"], 2, tmp_path)
    assert p.seeds == [0, 1]
    trained = [a for a in ev.arms if a.trained]
    assert [(r.arm.name, r.seed) for r in p.runs] == [(a.name, s) for a in trained for s in (0, 1)]
    default = OmegaConf.to_container(compose([f"METHOD={method}"]).method)
    for run in p.runs:
        assert run.cfg.run_root == str(tmp_path / run.arm.name) and run.cfg.resume == "auto"
        assert run.cfg.leaderboard.enabled is False  # controls are not leaderboard rows
        for key in ev.seed_keys:
            assert OmegaConf.select(run.cfg, key) == run.seed
        for override in run.arm.overrides:  # the arm's switch took effect, nothing else in cfg.method moved
            key, value = override.split("=", 1)
            assert str(OmegaConf.select(run.cfg, key)).lower() == value.lower()
        if not run.arm.overrides:
            assert OmegaConf.to_container(run.cfg.method) == default
    for arm in ev.controls:
        if arm.trivial:
            assert TRIVIAL.get(arm.trivial).task == spec.task


def test_evidence_refuses_a_lower_is_better_metric():
    from affectlab.evidence.arms import Arm, Evidence

    arms = (Arm("default"), Arm("all_positive", trivial="all_positive"))
    assert Evidence(metric="f1_mean", arms=arms).metric == "f1_mean"
    with pytest.raises(ValueError, match="'mae_mean' is lower-is-better"):
        Evidence(metric="mae_mean", arms=arms)


def test_summary_and_verdict_arithmetic():
    s = summarise([0.5, 0.7, None], trivial=False)
    assert s["n"] == 2 and s["mean"] == pytest.approx(0.6) and s["sd"] == pytest.approx(statistics.stdev([0.5, 0.7]))
    assert summarise([0.4], trivial=False)["sd"] is None
    assert summarise([0.4], trivial=True)["sd"] == 0.0
    control = {"name": "random_init", "mean": 0.5, "sd": 0.05}
    v = verdict({"mean": 0.62}, control)
    assert v["difference"] == pytest.approx(0.12) and v["threshold"] == pytest.approx(0.1) and v["beats"] is True
    assert verdict({"mean": 0.58}, control)["beats"] is False
    assert verdict({"mean": 0.58}, {**control, "sd": None})["beats"] is None


def test_tiny_baseline_evidence_runs_every_arm_through_the_runner(synth_root, tmp_path, capsys):
    out = tmp_path / "ev"
    argv = ["evidence", "METHOD=baseline", "DATA=bp4d", f"data.root={synth_root / 'BP4D'}", *QUIET, *TINY,
            "--seeds", "2", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "evidence.json").read_text())
    assert (out / "evidence.md").read_text() in printed
    assert (out / "evidence.png").stat().st_size > 1000
    assert result["method"] == "baseline" and result["metric"] == "f1_mean" and result["seeds"] == [0, 1]
    assert result["runner"] == "affectlab.engine.runner.train" and result["finished"]
    default, positive = result["arms"]
    assert (default["name"], default["kind"], positive["name"], positive["kind"]) == \
        ("default", "trained", "all_positive", "trivial")

    # every trained arm × seed is one finished run of the runner, with its own seed
    assert [r["seed"] for r in default["runs"]] == [0, 1]
    for r in default["runs"]:
        run_dir = Path(r["run_dir"])
        assert run_dir.is_relative_to(out / "runs" / "default")
        record = json.loads((run_dir / "results.json").read_text())
        assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
        assert (run_dir / "stages" / "supervised" / "done.json").is_file()
        assert record["seed"] == r["seed"] and record["method"] == "baseline"
        assert r["value"] == record["metrics"]["f1_mean"] and 0.0 <= r["value"] <= 1.0
    assert default["n"] == 2 and default["mean"] == pytest.approx(np.mean([r["value"] for r in default["runs"]]))
    assert default["sd"] == pytest.approx(statistics.stdev([r["value"] for r in default["runs"]]))

    # the trivial arm is scored, not trained: per-AU F1 of "always present" is 2p / (1 + p)
    (scored,) = positive["runs"]
    assert scored["run_dir"] is None and "not trained" in scored["note"]
    assert positive["sd"] == 0.0 and scored["value"] == pytest.approx(_all_positive_f1(result, synth_root))
    # every run's record carries the same untrained reference, scored in its own test pass
    for r in default["runs"]:
        record = json.loads((Path(r["run_dir"]) / "results.json").read_text())
        assert record["reference"]["all_positive"]["f1_mean"] == pytest.approx(scored["value"], abs=1e-6)

    (v,) = result["verdicts"]
    assert v["control"] == "all_positive" and v["threshold"] == 0.0
    assert v["difference"] == pytest.approx(default["mean"] - positive["mean"])
    assert v["beats"] is (v["difference"] > 0)
    md = (out / "evidence.md").read_text()
    assert "| arm | kind | f1_mean mean ± sd | per seed | wall s / run | what |" in md
    assert f"default − all_positive = {v['difference']:.3f}; 2×control sd = 0.000; beats: " in md
    assert "s0 " in md and "s1 " in md

    # the same command into the same folder reuses the finished runs instead of training again; a run
    # trained on a copy of an earlier generator version is reused too, and the run's line says so
    older = Path(default["runs"][1]["run_dir"]) / "results.json"
    older.write_text(json.dumps({**json.loads(older.read_text()), "data_source": "synthetic-v3-tiny-seed0"}))
    assert main(argv) == 0
    again = json.loads((out / "evidence.json").read_text())
    assert [r["run_dir"] for r in again["arms"][0]["runs"]] == [r["run_dir"] for r in default["runs"]]
    printed = capsys.readouterr().out
    assert printed.count("already finished") == 2
    assert printed.count(f"it was trained on the synthetic copy synthetic-v3-tiny-seed0, and this config reads "
                         f"{result['data_source']}: its numbers are that copy's") == 1


def _all_positive_f1(result: dict, synth_root: Path) -> float:
    """Mean over AUs of 2p / (1 + p), p = positive rate among the labelled test frames."""
    from data_modules import create_datamodule

    cfg = compose(["METHOD=baseline", "DATA=bp4d", f"data.root={synth_root / 'BP4D'}", *TINY])
    dm = create_datamodule(cfg.data)
    dm.setup("test")
    au, mask = [], []
    for batch in dm.test_dataloader():
        au.append(batch["au"].numpy())
        mask.append(batch["au_mask"].numpy().astype(bool))
    au, mask = np.concatenate(au), np.concatenate(mask)
    f1 = []
    for k in range(au.shape[1]):
        p = float(au[mask[:, k], k].mean()) if mask[:, k].any() else 0.0
        f1.append(2 * p / (1 + p))
    return float(np.mean(f1))


def fails(capsys, argv: list[str], *expected: str) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and err.startswith("affectlab evidence: error: "), err
    for text in expected:
        assert text in err, (text, err)


def test_user_mistakes_end_in_one_clear_line(capsys, tmp_path, monkeypatch):
    out = tmp_path / "ev"
    fails(capsys, ["evidence", "METHOD=basline", "--out", str(out)], "Did you mean 'baseline'?")
    fails(capsys, ["evidence", "METHOD=baseline", "--seeds", "0", "--out", str(out)], "--seeds must be at least 1")
    fails(capsys, ["evidence", "METHOD=baseline", "method.lrr=1", "--out", str(out)], "unknown config key 'method.lrr'")
    monkeypatch.setattr(METHODS.get("baseline"), "evidence", None)
    fails(capsys, ["evidence", "METHOD=baseline", "--out", str(out)], "'baseline' declares no evidence arms")
    assert not out.exists()  # refused before any run
    with pytest.raises(SystemExit) as exc:  # argparse: not a number
        main(["evidence", "METHOD=baseline", "--seeds", "three"])
    assert exc.value.code == 2
    assert "invalid int value: 'three'" in capsys.readouterr().err


@pytest.mark.parametrize("method, control, root, extra", [
    ("tcae", "random_init", "BP4D", ["method.pretrain_root={videos}"]),
    ("region_relation", "random_backbone", "BP4D", []),
    ("contrastive_intensity", "scratch", "DISFA", []),
    ("contrastive_intensity", "random_frozen", "DISFA", []),
])
def test_untrained_controls_skip_pretraining_and_keep_the_evaluated_stage(synth_root, tmp_path, method, control,
                                                                         root, extra):
    """The stages each arm yields (built, not fitted): the default pretrains, the control does not, and
    both evaluate the same stage."""
    from affectlab.methods import RunContext

    spec = METHODS.get(method)
    keys = [f"METHOD={method}", f"data.root={synth_root / root}", "data.num_workers=0", "data.limit_items=48",
            *(e.format(videos=synth_root / "videos") for e in extra)]
    stages = {}
    for run in plan(keys, 1, tmp_path).runs:
        if run.arm.name in ("default", control):
            yielded = list(spec().stages(run.cfg, RunContext(tmp_path / run.arm.name, run.cfg)))
            stages[run.arm.name] = [(s.name, s.evaluate) for s in yielded]
    assert "pretrain" in [name for name, _ in stages["default"]]
    assert "pretrain" not in [name for name, _ in stages[control]]
    assert [s for s in stages["default"] if s[1]] == [s for s in stages[control] if s[1]]


class _FakeDM:
    """Just what a trivial predictor reads: test batches, class or AU names."""

    class_names = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]
    au_names = ["AU01", "AU02"]

    def __init__(self, batches: list[dict]) -> None:
        self.batches = batches

    def prepare_data(self) -> None: ...

    def setup(self, stage: str) -> None: ...

    def test_dataloader(self) -> list[dict]:
        return self.batches


def test_trivial_predictors_against_hand_computed_values():
    import torch

    labels = [{"label": torch.tensor([0, 0, 1])}, {"label": torch.tensor([3, 3, 3, 0])}]
    chance = TRIVIAL.get("chance").score(_FakeDM(labels), 1.0)
    assert chance["uar"] == pytest.approx(1 / 3) and chance["war"] == pytest.approx(3 / 7)  # 3 classes present
    first = TRIVIAL.get("chance").score(_FakeDM(labels), 1)  # limit_test_batches=1: classes 0 and 1 only
    assert first["uar"] == pytest.approx(1 / 2) and first["war"] == pytest.approx(2 / 3)
    au = torch.tensor([[1, 0], [0, 0], [1, 1], [0, 1]], dtype=torch.float32)
    mask = torch.tensor([[1, 1], [1, 1], [1, 0], [1, 1]], dtype=torch.bool)
    f1 = TRIVIAL.get("all_positive").score(_FakeDM([{"au": au, "au_mask": mask}]), 1.0)
    assert f1["f1_au01"] == pytest.approx(2 * 0.5 / 1.5) and f1["f1_au02"] == pytest.approx(2 * (1 / 3) / (4 / 3))
    assert f1["f1_mean"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_table_marks_runs_resumed_inside_an_epoch():
    from affectlab.evidence.report import markdown

    runs = [{"seed": 0, "value": 0.5, "wall_time_s": 1.0, "resumed": {}},
            {"seed": 1, "value": 0.4, "wall_time_s": 1.0,
             "resumed": {"pretrain": {"global_step": 90, "mid_epoch": True}}},
            {"seed": 2, "value": 0.45, "wall_time_s": 1.0,
             "resumed": {"probe": {"global_step": 40, "mid_epoch": False}}}]
    result = {"method": "m", "dataset": "bp4d", "fold": 1, "metric": "f1_mean", "command": "c", "overrides": [],
              "seeds": [0, 1, 2], "seed_keys": ["seed"], "data_source": "d", "git_commit": "abc", "finished": "t",
              "breakdown": [], "verdicts": [],
              "arms": [{"name": "default", "kind": "trained", "help": "h", "overrides": [], "mean": 0.45, "sd": 0.05,
                        "runs": runs}]}
    md = markdown(result)
    assert "s0 0.500, s1 0.400†, s2 0.450 |" in md  # only the mid-epoch resume is marked
    assert "- default seed 1: stage pretrain" in md and "seed 2:" not in md


def test_table_header_names_every_commit_and_data_source_its_runs_came_from():
    from affectlab.evidence.report import markdown

    def result(commits):
        runs = [{"seed": s, "value": 0.5, "wall_time_s": 1.0, "git_commit": c, "data_source": "synthetic-q"}
                for s, c in enumerate(commits)]
        return {"method": "m", "dataset": "bp4d", "fold": 1, "metric": "f1_mean", "command": "c", "overrides": [],
                "seeds": [0, 1, 2], "seed_keys": ["seed"], "data_source": "synthetic-q", "git_commit": commits[0],
                "finished": "t", "breakdown": [], "verdicts": [],
                "arms": [{"name": "default", "kind": "trained", "help": "h", "overrides": [], "mean": 0.5, "sd": 0.0,
                          "runs": runs},
                         {"name": "all_positive", "kind": "trivial", "help": "h", "overrides": [], "mean": 0.4,
                          "sd": 0.0, "runs": [{"seed": None, "value": 0.4}]}]}

    same = markdown(result(["a" * 40] * 3))
    assert "data: synthetic-q; commit: aaaaaaaaaa;" in same
    mixed = markdown(result(["a" * 40, "b" * 40, "a" * 40]))
    assert "commit: aaaaaaaaaa (2 runs), bbbbbbbbbb (1 run);" in mixed   # not just the first run's commit
    legacy = result(["a" * 40] * 3)
    for run in legacy["arms"][0]["runs"]:
        del run["git_commit"]
    assert "commit: aaaaaaaaaa;" in markdown(legacy)   # evidence.json written before runs kept their own


def test_trivial_arm_leaves_out_the_unreadable_test_items_the_trained_arms_leave_out(tmp_path, capsys):
    """With data.unreadable_test_items=exclude, every arm was trained and tested without the undecodable
    frame, then scoring all-positive on a fresh datamodule stopped at that frame, telling the user to set
    the option they had set."""
    from tests.data.releases import write_bp4d

    write_bp4d(tmp_path / "BP4D", subjects=["F001", "F003", "F004"], tasks=("T1", "T2"))
    bad = sorted((tmp_path / "BP4D" / "Sequences(2D+3D)" / "F004" / "T2").glob("*.jpg"))[3]
    bad.write_bytes(b"\xff\xd8 random bytes")
    out = tmp_path / "ev"
    argv = ["evidence", "METHOD=baseline", "DATA=bp4d", f"data.root={tmp_path / 'BP4D'}", "data.align=false",
            "data.val_fraction=0", "data.unreadable_test_items=exclude", *QUIET, *TINY, "--seeds", "1", "--out", str(out)]
    with pytest.warns(UserWarning, match="1 test item"):
        assert main(argv) == 0
    capsys.readouterr()
    default, positive = json.loads((out / "evidence.json").read_text())["arms"]
    record = json.loads((Path(default["runs"][0]["run_dir"]) / "results.json").read_text())
    assert record["test_set"]["unreadable_excluded"]["items"] == [str(bad)]
    (scored,) = positive["runs"]
    assert scored["value"] == pytest.approx(record["reference"]["all_positive"]["f1_mean"], abs=1e-6)
    assert "1 test item(s) with an undecodable image excluded" in scored["note"]
