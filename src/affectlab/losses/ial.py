"""Intensity-aware loss and the full training objective of Li et al., AAAI 2023 (methods.md §4.2).

P_IA = exp(z_y) / (exp(z_y) + exp(z_m)) with m = argmax_{j≠y} z_j (the most confusable non-target
class), L_IAL = −log P_IA = softplus(z_m − z_y). The official code reaches the same value as a 7-way
cross-entropy with every other class shifted by −9999; written as a softplus, the gradient visibly
touches only z_y and z_m.

Total objective (official ``main.py``):
L = w_ce·CE(z, y) + Σ_k w_aux,k·CE(a⁽ᵏ⁾, y) + λ·L_IAL, with w_ce = 1, w_aux = (0.05, 0) for the GCA
auxiliary classifiers of layer2 and layer3, and λ = 0.1; every term is a batch mean.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F


def most_confusable(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Index m = argmax_{j≠y} z_j per row (ties resolved by ``torch.max``, as in the official code)."""
    masked = logits.detach().scatter(1, target.long().unsqueeze(1), float("-inf"))
    return masked.argmax(dim=1)


def intensity_aware_loss(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """L_IAL = softplus(z_m − z_y) (IAL paper, intensity-aware loss; methods.md §4.2).

    ``logits`` (N, K) with K ≥ 2, ``target`` (N,) class ids. ``reduction``: mean | sum | none.
    """
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (N, K≥2), got {tuple(logits.shape)}")
    target = target.long()
    z_y = logits.gather(1, target.unsqueeze(1)).squeeze(1)
    z_m = logits.gather(1, most_confusable(logits, target).unsqueeze(1)).squeeze(1)
    loss = F.softplus(z_m - z_y)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be mean | sum | none, got {reduction!r}")


def ial_objective(
    logits: torch.Tensor,
    target: torch.Tensor,
    aux_logits: Sequence[Optional[torch.Tensor]] = (),
    ce_weight: float = 1.0,
    aux_weights: Sequence[float] = (0.05, 0.0),
    ial_weight: float = 0.1,
    use_ial: bool = True,
) -> dict[str, torch.Tensor]:
    """The IAL training objective; returns ``{"loss", "ce", "ial", "aux2", "aux3", ...}``.

    ``aux_logits[k]`` pairs with ``aux_weights[k]``; a ``None`` entry (no GCA, e.g. the SE/plain
    ablations) contributes nothing. Terms with weight 0 are still reported (detached, for logging).
    """
    if len(aux_weights) < len(aux_logits):
        raise ValueError(f"{len(aux_logits)} auxiliary outputs but only {len(aux_weights)} aux_weights")
    target = target.long()
    ce = F.cross_entropy(logits, target)
    ial = intensity_aware_loss(logits, target)
    total = ce_weight * ce
    if use_ial and ial_weight:
        total = total + ial_weight * ial
    terms = {"ce": ce.detach(), "ial": ial.detach()}
    for k, (aux, weight) in enumerate(zip(aux_logits, aux_weights), start=2):
        if aux is None:
            continue
        aux_ce = F.cross_entropy(aux, target)
        if weight:
            total = total + weight * aux_ce
        terms[f"aux{k}"] = aux_ce.detach()
    return {"loss": total, **terms}
