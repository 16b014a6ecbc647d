"""FERV39k: 7-class expression clips over 22 scenes, official train/test split (datasets.md §4)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from data_modules.base import DATAMODULES, DataConfig
from data_modules.dfew import DFER_CLASSES
from data_modules.face import FaceDataModule, skipped_frame
from data_modules.frames import DataFormatError, alphabetical_order_differs, list_frames, require_dir

LAYOUT = """  <root>/2_ClipsforFaceCrop/<Scene>/<Class>/<NNNN>/*.jpg   (one extra nesting level is accepted)
  <root>/4_setups/All_scenes/train_All.csv, test_All.csv       ('<Scene>/<Class>/<NNNN> <Class>' per line, no header)"""


def read_setup(path: Path, classes: list[str]) -> list[tuple[str, int, int]]:
    """Split-file lines → (relative clip path, class index in DFEW order, line number).

    Classes are mapped by name (never by position); an unknown name fails naming file and line.
    """
    index = {c.lower(): i for i, c in enumerate(classes)}
    out = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or parts[0].count("/") != 2:
                raise DataFormatError(f"{path}:{lineno}: expected '<Scene>/<Class>/<id> <Class>', got {line!r}")
            rel, name = parts
            if name.lower() not in index:
                raise DataFormatError(f"{path}:{lineno}: unknown class {name!r}; expected one of {', '.join(classes)}")
            if rel.split("/")[1].lower() != name.lower():
                raise DataFormatError(f"{path}:{lineno}: class folder of {rel!r} disagrees with label {name!r}")
            out.append((rel, index[name.lower()], lineno))
    return out


@dataclass
class FERV39kConfig(DataConfig):
    """``data`` keys of FERV39k (datasets.md §4): release root, official split, clip sampling."""

    name: str = "ferv39k"
    task: str = "expression"
    clip_segments: int = 8
    clip_frames_per_segment: int = 2
    drop_short: bool = False
    val_fraction: float = 0.1


@DATAMODULES.register("ferv39k")
class FERV39kDataModule(FaceDataModule):
    """FERV39k clips (default 8 segments × 2 frames); ``scene`` kept per clip for per-scene metrics."""

    Config = FERV39kConfig
    release = "FERV39k"
    layout = LAYOUT
    tasks = ("expression", "clips", "pairs")
    unit = "clip"
    parse_keys = ("drop_short", "short_clip", "clip_segments", "clip_frames_per_segment")
    class_names = list(DFER_CLASSES)
    protocol = "ferv39k/official"

    def expected_test_items(self) -> Optional[int]:
        """The official test split holds 7,847 clips (datasets.md §4.3), whatever ``fold`` says."""
        return None if self.is_synthetic() else 7847

    def _dirs(self) -> tuple[Path, Path]:
        root = self.root
        # archives extract with an extra level: 2_ClipsforFaceCrop/2_ClipsforFaceCrop or
        # 2_ClipsforFaceCrop-002/2_ClipsforFaceCrop (datasets.md §4.1)
        nested = sorted(root.glob("2_ClipsforFaceCrop-*/2_ClipsforFaceCrop"))
        if (root / "2_ClipsforFaceCrop").is_dir() or not nested:
            crops = require_dir(root / "2_ClipsforFaceCrop", "ferv39k", root, LAYOUT)
        elif len(nested) == 1:
            crops = nested[0]
        else:
            raise DataFormatError(f"ferv39k: {len(nested)} extracted archive folders hold 2_ClipsforFaceCrop "
                                  f"({', '.join(str(n.parent.name) for n in nested)}) under {root}; keep one, or "
                                  f"move it to {root / '2_ClipsforFaceCrop'}")
        if (crops / "2_ClipsforFaceCrop").is_dir():
            crops = crops / "2_ClipsforFaceCrop"
        setups = require_dir(root / "4_setups" / "All_scenes", "ferv39k", root, LAYOUT)
        return crops, setups

    def _source_paths(self) -> list[Path]:
        crops, setups = self._dirs()
        return [setups / "train_All.csv", setups / "test_All.csv", crops]

    def _parse(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        crops, setups = self._dirs()
        need = self.cfg.clip_segments * self.cfg.clip_frames_per_segment
        rows, skipped, unpadded = [], [], []
        for role in ("train", "test"):
            path = setups / f"{role}_All.csv"
            if not path.is_file():
                raise DataFormatError(f"ferv39k: missing split file {path}\nExpected layout:\n{LAYOUT}")
            for rel, label, lineno in read_setup(path, self.class_names):
                folder = crops / rel
                files = list_frames(folder) if folder.is_dir() else []
                if alphabetical_order_differs(files):
                    unpadded.append(str(folder))
                if not files:
                    skipped.append({"item": rel, "reason": "clip folder missing or empty", "file": f"{path}:{lineno}"})
                    continue
                if len(files) < need and (self.cfg.drop_short or self.cfg.short_clip == "drop"):
                    skipped.append({"item": rel, "reason": f"short clip dropped ({len(files)} < {need} frames)",
                                    "file": str(folder)})
                    continue
                scene = rel.split("/")[0]
                rows.append({"clip": rel, "subject": rel, "group": rel, "scene": scene, "role": role,
                             "label": label, "class_name": self.class_names[label], "n_frames": len(files),
                             "short": len(files) < need, "frames": [str(f) for f in files]})
        df = pd.DataFrame(rows)
        n_short = int(df["short"].sum()) if len(df) else 0
        if n_short:
            skipped.append({"item": f"{n_short} clips", "reason": f"shorter than {need} frames, padded by rule "
                            f"'{self.cfg.short_clip}'", "file": ""})
        skipped += self._frame_order_note(unpadded)
        return df, skipped_frame(skipped)

    def _protocol(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        return df[df["role"] == "train"], df[df["role"] == "test"]

    def scenes(self) -> list[str]:
        return sorted(self.full_manifest()["scene"].unique())
