"""DFEW: 7-class dynamic facial expression recognition over the official 5 folds (datasets.md §3)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from data_modules.base import DATAMODULES, DataConfig
from data_modules.face import FaceDataModule, check_fold, skipped_frame
from data_modules.frames import DataFormatError, alphabetical_order_differs, first_existing, list_frames, require_dir

#: DFEW order; CSV labels 1…7 map to 0…6
DFER_CLASSES = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]

LAYOUT = """  <root>/Clip/clip_224x224/<5-digit id>/*.jpg       (or clip_224x224_16f/<id>/1.jpg ... 16.jpg)
  <root>/EmoLabel_DataSplit/train(single-labeled)/set_1.csv ... set_5.csv   (header video_name,label; 1-7)
  <root>/EmoLabel_DataSplit/test(single-labeled)/set_1.csv ... set_5.csv
  (the underscore spelling '(single_labeled)' and one extra nesting level of the clip folder are accepted)"""


def read_split_csv(path: Path, classes: list[str]) -> list[tuple[int, int, int]]:
    """``video_name,label`` rows → (clip id, class 0…6, line number); fails naming file and line."""
    rows = []
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["video_name", "label"]:
            raise DataFormatError(f"{path}:1: bad header; expected 'video_name,label', got {header!r}")
        for lineno, rec in enumerate(reader, start=2):
            if not rec or not "".join(rec).strip():
                continue
            try:
                clip, label = int(rec[0]), int(rec[1])
            except (ValueError, IndexError):
                raise DataFormatError(f"{path}:{lineno}: expected '<clip id>,<label 1-{len(classes)}>', got {rec!r}") from None
            if not 1 <= label <= len(classes):
                raise DataFormatError(f"{path}:{lineno}: label {label} out of range 1-{len(classes)}")
            rows.append((clip, label - 1, lineno))
    return rows


@dataclass
class DFEWConfig(DataConfig):
    """``data`` keys of DFEW (datasets.md §3): release root, fold, clip sampling, validation split."""

    name: str = "dfew"
    task: str = "expression"
    #: clip_224x224 (all detected frames) | clip_224x224_16f (16 interpolated frames)
    frames_dir: str = "clip_224x224"
    clip_segments: int = 16
    clip_frames_per_segment: int = 1
    #: drop clips shorter than U×V (some papers' loaders do); the count is reported in the summary
    drop_short: bool = False
    val_fraction: float = 0.1


@DATAMODULES.register("dfew")
class DFEWDataModule(FaceDataModule):
    """DFEW expression clips (U×V frames, default 16×1), fold k = ``set_k`` (Jiang et al., ACM MM 2020)."""

    Config = DFEWConfig
    release = "DFEW"
    layout = LAYOUT
    tasks = ("expression", "clips", "pairs")
    unit = "clip"
    parse_keys = ("frames_dir", "fold", "drop_short", "short_clip", "clip_segments", "clip_frames_per_segment")
    class_names = list(DFER_CLASSES)
    protocol = "dfew/5fold"
    #: test clips of set_k (datasets.md §3.3)
    expected_test = {1: 2341, 2: 2341, 3: 2340, 4: 2339, 5: 2336}

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        check_fold("dfew", cfg.fold, 5)

    def _dirs(self) -> tuple[Path, Path]:
        root = self.root
        clip_root = require_dir(root / "Clip", "dfew", root, LAYOUT)
        frames = require_dir(clip_root / self.cfg.frames_dir, "dfew", root, LAYOUT)
        if (frames / self.cfg.frames_dir).is_dir():  # archive extracted with one extra level
            frames = frames / self.cfg.frames_dir
        split_root = require_dir(root / "EmoLabel_DataSplit", "dfew", root, LAYOUT)
        return frames, split_root

    def _split_files(self) -> dict[str, Path]:
        _, split_root = self._dirs()
        out = {}
        for role in ("train", "test"):
            d = first_existing(split_root, (f"{role}(single-labeled)", f"{role}(single_labeled)"))
            if d is None:
                raise DataFormatError(f"dfew: missing {split_root}/{role}(single-labeled)\nExpected layout:\n{LAYOUT}")
            p = d / f"set_{self.cfg.fold}.csv"
            if not p.is_file():
                raise DataFormatError(f"dfew: missing split file {p}\nExpected layout:\n{LAYOUT}")
            out[role] = p
        return out

    def _source_paths(self) -> list[Path]:
        frames, _ = self._dirs()
        return list(self._split_files().values()) + [frames]

    def _clip_folder(self, frames: Path, clip: int) -> Optional[Path]:
        for name in (f"{clip:05d}", str(clip)):
            if (frames / name).is_dir():
                return frames / name
        return None

    def _parse(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        frames_root, _ = self._dirs()
        need = self.cfg.clip_segments * self.cfg.clip_frames_per_segment
        rows, skipped, unpadded = [], [], []
        listed_at: dict[str, list[str]] = {}
        for role, path in self._split_files().items():
            for clip, label, lineno in read_split_csv(path, self.class_names):
                folder = self._clip_folder(frames_root, clip)
                cid = f"{clip:05d}"
                listed_at.setdefault(cid, []).append(f"{path}:{lineno}")
                files = list_frames(folder) if folder is not None else []
                if alphabetical_order_differs(files):
                    unpadded.append(str(folder))
                if not files:
                    skipped.append({"item": cid, "reason": "clip folder missing or empty", "file": f"{path}:{lineno}"})
                    continue
                if len(files) < need and (self.cfg.drop_short or self.cfg.short_clip == "drop"):
                    skipped.append({"item": cid, "reason": f"short clip dropped ({len(files)} < {need} frames)",
                                    "file": str(folder)})
                    continue
                rows.append({"clip": cid, "subject": cid, "group": cid, "role": role, "label": label,
                             "class_name": self.class_names[label], "n_frames": len(files),
                             "short": len(files) < need, "frames": [str(f) for f in files]})
        repeated = {cid: places for cid, places in listed_at.items() if len(places) > 1}
        if repeated:
            shown = "; ".join(f"clip {cid} at {' and '.join(places)}" for cid, places in sorted(repeated.items())[:10])
            raise DataFormatError(f"dfew: {len(repeated)} clip(s) listed more than once in the set_{self.cfg.fold} "
                                  f"split files (each clip belongs to one row of train or test): {shown}")
        df = pd.DataFrame(rows)
        n_short = int(df["short"].sum()) if len(df) else 0
        if n_short:
            skipped.append({"item": f"{n_short} clips", "reason": f"shorter than {need} frames, padded by rule "
                            f"'{self.cfg.short_clip}'", "file": ""})
        skipped += self._frame_order_note(unpadded)
        return df, skipped_frame(skipped)

    def _protocol(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        return df[df["role"] == "train"], df[df["role"] == "test"]
