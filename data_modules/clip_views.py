"""Random views of clip batches, drawn on the batch's device inside a training step (contrastive
stage-1 objectives): one spatial augmentation per clip, and temporal windows."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def augment_clips(video: torch.Tensor, crop_scale_min: float = 0.8, flip: bool = True, color_jitter: float = 0.2,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Spatial augmentation drawn once per clip and applied identically to all its frames [X]:
    random resized crop (area scale in [crop_scale_min, 1], square), horizontal flip, brightness
    (additive) and contrast (multiplicative) jitter. ``video`` (B,T,C,H,W)."""
    b, t, c, h, w = video.shape
    dev = video.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return (torch.rand(b, generator=generator) * (hi - lo) + lo).to(dev)

    side = uniform(crop_scale_min, 1.0).sqrt()
    shift_x, shift_y = (uniform(-1, 1) * (1 - side) for _ in range(2))
    sign = torch.where(uniform(0, 1) < 0.5, -1.0, 1.0) if flip else torch.ones(b, device=dev)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = side * sign, shift_x
    theta[:, 1, 1], theta[:, 1, 2] = side, shift_y
    grid = F.affine_grid(theta.repeat_interleave(t, 0), [b * t, c, h, w], align_corners=False)
    out = F.grid_sample(video.flatten(0, 1), grid, align_corners=False, padding_mode="reflection").view_as(video)
    if color_jitter > 0:
        contrast = uniform(1 - color_jitter, 1 + color_jitter).view(b, 1, 1, 1, 1)
        brightness = uniform(-color_jitter, color_jitter).view(b, 1, 1, 1, 1)
        mean = out.mean(dim=(1, 2, 3, 4), keepdim=True)
        out = (out - mean) * contrast + mean + brightness
    return out


def temporal_view(video: torch.Tensor, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random window of ``length`` consecutive frames per clip (temporal jitter) [X]."""
    b, t = video.shape[:2]
    if t < length:
        raise ValueError(f"clips of {t} frames are shorter than pretrain.clip_length={length}")
    starts = torch.randint(0, t - length + 1, (b,), generator=generator)
    idx = (starts[:, None] + torch.arange(length)[None]).to(video.device)
    return video[torch.arange(b, device=video.device)[:, None], idx]
