"""Stage 2 of Sanchez et al. (ACCV 2020): AU intensity regression from extremely sparse labels.

Paper [AB]: labelled frames are "randomly chosen" (no key-frame selection), as few as 2 % of the
training frames, and "backpropagation through time is applied only with respect to the output of the
network for [those] labelled frames". :func:`masked_intensity_loss` is that loss: whole sequences go
through the temporal module, but the loss, hence the gradient, exists only at the labelled (t, AU)
entries. :func:`sample_label_subset` draws the label budget uniformly with a seed. The loss type
(MSE/L1) and whether the budget is drawn over the whole training set or per sequence are [X].
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

SCOPES = ("global", "per_sequence")


def masked_intensity_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where ``mask`` is True; shapes (B,T,K) or any equal shapes.

    Entries outside the mask contribute neither value nor gradient (they are never selected, so a
    NaN target there is harmless). A batch without labelled entries gives a zero loss that is still
    connected to ``pred`` (so DDP sees every parameter used).
    """
    if pred.shape != target.shape or pred.shape != mask.shape:
        raise ValueError(f"pred {tuple(pred.shape)}, target {tuple(target.shape)} and mask "
                         f"{tuple(mask.shape)} must have the same shape")
    mask = mask.bool()
    if not mask.any():
        return pred.sum() * 0.0
    return F.mse_loss(pred[mask], target[mask].to(pred.dtype))


def budget_count(num_frames: int, fraction: float) -> int:
    """Number of labelled frames for a budget: round(fraction·N), at least 1 (N ≥ 1)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    return min(num_frames, max(1, round(fraction * num_frames))) if num_frames > 0 else 0


def sample_label_subset(lengths: Sequence[int], fraction: float, seed: int, scope: str = "global") -> list[torch.Tensor]:
    """Choose the labelled frames of a training set uniformly at random, reproducibly.

    ``lengths`` are the frame counts of the training sequences (in a fixed order). Returns one bool
    mask per sequence. ``scope="global"``: round(fraction·ΣT) frames drawn without replacement from
    all training frames, every frame equally likely; ``scope="per_sequence"``: round(fraction·T_s)
    frames (at least 1) from each sequence. The same (lengths, fraction, seed, scope) always gives
    the same subset; the draw uses its own ``torch.Generator`` and leaves the global RNG untouched.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown label sampling scope {scope!r}; expected one of {SCOPES}")
    lengths = [int(n) for n in lengths]
    if any(n < 0 for n in lengths):
        raise ValueError(f"sequence lengths must be non-negative, got {lengths}")
    gen = torch.Generator().manual_seed(int(seed))
    if scope == "global":
        total = sum(lengths)
        flat = torch.zeros(total, dtype=torch.bool)
        flat[torch.randperm(total, generator=gen)[: budget_count(total, fraction)]] = True
        return list(flat.split(lengths))
    masks = []
    for n in lengths:
        m = torch.zeros(n, dtype=torch.bool)
        m[torch.randperm(n, generator=gen)[: budget_count(n, fraction)]] = True
        masks.append(m)
    return masks


class LabelBudget:
    """The labelled (sequence, frame) pairs of a training set, drawn once with :func:`sample_label_subset`.

    Built from the training manifest's ``sequence`` and ``frame`` columns (sequences sorted by id,
    frames sorted within a sequence, so the draw does not depend on the manifest's row order);
    :meth:`mask` turns a batch's ``meta`` (sequence ids, (B,T) frame indices) into a (B,T) bool mask.
    """

    def __init__(self, sequences: Sequence[str], frames: Sequence[int], fraction: float, seed: int,
                 scope: str = "global") -> None:
        if len(sequences) != len(frames):
            raise ValueError(f"{len(sequences)} sequence ids but {len(frames)} frame indices")
        per_seq: dict[str, list[int]] = {}
        for seq, frame in zip(sequences, frames):
            per_seq.setdefault(str(seq), []).append(int(frame))
        ids = sorted(per_seq)
        ordered = [torch.tensor(sorted(set(per_seq[i])), dtype=torch.long) for i in ids]
        masks = sample_label_subset([len(f) for f in ordered], fraction, seed, scope)
        self.labelled = {i: f[m] for i, f, m in zip(ids, ordered, masks)}
        self.num_frames = sum(len(f) for f in ordered)
        self.num_labelled = sum(len(v) for v in self.labelled.values())

    def mask(self, sequences: Sequence[str], frames: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(frames.shape, dtype=torch.bool, device=frames.device)
        for i, seq in enumerate(sequences):
            chosen = self.labelled.get(str(seq))
            if chosen is None:
                raise KeyError(f"sequence {seq!r} is not in the training manifest the label budget was drawn from")
            out[i] = torch.isin(frames[i], chosen.to(frames.device))
        return out
