"""``toyau``: a tiny in-memory AU dataset for tests and smoke runs (no files, builds in ms).

Each frame is a noisy grey face-sized canvas with K blob "action units" at fixed places; an
AU is present when its blob is drawn. Subjects differ in brightness and blob size so the
subject-exclusive folds are meaningful. It follows the sample contract of ``data_modules.base``.
"""
from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from affectlab.schema import ConfigError
from data_modules.base import DATAMODULES, DataConfig, check_fold
from data_modules.seeded_sampler import seeded_train_loader


@dataclass
class ToyAUConfig(DataConfig):
    """``data`` keys of the in-memory toy AU problem used by fast tests."""

    subjects: int = 9
    frames_per_subject: int = 48
    num_aus: int = 4
    image_size: int = 32
    batch_size: int = 16
    num_workers: int = 0
    normalize: str = "zero_one"


class _Frames(Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, subjects: list[str], index: np.ndarray) -> None:
        self.images, self.labels, self.subjects, self.index = images, labels, subjects, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        j = int(self.index[i])
        return {
            "image": self.images[j],
            "au": self.labels[j],
            "au_mask": torch.ones_like(self.labels[j], dtype=torch.bool),
            "meta": {"dataset": "toyau", "subject": self.subjects[j], "frame": j, "index": i},
        }


@DATAMODULES.register("toyau")
class ToyAUDataModule(L.LightningDataModule):
    """Procedural blob AUs in memory; three subject-exclusive folds like BP4D's protocol."""

    Config = ToyAUConfig
    tasks = ("au_occurrence",)
    protocol = "toyau/3fold"
    data_source = "synthetic-toyau"

    def __init__(self, cfg) -> None:
        super().__init__()
        check_fold("toyau", cfg.fold, 3)
        if cfg.get("root"):
            raise ConfigError(f"data.root={cfg.root}: toyau is generated in memory and reads no files; "
                              "a release needs its own DATA= (bp4d, disfa, dfew, ferv39k)")
        self.cfg = cfg
        self.au_names = [f"AU{i + 1:02d}" for i in range(cfg.num_aus)]
        self._build()

    def _build(self) -> None:
        c = self.cfg
        rng = np.random.default_rng(c.synthetic_seed)
        n = c.subjects * c.frames_per_subject
        size = c.image_size
        yy, xx = np.mgrid[0:size, 0:size] / size
        centres = [(0.3 + 0.4 * (k % 2), 0.3 + 0.4 * ((k // 2) % 2)) for k in range(c.num_aus)]
        labels = (rng.random((n, c.num_aus)) < np.linspace(0.25, 0.6, c.num_aus)).astype(np.float32)
        subject_of = np.repeat(np.arange(c.subjects), c.frames_per_subject)
        brightness = rng.uniform(0.3, 0.6, c.subjects)[subject_of]
        radius = rng.uniform(0.08, 0.12, c.subjects)[subject_of]
        images = np.repeat(brightness[:, None, None], size, 1).repeat(size, 2).astype(np.float32)
        for k, (cy, cx) in enumerate(centres):
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2)[None] / (2 * radius[:, None, None] ** 2))
            images += 0.35 * labels[:, k, None, None] * blob.astype(np.float32)
        images += rng.normal(0, 0.08, images.shape).astype(np.float32)
        self.images = torch.from_numpy(np.clip(images, 0, 1))[:, None].repeat(1, 3, 1, 1)
        self.labels = torch.from_numpy(labels)
        self.subjects = [f"T{s:02d}" for s in subject_of]
        fold_of_subject = np.arange(c.subjects) % 3 + 1
        test_subjects = {f"T{s:02d}" for s in np.flatnonzero(fold_of_subject == c.fold)}
        train_pool = sorted({s for s in self.subjects} - test_subjects)
        n_val = max(1, round(len(train_pool) * c.val_fraction)) if c.val_fraction > 0 else 0
        val_subjects = set(np.random.default_rng(c.split_seed).permutation(train_pool)[:n_val])
        split = np.array(["test" if s in test_subjects else "val" if s in val_subjects else "train"
                          for s in self.subjects])
        if c.select_on_test:
            split[split == "val"] = "train"
        self._frame = pd.DataFrame({"subject": self.subjects, "split": split,
                                    **{a: labels[:, k] for k, a in enumerate(self.au_names)}})

    def manifest(self, split: str) -> pd.DataFrame:
        if split == "val" and self.cfg.select_on_test:
            split = "test"
        return self._frame[self._frame.split == split]

    def summary(self) -> dict:
        """Counts per split and AU base rates (what ``affectlab data summary`` prints); nothing is skipped."""
        splits = {}
        for split in ("train", "val", "test"):
            df = self.manifest(split)
            splits[split] = {"rows": len(df), "groups": int(df["subject"].nunique()),
                             "positive_rate": {a: round(float(df[a].mean()), 3) for a in self.au_names} if len(df) else {}}
        return {"dataset": "toyau", "root": "(in memory)", "task": self.cfg.task, "fold": self.cfg.fold,
                "splits": splits, "skipped": []}

    def is_synthetic(self) -> bool:
        """False: procedural, but not a release of the face generator, so no ground-truth table beside it
        (what callers of ``is_synthetic`` read)."""
        return False

    def train_pos_rate(self) -> torch.Tensor:
        """Positive rate of each AU on the training split."""
        return torch.tensor(self.manifest("train")[self.au_names].mean().to_numpy(), dtype=torch.float32)

    def _dataset(self, split: str) -> _Frames:
        index = self.manifest(split).index.to_numpy()
        if self.cfg.limit_items:
            index = index[: self.cfg.limit_items]
        return _Frames(self.images, self.labels, self.subjects, index)

    def train_dataloader(self) -> DataLoader:
        return seeded_train_loader(self._dataset("train"), self.cfg.batch_size, self.cfg.split_seed,
                                   num_workers=self.cfg.num_workers)

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(self._dataset(split), batch_size=self.cfg.eval_batch_size or self.cfg.batch_size,
                          num_workers=self.cfg.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
