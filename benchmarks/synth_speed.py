"""Synthetic generator speed: render frames/s per image size, and frames/s per dataset end to end.

    PYTHONPATH=src:. python benchmarks/synth_speed.py [--generate quick] [--datasets bp4d,...] [--workers 2]
    PYTHONPATH=src:. python benchmarks/synth_speed.py --sample 4 [--rounds 3]   # CPU s per job, in process

The render table is CPU time on one core (OpenCV single-threaded). ``--generate`` writes each dataset
of a profile into a temporary folder, one after the other, and prints wall time, frames written and
frames/s per dataset; the machine's load average is printed with it (a shared machine inflates wall
times). ``--sample N`` runs the first N jobs of every dataset of the quick profile in this process
(one core, no pool), ``--rounds`` times, and prints the CPU seconds per job: the figure to compare
two checkouts side by side (run it alternately with ``PYTHONPATH`` pointing at each checkout's ``src``).

File creation is not a constant. On ext4 without a journal (this project's 2-core VM) the kernel skips
inodes freed in the last 60–360 s when it allocates one, so creating a file right after a large deletion
(``rm -rf`` of a previous copy, a test suite's temporary folders) cost 0.9 ms of kernel CPU against 0.05 ms
otherwise (2026-12-04, ``perf``: ``recently_deleted`` in ``find_inode_bit``). A quick copy holds
132,223 files, so that state alone moves a generation by ~2 CPU minutes. Hence: ``--sample`` writes
to a RAM folder (/dev/shm where present), so it measures the generator, not the file system;
``--generate`` deletes nothing until every dataset is timed and prints the creation cost it measured
first; time ``affectlab synth`` at least 6 minutes after the last large deletion.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from affectlab.synth import DATASETS, _jobs, _run, generate
from affectlab.synth.face import Pose, sample_identity
from affectlab.synth.labels import bp4d_state, bp4d_subject_weights
from affectlab.synth.render import Lighting, render_face
from affectlab.synth.writers import FACE_SCALE, PROFILES, rng_for

#: a RAM-backed folder for --sample (None: the system's temporary folder)
RAM = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def render_rate(size: tuple[int, int], n: int = 200) -> float:
    """Frames/s (CPU time, one core) of a BP4D-like track under an oblique coloured light."""
    rng = rng_for(0, "bench")
    ident = sample_identity(rng)
    U, blink = bp4d_state(rng, "T1", n, bp4d_subject_weights(rng, "T1"))
    w, h = size
    light = Lighting((0.6, -0.4, 1.0), (1.05, 1.0, 0.92), 0.35)
    t = time.process_time()
    for i in range(n):
        render_face(ident, U[i], Pose(yaw=5, scale=FACE_SCALE["clip"] * w), (w, h), blink=float(blink[i]), rng=rng,
                    lighting=light)
    return n / (time.process_time() - t)


def frame_counts(p) -> dict[str, int]:
    """Frames rendered per dataset (DISFA: both cameras; DFEW: without the 16-frame copies)."""
    return {"bp4d": 41 * 8 * p.bp4d_frames, "disfa": 27 * p.disfa_frames * 2,
            "dfew": int(p.dfew_clips * np.mean(p.dfew_len)), "ferv39k": int(p.ferv_clips * np.mean(p.ferv_len)),
            "videos": p.video_ids * p.video_tracks * p.video_frames}


def file_creation_ms(folder: Path, n: int = 500) -> float:
    """Kernel + Python CPU ms to create and write one small file in ``folder`` (kept: deleting them
    would slow the creations that follow)."""
    folder.mkdir(parents=True)
    t = time.process_time()
    for i in range(n):
        (folder / f"{i:05d}.jpg").write_bytes(b"x" * 5000)
    return (time.process_time() - t) / n * 1e3


def job_cpu(n: int, rounds: int) -> None:
    """CPU seconds per job of the first ``n`` jobs of each quick dataset, best of ``rounds``."""
    prof = PROFILES["quick"]
    with tempfile.TemporaryDirectory(dir=RAM) as d:   # warm-up: lazy imports and OpenCV's colour tables
        fn, a = _jobs("dfew", prof, 0)[0][0]
        _run((fn, Path(d), prof, 0, a))
    print(f"| dataset (first {n} jobs, best of {rounds}) | CPU s per job |\n|---|---|")
    for name in DATASETS:
        jobs = _jobs(name, prof, 0)[0][:n]
        best = float("inf")
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(dir=RAM) as d:
                t = time.process_time()
                for fn, a in jobs:
                    _run((fn, Path(d), prof, 0, a))
                best = min(best, time.process_time() - t)
        print(f"| {name} | {best / len(jobs):.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generate", default=None, help="profile to generate end to end (tiny|quick)")
    ap.add_argument("--datasets", default=None, help=f"comma-separated subset of {','.join(DATASETS)}")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", default=None, help="--generate writes under this folder (default: the system's temp folder)")
    ap.add_argument("--sample", type=int, default=0, help="CPU s per job over the first N jobs of each dataset")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    cv2.setNumThreads(1)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
    if a.sample:
        job_cpu(a.sample, a.rounds)
        return
    print("| image size | frames/s (1 core, CPU time) | ms/frame |\n|---|---|---|")
    for size in ((112, 112), (128, 128), (144, 192), (192, 144)):
        r = render_rate(size)
        print(f"| {size[0]}x{size[1]} | {r:.0f} | {1000 / r:.2f} |")
    print("\n| profile | " + " | ".join(frame_counts(PROFILES["tiny"])) + " | total |\n" + "|---" * 7 + "|")
    for name, p in PROFILES.items():
        counts = frame_counts(p)
        print(f"| {name} | " + " | ".join(str(v) for v in counts.values()) + f" | {sum(counts.values())} |")
    if a.generate:
        names = a.datasets.split(",") if a.datasets else list(DATASETS)
        total = 0.0
        with tempfile.TemporaryDirectory(dir=a.out) as top:   # deleted only after every dataset is timed
            print(f"\nfile creation in {top}: {file_creation_ms(Path(top, 'probe')):.3f} ms/file")
            print(f"\n| dataset ({a.generate}, workers={a.workers or 'default'}) | wall s | rows written | rows/s | load |"
                  "\n|---|---|---|---|---|")
            for name in names:
                d = Path(top, name)
                t = time.perf_counter()
                generate(d, [name], a.generate, 0, progress=False, workers=a.workers)
                dt = time.perf_counter() - t
                rows = len(pd.read_csv(d / "groundtruth" / f"{name}.csv.gz", usecols=["frame"]))
                total += dt
                print(f"| {name} | {dt:.1f} | {rows} | {rows / dt:.0f} | {os.getloadavg()[0]:.1f} |")
        print(f"| all | {total:.1f} | | | |")


if __name__ == "__main__":
    main()
