"""Runs a method's stages: fit each with a fresh Trainer, test the evaluated stage in one
process, write ``results.json`` atomically and hand the record to the leaderboard."""
from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig

from affectlab.engine.callbacks import (
    AtomicCheckpointIO, LastEveryEpochCheckpoint, ProgressBar, RNGStateCallback, fault_injection_from_env,
)
from affectlab.engine.checkpoints import (LAST, UnreadableCheckpoint, read_checkpoint, resume_checkpoint,
                                          stage_checkpoint)
from affectlab.engine.io import atomic_write_json, read_json
from affectlab.engine.loggers import build_loggers, finish_wandb, wandb_loggers, wandb_url
from affectlab.engine.online_probe import OnlineProbe
from affectlab.engine.progress import RunProgress, RunProgressBar
from affectlab.engine.quiet import frozen_eval_modules_expected, silence_benign_noise
from affectlab.engine.record import UNREADABLE_DIR, build_record, data_source
from affectlab.engine.rundir import RUN_DIR_ENV, RunDirectory, prepare_run_dir, reuse_note
from affectlab.engine.summary import format_summary
from affectlab.engine.timing import StepTimer
from affectlab.engine.trivial_reference import TrivialReference
from affectlab.methods import METHODS, RunContext, Stage
from affectlab.schema import ConfigError
from data_modules.frames import UnreadableItem

log = logging.getLogger("affectlab")


def _is_rank_zero() -> bool:
    return rank_zero_only.rank == 0


def _strategy(cfg: DictConfig) -> Any:
    if cfg.trainer.strategy == "ddp" and cfg.trainer.accelerator == "cpu":
        from lightning.pytorch.strategies import DDPStrategy

        return DDPStrategy(process_group_backend="gloo")
    return cfg.trainer.strategy


def stage_length(stage: Stage, t: DictConfig) -> dict[str, int]:
    """The stage's ``max_epochs`` and ``max_steps`` (its own where set, else the trainer's), refusing a
    stage that would train nothing (0) or never end (both -1: Lightning would run forever)."""
    epochs = int(stage.max_epochs if stage.max_epochs is not None else t.max_epochs)
    steps = int(stage.max_steps if stage.max_steps is not None else t.max_steps)
    if epochs == 0 or steps == 0:
        raise ConfigError(f"stage {stage.name!r} would train nothing: max_epochs={epochs}, max_steps={steps} "
                          f"(the method's *_epochs/*_steps keys or trainer.max_epochs/max_steps)")
    if epochs < 0 and steps < 0:
        raise ConfigError(f"stage {stage.name!r} has no end: max_epochs and max_steps are both -1; set one of them")
    return {"max_epochs": epochs, "max_steps": steps}


def build_trainer(cfg: DictConfig, stage: Stage, stage_dir: Path, loggers: list,
                  progress: RunProgress | None = None) -> tuple[L.Trainer, LastEveryEpochCheckpoint]:
    """The stage's Trainer from ``cfg.trainer`` and the stage's own settings; ``progress`` is the run's
    single bar (``trainer.progress_bar=run``), else Lightning's bar per epoch."""
    t = cfg.trainer
    sync_bn = bool(t.sync_batchnorm)
    if sync_bn and t.accelerator == "cpu":
        warnings.warn("trainer.sync_batchnorm is switched off: SyncBatchNorm only works on GPU modules")
        sync_bn = False
    checkpoint = LastEveryEpochCheckpoint(
        dirpath=str(stage_dir),
        filename="best-epoch{epoch:03d}",
        auto_insert_metric_name=False,
        monitor=stage.monitor,
        mode=stage.mode,
        save_top_k=1 if stage.monitor else 0,
        save_last=True,
    )
    callbacks: list[L.Callback] = [checkpoint, RNGStateCallback(), StepTimer()]
    if loggers:
        callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    if stage.monitor and t.early_stopping_patience:
        callbacks.append(EarlyStopping(monitor=stage.monitor, mode=stage.mode, patience=t.early_stopping_patience))
    elif t.early_stopping_patience:
        warnings.warn(f"trainer.early_stopping_patience is ignored for stage {stage.name!r}: it monitors no metric "
                      f"(e.g. method.select=last, or a self-supervised stage), so it trains its full length")
    if t.enable_progress_bar:
        run_bar = t.progress_bar == "run" and progress is not None
        callbacks.append(RunProgressBar(progress, stage.name) if run_bar else ProgressBar())
    callbacks.extend(stage.callbacks)
    fault = fault_injection_from_env()
    if fault is not None:
        callbacks.append(fault)
    kwargs: dict[str, Any] = dict(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=_strategy(cfg),
        precision=t.precision,
        sync_batchnorm=sync_bn,
        **stage_length(stage, t),
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches,
        check_val_every_n_epoch=t.check_val_every_n_epoch,
        log_every_n_steps=t.log_every_n_steps,
        deterministic=bool(cfg.deterministic),
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=str(stage_dir),
        enable_progress_bar=t.enable_progress_bar,
        plugins=[AtomicCheckpointIO()],
        enable_model_summary=False,
    )
    if stage.val_every_n_steps:  # validate every n steps across epochs (Lightning: int interval, no epoch cadence)
        kwargs.update(val_check_interval=int(stage.val_every_n_steps), check_val_every_n_epoch=None)
    kwargs.update(stage.trainer_overrides)
    return L.Trainer(**kwargs), checkpoint


def use_channels_last(cfg: DictConfig) -> bool:
    """``trainer.channels_last``: true/false as given; auto → on CPU when the method's networks measured
    faster in channels_last (``MethodSpec.channels_last_cpu``), off on other accelerators."""
    value = cfg.trainer.channels_last
    if value == "auto":
        return cfg.trainer.accelerator == "cpu" and bool(METHODS.get(cfg.method.name).channels_last_cpu)
    return bool(value)


def _load_weights(module: L.LightningModule, ckpt: str) -> None:
    try:
        state = read_checkpoint(Path(ckpt))["state_dict"]
    except UnreadableCheckpoint as err:
        raise ConfigError(f"{ckpt}: {err}; the stage's selected checkpoint is damaged (re-train the stage: remove "
                          f"its done.json and resume)") from None
    module.load_state_dict(state)


def fit_stage(stage: Stage, cfg: DictConfig, run: RunDirectory, progress: RunProgress | None = None) -> str:
    """Fit one stage (or restore it when a previous attempt finished it); returns the checkpoint
    whose weights the module now holds (best by ``stage.monitor``, else last)."""
    stage_dir = run.stage_dir(stage.name)
    done = stage_dir / "done.json"
    stage.module.artifact_dir = run.artifact_dir
    if hasattr(stage.datamodule, "log_unreadable_to"):
        stage.datamodule.log_unreadable_to(run.path / UNREADABLE_DIR)
    if done.exists():
        ckpt = str(stage_checkpoint(done))
        _load_weights(stage.module, ckpt)
        print(f"[affectlab] stage {stage.name!r} already finished; restored {ckpt}", flush=True)
        return ckpt
    info = run.read_info() if run.info_path.exists() else {}
    attempt = int(info.get("resumes", 0))
    loggers, wandb_id = build_loggers(cfg, run.path, stage.name, info.get("wandb_ids", {}).get(stage.name), attempt,
                                      sweep_run=stage.evaluate)
    if _is_rank_zero() and wandb_id:
        run.update_info(wandb_ids={**info.get("wandb_ids", {}), stage.name: wandb_id})
    if use_channels_last(cfg):
        stage.module = stage.module.to(memory_format=torch.channels_last)
    trainer, checkpoint = build_trainer(cfg, stage, stage_dir, loggers, progress)
    last = stage_dir / LAST
    resume_from = resume_checkpoint(stage_dir, rank_zero=_is_rank_zero())
    ckpt_path = str(resume_from) if resume_from else None
    if ckpt_path:
        print(f"[affectlab] resuming stage {stage.name!r} from {ckpt_path}", flush=True)
    started = time.perf_counter()
    # Lightning >= 2.2 starts fitting in whatever mode each submodule is in; a stage starts in training mode,
    # and the module's own train() decides what stays in eval (a frozen probe's encoder)
    stage.module.train()
    with frozen_eval_modules_expected(stage.module):
        trainer.fit(stage.module, datamodule=stage.datamodule, ckpt_path=ckpt_path)
    if trainer.global_step == 0:  # else the missing checkpoint would be the error, which explains nothing
        raise ConfigError(f"stage {stage.name!r} ran no training step: its training loader gave no batch "
                          f"(trainer.limit_train_batches=0; a data.batch_size above the training items, whose "
                          f"incomplete last batch is dropped; under DDP, fewer items than devices x batch size); "
                          f"nothing was trained or saved")
    timer = next(c for c in trainer.callbacks if isinstance(c, StepTimer))
    timer.wall_s = time.perf_counter() - started
    probe_s = sum(c.seconds for c in stage.callbacks if isinstance(c, OnlineProbe))
    resumed = next(c for c in trainer.callbacks if isinstance(c, RNGStateCallback)).resumed
    validated = bool(stage.monitor and checkpoint.best_model_path)
    best = checkpoint.best_model_path if validated else str(last)
    if stage.monitor and not validated:
        warnings.warn(f"stage {stage.name!r} selects its weights on {stage.monitor}, but no validation produced it "
                      f"(an empty validation split, e.g. data.val_fraction=0; trainer.limit_val_batches=0; or training "
                      f"ended before the first validation): its last weights are used, recorded as "
                      f"selected_on=last_epoch")
    if trainer.world_size > 1:
        trainer.strategy.barrier()
    _load_weights(stage.module, best)
    if trainer.is_global_zero:
        atomic_write_json(done, {"checkpoint": best, "monitor": stage.monitor,
                                 "selected_on": "val" if validated else "last_epoch",
                                 "best_score": _float(checkpoint.best_model_score), "trained": _trained(trainer),
                                 "resumed": resumed,
                                 "timing": timer.summary({"online_probe_s": probe_s} if probe_s else None)})
    stage.url = wandb_url(loggers)  # type: ignore[attr-defined]
    if stage.evaluate:  # the test pass logs its metrics and figures into the same wandb run
        stage.wandb_loggers = wandb_loggers(loggers)  # type: ignore[attr-defined]
    else:
        finish_wandb(loggers)
    return best


def _trained(trainer: L.Trainer) -> dict[str, int]:
    """How much a fitted stage trained (written to its ``done.json``, summed up in the record)."""
    return {"epochs": int(trainer.current_epoch), "steps": int(trainer.global_step),
            "train_batches_per_epoch": int(trainer.num_training_batches),
            "val_batches": int(sum(trainer.num_val_batches))}


def _float(value: Any) -> float | None:
    if value is None:
        return None
    return float(value.item() if hasattr(value, "item") else value)


def test_stage(stage: Stage, cfg: DictConfig, run: RunDirectory) -> dict[str, float]:
    """Single-process test pass, so every test item counts exactly once (no sampler padding).
    Its metrics and figures also go to the evaluated stage's wandb run, which it then finishes."""
    from lightning.pytorch.loggers import CSVLogger

    accelerator = cfg.trainer.accelerator
    loggers = [CSVLogger(save_dir=str(run.path / "logs"), name="test", version="")] if cfg.logger.csv else []
    remote = getattr(stage, "wandb_loggers", [])
    reference = TrivialReference(METHODS.get(cfg.method.name).task)
    trainer = L.Trainer(
        accelerator=accelerator,
        callbacks=[reference],
        devices=1,
        num_nodes=1,
        precision=cfg.trainer.precision,
        logger=[*loggers, *remote] or False,
        limit_test_batches=cfg.trainer.limit_test_batches,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    stage.module.artifact_dir = run.artifact_dir
    stage.test_set = exclude_unreadable(cfg, stage.datamodule)  # type: ignore[attr-defined]
    try:
        trainer.test(stage.module, datamodule=stage.datamodule, verbose=False)
        stage.test_batches = int(sum(trainer.num_test_batches))  # type: ignore[attr-defined]
        stage.reference = reference.scores(stage.datamodule)  # type: ignore[attr-defined]
    finally:
        finish_wandb(remote)
        stage.wandb_loggers = []  # type: ignore[attr-defined]
    return {k[len("test/"):]: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}


def exclude_unreadable(cfg: DictConfig, datamodule: Any) -> dict[str, Any]:
    """``data.unreadable_test_items=exclude``: leave out the test items whose images cannot be decoded,
    and say which (the ``test_set`` part of the record). Otherwise the test pass fails on the first one."""
    if cfg.data.get("unreadable_test_items") != "exclude" or not hasattr(datamodule, "exclude_unreadable_test_items"):
        return {}
    excluded = datamodule.exclude_unreadable_test_items()
    if excluded:
        warnings.warn(f"{len(excluded)} test item(s) with an undecodable image excluded "
                      f"(data.unreadable_test_items=exclude): {', '.join(excluded[:5])}")
    return {"unreadable_excluded": {"count": len(excluded), "items": excluded}}


def _release_process_group() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


MATMUL_PRECISIONS = ("highest", "high", "medium")


def set_matmul_precision(value: str) -> None:
    """Apply ``trainer.matmul_precision`` to float32 matmuls and cuDNN convolutions.

    ``highest`` computes both in IEEE float32 on GPUs with TF32 (the paper presets' "float32 as
    officially"); ``high`` allows TF32 in both, ``medium`` also bf16 in matmuls. ``torch.set_float32_matmul_precision``
    alone leaves cuDNN convolutions on TF32 (torch's default), so on an Ampere or newer GPU a
    ``highest`` run would still have computed every convolution in TF32.
    """
    if value not in MATMUL_PRECISIONS:
        raise ConfigError(f"trainer.matmul_precision must be one of {' | '.join(MATMUL_PRECISIONS)}, got {value!r}")
    torch.set_float32_matmul_precision(value)
    # the conv and RNN flags of torch's fp32_precision API (the legacy cudnn.allow_tf32 cannot be read after it)
    torch.backends.cudnn.fp32_precision = "ieee" if value == "highest" else "tf32"


def configure_torch(cfg: DictConfig) -> None:
    """The process-wide torch settings of a run, for training and re-evaluation alike: float32 matmul
    precision and intra-op threads (``trainer.threads``; auto keeps torch's default)."""
    set_matmul_precision(cfg.trainer.matmul_precision)
    if cfg.trainer.threads != "auto":
        torch.set_num_threads(int(cfg.trainer.threads))


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run every stage of ``cfg.method`` and return the results record (empty on ranks ≠ 0)."""
    start = time.time()
    silence_benign_noise()
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    configure_torch(cfg)   # before the run directory records the thread count
    rank_zero = _is_rank_zero()
    if cfg.leaderboard.enabled and rank_zero:  # a board URL typo fails now, not after the training
        from affectlab.leaderboard import board_url
        from affectlab.leaderboard.store import check_url

        check_url(board_url(cfg.leaderboard.url))
    run = prepare_run_dir(cfg, rank_zero)
    if run.finished:  # resume never re-tests or re-records a finished run
        if rank_zero:
            results = read_json(run.path / "results.json")
            note = reuse_note(run.read_info(), results.get("data_source"), data_source(cfg, None)[0])
            print(f"[affectlab] {run.path} already finished: returning its results.json unchanged (not re-tested, "
                  f"not recorded again; `affectlab test {run.path}` re-evaluates it){note}", flush=True)
            return results
        return {}
    t = cfg.trainer
    progress = RunProgress(enabled=bool(t.enable_progress_bar) and t.progress_bar == "run" and rank_zero)
    launched_here = rank_zero and RUN_DIR_ENV not in os.environ
    if launched_here:
        os.environ[RUN_DIR_ENV] = str(run.path)
    try:
        spec = METHODS.get(cfg.method.name)()
        ctx = RunContext(run.path, cfg)
        evaluated: Stage | None = None
        for stage in spec.stages(cfg, ctx):
            fit_stage(stage, cfg, run, progress)
            if stage.evaluate:
                evaluated = stage
        _release_process_group()
        if not rank_zero:
            return {}
        if evaluated is None:
            raise RuntimeError(f"method {cfg.method.name!r} yielded no stage with evaluate=True")
        metrics = test_stage(evaluated, cfg, run)
        record = build_record(cfg, run, evaluated, metrics, selected_on(cfg, evaluated, run), time.time() - start)
        atomic_write_json(run.path / "results.json", record)
        run.update_info(status="finished", finished=time.time())
        _record_on_leaderboard(record, cfg)
        return record
    except BaseException as err:
        if rank_zero and run.info_path.exists():  # the folder says why it holds no results
            reason = str(err).splitlines()[0] if str(err) else ""
            run.update_info(status="failed", error=f"{type(err).__name__}: {reason}"[:500])
        if isinstance(err, UnreadableItem):
            hint = f"`affectlab test {run.path} data.unreadable_test_items=exclude` tests them without such items"
            raise UnreadableItem(f"{err}\nThe trained stages are kept: {hint}.", err.path) from None
        raise
    finally:
        progress.close()
        if launched_here:
            os.environ.pop(RUN_DIR_ENV, None)


def selected_on(cfg: DictConfig, stage: Stage, run: RunDirectory) -> str:
    """How the evaluated stage's weights were chosen, for the record: ``val`` (best monitored validation),
    ``test`` (the same with ``data.select_on_test``: the validation split is the test split) or
    ``last_epoch`` (no monitor, or a monitor that no validation produced); a stage finished before its
    done.json said so falls back to whether it had a monitor."""
    done = read_json(run.stage_dir(stage.name) / "done.json")
    selection = done.get("selected_on") or ("val" if stage.monitor else "last_epoch")
    return "test" if selection == "val" and cfg.data.select_on_test else selection


def _record_on_leaderboard(record: dict[str, Any], cfg: DictConfig) -> None:
    if not cfg.leaderboard.enabled:
        return
    try:
        from affectlab.leaderboard import record_result
    except ImportError:
        return
    try:
        if not record_result(record, cfg):
            print(f"[affectlab] leaderboard: a record of {record['run_dir']} (stage {record['stage']!r}) is already "
                  "on the board; not added again", flush=True)
    except Exception as err:  # noqa: BLE001 - a board outage must not lose the run's own results.json
        warnings.warn(f"leaderboard record not written ({type(err).__name__}: {err}); results.json is intact")


def print_summary(record: dict[str, Any]) -> None:
    print(format_summary(record), flush=True)
