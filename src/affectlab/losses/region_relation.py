"""Self-supervised objective of the region/relation model (reconstruction, methods spec §2.3 [X]).

``L = L_region + γ · L_OT``: per-AU cross-view consistency without negatives (SimSiam form:
negative cosine between the predictor output of one view and the stop-gradient target projection of
the other view, symmetrised, averaged over AUs and the batch) plus the improved-OT relation term of
:mod:`affectlab.losses.optimal_transport`. Also the pieces of the SimMIM reconstruction term (ours):
:func:`masked_mean`.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from affectlab.losses.optimal_transport import ot_relation_loss


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean of ``−cos(p, stopgrad(z))`` over all leading dimensions (SimSiam eq. 1)."""
    return -(F.normalize(p, dim=-1) * F.normalize(z.detach(), dim=-1)).sum(dim=-1).mean()


def region_consistency_loss(
    p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
) -> torch.Tensor:
    """Symmetrised per-AU consistency for predictions p and target projections z, each (B, K, D)."""
    return 0.5 * (negative_cosine(p1, z2) + negative_cosine(p2, z1))


def siamese_ot_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
                    **ot: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The OT relation term in SimSiam form (ours): plans and costs between the predictions of one view
    and the stop-gradient target projections of the other, ``½[OT(p1, sg z2) + OT(p2, sg z1)]``.

    Without it the OT cost ``1 − cos(z_i⁽¹⁾, z_j⁽²⁾)`` pulls both views together with gradients into
    both, the plain Siamese set-up that SimSiam (Chen & He, CVPR 2021, §4.1) shows collapses. Returns
    the loss and the plans (B, K, K) oriented view 1 → view 2 (the second plan transposed), averaged.
    """
    loss12, plan12 = ot_relation_loss(p1, z2.detach(), **ot)
    loss21, plan21 = ot_relation_loss(p2, z1.detach(), **ot)
    return 0.5 * (loss12 + loss21), 0.5 * (plan12 + plan21.transpose(-1, -2))


def masked_mean(error: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``error`` (B, C, H, W) over the pixels where ``pixel_mask`` (B, 1, H, W) is 1."""
    return (error * pixel_mask).sum() / (pixel_mask.sum() * error.shape[1]).clamp_min(1)

