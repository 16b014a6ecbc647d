"""What a method declares as its evidence: the default arm, its controls and the metric that decides.

A method names its arms on its registry entry (``MethodSpec.evidence``), next to the code they test::

    evidence = Evidence(metric="f1_mean", arms=(
        Arm("default", help="pretraining + linear probe"),
        Arm("random_init", ("method.pretrain_epochs=0",), help="same probe on a random encoder"),
        Arm("all_positive", trivial="all_positive", help="predict every AU present"),
    ))

The first arm is the default (``make train``); every other arm is a control it must beat. A trained
arm is the default config plus its ``overrides`` (ordinary ``key=value`` config overrides, validated
like any command line), run through the same runner as ``make train``. A trivial arm names a predictor
of :data:`affectlab.evidence.trivial.TRIVIAL`, scored on the test labels of the default's datamodule
without training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from affectlab.leaderboard.records import higher_is_better


@dataclass(frozen=True)
class Arm:
    """One row of the evidence table: a config variant (trained) or a trivial predictor (not trained)."""

    name: str
    overrides: tuple[str, ...] = ()
    #: name of a trivial predictor (``affectlab.evidence.trivial.TRIVIAL``); None = trained by the runner
    trivial: Optional[str] = None
    #: one line for the table: what the arm is
    help: str = ""

    def __post_init__(self) -> None:
        if self.trivial and self.overrides:
            raise ValueError(f"evidence arm {self.name!r}: a trivial predictor takes no config overrides")
        if isinstance(self.overrides, str):
            raise TypeError(f"evidence arm {self.name!r}: overrides must be a tuple of 'key=value' strings")

    @property
    def trained(self) -> bool:
        return self.trivial is None


@dataclass(frozen=True)
class Evidence:
    """A method's evidence declaration: ``arms[0]`` is the default, the others are its controls.

    ``metric`` is the test metric compared (a key of ``results.json``'s ``metrics``, e.g. ``f1_mean``,
    ``icc_mean``, ``uar``). ``seed_keys`` are the config keys set to each evidence seed (``seed``, and
    for example a label-mask seed so that every seed draws other labels, the same for every arm).
    ``breakdown`` names further test metrics reported per arm (mean ± sd) beside the verdict, e.g. the
    score per intensity band; they are shown, not judged."""

    metric: str
    arms: tuple[Arm, ...]
    seed_keys: tuple[str, ...] = ("seed",)
    breakdown: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [a.name for a in self.arms]
        if len(names) < 2:
            raise ValueError("evidence needs a default arm and at least one control")
        if len(set(names)) != len(names):
            raise ValueError(f"evidence arm names repeat: {names}")
        if not self.arms[0].trained:
            raise ValueError("the first evidence arm is the default and must be trained")
        if not higher_is_better(self.metric):
            raise ValueError(f"evidence metric {self.metric!r} is lower-is-better, but the verdict asks whether "
                             "default − control exceeds twice the control's sd: declare a higher-is-better metric")

    @property
    def default(self) -> Arm:
        return self.arms[0]

    @property
    def controls(self) -> tuple[Arm, ...]:
        return self.arms[1:]
