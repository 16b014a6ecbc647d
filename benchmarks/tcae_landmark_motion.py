"""How far facial points move between the two frames of a TCAE pair, in pixels of the network input.

Reads the generator's ground-truth landmarks (68 points) of synthetic BP4D (``groundtruth/bp4d.csv.gz``),
maps every frame with the same eye-centre similarity the datamodule's alignment uses (eye centres at
``((0.5 ∓ d/2)·S, eye_y·S)``; here from the ground-truth 68-point eyes, the datamodule uses the release's
49-point landmarks), and prints, per frame gap within a track, the mean displacement of each landmark
group (jaw, brows, nose, eyes, mouth) and the mean of the largest AU-intensity change. It bounds how
much motion a warp can be asked to explain at ``--size``. No training; used for docs/methods/tcae.md.

    PYTHONPATH=src:. python benchmarks/tcae_landmark_motion.py --size 64
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parents[1]))
from affectlab.synth import release_groundtruth_path  # noqa: E402
from data_modules.transforms import apply_affine, similarity_from_eyes  # noqa: E402

GROUPS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48),
          "mouth": range(48, 68)}


def aligned_landmarks(table: pd.DataFrame, size: int, eye_y: float = 0.4, eye_distance: float = 0.32) -> np.ndarray:
    """(N, 68, 2) landmarks after the eye-centre similarity to a ``size``-pixel frame."""
    pts = np.stack([table[[f"lm_x{i}" for i in range(68)]].to_numpy(),
                    table[[f"lm_y{i}" for i in range(68)]].to_numpy()], -1)
    out = []
    for lm in pts:
        eyes = np.stack([lm[36:42].mean(0), lm[42:48].mean(0)])
        out.append(apply_affine(lm, similarity_from_eyes(eyes, size, eye_y, eye_distance)))
    return np.stack(out)


def motion_by_gap(table: pd.DataFrame, size: int, gaps: list[int]) -> pd.DataFrame:
    """Mean per-group landmark displacement (pixels) and mean max |ΔAU| over all pairs of each gap."""
    table = table.reset_index(drop=True)
    pts = aligned_landmarks(table, size)
    aus = table[[c for c in table.columns if c.startswith("au") and c[2:].isdigit()]].to_numpy()
    rows = []
    for _, g in table.groupby(["subject", "sequence"]):
        idx = g.sort_values("frame").index.to_numpy()
        for gap in gaps:
            a, b = idx[:-gap], idx[gap:]
            d = np.linalg.norm(pts[b] - pts[a], axis=2)
            for k in range(len(a)):
                row = {"gap": gap, "max |dAU|": np.abs(aus[b[k]] - aus[a[k]]).max()}
                row.update({name: d[k, list(r)].mean() for name, r in GROUPS.items()})
                rows.append(row)
    return pd.DataFrame(rows).groupby("gap").mean()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--gaps", default="1,3,8,17")
    a = p.parse_args(argv)
    from data_modules import create_datamodule

    dm = create_datamodule("bp4d", task="au_occurrence", image_size=a.size)
    table = pd.read_csv(release_groundtruth_path(dm.root, "bp4d"))
    print(f"mean landmark displacement in px at {a.size} px (eye-aligned), and mean max |ΔAU| (0-5 scale):")
    print(motion_by_gap(table, a.size, [int(x) for x in a.gaps.split(",")]).round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
