"""Human-readable end-of-run table of test metrics, then notes on how the run trained and tested."""
from __future__ import annotations

import re
from typing import Any

from affectlab.engine.timing import format_timing
from affectlab.leaderboard.records import MAIN_METRIC, format_value, is_percent

_PER_ITEM = re.compile(r"^(?P<metric>[a-z0-9]+)_(?P<item>(au\d+|(?!mean$)[a-z]+))$")


def format_summary(record: dict[str, Any]) -> str:
    """Per-AU / per-class rows with one column per metric kind, then the aggregates, each value
    formatted as the leaderboard and ``cv_results.md`` show it (``format_value``)."""
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
            cells = " ".join(f"{format_value(f'{c}_{item}', table[item][c]):>8}" if c in table[item] else f"{'':>8}"
                             for c in columns)
            lines.append(f"{item.upper():>10} {cells}")
    for name in sorted(aggregates):
        lines.append(f"{name:>10} {format_value(name, aggregates[name]):>8}")
    lines += format_reference(record)
    if any(is_percent(name) for name in metrics):
        lines.append("F1/UAR/WAR/recall in percent (as in cv_results.md and the leaderboard).")
    lines += format_test_set(record.get("test_set") or {}, record.get("protocol"), record.get("fold"))
    return "\n".join(lines + run_notes(record))


def format_reference(record: dict[str, Any]) -> list[str]:
    """The untrained predictors' score on the same test items (``results.json``'s ``reference``), on the
    task's main metric, and where a method is compared with its trained controls."""
    main = MAIN_METRIC.get(record.get("task", ""))
    scored = [(name, metrics[main]) for name, metrics in (record.get("reference") or {}).items() if main in metrics]
    if not scored:
        return []
    from affectlab.methods import METHODS

    what = ", ".join(f"{name} {format_value(main, value)}" for name, value in scored)
    line = f"untrained reference on the same test items: {what} ({main})"
    mine = (record.get("metrics") or {}).get(main)
    if mine is not None and len(scored) == 1:
        gap = mine - scored[0][1]
        line += (f"; this run is {format_value(main, abs(gap))} {'above' if gap > 0 else 'below'} it" if gap
                 else "; this run scores the same")
    if record.get("method") in METHODS and METHODS.get(record["method"]).evidence is not None:
        line += f"; trained controls over seeds: make evidence METHOD={record['method']}"
    return [line]


def format_test_set(test_set: dict[str, Any], protocol: Any = None, fold: Any = None) -> list[str]:
    """Lines describing the test fold (``results.json``'s ``test_set``), loud when it is not the protocol's."""
    if not test_set:
        return []
    lines = [f"test set: {test_set['items']} items"
             + (f" (protocol expects {test_set['expected_items']})" if test_set.get("expected_items") else "")]
    if test_set.get("matches_protocol") is False:
        bar = "!" * 78
        lines += [bar, f"WARNING: the test fold has {test_set['items']} items, but {protocol} fold {fold} has "
                       f"{test_set['expected_items']} in the published protocol: these results are NOT comparable "
                       f"with published numbers (see the skipped items of `affectlab data summary`).", bar]
    fallback = test_set.get("landmark_fallback")
    if fallback:
        kinds = ", ".join(f"{k} {v}" for k, v in fallback.items())
        lines.append(f"test frames cropped without their own landmarks: {sum(fallback.values())} ({kinds})")
    if test_set.get("landmark_indexing"):
        kinds = ", ".join(f"{k} {v}" for k, v in test_set["landmark_indexing"].items())
        lines.append(f"2DFeatures fit(i) convention (sequences): {kinds}")
    for key, value in test_set.items():
        if key not in ("items", "expected_items", "matches_protocol", "landmark_fallback", "landmark_indexing",
                       "unreadable_excluded"):  # run_notes shows it
            lines.append(f"test set {key.replace('_', ' ')}: {value}")
    return lines


def run_notes(record: dict[str, Any]) -> list[str]:
    """How much the run trained, and anything that changed its data: truncation, unreadable images
    skipped in training or excluded from the test set, a data source that could not be identified."""
    lines = []
    training = record.get("training") or {}
    stages = [f"{name} {s['epochs']} epoch(s), {s['steps']} steps"
              for name, s in training.get("stages", {}).items() if s]
    if stages:
        lines.append("trained: " + "; ".join(stages))
    timing = format_timing((training.get("timing") or {}).get("stages") or {}, record.get("wall_time_s"))
    if timing:
        lines.append(timing)
    if training.get("truncated"):
        lines.append(f"TRUNCATED run ({', '.join(training['truncated'])}): kept off the ranked leaderboard")
    excluded = (record.get("test_set") or {}).get("unreadable_excluded") or {}
    if excluded.get("count"):
        lines.append(f"TEST SET CHANGED: {excluded['count']} item(s) with an undecodable image excluded "
                     f"(data.unreadable_test_items=exclude): {', '.join(excluded['items'][:5])}"
                     + (" …" if excluded["count"] > 5 else ""))
    skipped = record.get("unreadable_skipped") or {}
    if skipped:
        counts = ", ".join(f"{split} {info['count']}" for split, info in skipped.items())
        lines.append(f"undecodable images skipped in training/validation: {counts} (listed in results.json)")
    if record.get("data_source_unverified"):
        lines.append(f"data source not identified: {record['data_source_unverified']}")
    return lines
