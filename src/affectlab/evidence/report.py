"""The evidence table: Markdown (printed and ``evidence.md``), ``evidence.json`` and a bar chart
``evidence.png``, each written atomically under the evidence folder."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from affectlab.engine.io import atomic_save_figure, atomic_write_json, atomic_write_text


def _num(value: Optional[float], digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _per_seed(entry: dict[str, Any]) -> str:
    if entry["kind"] == "trivial":
        return "same for every seed" if entry["runs"] and entry["runs"][0]["value"] is not None else "–"
    return ", ".join(f"s{r['seed']} {_num(r['value'])}{'†' if _resumed_mid_epoch(r) else ''}"
                     if r.get("value") is not None else f"s{r['seed']} failed" for r in entry["runs"]) or "–"


def _resumed_mid_epoch(run: dict[str, Any]) -> list[str]:
    """Stages of a run that resumed from a checkpoint written inside an epoch (not reproducible)."""
    return [stage for stage, info in (run.get("resumed") or {}).items() if info.get("mid_epoch")]


def _wall(entry: dict[str, Any]) -> str:
    times = [r["wall_time_s"] for r in entry["runs"] if r.get("wall_time_s") is not None]
    return f"{sum(times) / len(times):.0f}" if times else "–"


def verdict_line(v: dict[str, Any]) -> str:
    """``default − control = x; 2×control sd = y; beats: yes/no``."""
    beats = {True: "yes", False: "no", None: "n/a"}[v["beats"]]
    why = "" if v["beats"] is not None or v["difference"] is None else " (control has one seed: no sd)"
    return (f"default − {v['control']} = {_num(v['difference'])}; 2×control sd = {_num(v['threshold'])}; "
            f"beats: {beats}{why}")


def _per_run(result: dict[str, Any], key: str, width: Optional[int] = None) -> str:
    """``key`` of the trained runs (``data_source``, ``git_commit``): one value, or every value with its
    number of runs when the runs differ (e.g. an evidence folder filled at two commits). Results written
    before each run kept its own fall back to the result's (first run's) value."""
    values = [r[key][:width] for e in result["arms"] if e["kind"] != "trivial" for r in e["runs"] if r.get(key)]
    if not values:
        return (result.get(key) or "–")[:width]
    counts = {v: values.count(v) for v in dict.fromkeys(values)}
    if len(counts) == 1:
        return values[0]
    return ", ".join(f"{v} ({n} run{'s' if n > 1 else ''})" for v, n in counts.items())


def markdown(result: dict[str, Any]) -> str:
    """The evidence table and one verdict line per control."""
    metric = result["metric"]
    lines = [
        f"# Evidence: {result['method']} on {result['dataset']} fold {result['fold']} (test {metric})",
        "",
        f"Command: `{result['command'] or 'affectlab evidence ' + ' '.join(result['overrides'])}`  ",
        f"Seeds: {', '.join(str(s) for s in result['seeds'])} (config keys {', '.join(result['seed_keys'])}); "
        f"data: {_per_run(result, 'data_source')}; commit: {_per_run(result, 'git_commit', 10)}"
        f"{' (dirty)' if result.get('git_dirty') else ''}; finished: {result['finished'] or 'not yet'}  ",
        "Trained arms ran through the runner of `make train` (one run directory per arm × seed); sd is the "
        "sample standard deviation over seeds; trivial arms are not trained (scored on the test labels).",
        "",
        f"| arm | kind | {metric} mean ± sd | per seed | wall s / run | what |",
        "|---|---|---|---|---|---|",
    ]
    for i, e in enumerate(result["arms"]):
        name = f"**{e['name']}**" if i == 0 else e["name"]
        what = e["help"] + (f" (`{' '.join(e['overrides'])}`)" if e["overrides"] else "")
        score = f"{_num(e['mean'])} ± {_num(e['sd'])}" if e.get("mean") is not None else "–"
        lines.append(f"| {name} | {e['kind']} | {score} | {_per_seed(e)} | {_wall(e)} | {what} |")
    keys = result.get("breakdown") or []
    if keys:
        lines += ["", "Breakdown (test, mean ± sd over seeds; shown, not judged):", "",
                  "| arm | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for e in result["arms"]:
            cells = [e.get("breakdown", {}).get(k, {}) for k in keys]
            lines.append(f"| {e['name']} | " + " | ".join(
                f"{_num(c.get('mean'))} ± {_num(c.get('sd'))}" if c.get("mean") is not None else "–" for c in cells) + " |")
    lines += ["", "Verdicts (the default must beat each control by more than twice the control's seed sd):", ""]
    lines += [f"- {verdict_line(v)}" for v in result["verdicts"]]
    resumed = [(e["name"], r) for e in result["arms"] for r in e["runs"] if _resumed_mid_epoch(r)]
    if resumed:
        lines += ["", "† Resumed inside an epoch after an interruption: Lightning restarted that epoch's data order, "
                  "so the value differs from an uninterrupted run of the same seed:", ""]
        lines += [f"- {name} seed {r['seed']}: stage {', '.join(_resumed_mid_epoch(r))}" for name, r in resumed]
    failed = [(e["name"], r) for e in result["arms"] for r in e["runs"] if r.get("error")]
    if failed:
        lines += ["", "Failed runs:", ""] + [f"- {name} seed {r['seed']}: {r['error']}" for name, r in failed]
    return "\n".join(lines) + "\n"


def save_png(result: dict[str, Any], path: Path) -> Path:
    """Bar per arm (mean, error bar = seed sd), dots for the seeds; trivial arms grey and hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = result["arms"]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(arms), 3.4))
    for x, e in enumerate(arms):
        colour = "#4e79a7" if x == 0 else ("#bab0ac" if e["kind"] == "trivial" else "#f28e2b")
        ax.bar(x, e["mean"] or 0.0, yerr=e["sd"] or 0.0, capsize=4, color=colour,
               hatch="//" if e["kind"] == "trivial" else None, edgecolor="#333")
        seeds = [r["value"] for r in e["runs"] if r.get("value") is not None]
        ax.scatter([x] * len(seeds), seeds, color="black", s=12, zorder=3)
    ax.set_xticks(range(len(arms)), [e["name"] for e in arms], rotation=20)
    ax.set_ylabel(f"test {result['metric']}")
    ax.set_title(f"{result['method']} on {result['dataset']} fold {result['fold']}, "
                 f"{len(result['seeds'])} seed(s)", fontsize=10)
    ax.axhline(0.0, color="#333", linewidth=0.6)
    fig.tight_layout()
    return atomic_save_figure(fig, path, dpi=110)


def write_json(result: dict[str, Any]) -> Path:
    """``evidence.json`` (rewritten after every run, so an interrupted evidence keeps its numbers)."""
    path = Path(result["out"]) / "evidence.json"
    atomic_write_json(path, result)
    return path


def write_outputs(result: dict[str, Any]) -> dict[str, Path]:
    """``evidence.json``, ``evidence.md`` and ``evidence.png`` under ``result['out']``."""
    out = Path(result["out"])
    md = out / "evidence.md"
    atomic_write_text(md, markdown(result))
    return {"json": write_json(result), "md": md, "png": save_png(result, out / "evidence.png")}
