"""Fold aggregation: mean ± sample std (ddof=1) of every metric over the folds of a protocol."""
from __future__ import annotations

import hashlib
import math
import socket
import statistics
from datetime import datetime, timezone
from typing import Any

from affectlab.leaderboard.records import ITEM_PREFIX, MAIN_METRIC, SUMMARY_METRICS, format_value


def aggregate_metrics(per_fold: dict[int, dict[str, float]]) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """``(mean, std, n)`` per metric over folds; NaN or missing fold values are left out of a metric.

    ``std`` is the sample standard deviation and is only given for metrics seen in two or more
    folds; ``n`` counts the folds that entered each metric.
    """
    names = sorted({name for metrics in per_fold.values() for name in metrics})
    mean, std, count = {}, {}, {}
    for name in names:
        values = [float(m[name]) for m in per_fold.values()
                  if name in m and m[name] is not None and not math.isnan(float(m[name]))]
        if not values:
            continue
        mean[name] = statistics.fmean(values)
        count[name] = len(values)
        if len(values) > 1:
            std[name] = statistics.stdev(values)
    return mean, std, count


def _common(records: list[dict[str, Any]], key: str, label: str) -> Any:
    values = {str(r.get(key)) for r in records}
    if len(values) > 1:
        raise ValueError(f"folds disagree on {label}: {sorted(values)}; a CV aggregate needs one {label}")
    return records[0].get(key)


def cv_record(cv_id: str, fold_records: dict[int, dict[str, Any]], folds: list[int],
              protocol: str, cv_dir: str) -> dict[str, Any]:
    """The leaderboard record of a finished cross-validation (``kind: "cv"``)."""
    records = [fold_records[k] for k in folds]
    for key, label in (("method", "method"), ("dataset", "dataset"), ("task", "task"),
                       ("data_source", "data source")):
        _common(records, key, label)
    per_fold = {k: fold_records[k]["metrics"] for k in folds}
    mean, std, count = aggregate_metrics(per_fold)
    run_dirs = [str(fold_records[k].get("run_dir")) for k in folds]
    first = records[0]
    selected = sorted({str(r.get("selected_on")) for r in records})
    commits = sorted({str(r.get("git_commit")) for r in records if r.get("git_commit")})
    record = {
        "schema_version": first.get("schema_version", 1),
        "kind": "cv",
        "record_id": hashlib.sha256("\n".join([cv_id, *run_dirs]).encode()).hexdigest()[:32],
        "method": first["method"], "dataset": first["dataset"], "task": first["task"],
        "protocol": first.get("protocol") or protocol, "fold": None, "folds": folds, "split": first.get("split", "test"),
        "selected_on": selected[0] if len(selected) == 1 else "mixed",
        "metrics": mean, "metrics_std": std,
        "metrics_n": {k: v for k, v in count.items() if v != len(folds)},
        "per_fold": {str(k): v for k, v in per_fold.items()},
        "fold_run_dirs": {str(k): d for k, d in zip(folds, run_dirs)},
        "seed": first.get("seed"), "git_commit": commits[-1] if len(commits) == 1 else (first.get("git_commit")),
        "git_commits": commits, "git_dirty": any(bool(r.get("git_dirty")) for r in records),
        "config_hash": cv_id, "config": first.get("config"), "data_source": first.get("data_source"),
        "sweep_id": first.get("sweep_id"), "wandb_run_id": None, "wandb_url": None,
        "cv_dir": cv_dir, "host": socket.gethostname(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": sum(float(r.get("wall_time_s") or 0.0) for r in records),
        # a fold trained or tested on truncated data keeps the aggregate off the ranked board too
        "training": {"truncated": sorted({t for r in records
                                          for t in (r.get("training") or {}).get("truncated") or []})},
    }
    return record


def cv_markdown(record: dict[str, Any]) -> str:
    """Per-fold values and mean ± std of every metric, main and summary metrics first."""
    task = record["task"]
    folds = [str(k) for k in record["folds"]]
    first = [MAIN_METRIC[task], *(m for m in SUMMARY_METRICS[task] if m != MAIN_METRIC[task])]
    others = sorted(m for m in record["metrics"] if m not in first)
    items = [m for m in others if m.startswith(ITEM_PREFIX[task])]
    names = [m for m in first if m in record["metrics"]] + items + [m for m in others if m not in items]
    lines = [f"# {record['method']} on {record['dataset']}: {record['protocol']} ({record['data_source']})", "",
             "| metric | " + " | ".join(f"fold {k}" for k in folds) + " | mean ± std |",
             "|---|" + "---:|" * (len(folds) + 1)]
    for name in names:
        cells = [format_value(name, record["per_fold"][k].get(name)) for k in folds]
        lines.append(f"| {name} | " + " | ".join(cells) + " | "
                     + format_value(name, record["metrics"][name], record["metrics_std"].get(name)) + " |")
    lines += ["", "F1/UAR/WAR/recall in percent; ± is the sample standard deviation over folds."]
    return "\n".join(lines) + "\n"
