"""Contrastive losses for stage 1 of Sanchez et al. (ACCV 2020): learning a spatio-temporal
representation from unlabelled video "with contrastive learning" [AB].

The paper's exact formulation could not be consulted, so two readings are provided [X]:

* :func:`predictive_contrastive_loss` (default): CPC/DPC-style; the temporal state h_t (summary of
  frames 1..t) predicts the embeddings z_{t+1..t+k} of the next k frames, scored with InfoNCE
  (van den Oord et al. 2018, Eq. 4) against in-batch negatives.
* :func:`nt_xent`: NT-Xent of SimCLR (Chen et al. 2020, Eq. 1) between two augmented views of every
  frame (the CPU preset's per-frame objective).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(queries: torch.Tensor, keys: torch.Tensor, temperature: float = 0.1, normalize: bool = True) -> torch.Tensor:
    """InfoNCE with in-batch negatives: query i's positive is key i, every other key j ≠ i is a negative.

    ``-mean_i log( exp(q_i·k_i/τ) / Σ_j exp(q_i·k_j/τ) )`` with cosine similarity when ``normalize``.
    """
    if queries.shape != keys.shape or queries.ndim != 2:
        raise ValueError(f"info_nce expects two (N,D) tensors of equal shape, got {tuple(queries.shape)} "
                         f"and {tuple(keys.shape)}")
    if normalize:
        queries, keys = F.normalize(queries, dim=-1), F.normalize(keys, dim=-1)
    logits = queries @ keys.t() / temperature
    return F.cross_entropy(logits, torch.arange(len(queries), device=queries.device))


def anchor_steps(num_frames: int, horizon: int, min_context: int = 1) -> torch.Tensor:
    """Time indices t (0-based) whose state predicts t+1..t+horizon: every t with at least
    ``min_context`` frames seen and all ``horizon`` future frames inside the clip."""
    first, last = min_context - 1, num_frames - horizon - 1
    if min_context < 1 or horizon < 1 or last < first:
        raise ValueError(f"a clip of {num_frames} frames cannot hold {min_context} context frame(s) plus a "
                         f"prediction horizon of {horizon}; use clip_length >= min_context + horizon")
    return torch.arange(first, last + 1)


def predictive_contrastive_loss(
    predictions: torch.Tensor,
    embeddings: torch.Tensor,
    anchors: torch.Tensor,
    temperature: float = 0.1,
    normalize: bool = True,
) -> torch.Tensor:
    """Predictive InfoNCE, averaged over the k prediction steps.

    ``predictions`` (B,A,k,D): ``predictions[b, a, j]`` predicts ``embeddings[b, anchors[a] + j + 1]``
    (``embeddings`` is (B,T,D)). The negatives for step j are the true future embeddings of every other
    (clip, anchor) pair in the batch (DPC-style: other clips and other time steps).
    """
    b, a, k, d = predictions.shape
    if embeddings.shape[0] != b or embeddings.shape[-1] != d or len(anchors) != a:
        raise ValueError(f"shape mismatch: predictions {tuple(predictions.shape)}, embeddings "
                         f"{tuple(embeddings.shape)}, {len(anchors)} anchors")
    losses = []
    for j in range(k):
        target = embeddings[:, anchors + j + 1]  # (B,A,D)
        pred = predictions[:, :, j]
        losses.append(info_nce(pred.reshape(b * a, d), target.reshape(b * a, d), temperature, normalize))
    return torch.stack(losses).mean()


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent (SimCLR, Chen et al. 2020, Eq. 1): views i and i+B are positives; the other 2B−2
    views are negatives; cosine similarity, the loss averaged over all 2B anchors."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"nt_xent expects two (B,D) tensors of equal shape, got {tuple(z1.shape)} "
                         f"and {tuple(z2.shape)}")
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=-1)
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, targets)


@torch.no_grad()
def predictive_accuracy(
    predictions: torch.Tensor, embeddings: torch.Tensor, anchors: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Diagnostics of :func:`predictive_contrastive_loss` (same arguments), averaged over the k steps.

    ``top1``: fraction of predictions whose most similar candidate is the true future embedding
    (chance 1/(B·A)). ``same_clip``: fraction whose most similar candidate comes from the right clip,
    whatever its time step. ``same_clip`` near 1 with ``top1`` near 1/A means the model tells clips apart
    (e.g. by identity) but not the time steps inside a clip, i.e. the representation has not picked up
    what changes over time.
    """
    b, a, k, d = predictions.shape
    top1, same = [], []
    for j in range(k):
        pred = F.normalize(predictions[:, :, j], dim=-1)
        target = F.normalize(embeddings[:, anchors + j + 1], dim=-1)
        best = (pred.reshape(b * a, d) @ target.reshape(b * a, d).t()).argmax(1)
        idx = torch.arange(b * a, device=best.device)
        top1.append((best == idx).float().mean())
        same.append((best // a == idx // a).float().mean())
    return {"top1": torch.stack(top1).mean(), "same_clip": torch.stack(same).mean()}


@torch.no_grad()
def nt_xent_accuracy(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Fraction of the 2B views of :func:`nt_xent` whose most similar other view is their positive."""
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=-1)
    sim = (z @ z.t()).masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return (sim.argmax(1) == targets).float().mean()
