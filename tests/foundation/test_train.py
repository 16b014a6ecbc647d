"""End-to-end training through the runner: outputs, provenance, learning, resume, evaluation."""
from __future__ import annotations

import json
import warnings
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
    assert info["environment"]["torch_threads"] == torch.get_num_threads()
    # which machine: CPU results of one seed differ between machines
    assert info["environment"]["cpu_capability"] == record["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert info["environment"]["cpu"] == record["cpu"] and record["cpu"]
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
    # the record carries the same reference, scored on the labels of the test pass's own batches
    reference = record["reference"]["all_positive"]
    assert reference["f1_mean"] == pytest.approx(all_positive_f1, abs=1e-6)
    assert [reference[f"f1_{a.lower()}"] for a in dm.au_names] == pytest.approx((2 * rate / (1 + rate)).tolist())


def test_cli_train_prints_table_and_run_dir_last(tmp_path, capsys):
    # in-process (the `python -m affectlab` entry point is exercised by the DDP test and the slow crash test)
    from affectlab.cli import main

    assert main(["train", *TINY, "trainer.max_epochs=1", f"run_root={tmp_path}"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    run_dir = Path(lines[-1])
    assert (run_dir / "results.json").exists()
    assert any("f1_mean" in line for line in lines) and any(line.strip().startswith("AU01") for line in lines)


def test_resume_auto_after_an_interrupted_fit_reaches_the_uninterrupted_metrics(tmp_path, monkeypatch):
    """In-process twin of the hard-kill test below (marked slow): the fault injection raises instead of
    killing the process, after epoch 1's checkpoint is on disk; ``resume=auto`` then finishes the run."""
    from affectlab.engine.callbacks import KillAfterEpochs

    class Interrupted(Exception):
        pass

    def interrupt(self, trainer, pl_module):
        if trainer.current_epoch >= self.epochs:
            raise Interrupted

    monkeypatch.setattr(KillAfterEpochs, "on_train_epoch_start", interrupt)
    common = [*TINY, "trainer.max_epochs=2", "data.batch_size=8"]
    straight = train(compose([*common, f"run_root={tmp_path / 'a'}"]))
    monkeypatch.setenv("AFFECTLAB_FAULT_AFTER_EPOCHS", "1")
    with pytest.raises(Interrupted):
        train(compose([*common, f"run_root={tmp_path / 'b'}"]))
    monkeypatch.delenv("AFFECTLAB_FAULT_AFTER_EPOCHS")
    run_dirs = list((tmp_path / "b/baseline/toyau").iterdir())
    assert len(run_dirs) == 1 and not (run_dirs[0] / "results.json").exists()
    resumed = train(compose([*common, f"run_root={tmp_path / 'b'}", "resume=auto"]))
    assert Path(resumed["run_dir"]) == run_dirs[0]
    assert resumed["metrics"] == pytest.approx(straight["metrics"], abs=1e-6)
    assert json.loads((run_dirs[0] / "run.json").read_text())["resumes"] == 1
    # the record says where the stage picked up: at an epoch boundary, so it reproduces
    (info,) = resumed["training"]["resumed"].values()
    assert info["mid_epoch"] is False and info["global_step"] > 0
    assert straight["training"]["resumed"] == {} and straight["training"]["attempts"] == []
    # the resuming process's code and thread count are recorded beside the start's
    (attempt,) = resumed["training"]["attempts"]
    assert attempt["torch_threads"] == torch.get_num_threads()
    assert attempt["git_commit"] == json.loads((run_dirs[0] / "run.json").read_text())["git_commit"]


def test_resuming_with_other_code_warns_and_is_recorded(tmp_path, monkeypatch):
    from affectlab.engine import rundir

    info = {"git_commit": "a" * 40, "git_dirty": False}
    monkeypatch.setattr(rundir, "git_state", lambda: {"git_commit": "a" * 40, "git_dirty": False})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = rundir.resume_attempt(info, tmp_path)
    assert same["git_commit"] == "a" * 40 and same["torch_threads"] >= 1
    monkeypatch.setattr(rundir, "git_state", lambda: {"git_commit": "b" * 40, "git_dirty": False})
    with pytest.warns(UserWarning, match="started at a{40}"):
        assert rundir.resume_attempt(info, tmp_path)["git_commit"] == "b" * 40
    monkeypatch.setattr(rundir, "git_state", lambda: {"git_commit": "a" * 40, "git_dirty": True})
    with pytest.warns(UserWarning, match="uncommitted changes"):
        rundir.resume_attempt(info, tmp_path)


@pytest.mark.slow
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


def test_affectlab_test_re_evaluates_the_selected_checkpoint(finished_run, capsys):
    from affectlab.cli import main

    run_dir, record = finished_run
    assert main(["test", str(run_dir)]) == 0
    out = json.loads(Path(capsys.readouterr().out.strip().splitlines()[-1]).read_text())
    assert out["metrics"] == pytest.approx(record["metrics"], abs=1e-6)
    assert out["selected_on"] == record["selected_on"] == "val"


def test_affectlab_test_evaluates_a_given_checkpoint_and_refuses_one_that_does_not_fit(finished_run, tmp_path, capsys):
    from affectlab.cli import main

    run_dir, _ = finished_run
    last = run_dir / "stages/supervised/last.ckpt"
    assert main(["test", str(run_dir), "--checkpoint", str(last)]) == 0
    out = json.loads(Path(capsys.readouterr().out.strip().splitlines()[-1]).read_text())
    assert out["selected_on"] == "checkpoint" and out["checkpoint"] == str(last)
    saved = torch.load(last, weights_only=False)
    other_shape = {**saved, "state_dict": {k: (v[:1] if v.dim() else v) for k, v in saved["state_dict"].items()}}
    cases = {"garbage.ckpt": b"not a checkpoint", "foreign.ckpt": {"state_dict": {"layer.weight": torch.zeros(2)}},
             "plain.ckpt": {"weights": 1}, "shapes.ckpt": other_shape}
    expected = {"garbage.ckpt": "not a checkpoint torch can read", "foreign.ckpt": "do not fit this run's",
                "plain.ckpt": "holds no 'state_dict'", "shapes.ckpt": "do not fit this run's"}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else torch.save(content, path)
        assert main(["test", str(run_dir), "--checkpoint", str(path)]) == 2, name
        err = capsys.readouterr().err
        assert expected[name] in err and str(path) in err and "Traceback" not in err, err


@pytest.mark.parametrize("no_validation", ["trainer.limit_val_batches=0", "data.val_fraction=0"])
def test_a_monitored_stage_without_validation_says_it_used_its_last_weights(tmp_path, no_validation):
    from affectlab.engine.evaluate import evaluate_run

    cfg = compose([*TINY, "trainer.max_epochs=1", no_validation, f"run_root={tmp_path}"])
    with pytest.warns(UserWarning, match="selects its weights on val/f1_mean, but no validation produced it"):
        record = train(cfg)
    run_dir = Path(record["run_dir"])
    done = json.loads((run_dir / "stages/supervised/done.json").read_text())
    assert done["monitor"] == "val/f1_mean" and done["checkpoint"].endswith("last.ckpt")
    assert record["selected_on"] == done["selected_on"] == "last_epoch"
    assert evaluate_run(run_dir)["selected_on"] == "last_epoch"   # `affectlab test` says the same


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


def test_reusing_a_run_finished_with_other_code_says_whose_numbers_they_are(monkeypatch):
    from affectlab.engine import rundir

    info = {"git_commit": "a" * 40, "git_dirty": False, "status": "finished"}
    monkeypatch.setattr(rundir, "git_state", lambda: {"git_commit": "a" * 40, "git_dirty": False})
    assert rundir.reuse_note(info) == ""
    monkeypatch.setattr(rundir, "git_state", lambda: {"git_commit": "b" * 40, "git_dirty": False})
    assert "trained at commit aaaaaaaaaa and the code is now at bbbbbbbbbb: its numbers" in rundir.reuse_note(info)
    monkeypatch.setattr(rundir, "git_state", lambda: {"git_commit": "a" * 40, "git_dirty": True})
    assert "now at aaaaaaaaaa with uncommitted changes" in rundir.reuse_note(info)
    monkeypatch.setattr(rundir, "git_state", lambda: {"git_commit": None, "git_dirty": None})
    assert rundir.reuse_note(info) == ""  # outside git nothing can be said
    # the same code on another machine: CPU results of one seed differ between machines
    monkeypatch.setattr(rundir, "git_state", lambda: {"git_commit": "a" * 40, "git_dirty": False})
    here = {"cpu": rundir.cpu_model(), "cpu_capability": rundir.cpu_capability()}
    assert rundir.reuse_note({**info, "environment": here}) == ""
    other = {"cpu": "Some Other CPU", "cpu_capability": "AVX2"}
    assert rundir.reuse_note({**info, "environment": other}) == (
        f"; it was trained on another CPU, Some Other CPU (AVX2), than this one, {here['cpu']} ({here['cpu_capability']})")
    # another synthetic copy (generator version, profile or seed); other kinds of data source are not compared
    assert rundir.reuse_note(info, "synthetic-v3-quick-seed0", "synthetic-v3-quick-seed0") == ""
    assert rundir.reuse_note(info, "synthetic-v3-quick-seed0", "synthetic-v3.1-quick-seed0") == (
        "; it was trained on the synthetic copy synthetic-v3-quick-seed0, and this config reads "
        "synthetic-v3.1-quick-seed0: its numbers are that copy's (a fresh run_root trains on this one)")
    assert rundir.reuse_note(info, "synthetic-toyau", "synthetic-v3.1-tiny-seed0") == ""


def test_resume_auto_falls_back_from_a_corrupt_last_ckpt_and_never_re_records_a_finished_run(tmp_path):
    """Issue #18 item 4: a truncated last.ckpt failed every retry with a raw torch traceback, and
    resume=auto re-tested a finished run, adding a second leaderboard record for its run directory."""
    from affectlab.leaderboard import open_store

    board = f"sqlite:///{tmp_path / 'board.sqlite'}"
    common = [*TINY, "trainer.max_epochs=2", "data.frames_per_subject=24", f"run_root={tmp_path / 'runs'}",
              "leaderboard.enabled=true",
              f"leaderboard.url={board}"]
    first = train(compose(common))
    run_dir = Path(first["run_dir"])
    stage = run_dir / "stages" / "supervised"
    assert (stage / "last-previous.ckpt").is_file()  # epoch 1's, kept when epoch 2's was saved
    # the state of a run killed after epoch 2 whose last.ckpt was then truncated on disk
    (stage / "done.json").unlink()
    (run_dir / "results.json").unlink()
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "status": "failed"}))
    data = (stage / "last.ckpt").read_bytes()
    (stage / "last.ckpt").write_bytes(data[: len(data) // 2])

    with pytest.warns(UserWarning, match=r"last\.ckpt cannot be read .*resuming from the previous checkpoint"):
        resumed = train(compose([*common, "resume=auto"]))
    assert resumed["run_dir"] == str(run_dir)
    assert resumed["metrics"] == pytest.approx(first["metrics"], abs=1e-6)  # epoch 2 replayed exactly
    assert (stage / "last.ckpt.unreadable").is_file()

    before = (run_dir / "results.json").read_text()
    again = train(compose([*common, "resume=auto"]))  # finished: returned as it is, not re-tested
    assert again == json.loads(before) and (run_dir / "results.json").read_text() == before
    store = open_store(board)
    try:
        assert [r["run_dir"] for r in store.records()] == [str(run_dir)]  # one record for the run
    finally:
        store.close()


def test_resume_checkpoint_skips_unreadable_files_with_a_warning(tmp_path):
    from affectlab.engine.checkpoints import resume_checkpoint

    torch.save({"state_dict": {}, "epoch": 0}, tmp_path / "last-previous.ckpt")
    (tmp_path / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(UserWarning, match="resuming from the previous checkpoint"):
        assert resume_checkpoint(tmp_path) == tmp_path / "last-previous.ckpt"
    (tmp_path / "last-previous.ckpt").write_bytes(b"")
    with pytest.warns(UserWarning, match="no readable checkpoint left, so the stage starts from its beginning"):
        assert resume_checkpoint(tmp_path) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last-previous.ckpt.unreadable", "last.ckpt.unreadable"]


def test_unreadable_test_image_fails_the_run_or_is_excluded_and_recorded(tmp_path, capsys):
    """Issue #18 item 1 end to end: `affectlab train` on a BP4D copy with random bytes in a test frame
    exited 0 with the item silently swapped for another one."""
    from affectlab.cli import main
    from tests.data.releases import write_bp4d

    write_bp4d(tmp_path / "BP4D", subjects=["F001", "F003", "F004"], tasks=("T1", "T2"))
    bad = tmp_path / "BP4D" / "Sequences(2D+3D)" / "F004" / "T2"
    bad = sorted(bad.glob("*.jpg"))[3]
    bad.write_bytes(b"\xff\xd8 random bytes")
    args = ["train", "METHOD=baseline", "DATA=bp4d", f"data.root={tmp_path / 'BP4D'}", "data.align=false",
            "data.image_size=32", "data.batch_size=4", "data.num_workers=0", "data.val_fraction=0",
            "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false",
            "logger.wandb.enabled=false", "leaderboard.enabled=false", f"run_root={tmp_path / 'runs'}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"test image {bad} cannot be decoded" in err and "unreadable_test_items=exclude" in err
    assert "Traceback" not in err and "data.unreadable_test_items=exclude` tests them" in err

    assert main([*args, "data.unreadable_test_items=exclude", "resume=auto"]) == 0  # reuses the trained stage
    out = capsys.readouterr().out
    record = results_of(Path(out.strip().splitlines()[-1]))
    assert record["test_set"]["unreadable_excluded"] == {"count": 1, "items": [str(bad)]}
    assert f"TEST SET CHANGED: 1 item(s) with an undecodable image excluded" in out and str(bad) in out
    # item 3: how much it trained, and why it stays off the ranked board
    assert record["training"]["stages"]["supervised"]["steps"] == 2
    assert record["training"]["truncated"] == ["trainer.limit_train_batches=2"]
    assert "TRUNCATED run (trainer.limit_train_batches=2)" in out
    assert "no synthetic-generator marker" in record["data_source_unverified"]


def test_data_source_of_a_copied_synthetic_release_is_identified(tmp_path):
    """Issue #18 item 3: a copy of the synthetic BP4D folder, without the generator's marker beside
    it, was recorded as real data."""
    from types import SimpleNamespace

    from affectlab.engine.record import data_source
    from affectlab.synth import SYNTHETIC_MARKER

    copy = tmp_path / "copy" / "BP4D"
    copy.mkdir(parents=True)
    cfg = compose(["METHOD=baseline", "DATA=bp4d", f"data.root={copy}"])
    source, note = data_source(cfg, SimpleNamespace())
    assert source == "real" and "assumed real data" in note  # nothing to tell: assumed, and the record says so
    (copy / SYNTHETIC_MARKER).write_text("2\ntiny-seed0\n")
    assert data_source(cfg, SimpleNamespace()) == ("synthetic-v2-tiny-seed0", None)


def _fit_tiny_step_validated_stage(tmp_path: Path, max_steps: int, val_every_n_steps: int):
    """A 2-parameter module on 8 items in batches of 2 (4 steps per epoch), validated every n steps
    across epochs, through the runner's ``build_trainer`` (its checkpoint callbacks and IO)."""
    import lightning as L
    from omegaconf import OmegaConf
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from affectlab.config import TrainerConfig
    from affectlab.engine.runner import build_trainer
    from affectlab.methods import Stage

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).pow(2).mean()

        def validation_step(self, batch, batch_idx):
            self.log("val/loss", self.layer(batch[0]).pow(2).mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    class Data(L.LightningDataModule):
        def train_dataloader(self):
            return DataLoader(TensorDataset(torch.randn(8, 2, generator=torch.Generator().manual_seed(0))), batch_size=2)

        def val_dataloader(self):
            return DataLoader(TensorDataset(torch.randn(2, 2)), batch_size=2)

    cfg = OmegaConf.create({"trainer": OmegaConf.structured(TrainerConfig), "deterministic": False})
    cfg.trainer.enable_progress_bar = False
    stage = Stage("pretrain", Tiny(), Data(), max_epochs=-1, max_steps=max_steps, val_every_n_steps=val_every_n_steps)
    trainer, _ = build_trainer(cfg, stage, tmp_path, [])
    trainer.fit(stage.module, datamodule=stage.datamodule)
    return trainer, stage.module


def test_a_stage_ending_between_validations_saves_its_last_step(tmp_path):
    """max_steps off the validation grid (7 steps, validation every 3): last.ckpt, which the next
    stage and resume=auto read, must hold step 7's weights, not those of the validation at step 6."""
    from affectlab.engine.checkpoints import LAST

    trainer, module = _fit_tiny_step_validated_stage(tmp_path, max_steps=7, val_every_n_steps=3)
    saved = torch.load(tmp_path / LAST, map_location="cpu", weights_only=False)
    assert trainer.global_step == 7 and saved["global_step"] == 7
    assert torch.equal(saved["state_dict"]["layer.weight"], module.layer.weight.detach())


def test_a_step_validated_stage_also_saves_last_at_every_epoch_end(tmp_path, monkeypatch):
    """A stage validated every n steps wrote last.ckpt only at its validations, which fall inside
    epochs, so every resume of it was a mid-epoch one that cannot reproduce the uninterrupted run.
    It now also writes it at each epoch end (4 steps per epoch here), from which a resume is exact."""
    from affectlab.engine.callbacks import AtomicCheckpointIO, saved_mid_epoch
    from affectlab.engine.checkpoints import LAST

    writes, after_epoch_end = [], []
    original = AtomicCheckpointIO.save_checkpoint

    def spy(self, checkpoint, path, storage_options=None):
        if Path(path).name == LAST:
            epochs = checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]
            writes.append((checkpoint["global_step"], saved_mid_epoch(checkpoint)))
            after_epoch_end.append(epochs["processed"] == epochs["started"])
        return original(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", spy)
    _fit_tiny_step_validated_stage(tmp_path, max_steps=10, val_every_n_steps=3)
    steps = [step for step, _ in writes]
    assert {3, 6, 9} <= set(steps) and {4, 8} <= set(steps) and steps[-1] == 10
    assert len(steps) == len(set(steps))                                  # never twice for one step
    assert dict(writes)[4] is False and dict(writes)[8] is False          # epoch ends: exact resume points
    assert dict(writes)[3] is True and dict(writes)[9] is True            # validations inside an epoch
    # a validation on an epoch's last batch is followed by the epoch-end write, which is the one kept
    writes.clear()
    after_epoch_end.clear()
    _fit_tiny_step_validated_stage(tmp_path / "grid", max_steps=8, val_every_n_steps=4)
    last_write = {step: ended for (step, _), ended in zip(writes, after_epoch_end)}   # the last write of each step
    assert last_write == {4: True, 8: True}


class _Jittered(torch.utils.data.Dataset):
    """8 items whose training jitter is drawn from torch's RNG (in the DataLoader worker, as the
    datasets' ``_rng`` does)."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int):
        return torch.full((2,), float(index)) + torch.rand(2)


def _fit_jittered_step_stage(tmp_path: Path, resume: bool = False, stop_at_epoch: int | None = None) -> torch.Tensor:
    """12 steps (4 per epoch), validation every 5, dropout in the model, jitter in 2 training workers
    and a persistent validation worker: every source of randomness a resume has to replay."""
    import lightning as L
    from omegaconf import OmegaConf
    from torch import nn
    from torch.utils.data import DataLoader

    from affectlab.config import TrainerConfig
    from affectlab.engine.checkpoints import LAST
    from affectlab.engine.runner import build_trainer
    from affectlab.methods import Stage
    from data_modules.seeded_sampler import seeded_train_loader

    class Stop(Exception):
        pass

    class Noisy(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer, self.drop = nn.Linear(2, 1), nn.Dropout(0.5)

        def training_step(self, batch, batch_idx):
            return self.layer(self.drop(batch)).pow(2).mean()

        def validation_step(self, batch, batch_idx):
            self.log("val/loss", self.layer(batch).pow(2).mean())

        def on_train_epoch_start(self) -> None:
            if stop_at_epoch is not None and self.current_epoch == stop_at_epoch:
                raise Stop

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    class Data(L.LightningDataModule):
        def train_dataloader(self):
            return seeded_train_loader(_Jittered(), 2, 0, num_workers=2)

        def val_dataloader(self):
            return DataLoader(_Jittered(), batch_size=4, num_workers=1, persistent_workers=True)

    L.seed_everything(0, verbose=False)
    cfg = OmegaConf.create({"trainer": OmegaConf.structured(TrainerConfig), "deterministic": False})
    cfg.trainer.enable_progress_bar = False
    stage = Stage("pretrain", Noisy(), Data(), max_epochs=-1, max_steps=12, val_every_n_steps=5)
    trainer, _ = build_trainer(cfg, stage, tmp_path, [])
    try:
        trainer.fit(stage.module, datamodule=stage.datamodule, ckpt_path=str(tmp_path / LAST) if resume else None)
    except Stop:
        pass
    return stage.module.layer.weight.detach().clone()


def test_a_step_based_stage_resumed_from_an_epoch_end_reproduces_the_uninterrupted_fit(tmp_path):
    """Lightning 2.6 resumes a max_steps fit from an epoch-end checkpoint into the finished epoch (one
    extra batch, every later epoch number shifted), skips the sanity check that made the validation
    workers, and makes the first epoch's DataLoader iterator before the RNG restore; each broke the
    replay (engine.callbacks). Killed at the start of epoch 2 (last.ckpt at step 8) and resumed, the
    fit must end with the uninterrupted fit's weights, bit for bit."""
    straight = _fit_jittered_step_stage(tmp_path / "a")
    _fit_jittered_step_stage(tmp_path / "b", stop_at_epoch=2)
    saved = torch.load(tmp_path / "b" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 8
    resumed = _fit_jittered_step_stage(tmp_path / "b", resume=True)
    assert torch.equal(resumed, straight)


def test_saved_mid_epoch_reads_lightning_loop_progress():
    from affectlab.engine.callbacks import saved_mid_epoch

    def ckpt(completed: int, last: bool) -> dict:
        progress = {"current": {"completed": completed}, "is_last_batch": last}
        return {"loops": {"fit_loop": {"epoch_loop.batch_progress": progress}}}

    assert saved_mid_epoch(ckpt(3, False))      # a validation every n steps inside the epoch
    assert not saved_mid_epoch(ckpt(5, True))   # written at the epoch's last batch
    assert not saved_mid_epoch(ckpt(0, False))  # nothing of the epoch consumed yet
    assert not saved_mid_epoch({})              # a checkpoint without loop state


@pytest.mark.parametrize("value, fp32", [("highest", "ieee"), ("high", "tf32"), ("medium", "tf32")])
def test_matmul_precision_sets_matmuls_and_cudnn_convolutions(value, fp32):
    """``highest`` (the paper presets) must also keep cuDNN convolutions out of TF32, which
    ``torch.set_float32_matmul_precision`` alone leaves on; the flags are torch's own."""
    from affectlab.config import ConfigError
    from affectlab.engine.runner import set_matmul_precision

    before = torch.get_float32_matmul_precision()
    try:
        set_matmul_precision(value)
        assert torch.get_float32_matmul_precision() == value
        assert torch.backends.cuda.matmul.fp32_precision == ("ieee" if value == "highest" else "tf32")
        assert torch.backends.cudnn.conv.fp32_precision == fp32
        assert torch.backends.cudnn.rnn.fp32_precision == fp32
        with pytest.raises(ConfigError, match="matmul_precision must be one of"):
            set_matmul_precision("fp32")
    finally:
        torch.set_float32_matmul_precision(before)
        torch.backends.cudnn.fp32_precision = "tf32"
