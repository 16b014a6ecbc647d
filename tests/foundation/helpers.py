"""Shared helpers for the foundation tests: run the real entry point as a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Small and fast: 4 epochs of the in-memory toy dataset with the smallest timm ResNet.
TINY = ["METHOD=baseline", "DATA=toyau", "trainer.max_epochs=4", "trainer.enable_progress_bar=false",
        "logger.wandb.enabled=false", "leaderboard.enabled=false"]


def run_cli(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "affectlab", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def results_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def wait_for_offline_wandb_keys(log: Path, keys: list[bytes], timeout: float = 20.0) -> list[bytes]:
    """Keys still missing from an offline wandb transaction log after up to ``timeout`` seconds.

    wandb 0.31 has no Python reader for the log; its records hold metric and table names as plain
    protobuf strings. Its service process may still be writing when ``run.finish()`` returns."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        data = log.read_bytes() if log.exists() else b""
        missing = [k for k in keys if k not in data]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.2)


def make_dry(*argv: str, dry: bool = True) -> subprocess.CompletedProcess:
    """``make -n`` (or ``make`` with ``dry=False``) as a user types it: not inside the `make test` that may run
    this suite, whose MAKEFLAGS and MAKELEVEL would pass its variables on and add "Entering directory" lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    return subprocess.run(["make", *(["-n"] if dry else []), *argv], cwd=REPO, capture_output=True, text=True,
                          env=env)
