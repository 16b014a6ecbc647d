"""Is a record stale? True when the method's code changed after the record's git commit.

The files that define a method are its registered module, its YAML presets, any model or loss
module named after it, and the model, loss, evaluation and metric modules its module imports
(followed through those packages: e.g. a loss module the method's model imports). The shared
engine and data modules are not followed: they serve every method. A record whose commit is not in
this repository cannot be judged (``None``), and a record made from a dirty tree says so in its reason.
"""
from __future__ import annotations

import ast
import inspect
import sys
import subprocess
from pathlib import Path

#: packages whose modules count as the method's code when its module imports them
FOLLOWED = ("models", "losses", "evaluation", "metrics")


def _imported_names(tree: ast.AST, module_parts: list[str]) -> list[str]:
    """Dotted names a module imports; relative imports resolved against ``module_parts`` (its own name)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = module_parts[: len(module_parts) - node.level] if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            # ``from package import module`` names a module too
            names += [".".join(module)] + [".".join([*module, a.name]) for a in node.names]
    return names


def imported_modules(path: Path, repo_root: Path) -> set[str]:
    """Repository-relative paths of the ``affectlab.{models,losses,evaluation,metrics}`` modules that
    ``path`` imports (anywhere in it, function bodies included), followed through those packages."""
    src = repo_root / "src"
    seen: set[str] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        try:
            tree = ast.parse(current.read_text())
        except (OSError, SyntaxError):
            continue
        own = list(current.relative_to(src).with_suffix("").parts) if current.is_relative_to(src) else []
        for name in _imported_names(tree, own):
            parts = name.split(".")
            if len(parts) < 2 or parts[0] != "affectlab" or parts[1] not in FOLLOWED:
                continue
            for candidate in (src.joinpath(*parts).with_suffix(".py"), src.joinpath(*parts, "__init__.py")):
                rel = str(candidate.relative_to(repo_root))
                if candidate.is_file() and rel not in seen:
                    seen.add(rel)
                    todo.append(candidate)
    return seen


REPO_ROOT = Path(__file__).resolve().parents[3]


def method_paths(method: str, repo_root: Path = REPO_ROOT) -> list[str]:
    """Repository-relative paths whose change makes the method's old records stale."""
    paths = {f"src/affectlab/methods/{method}.py", f"experiments/method/{method}.yaml",
             f"experiments/exp/{method}_paper.yaml"}
    try:  # a method registered from another module (only looked up when already imported: no torch import here)
        methods = sys.modules.get("affectlab.methods")
        METHODS = getattr(methods, "METHODS", None)
        if METHODS is not None and method in METHODS:
            source = Path(inspect.getsourcefile(METHODS.get(method)) or "").resolve()
            if source.is_relative_to(repo_root):
                paths.add(str(source.relative_to(repo_root)))
    except Exception:  # noqa: BLE001 - a method that fails to import is judged by its file names
        pass
    for folder in ("src/affectlab/models", "src/affectlab/losses"):
        for path in (repo_root / folder).glob(f"{method}*"):
            paths.add(str(path.relative_to(repo_root)))
    for module in [p for p in paths if p.endswith(".py")]:
        paths |= imported_modules(repo_root / module, repo_root)
    return sorted(paths)


def _git(repo_root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo_root), *args], capture_output=True, text=True, check=False)


def staleness(method: str, commit: str | None, repo_root: Path = REPO_ROOT) -> tuple[bool | None, str]:
    """``(stale, reason)``; ``stale`` is None when the commit cannot be checked here."""
    if not commit:
        return None, "no git commit recorded"
    if _git(repo_root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        return None, f"commit {commit[:10]} not in this repository"
    paths = method_paths(method, repo_root)
    changed = _git(repo_root, "log", "--format=%h", f"{commit}..HEAD", "--", *paths)
    if changed.returncode != 0:
        return None, changed.stderr.strip() or "git log failed"
    commits = changed.stdout.split()
    if commits:
        return True, f"{method} code changed in {len(commits)} commit(s) after {commit[:10]} (latest {commits[0]})"
    # uncommitted edits of the method's files also make the row unreproducible from its commit
    dirty = _git(repo_root, "status", "--porcelain", "--", *paths)
    if dirty.stdout.strip():
        return True, f"{method} code has uncommitted changes"
    return False, "up to date"
