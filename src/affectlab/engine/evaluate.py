"""``affectlab test RUN_DIR``: rebuild a finished run's stages from its saved config, restore
their checkpoints and evaluate the evaluated stage in one process."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import lightning as L
from omegaconf import DictConfig, OmegaConf

from affectlab.config import ConfigError, compose, merge_into, parse_dotlist, split_overrides
from affectlab.engine.checkpoints import UnreadableCheckpoint, read_checkpoint
from affectlab.engine.io import atomic_write_json
from affectlab.engine.rundir import RunDirectory
from affectlab.engine.record import build_record
from affectlab.engine.runner import configure_torch, fit_stage, selected_on, test_stage
from affectlab.methods import METHODS, RunContext


def load_run_config(run_dir: Path, overrides: Sequence[str] = ()) -> DictConfig:
    saved_file = run_dir / "config.yaml"
    selectors, dotlist = split_overrides(overrides)
    if selectors:
        given = " ".join(f"{k}={v}" for k, v in selectors.items())
        raise ConfigError(f"{given}: a run is evaluated with the method, dataset and trainer it was trained with "
                          f"(from {saved_file}); only dotted overrides such as data.num_workers=0 apply")
    if not saved_file.is_file():
        raise ConfigError(f"{saved_file} not found: expected a run directory written by `affectlab train`")
    try:
        saved = OmegaConf.load(saved_file)
        saved.method.name, saved.data.name, saved.trainer.preset  # noqa: B018 - the keys a run's config has
    except Exception as err:  # noqa: BLE001 - YAML and OmegaConf errors alike mean a damaged file
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{saved_file}: not a run's config ({detail}); expected the config.yaml "
                          f"`affectlab train` wrote") from None
    base = compose([f"METHOD={saved.method.name}", f"DATA={saved.data.name}", f"TRAINER={saved.trainer.preset}"])
    cfg = merge_into(base, saved, str(saved_file))
    if dotlist:
        cfg = merge_into(cfg, parse_dotlist(dotlist), "command line")
    return cfg


def load_given_checkpoint(module: L.LightningModule, path: str | Path, run_dir: Path) -> None:
    """Load the weights of a checkpoint the user named (``affectlab test --checkpoint``), refusing a file
    that is no Lightning checkpoint or whose weights do not fit the run's evaluated stage with a ConfigError."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"checkpoint not found: {file}")
    hint = f"expected a checkpoint of this run's evaluated stage, e.g. {run_dir / 'stages' / '<stage>' / 'last.ckpt'}"
    try:
        weights = read_checkpoint(file)["state_dict"]
    except UnreadableCheckpoint as reason:
        raise ConfigError(f"{file}: {reason}; {hint}") from None
    expected = set(module.state_dict())
    missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
    if missing or unexpected:
        raise ConfigError(f"{file}: its weights do not fit this run's {type(module).__name__}: {len(missing)} of the "
                          f"module's keys missing from it (e.g. {missing[:3]}), {len(unexpected)} keys it does not have "
                          f"(e.g. {unexpected[:3]}); {hint}")
    try:
        module.load_state_dict(weights)
    except RuntimeError as err:  # same keys, other shapes (another width or number of classes)
        raise ConfigError(f"{file}: its weights do not fit this run's {type(module).__name__} "
                          f"({str(err).splitlines()[-1].strip()}); {hint}") from None


def evaluate_run(run_dir: str | Path, checkpoint: str | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    run_path = Path(run_dir)
    cfg = load_run_config(run_path, overrides)
    configure_torch(cfg)   # the run's threads and matmul precision, as in training
    start = time.time()
    run = RunDirectory(run_path, RunDirectory(run_path, "", True).read_info().get("config_hash", ""), resumed=True)
    spec = METHODS.get(cfg.method.name)()
    evaluated = None
    for stage in spec.stages(cfg, RunContext(run.path, cfg)):
        if not (run.stage_dir(stage.name) / "done.json").exists():
            raise ConfigError(f"{run_path}: stage {stage.name!r} never finished; resume the run with resume={run_path}")
        fit_stage(stage, cfg, run)
        if stage.evaluate:
            evaluated = stage
    if evaluated is None:
        raise ConfigError(f"method {cfg.method.name!r} has no evaluated stage")
    if checkpoint:
        load_given_checkpoint(evaluated.module, checkpoint, run_path)
    metrics = test_stage(evaluated, cfg, run)
    selection = "checkpoint" if checkpoint else selected_on(cfg, evaluated, run)
    record = build_record(cfg, run, evaluated, metrics, selection, time.time() - start)
    record["checkpoint"] = checkpoint
    out = run_path / f"eval-{time.strftime('%Y%m%d-%H%M%S')}.json"
    atomic_write_json(out, record)
    record["output"] = str(out)
    return record
