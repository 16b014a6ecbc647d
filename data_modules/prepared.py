"""``affectlab data prepare``: aligned face crops at the method's input size, written once, read after.

At real resolution decoding and aligning a BP4D/DISFA frame costs far more than the GPU step that
consumes it (``benchmarks/realres_pipeline.py``, docs/datasets.md). Preparing stores every manifest
row's aligned crop (the same warp the loader does, uint8 ``image_size``²) and its landmarks in crop
pixels in two ``.npy`` files; frame datasets then memory-map them and only augment and normalise.

- Folder ``<cache>/prepared/<key>/`` where the key hashes the dataset, the parse keys, the source
  files' fingerprint (size + mtime of label/landmark files and frame folders) and the alignment settings
  (``image_size``, ``align``, ``align_eye_y``, ``align_eye_distance``): a changed source or setting
  gives another key, so a stale preparation is never read.
- Resumable: rows are written in chunks and ``progress.json`` records how many are done; a killed
  run continues from there. ``complete.json`` marks the end. One writer at a time (``flock``).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch

from data_modules.datasets import _Base
from data_modules.transforms import FaceTransform

ALIGN_KEYS = ("image_size", "align", "align_eye_y", "align_eye_distance")


def _atomic_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def prepared_dir(dm: Any) -> Path:
    """Where ``dm``'s preparation for its current sources and alignment settings lives."""
    from data_modules.face import file_fingerprint

    c = dm.cfg
    key = {"dataset": c.name, "parse": {k: c[k] for k in dm.parse_keys}, "align": {k: c[k] for k in ALIGN_KEYS},
           "sources": file_fingerprint(dm._source_paths())}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return dm.cache_dir() / "prepared" / f"{c.name}-{c.image_size}-{digest}"


class PreparedFrames:
    """Memory-mapped aligned crops and landmarks of a finished preparation, looked up by ``row_id``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.frames = np.load(folder / "frames.npy", mmap_mode="r")
        lm = folder / "landmarks.npy"
        self.landmarks = np.load(lm, mmap_mode="r") if lm.is_file() else None
        #: rows whose frame could not be decoded while preparing: read (and counted) from the file instead
        self.undecodable = set(json.loads((folder / "complete.json").read_text()).get("undecodable", []))

    def get(self, row_id: int) -> Optional[tuple[np.ndarray, Optional[np.ndarray]]]:
        """(aligned uint8 crop (S,S,3), landmarks in its pixels or None); None for an undecodable row."""
        if row_id in self.undecodable:
            return None
        lm = None if self.landmarks is None else np.array(self.landmarks[row_id])
        return np.array(self.frames[row_id]), lm


def find_prepared(dm: Any) -> Optional[PreparedFrames]:
    """The finished preparation matching ``dm``'s sources and settings, or None."""
    folder = prepared_dir(dm)
    return PreparedFrames(folder) if (folder / "complete.json").is_file() else None


def prepare(dm: Any, progress: bool = True, chunk: int = 256) -> Path:
    """Write (or finish) ``dm``'s preparation; returns its folder. Safe to rerun after a kill."""
    df = dm.full_manifest()
    folder = prepared_dir(dm)
    if (folder / "complete.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (folder / "complete.json").is_file():
                _write(dm, df, folder, progress, chunk)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder


def _write(dm: Any, df: pd.DataFrame, folder: Path, progress: bool, chunk: int) -> None:
    from numpy.lib.format import open_memmap
    from tqdm import tqdm

    c = dm.cfg
    s, n = int(c.image_size), len(df)
    # the loader's own evaluation path without normalisation: decode at the allowed reduction, warp
    transform = FaceTransform(s, "none", False, align=c.align, eye_y=c.align_eye_y,
                              eye_distance=c.align_eye_distance, eyes=dm.eyes)
    reader = _Base(c.name, transform, 1.0, n, train=False)
    lms = df["landmarks"].tolist() if "landmarks" in df else None
    n_points = len(next(x for x in lms if x is not None)) if lms else 0
    state = folder / "progress.json"
    saved = json.loads(state.read_text()) if state.is_file() else {"done": 0, "undecodable": []}
    done, undecodable = saved["done"], list(saved["undecodable"])
    mode = "r+" if done else "w+"
    frames = open_memmap(folder / "frames.npy", mode=mode, dtype=np.uint8, shape=(n, s, s, 3))
    points = (open_memmap(folder / "landmarks.npy", mode=mode, dtype=np.float32, shape=(n, n_points, 2))
              if n_points else None)
    paths = df["path"].tolist()
    with tqdm(total=n, initial=done, desc=f"prepare {c.name} {s}px", unit="frame", disable=not progress) as bar:
        for start in range(done, n, chunk):
            stop = min(start + chunk, n)
            for i in range(start, stop):
                image, lm = reader._read_for_alignment([paths[i]], [lms[i]] if lms else None)
                if image is None:
                    undecodable.append(i)
                    continue
                video, lm_out = transform(image, lm)
                # normalize="none" scales to [0, 1]; ×255 and rounding recover the warped uint8 pixels exactly
                frames[i] = (video[0] * 255).permute(1, 2, 0).round().to(torch.uint8).numpy()
                if points is not None:
                    points[i] = lm_out
            frames.flush()
            if points is not None:
                points.flush()
            _atomic_json(state, {"done": stop, "undecodable": undecodable})
            bar.update(stop - start)
    _atomic_json(folder / "complete.json", {"rows": n, "image_size": s, "undecodable": undecodable})
