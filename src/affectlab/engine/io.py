"""Atomic file writes and run provenance (git commit, environment)."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from affectlab.schema import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[3]


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save_figure(fig: Any, path: Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure atomically (temporary file + rename) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object written by affectlab (run.json, done.json, results.json); a ConfigError naming the file
    when it is not one (a truncated copy, a hand edit)."""
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err}); expected a file written by affectlab") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: holds a {type(data).__name__}, expected a JSON object written by affectlab")
    return data


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """Commit hash and dirty flag of the checkout the code runs from (None outside git)."""
    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; ``platform`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_capability() -> str:
    """The instruction set torch's CPU kernels dispatch to (DEFAULT, AVX2, AVX512, ...)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def environment_summary() -> dict[str, Any]:
    import lightning
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine(),
        "gpus": torch.cuda.device_count(),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        # CPU results depend on the machine too (measured: the same seed-0 TCAE run and code, each on its machine's
        # synthetic copy, F1 0.362 on one machine and 0.410 on another); torch picks its kernels by this level
        "cpu_capability": cpu_capability(),
        # CPU results depend on it: the intra-op thread count changes float summation order
        "torch_threads": torch.get_num_threads(),
    }
