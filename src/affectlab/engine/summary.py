"""Human-readable end-of-run table of test metrics."""
from __future__ import annotations

import re
from typing import Any

_PER_ITEM = re.compile(r"^(?P<metric>[a-z0-9]+)_(?P<item>(au\d+|(?!mean$)[a-z]+))$")


def format_summary(record: dict[str, Any]) -> str:
    """Per-AU / per-class rows with one column per metric kind, then the aggregates."""
    metrics: dict[str, float] = record.get("metrics", {})
    table: dict[str, dict[str, float]] = {}
    aggregates: dict[str, float] = {}
    for name, value in metrics.items():
        match = _PER_ITEM.match(name)
        if match and not name.endswith("_mean"):
            table.setdefault(match["item"], {})[match["metric"]] = value
        else:
            aggregates[name] = value
    columns = sorted({m for row in table.values() for m in row})
    lines = [
        f"{record['method']} on {record['dataset']} ({record.get('protocol')}, fold {record.get('fold')}, "
        f"selected on {record.get('selected_on')}, data {record.get('data_source')})"
    ]
    if table:
        lines.append(f"{'':>10} " + " ".join(f"{c:>8}" for c in columns))
        for item in sorted(table):
            cells = " ".join(f"{table[item][c]:8.3f}" if c in table[item] else f"{'':>8}" for c in columns)
            lines.append(f"{item.upper():>10} {cells}")
    for name in sorted(aggregates):
        lines.append(f"{name:>10} {aggregates[name]:8.3f}")
    return "\n".join(lines)
