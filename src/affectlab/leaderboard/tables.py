"""Leaderboard tables: records grouped and ranked, the published reference rows beside them.

One table per (data source kind, dataset, task): synthetic and real records are never ranked
together. Rows are methods, ranked by the task's main metric: the best cross-validated record
of each method first, then its best single-fold run (or every record with ``all_runs``).
Published numbers appear under each table as separate "reported" rows, never ranked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from affectlab.leaderboard.records import (
    ITEM_PREFIX, MAIN_METRIC, SUMMARY_METRICS, higher_is_better, item_metrics, source_kind,
)
from affectlab.leaderboard.stale import REPO_ROOT, staleness

REFERENCE_FILE = REPO_ROOT / "experiments" / "reference_results.yaml"
TASK_TITLE = {"au_occurrence": "AU occurrence", "au_intensity": "AU intensity", "expression": "expression"}


@dataclass
class Row:
    """One line of a board table: a record (or a paper's reported numbers) with its provenance and staleness."""

    method: str
    evaluation: str
    metrics: dict[str, float]
    std: dict[str, float] = field(default_factory=dict)
    reported: bool = False
    n_folds: int = 1
    selected_on: str = ""
    data_source: str = ""
    seed: str = ""
    commit: str = ""
    stale: bool | None = None
    stale_reason: str = ""
    sweep_id: str = ""
    date: str = ""
    source: str = ""
    record_id: str = ""
    #: why the record's data source is only assumed (shown as a † note under the table)
    source_note: str = ""

    @property
    def label(self) -> str:
        return self.method + (" †" if self.source_note else "")


@dataclass
class Table:
    """The board of one source kind (synthetic / real) × dataset × task: ranked rows and the papers' numbers."""

    source_kind: str
    dataset: str
    task: str
    rows: list[Row]
    references: list[Row]
    #: records left off the ranking because their training or evaluation was truncated (limit_*)
    truncated_hidden: int = 0

    def notes(self) -> list[str]:
        """Lines under the table: unranked truncated runs, data sources that could not be identified."""
        out = []
        if self.truncated_hidden:
            out.append(f"{self.truncated_hidden} run(s) with truncated training or evaluation (trainer.limit_* or "
                       "data.limit_items) not ranked; `affectlab leaderboard --include-truncated` lists them")
        for row in self.rows:
            if row.source_note:
                out.append(f"† {row.method} ({row.evaluation}): data source not identified: {row.source_note}")
        return out

    @property
    def slug(self) -> str:
        return f"{self.dataset}-{self.task}-{self.source_kind}"

    @property
    def title(self) -> str:
        return f"{self.dataset.upper()} · {TASK_TITLE[self.task]} · {self.source_kind} data"

    @property
    def main_metric(self) -> str:
        return MAIN_METRIC[self.task]

    @property
    def summary_metrics(self) -> tuple[str, ...]:
        return SUMMARY_METRICS[self.task]

    @property
    def items(self) -> list[str]:
        seen: dict[str, None] = {}
        for row in self.rows + self.references:
            for item in _items(row, self.task):
                seen.setdefault(item, None)
        return sorted(seen)

    def item_metric(self, item: str) -> str:
        prefix = ITEM_PREFIX[self.task]
        return prefix + (item[2:] if prefix.endswith("_au") else item)


def _items(row: Row, task: str) -> dict[str, float]:
    return item_metrics({"task": task, "metrics": row.metrics})


# ---------------------------------------------------------------------------- rows
def load_references(path: str | Path = REFERENCE_FILE) -> list[dict[str, Any]]:
    """Published numbers from ``experiments/reference_results.yaml`` (values turned into fractions)."""
    path = Path(path)
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text()) or {}
    refs = data.get("references")
    if not isinstance(refs, list):
        raise ValueError(f"{path}: expected a top-level 'references' list")
    out = []
    for i, ref in enumerate(refs):
        for key in ("method", "dataset", "task", "metrics", "paper"):
            if key not in ref:
                raise ValueError(f"{path}: reference {i + 1} lacks {key!r}")
        if ref.get("reported") is not True:
            raise ValueError(f"{path}: reference {i + 1} must say 'reported: true'")
        scale = 0.01 if ref.get("unit", "percent") == "percent" else 1.0
        metrics = {k: float(v) * scale if not k.startswith("mae") else float(v) for k, v in ref["metrics"].items()}
        out.append({**ref, "metrics": metrics})
    return out


def _evaluation(record: dict[str, Any]) -> tuple[str, int]:
    if record.get("kind") == "cv":
        folds = record.get("folds") or []
        label = f"cv {len(folds)} fold{'s' if len(folds) != 1 else ''}"
        metric = MAIN_METRIC.get(record.get("task"), "")
        counted = (record.get("metrics_n") or {}).get(metric)  # folds whose value was not NaN, when fewer
        if counted is not None:
            label += f", {metric} over {counted}"
        return label, len(folds)
    fold = record.get("fold")
    return (f"fold {fold}" if fold is not None else "single run"), 1


def _row(record: dict[str, Any], repo_root: Path, memo: dict) -> Row:
    evaluation, n = _evaluation(record)
    commit = str(record.get("git_commit") or "")
    key = (record["method"], commit)
    if key not in memo:
        memo[key] = staleness(record["method"], commit or None, repo_root)
    stale, reason = memo[key]
    if record.get("git_dirty"):
        reason += "; recorded from a tree with uncommitted changes"
    seed = record.get("seed")
    if truncated(record):
        evaluation += " (truncated)"
    note = record.get("data_source_unverified") or ("" if record.get("data_source") else "none recorded")
    return Row(
        method=record["method"], evaluation=evaluation, metrics=record["metrics"], source_note=str(note),
        std=record.get("metrics_std") or {}, n_folds=n, selected_on=str(record.get("selected_on") or ""),
        data_source=str(record.get("data_source") or ""),
        seed="" if seed is None else str(seed), commit=commit[:10], stale=stale, stale_reason=reason,
        sweep_id=str(record.get("sweep_id") or ""), date=str(record.get("timestamp") or "")[:10],
        record_id=str(record.get("record_id") or ""),
    )


def _rank_key(row: Row, metric: str) -> tuple:
    value = row.metrics.get(metric)
    missing = value is None or math.isnan(value)
    score = 0.0 if missing else (value if higher_is_better(metric) else -value)
    return (0 if row.evaluation.startswith("cv") else 1, missing, -score)


def truncated(record: dict[str, Any]) -> list[str]:
    """The ``limit_*`` settings that truncated a record's training or evaluation (empty: a full run)."""
    return list((record.get("training") or {}).get("truncated") or [])


def build_tables(records: Iterable[dict[str, Any]], references: Iterable[dict[str, Any]] = (),
                 dataset: str | None = None, all_runs: bool = False, include_truncated: bool = False,
                 repo_root: Path = REPO_ROOT) -> list[Table]:
    """Group records into ranked tables (see the module docstring). Runs with truncated training or
    evaluation are counted under their table but not ranked unless ``include_truncated``."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    hidden: dict[tuple[str, str, str], int] = {}
    for record in records:
        if dataset and record["dataset"] != dataset:
            continue
        key = (source_kind(record), record["dataset"], record["task"])
        groups.setdefault(key, [])
        if truncated(record) and not include_truncated:
            hidden[key] = hidden.get(key, 0) + 1
            continue
        groups[key].append(record)
    refs = [r for r in references if not dataset or r["dataset"] == dataset]
    tables, memo = [], {}
    for (kind, ds, task), group in sorted(groups.items()):
        metric = MAIN_METRIC[task]
        rows = [_row(r, repo_root, memo) for r in group]
        if not all_runs:
            best: dict[tuple[str, bool], Row] = {}
            for row in rows:
                key = (row.method, row.evaluation.startswith("cv"))
                if key not in best or _rank_key(row, metric) < _rank_key(best[key], metric):
                    best[key] = row
            rows = list(best.values())
        rows.sort(key=lambda r: _rank_key(r, metric))
        ref_rows = [
            Row(method=r["method"], evaluation=r.get("protocol", ""), metrics=r["metrics"], reported=True,
                source=f"{r['paper']} ({r.get('evidence', '')})".strip(), data_source="real")
            for r in refs if r["dataset"] == ds and r["task"] == task
        ]
        tables.append(Table(kind, ds, task, rows, ref_rows, truncated_hidden=hidden.get((kind, ds, task), 0)))
    return tables


def metric_header(metric: str) -> str:
    """Column title of a metric: ``f1_mean`` → ``F1 mean``."""
    if metric.endswith("_mean"):
        return metric[:-5].upper() + " mean"
    return metric.upper()
