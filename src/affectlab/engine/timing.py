"""Where a run's wall time goes: the share spent inside training steps, per stage and overall."""
from __future__ import annotations

import time
from typing import Any

import lightning as L


class StepTimer(L.Callback):
    """Sums the wall time from ``on_train_batch_start`` to ``on_train_batch_end`` (forward, backward and
    optimiser step of every training batch); the runner sets ``wall_s`` to the stage's whole ``fit``
    (setup, data loading, validation, checkpoints, online probe). :meth:`summary` gives both and the share."""

    def __init__(self) -> None:
        self.step_s = 0.0
        self.steps = 0
        self.wall_s = 0.0
        self._started: float | None = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._started is not None:
            self.step_s += time.perf_counter() - self._started
            self.steps += 1
            self._started = None

    def summary(self, extra: dict[str, float] | None = None) -> dict[str, Any]:
        """``{"wall_s", "train_steps_s", "steps", "train_step_share", **extra}`` (seconds rounded to ms)."""
        out: dict[str, Any] = {"wall_s": round(self.wall_s, 3), "train_steps_s": round(self.step_s, 3),
                               "steps": self.steps, "train_step_share": share(self.step_s, self.wall_s)}
        out.update({k: round(v, 3) for k, v in (extra or {}).items()})
        return out


def share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole > 0 else None


def overall(stages: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """Sum of the stages' timings (those that have one) and the overall share of training steps."""
    timed = [s for s in stages.values() if s and s.get("wall_s") is not None]
    wall = sum(s["wall_s"] for s in timed)
    steps = sum(s["train_steps_s"] for s in timed)
    return {"wall_s": round(wall, 3), "train_steps_s": round(steps, 3), "train_step_share": share(steps, wall)}


def format_timing(stages: dict[str, dict[str, Any] | None], run_wall_s: float | None = None) -> str:
    """One line: the share of wall time inside training steps per stage, over all stages, and of the run."""
    parts = [f"{name} {100 * s['train_step_share']:.0f} % of {s['wall_s']:.0f} s"
             for name, s in stages.items() if s and s.get("train_step_share") is not None]
    if not parts:
        return ""
    total = overall(stages)
    line = f"time inside training steps: {'; '.join(parts)}; all stages {100 * (total['train_step_share'] or 0):.0f} %"
    if run_wall_s:
        line += f" ({100 * total['train_steps_s'] / run_wall_s:.0f} % of the run's {run_wall_s:.0f} s)"
    probe = sum(s.get("online_probe_s", 0.0) for s in stages.values() if s)
    if probe:
        line += f"; online probe {probe:.1f} s"
    return line
