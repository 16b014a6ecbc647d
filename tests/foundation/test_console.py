"""What a run prints: the progress bar and the end-of-run table (formatted as the board and cv_results.md)."""
from __future__ import annotations

from affectlab.engine.summary import format_summary


def test_end_of_run_table_prints_percent_like_the_board():
    record = {"method": "baseline", "dataset": "disfa", "protocol": "disfa/3fold", "fold": 1, "selected_on": "val",
              "data_source": "real", "metrics": {"f1_au01": 0.4123, "f1_au02": 0.0, "f1_mean": 0.20615,
                                                   "icc_au06": 0.512, "icc_mean": 0.512}}
    lines = format_summary(record).splitlines()
    assert lines[1].split() == ["f1", "icc"]
    assert lines[2].split() == ["AU01", "41.2"] and lines[3].split() == ["AU02", "0.0"]
    assert lines[4].split() == ["AU06", "0.512"]  # ICC is not a percentage
    assert lines[5].split() == ["f1_mean", "20.6"] and lines[6].split() == ["icc_mean", "0.512"]
    assert "in percent" in lines[-1]


def test_end_of_run_table_names_the_untrained_reference():
    record = {"method": "tcae", "dataset": "bp4d", "task": "au_occurrence", "metrics": {"f1_mean": 0.362},
              "reference": {"all_positive": {"f1_au01": 0.35, "f1_mean": 0.4841}}}
    line = next(x for x in format_summary(record).splitlines() if "reference" in x)
    assert "all_positive 48.4 (f1_mean); this run is 12.2 below it" in line and "make evidence METHOD=tcae" in line
    record["method"] = "mine"  # a method without evidence arms gets no make-evidence hint
    assert next(x for x in format_summary(record).splitlines() if "reference" in x).endswith("12.2 below it")
    # no reference (AU intensity: a constant scores ICC 0; records written before it existed): no line
    for record["reference"] in ({}, None):
        assert "reference" not in format_summary(record)


def test_progress_bar_shows_no_logger_version(tmp_path):
    """Lightning appends ``v_num`` (the last 4 characters of the logger version, e.g. ``ised``)."""
    import torch
    from lightning.pytorch.loggers import CSVLogger

    from affectlab.config import compose
    from affectlab.engine.callbacks import ProgressBar
    from affectlab.engine.runner import build_trainer
    from affectlab.methods import Stage

    cfg = compose(["METHOD=baseline", "DATA=toyau", "logger.wandb.enabled=false"])
    stage = Stage("s", torch.nn.Linear(1, 1), None)
    logger = CSVLogger(str(tmp_path), name="x", version="initialised")
    trainer, _ = build_trainer(cfg, stage, tmp_path, [logger])
    assert isinstance(trainer.progress_bar_callback, ProgressBar)
    assert "v_num" not in trainer.progress_bar_callback.get_metrics(trainer, stage.module)


def test_help_is_plain_text(capsys):
    """``--help`` of affectlab and of every subcommand shows no RST markup (``literal``, :role:`x`)."""
    import pytest

    from affectlab.cli import build_parser, main

    commands = build_parser()._subparsers._group_actions[0].choices
    for argv in (["--help"], *([name, "--help"] for name in commands)):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert "usage: affectlab" in out and "`" not in out, (argv, out)


def test_list_shows_whole_method_summaries(capsys):
    """Each method's first docstring paragraph in full (it was cut at the first line break)."""
    from affectlab.cli import main, summary_of
    from affectlab.methods import METHODS

    assert main(["list"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in METHODS.names():
        summary = summary_of(METHODS.get(name).__doc__)
        assert summary.endswith(".") and summary in text, (name, summary)
    assert "then a linear probe on the frozen AU embedding φ" in text  # TCAE's second docstring line


def test_known_benign_noise_is_silenced_and_nothing_else(capsys):
    import logging
    import warnings

    from lightning.pytorch.utilities.rank_zero import rank_zero_info

    from affectlab.engine.quiet import silence_benign_noise

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_benign_noise()
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
        warnings.warn("Trying to infer the `batch_size` from an ambiguous collection. The batch size we found is 4.")
        warnings.warn("Total length of `DataLoader` across ranks is zero.")
    assert [str(w.message) for w in caught] == ["Total length of `DataLoader` across ranks is zero."]
    handler_out = []
    handler = logging.Handler()
    handler.emit = lambda record: handler_out.append(record.getMessage())
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    logger.addHandler(handler)
    try:
        for line in ("GPU available: False, used: False", "💡 Tip: For seamless cloud logging",
                     "`Trainer(limit_train_batches=1.0)` was configured so 100% of the batches will be used..",
                     "Restoring states from the checkpoint path at last.ckpt"):
            rank_zero_info(line)
    finally:
        logger.removeHandler(handler)
    assert handler_out == ["Restoring states from the checkpoint path at last.ckpt"]


def _fit_one_step(module, tmp_path) -> list[str]:
    import warnings

    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from affectlab.engine.quiet import frozen_eval_modules_expected

    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    loader = DataLoader(TensorDataset(torch.randn(4, 3)), batch_size=2)
    module.train()  # as the runner does before every fit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with frozen_eval_modules_expected(module):
            trainer.fit(module, train_dataloaders=loader)
    return [str(w.message) for w in caught if "eval mode" in str(w.message)]


def test_eval_mode_warning_only_for_trainable_modules_in_eval_mode(tmp_path):
    import lightning as L
    import torch
    import torch.nn as nn

    class Probe(L.LightningModule):
        def __init__(self, freeze: bool) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
            self.encoder.requires_grad_(not freeze)
            self.head = nn.Linear(3, 1)

        def train(self, mode: bool = True):
            super().train(mode)
            self.encoder.eval()  # both variants keep the encoder in eval mode
            return self

        def training_step(self, batch, batch_idx):
            return self.head(self.encoder(batch[0])).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.1)

    assert _fit_one_step(Probe(freeze=True), tmp_path) == []  # a frozen encoder in eval mode is intended
    warned = _fit_one_step(Probe(freeze=False), tmp_path)  # a trainable one in eval mode is a bug
    assert len(warned) == 1 and warned[0].startswith("Found 3 module(s) in eval mode")
