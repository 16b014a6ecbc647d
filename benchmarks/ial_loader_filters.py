"""Loader cost of the official IAL filters (``data.filters=pil``) next to the fast ones, same clips.

Builds the clip dataset of ``EXP=ial_paper`` (16×1 clips by the official segment rule, 112×112, [0, 1],
its augmentation list) twice over the same 224×224 JPEG folders (``loader_speed.write_clips``):
``filters=fast`` (cv2/albumentations on uint8; test frames decoded at 1/2 size) and ``filters=pil``
(full-size decoding, PIL anti-aliased bilinear resize, brightness and nearest rotation on float clips).
Prints CPU milliseconds per clip in the loading process (one thread, no workers) for training and test
items, their ratio, and how far the two filters' test clips are apart. Also checks that cv2 and PIL
decode the JPEGs identically (both paths decode with cv2; the official code with PIL).

    PYTHONPATH=src:. python benchmarks/ial_loader_filters.py [--clips 24] [--frames 40] [--repeats 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from affectlab.config import compose
from data_modules.datasets import ClipDataset
from data_modules.frames import read_rgb
from data_modules.pil_transforms import PILClipTransform
from data_modules.transforms import FaceTransform
from loader_speed import write_clips


def dataset(clips: list[list[str]], filters: str, train: bool) -> ClipDataset:
    d = compose(["EXP=ial_paper"]).data
    steps = d.train_transforms if train else d.eval_transforms
    if filters == "pil":
        tf = PILClipTransform(d.image_size, d.normalize, train, hflip=d.hflip, steps=steps)
    else:
        tf = FaceTransform(d.image_size, d.normalize, train, align=False, hflip=d.hflip, steps=steps)
    items = pd.DataFrame({"clip": [str(i) for i in range(len(clips))], "frames": clips})
    return ClipDataset(items, tf, d.clip_segments, d.clip_frames_per_segment, dataset="bench", max_bad_fraction=0.0,
                       train=train, sampling=d.clip_sampling)


def ms_per_clip(ds: ClipDataset, repeats: int) -> float:
    ds[0]  # warm-up (page cache, decode-size probe)
    start = time.thread_time()
    for _ in range(repeats):
        for i in range(len(ds)):
            ds[i]
    return 1000 * (time.thread_time() - start) / (repeats * len(ds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        clips = write_clips(Path(tmp), args.clips, args.frames)
        decode_diff = max(int(np.abs(read_rgb(p).astype(int) - np.asarray(Image.open(p).convert("RGB"), int)).max())
                          for p in clips[0][:5])
        rows = []
        for train in (True, False):
            fast, pil = dataset(clips, "fast", train), dataset(clips, "pil", train)
            rows.append(("train" if train else "test", ms_per_clip(fast, args.repeats), ms_per_clip(pil, args.repeats)))
        fast, pil = dataset(clips, "fast", False), dataset(clips, "pil", False)
        gap = max(float((fast[i]["video"] - pil[i]["video"]).abs().mean()) * 255 for i in range(len(clips)))
    print(f"EXP=ial_paper clips: {args.clips} folders × {args.frames} JPEG frames 224×224 → 16×3×112×112, "
          f"CPU ms per clip (thread time, 1 thread, no workers), {args.repeats} passes")
    print("| items | fast (cv2) ms/clip | pil (official filters) ms/clip | pil / fast |\n|---|---|---|---|")
    for name, f, p in rows:
        print(f"| {name} | {f:.1f} | {p:.1f} | {p / f:.2f}× |")
    print(f"test clips, fast vs pil filters: largest per-clip mean |diff| {gap:.2f} grey levels (of 255)")
    print(f"JPEG decoding, cv2 vs PIL (5 frames): max |diff| {decode_diff} grey levels")


if __name__ == "__main__":
    main()
