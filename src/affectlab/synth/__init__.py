"""Procedural synthetic face-video generator writing BP4D, DISFA, DFEW, FERV39k and unlabeled videos
in their official on-disk layouts, with a per-frame ground-truth table (see docs/synthetic.md)."""
from __future__ import annotations

import fcntl
import gzip
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from . import writers as W
from .portable import baseline_opencv, configure_worker
from affectlab.schema import ConfigError

GENERATOR_VERSION = "3.1"  # 3: shaded relief, lighting, texture, large faces, talking-face corpus; 3.1: the same bytes
# on every x86-64 CPU (portable.py; synthetic.md)
DATASETS = ("bp4d", "disfa", "dfew", "ferv39k", "videos")
RELEASE_DIR = {"bp4d": "BP4D", "disfa": "DISFA", "dfew": "DFEW", "ferv39k": "FERV39k", "videos": "videos"}
#: written inside every release folder the generator makes ("<version>\n<profile>-seed<k>\n"), so a copy
#: of that folder alone is still recognised as synthetic (the runner's ``data_source``)
SYNTHETIC_MARKER = ".affectlab-synthetic"


def _jobs(name: str, prof: W.Profile, seed: int):
    if name == "bp4d":
        return [(W.bp4d_job, (s,)) for s in prof.bp4d_subjects or W.BP4D_SUBJECTS], None
    if name == "disfa":
        return [(W.disfa_job, (s,)) for s in prof.disfa_subjects or W.DISFA_SUBJECTS], None
    if name == "dfew":
        rng, labels, lengths = W._clip_plan(prof, seed, "dfew")
        ids = np.cumsum(1 + (rng.random(len(labels)) < 0.1))       # 5-digit ids with gaps
        return [(W.dfew_job, (int(i), int(l), int(n))) for i, l, n in zip(ids, labels, lengths)], (ids, labels)
    if name == "ferv39k":
        _, jobs = W.ferv_plan(prof, seed)
        return [(W.ferv_job, j) for j in jobs], jobs
    if name == "videos":
        return [(W.video_job, (i,)) for i in range(prof.video_ids)], None
    raise ConfigError(f"unknown synthetic dataset {name!r}; expected one of {DATASETS}")


def _run(args) -> tuple[str, int]:
    """One job: its ground-truth rows as CSV text (formatted in the worker) and their count."""
    fn, root, prof, seed, a = args
    body = "".join(fn(root, prof, seed, *a))
    return body, body.count("\n")


class _Progress:
    """One tqdm bar per dataset (jobs done, frames written, ETA), opened when its first job ends."""

    def __init__(self, jobs: dict[str, int], profile: str) -> None:
        self.jobs, self.profile, self.bar, self.current, self.frames = jobs, profile, None, None, 0

    def update(self, name: str, frames: int) -> None:
        from tqdm import tqdm
        if name != self.current:
            self.close()
            self.current, self.frames = name, 0
            self.bar = tqdm(total=self.jobs[name], desc=f"synth {self.profile} {name}", unit="job")
        self.frames += frames
        self.bar.set_postfix_str(f"{self.frames} frames", refresh=False)
        self.bar.update()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _write_gt(path: Path, parts: list[tuple[str, int]]):
    """The jobs' CSV rows (from ``_run``) as one gzipped table under the ``GT_COLUMNS`` header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0, filename="") as gz:
        gz.write((",".join(W.GT_COLUMNS) + "\n").encode())
        for body, _ in parts:
            gz.write(body.encode())


def generate(out: Path | str, datasets: list[str] | None = None, profile: str = "quick", seed: int = 0,
             progress: bool = False, workers: int | None = None) -> Path:
    """Write the requested synthetic datasets under `out` with ground truth and completion markers."""
    out = Path(out)
    if profile not in W.PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; expected one of {sorted(W.PROFILES)}")
    prof = W.PROFILES[profile]
    names = list(datasets) if datasets else list(DATASETS)
    for n in names:
        if n not in DATASETS:
            raise ConfigError(f"unknown synthetic dataset {n!r}; expected one of {DATASETS}")
    out.mkdir(parents=True, exist_ok=True)
    plans = {n: _jobs(n, prof, seed) for n in names}
    tasks = [(n, (fn, out, prof, seed, a)) for n in names for fn, a in plans[n][0]]
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    progress_of = _Progress({n: len(plans[n][0]) for n in names}, profile) if progress else None
    results: dict[str, list] = {n: [] for n in names}

    def collect(n: str, part: tuple[str, int]) -> None:
        results[n].append(part)
        if progress_of:
            progress_of.update(n, part[1])

    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=configure_worker) as ex:
            for (n, _), rows in zip(tasks, ex.map(_run, [t for _, t in tasks], chunksize=4)):
                collect(n, rows)
    else:
        with baseline_opencv():   # small images: OpenCV's thread pool costs more than it saves
            for n, t in tasks:
                collect(n, _run(t))
    if progress_of:
        progress_of.close()
    for n in names:
        if n == "dfew":
            ids, labels = plans[n][1]
            W.write_dfew_splits(out, ids, labels, seed)
        if n == "ferv39k":
            W.write_ferv_splits(out, plans[n][1], seed)
        _write_gt(groundtruth_path(out, n), results[n])
        (out / RELEASE_DIR[n] / SYNTHETIC_MARKER).write_text(f"{GENERATOR_VERSION}\n{profile}-seed{seed}\n")
        (out / f".complete-{n}").write_text(f"{GENERATOR_VERSION}\n")
    return out


def groundtruth_path(copy: Path | str, dataset: str) -> Path:
    """The generator's per-frame ground-truth table of ``dataset`` in a synthetic copy."""
    return Path(copy) / "groundtruth" / f"{dataset}.csv.gz"


def release_groundtruth_path(release_root: Path | str, dataset: str) -> Path:
    """The ground-truth table beside a release folder of a synthetic copy (absent for a real release)."""
    return groundtruth_path(Path(release_root).parent, dataset)


def synthetic_root(profile: str = "quick", seed: int = 0) -> Path:
    base = Path(os.environ.get("AFFECTLAB_SYNTH_DIR", Path.home() / ".cache" / "affectlab" / "synthetic"))
    return base / f"v{GENERATOR_VERSION}" / f"{profile}-seed{seed}"


def ensure_synthetic(profile: str = "quick", seed: int = 0, datasets: Sequence[str] | None = None,
                     progress: bool = False) -> Path:
    """Root of the cached synthetic copy, generating missing datasets first under a file lock.

    Each dataset is generated in a temporary folder beside the root and moved in, then its marker
    `.complete-<name>` is written, so concurrent processes (DDP ranks) never see half a dataset.
    """
    root = synthetic_root(profile, seed)
    root.mkdir(parents=True, exist_ok=True)
    names = list(datasets) if datasets else list(DATASETS)
    missing = [n for n in names if not (root / f".complete-{n}").exists()]
    if not missing:
        return root
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            # temp folders of a generation that was killed: nobody else writes while we hold the lock
            for stale in root.parent.glob(f".tmp-{root.name}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            for n in names:
                if (root / f".complete-{n}").exists():
                    continue
                tmp = root.parent / f".tmp-{root.name}-{n}-{os.getpid()}"
                shutil.rmtree(tmp, ignore_errors=True)
                generate(tmp, [n], profile, seed, progress=progress)
                dst = root / RELEASE_DIR[n]
                shutil.rmtree(dst, ignore_errors=True)
                os.replace(tmp / RELEASE_DIR[n], dst)
                groundtruth_path(root, n).parent.mkdir(exist_ok=True)
                os.replace(groundtruth_path(tmp, n), groundtruth_path(root, n))
                os.replace(tmp / f".complete-{n}", root / f".complete-{n}")
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return root


__all__ = ["GENERATOR_VERSION", "DATASETS", "generate", "ensure_synthetic", "synthetic_root", "groundtruth_path",
           "release_groundtruth_path"]
