"""Clip loading speed: affectlab's clip loader vs a reference PIL-per-frame loader, same run, same files.

Both loaders produce 16×3×112×112 ImageNet-normalised training clips (16 segments × 1 frame) from
224×224 JPEG frame folders in the DFEW layout, doing the same work: decode, resize 224→112, one
horizontal-flip decision per clip, normalise.

- reference (what published DFER loaders do): ``PIL.Image.open(...).convert("RGB")`` per frame, then
  per-frame resize / flip / ``to_tensor`` / ``normalize``, then ``torch.stack``;
- affectlab: ``cv2.imread`` per frame (at 1/2 size straight from the JPEG when the output is ≤ half) into
  one (T,H,W,3) array, one flip of the whole array and one vectorised normalisation of the clip tensor
  (``data_modules.transforms.FaceTransform``);
- affectlab with ``clip_cache=true``: the clip's frames at 112×112 in one memory-mapped uint8 .npy
  (written during a first pass that is not timed).

Prints frames/s per worker (num_workers=0: the loading process itself) and the throughput of a
DataLoader with N workers. Usage:

    PYTHONPATH=src:. python benchmarks/loader_speed.py [--clips 48] [--frames 60] [--workers 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from data_modules.datasets import ClipDataset
from data_modules.sampling import clip_indices
from data_modules.transforms import FaceTransform, NORMALIZATIONS


def write_clips(root: Path, clips: int, frames: int) -> list[list[str]]:
    rng = np.random.default_rng(0)
    out = []
    yy, xx = np.mgrid[0:224, 0:224]
    for c in range(clips):
        d = root / f"{c + 1:05d}"
        d.mkdir(parents=True)
        base = (128 + 60 * np.sin(xx / (9 + c)) * np.cos(yy / 13)).astype(np.float32)
        paths = []
        for k in range(frames):
            img = np.clip(base[..., None] + rng.normal(0, 12, (224, 224, 3)) + k, 0, 255).astype(np.uint8)
            p = d / f"{c + 1:05d}_{k + 1:05d}.jpg"
            cv2.imwrite(str(p), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            paths.append(str(p))
        out.append(paths)
    return out


class ReferenceClips(Dataset):
    """PIL open + per-frame transforms, as the published DFER loaders do."""

    def __init__(self, clips: list[list[str]], size: int = 112, segments: int = 16) -> None:
        from torchvision.transforms import functional as F

        self.F, self.clips, self.size, self.segments = F, clips, size, segments
        self.mean, self.std = NORMALIZATIONS["imagenet"]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> torch.Tensor:
        paths = self.clips[i]
        idx = clip_indices(len(paths), self.segments, 1, True, np.random.default_rng())
        flip = np.random.random() < 0.5
        frames = []
        for k in idx:
            img = Image.open(paths[k]).convert("RGB").resize((self.size, self.size), Image.BILINEAR)
            if flip:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            frames.append(self.F.normalize(self.F.to_tensor(img), self.mean, self.std))
        return torch.stack(frames)


def ours(clips: list[list[str]], cache_dir: Path | None = None) -> Dataset:
    import pandas as pd

    items = pd.DataFrame({"clip": [str(i) for i in range(len(clips))], "frames": clips})
    tf = FaceTransform(112, "imagenet", train=True, hflip=True, align=False)
    return ClipDataset(items, tf, 16, 1, dataset="bench", max_bad_fraction=0.0, train=True, cache_dir=cache_dir)


def frames_per_second(ds: Dataset, workers: int, repeats: int) -> float:
    loader = DataLoader(ds, batch_size=8, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0, collate_fn=lambda b: b)
    next(iter(loader))  # warm-up (worker start, page cache)
    n, t0 = 0, time.perf_counter()
    for _ in range(repeats):
        for batch in loader:
            n += sum((x["video"] if isinstance(x, dict) else x).shape[0] for x in batch)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=48)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        clips = write_clips(Path(tmp), args.clips, args.frames)
        rows = []
        cache = Path(tmp) / "cache"
        frames_per_second(ours(clips, cache), 0, 1)  # writes the per-clip uint8 arrays (first epoch)
        for w in (0, args.workers):
            ref = frames_per_second(ReferenceClips(clips), w, args.repeats)
            new = frames_per_second(ours(clips), w, args.repeats)
            cached = frames_per_second(ours(clips, cache), w, args.repeats)
            rows.append((w, ref, new, cached))
    print(f"clips {args.clips} × {args.frames} JPEG frames 224×224 → 16×3×112×112, torch threads 1")
    print(f"{'workers':>8} {'reference fr/s':>15} {'affectlab fr/s':>15} {'speed-up':>9} "
          f"{'clip_cache fr/s':>16} {'speed-up':>9}")
    for w, ref, new, cached in rows:
        label = "0 (main)" if w == 0 else str(w)
        print(f"{label:>8} {ref:>15.0f} {new:>15.0f} {new / ref:>8.2f}× {cached:>16.0f} {cached / ref:>8.2f}×")


if __name__ == "__main__":
    main()
