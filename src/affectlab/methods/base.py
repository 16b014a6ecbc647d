"""What a registered method is: a config schema, a default dataset and a sequence of stages.

A method is a :class:`MethodSpec` subclass decorated with ``@METHODS.register(name)``.
The runner (``affectlab.engine.runner``) asks it for :class:`Stage` objects one at a time,
fits each with a fresh Lightning ``Trainer`` and, for the stage marked ``evaluate``, runs the
single-process test pass that produces ``results.json``. Because ``stages`` is a generator,
a later stage can use the module trained by an earlier one (pretrain → linear probe).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

import lightning as L
from omegaconf import DictConfig

from affectlab.evidence.arms import Evidence
from affectlab.registry import Registry

METHODS: Registry[type["MethodSpec"]] = Registry("method")

TASKS = ("au_occurrence", "au_intensity", "expression")


@dataclass
class MethodConfig:
    """Schema base for ``cfg.method``; each method subclasses it with its own keys."""

    name: str = "???"


@dataclass
class Stage:
    """One fit of one LightningModule on one datamodule.

    ``monitor``/``mode`` pick the best checkpoint (``None``: keep ``last.ckpt`` only).
    ``evaluate=True`` marks the stage whose best checkpoint is tested and recorded.
    ``max_epochs``/``max_steps`` override ``cfg.trainer`` for this stage when set;
    ``val_every_n_steps`` makes the stage validate (and checkpoint) every n optimiser steps across
    epoch boundaries instead of once per epoch. ``callbacks`` are added to the stage's Trainer
    (e.g. ``engine.online_probe.OnlineProbe``).
    """

    name: str
    module: L.LightningModule
    datamodule: L.LightningDataModule
    monitor: str | None = None
    mode: str = "max"
    evaluate: bool = False
    max_epochs: int | None = None
    max_steps: int | None = None
    val_every_n_steps: int | None = None
    callbacks: list[L.Callback] = field(default_factory=list)
    trainer_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """What the runner tells a method about the run it is part of."""

    run_dir: Path
    cfg: DictConfig

    def stage_dir(self, stage: str) -> Path:
        path = self.run_dir / "stages" / stage
        path.mkdir(parents=True, exist_ok=True)
        return path


class MethodSpec:
    """Base class of a registered method (see the module docstring)."""

    Config: ClassVar[type] = MethodConfig
    #: dataset used when the command line names none (``make train METHOD=m``)
    default_data: ClassVar[str] = "bp4d"
    #: one of TASKS: decides the metrics recorded and the leaderboard table
    task: ClassVar[str] = "au_occurrence"
    #: data section keys the method needs (merged after data/<name>.yaml, before the experiment)
    data_overrides: ClassVar[dict[str, Any]] = {}
    #: its networks train faster in channels_last memory format on CPU (``trainer.channels_last=auto``;
    #: measured by ``benchmarks/channels_last_cpu.py``)
    channels_last_cpu: ClassVar[bool] = False
    #: the default and the controls ``make evidence`` compares (affectlab.evidence.arms); None = none
    evidence: ClassVar[Evidence | None] = None
    registry_name: ClassVar[str]

    def stages(self, cfg: DictConfig, ctx: RunContext) -> Iterator[Stage]:
        raise NotImplementedError


def probe_split_keys(cfg: DictConfig, pretrain_data: str | None) -> dict[str, Any]:
    """Datamodule keys a pretraining stage on the probe's own dataset must share with ``cfg.data``:
    its fold, so that the fold's test subjects never enter pretraining (even unlabelled)."""
    if pretrain_data is None or pretrain_data != cfg.data.name:
        return {}
    return {"fold": cfg.data.fold}
