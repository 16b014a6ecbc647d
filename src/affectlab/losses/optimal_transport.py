"""Entropic optimal transport between AU feature sets, with an AU-relation prior ("improved" OT).

Song & Liu (ICASSP 2023) state only that an *improved* OT algorithm exploits the correlation among
AUs (abstract). The form implemented here is affectlab's reconstruction (methods spec §2.3 [X]):

* cost between the AU features of two views, ``C_ij = 1 − cos(f_i^(1), f_j^(2))``;
* improved cost ``C̃ = C + β (1 − R)`` with ``R ∈ [0, 1]^{K×K}`` an AU relation prior (``R_ii = 1``),
  so that transport between correlated AUs is cheap;
* entropic plan ``T* = argmin_T ⟨T, C̃⟩ − ε H(T)`` with marginals ``a = b = 1/K``, solved in a batch by
  POT (``ot.solve_batch``, torch backend, log-domain Sinkhorn);
* loss ``⟨T*, C⟩``: the transport cost of the feature cost under the prior-shaped plan.

The prior comes from label co-occurrence (:func:`cooccurrence_relation`) when labels may be used, or
from the running mean of the transport plans (:class:`RelationPrior`, label-free).
"""
from __future__ import annotations

from typing import Optional

import ot
import torch
import torch.nn as nn
import torch.nn.functional as F


def cosine_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, K, D), (B, L, D) → (B, K, L) cost ``1 − cos(x_i, y_j)``."""
    return 1.0 - F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).transpose(-1, -2)


def improved_cost(cost: torch.Tensor, relation: Optional[torch.Tensor], beta: float) -> torch.Tensor:
    """``C + β(1 − R)``; ``relation=None`` or ``β=0`` gives plain OT."""
    if relation is None or beta == 0:
        return cost
    return cost + beta * (1.0 - relation.to(cost))


def sinkhorn_plan(
    cost: torch.Tensor,
    reg: float = 0.05,
    a: Optional[torch.Tensor] = None,
    b: Optional[torch.Tensor] = None,
    num_iter: int = 100,
    tol: float = 1e-6,
    method: str = "log_sinkhorn",
    differentiable: bool = False,
) -> torch.Tensor:
    """Entropic OT plans (B, K, L) for a batch of costs via POT; uniform marginals when a/b are None.

    ``differentiable=True`` back-propagates through the Sinkhorn iterations (POT ``grad='autodiff'``);
    otherwise the plan is a constant (envelope theorem: the gradient of the OT value with respect to
    the cost is the plan itself).
    """
    if cost.dim() != 3:
        raise ValueError(f"cost must be (B, K, L), got {tuple(cost.shape)}")
    grad = "autodiff" if differentiable else "detach"
    source = cost if differentiable else cost.detach()
    result = ot.solve_batch(source, reg=reg, a=a, b=b, max_iter=num_iter, tol=tol, method=method, grad=grad)
    return result.plan


def ot_relation_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    relation: Optional[torch.Tensor] = None,
    beta: float = 1.0,
    reg: float = 0.05,
    num_iter: int = 100,
    differentiable_plan: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """OT relation term between AU feature sets x, y (B, K, D): returns (loss, plans (B, K, K)).

    The plan of the improved cost ``C̃`` is scored with the feature cost ``C``: ``⟨T*, C⟩``. By default
    the plan is a constant for the gradient (envelope theorem); ``differentiable_plan`` back-propagates
    through the Sinkhorn iterations instead.
    """
    cost = cosine_cost(x, y)
    plan = sinkhorn_plan(improved_cost(cost, relation, beta), reg=reg, num_iter=num_iter,
                         differentiable=differentiable_plan)
    return (plan * cost).sum(dim=(-1, -2)).mean(), plan


def cooccurrence_relation(labels: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Symmetric AU relation (K, K) from binary labels (N, K): ``(P(j|i) + P(i|j)) / 2``, diagonal 1.

    Frames where either AU is unlabelled (mask 0) do not count for that pair.
    """
    counts, both = cooccurrence_counts(labels, mask)
    return relation_from_counts(counts, both)


def cooccurrence_counts(labels: torch.Tensor, mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairwise sufficient statistics: ``n_i|j`` = frames with AU i on and j labelled, ``n_ij`` both on."""
    y = (labels > 0.5).to(torch.float64)
    m = torch.ones_like(y) if mask is None else (mask > 0).to(torch.float64)
    y = y * m
    on_given_labelled = y.T @ m  # [i, j]: i on, j labelled
    both = y.T @ y
    return on_given_labelled, both


def relation_from_counts(on_given_labelled: torch.Tensor, both: torch.Tensor) -> torch.Tensor:
    cond = both / on_given_labelled.clamp_min(1.0)  # [i, j] = P(j on | i on)
    relation = 0.5 * (cond + cond.T)
    relation.fill_diagonal_(1.0)
    return relation.float()


def plan_relation(mean_plan: torch.Tensor) -> torch.Tensor:
    """Relation (K, K) ∈ [0, 1] from a mean plan: symmetrise, scale so that ``R_ij = T_ij / sqrt(T_ii T_jj)``."""
    sym = 0.5 * (mean_plan + mean_plan.T)
    diag = sym.diagonal().clamp_min(1e-12)
    relation = (sym / (diag[:, None] * diag[None, :]).sqrt()).clamp(0.0, 1.0)
    return relation.fill_diagonal_(1.0)


class RelationPrior(nn.Module):
    """The AU relation prior R of the improved OT cost and the learned relation matrix.

    ``source='plans'``: R from an exponential moving average of the batch-mean transport plans
    (label-free); ``'labels'``: R from running label co-occurrence counts; ``'none'``: plain OT.
    ``mean_plan`` (the running plan, scaled by K so rows sum to 1) is the learned AU relation matrix
    exported by the method in every mode.
    """

    def __init__(self, num_aus: int, source: str = "plans", momentum: float = 0.99) -> None:
        super().__init__()
        if source not in ("plans", "labels", "none"):
            raise ValueError(f"relation prior source must be plans | labels | none, got {source!r}")
        self.source = source
        self.momentum = momentum
        self.register_buffer("mean_plan", torch.full((num_aus, num_aus), 1.0 / num_aus))
        self.register_buffer("plan_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("on_given_labelled", torch.zeros(num_aus, num_aus, dtype=torch.float64))
        self.register_buffer("both_on", torch.zeros(num_aus, num_aus, dtype=torch.float64))

    @torch.no_grad()
    def update_plans(self, plans: torch.Tensor) -> None:
        batch_mean = plans.detach().mean(dim=0) * plans.shape[-1]
        if int(self.plan_updates) == 0:
            self.mean_plan.copy_(batch_mean)
        else:
            self.mean_plan.mul_(self.momentum).add_((1 - self.momentum) * batch_mean)
        self.plan_updates += 1

    @torch.no_grad()
    def update_labels(self, labels: torch.Tensor, mask: Optional[torch.Tensor] = None) -> None:
        counts, both = cooccurrence_counts(labels.detach(), None if mask is None else mask.detach())
        self.on_given_labelled += counts
        self.both_on += both

    def relation(self) -> Optional[torch.Tensor]:
        """The prior used in the cost, or None before it has any evidence / when disabled."""
        if self.source == "plans" and int(self.plan_updates) > 0:
            return plan_relation(self.mean_plan)
        if self.source == "labels" and float(self.on_given_labelled.diagonal().sum()) > 0:
            return relation_from_counts(self.on_given_labelled, self.both_on)
        return None
