"""The LightningDataModule shared by every dataset: manifest cache, protocol splits, tasks, loaders.

A dataset module subclasses :class:`FaceDataModule` and implements ``_parse`` (release → manifest
rows plus a table of skipped items), ``_protocol`` (manifest → train/test rows for ``cfg.fold``) and
``_source_paths`` (files whose change invalidates the cached manifest).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, ClassVar, Optional

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from affectlab.schema import ConfigError
from data_modules.base import check_fold
from data_modules.datasets import ClipDataset, FrameDataset, PairDataset, SequenceDataset
from data_modules.frames import DataFormatError, UnreadableItem, missing_root_error
from data_modules.pil_transforms import PILClipTransform
from data_modules.sampling import CLIP_SAMPLING_RULES, PAIR_FRAME_RULES, PAIR_UNITS, SHORT_CLIP_RULES
from data_modules.seeded_sampler import seeded_train_loader
from data_modules.transforms import FaceTransform

SPLITS = ("train", "val", "test")
#: image filters: fast (cv2/albumentations on uint8, reduced JPEG decoding) | pil (the official IAL filters)
FILTERS = ("fast", "pil")
#: 2: landmark_source / landmark_indexing columns, no frame dropped for want of landmarks;
#: 3: frame-order note in the skipped rows; 4: BP4D intensity rows that do not match AU_OCC and DISFA subjects
#: outside the parts in the skipped rows
MANIFEST_VERSION = 4


class EvalDistributedSampler(DistributedSampler):
    """Contiguous, unpadded shards: every evaluation item is seen exactly once across ranks.

    (torch's DistributedSampler pads the last shard by repeating items, which double-counts them.)
    Lightning keeps a sampler that already subclasses DistributedSampler.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        n = len(dataset)
        self.indices = list(range(n * rank // num_replicas, n * (rank + 1) // num_replicas))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class _ReadCheck(Dataset):
    """Item i → (i, path of its first undecodable image, or "") for a strict (test) dataset."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[int, str]:
        try:
            self.dataset[index]
        except UnreadableItem as err:
            return index, err.path
        return index, ""


def file_fingerprint(paths: list[Path]) -> str:
    h = hashlib.sha1()
    for p in sorted(map(str, paths)):
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()


class FaceDataModule(L.LightningDataModule):
    """Base of every affectlab datamodule (see ``docs/datasets.md`` for the sample contract)."""

    release: ClassVar[str] = ""  # folder name under the synthetic root, e.g. "BP4D"
    layout: ClassVar[str] = ""  # human-readable expected layout, shown in errors
    tasks: ClassVar[tuple[str, ...]] = ()
    unit: ClassVar[str] = "frame"  # frame | clip: what one manifest row is
    #: manifest-affecting config keys (part of the cache key)
    parse_keys: ClassVar[tuple[str, ...]] = ()
    eyes: ClassVar[Optional[tuple]] = None
    flip_permutation: ClassVar[Optional[list[int]]] = None
    occurrence_threshold: ClassVar[Optional[int]] = None
    au_names: list[str] = []
    class_names: list[str] = []
    #: test items of the real release per fold, as the reference implementation counts them
    #: (datasets.md); None = no published count
    expected_test: ClassVar[Optional[dict[int, int]]] = None

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.task not in self.tasks:
            raise ConfigError(f"{cfg.name}: task {cfg.task!r} not supported; choose one of {', '.join(self.tasks)}")
        if cfg.short_clip not in SHORT_CLIP_RULES:
            raise ConfigError(f"short_clip must be one of {SHORT_CLIP_RULES}, got {cfg.short_clip!r}")
        if cfg.clip_sampling not in CLIP_SAMPLING_RULES:
            raise ConfigError(f"data.clip_sampling must be one of {CLIP_SAMPLING_RULES}, got {cfg.clip_sampling!r}")
        if cfg.filters not in FILTERS:
            raise ConfigError(f"data.filters must be one of {FILTERS}, got {cfg.filters!r}")
        if cfg.filters == "pil" and (cfg.clip_cache or (cfg.align and self.eyes is not None)):
            raise ConfigError(f"{cfg.name}: filters=pil supports neither clip_cache (its frames are resized with "
                             f"cv2) nor landmark alignment (align=true on {cfg.name}); use filters=fast")
        if cfg.unreadable_test_items not in ("fail", "exclude"):
            raise ConfigError(f"data.unreadable_test_items must be fail or exclude, got {cfg.unreadable_test_items!r}")
        for key in ("items_per_track", "pair_frame_stride"):
            if int(cfg[key]) < 1:
                raise ConfigError(f"{cfg.name}: {key} must be >= 1, got {cfg[key]}")
        for key, valid in (("pair_unit", PAIR_UNITS), ("pair_frames", PAIR_FRAME_RULES)):
            if cfg[key] not in valid:
                raise ConfigError(f"{cfg.name}: {key} must be one of {', '.join(valid)}, got {cfg[key]!r}")
        if cfg.pair_frame_stride != 1 and cfg.pair_frames != "any":
            raise ConfigError(f"{cfg.name}: pair_frame_stride={cfg.pair_frame_stride} applies to pair_frames: any, "
                             f"not {cfg.pair_frames!r}")
        self._root: Optional[Path] = None
        self._full: Optional[pd.DataFrame] = None
        self._skipped: Optional[pd.DataFrame] = None
        self._splits: Optional[dict[str, pd.DataFrame]] = None
        self._datasets: dict[str, Dataset] = {}
        #: training frames left out because their sequence has no tracked landmarks (align=true)
        self.train_skipped_untracked = 0
        #: folder where the training/validation datasets list the undecodable images they skipped
        #: (``<split>.txt``); the runner points it into the run directory
        self.unreadable_log_dir: Optional[Path] = None

    # ------------------------------------------------------------------ paths and manifests
    @property
    def root(self) -> Path:
        if self._root is None:
            if self.cfg.root is None:
                try:
                    from affectlab.synth import ensure_synthetic
                except ImportError as err:
                    raise DataFormatError(f"{self.cfg.name}: data.root is unset and the synthetic generator "
                                          f"is unavailable ({err}); set data.root (DATA_ROOT=...)") from None
                synthetic = ensure_synthetic(self.cfg.synthetic_profile, self.cfg.synthetic_seed,
                                             datasets=[self.cfg.name], progress=True)
                self._root = Path(synthetic) / self.release
            else:
                self._root = Path(os.path.expanduser(str(self.cfg.root)))
            if not self._root.is_dir():
                raise missing_root_error(self._root, self.cfg.name, self.layout)
        return self._root

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else len(self.au_names)

    def cache_dir(self) -> Path:
        if self.cfg.cache_dir:
            d = Path(self.cfg.cache_dir)
        else:
            d = self.root / ".affectlab_cache"
            if not os.access(self.root, os.W_OK):
                key = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:12]
                d = Path.home() / ".cache" / "affectlab" / f"{self.release}-{key}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _parse(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        raise NotImplementedError

    def _frame_order_note(self, folders: list[str]) -> list[dict]:
        """Warn once (and keep a summary note) when clip folders' names sort differently as strings.

        The numeric order is kept; code that sorts names alphabetically (e.g. the official IAL
        loader) reads such clips out of order. Only on a real release (the synthetic one pads its names).
        """
        if not folders or self.cfg.root is None:
            return []
        reason = ("frame names sort differently alphabetically than numerically (unpadded numbers); "
                  "the numeric order is used (code sorting names as strings, e.g. the official IAL loader, "
                  "reads these clips out of order)")
        warnings.warn(f"{self.cfg.name}: {len(folders)} clip folders' {reason}; first: {folders[0]}", stacklevel=2)
        return [{"item": f"{len(folders)} clips", "reason": reason, "file": folders[0]}]

    def _protocol(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        raise NotImplementedError

    def _source_paths(self) -> list[Path]:
        raise NotImplementedError

    def full_manifest(self) -> pd.DataFrame:
        """Every parsed row of the release (cached on disk, rebuilt when a source file changes)."""
        if self._full is None:
            keys = {k: self.cfg[k] for k in self.parse_keys}
            tag = hashlib.sha1(repr((MANIFEST_VERSION, type(self).__name__, sorted(keys.items()))).encode())
            path = self.cache_dir() / f"manifest-{self.cfg.name}-{tag.hexdigest()[:12]}.pkl"
            fingerprint = file_fingerprint(self._source_paths())
            if path.is_file():
                try:
                    with open(path, "rb") as fh:
                        cached = pickle.load(fh)
                    if cached["fingerprint"] == fingerprint:
                        self._full, self._skipped = cached["manifest"], cached["skipped"]
                except Exception:  # unreadable cache: rebuild it
                    pass
            if self._full is None:
                self._full, self._skipped = self._parse()
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                with open(tmp, "wb") as fh:
                    pickle.dump({"fingerprint": fingerprint, "manifest": self._full, "skipped": self._skipped}, fh)
                os.replace(tmp, path)
            if "row_id" not in self._full:  # position in the full manifest: the key of prepared crops
                self._full = self._full.assign(row_id=np.arange(len(self._full)))
        return self._full

    def skipped(self) -> pd.DataFrame:
        """Items left out while parsing, one row each: ``item``, ``reason``, ``file``."""
        self.full_manifest()
        return self._skipped

    def manifest(self, split: str) -> pd.DataFrame:
        """Rows of ``split`` (train | val | test) for the configured task and fold."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self._get_splits()[split]

    def _get_splits(self) -> dict[str, pd.DataFrame]:
        if self._splits is None:
            train, test = self._protocol(self.full_manifest())
            if self.cfg.align and "landmark_source" in train:
                # training may skip what the test fold must keep: a crop without the face's own landmarks
                untracked = train["landmark_source"] == "release_median"
                self.train_skipped_untracked = int(untracked.sum())
                train = train[~untracked]
            train, val = self._carve_val(train, test)
            splits = {"train": train, "val": val, "test": test}
            if self.cfg.limit_items:
                splits = {k: v.iloc[: self.cfg.limit_items] for k, v in splits.items()}
            self._splits = {k: v.reset_index(drop=True) for k, v in splits.items()}
        return self._splits

    def _carve_val(self, train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Hold out ``val_fraction`` of the training groups (subjects or clips), seeded by split_seed.

        With ``select_on_test`` the validation split is the test split (the paper practice some
        methods follow) and all training groups are kept.
        """
        if self.cfg.select_on_test:
            return train, test
        val_groups = held_out_groups(train, self.cfg.val_fraction, train["group"].nunique(), self.cfg.split_seed)
        is_val = train["group"].isin(val_groups)
        return train[~is_val], train[is_val]

    # ------------------------------------------------------------------ labels
    def au_columns(self) -> list[str]:
        return []

    def train_pos_rate(self) -> torch.Tensor:
        """Positive rate of each AU on the training split (labelled frames only), shape (K,)."""
        df = self.manifest("train")
        codes = df[self.au_columns()].to_numpy(np.int64)
        mask = codes != 9
        thr = self.occurrence_threshold
        pos = (codes >= thr) if thr is not None else (codes == 1)
        rate = (pos & mask).sum(0) / np.maximum(mask.sum(0), 1)
        return torch.tensor(rate, dtype=torch.float32)

    # ------------------------------------------------------------------ datasets
    def _transform(self, train: bool, prepared: bool = False) -> FaceTransform | PILClipTransform:
        c = self.cfg
        steps = c.train_transforms if train else c.eval_transforms
        if c.filters == "pil":
            return PILClipTransform(c.image_size, c.normalize, train, hflip=c.hflip, steps=steps)
        return FaceTransform(c.image_size, c.normalize, train, align=c.align and not prepared, eye_y=c.align_eye_y,
                             eye_distance=c.align_eye_distance, hflip=c.hflip, steps=steps,
                             eyes=self.eyes, flip_permutation=self.flip_permutation)

    def tracks(self, df: pd.DataFrame) -> pd.DataFrame:
        """Group frame rows into tracks (one per sequence): ``clip``, ``subject``, ``frames``, ``landmarks``."""
        if self.unit == "clip":
            return df
        rows = []
        for seq, g in df.sort_values(["sequence", "frame"]).groupby("sequence", sort=True):
            rows.append({"clip": seq, "subject": g["subject"].iloc[0], "frames": g["path"].tolist(),
                         "landmarks": g["landmarks"].tolist() if "landmarks" in g else None})
        return pd.DataFrame(rows)

    def build_dataset(self, split: str) -> Dataset:
        """The ``split``'s torch Dataset; undecodable test images fail it, others are skipped and logged."""
        dataset = self._build_dataset(split)
        dataset.bad.strict = split == "test"
        if self.unreadable_log_dir is not None:
            dataset.bad.log_path = Path(self.unreadable_log_dir) / f"{split}.txt"
        return dataset

    def log_unreadable_to(self, folder: Path) -> None:
        """List the undecodable images training and validation skip in ``folder/<split>.txt``."""
        self.unreadable_log_dir = Path(folder)
        for split, dataset in self._datasets.items():
            if split != "test" and hasattr(dataset, "bad"):
                dataset.bad.log_path = self.unreadable_log_dir / f"{split}.txt"

    def exclude_unreadable_test_items(self) -> list[str]:
        """``unreadable_test_items=exclude``: decode every test item once and leave out those with an
        undecodable image; returns those images' paths (one per excluded item)."""
        full = self.dataset("test")
        loader = DataLoader(_ReadCheck(full), batch_size=None, num_workers=self.cfg.num_workers)
        bad = {index: path for index, path in loader if path}
        if bad:
            self._datasets["test"] = Subset(full, [i for i in range(len(full)) if i not in bad])
        return [bad[i] for i in sorted(bad)]

    def _build_dataset(self, split: str) -> Dataset:
        c, train = self.cfg, split == "train"
        df, tf, name = self.manifest(split), self._transform(train), c.name
        common = dict(dataset=name, max_bad_fraction=c.max_bad_fraction, train=train, seed=c.split_seed)
        if c.task in ("au_occurrence", "au_intensity"):
            prepared = self.prepared()
            return FrameDataset(df, self._transform(train, prepared=True) if prepared else tf, c.task,
                                self.au_columns(), occurrence_threshold=self.occurrence_threshold,
                                prepared=prepared, on_the_fly=tf if prepared else None, **common)
        if c.task in ("expression", "clips"):
            tracks = self.tracks(df)
            if train and c.items_per_track > 1:
                tracks = tracks.loc[tracks.index.repeat(int(c.items_per_track))]
            return ClipDataset(tracks, tf, c.clip_segments, c.clip_frames_per_segment,
                               short_clip=c.short_clip, sampling=c.clip_sampling,
                               meta_cols=("clip", "subject", "scene"),
                               cache_dir=self.cache_dir() / "clips" if c.clip_cache else None, **common)
        if c.task == "pairs":
            return PairDataset(self.tracks(df), tf, c.pair_gap_min, c.pair_gap_max, c.pair_independent_jitter,
                               per_track=c.items_per_track, unit=c.pair_unit, frames=c.pair_frames,
                               stride=c.pair_frame_stride, **common)
        if c.task == "sequences":
            windows = SequenceDataset.make_windows(df, self.au_columns(), c.sequence_length, sparse=train,
                                                   fraction=c.label_fraction, seed=c.label_mask_seed)
            if train and c.labelled_windows_only:
                windows = [w for w in windows if w["mask"].any()]
            return SequenceDataset(windows, tf, c.sequence_length, **common)
        raise ValueError(f"unknown task {c.task!r}")

    def prepared(self):
        """The finished ``affectlab data prepare`` output for the current sources and alignment settings
        (frame tasks of landmark datasets; None when absent, stale or ``use_prepared`` is off)."""
        if not self.cfg.use_prepared or self.eyes is None:
            return None
        from data_modules.prepared import find_prepared

        return find_prepared(self)

    def prepare_data(self) -> None:
        """Parse (and for DISFA/videos extract frames) once, on the main process only."""
        self.full_manifest()

    def setup(self, stage: Optional[str] = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage, SPLITS):
            if split not in self._datasets:
                self._datasets[split] = self.build_dataset(split)

    def dataset(self, split: str) -> Dataset:
        if split not in self._datasets:
            self._datasets[split] = self.build_dataset(split)
        return self._datasets[split]

    def _loader(self, split: str) -> DataLoader:
        c, ds = self.cfg, self.dataset(split)
        train = split == "train"
        bs = c.batch_size if train else (c.eval_batch_size or c.batch_size)
        sampler = None
        if train and len(ds) < bs:
            raise ConfigError(f"{c.name}: the training split has {len(ds)} items, fewer than batch_size={bs}; "
                             f"lower batch_size (training drops incomplete batches)")
        if not train and torch.distributed.is_available() and torch.distributed.is_initialized():
            ws = torch.distributed.get_world_size()
            if ws > 1:
                sampler = EvalDistributedSampler(ds, ws, torch.distributed.get_rank())
        pin = torch.cuda.is_available()
        if train:
            # epoch-seeded order and worker seeds (exact resume); drops the ragged last batch (a batch
            # of 1 breaks BatchNorm, DDP ranks need equal batch counts). Workers are restarted every
            # epoch so that each epoch's worker seeds apply.
            return seeded_train_loader(ds, bs, c.split_seed, num_workers=c.num_workers, pin_memory=pin)
        return DataLoader(ds, batch_size=bs, shuffle=False, sampler=sampler, num_workers=c.num_workers,
                          drop_last=False, pin_memory=pin, persistent_workers=c.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    # ------------------------------------------------------------------ reporting
    def is_synthetic(self) -> bool:
        """The synthetic stand-in: ``root`` unset, or a release the generator wrote (its ``.complete-*``
        marker sits beside it); it has no published test-fold size."""
        return self.cfg.root is None or any(self.root.parent.glob(".complete-*"))

    def expected_test_items(self) -> Optional[int]:
        """The protocol's test-fold size for the real release (None for synthetic data or no count)."""
        if self.is_synthetic() or self.expected_test is None:
            return None
        return self.expected_test.get(int(self.cfg.fold))

    def test_set_record(self) -> dict[str, Any]:
        """What the test fold holds against the protocol: the ``test_set`` entry of ``results.json``.

        ``items`` / ``expected_items`` / ``matches_protocol`` (None when no count applies), and for
        landmark datasets ``landmark_fallback`` (test frames cropped without their own landmarks, by
        kind) and ``landmark_indexing`` (2DFeatures convention per sequence, BP4D).
        """
        test = self.manifest("test")
        expected = self.expected_test_items()
        rec: dict[str, Any] = {"items": len(test), "expected_items": expected,
                               "matches_protocol": None if expected is None else len(test) == expected}
        if self.cfg.limit_items:
            rec["limit_items"] = int(self.cfg.limit_items)
        if "landmark_source" in test:
            kinds = test.loc[test["landmark_source"] != "tracked", "landmark_source"].value_counts()
            rec["landmark_fallback"] = {str(k): int(v) for k, v in sorted(kinds.items())}
        if "landmark_indexing" in test:
            per_seq = test.drop_duplicates("sequence")["landmark_indexing"].value_counts()
            rec["landmark_indexing"] = {str(k): int(v) for k, v in sorted(per_seq.items())}
        return rec

    def summary(self) -> dict[str, Any]:
        """Counts per split, label base rates and skipped items (what ``affectlab data summary`` prints)."""
        out: dict[str, Any] = {"dataset": self.cfg.name, "root": str(self.root), "task": self.cfg.task,
                               "fold": self.cfg.fold, "protocol": getattr(self, "protocol", None), "splits": {}}
        for split in SPLITS:
            df = self.manifest(split)
            info: dict[str, Any] = {"rows": len(df), "groups": int(df["group"].nunique()) if len(df) else 0}
            if self.au_columns() and len(df):
                codes = df[self.au_columns()].to_numpy(np.int64)
                mask = codes != 9
                thr = self.occurrence_threshold
                if self.cfg.task == "au_intensity" or self.cfg.task == "sequences":
                    rate = np.where(mask, codes, 0).sum(0) / np.maximum(mask.sum(0), 1)
                    info["mean_intensity"] = dict(zip(self.au_names, np.round(rate, 3).tolist()))
                else:
                    pos = (codes >= thr) if thr is not None else codes == 1
                    rate = (pos & mask).sum(0) / np.maximum(mask.sum(0), 1)
                    info["positive_rate"] = dict(zip(self.au_names, np.round(rate, 3).tolist()))
                info["unlabelled_codes"] = int((~mask).sum())
            if "label" in df and self.class_names and len(df):
                counts = df["label"].value_counts().reindex(range(len(self.class_names)), fill_value=0)
                info["class_counts"] = dict(zip(self.class_names, counts.astype(int).tolist()))
            out["splits"][split] = info
        sk = self.skipped()
        out["skipped"] = sk.to_dict("records")
        if self.train_skipped_untracked:
            out["skipped"].append({"item": f"{self.train_skipped_untracked} train frames",
                                   "reason": "sequence has no tracked landmarks: skipped in training (align=true)",
                                   "file": ""})
        out["test_set"] = self.test_set_record()
        return out


def held_out_groups(df: pd.DataFrame, fraction: float, total: int, seed: int) -> set:
    """``round(fraction · total)`` of the groups of ``df`` (at least one when the fraction is positive,
    never all when there are several), chosen by ``numpy.random.default_rng(seed)``."""
    groups = np.array(sorted(df["group"].unique()))
    n = int(round(fraction * total))
    if fraction > 0 and len(groups) > 1:
        n = min(max(n, 1), len(groups) - 1)
    return set(np.random.default_rng(seed).choice(groups, size=n, replace=False).tolist()) if n else set()


def assign_parts(df: pd.DataFrame, parts: dict[int, list[str]]) -> list[dict]:
    """Set ``df["part"]`` from the release's published subject parts (0: in none) and return the
    skipped-record rows of the subjects in no part, which every fold keeps out."""
    part_of = {s: p for p, subs in parts.items() for s in subs}
    df["part"] = df["subject"].map(part_of).fillna(0).astype(int)
    return [{"item": s, "reason": "subject in no published part (kept out of every fold)", "file": ""}
            for s in sorted(set(df.loc[df["part"] == 0, "subject"]))]


def fallback_landmarks(df: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """Give every frame landmarks to crop by, and say where they came from (``landmark_source``).

    ``tracked``: the frame's own. ``sequence_median``: an untracked frame of a sequence with tracked
    frames takes the per-point median over them (the head moves little within a task).
    ``release_median``: a sequence with no tracked frame takes the median over the whole release;
    the lab releases film every subject with one fixed camera rig, so this is a detector-free crop
    around where faces sit in that rig (training skips these frames, tests keep them). When the
    release has no tracked frame at all, the landmarks column is dropped and every frame gets the
    transform's centre crop (``centre_crop``). No frame is dropped here.
    """
    lms = [x if isinstance(x, np.ndarray) else None for x in df["landmarks"].tolist()]
    source = ["tracked" if x is not None else "" for x in lms]
    tracked = [x for x in lms if x is not None]
    df = df.copy()
    if not tracked:
        df["landmark_source"] = "centre_crop"
        return df.drop(columns="landmarks"), [
            {"item": "*", "reason": "no tracked landmarks in the release: centre crop for every frame", "file": ""}]
    release = np.median(np.stack(tracked), axis=0).astype(np.float32)
    skipped = []
    for seq, idx in df.groupby("sequence", sort=False).indices.items():
        missing = [i for i in idx if lms[i] is None]
        if not missing:
            continue
        known = [lms[i] for i in idx if lms[i] is not None]
        kind = "sequence_median" if known else "release_median"
        fill = np.median(np.stack(known), axis=0).astype(np.float32) if known else release
        for i in missing:
            lms[i], source[i] = fill, kind
        reason = (f"{len(missing)} untracked frames cropped by the sequence's median landmarks" if known else
                  f"no tracked frame: {len(missing)} frames cropped by the release's median landmarks "
                  f"(kept in test, skipped in training)")
        skipped.append({"item": seq, "reason": reason, "file": ""})
    df["landmarks"] = lms
    df["landmark_source"] = source
    return df, skipped


def skipped_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item", "reason", "file"])


__all__ = ["FaceDataModule", "EvalDistributedSampler", "DataFormatError", "check_fold", "fallback_landmarks",
           "skipped_frame"]
