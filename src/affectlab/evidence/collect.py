"""``affectlab evidence``: run a method's default and its controls over N seeds through the runner of
``make train`` and compare them on the method's test metric.

Every trained arm × seed is one ordinary run (``affectlab.engine.runner.train``, in this process) in
``<out>/runs/<arm>/``, with ``resume=auto``: running the same command into the same ``--out`` again
reuses the finished runs (one trained at another commit says so, and the table lists every run's commit)
and continues the interrupted ones. Trivial arms are scored once on the test labels of the default's
datamodule. ``evidence.json`` is rewritten after every run, so an interrupted
evidence keeps what it measured.
"""
from __future__ import annotations

import statistics
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from omegaconf import DictConfig

from affectlab.config import ConfigError, compose, slug
from affectlab.evidence.arms import Arm, Evidence
from affectlab.evidence.trivial import TRIVIAL
from affectlab.leaderboard.records import SCHEMA_VERSION

#: before the user's overrides (which may change them): controls are not leaderboard rows
DEFAULTS = ("leaderboard.enabled=false",)


@dataclass
class PlannedRun:
    """One trained arm at one seed, its config composed and validated."""

    arm: Arm
    seed: int
    cfg: DictConfig


@dataclass
class Plan:
    """Everything ``make evidence`` will run, checked before the first run starts."""

    method: str
    evidence: Evidence
    default_cfg: DictConfig
    seeds: list[int]
    runs: list[PlannedRun]


def method_evidence(method: str) -> Evidence:
    """The evidence a registered method declares (``MethodSpec.evidence``); a clear error if none."""
    from affectlab.methods import METHODS

    evidence = getattr(METHODS.get(method), "evidence", None)
    if evidence is None:
        raise ConfigError(f"method {method!r} declares no evidence arms (MethodSpec.evidence); "
                          f"methods that do: {', '.join(n for n in METHODS.names() if METHODS.get(n).evidence)}")
    return evidence


def arm_config(overrides: Sequence[str], arm: Arm, evidence: Evidence, seed: int, runs_root: Path) -> DictConfig:
    """The config of ``arm`` at ``seed``: evidence defaults, the user's overrides, the arm's, the seed."""
    seeds = [f"{key}={seed}" for key in evidence.seed_keys]
    where = [f"run_root={runs_root / slug(arm.name)}", "resume=auto"]
    try:
        return compose([*DEFAULTS, *overrides, *arm.overrides, *seeds, *where])
    except ConfigError as err:
        raise ConfigError(f"evidence arm {arm.name!r} ({' '.join(arm.overrides) or 'no overrides'}): {err}") from None


def plan(overrides: Sequence[str], seeds: int, runs_root: Path) -> Plan:
    """Compose and validate every arm × seed config (a mistake fails here, before any training)."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    base = compose([*DEFAULTS, *overrides])
    evidence = method_evidence(base.method.name)
    from affectlab.methods import METHODS

    task = METHODS.get(base.method.name).task
    for arm in evidence.controls:
        if arm.trivial and TRIVIAL.get(arm.trivial).task != task:
            raise ConfigError(f"evidence arm {arm.name!r}: trivial predictor {arm.trivial!r} is for "
                              f"{TRIVIAL.get(arm.trivial).task}, method {base.method.name!r} is {task}")
    seed_values = [int(base.seed) + i for i in range(seeds)]
    runs = [PlannedRun(arm, s, arm_config(overrides, arm, evidence, s, runs_root))
            for arm in evidence.arms if arm.trained for s in seed_values]
    return Plan(base.method.name, evidence, runs[0].cfg, seed_values, runs)


def summarise(values: list[Optional[float]], trivial: bool) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof 1) over the seeds that produced a value; a trivial
    predictor is deterministic (sd 0), a trained arm with one value has no sd (None)."""
    ok = [v for v in values if v is not None]
    mean = statistics.fmean(ok) if ok else None
    sd = 0.0 if trivial and ok else (statistics.stdev(ok) if len(ok) >= 2 else None)
    return {"n": len(ok), "mean": mean, "sd": sd}


def verdict(default: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    """``default − control`` against twice the control's seed standard deviation."""
    out = {"control": control["name"], "default_mean": default["mean"], "control_mean": control["mean"],
           "difference": None, "control_sd": control["sd"], "threshold": None, "beats": None}
    if default["mean"] is None or control["mean"] is None:
        return out
    out["difference"] = default["mean"] - control["mean"]
    if control["sd"] is not None:
        out["threshold"] = 2.0 * control["sd"]
        out["beats"] = bool(out["difference"] > out["threshold"])
    return out


def _arm_entry(arm: Arm, metric: str) -> dict[str, Any]:
    help_text = arm.help or (TRIVIAL.get(arm.trivial).help if arm.trivial else "")
    return {"name": arm.name, "kind": "trained" if arm.trained else "trivial", "overrides": list(arm.overrides),
            "trivial": arm.trivial, "help": help_text, "metric": metric, "runs": []}


def _refresh(result: dict[str, Any]) -> None:
    for entry in result["arms"]:
        entry.update(summarise([r.get("value") for r in entry["runs"]], entry["kind"] == "trivial"))
        entry["breakdown"] = {k: summarise([r.get("breakdown", {}).get(k) for r in entry["runs"]],
                                           entry["kind"] == "trivial") for k in result.get("breakdown", [])}
    default, *controls = result["arms"]
    result["verdicts"] = [verdict(default, c) for c in controls]


def run_evidence(overrides: Sequence[str], seeds: int = 3, out: Optional[Path] = None, command: str = "",
                 train: Optional[Callable[[DictConfig], dict]] = None,
                 on_update: Optional[Callable[[dict], None]] = None) -> dict[str, Any]:
    """Run every arm × seed of the method selected by ``overrides``; returns the evidence result
    (``evidence.json``'s content). ``train`` defaults to the runner of ``make train``."""
    if train is None:
        from affectlab.engine.runner import train
    overrides = list(overrides)
    probe = compose([*DEFAULTS, *overrides])  # a selection mistake fails before a folder is made
    out = Path(out) if out else Path(probe.run_root) / "evidence" / \
        f"{slug(probe.method.name)}-{slug(probe.data.name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    p = plan(overrides, seeds, out / "runs")
    ev, cfg = p.evidence, p.default_cfg
    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "method": p.method, "dataset": cfg.data.name, "fold": int(cfg.data.fold),
        "metric": ev.metric, "breakdown": list(ev.breakdown), "seeds": p.seeds, "seed_keys": list(ev.seed_keys),
        "overrides": overrides,
        "command": command, "out": str(out), "runner": "affectlab.engine.runner.train",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished": None, "data_source": None,
        "git_commit": None, "git_dirty": None, "arms": [_arm_entry(a, ev.metric) for a in ev.arms], "verdicts": [],
    }
    entries = {e["name"]: e for e in result["arms"]}
    update = on_update or (lambda r: None)
    total = len(p.runs)
    for i, run in enumerate(p.runs, 1):
        print(f"[evidence] run {i}/{total}: arm {run.arm.name!r} seed {run.seed} "
              f"{' '.join(run.arm.overrides)}".rstrip(), flush=True)
        done = _train_one(run, ev, train, result)
        entries[run.arm.name]["runs"].append(done)
        score = f"{ev.metric} {done['value']:.4f}" if done.get("value") is not None else f"FAILED: {done['error']}"
        print(f"[evidence] arm {run.arm.name!r} seed {run.seed}: {score} ({done.get('wall_time_s')} s) "
              f"{done.get('run_dir') or ''}".rstrip(), flush=True)
        _refresh(result)
        update(result)
    for arm in ev.controls:
        if arm.trivial:
            print(f"[evidence] arm {arm.name!r}: trivial predictor {arm.trivial!r} on the test labels", flush=True)
            entries[arm.name]["runs"].append(_score_trivial(arm, cfg, ev))
    _refresh(result)
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    update(result)
    return result


def _train_one(run: PlannedRun, ev: Evidence, train: Callable[[DictConfig], dict], result: dict) -> dict[str, Any]:
    metric = ev.metric
    start = time.time()
    try:
        record = train(run.cfg)
    except Exception as err:  # noqa: BLE001 - one failed run is reported; the other arms still run
        traceback.print_exc()
        return {"seed": run.seed, "value": None, "error": f"{type(err).__name__}: {err}",
                "wall_time_s": round(time.time() - start, 2), "run_dir": None}
    provenance = {key: record.get(key) for key in ("data_source", "git_commit", "git_dirty")}
    for key, value in provenance.items():
        result[key] = result[key] or value
    metrics = record.get("metrics", {})
    if metric not in metrics:
        return {"seed": run.seed, "value": None, "run_dir": record.get("run_dir"), **provenance,
                "error": f"the run recorded no test metric {metric!r} (it has: {', '.join(sorted(metrics))})",
                "wall_time_s": record.get("wall_time_s")}
    return {"seed": run.seed, "value": float(metrics[metric]), "run_dir": record.get("run_dir"), **provenance,
            "config_hash": record.get("config_hash"), "wall_time_s": record.get("wall_time_s"),
            "stage": record.get("stage"), "breakdown": _breakdown(metrics, ev),
            "resumed": record.get("training", {}).get("resumed") or {}}


def _breakdown(metrics: dict[str, Any], ev: Evidence) -> dict[str, float]:
    return {k: float(metrics[k]) for k in ev.breakdown if metrics.get(k) is not None}


def _score_trivial(arm: Arm, cfg: DictConfig, ev: Evidence) -> dict[str, Any]:
    from data_modules import create_datamodule

    from affectlab.engine.runner import exclude_unreadable

    start = time.time()
    datamodule = create_datamodule(cfg.data)
    datamodule.prepare_data()
    test_set = exclude_unreadable(cfg, datamodule)  # the items the trained arms' test pass leaves out
    metrics = TRIVIAL.get(arm.trivial).score(datamodule, cfg.trainer.limit_test_batches)
    note = "not trained: scored on the test labels"
    if test_set:
        note += (f"; {test_set['unreadable_excluded']['count']} test item(s) with an undecodable image excluded "
                 "(data.unreadable_test_items=exclude), as in the trained arms' test pass")
    return {"seed": None, "value": float(metrics[ev.metric]), "run_dir": None, "metrics": metrics,
            "breakdown": _breakdown(metrics, ev), "wall_time_s": round(time.time() - start, 2), "note": note}
