"""The run record (``results.json``, one leaderboard row; fields in docs/CONTRACTS.md): what was
trained and tested, on which data, how much of it, and where the time went."""
from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from affectlab.engine.io import cpu_capability, cpu_model, read_json
from affectlab.engine.rundir import RunDirectory
from affectlab.engine.scaling import effective_batch_size, world_size
from affectlab.engine.timing import overall
from affectlab.leaderboard.records import SCHEMA_VERSION
from affectlab.methods import METHODS, Stage

UNREADABLE_DIR = "unreadable"  # <run dir>/unreadable/<split>.txt: undecodable images training skipped


def unreadable_skipped(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Undecodable images that training/validation skipped, per split (from the datasets' logs)."""
    out = {}
    for log in sorted((run_dir / UNREADABLE_DIR).glob("*.txt")):
        files = sorted(set(log.read_text().split()))
        out[log.stem] = {"count": len(files), "files": files}
    return out


def training_amount(cfg: DictConfig, run: RunDirectory, test_batches: int | None) -> dict[str, Any]:
    """Epochs and steps of every stage, the ``limit_*`` settings, and which of them truncated the run's
    training or evaluation (``truncated``: empty for a full run; the board ranks only full runs);
    ``resumed``: stage → step it was resumed from and whether inside an epoch (not reproducible);
    ``attempts``: the git state and thread count of every resumed process (``run.json``)."""
    stages, timing, resumed = {}, {}, {}
    for done in sorted(run.path.glob("stages/*/done.json")):
        info = read_json(done)
        stages[done.parent.name] = info.get("trained")
        timing[done.parent.name] = info.get("timing")
        if info.get("resumed"):
            resumed[done.parent.name] = info["resumed"]
    t = cfg.trainer
    limits = {"limit_train_batches": t.limit_train_batches, "limit_val_batches": t.limit_val_batches,
              "limit_test_batches": t.limit_test_batches}
    used = {"limit_train_batches": [s["train_batches_per_epoch"] for s in stages.values() if s],
            "limit_val_batches": [s["val_batches"] for s in stages.values() if s],
            "limit_test_batches": [test_batches]}
    truncated = [f"trainer.{key}={value}" for key, value in limits.items() if _cut_batches(value, used[key])]
    if cfg.data.get("limit_items"):
        truncated.append(f"data.limit_items={cfg.data.limit_items}")
    return {"stages": stages, **limits, "limit_items": cfg.data.get("limit_items"), "test_batches": test_batches,
            "truncated": truncated, "resumed": resumed, "attempts": run.read_info().get("attempts", []),
            "timing": {"stages": timing, "overall": overall(timing)}}


def _cut_batches(value: Any, batches: list[int | None]) -> bool:
    """Whether a Lightning ``limit_*`` value cut batches: a fraction below 1, or a count that some
    loader reached (a count above a loader's length takes all of it)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return value < 1.0
    return isinstance(value, int) and any(b is None or b >= value for b in batches)


def data_source(cfg: DictConfig, datamodule: Any) -> tuple[str, str | None]:
    """The record's ``data_source`` and, when it could not be identified but is assumed, why."""
    source = getattr(datamodule, "data_source", None)
    if source:
        return str(source), None
    if cfg.data.root is None:
        from affectlab.synth import GENERATOR_VERSION

        return f"synthetic-v{GENERATOR_VERSION}-{cfg.data.synthetic_profile}-seed{cfg.data.synthetic_seed}", None
    from affectlab.synth import SYNTHETIC_MARKER

    root = Path(cfg.data.root)
    inside = root / SYNTHETIC_MARKER  # travels with a copy of the release folder
    if inside.is_file():
        version, copy = (inside.read_text().split() + ["", ""])[:2]
        return f"synthetic-v{version}-{copy}", None
    markers = sorted(root.parent.glob(".complete-*"))  # the generator's marker beside a release it wrote
    if markers:
        return f"synthetic-v{markers[0].read_text().strip()}-{root.parent.name}", None
    return "real", (f"no synthetic-generator marker ({SYNTHETIC_MARKER} in, or .complete-* beside, {root}): "
                    "assumed real data")


def build_record(cfg: DictConfig, run: RunDirectory, stage: Stage, metrics: dict[str, float],
                 selected_on: str, wall_time: float) -> dict[str, Any]:
    """The record of the evaluated ``stage``: its test ``metrics``, the config, data source, training amount."""
    spec = METHODS.get(cfg.method.name)
    info = run.read_info()
    dm = stage.datamodule
    source, source_note = data_source(cfg, dm)
    return {
        "schema_version": SCHEMA_VERSION,
        "method": cfg.method.name,
        "dataset": cfg.data.name,
        "task": spec.task,
        "protocol": getattr(dm, "protocol", None) or f"{cfg.data.name}/{cfg.data.task}",
        "fold": int(cfg.data.fold),
        "stage": stage.name,
        "split": "test",
        "selected_on": selected_on,
        "metrics": metrics,
        "seed": int(cfg.seed),
        "git_commit": info.get("git_commit"),
        "git_dirty": info.get("git_dirty"),
        "config_hash": run.config_hash,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "data_source": source,
        "run_dir": str(run.path),
        "wandb_run_id": (info.get("wandb_ids") or {}).get(stage.name),
        "wandb_url": getattr(stage, "url", None),
        "host": platform.node(),
        "cpu": cpu_model(),
        "cpu_capability": cpu_capability(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_time_s": round(wall_time, 2),
        "devices": world_size(cfg),
        "precision": cfg.trainer.precision,
        "test_pass": "single_process",
        "effective_batch_size": effective_batch_size(cfg),
        "lr_scaling": cfg.trainer.lr_scaling,
        "sweep_id": cfg.sweep_id,
        "test_set": {**(dm.test_set_record() if hasattr(dm, "test_set_record") else {}),
                     **getattr(stage, "test_set", {})},
        "data_source_unverified": source_note,
        "training": training_amount(cfg, run, getattr(stage, "test_batches", None)),
        "reference": getattr(stage, "reference", {}),
        "unreadable_skipped": unreadable_skipped(run.path),
    }
