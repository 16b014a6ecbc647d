"""Leaderboard rendering: Markdown, a static HTML page (sortable tables, bar charts) and PNGs.

One table per (data source kind, dataset, task): synthetic and real records are never ranked
together. Rows are methods, ranked by the task's main metric: the best cross-validated record
of each method first, then its best single-fold run (or every record with ``all_runs``).
Published numbers appear under each table as separate "reported" rows, never ranked.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from affectlab.leaderboard.records import (
    ITEM_PREFIX, MAIN_METRIC, SUMMARY_METRICS, format_value, higher_is_better, item_metrics, source_kind,
)
from affectlab.leaderboard.stale import REPO_ROOT, staleness

REFERENCE_FILE = REPO_ROOT / "experiments" / "reference_results.yaml"
TASK_TITLE = {"au_occurrence": "AU occurrence", "au_intensity": "AU intensity", "expression": "expression"}
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7")


@dataclass
class Row:
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
        return f"cv {len(folds)} fold{'s' if len(folds) != 1 else ''}", len(folds)
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


# ---------------------------------------------------------------------------- Markdown
def _metric_header(metric: str) -> str:
    if metric.endswith("_mean"):
        return metric[:-5].upper() + " mean"
    return metric.upper()


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def table_markdown(table: Table) -> str:
    items = table.items
    summary = list(table.summary_metrics)
    head = ["rank", "method", "evaluation", *(_metric_header(m) for m in summary),
            *(i.upper() if i.startswith("au") else i for i in items),
            "selected on", "seed", "commit", "sweep", "date"]
    lines = [f"### {table.title}", "",
             f"Ranked by `{table.main_metric}` (percentages for F1/UAR/WAR/recall; ± is the std over folds). "
             f"Per-{'AU' if table.task != 'expression' else 'class'} columns: `{ITEM_PREFIX[table.task]}*`.", "",
             _md_row(head), "|" + "|".join("---:" if i == 0 else "---" for i in range(len(head))) + "|"]
    notes = []
    for rank, row in enumerate(table.rows, 1):
        commit = row.commit or "–"
        if row.stale:
            notes.append(f"{row.method} @ {row.commit}: {row.stale_reason}")
            commit += " (stale)"
        lines.append(_md_row([
            str(rank), row.label, row.evaluation,
            *(format_value(m, row.metrics.get(m), row.std.get(m)) for m in summary),
            *(format_value(table.item_metric(i), row.metrics.get(table.item_metric(i))) for i in items),
            row.selected_on or "–", row.seed or "–", commit, row.sweep_id or "–", row.date or "–",
        ]))
    if table.references:
        lines += ["", "Reported in the papers (real data, not measured here; never ranked):", "",
                  _md_row(["method", "protocol", *(_metric_header(m) for m in summary),
                           *(i.upper() if i.startswith("au") else i for i in items), "source"]),
                  "|" + "|".join("---" for _ in range(3 + len(summary) + len(items))) + "|"]
        for row in table.references:
            lines.append(_md_row([
                f"{row.method} (reported)", row.evaluation,
                *(format_value(m, row.metrics.get(m)) for m in summary),
                *(format_value(table.item_metric(i), row.metrics.get(table.item_metric(i))) for i in items),
                row.source,
            ]))
    if notes or table.notes():
        lines += ["", *(f"- stale: {n}" for n in notes), *(f"- {n}" for n in table.notes())]
    return "\n".join(lines) + "\n"


def render_markdown(tables: list[Table]) -> str:
    parts = ["# affectlab leaderboard", "",
             "Generated by `affectlab leaderboard` from the results store; do not edit by hand.", ""]
    if not tables:
        parts.append("No records yet.\n")
    for table in tables:
        parts.append(table_markdown(table))
    return "\n".join(parts)


# ---------------------------------------------------------------------------- HTML
def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` evenly spaced round ticks (step 1, 2, 2.5 or 5 × 10^k) covering [low, high];
    0 is a tick whenever low < 0 < high."""
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw - 1e-12)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(k * step, 10) for k in range(first, last + 1)]


def _bar_chart_svg(table: Table, width: int = 760, height: int = 260) -> str:
    """Grouped bars: one group per AU/class, one bar per ranked row (reported rows hatched)."""
    rows = table.rows[:6] + table.references
    items = table.items
    if not rows or not items:
        return ""
    values = [[row.metrics.get(table.item_metric(i)) for i in items] for row in rows]
    finite = [v for vals in values for v in vals if v is not None and not math.isnan(v)]
    scale = 100 if table.task != "au_intensity" else 1  # F1/UAR in percent, ICC as is (same as the PNGs)
    ticks = nice_ticks(min([0.0] + finite), max([1.0] + finite))
    bottom, top = ticks[0], ticks[-1]
    left, right, top_pad, bottom_pad = 40, 10, 10, 60
    plot_w, plot_h = width - left - right, height - top_pad - bottom_pad
    group_w = plot_w / len(items)
    bar_w = group_w * 0.8 / len(rows)

    def y(v: float) -> float:
        return top_pad + plot_h * (top - v) / (top - bottom)

    parts = [f'<svg class="bars" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 18 * len(rows)}" '
             f'role="img" aria-label="{html.escape(table.item_metric("") or "")} per item">',
             '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#555" stroke-width="2"/>'
             '</pattern></defs>',
             f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" stroke="#333"/>']
    for tick in ticks:
        parts.append(f'<text class="tick" data-value="{tick:.6g}" x="{left - 4}" y="{y(tick) + 4:.1f}" '
                     f'font-size="10" text-anchor="end">{round(tick * scale, 6) + 0.0:g}</text>')
    for gi, item in enumerate(items):
        x0 = left + gi * group_w + group_w * 0.1
        for ri, row in enumerate(rows):
            v = values[ri][gi]
            if v is None or math.isnan(v):
                continue
            fill = "url(#hatch)" if row.reported else PALETTE[ri % len(PALETTE)]
            y0, y1 = sorted((y(0), y(v)))
            label = f"{row.method}{' (reported)' if row.reported else ''} {item}: {format_value(table.item_metric(item), v)}"
            parts.append(f'<rect class="bar" data-row="{html.escape(row.method)}" data-item="{html.escape(item)}" '
                         f'data-value="{v:.6g}" x="{x0 + ri * bar_w:.1f}" y="{y0:.1f}" width="{bar_w:.1f}" '
                         f'height="{max(y1 - y0, 0.5):.1f}" fill="{fill}"><title>{html.escape(label)}</title></rect>')
        parts.append(f'<text x="{left + (gi + 0.5) * group_w:.1f}" y="{height - bottom_pad + 14}" font-size="10" '
                     f'text-anchor="middle">{html.escape(item.upper() if item.startswith("au") else item)}</text>')
    for ri, row in enumerate(rows):
        ly = height - bottom_pad + 30 + 18 * ri
        fill = "url(#hatch)" if row.reported else PALETTE[ri % len(PALETTE)]
        parts.append(f'<rect x="{left}" y="{ly}" width="12" height="12" fill="{fill}" stroke="#555"/>'
                     f'<text x="{left + 18}" y="{ly + 10}" font-size="11">{html.escape(row.method)}'
                     f'{" (reported)" if row.reported else " · " + html.escape(row.evaluation)}</text>')
    parts.append("</svg>")
    return "".join(parts)


_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = th.dataset.order !== 'asc'; th.dataset.order = asc ? 'asc' : 'desc';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[idx].dataset.value, y = b.cells[idx].dataset.value;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _td(text: str, value: Any = None) -> str:
    data = html.escape(str(text if value is None else value))
    return f'<td data-value="{data}">{html.escape(text)}</td>'


def _num(v: float | None) -> str:
    return "" if v is None or math.isnan(v) else f"{v:.6g}"


def table_html(table: Table) -> str:
    items, summary = table.items, list(table.summary_metrics)
    head = ["rank", "method", "evaluation", *(_metric_header(m) for m in summary),
            *(i.upper() if i.startswith("au") else i for i in items),
            "selected on", "seed", "commit", "sweep", "date"]
    out = [f'<section id="{table.slug}"><h2>{html.escape(table.title)}</h2>',
           f'<p>Ranked by <code>{table.main_metric}</code>. Click a header to sort.</p>',
           f'<table class="sortable measured" data-dataset="{table.dataset}" data-task="{table.task}" '
           f'data-source="{table.source_kind}"><thead><tr>'
           + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for rank, row in enumerate(table.rows, 1):
        commit = row.commit + (" (stale)" if row.stale else "")
        cells = [_td(str(rank), rank), _td(row.label), _td(row.evaluation)]
        cells += [_td(format_value(m, row.metrics.get(m), row.std.get(m)), _num(row.metrics.get(m))) for m in summary]
        cells += [_td(format_value(table.item_metric(i), row.metrics.get(table.item_metric(i))),
                      _num(row.metrics.get(table.item_metric(i)))) for i in items]
        cells += [_td(row.selected_on or "–"), _td(row.seed or "–"),
                  f'<td data-value="{html.escape(commit)}" title="{html.escape(row.stale_reason)}">'
                  f'{html.escape(commit or "–")}</td>', _td(row.sweep_id or "–"), _td(row.date or "–")]
        out.append('<tr class="{}">'.format("stale" if row.stale else "measured") + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    out += [f'<p class="note">{html.escape(n)}</p>' for n in table.notes()]
    if table.references:
        out.append('<h3>Reported in the papers (real data, not measured here)</h3>'
                   '<table class="sortable reported"><thead><tr>'
                   + "".join(f"<th>{html.escape(h)}</th>" for h in
                             ["method", "protocol", *(_metric_header(m) for m in summary),
                              *(i.upper() if i.startswith("au") else i for i in items), "source"])
                   + "</tr></thead><tbody>")
        for row in table.references:
            cells = [_td(f"{row.method} (reported)"), _td(row.evaluation)]
            cells += [_td(format_value(m, row.metrics.get(m)), _num(row.metrics.get(m))) for m in summary]
            cells += [_td(format_value(table.item_metric(i), row.metrics.get(table.item_metric(i))),
                          _num(row.metrics.get(table.item_metric(i)))) for i in items]
            cells += [_td(row.source)]
            out.append('<tr class="reported">' + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
    out.append(_bar_chart_svg(table))
    out.append("</section>")
    return "\n".join(out)


def render_html(tables: list[Table]) -> str:
    body = "\n".join(table_html(t) for t in tables) or "<p>No records yet.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>affectlab leaderboard</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
th {{ cursor: pointer; background: #f3f3f3; }}
td:nth-child(2), td:nth-child(3) {{ text-align: left; }}
tr.stale td {{ color: #999; }}
table.reported td {{ font-style: italic; }}
</style></head><body>
<h1>affectlab leaderboard</h1>
<p>Synthetic and real data are in separate tables; reported rows are the papers' numbers.</p>
{body}
<script>{_SORT_JS}</script>
</body></html>
"""


# ---------------------------------------------------------------------------- PNG
def render_png(table: Table, path: Path) -> Path | None:
    """A matplotlib bar chart of the per-AU / per-class metric of the table's rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows, items = table.rows[:6] + table.references, table.items
    if not rows or not items:
        return None
    scale = 100.0 if table.task != "au_intensity" else 1.0
    fig, ax = plt.subplots(figsize=(max(6, len(items) * 0.8), 3.5))
    width = 0.8 / len(rows)
    x = np.arange(len(items))
    for ri, row in enumerate(rows):
        vals = [row.metrics.get(table.item_metric(i), np.nan) * scale for i in items]
        ax.bar(x + ri * width, vals, width, label=row.method + (" (reported)" if row.reported else ""),
               hatch="//" if row.reported else None, color="white" if row.reported else PALETTE[ri % len(PALETTE)],
               edgecolor="#555")
    ax.set_xticks(x + 0.4 - width / 2, [i.upper() if i.startswith("au") else i for i in items])
    ax.set_ylabel(ITEM_PREFIX[table.task].rstrip("_").replace("_au", "") + (" (%)" if scale == 100 else ""))
    ax.set_title(table.title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def render(records: Iterable[dict[str, Any]], out_dir: str | Path, dataset: str | None = None,
           all_runs: bool = False, references: Iterable[dict[str, Any]] | None = None,
           png: bool = True, repo_root: Path = REPO_ROOT, include_truncated: bool = False) -> dict[str, Any]:
    """Write ``LEADERBOARD.md``, ``leaderboard.html`` and ``plots/<table>.png`` under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    refs = load_references() if references is None else list(references)
    tables = build_tables(records, refs, dataset=dataset, all_runs=all_runs, include_truncated=include_truncated,
                          repo_root=repo_root)
    md, page = out / "LEADERBOARD.md", out / "leaderboard.html"
    md.write_text(render_markdown(tables))
    page.write_text(render_html(tables))
    plots = [p for t in tables if png and (p := render_png(t, out / "plots" / f"{t.slug}.png"))]
    return {"tables": tables, "markdown": md, "html": page, "plots": plots}


def log_wandb_tables(tables: list[Table], project: str = "affectlab", entity: str | None = None,
                     directory: str | Path | None = None) -> str | None:
    """Log every table as a wandb Table in one run (only called when wandb is online); the run's
    local files go under ``directory`` (the rendered board's folder)."""
    import wandb

    run = wandb.init(project=project, entity=entity, job_type="leaderboard", name="leaderboard",
                     dir=str(directory) if directory else None)
    for table in tables:
        metrics = [*table.summary_metrics, *(table.item_metric(i) for i in table.items)]
        data = [[r.method, r.evaluation, "reported" if r.reported else "measured",
                 *(r.metrics.get(m) for m in metrics)] for r in table.rows + table.references]
        run.log({table.slug: wandb.Table(columns=["method", "evaluation", "kind", *metrics], data=data)})
    url = run.url
    run.finish()
    return url
