"""Clip transforms with the official IAL loader's filters (``data.filters: pil``).

The official code (muse1998/IAL, ``video_transform.py`` / ``dataset_DFEW.py``) resizes with PIL's
anti-aliased bilinear filter, at train time after a random-sized crop and at test time straight to the
output size, then converts to float in [0, 1] and applies brightness jitter and a nearest-neighbour
rotation (fill 0) to the float clip, without quantising back to uint8. ``FaceTransform`` (the ``fast``
filters) does the same steps with cv2/albumentations on uint8 and may decode JPEGs at reduced size;
this class trades that speed for the official filters. Every random draw comes from the ``rng``
argument, and one draw serves all frames of a clip.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from affectlab.schema import ConfigError
from data_modules.transforms import NORMALIZATIONS

SUPPORTED_STEPS = ("RandomResizedCrop", "ColorJitter", "Rotate")


def sample_crop_box(width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float],
                    rng: np.random.Generator) -> Optional[tuple[int, int, int, int]]:
    """``(x1, y1, w, h)`` of a random-sized crop by the official rule, or None for its fallback.

    Up to 10 attempts: area fraction uniform in ``scale``, aspect ratio uniform (not log-uniform) in
    ``ratio``, width and height rounded, swapped with probability 0.5, kept if they fit.
    """
    for _ in range(10):
        area = width * height * rng.uniform(*scale)
        aspect = rng.uniform(*ratio)
        w, h = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        if rng.random() < 0.5:
            w, h = h, w
        if w <= width and h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    return None


def _parse_steps(steps: Any) -> dict[str, dict]:
    """Albumentations-style step list → the parameters this backend understands, checked."""
    parsed: dict[str, dict] = {}
    for step in steps or []:
        step = dict(step)
        name = step.pop("name", None)
        if name not in SUPPORTED_STEPS:
            raise ConfigError(f"data.filters=pil supports only the train_transforms steps {', '.join(SUPPORTED_STEPS)} "
                             f"(the official IAL augmentation); got {name!r}. Use data.filters=fast for other steps.")
        if float(step.pop("p", 1.0)) != 1.0:
            raise ConfigError(f"data.filters=pil: step {name} must have p: 1.0 (the official code always applies it)")
        if name == "ColorJitter":
            other = {k: v for k, v in step.items() if k != "brightness" and v not in (0, 0.0, None)}
            if other:
                raise ConfigError(f"data.filters=pil: ColorJitter supports brightness only, got {other}")
        if name == "Rotate" and step.get("border_mode", 0) != 0:
            raise ConfigError("data.filters=pil: Rotate fills with 0 (border_mode: 0), as the official code does")
        parsed[name] = step
    return parsed


def _check_crop_size(steps: dict[str, dict], size: int) -> None:
    crop = steps.get("RandomResizedCrop", {})
    if "size" in crop and list(crop["size"]) != [size, size]:
        raise ConfigError(f"data.filters=pil: RandomResizedCrop size {list(crop['size'])} must equal "
                         f"[image_size, image_size] = {[size, size]}")


class PILClipTransform:
    """Random-sized crop → flip → float → brightness → rotation (train) or resize (eval), PIL filters.

    Args:
        size: output side in pixels (the crop is resized to ``size × size``).
        normalize: ``imagenet`` | ``minus_one_one`` | ``zero_one`` | ``none``, applied last.
        train: apply the random steps and the flip.
        hflip: horizontal flip with probability 0.5 (training only).
        steps: ``train_transforms`` / ``eval_transforms`` entries (RandomResizedCrop, ColorJitter
            brightness, Rotate); the eval list must be empty.
    """

    def __init__(self, size: int, normalize: str, train: bool, *, hflip: bool = False, steps: Any = None) -> None:
        if normalize != "none" and normalize not in NORMALIZATIONS:
            raise ConfigError(f"data.normalize must be one of {sorted(NORMALIZATIONS)} or none, got {normalize!r}")
        if steps and not train:
            raise ConfigError("data.filters=pil: eval_transforms must be empty (test clips are only resized)")
        self.size, self.train, self.hflip = size, train, hflip and train
        self.steps = _parse_steps(steps)
        _check_crop_size(self.steps, size)
        mean, std = NORMALIZATIONS.get(normalize, ((0.0,) * 3, (1.0,) * 3))
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    def decode_reduction(self, height: int, width: int) -> int:
        """Always 1: frames are decoded at full size, as the official loader does."""
        return 1

    def alignment_reduction(self, landmarks: Optional[np.ndarray]) -> int:
        return 1

    def __call__(self, frames: np.ndarray, landmarks: Optional[list] = None,
                 rng: Optional[np.random.Generator] = None) -> tuple[torch.Tensor, None]:
        """``frames`` (T,H,W,3) uint8 → (T,3,S,S) float tensor (landmarks are not supported)."""
        if landmarks is not None and any(lm is not None for lm in landmarks):
            raise ConfigError("data.filters=pil does not support landmarks; use data.filters=fast")
        rng = rng or np.random.default_rng()
        images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
        images = self._crop_resize(images, rng) if self.train and "RandomResizedCrop" in self.steps \
            else [im.resize((self.size, self.size), Image.BILINEAR) for im in images]
        video = torch.from_numpy(np.stack([np.asarray(im) for im in images])).permute(0, 3, 1, 2)
        if self.hflip and rng.random() < 0.5:
            video = video.flip(-1)
        video = video.float().div(255)
        if self.train:
            video = self._float_jitter(video, rng)
        return (video - self.mean) / self.std, None

    def _crop_resize(self, images: list[Image.Image], rng: np.random.Generator) -> list[Image.Image]:
        step = self.steps["RandomResizedCrop"]
        width, height = images[0].size
        box = sample_crop_box(width, height, tuple(step.get("scale", (0.08, 1.0))),
                              tuple(step.get("ratio", (3 / 4, 4 / 3))), rng)
        if box is not None:
            x1, y1, w, h = box
            return [im.crop((x1, y1, x1 + w, y1 + h)).resize((self.size, self.size), Image.BILINEAR)
                    for im in images]
        # fallback: shorter side to size, then a random size × size crop
        if width <= height:
            w, h = self.size, int(self.size * height / width)
        else:
            w, h = int(self.size * width / height), self.size
        x1, y1 = int(rng.integers(0, w - self.size + 1)), int(rng.integers(0, h - self.size + 1))
        return [im.resize((w, h), Image.BILINEAR).crop((x1, y1, x1 + self.size, y1 + self.size)) for im in images]

    def _float_jitter(self, video: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if "ColorJitter" in self.steps:
            b = float(self.steps["ColorJitter"].get("brightness", 0.0))
            if b > 0:
                video = TF.adjust_brightness(video, float(rng.uniform(max(0.0, 1 - b), 1 + b)))
        if "Rotate" in self.steps:
            limit = self.steps["Rotate"].get("limit", 90)
            low, high = (-limit, limit) if np.isscalar(limit) else limit
            video = TF.rotate(video, float(rng.uniform(low, high)), TF.InterpolationMode.NEAREST, fill=[0.0])
        return video
