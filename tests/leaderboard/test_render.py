"""Rendering: ranking, synthetic/real separation, reported rows, Markdown and HTML parsed back, stale rows."""
from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from affectlab.leaderboard.render import render
from affectlab.leaderboard.tables import build_tables, load_references
from affectlab.leaderboard.stale import staleness
from tests.foundation.helpers import wait_for_offline_wandb_keys
from tests.leaderboard.conftest import make_record


def parse_markdown_tables(text: str) -> list[list[list[str]]]:
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(set(c) <= set("-:") for c in cells):
                continue
            if current is None:
                current = []
                tables.append(current)
            current.append(cells)
        else:
            current = None
    return tables


class _TableParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.rects, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append({"class": attrs.get("class", ""), "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = [attrs.get("data-value"), ""]
        elif tag == "rect" and "data-item" in attrs:
            self.rects.append(attrs)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append(self._cell)
            self._cell = None


def _records():
    return [
        make_record("alpha", f1=0.40, fold=1), make_record("alpha", f1=0.55, fold=2),
        make_record("beta", f1=0.50, fold=1),
        make_record("gamma", f1=0.30, kind="cv", fold=None, folds=[1, 2, 3], metrics_std={"f1_mean": 0.02}),
        make_record("real_only", f1=0.90, source="real"),
        make_record("ial", dataset="dfew", task="expression", f1=0.45),
    ]


def test_tables_separate_sources_and_rank(tmp_path):
    tables = build_tables(_records(), load_references())
    keys = [(t.source_kind, t.dataset, t.task) for t in tables]
    assert keys == [("real", "disfa", "au_occurrence"), ("synthetic", "dfew", "expression"),
                    ("synthetic", "disfa", "au_occurrence")]
    synth = tables[2]
    # CV aggregates first, then the best single run of each method by f1_mean
    assert [(r.method, r.evaluation) for r in synth.rows] == [
        ("gamma", "cv 3 folds"), ("alpha", "fold 2"), ("beta", "fold 1")]
    assert all(r.method != "real_only" for r in synth.rows)
    # a CV aggregate whose main metric was NaN on a fold says over how many folds it averaged
    partial = make_record("gamma", f1=0.30, kind="cv", fold=None, folds=[1, 2, 3], metrics_n={"f1_mean": 2})
    (row,) = build_tables([partial], [])[0].rows
    assert row.evaluation == "cv 3 folds, f1_mean over 2"
    assert [r.method for r in synth.references] == ["tcae"] and synth.references[0].reported
    assert synth.references[0].metrics["f1_mean"] == 0.45  # 45.0 % as printed in the paper
    everything = build_tables(_records(), [], all_runs=True)[2]
    assert len(everything.rows) == 4


def test_markdown_and_html_parse_back(tmp_path):
    out = render(_records(), tmp_path, png=True)
    md = out["markdown"].read_text()
    tables = parse_markdown_tables(md)
    synth_md = [t for t in tables if t[0][0] == "rank"]
    disfa = synth_md[-1]
    header = disfa[0]
    assert header[:4] == ["rank", "method", "evaluation", "F1 mean"] and "AU01" in header
    assert [row[1] for row in disfa[1:]] == ["gamma", "alpha", "beta"]
    assert disfa[1][3] == "30.0 ± 2.0" and disfa[2][3] == "55.0"
    assert disfa[2][header.index("AU01")] == "45.0"
    reported = [t for t in tables if t[0][0] == "method"]
    assert any(row[0] == "tcae (reported)" and row[2] == "45.0" for t in reported for row in t[1:])
    assert "ial (reported)" in md and "35.8" not in md.split("DFEW")[0]

    parser = _TableParser()
    parser.feed(out["html"].read_text())
    measured = [t for t in parser.tables if "measured" in t["class"]]
    assert all("sortable" in t["class"] for t in parser.tables)
    disfa_html = measured[-1]["rows"]
    assert [row[1][1] for row in disfa_html[1:]] == ["gamma", "alpha", "beta"]
    assert float(disfa_html[2][3][0]) == 0.55  # raw value kept for sorting
    bars = [r for r in parser.rects if r["data-row"] == "alpha"]
    assert {(b["data-item"], round(float(b["data-value"]), 6)) for b in bars} >= {("au01", 0.45), ("au02", 0.65)}
    assert len(out["plots"]) == 3 and all(Path(p).read_bytes()[:4] == b"\x89PNG" for p in out["plots"])


def test_dataset_filter(tmp_path):
    out = render(_records(), tmp_path, dataset="dfew", png=False)
    assert [t.dataset for t in out["tables"]] == ["dfew"]
    md = out["markdown"].read_text()
    assert "RECALL" not in md and "happy" in md and "ial (reported)" in md


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_stale_when_method_code_changes_after_the_commit(tmp_path):
    repo = tmp_path / "repo"
    (repo / "src/affectlab/methods").mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@t")
    _git(repo, "config", "user.name", "t")
    method_file = repo / "src/affectlab/methods/zeta.py"
    method_file.write_text("x = 1\n")
    (repo / "other.py").write_text("y = 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "other.py").write_text("y = 2\n")
    _git(repo, "commit", "-qam", "unrelated")
    assert staleness("zeta", first, repo) == (False, "up to date")
    method_file.write_text("x = 2\n")
    assert staleness("zeta", first, repo)[0] is True  # uncommitted edit
    _git(repo, "commit", "-qam", "change zeta")
    assert staleness("zeta", first, repo)[0] is True
    assert staleness("zeta", _git(repo, "rev-parse", "HEAD"), repo)[0] is False
    assert staleness("zeta", "0" * 40, repo)[0] is None
    tables = build_tables([make_record("zeta", git_commit=first)], [], repo_root=repo)
    assert tables[0].rows[0].stale


def test_stale_when_a_module_the_method_imports_changes(tmp_path):
    """A loss the method imports (directly or through its model) is its code; the shared engine is not."""
    from affectlab.leaderboard.stale import method_paths

    repo = tmp_path / "repo"
    pkg = repo / "src/affectlab"
    for folder in ("methods", "models", "losses", "engine"):
        (pkg / folder).mkdir(parents=True)
    (pkg / "methods/zeta.py").write_text("from affectlab.models.net import Net\nfrom affectlab.engine.loop import run\n")
    (pkg / "models/net.py").write_text("def f():\n    from affectlab.losses.helper import loss\n")
    (pkg / "losses/helper.py").write_text("from .base import scale\nloss = 1\n")
    (pkg / "losses/base.py").write_text("scale = 1\n")
    (pkg / "engine/loop.py").write_text("run = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@t")
    _git(repo, "config", "user.name", "t")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    first = _git(repo, "rev-parse", "HEAD")
    assert {"src/affectlab/models/net.py", "src/affectlab/losses/helper.py",
            "src/affectlab/losses/base.py"} <= set(method_paths("zeta", repo))  # relative import followed
    assert "src/affectlab/engine/loop.py" not in method_paths("zeta", repo)
    (pkg / "engine/loop.py").write_text("run = 2\n")
    _git(repo, "commit", "-qam", "engine")
    assert staleness("zeta", first, repo) == (False, "up to date")
    (pkg / "losses/helper.py").write_text("loss = 2\n")
    _git(repo, "commit", "-qam", "loss")
    stale, reason = staleness("zeta", first, repo)
    assert stale is True and "src/affectlab/losses/helper.py" in reason


def _repo_with_method(tmp_path, code: str, preset: str):
    repo = tmp_path / "repo"
    (repo / "src/affectlab/methods").mkdir(parents=True)
    (repo / "experiments/method").mkdir(parents=True)
    (repo / "src/affectlab/methods/zeta.py").write_text(code)
    (repo / "experiments/method/zeta.yaml").write_text(preset)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@t")
    _git(repo, "config", "user.name", "t")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    return repo, _git(repo, "rev-parse", "HEAD")


METHOD_CODE = '''"""Zeta."""
from dataclasses import dataclass


@dataclass
class ZetaConfig:
    lr: float = 0.1


def step(x):
    """One step."""
    return x * 2  # doubled
'''


def test_documentation_edits_and_reverted_changes_leave_a_record_up_to_date(tmp_path):
    """Staleness compares code: docstrings, comments, signature annotations and YAML comments are not
    code; a change that a later commit reverts is no change; a dataclass field's type is code."""
    repo, first = _repo_with_method(tmp_path, METHOD_CODE, "method:\n  lr: 0.1\n")
    method_file = repo / "src/affectlab/methods/zeta.py"
    preset = repo / "experiments/method/zeta.yaml"
    documented = (METHOD_CODE.replace('"""Zeta."""', '"""Zeta: the method of Eq. 3."""')
                  .replace("def step(x):\n    \"\"\"One step.\"\"\"", "def step(x: float) -> float:\n    # no docstring")
                  .replace("  # doubled", "")
                  .replace("class ZetaConfig:", "class ZetaConfig:\n    \"\"\"Keys of zeta.\"\"\"\n"))
    method_file.write_text(documented)
    preset.write_text("# the CPU preset\nmethod:\n  lr: 0.1   # measured\n")
    assert staleness("zeta", first, repo) == (False, "up to date")  # uncommitted, documentation only
    _git(repo, "commit", "-qam", "docs")
    assert staleness("zeta", first, repo) == (False, "up to date")

    method_file.write_text(documented.replace("x * 2", "x * 3"))
    assert staleness("zeta", first, repo)[0] is True  # uncommitted code edit
    _git(repo, "commit", "-qam", "times three")
    stale, reason = staleness("zeta", first, repo)
    assert stale is True and reason.endswith("src/affectlab/methods/zeta.py")
    method_file.write_text(documented)
    _git(repo, "commit", "-qam", "revert")
    assert staleness("zeta", first, repo) == (False, "up to date")

    preset.write_text("method:\n  lr: 0.2\n")
    assert staleness("zeta", first, repo)[0] is True
    preset.write_text("method:\n  lr: 0.1\n")
    method_file.write_text(documented.replace("lr: float = 0.1", "lr: int = 0.1"))
    assert staleness("zeta", first, repo)[0] is True  # a dataclass field's annotation defines the field


def _leaderboard_command(argv: list[str]) -> int:
    import argparse

    from affectlab.commands import leaderboard

    parser = argparse.ArgumentParser()
    leaderboard.add_arguments(parser)
    return leaderboard.run(parser.parse_args(argv))


def test_command_logs_the_tables_to_wandb_when_online(tmp_path, monkeypatch, capsys):
    from affectlab.leaderboard import Store

    url = f"sqlite:///{tmp_path / 'board.sqlite'}"
    Store(url).add_many(_records())
    # "online" as far as the command can tell; wandb itself writes an offline run under WANDB_DIR
    monkeypatch.setattr("affectlab.sweeps.online.wandb_online", lambda: True)
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert _leaderboard_command(["--url", url, "--out", str(tmp_path / "board"), "--no-png"]) == 0
    assert "logged to" in capsys.readouterr().out
    (run,) = (tmp_path / "board" / "wandb").glob("offline-run-*/run-*.wandb")
    slugs = [t.slug.encode() for t in build_tables(_records())]
    assert slugs and wait_for_offline_wandb_keys(run, slugs) == []

    assert _leaderboard_command(["--url", url, "--out", str(tmp_path / "b2"), "--no-png", "--no-wandb"]) == 0
    assert "logged to" not in capsys.readouterr().out
    assert not (tmp_path / "b2" / "wandb").exists()


def test_truncated_runs_stay_off_the_ranking_and_unidentified_sources_are_flagged(tmp_path):
    """Issue #18 item 3: a 3-batch run on an unmarked copy of synthetic BP4D ranked #1 under real data."""
    full = make_record("full", dataset="bp4d", f1=0.5, source="real")
    smoke = make_record("smoke", dataset="bp4d", f1=0.9, source="real",
                        data_source_unverified="no synthetic-generator marker (.complete-*) beside /copy/BP4D",
                        training={"truncated": ["trainer.limit_train_batches=3"]})
    (table,) = build_tables([full, smoke], [])
    assert [r.method for r in table.rows] == ["full"] and table.truncated_hidden == 1
    assert "1 run(s) with truncated training or evaluation" in table.notes()[0]

    (table,) = build_tables([full, smoke], [], include_truncated=True)
    assert [(r.method, r.evaluation) for r in table.rows] == [("smoke", "fold 1 (truncated)"), ("full", "fold 1")]
    md = render([full, smoke], tmp_path, references=[], png=False, include_truncated=True)["markdown"].read_text()
    assert "| 1 | smoke † | fold 1 (truncated) |" in md
    assert "† smoke (fold 1 (truncated)): data source not identified: no synthetic-generator marker" in md
    page = render([full, smoke], tmp_path, references=[], png=False)["html"].read_text()
    assert "smoke" not in page.split("<tbody>")[1].split("</tbody>")[0]  # not among the ranked rows
    assert "not ranked; `affectlab leaderboard --include-truncated` lists them" in page


def test_icc_chart_axis_labels_sit_at_their_values(tmp_path):
    """DISFA ICC (in [-1, 1], not percent): round tick labels, 0 labelled once and on the zero line, and
    every label at the height its value maps to (the bars' own scale)."""
    import re

    from affectlab.leaderboard.html_page import _bar_chart_svg, nice_ticks

    assert nice_ticks(-0.3, 1.0) == [-0.5, 0.0, 0.5, 1.0]
    assert nice_ticks(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    records = [make_record("m", task="au_intensity"), make_record("n", task="au_intensity")]
    for record, values in zip(records, ([0.62, -0.31], [0.48, 0.05])):
        record["metrics"] = {"icc_au01": values[0], "icc_au02": values[1], "icc_mean": sum(values) / 2}
    (table,) = build_tables(records)
    svg = _bar_chart_svg(table)
    ticks = [(float(v), float(yy), label) for v, yy, label in
             re.findall(r'<text class="tick" data-value="([^"]+)" x="[^"]+" y="([^"]+)"[^>]*>([^<]+)</text>', svg)]
    assert [label for _, _, label in ticks] == ["-0.5", "0", "0.5", "1"]
    zero_line = float(re.search(r'<line x1="\d+" y1="([^"]+)" x2="[^"]+" y2="[^"]+" stroke="#333"', svg).group(1))
    (y0,) = [yy - 4 for v, yy, _ in ticks if v == 0]
    assert y0 == pytest.approx(zero_line, abs=0.1)
    per_unit = (ticks[0][1] - ticks[-1][1]) / (ticks[-1][0] - ticks[0][0])  # pixels per ICC unit
    for value, yy, _ in ticks:
        assert yy - 4 == pytest.approx(zero_line - value * per_unit, abs=0.1)
    bars = {(row, item): (float(top), float(height)) for row, item, top, height in re.findall(
        r'data-row="([^"]+)" data-item="([^"]+)" data-value="[^"]+" x="[^"]+" y="([^"]+)" width="[^"]+" '
        r'height="([^"]+)"', svg)}
    assert bars[("m", "au01")] == pytest.approx((zero_line - 0.62 * per_unit, 0.62 * per_unit), abs=0.1)
    assert bars[("m", "au02")] == pytest.approx((zero_line, 0.31 * per_unit), abs=0.1)
