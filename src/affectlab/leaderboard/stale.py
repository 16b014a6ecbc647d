"""Is a record stale? True when the method's code changed after the record's git commit.

The files that define a method are its registered module, its YAML presets, any model or loss
module named after it, and the model, loss, evaluation and metric modules its module imports
(followed through those packages: e.g. a loss module the method's model imports). The shared
engine and data modules are not followed: they serve every method. A record whose commit is not in
this repository cannot be judged (``None``), and a record made from a dirty tree says so in its reason.

"Changed" means changed as code, not as text: Python files are compared as syntax trees without
docstrings, comments and function-signature annotations (dataclass field annotations stay: they
define fields), YAML files as the data they load to. So a documentation edit, or a change that a
later commit reverts, leaves a record up to date.
"""
from __future__ import annotations

import ast
import inspect
import sys
import subprocess
from pathlib import Path
from typing import Any

import yaml

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


def code_of(path: str, text: str | None) -> Any:
    """The part of a file's text that decides what a run does (see the module docstring); ``None``
    for a file that does not exist."""
    if text is None:
        return None
    if path.endswith(".py"):
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return text
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                node.returns = None
                arguments = node.args
                for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                            arguments.vararg, arguments.kwarg]:
                    if arg is not None:
                        arg.annotation = None
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                first = node.body[0] if node.body else None
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                        and isinstance(first.value.value, str):
                    node.body = node.body[1:] or [ast.Pass()]
        return ast.dump(tree)
    if path.endswith((".yaml", ".yml")):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text
    return text


def _text_at(repo_root: Path, revision: str, path: str) -> str | None:
    shown = _git(repo_root, "show", f"{revision}:{path}")
    return shown.stdout if shown.returncode == 0 else None


def _working_text(repo_root: Path, path: str) -> str | None:
    file = repo_root / path
    return file.read_text() if file.is_file() else None


def staleness(method: str, commit: str | None, repo_root: Path = REPO_ROOT) -> tuple[bool | None, str]:
    """``(stale, reason)``; ``stale`` is None when the commit cannot be checked here."""
    if not commit:
        return None, "no git commit recorded"
    if _git(repo_root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        return None, f"commit {commit[:10]} not in this repository"
    paths = method_paths(method, repo_root)
    touched = _git(repo_root, "log", "--format=", "--name-only", f"{commit}..HEAD", "--", *paths)
    if touched.returncode != 0:
        return None, touched.stderr.strip() or "git log failed"
    changed = sorted(path for path in set(touched.stdout.splitlines())
                     if path and code_of(path, _text_at(repo_root, commit, path))
                     != code_of(path, _text_at(repo_root, "HEAD", path)))
    if changed:
        return True, f"{method} code changed after {commit[:10]} in {', '.join(changed)}"
    # uncommitted edits of the method's files also make the row unreproducible from its commit
    dirty = _git(repo_root, "status", "--porcelain", "--", *paths)
    edited = []
    for line in dirty.stdout.splitlines():
        path = line[3:].split(" -> ")[-1].strip()
        if code_of(path, _text_at(repo_root, "HEAD", path)) != code_of(path, _working_text(repo_root, path)):
            edited.append(path)
    if edited:
        return True, f"{method} code has uncommitted changes in {', '.join(sorted(edited))}"
    return False, "up to date"
