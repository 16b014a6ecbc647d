"""Training-pipeline throughput at the releases' real resolution against what one GPU step consumes.

For each (paper preset, dataset) pair the datamodule is built from the preset's own ``data`` section on
the ``realres`` synthetic stand-in (BP4D 1040×1392 JPEG, DISFA 1024×768 AVI at 20 fps, DFEW/FERV39k
224×224 face crops; ``affectlab synth --profile realres``), and the training split is read item by item
in this process (= one DataLoader worker): decode + landmark alignment + augmentation + normalisation.
In the same run a plain PIL reference does equivalent work on the same files (``Image.open`` →
similarity warp from the same landmarks, or a resize for face crops → flip → ``to_tensor`` →
normalise). For the frame presets of landmark datasets the one-time ``affectlab data prepare`` is then
run (timed) and the same items are read again from the prepared crops. DISFA's one-time frame
extraction is timed separately on one real-size AVI.

GPU side: frames one training step consumes per second = (frames per step) / (step time), with the
step time = 3 × forward FLOPs per frame × frames per step / an assumed sustained 50 TFLOP/s (the same
[est] as the IAL arithmetic in docs/datasets.md). Forward FLOPs are counted here with
``torch.utils.flop_counter`` on the preset's backbone at its input size (IAL: the spec's 5.62 GMACs
per 16-frame clip). Per machine = per worker × 15 workers (16 cores, one left to the trainer), assuming
linear scaling — measured here per worker only.

    PYTHONPATH=src:. python benchmarks/realres_pipeline.py [--items 48] [--synth-dir DIR]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from affectlab.config import compose
from data_modules import create_datamodule
from data_modules.transforms import NORMALIZATIONS, eye_centres, similarity_from_eyes

ASSUMED_TFLOPS = 50.0  # [est] sustained mixed-precision throughput of one H100/H200-class GPU
WORKERS_PER_MACHINE = 15
#: (preset, dataset, backbone for the FLOP count or a fixed GMAC figure per frame)
CASES = [
    ("region_relation_paper", "bp4d", "swin_tiny_patch4_window7_224"),
    ("region_relation_paper", "disfa", "swin_tiny_patch4_window7_224"),
    ("contrastive_intensity_paper", "bp4d", "resnet18"),
    ("ial_paper", "dfew", 5.62 / 16),
    ("ial_ferv39k_paper", "ferv39k", 5.62 / 16),
]


def forward_gmacs(backbone: str, size: int) -> float:
    """Forward multiply-accumulates (G) of one frame through a timm backbone at ``size``×``size``."""
    import timm
    from torch.utils.flop_counter import FlopCounterMode

    model = timm.create_model(backbone, pretrained=False, num_classes=0, img_size=size) \
        if backbone.startswith("swin") else timm.create_model(backbone, pretrained=False, num_classes=0)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 2e9


class PILReference:
    """Equivalent work with PIL: open, similarity warp from the same landmarks (or resize), flip, tensor."""

    def __init__(self, size: int, normalize: str, eyes, eye_y: float, eye_distance: float) -> None:
        from torchvision.transforms import functional as TF

        self.TF, self.size, self.eyes = TF, size, eyes
        self.eye_y, self.eye_distance = eye_y, eye_distance
        self.mean, self.std = NORMALIZATIONS[normalize]
        self.rng = np.random.default_rng(0)

    def frame(self, path: str, landmarks) -> torch.Tensor:
        img = Image.open(path).convert("RGB")
        if landmarks is not None and self.eyes is not None:
            m = similarity_from_eyes(eye_centres(landmarks, self.eyes), self.size, self.eye_y, self.eye_distance)
            inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2].ravel()  # PIL maps output → input pixels
            img = img.transform((self.size, self.size), Image.AFFINE, tuple(inv), Image.BILINEAR,
                                fillcolor=(128, 128, 128))
        else:
            img = img.resize((self.size, self.size), Image.BILINEAR)
        if self.rng.random() < 0.5:
            img = self.TF.hflip(img)
        return self.TF.normalize(self.TF.to_tensor(img), self.mean, self.std)


def time_items(fn, n: int) -> float:
    fn(0)  # warm-up (first decode, lazy state)
    start = time.perf_counter()
    for i in range(1, n + 1):
        fn(i)
    return time.perf_counter() - start


def measure(preset: str, dataset: str, root: Path, items: int, cache: Path) -> dict:
    cfg = compose([f"EXP={preset}", f"DATA={dataset}", f"data.root={root / dataset_dir(dataset)}",
                   "data.num_workers=0", "data.val_fraction=0", "data.limit_items=null"])
    keys = dict(cfg.data, cache_dir=str(cache / f"{preset}-{dataset}"))  # fresh: preparation is timed
    if keys.get("task") in ("sequences", "pairs"):
        keys["task"] = "au_intensity"  # the same per-frame decode + align + augment, one frame per item
    dm = create_datamodule(keys)
    ds = dm.dataset("train")
    df = dm.manifest("train")
    frames_per_item = 1 if "path" in df else int(keys["clip_segments"]) * int(keys["clip_frames_per_segment"])
    n = min(items, len(ds) - 1)
    t_ours = time_items(lambda i: ds[i % len(ds)], n)
    prepared = prep_rate = None
    if dm.eyes is not None and keys.get("task") in ("au_occurrence", "au_intensity"):
        from data_modules.prepared import prepare

        start = time.perf_counter()
        prepare(dm, progress=False)
        prep_rate = len(dm.full_manifest()) / (time.perf_counter() - start)
        dm_prepared = create_datamodule(keys)
        ds_prepared = dm_prepared.dataset("train")
        assert ds_prepared.prepared is not None
        prepared = n / time_items(lambda i: ds_prepared[i % len(ds_prepared)], n)
    c = dm.cfg
    ref = PILReference(c.image_size, c.normalize, dm.eyes if c.align else None, c.align_eye_y, c.align_eye_distance)
    if "path" in df:
        lms = df["landmarks"].tolist() if "landmarks" in df else [None] * len(df)
        t_ref = time_items(lambda i: ref.frame(df["path"].iloc[i % len(df)], lms[i % len(df)]), n)
    else:
        def clip(i):
            paths = df["frames"].iloc[i % len(df)]
            idx = np.linspace(0, len(paths) - 1, frames_per_item).round().astype(int)
            return torch.stack([ref.frame(paths[k], None) for k in idx])
        t_ref = time_items(clip, n)
    return {"image_size": int(c.image_size), "batch": int(c.batch_size), "frames_per_item": frames_per_item,
            "ours": n * frames_per_item / t_ours, "ref": n * frames_per_item / t_ref, "prepared": prepared,
            "prepare_rate": prep_rate}


def dataset_dir(name: str) -> str:
    return {"bp4d": "BP4D", "disfa": "DISFA", "dfew": "DFEW", "ferv39k": "FERV39k"}[name]


def extraction_rate(root: Path) -> tuple[float, int, tuple]:
    import cv2

    from data_modules.frames import extract_frames

    video = sorted((root / "DISFA" / "Videos_LeftCamera").glob("*.avi"))[0]
    cap = cv2.VideoCapture(str(video))
    shape = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), cap.get(cv2.CAP_PROP_FPS))
    cap.release()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        n = extract_frames(video, Path(tmp) / "v", "extract")
        return n / (time.perf_counter() - start), n, shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=48, help="training items timed per case")
    parser.add_argument("--synth-dir", default=None, help="AFFECTLAB_SYNTH_DIR holding the realres copy")
    args = parser.parse_args()
    if args.synth_dir:
        os.environ["AFFECTLAB_SYNTH_DIR"] = args.synth_dir
    from affectlab.synth import ensure_synthetic

    root = ensure_synthetic("realres", 0, datasets=["bp4d", "disfa", "dfew", "ferv39k"], progress=True)
    torch.set_num_threads(1)
    rate, n, (w, h, fps) = extraction_rate(root)
    print(f"\nDISFA extraction: {w}x{h} AVI at {fps:.0f} fps, {n} frames: {rate:.0f} frames/s per process → "
          f"{4845 * 27 * 2 / rate / 60:.0f} min for 27 subjects × 4,845 frames × 2 cameras in one process\n")
    head = (f"{'preset':<28} {'data':<8} {'size':>4} {'PIL fr/s':>9} {'ours fr/s':>9} {'x15 fr/s':>9} "
            f"{'GPU fr/s':>9} {'workers':>7}  {'prepared fr/s':>13} {'workers':>7}  verdict")
    print(head)
    print("-" * len(head))
    gmacs_cache: dict = {}
    cache = tempfile.mkdtemp(prefix="realres-cache-")
    for preset, dataset, backbone in CASES:
        r = measure(preset, dataset, root, args.items, Path(cache))
        size = r["image_size"]
        if isinstance(backbone, str):
            gmacs = gmacs_cache.setdefault((backbone, size), forward_gmacs(backbone, size))
        else:
            gmacs = backbone * (size / 112) ** 2
        gpu = ASSUMED_TFLOPS * 1e12 / (3 * 2 * gmacs * 1e9)  # frames/s one GPU's steps consume
        workers = gpu / r["ours"]
        best = r["prepared"] or r["ours"]
        verdict = "fed" if gpu / best <= WORKERS_PER_MACHINE else "GPU starves"
        prep = f"{r['prepared']:>13.0f} {gpu / r['prepared']:>7.1f}" if r["prepared"] else f"{'-':>13} {'-':>7}"
        print(f"{preset:<28} {dataset:<8} {size:>4} {r['ref']:>9.0f} {r['ours']:>9.0f} "
              f"{r['ours'] * WORKERS_PER_MACHINE:>9.0f} {gpu:>9.0f} {workers:>7.1f}  {prep}  {verdict} "
              f"({gmacs:.2f} GMAC/frame fwd"
              + (f"; prepare {r['prepare_rate']:.0f} fr/s once)" if r["prepare_rate"] else ")"), flush=True)
    import shutil

    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
