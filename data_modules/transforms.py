"""Face alignment, augmentation and normalisation applied to a whole clip at once.

A clip is decoded into one (T,H,W,3) uint8 array; the albumentations pipeline runs once on it through
the ``images`` target (identical parameters for every frame), and normalisation is one vectorised
tensor operation. Landmarks follow every geometric step so they stay in output pixel coordinates.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import albumentations as A
import cv2
import numpy as np
import torch

from affectlab.schema import ConfigError

NORMALIZATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "minus_one_one": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "zero_one": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}

# 1-based horizontal-flip permutation of BP4D's 49-point layout (datasets.md §1.2, JAA-Net reflect_49)
REFLECT_49 = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 11, 12, 13, 14, 19, 18, 17, 16, 15, 29, 28, 27, 26, 31, 30, 23,
              22, 21, 20, 25, 24, 38, 37, 36, 35, 34, 33, 32, 43, 42, 41, 40, 39, 46, 45, 44, 49, 48, 47]


def reflect_68() -> list[int]:
    """0-based flip permutation of the iBUG 68-point layout."""
    p = list(range(68))
    pairs = [(i, 16 - i) for i in range(17)] + [(17 + i, 26 - i) for i in range(5)]
    pairs += [(31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]
    for a, b in pairs:
        p[a], p[b] = b, a
    return p


def reflect_66() -> list[int]:
    """0-based flip permutation of DISFA's 66 points (iBUG 68 without inner-mouth corners 61, 65)."""
    keep = [i for i in range(68) if i not in (60, 64)]
    pos = {old: new for new, old in enumerate(keep)}
    full = reflect_68()
    return [pos[full[old]] for old in keep]


EYES_49 = (list(range(19, 25)), list(range(25, 31)))  # 0-based: points 20–25 and 26–31
EYES_66 = (list(range(36, 42)), list(range(42, 48)))
EYES_68 = EYES_66


def eye_centres(landmarks: np.ndarray, eyes: tuple[Sequence[int], Sequence[int]]) -> np.ndarray:
    """The two eye centres ordered left-to-right in the image, shape (2,2)."""
    c = np.stack([landmarks[list(eyes[0])].mean(0), landmarks[list(eyes[1])].mean(0)])
    return c[np.argsort(c[:, 0])]


def similarity_from_eyes(eyes: np.ndarray, size: int, eye_y: float, eye_distance: float) -> np.ndarray:
    """2×3 similarity matrix putting the eye centres at ``((0.5 ∓ d/2)·S, eye_y·S)``.

    Solved in complex form: z' = a·z + b maps the two eye centres exactly (rotation + scale + shift).
    """
    src = eyes[:, 0] + 1j * eyes[:, 1]
    dst = np.array([(0.5 - eye_distance / 2) * size, (0.5 + eye_distance / 2) * size]) + 1j * eye_y * size
    if abs(src[1] - src[0]) < 1e-6:
        raise ValueError("degenerate landmarks: both eye centres coincide")
    a = (dst[1] - dst[0]) / (src[1] - src[0])
    b = dst[0] - a * src[0]
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], dtype=np.float64)


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def centre_square(frames: np.ndarray) -> np.ndarray:
    """The central square of side min(H, W) of every frame of a (T,H,W,3) clip."""
    h, w = frames.shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return frames[:, top:top + side, left:left + side]


def build_albumentations(steps: Any) -> Optional[A.Compose]:
    """``[{name: RandomResizedCrop, size: [112, 112]}, ...]`` → an ``A.Compose`` (None when empty)."""
    if not steps:
        return None
    ops = []
    for step in steps:
        step = dict(step)
        name = step.pop("name", None)
        if name is None or not hasattr(A, name):
            raise ConfigError(f"unknown albumentations transform {name!r} in {step}")
        ops.append(getattr(A, name)(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in step.items()}))
    return A.Compose(ops, keypoint_params=A.KeypointParams(format="xy", remove_invisible=False))


class FaceTransform:
    """Align (optional) → albumentations → flip → resize → tensor + normalise, for a whole clip.

    Args:
        size: output side in pixels.
        normalize: ``imagenet`` | ``minus_one_one`` | ``zero_one`` | ``none``.
        eyes: landmark index groups of the two eyes (enables alignment when landmarks are given).
        flip_permutation: 0-based re-ordering of landmarks after a horizontal flip.
    """

    def __init__(self, size: int, normalize: str, train: bool, *, align: bool = True, eye_y: float = 0.4,
                 eye_distance: float = 0.32, hflip: bool = False, steps: Any = None,
                 eyes: Optional[tuple] = None, flip_permutation: Optional[Sequence[int]] = None) -> None:
        if normalize != "none" and normalize not in NORMALIZATIONS:
            raise ConfigError(f"normalize must be one of {sorted(NORMALIZATIONS)} or none, got {normalize!r}")
        self.size, self.train = size, train
        self.align, self.eye_y, self.eye_distance = align, eye_y, eye_distance
        self.hflip = hflip and train
        self.pipeline = build_albumentations(steps)
        self.eyes, self.flip_permutation = eyes, flip_permutation
        mean, std = NORMALIZATIONS.get(normalize, ((0.0,) * 3, (1.0,) * 3))
        self.mean = torch.tensor(mean).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(std).view(1, 3, 1, 1) * 255.0

    def decode_reduction(self, height: int, width: int) -> int:
        """Largest JPEG decode reduction (1, 2, 4) that still leaves ≥ the output size.

        Only without alignment or albumentations steps, whose geometry expects full-size frames.
        """
        if self.pipeline is not None or (self.align and self.eyes is not None):
            return 1
        for factor in (4, 2):
            if min(height, width) // factor >= self.size:
                return factor
        return 1

    def alignment_reduction(self, landmarks: Optional[np.ndarray]) -> int:
        """JPEG decode reduction (1, 2, 4, 8) for a frame that alignment will shrink anyway.

        The similarity's scale is known from the landmarks before decoding; decoding at 1/r with
        r ≤ 1/scale is faster and avoids the aliasing of warping a large frame straight down to a
        small output (a 1040×1392 BP4D frame becomes ~112 px wide).
        """
        if landmarks is None or not self.align or self.eyes is None:
            return 1
        eyes = eye_centres(landmarks, self.eyes)
        span = float(np.linalg.norm(eyes[1] - eyes[0]))
        scale = self.eye_distance * self.size / max(span, 1e-6)
        for r in (8, 4, 2):
            if scale * r <= 1.0:
                return r
        return 1

    def __call__(self, frames: np.ndarray, landmarks: Optional[list[Optional[np.ndarray]]] = None,
                 rng: Optional[np.random.Generator] = None) -> tuple[torch.Tensor, Optional[np.ndarray]]:
        """``frames`` (T,H,W,3) uint8 → (T,3,S,S) float tensor and the first frame's landmarks (P,2)."""
        rng = rng or np.random.default_rng()
        lms = list(landmarks) if landmarks is not None else [None] * len(frames)
        if self.align and self.eyes is not None:
            if any(lm is not None for lm in lms):
                frames, lms = self._align(frames, lms)
            else:  # a landmark dataset whose release has no landmarks: detector-free centre crop
                frames = centre_square(frames)
        lm0 = lms[0]
        if self.pipeline is not None:
            self.pipeline.set_random_seed(int(rng.integers(0, 2**31)))  # all randomness flows from rng
            if len(frames) == 1:
                out = self.pipeline(image=frames[0], keypoints=lm0 if lm0 is not None else np.zeros((0, 2)))
                frames = out["image"][None]
                lm0 = np.asarray(out["keypoints"], dtype=np.float32) if lm0 is not None else None
            else:
                frames = self.pipeline(images=frames)["images"]
        if self.hflip and rng.random() < 0.5:
            frames = frames[:, :, ::-1]
            if lm0 is not None:
                lm0 = lm0.copy()
                lm0[:, 0] = frames.shape[2] - 1 - lm0[:, 0]
                if self.flip_permutation is not None:
                    lm0 = lm0[list(self.flip_permutation)]
        h, w = frames.shape[1:3]
        if (h, w) != (self.size, self.size):
            frames = np.stack([cv2.resize(f, (self.size, self.size), interpolation=cv2.INTER_AREA
                                          if h > self.size else cv2.INTER_LINEAR) for f in frames])
            if lm0 is not None:
                lm0 = lm0 * np.array([self.size / w, self.size / h], dtype=np.float32)
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        video = (video - self.mean) / self.std
        return video, (None if lm0 is None else np.asarray(lm0, dtype=np.float32))

    def _align(self, frames: np.ndarray, lms: list) -> tuple[np.ndarray, list]:
        # frames without landmarks reuse the nearest landmarked frame's transform (clip stays steady)
        known = [i for i, lm in enumerate(lms) if lm is not None]
        out, out_lms = [], []
        for i, frame in enumerate(frames):
            j = i if lms[i] is not None else min(known, key=lambda k: abs(k - i))
            m = similarity_from_eyes(eye_centres(lms[j], self.eyes), self.size, self.eye_y, self.eye_distance)
            out.append(cv2.warpAffine(frame, m, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128)))
            out_lms.append(apply_affine(lms[j], m).astype(np.float32) if lms[i] is not None else None)
        return np.stack(out), out_lms
