"""The TCAE validation image grid: one row per frame pair, the twin-cycle images and fields side by side.

Written by :class:`affectlab.methods.tcae.TCAEPretrainModule` at every validation (``method.grid_rows``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from affectlab.models.tcae import TCAEOutput

GRID_COLUMNS = ("source", "target", "AU-changed", "pose-changed", "reconstruction", "|dA|", "|dP|", "AU attention")


def first_pairs(out: TCAEOutput, n: int) -> TCAEOutput:
    """The first ``n`` pairs of every tensor of ``out``, detached (what :func:`save_grid` draws)."""
    return TCAEOutput(**{k: v[:n].detach() for k, v in vars(out).items()})


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)


def _heat(values: torch.Tensor, vmax: float) -> np.ndarray:
    """(B,1,H,W) → (B,H,W,3) uint8 RGB via a blue-to-yellow ramp on values / vmax."""
    x = (values.detach().float()[:, 0] / max(vmax, 1e-8)).clamp(0, 1).cpu().numpy()
    return (np.stack([x, x**0.5, 1.0 - x], axis=-1) * 255).round().astype(np.uint8)


def save_grid(path: Path, source: torch.Tensor, target: torch.Tensor, out: TCAEOutput) -> Path:
    """Write the validation grid PNG: one row per pair, columns :data:`GRID_COLUMNS`. Displacement
    magnitudes share one scale (the largest of the two fields), attention is shown on [0, 1]."""
    import cv2

    mag_au = out.delta_au.norm(dim=1, keepdim=True)
    mag_pose = out.delta_pose.norm(dim=1, keepdim=True)
    vmax = float(torch.maximum(mag_au.max(), mag_pose.max()))
    columns = [_to_uint8(source), _to_uint8(target), _to_uint8(out.au_changed), _to_uint8(out.pose_changed),
               _to_uint8(out.reconstruction), _heat(mag_au, vmax), _heat(mag_pose, vmax),
               _heat(out.attention_au, 1.0)]
    rows = [np.concatenate([c[i] for c in columns], axis=1) for i in range(source.shape[0])]
    grid = np.concatenate(rows, axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write the TCAE validation grid to {path}")
    return path
