"""The README's commands exist and its Python API example runs as written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.foundation.helpers import make_dry

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _shell_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_every_make_target_in_the_readme_exists():
    targets = sorted({m for block in _shell_blocks() for m in re.findall(r"^make ([a-z-]+)", block, flags=re.M)})
    assert {"train", "test", "synth", "sweep", "cv", "leaderboard", "config"} <= set(targets)
    for target in targets:
        dry = make_dry(target, "METHOD=baseline", "FILE=x.yaml")
        assert dry.returncode == 0, f"make {target}: {dry.stderr}"


def test_every_affectlab_subcommand_in_the_readme_is_registered():
    from affectlab.cli import build_parser

    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse has no public accessor
    used = set(re.findall(r"affectlab (\w+)", README)) - {"is", "reads"}
    used |= {line.split()[1] for block in _shell_blocks() for line in block.splitlines()
             if line.startswith("make ") and line.split()[1] in ("cv", "sweep", "leaderboard", "synth")}
    missing = sorted(u for u in used if u not in choices and u not in ("train", "test", "list", "config"))
    assert not missing, f"README mentions subcommands that do not exist: {missing}"


def test_python_api_example_runs(tmp_path, monkeypatch):
    block = re.search(r"### Python API\n\n```python\n(.*?)```", README, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)  # runs/ lands here
    block = block.replace('"trainer.max_epochs=2"', '"trainer.max_epochs=1", "logger.wandb.enabled=false", '
                                                     '"leaderboard.enabled=false"')
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    assert 0.0 <= namespace["record"]["metrics"]["f1_mean"] <= 1.0


@pytest.mark.parametrize("text", ["make test", "make train METHOD="])
def test_readme_shows_the_two_commands(text):
    assert text in README


def test_relative_links_in_the_readme_and_docs_point_at_files():
    """A link in README.md or docs/ names a file that is in the repository (anchors and URLs aside)."""
    dead = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            path = target.split("#", 1)[0]
            if not path or re.match(r"[a-z]+:", path):
                continue
            if not (page.parent / path).exists():
                dead.append(f"{page.relative_to(REPO)} → {target}")
    assert not dead, "links with no file behind them:\n" + "\n".join(dead)
