"""TCAE objective (spec §1.2) and self-paced curriculum (spec §1.3, official ``TrackLoss``).

Every term is first computed per sample (mean over pixels or embedding dimensions), then reduced
over the batch by :func:`window_mean`: the per-sample values of *each term separately* are sorted
ascending and only ranks in ``[int(lo·B), int(hi·B))`` are averaged (the official self-paced
window). Validation uses the plain mean (window ``(0, 1)``).

Code weights (default): 10·L_rec + 0.1·L_sparse + 1·ΣL_emb + 1·ΣL_cyc, i.e. the paper's
1 / 0.01 / 0.1 / 0.1 scaled by 10 (author, TCAE issue #13).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from affectlab.models.tcae import identity_grid, sampling_grid

if TYPE_CHECKING:
    from affectlab.models.tcae import TCAEOutput

#: the six feature-consistency terms: name → (attribute of the synthesised face, attribute it must match)
EMBEDDING_TERMS: dict[str, tuple[str, str]] = {
    "emb_pose_pose_t": ("psi_pose", "psi_t"),  # pose-changed face has the target's pose
    "emb_pose_au_s": ("phi_pose", "phi_s"),    # ... and the source's AUs
    "emb_au_pose_s": ("psi_au", "psi_s"),      # AU-changed face keeps the source's pose
    "emb_au_au_t": ("phi_au", "phi_t"),        # ... and has the target's AUs
    "emb_rec_pose_t": ("psi_rec", "psi_t"),    # reconstruction matches the target in both
    "emb_rec_au_t": ("phi_rec", "phi_t"),
}
CYCLE_TERMS = ("cyc_au", "cyc_pose")


@dataclass
class TCAELossWeights:
    """Loss weights (official code scale; divide all by 10 for the paper's normalisation)."""

    rec: float = 10.0
    sparse: float = 0.1
    emb: float = 1.0
    cyc: float = 1.0


def l1_per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().flatten(1).mean(1)


def mse_per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).flatten(1).mean(1)


def displacement_l1(delta: torch.Tensor) -> torch.Tensor:
    """Per-sample mean |clamp(G + Δ) - G| over 2×H×W (the official "tv" term; a plain L1 magnitude)."""
    grid = identity_grid(delta.shape[-1], delta.device)
    return (sampling_grid(delta) - grid).abs().flatten(1).mean(1)


def per_sample_terms(out: "TCAEOutput", source: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """All TCAE loss terms as (B,) tensors: ``rec``, ``sparse``, the six ``emb_*`` and two ``cyc_*``."""
    terms = {
        "rec": l1_per_sample(out.reconstruction, target),
        "sparse": displacement_l1(out.delta_au),
    }
    for name, (synth, reference) in EMBEDDING_TERMS.items():
        terms[name] = mse_per_sample(getattr(out, synth), getattr(out, reference))
    terms["cyc_au"] = l1_per_sample(out.cycle_au, source)
    terms["cyc_pose"] = l1_per_sample(out.cycle_pose, source)
    return terms


def window_bounds(batch: int, lo: float, hi: float) -> tuple[int, int]:
    """Rank range [start, stop) kept by the window; at least one sample is always kept."""
    start = min(int(lo * batch + 1e-6), batch - 1)
    stop = max(int(hi * batch + 1e-6), start + 1)
    return start, min(stop, batch)


def window_mean(values: torch.Tensor, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """Mean of the per-sample ``values`` whose ascending rank lies in [lo·B, hi·B)."""
    if lo <= 0.0 and hi >= 1.0:
        return values.mean()
    start, stop = window_bounds(values.numel(), lo, hi)
    return torch.sort(values.flatten()).values[start:stop].mean()


def tcae_objective(
    terms: dict[str, torch.Tensor],
    weights: TCAELossWeights,
    window: tuple[float, float] = (0.0, 1.0),
    emb_scale: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted total of the windowed terms; returns (total, {term: reduced value}).

    ``emb_scale`` multiplies the embedding terms (the official validation divides them by
    batch size × embedding size; 1 during training).
    """
    lo, hi = window
    reduced = {name: window_mean(v, lo, hi) for name, v in terms.items()}
    for name in EMBEDDING_TERMS:
        reduced[name] = reduced[name] * emb_scale
    total = (
        weights.rec * reduced["rec"]
        + weights.sparse * reduced["sparse"]
        + weights.emb * sum(reduced[n] for n in EMBEDDING_TERMS)
        + weights.cyc * sum(reduced[n] for n in CYCLE_TERMS)
    )
    return total, reduced


class CurriculumWindow:
    """Self-paced percentile window driven by validation-loss plateaus (official ``TrackLoss``).

    Starts at ``[start_lo, start_hi]`` = [0, 0.5]. :meth:`update` records one validation loss; the
    tracker fires when the best loss is more than ``patience`` validations old *and* the last firing
    (or improvement) is too. Before the final window a firing moves the window up by ``step`` (both
    ends) and starts a fresh tracker; it moves only while ``hi < stop_below`` (0.85), so the official
    sequence ends at [0.4, 0.9]. In the final window a firing is reported as ``"plateau"`` (the
    official code then steps ReduceLROnPlateau) and, as in ``TrackLoss``, the all-time best is kept
    and the tracker re-arms: it fires again ``patience + 1`` validations later unless the loss improves.
    """

    def __init__(self, start_lo: float = 0.0, start_hi: float = 0.5, step: float = 0.1,
                 stop_below: float = 0.85, patience: int = 15) -> None:
        if not 0.0 <= start_lo < start_hi <= 1.0:
            raise ValueError(f"curriculum window must satisfy 0 <= lo < hi <= 1, got [{start_lo}, {start_hi}]")
        self.start_lo, self.start_hi, self.step = start_lo, start_hi, step
        self.stop_below, self.patience = stop_below, patience
        self.shifts = 0
        self._fresh_tracker()

    def _fresh_tracker(self) -> None:
        self.best: float | None = None
        self.seen = 0  # validations recorded by this tracker
        self.best_at = 0  # index of the best one (official best_epoch)
        self.armed_at = 0  # index of the last improvement or firing (official last_warm)

    @property
    def window(self) -> tuple[float, float]:
        # counting shifts instead of adding floats keeps 0.1 steps exact
        return (round(self.start_lo + self.shifts * self.step, 6), round(self.start_hi + self.shifts * self.step, 6))

    @property
    def final(self) -> bool:
        return self.window[1] >= self.stop_below

    def update(self, val_loss: float) -> str | None:
        """Record one validation loss; return ``"shift"``, ``"plateau"`` or ``None``."""
        self.seen += 1
        if self.best is None or val_loss < self.best:
            self.best, self.best_at, self.armed_at = float(val_loss), self.seen, self.seen
        if self.seen - self.best_at <= self.patience or self.seen - self.armed_at <= self.patience:
            return None
        if self.final:
            self.armed_at = self.seen
            return "plateau"
        self.shifts += 1
        self._fresh_tracker()
        return "shift"

    def state_dict(self) -> dict:
        return {"shifts": self.shifts, "best": self.best, "seen": self.seen, "best_at": self.best_at,
                "armed_at": self.armed_at}

    def load_state_dict(self, state: dict) -> None:
        self.shifts, self.best = state["shifts"], state["best"]
        if "seen" in state:
            self.seen, self.best_at, self.armed_at = state["seen"], state["best_at"], state["armed_at"]
        else:  # checkpoints written before the official re-arming rule: a count since the best
            self.seen, self.best_at, self.armed_at = state["since_best"], 0, 0
