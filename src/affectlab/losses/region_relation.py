"""Self-supervised objective of the region/relation model (reconstruction, methods spec §2.3 [X]).

``L = L_region + γ · L_OT``: per-AU cross-view consistency without negatives (SimSiam / BYOL form:
negative cosine between the predictor output of one view and the stop-gradient target projection of
the other view, symmetrised, averaged over AUs and the batch) plus the improved-OT relation term of
:mod:`affectlab.losses.optimal_transport`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean of ``−cos(p, stopgrad(z))`` over all leading dimensions (SimSiam eq. 1)."""
    return -(F.normalize(p, dim=-1) * F.normalize(z.detach(), dim=-1)).sum(dim=-1).mean()


def region_consistency_loss(
    p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
) -> torch.Tensor:
    """Symmetrised per-AU consistency for predictions p and target projections z, each (B, K, D)."""
    return 0.5 * (negative_cosine(p1, z2) + negative_cosine(p2, z1))
