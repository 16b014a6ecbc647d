"""DISFA: AU occurrence (8 AUs, present iff intensity ≥ 2) and intensity (12 AUs) from the AVIs.

Frames are decoded once per camera into ``<cache>/frames/<Camera>/SNxxx/NNNNN.jpg`` (0-based decode
order; resumable, one process at a time, see :func:`data_modules.frames.extract_frames`) and reused. Label line t (frame t, 1-based) ↔ decoded frame t−1. As in ME-GraphAU, the
number of labelled frames of a subject is the line count of its label files, so SN010's 4,844
lines use 4,844 of its video frames; extra video frames are reported, missing ones skipped.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import pandas as pd

from affectlab.schema import ConfigError
from data_modules.base import DATAMODULES, DataConfig
from data_modules.face import FaceDataModule, assign_parts, check_fold, fallback_landmarks, skipped_frame
from data_modules.frames import (DataFormatError, check_codes, extract_frames, first_existing, parse_int_rows,
                                 require_dir)
from data_modules.transforms import EYES_66, reflect_66

DISFA_AUS = [1, 2, 4, 6, 9, 12, 25, 26]
DISFA_INTENSITY_AUS = [1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26]
PARTS = {
    1: "SN001 SN002 SN009 SN010 SN016 SN026 SN027 SN030 SN032".split(),
    2: "SN006 SN011 SN012 SN013 SN018 SN021 SN024 SN028 SN031".split(),
    3: "SN003 SN004 SN005 SN007 SN008 SN017 SN023 SN025 SN029".split(),
}
FOLD_TEST_PART = {1: 3, 2: 2, 3: 1}
VIDEO_DIRS = {"left": ("Videos_LeftCamera", "Video_LeftCamera"), "right": ("Video_RightCamera", "Videos_RightCamera")}

LAYOUT = """  <root>/Videos_LeftCamera/LeftVideoSN001_comp.avi     (camera=left)
  <root>/Video_RightCamera/RightVideoSN001_comp.avi    (camera=right; 'Videos_RightCamera' accepted)
  <root>/ActionUnit_Labels/SN001/SN001_au1.txt ... SN001_au26.txt   ('frame,intensity' lines, 1-based, 0-5)
  <root>/Landmark_Points/SN001/tmp_frame_lm/SN001_0000_lm.mat       (optional: 'pts' 66x2, 0-based index)"""


LANDMARK_NAME = re.compile(r"^(?:SN\d{3}_|l0)(\d{4})_lm\.mat$")


def landmark_files(folder: Path) -> dict[int, Path]:
    """``SNxxx_NNNN_lm.mat`` / ``l0NNNN_lm.mat`` files of a ``tmp_frame_lm`` folder by their number."""
    out = {}
    for p in folder.iterdir():
        m = LANDMARK_NAME.match(p.name)
        if m:
            out[int(m.group(1))] = p
    return out


def landmark_index_base(folder: Path, numbers: list[int], n_frames: int, setting: Optional[int] = None) -> int:
    """Whether landmark file N belongs to frame N (0-based) or frame N+1 … counted from 1.

    Two third-party loaders read them 0-based (frame − 1), but this is single-source (datasets.md
    §0.1), so it is decided from the files: a number 0 exists only when counting from 0, a number
    equal to the frame count only when counting from 1. Neither present → refuse (a guess would
    misplace every crop); ``setting`` (0 or 1) forces the base.
    """
    if setting is not None:
        if setting not in (0, 1):
            raise ValueError(f"landmark_index_base must be 0, 1 or None (auto), got {setting!r}")
        return int(setting)
    if not numbers or min(numbers) == 0:
        return 0
    if max(numbers) >= n_frames:
        return 1
    raise DataFormatError(
        f"{folder}: landmark files are numbered {min(numbers)}..{max(numbers)} for {n_frames} labelled frames; "
        f"expected a file numbered 0000 (0-based) or {n_frames:04d} (1-based) to tell which frame each belongs "
        f"to. Set data.landmark_index_base=0 or 1 to say.")


def read_landmarks(path: Path, one_based: bool) -> np.ndarray:
    """The 66×2 ``pts`` of one DISFA landmark MAT file, in 0-based pixel coordinates when ``one_based``."""
    from scipy.io import loadmat

    try:
        pts = np.asarray(loadmat(str(path))["pts"], dtype=np.float32)
    except Exception as err:
        raise DataFormatError(f"{path}: expected a MAT file with variable 'pts' (66x2): {err}") from None
    if pts.shape != (66, 2):
        raise DataFormatError(f"{path}: 'pts' has shape {pts.shape}, expected (66, 2)")
    return pts - (1.0 if one_based else 0.0)


@dataclass
class DISFAConfig(DataConfig):
    """``data`` keys of DISFA (datasets.md §2): release root, 3-fold protocol, alignment, intensity labels."""

    name: str = "disfa"
    #: left | right camera video
    camera: str = "left"
    aus: list[int] = field(default_factory=lambda: list(DISFA_AUS))
    intensity_aus: list[int] = field(default_factory=lambda: list(DISFA_INTENSITY_AUS))
    #: occurrence = intensity ≥ this (the benchmark protocol uses 2)
    occurrence_threshold: int = 2
    landmarks_one_based: bool = True
    #: number of the landmark file of the first frame: null = decided per subject from the files
    #: (a file 0000 → 0; a file numbered like the frame count → 1), or 0 | 1 to force it
    landmark_index_base: Optional[int] = None
    normalize: str = "minus_one_one"


@DATAMODULES.register("disfa")
class DISFADataModule(FaceDataModule):
    """DISFA (Mavadati et al., 2013) 3-fold subject-exclusive protocol; fold k tests part {1:3,2:2,3:1}[k]."""

    Config = DISFAConfig
    release = "DISFA"
    layout = LAYOUT
    tasks = ("au_occurrence", "au_intensity", "pairs", "clips", "sequences")
    parse_keys = ("camera", "landmarks_one_based", "landmark_index_base")
    protocol = "disfa/3fold"
    #: labelled frames of the test part (ME-GraphAU counts; SN010 has 4,844 label lines)
    expected_test = {1: 43605, 2: 43605, 3: 43604}
    eyes = EYES_66
    flip_permutation = reflect_66()

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        if cfg.camera not in VIDEO_DIRS:
            raise ConfigError(f"disfa: camera must be left or right, got {cfg.camera!r}")
        check_fold("disfa", cfg.fold, 3)
        if cfg.landmark_index_base not in (None, 0, 1):
            raise ConfigError(f"disfa: data.landmark_index_base must be 0, 1 or null (auto), "
                              f"got {cfg.landmark_index_base!r}")
        self.intensity = cfg.task in ("au_intensity", "sequences")
        self.aus = [int(a) for a in (cfg.intensity_aus if self.intensity else cfg.aus)]
        unknown = sorted(set(self.aus) - set(DISFA_INTENSITY_AUS))
        if unknown:
            raise ConfigError(f"disfa: AUs {unknown} are not coded; choose from {DISFA_INTENSITY_AUS}")
        self.au_names = [f"AU{a:02d}" for a in self.aus]
        self.occurrence_threshold = None if self.intensity else int(cfg.occurrence_threshold)
        if self.occurrence_threshold is not None and not 1 <= self.occurrence_threshold <= 5:
            raise ConfigError(f"disfa: data.occurrence_threshold must be an intensity in 1…5 (an AU is present at "
                              f"intensity >= it), got {cfg.occurrence_threshold}")

    def au_columns(self) -> list[str]:
        return [f"int{a:02d}" for a in self.aus]


    def _dirs(self) -> tuple[Path, Path]:
        root = self.root
        video_dir = first_existing(root, VIDEO_DIRS[self.cfg.camera])
        if video_dir is None:
            require_dir(root / VIDEO_DIRS[self.cfg.camera][0], "disfa", root, LAYOUT)
        labels = require_dir(root / "ActionUnit_Labels", "disfa", root, LAYOUT)
        return video_dir, labels

    def _source_paths(self) -> list[Path]:
        videos, labels = self._dirs()
        landmark_dirs = sorted((self.root / "Landmark_Points").glob("SN*/tmp_frame_lm"))
        return sorted(videos.glob("*.avi")) + sorted(labels.glob("SN*/*.txt")) + landmark_dirs

    def _parse(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        video_dir, label_dir = self._dirs()
        rows, skipped = [], []
        frames_root = self.cache_dir() / "frames" / video_dir.name
        videos = {}
        for v in sorted(video_dir.glob("*.avi")):
            m = re.search(r"Video(SN\d{3})", v.name)
            if m is None:
                raise DataFormatError(f"disfa: unexpected video name {v} (expected <Left|Right>VideoSNxxx_comp.avi)")
            videos[m.group(1)] = v
        for subj_dir in sorted(p for p in label_dir.iterdir() if p.is_dir()):
            subject = subj_dir.name
            if subject not in videos:
                skipped.append({"item": subject, "reason": "labels without a video", "file": str(subj_dir)})
                continue
            tables, n_labels = {}, 0
            for au in DISFA_INTENSITY_AUS:
                p = subj_dir / f"{subject}_au{au}.txt"
                if not p.is_file():
                    raise DataFormatError(f"disfa: missing label file {p}\nExpected layout:\n{LAYOUT}")
                t = parse_int_rows(p, 2)
                check_codes(p, t[:, 1:], range(6), first_line=1, what="AU intensity")
                if not np.array_equal(t[:, 0], np.arange(1, len(t) + 1)):
                    bad = int(np.flatnonzero(t[:, 0] != np.arange(1, len(t) + 1))[0])
                    found = int(t[bad, 0])
                    gap = f"frame {bad + 1} is missing" if found > bad + 1 else f"frame {found} is out of order"
                    raise DataFormatError(f"{p}:{bad + 1}: frame {found}; {gap}: expected frames numbered 1, 2, 3, … "
                                          f"one per line (line t labels frame t)")
                if au != DISFA_INTENSITY_AUS[0] and len(t) != n_labels:
                    raise DataFormatError(f"{p}: {len(t)} lines, but {subject}_au1.txt has {n_labels}; expected "
                                          f"every AU file of a subject to label the same frames")
                tables[au] = t[:, 1]
                n_labels = len(t)
            video = videos[subject]
            n_video = extract_frames(video, frames_root / subject, f"extracting {subject}")
            if n_video < n_labels:
                raise DataFormatError(
                    f"{video}: {n_video} frames decoded, but {subj_dir / f'{subject}_au1.txt'} labels {n_labels}; "
                    f"expected at least one video frame per label line (re-copy the video, or delete "
                    f"{frames_root / subject} if an earlier extraction was interrupted)")
            if n_video > n_labels:
                skipped.append({"item": subject, "reason": f"{n_video - n_labels} video frames after the last "
                                f"label line (unlabelled)", "file": str(video)})
            lm_dir = self.root / "Landmark_Points" / subject / "tmp_frame_lm"
            lm_files = landmark_files(lm_dir) if lm_dir.is_dir() else {}
            base = landmark_index_base(lm_dir, sorted(lm_files), n_labels, self.cfg.landmark_index_base)
            for k in range(n_labels):
                row = {"path": str(frames_root / subject / f"{k:05d}.jpg"), "subject": subject,
                       "sequence": subject, "frame": k + 1, "group": subject}
                row.update({f"int{au:02d}": int(tables[au][k]) for au in DISFA_INTENSITY_AUS})
                if lm_dir.is_dir():
                    lm = lm_files.get(k + base)
                    row["landmarks"] = None if lm is None else read_landmarks(lm, self.cfg.landmarks_one_based)
                rows.append(row)
        if not rows:
            raise DataFormatError(f"disfa: no labelled frames found under {label_dir}\nExpected layout:\n{LAYOUT}")
        df = pd.DataFrame(rows)
        if "landmarks" in df:
            df, extra = fallback_landmarks(df)
            skipped += extra
        skipped += assign_parts(df, PARTS)
        return df, skipped_frame(skipped)

    def _protocol(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        test_part = FOLD_TEST_PART[self.cfg.fold]
        return df[(df["part"] > 0) & (df["part"] != test_part)], df[df["part"] == test_part]
