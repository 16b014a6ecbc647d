"""torch Datasets behind every task; each returns one dict of the sample contract (``base.py``)."""
from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from data_modules.frames import BadImageCounter, read_rgb
from data_modules.sampling import clip_indices, distinct_pair, pair_indices, sparse_label_mask
from data_modules.transforms import FaceTransform


def _seed(*parts: object) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


class _Base(Dataset):
    def __init__(self, dataset: str, transform: FaceTransform, max_bad_fraction: float, n_items: int,
                 train: bool, seed: int = 0) -> None:
        self.dataset, self.transform, self.train, self.seed = dataset, transform, train, seed
        self.bad = BadImageCounter(dataset, n_items, max_bad_fraction)

    def _rng(self, index: int) -> np.random.Generator:
        """Training: a generator drawn from torch's RNG, which DataLoader seeds per worker (and
        ``seeded_train_loader`` per epoch and worker), so workers never repeat each other's jitter and a
        resumed run replays it; evaluation: a fixed generator per item."""
        if self.train:
            return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        return np.random.default_rng(_seed(self.seed, index))

    def _read_for_alignment(self, paths: Sequence[str], lms: Optional[list]) -> tuple[Optional[np.ndarray], Optional[list]]:
        """Decode at the reduced size alignment allows; landmarks rescaled to the decoded pixels."""
        first = next((lm for lm in lms or [] if lm is not None), None)
        r = (getattr(self, "on_the_fly", None) or self.transform).alignment_reduction(first)
        frames = self._read_many(paths, r)
        if r > 1 and lms is not None:
            lms = [None if lm is None else (lm + 0.5) / r - 0.5 for lm in lms]
        return frames, lms

    def _read_many(self, paths: Sequence[str], reduce: int = 1) -> Optional[np.ndarray]:
        """Decode frames; an undecodable frame is counted and replaced by its nearest good neighbour."""
        imgs = [read_rgb(p, reduce) for p in paths]
        good = [i for i, im in enumerate(imgs) if im is not None]
        for i, im in enumerate(imgs):
            if im is None:
                self.bad.record(paths[i])
        if not good:
            return None
        shape = imgs[good[0]].shape
        same = [i for i in good if imgs[i].shape == shape]  # a stray frame of another size is replaced too
        out = []
        for i, im in enumerate(imgs):
            if im is None or im.shape != shape:
                im = imgs[min(same, key=lambda k: abs(k - i))]
            out.append(im)
        return np.stack(out)


class FrameDataset(_Base):
    """One frame per item: ``image``, ``au``/``au_mask`` or ``intensity``/``intensity_mask``, ``landmarks``."""

    def __init__(self, df: pd.DataFrame, transform: FaceTransform, task: str, au_columns: Sequence[str],
                 dataset: str, max_bad_fraction: float, train: bool, occurrence_threshold: Optional[int] = None,
                 seed: int = 0, prepared=None, on_the_fly: Optional[FaceTransform] = None) -> None:
        super().__init__(dataset, transform, max_bad_fraction, len(df), train, seed)
        self.df = df.reset_index(drop=True)
        #: ``data_modules.prepared.PreparedFrames``: aligned crops read instead of decoding and aligning
        #: (``transform`` then skips alignment; ``on_the_fly`` is the full transform for rows it lacks)
        self.prepared, self.on_the_fly = prepared, on_the_fly
        self.paths = self.df["path"].tolist()
        codes = self.df[list(au_columns)].to_numpy(np.int64) if au_columns else np.zeros((len(df), 0), np.int64)
        self.mask = codes != 9
        if task == "au_occurrence":
            # BP4D codes are 0/1 already; DISFA intensities become 1 iff ≥ threshold
            pos = codes >= occurrence_threshold if occurrence_threshold is not None else codes == 1
            self.values = np.where(self.mask, pos, 0).astype(np.float32)
        else:
            self.values = np.where(self.mask, codes, 0).astype(np.float32)
        self.key = "au" if task == "au_occurrence" else "intensity"
        self.landmarks = self.df["landmarks"].tolist() if "landmarks" in self.df else None
        # plain lists: a pandas row lookup per item costs more than reading a prepared crop
        self.meta = {c: [_py(v) for v in self.df[c]] for c in ("subject", "sequence", "frame") if c in self.df}
        self.row_ids = self.df["row_id"].tolist() if "row_id" in self.df else None

    def __len__(self) -> int:
        return len(self.df)

    def _decode_and_transform(self, index: int) -> tuple[int, torch.Tensor, Optional[np.ndarray]]:
        """Decode (at the reduction alignment allows) and transform; an undecodable frame is counted and
        the next item taken."""
        for attempt in range(len(self)):
            i = (index + attempt) % len(self)
            lm = [self.landmarks[i]] if self.landmarks is not None else None
            frames, lm = self._read_for_alignment([self.paths[i]], lm)
            if frames is not None:
                break
        transform = self.on_the_fly or self.transform
        image, lm_out = transform(frames, lm, self._rng(i))
        return i, image, lm_out

    def __getitem__(self, index: int) -> dict:
        found = self.prepared.get(self.row_ids[index]) if self.prepared is not None else None
        if found is not None:
            i, (frame, lm0) = index, found
            image, lm_out = self.transform(frame[None], None if lm0 is None else [lm0], self._rng(i))
        else:
            i, image, lm_out = self._decode_and_transform(index)
        sample = {
            "image": image[0],
            self.key: torch.from_numpy(self.values[i]),
            f"{self.key}_mask": torch.from_numpy(self.mask[i]),
            "meta": {"dataset": self.dataset, "index": i, **{c: v[i] for c, v in self.meta.items()}},
        }
        if lm_out is not None:
            sample["landmarks"] = torch.from_numpy(lm_out)
        return sample


class ClipDataset(_Base):
    """U×V frames per item as ``video`` (T,C,H,W); ``label`` when the items carry one.

    ``items`` rows need ``frames`` (list of paths); optional ``label``, ``landmarks`` (list per frame).
    """

    def __init__(self, items: pd.DataFrame, transform: FaceTransform, segments: int, per_segment: int,
                 dataset: str, max_bad_fraction: float, train: bool, short_clip: str = "stretch",
                 sampling: str = "balanced", seed: int = 0, meta_cols: Sequence[str] = ("clip",),
                 cache_dir: Optional[Path] = None) -> None:
        super().__init__(dataset, transform, max_bad_fraction, len(items), train, seed)
        self.items = items.reset_index(drop=True)
        self.cache_dir = cache_dir
        self.segments, self.per_segment, self.short_clip = segments, per_segment, short_clip
        self.sampling = sampling
        self.meta_cols = [c for c in meta_cols if c in self.items]
        self._reduce: Optional[int] = None  # JPEG decode reduction, decided on the first clip

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        row = self.items.iloc[index]
        paths = row["frames"]
        rng = self._rng(index)
        idx = clip_indices(len(paths), self.segments, self.per_segment, self.train, rng, self.short_clip,
                           self.sampling)
        lms = [row["landmarks"][k] for k in idx] if "landmarks" in row and row["landmarks"] is not None else None
        if self.cache_dir is not None and lms is None:
            frames = self._cached_clip(paths)[idx]
        elif lms is not None:
            frames, lms = self._read_for_alignment([paths[k] for k in idx], lms)
        else:
            if self._reduce is None:
                probe = read_rgb(paths[idx[0]])
                self._reduce = 1 if probe is None else self.transform.decode_reduction(*probe.shape[:2])
            frames = self._read_many([paths[k] for k in idx], self._reduce)
        if frames is None:
            raise RuntimeError(f"{self.dataset}: no frame of clip {row.get('clip', index)} could be decoded")
        video, _ = self.transform(frames, lms, rng)
        sample = {"video": video, "meta": {"dataset": self.dataset, "index": index,
                                           "frames": torch.as_tensor(idx),
                                           **{c: _py(row[c]) for c in self.meta_cols}}}
        if "label" in row and not pd.isna(row["label"]):
            sample["label"] = int(row["label"])
        return sample


    def _cached_clip(self, paths: Sequence[str]) -> np.ndarray:
        """All frames of a clip at the output size as one uint8 array, decoded once and memory-mapped."""
        size = self.transform.size
        key = hashlib.sha1("\n".join(paths).encode()).hexdigest()[:20]
        path = self.cache_dir / f"{size}" / f"{key}.npy"
        if path.is_file():
            return np.load(path, mmap_mode="r")
        probe = read_rgb(paths[0])
        reduce = 1 if probe is None else self.transform.decode_reduction(*probe.shape[:2])
        frames = self._read_many(paths, reduce)
        if frames is None:
            raise RuntimeError(f"{self.dataset}: no frame of clip {paths[0]} could be decoded")
        if frames.shape[1:3] != (size, size):
            frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, frames)
        os.replace(tmp, path)
        return frames


class PairDataset(_Base):
    """Two frames of one track (TCAE): ``source`` and ``target`` (C,H,W), positions and gap in ``meta``.

    ``unit="track"`` (ours): item ``i`` is a pair of track ``i mod #tracks``. ``unit="identity"`` (the
    official TCAE epoch): item ``i`` is identity ``i mod #identities``, and each draw picks a random
    video of it (the folder holding its tracks), a random track of that video, then the pair. The
    frames are ``frames="gap"`` apart by a gap uniform in [gap_min, gap_max] (ours), or ``"any"`` two
    distinct frames among every ``stride``-th (official). ``per_track`` items are drawn per unit per
    pass (evaluation items stay seeded per item index, so the repeats differ). With
    ``independent_jitter`` the augmentation (crop/flip) is drawn separately for each frame.
    """

    def __init__(self, tracks: pd.DataFrame, transform: FaceTransform, gap_min: int, gap_max: int,
                 independent_jitter: bool, dataset: str, max_bad_fraction: float, train: bool,
                 seed: int = 0, per_track: int = 1, unit: str = "track", frames: str = "gap",
                 stride: int = 1) -> None:
        self.tracks = tracks.reset_index(drop=True)
        self.units = self._units(self.tracks, unit)
        super().__init__(dataset, transform, max_bad_fraction, len(self.units) * per_track, train, seed)
        self.gap_min, self.gap_max, self.independent = gap_min, gap_max, independent_jitter
        self.per_track, self.frames, self.stride = per_track, frames, stride

    @staticmethod
    def _units(tracks: pd.DataFrame, unit: str) -> list[list[list[int]]]:
        """Per unit, its videos, each a list of track rows (a track unit is one video of one track)."""
        if unit == "track":
            return [[[i]] for i in range(len(tracks))]
        units: dict[str, dict[str, list[int]]] = {}
        for i, row in tracks.iterrows():
            clip = Path(str(row["clip"]))
            video = str(clip.parent) if len(clip.parts) >= 3 else str(clip)  # <identity>/<video>/<track>
            units.setdefault(str(row["subject"]), {}).setdefault(video, []).append(int(i))
        return [list(videos[v] for v in sorted(videos)) for _, videos in sorted(units.items())]

    def __len__(self) -> int:
        return len(self.units) * self.per_track

    def __getitem__(self, index: int) -> dict:
        rng = self._rng(index)
        videos = self.units[index % len(self.units)]
        video = videos[int(rng.integers(len(videos)))] if len(videos) > 1 else videos[0]
        row = self.tracks.iloc[video[int(rng.integers(len(video)))] if len(video) > 1 else video[0]]
        n = len(row["frames"])
        if self.frames == "any":
            s, t = distinct_pair(n, self.stride, rng)
        else:
            s, t = pair_indices(n, self.gap_min, self.gap_max, rng)
        frames = self._read_many([row["frames"][s], row["frames"][t]])
        if frames is None:
            raise RuntimeError(f"{self.dataset}: no frame of track {row['clip']} could be decoded")
        lms = row["landmarks"] if "landmarks" in row and row["landmarks"] is not None else None
        if self.independent:
            src, _ = self.transform(frames[:1], [lms[s]] if lms else None, rng)
            tgt, _ = self.transform(frames[1:], [lms[t]] if lms else None, rng)
            pair = torch.cat([src, tgt])
        else:
            pair, _ = self.transform(frames, [lms[s], lms[t]] if lms else None, rng)
        return {"source": pair[0], "target": pair[1],
                "meta": {"dataset": self.dataset, "clip": str(row["clip"]), "subject": str(row["subject"]),
                         "frames": torch.tensor([s, t]), "gap": abs(t - s)}}


class SequenceDataset(_Base):
    """Windows of T consecutive labelled frames for semi-supervised intensity regression.

    ``intensity`` (T,K); ``intensity_mask`` (T,K) is True only on the sparse, seeded subset of frames
    whose labels are kept (``label_fraction`` of each sequence, fixed once per sequence) for training,
    and on every coded frame for evaluation. ``frame_mask`` (T,) marks frames that exist (a sequence
    shorter than T is padded by repeating its last frame, with ``frame_mask`` False there).
    """

    def __init__(self, windows: list[dict], transform: FaceTransform, length: int, dataset: str,
                 max_bad_fraction: float, train: bool, seed: int = 0) -> None:
        super().__init__(dataset, transform, max_bad_fraction, len(windows), train, seed)
        self.windows, self.length = windows, length

    @staticmethod
    def make_windows(df: pd.DataFrame, au_columns: Sequence[str], length: int, sparse: bool,
                     fraction: float, seed: int) -> list[dict]:
        windows = []
        for seq, g in df.groupby("sequence", sort=True):
            g = g.sort_values("frame")
            codes = g[list(au_columns)].to_numpy(np.int64)
            coded = codes != 9
            if sparse:
                keep = sparse_label_mask(len(g), fraction, np.random.default_rng(_seed(seed, seq)))
                coded = coded & keep[:, None]
            starts = list(range(0, max(len(g) - length, 0) + 1, length))
            if len(g) > length and starts[-1] + length < len(g):
                starts.append(len(g) - length)  # last window flush with the end: no frame left out
            for s in starts:
                sl = slice(s, s + length)
                windows.append({"sequence": seq, "subject": g["subject"].iloc[0], "paths": g["path"].tolist()[sl],
                                "frames": g["frame"].to_numpy()[sl], "codes": codes[sl], "mask": coded[sl],
                                "landmarks": g["landmarks"].tolist()[sl] if "landmarks" in g else None})
        return windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict:
        w = self.windows[index]
        n, T = len(w["paths"]), self.length
        take = np.minimum(np.arange(T), n - 1)
        frames = self._read_many([w["paths"][k] for k in take])
        lms = [w["landmarks"][k] for k in take] if w["landmarks"] is not None else None
        video, _ = self.transform(frames, lms, self._rng(index))
        valid = np.arange(T) < n
        codes = np.where(w["mask"][take], w["codes"][take], 0).astype(np.float32)
        return {"video": video, "intensity": torch.from_numpy(codes),
                "intensity_mask": torch.from_numpy(w["mask"][take] & valid[:, None]),
                "frame_mask": torch.from_numpy(valid),
                "meta": {"dataset": self.dataset, "sequence": str(w["sequence"]), "subject": str(w["subject"]),
                         "frames": torch.as_tensor(w["frames"][take])}}


def _py(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value
