"""Run directories: ``runs/<method>/<data>/<timestamp>-<id>/`` with provenance, and resume lookup."""
from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from affectlab.config import ConfigError, config_hash, slug, to_yaml
from affectlab.engine.checkpoints import LAST, PREVIOUS
from affectlab.engine.io import (atomic_write_json, atomic_write_text, cpu_capability, cpu_model, environment_summary,
                                 git_state, read_json)

RUN_DIR_ENV = "AFFECTLAB_RUN_DIR"  # hands rank 0's run directory to the ranks Lightning launches


def _shared_run_name() -> str | None:
    """A name every rank of a cluster job computes identically (SLURM, torchrun)."""
    if os.environ.get("SLURM_JOB_ID"):
        return f"slurm{os.environ['SLURM_JOB_ID']}"
    if os.environ.get("TORCHELASTIC_RUN_ID") and os.environ["TORCHELASTIC_RUN_ID"] != "none":
        return f"torchrun-{slug(os.environ['TORCHELASTIC_RUN_ID'])}"
    return None


@dataclass
class RunDirectory:
    """A run's folder (``run.json``, checkpoints, logs, results) and whether it resumes an earlier run
    with the same config hash."""

    path: Path
    config_hash: str
    resumed: bool
    #: a resumed run that had already finished (its ``results.json`` is final)
    finished: bool = False

    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    def read_info(self) -> dict[str, Any]:
        return read_json(self.info_path) if self.info_path.exists() else {}

    def update_info(self, **fields: Any) -> None:
        info = self.read_info()
        info.update(fields)
        atomic_write_json(self.info_path, info)

    def stage_dir(self, name: str) -> Path:
        path = self.path / "stages" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def artifact_dir(self) -> Path:
        path = self.path / "artifacts"
        path.mkdir(parents=True, exist_ok=True)
        return path


def experiment_dir(cfg: DictConfig) -> Path:
    return Path(cfg.run_root) / slug(cfg.method.name) / slug(cfg.data.name)


def find_resumable(cfg: DictConfig, digest: str) -> Path | None:
    """Newest run of the same experiment (same config hash) that has a checkpoint or finished."""
    candidates = []
    for info_file in experiment_dir(cfg).glob("*/run.json"):
        try:
            info = json.loads(info_file.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        run = info_file.parent
        has_ckpt = any(any(run.glob(f"stages/*/{name}")) for name in (LAST, PREVIOUS, "done.json"))
        if info.get("config_hash") == digest and (has_ckpt or info.get("status") == "finished"):
            candidates.append((info.get("created", 0), run))
    return max(candidates)[1] if candidates else None


def resume_attempt(info: dict[str, Any], run_path: Path) -> dict[str, Any]:
    """What this process resumes ``run_path`` with: its git state and intra-op thread count (both can
    change a CPU result). Warns when the code differs from the run's start: the record keeps the start
    commit (so later changes of the method make it stale) and lists every attempt."""
    attempt = {"time": time.time(), **git_state(), "torch_threads": environment_summary()["torch_threads"]}
    started = info.get("git_commit")
    if attempt["git_commit"] != started or attempt["git_dirty"]:
        state = f"{attempt['git_commit']}{' with uncommitted changes' if attempt['git_dirty'] else ''}"
        warnings.warn(f"resuming {run_path} at commit {state}, but the run started at {started}: its results "
                      "mix two versions of the code; the record keeps the start commit and lists every attempt "
                      "(training.attempts)", stacklevel=2)
    return attempt


def reuse_note(info: dict[str, Any], trained_on: str | None = None, data_now: str | None = None) -> str:
    """Why a finished run's results may not be this checkout's and machine's: empty when it finished with this
    code on this kind of CPU and data, otherwise both commits, both CPUs and/or both data sources (a reused run
    is never re-trained, so it keeps its own numbers; CPU results of one seed differ between machines).
    ``trained_on`` is the run's recorded ``data_source``, ``data_now`` the one this config reads; only copies of
    the synthetic generator (``synthetic-v<version>-…``) are compared."""
    note = ""
    generated = [s for s in (trained_on, data_now) if s and s.startswith("synthetic-v")]
    if len(generated) == 2 and trained_on != data_now:
        note += (f"; it was trained on the synthetic copy {trained_on}, and this config reads {data_now}: its "
                 "numbers are that copy's (a fresh run_root trains on this one)")
    now, then = git_state(), info.get("git_commit")
    if then and now["git_commit"] and (then != now["git_commit"] or now["git_dirty"]):
        state = f"{now['git_commit'][:10]}{' with uncommitted changes' if now['git_dirty'] else ''}"
        note += (f"; it was trained at commit {then[:10]} and the code is now at {state}: its numbers are that "
                 "commit's (a fresh run_root trains this code)")
    env = info.get("environment") or {}
    if "cpu_capability" in env:   # recorded since 2026-12-05
        cpu, here = f"{env.get('cpu')} ({env['cpu_capability']})", f"{cpu_model()} ({cpu_capability()})"
        if cpu != here:
            note += f"; it was trained on another CPU, {cpu}, than this one, {here}"
    return note


def prepare_run_dir(cfg: DictConfig, is_rank_zero: bool) -> RunDirectory:
    """Create (rank 0) or locate the run directory, honouring ``cfg.resume``."""
    digest = config_hash(cfg)
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited and not is_rank_zero:
        return RunDirectory(Path(inherited), digest, resumed=(Path(inherited) / "run.json").exists())

    resume_path: Path | None = None
    if cfg.resume == "auto":
        resume_path = find_resumable(cfg, digest)
    elif cfg.resume:
        resume_path = Path(cfg.resume)
        info_file = resume_path / "run.json"
        if not info_file.is_file():
            raise ConfigError(f"resume={cfg.resume}: {info_file} not found (expected a run directory)")
        saved = read_json(info_file).get("config_hash")
        if saved != digest:
            raise ConfigError(
                f"resume={cfg.resume}: that run's config hash {saved} differs from this config's {digest}; "
                "resume only continues the same experiment"
            )
    if resume_path is not None:
        run = RunDirectory(resume_path, digest, resumed=True)
        info = run.read_info()
        if info.get("status") == "finished" and (resume_path / "results.json").is_file():
            run.finished = True
        elif is_rank_zero:
            attempt = resume_attempt(info, resume_path)
            run.update_info(status="running", resumes=info.get("resumes", 0) + 1,
                            attempts=[*info.get("attempts", []), attempt])
        return run

    name = cfg.run_name or _shared_run_name() or f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    path = experiment_dir(cfg) / slug(name)
    run = RunDirectory(path, digest, resumed=False)
    if is_rank_zero:
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path / "config.yaml", to_yaml(cfg))
        atomic_write_json(
            run.info_path,
            {
                "config_hash": digest,
                "created": time.time(),
                "status": "running",
                "seed": int(cfg.seed),
                **git_state(),
                "environment": environment_summary(),
            },
        )
    return run
