"""What a leaderboard record is: validation, identity, main metric and per-item metrics.

A record is the ``results.json`` of one evaluated run (see docs/CONTRACTS.md "Results record")
or a cross-validation aggregate (``kind: "cv"``, ``fold: None``, ``folds``, ``metrics_std``).
Metric values are fractions (F1 0.561, not 56.1); the renderer shows percentages.
"""
from __future__ import annotations

import hashlib
import json
import math
from numbers import Real
from typing import Any

#: version of the record layout; bump when a field changes meaning (import refuses newer ones)
SCHEMA_VERSION = 1

REQUIRED = ("method", "dataset", "task", "metrics")
TASKS = ("au_occurrence", "au_intensity", "expression")

#: protocol main metric per task (higher is better for every one of them)
MAIN_METRIC = {"au_occurrence": "f1_mean", "au_intensity": "icc_mean", "expression": "uar"}
#: aggregate metrics shown as columns, per task
SUMMARY_METRICS = {
    "au_occurrence": ("f1_mean",),
    "au_intensity": ("icc_mean", "mae_mean", "pcc_mean"),
    "expression": ("uar", "war"),
}
#: prefix of the per-AU / per-class metric drawn in the bar charts, per task
ITEM_PREFIX = {"au_occurrence": "f1_au", "au_intensity": "icc_au", "expression": "recall_"}
LOWER_IS_BETTER = ("mae",)
#: metrics shown as percentages
PERCENT_PREFIXES = ("f1", "uar", "war", "recall", "acc")


class RecordError(ValueError):
    """A record that cannot go on the board (missing field, bad metric value, newer schema)."""


def validate_record(record: dict[str, Any], where: str = "record") -> dict[str, Any]:
    """Check a record's required fields and metric values; return it with defaults filled."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(record).__name__}")
    missing = [k for k in REQUIRED if record.get(k) in (None, "")]
    if missing:
        raise RecordError(f"{where}: missing required field(s) {', '.join(missing)}")
    for key in ("method", "dataset", "task"):
        if not isinstance(record[key], str):
            raise RecordError(f"{where}: field {key!r} must be a string, got {record[key]!r}")
    for key in ("seed", "fold"):
        value = record.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise RecordError(f"{where}: field {key!r} must be an integer or null, got {value!r}")
    tags = record.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise RecordError(f"{where}: field 'tags' must be a list of strings, got {tags!r}")
    if record.get("config") is not None and not isinstance(record["config"], dict):
        raise RecordError(f"{where}: field 'config' must be a mapping, got {type(record['config']).__name__}")
    if record["task"] not in TASKS:
        raise RecordError(f"{where}: task {record['task']!r} is not one of {', '.join(TASKS)}")
    version = record.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise RecordError(
            f"{where}: schema_version {version!r} is newer than this affectlab understands ({SCHEMA_VERSION})"
        )
    metrics = record["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        raise RecordError(f"{where}: 'metrics' must be a non-empty mapping of name to number")
    for name, value in metrics.items():
        if name.startswith(("test/", "val/", "train/")):
            raise RecordError(f"{where}: metric {name!r} must be named without its stage prefix")
        if isinstance(value, bool) or not isinstance(value, Real):
            raise RecordError(f"{where}: metric {name!r} has non-numeric value {value!r}")
    out = dict(record)
    out["schema_version"] = version
    out.setdefault("kind", "cv" if out.get("folds") else "run")
    out.setdefault("split", "test")
    out.setdefault("protocol", f"{out['dataset']}/unknown")
    out["metrics"] = {k: float(v) for k, v in metrics.items()}
    return out


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def record_id(record: dict[str, Any]) -> str:
    """Identity of a record: its own ``record_id`` or a hash of its content.

    Inserting the same record twice (a retried write, an import of an overlapping JSONL
    file) therefore adds it once.
    """
    if record.get("record_id"):
        return str(record["record_id"])
    body = {k: v for k, v in record.items() if k != "record_id"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:32]


def run_key(record: dict[str, Any]) -> str | None:
    """Identity of the evaluation a run record reports: its run directory and evaluated stage. The
    store keeps at most one record per key, so re-testing a run never adds a second row
    (None for cross-validation aggregates and records without a run directory)."""
    if record.get("kind", "run") != "run" or not record.get("run_dir"):
        return None
    text = f"{record['run_dir']}\n{record.get('stage') or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def source_kind(record: dict[str, Any]) -> str:
    """``synthetic`` or ``real``: records of different kinds are never ranked together."""
    source = str(record.get("data_source") or "")
    return "real" if source == "real" else "synthetic"


def main_metric(task: str) -> str:
    return MAIN_METRIC[task]


def higher_is_better(metric: str) -> bool:
    return not metric.startswith(LOWER_IS_BETTER)


def item_metrics(record: dict[str, Any]) -> dict[str, float]:
    """Per-AU / per-class values of the task's item metric, keyed by the item (``au01``, ``happy``)."""
    prefix = ITEM_PREFIX[record["task"]]
    items = {}
    for name, value in record["metrics"].items():
        if name.startswith(prefix) and not name.endswith("_mean"):
            item = name[len(prefix):]
            items[("au" + item) if prefix.endswith("_au") else item] = value
    return items


def is_percent(metric: str) -> bool:
    return metric.startswith(PERCENT_PREFIXES)


def format_value(metric: str, value: float | None, std: float | None = None) -> str:
    """Text of one cell: percentages for F1/UAR/WAR/recall, three decimals otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    scale, digits = (100.0, 1) if is_percent(metric) else (1.0, 3)
    text = f"{value * scale:.{digits}f}"
    if std is not None and not math.isnan(std):
        text += f" ± {std * scale:.{digits}f}"
    return text
