"""``videos``: any folder of face videos or frame folders (VoxCeleb-like) as unlabeled pretraining data.

Every folder that directly holds images is one track (frames in numeric order); every video file is
one track, decoded once into ``<cache>/frames/<relative path>/NNNNN.jpg``. The subject of a track is
the first component of its path below the root (``id10001/clip/…`` → ``id10001``), so the validation
split never shares an identity with training.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from affectlab.schema import ConfigError
from data_modules.base import DATAMODULES, DataConfig
from data_modules.face import FaceDataModule, held_out_groups, skipped_frame
from data_modules.frames import IMAGE_SUFFIXES, VIDEO_SUFFIXES, DataFormatError, extract_frames, list_frames

LAYOUT = """  <root>/<identity>/.../<track>/*.jpg|*.png      (a folder of frames per track), and/or
  <root>/<identity>/.../<video>.mp4|.avi|...      (decoded once into the cache)"""


@dataclass
class VideosConfig(DataConfig):
    """``data`` keys of the unlabelled talking-face corpus (``videos``: frame folders per identity and track)."""

    name: str = "videos"
    task: str = "pairs"
    #: tracks with fewer frames are skipped (and listed in the summary)
    min_frames: int = 2
    #: identities held out for validation and for test, as fractions of all identities (official TCAE
    #: 0.15 / 0.10, i.e. 75/15/10); the test identities are never read by pretraining
    val_fraction: float = 0.05
    test_fraction: float = 0.0
    normalize: str = "zero_one"
    clip_segments: int = 8
    clip_frames_per_segment: int = 2


@DATAMODULES.register("videos")
class VideosDataModule(FaceDataModule):
    """Unlabeled face tracks for self-supervised pretraining (TCAE pairs, contrastive U×V clips)."""

    Config = VideosConfig
    release = "videos"
    layout = LAYOUT
    tasks = ("pairs", "clips")
    unit = "clip"
    parse_keys = ("min_frames",)
    protocol = "videos/unlabeled"

    def _scan(self) -> tuple[list[Path], list[Path]]:
        folders, videos = [], []
        for dirpath in sorted(p for p in [self.root, *self.root.rglob("*")] if p.is_dir()):
            if ".affectlab_cache" in dirpath.parts:
                continue
            files = list(dirpath.iterdir())
            if any(f.suffix.lower() in IMAGE_SUFFIXES for f in files):
                folders.append(dirpath)
            videos += sorted(f for f in files if f.suffix.lower() in VIDEO_SUFFIXES)
        return folders, videos

    def _source_paths(self) -> list[Path]:
        folders, videos = self._scan()
        return folders + videos

    def _parse(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        folders, videos = self._scan()
        rows, skipped = [], []
        tracks = [(f, list_frames(f)) for f in folders]
        for v in videos:
            rel = v.relative_to(self.root)
            out = self.cache_dir() / "frames" / rel.with_suffix("")
            n = extract_frames(v, out, f"extracting {rel}")
            tracks.append((v, list_frames(out) if n else []))
        for src, files in tracks:
            rel = src.relative_to(self.root)
            if len(files) < self.cfg.min_frames:
                skipped.append({"item": str(rel), "reason": f"{len(files)} frames < min_frames={self.cfg.min_frames}",
                                "file": str(src)})
                continue
            subject = rel.parts[0] if len(rel.parts) > 1 else rel.stem
            rows.append({"clip": str(rel), "subject": subject, "group": subject, "n_frames": len(files),
                         "frames": [str(f) for f in files]})
        if not rows:
            raise DataFormatError(f"videos: no usable track under {self.root}\nExpected layout:\n{LAYOUT}")
        return pd.DataFrame(rows), skipped_frame(skipped)

    def _protocol(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Hold out ``test_fraction`` of all identities (seeded by split_seed) as the test split."""
        if not 0.0 <= self.cfg.test_fraction < 1.0 or not 0.0 <= self.cfg.val_fraction < 1.0:
            raise ConfigError(f"videos: val_fraction and test_fraction must lie in [0, 1), got "
                             f"{self.cfg.val_fraction} and {self.cfg.test_fraction}")
        test = held_out_groups(df, self.cfg.test_fraction, df["group"].nunique(), self.cfg.split_seed + 1)
        return df[~df["group"].isin(test)], df[df["group"].isin(test)]

    def _carve_val(self, train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Hold out ``val_fraction`` of *all* identities (train and test) for validation; with
        ``select_on_test`` the test identities validate and no training identity is held out."""
        if self.cfg.select_on_test:
            return train, test
        total = train["group"].nunique() + test["group"].nunique()
        val = held_out_groups(train, self.cfg.val_fraction, total, self.cfg.split_seed)
        return train[~train["group"].isin(val)], train[train["group"].isin(val)]
