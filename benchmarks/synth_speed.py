"""Synthetic generator speed: render frames/s per image size, and (optionally) end-to-end generation.

    PYTHONPATH=src:. OMP_NUM_THREADS=1 python benchmarks/synth_speed.py [--generate tiny] [--datasets bp4d,...]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from affectlab.synth import generate
from affectlab.synth.face import N_AU, Pose, sample_identity
from affectlab.synth.labels import bp4d_state, bp4d_subject_weights
from affectlab.synth.render import render_face
from affectlab.synth.writers import PROFILES, rng_for


def render_rate(size, n=200):
    rng = rng_for(0, "bench")
    ident = sample_identity(rng)
    U, blink = bp4d_state(rng, "T1", n, bp4d_subject_weights(rng, "T1"))
    w, h = size
    t = time.process_time()
    for i in range(n):
        render_face(ident, U[i], Pose(yaw=5, scale=0.3 * w), (w, h), blink=float(blink[i]), rng=rng)
    return n / (time.process_time() - t)


def frame_counts(p):
    dfew = p.dfew_clips * (np.mean(p.dfew_len))
    return {"bp4d": 41 * 8 * p.bp4d_frames, "disfa (2 cams)": 27 * p.disfa_frames * 2, "dfew": int(dfew),
            "ferv39k": int(p.ferv_clips * np.mean(p.ferv_len)), "videos": p.video_ids * 2 * p.video_frames}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--generate", default=None, help="profile to generate end to end (tiny|quick)")
    ap.add_argument("--datasets", default=None)
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args()
    print("| image size | frames/s (1 core, CPU time) | ms/frame |\n|---|---|---|")
    for size in ((48, 64), (64, 64), (112, 112), (128, 96)):
        r = render_rate(size)
        print(f"| {size[0]}x{size[1]} | {r:.0f} | {1000 / r:.2f} |")
    print("\n| profile | " + " | ".join(frame_counts(PROFILES['tiny'])) + " |\n" + "|---" * 6 + "|")
    for name, p in PROFILES.items():
        print(f"| {name} | " + " | ".join(str(v) for v in frame_counts(p).values()) + " |")
    if a.generate:
        names = a.datasets.split(",") if a.datasets else None
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            generate(d, names, a.generate, 0, progress=False, workers=a.workers)
            dt = time.perf_counter() - t
        print(f"\ngenerate profile={a.generate} datasets={names or 'all'} workers={a.workers}: {dt:.1f} s wall")


if __name__ == "__main__":
    main()
