"""The leaderboard as one static HTML page: sortable tables and an SVG bar chart per table."""
from __future__ import annotations

import html
import math
from typing import Any

from affectlab.leaderboard.records import format_value
from affectlab.leaderboard.tables import Table, metric_header

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7")


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
    head = ["rank", "method", "evaluation", *(metric_header(m) for m in summary),
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
                             ["method", "protocol", *(metric_header(m) for m in summary),
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
