"""Cross-validation runner: every fold of a protocol, one training process per fold.

``CrossValidation(overrides).run()`` trains the folds one after another; ``run(folds=[k])``
trains one fold, so a cluster array job can start one process per fold. Fold states live in
``<run_root>/cv/<method>/<data>/<cv_id>/fold<k>.json`` (written atomically); a finished fold is
skipped on rerun and a failed one is retried. When every fold has finished, whichever process
finishes last writes ``cv_results.json``, ``cv_results.md`` and one leaderboard record
(its ``record_id`` is derived from the fold runs, so two processes finishing together add it once).
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from affectlab.evaluation.aggregate import cv_markdown, cv_record
from affectlab.evaluation.protocols import num_folds, protocol_name
from affectlab.schema import ConfigError

DEFAULT_TRAIN_COMMAND = (sys.executable, "-m", "affectlab", "train")
#: overrides that do not change the experiment (so a rerun with them finds the same CV)
_BOOKKEEPING = ("data.fold", "run_name", "resume", "leaderboard.", "logger.")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _parse(overrides: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    selectors, keys = {}, {}
    for arg in overrides:
        if "=" not in arg:
            raise ConfigError(f"expected KEY=value, got {arg!r}")
        key, value = arg.split("=", 1)
        (selectors if key.isupper() else keys)[key] = value
    return selectors, keys


@dataclass
class FoldOutcome:
    """What happened to one fold of a cross-validation: finished (with its record), failed or skipped."""

    fold: int
    status: str  # finished | failed | skipped
    run_dir: str | None = None
    record: dict[str, Any] | None = None
    message: str = ""


@dataclass
class CrossValidation:
    """One method × dataset × config evaluated on every fold of the dataset's protocol."""

    overrides: list[str]
    train_command: Sequence[str] = DEFAULT_TRAIN_COMMAND
    run_root: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    echo: bool = True

    def __post_init__(self) -> None:
        selectors, keys = _parse(self.overrides)
        if "data.fold" in keys:
            raise ConfigError("do not pass data.fold to a cross-validation; use --fold K to run one fold")
        self.method = selectors.get("METHOD") or self._composed("method")
        self.dataset = selectors.get("DATA") or self._composed("data")
        self.folds = list(range(1, num_folds(self.dataset) + 1))
        self.protocol = protocol_name(self.dataset)
        identity = sorted(a for a in self.overrides if not a.split("=", 1)[0].startswith(_BOOKKEEPING))
        self.cv_id = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:12]
        root = Path(self.run_root or keys.get("run_root", "runs"))
        self.cv_dir = root / "cv" / self.method / self.dataset / self.cv_id
        self._keys = keys

    def _composed(self, section: str) -> str:
        from affectlab.config import compose

        return str(compose(self.overrides)[section].name)

    # ------------------------------------------------------------------ folds
    def fold_file(self, fold: int) -> Path:
        return self.cv_dir / f"fold{fold}.json"

    def fold_state(self, fold: int) -> dict[str, Any] | None:
        path = self.fold_file(fold)
        if not path.is_file():
            return None
        state = json.loads(path.read_text())
        if state.get("status") == "finished" and not Path(state["run_dir"], "results.json").is_file():
            return None  # its run directory was deleted: train it again
        return state

    def finished_records(self) -> dict[int, dict[str, Any]]:
        out = {}
        for fold in self.folds:
            state = self.fold_state(fold)
            if state and state.get("status") == "finished":
                out[fold] = state["record"]
        return out

    def run_fold(self, fold: int) -> FoldOutcome:
        """Train and test one fold in a subprocess (skipped when it already finished)."""
        if fold not in self.folds:
            raise ConfigError(f"fold {fold} is not part of {self.protocol} (folds {self.folds})")
        state = self.fold_state(fold)
        if state and state.get("status") == "finished":
            return FoldOutcome(fold, "skipped", state["run_dir"], state["record"], "already finished")
        self.cv_dir.mkdir(parents=True, exist_ok=True)
        argv = [*self.train_command, *self.overrides, f"data.fold={fold}"]
        log_path = self.cv_dir / f"fold{fold}.log"
        lines: list[str] = []
        with log_path.open("w") as log:
            log.write("$ " + shlex.join(argv) + "\n")
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env={**os.environ, **self.env})
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                lines.append(line.rstrip("\n"))
                if self.echo:
                    sys.stdout.write(line)
            code = proc.wait()
        outcome = self._outcome(fold, code, lines, log_path)
        state = {"fold": fold, "status": outcome.status, "run_dir": outcome.run_dir, "record": outcome.record,
                 "message": outcome.message, "command": argv, "log": str(log_path)}
        _atomic_write(self.fold_file(fold), json.dumps(state, indent=1, default=str))
        return outcome

    def _outcome(self, fold: int, code: int, lines: list[str], log_path: Path) -> FoldOutcome:
        if code != 0:
            return FoldOutcome(fold, "failed", message=f"training exited with code {code}; see {log_path}")
        last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        results = Path(last) / "results.json"
        if not results.is_file():
            return FoldOutcome(fold, "failed", message=(
                f"the last stdout line {last!r} is not a run directory holding results.json; see {log_path}"))
        record = json.loads(results.read_text())
        return FoldOutcome(fold, "finished", str(Path(last)), record)

    # ------------------------------------------------------------------ whole protocol
    def run(self, folds: Sequence[int] | None = None) -> dict[str, Any]:
        """Run ``folds`` (default: all, in order); aggregate when every fold has finished."""
        outcomes = [self.run_fold(k) for k in (folds or self.folds)]
        summary: dict[str, Any] = {"cv_dir": str(self.cv_dir), "outcomes": outcomes, "aggregate": None}
        if len(self.finished_records()) == len(self.folds):
            summary["aggregate"] = self.aggregate()
        return summary

    def aggregate(self, record: bool = True) -> dict[str, Any]:
        """Write ``cv_results.json`` + ``cv_results.md`` and append the CV record to the board."""
        finished = self.finished_records()
        missing = [k for k in self.folds if k not in finished]
        if missing:
            raise RuntimeError(f"cannot aggregate {self.cv_dir}: folds {missing} have not finished")
        result = cv_record(self.cv_id, finished, self.folds, self.protocol, str(self.cv_dir))
        _atomic_write(self.cv_dir / "cv_results.json", json.dumps(result, indent=1, default=str))
        _atomic_write(self.cv_dir / "cv_results.md", cv_markdown(result))
        if record:
            from affectlab.leaderboard import record_result

            record_result(result, self._leaderboard_cfg())
        return result

    def _leaderboard_cfg(self) -> dict[str, Any]:
        import yaml

        def value(key: str, default: Any) -> Any:
            return yaml.safe_load(self._keys[key]) if key in self._keys else default

        return {"sweep_id": value("sweep_id", None),
                "leaderboard": {"enabled": value("leaderboard.enabled", True),
                                "url": value("leaderboard.url", None),
                                "tags": value("leaderboard.tags", [])}}
