"""A small face-like stand-in of synthetic BP4D for the region_relation evidence, written in BP4D's
on-disk layout (``AUCoding/AU_OCC``, ``Sequences(2D+3D)``, ``2DFeatures`` v7.3) plus
``groundtruth/bp4d.csv.gz`` with continuous AU intensities.

Only for use until the project's generator (``affectlab.synth``) is available: cartoon faces drawn
with OpenCV whose landmarks move with 12 BP4D AUs (plus 25/26 for mouth opening), with AU
co-occurrence driven by expression episodes (smile 6+12(+7,10,25), surprise 1+2+25/26, anger
4+7+23+24, sadness 1+4+15(+17), disgust 4+10+17, dimpler 14, plus 10 % isolated AUs), per-subject
face shape and skin tone, small pose jitter and pixel noise.

    PYTHONPATH=src:. python benchmarks/region_relation_standin.py OUT_DIR [--frames 24] [--seed 0]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd

from affectlab.models.au_attention import IBUG68_TO_49, TEMPLATE_68

ALL_AUS = [1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26]
EPISODES = {  # name: (probability, {AU: (probability of taking part, peak range)})
    "neutral": (0.25, {}),
    "smile": (0.22, {6: (0.9, (1.5, 4.5)), 12: (1.0, (1.5, 5)), 7: (0.4, (1, 3)), 10: (0.4, (1, 3)), 25: (0.5, (1, 4))}),
    "surprise": (0.10, {1: (1.0, (1.5, 4.5)), 2: (0.9, (1.5, 4.5)), 25: (0.8, (1, 4)), 26: (0.5, (1, 4))}),
    "anger": (0.10, {4: (1.0, (1.5, 4.5)), 7: (0.8, (1, 4)), 23: (0.7, (1, 4)), 24: (0.7, (1, 4))}),
    "sadness": (0.10, {1: (0.9, (1, 4)), 4: (0.8, (1, 4)), 15: (1.0, (1.5, 4)), 17: (0.6, (1, 4))}),
    "disgust": (0.08, {4: (0.6, (1, 3)), 10: (1.0, (1.5, 4.5)), 17: (0.7, (1, 4)), 9: (0.6, (1, 3))}),
    "dimpler": (0.05, {14: (1.0, (1.5, 4.5)), 24: (0.4, (1, 3))}),
    "isolated": (0.10, None),
}
ISOLATED = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]

# landmark motion per unit intensity, in face units (dx toward the image right, dy down)
BROW_INNER = [20, 21, 22, 23]
BROW_OUTER = [17, 18, 25, 26]


def deform(t: np.ndarray, u: dict[int, float]) -> np.ndarray:
    """Move a neutral iBUG-68 face (face units) by AU intensities ``u`` (0–5)."""
    p = t.copy()
    side = np.sign(p[:, 0])
    g = lambda au: u.get(au, 0.0) / 5.0  # noqa: E731
    p[BROW_INNER, 1] -= 0.16 * g(1)
    p[BROW_OUTER + [19, 24], 1] -= 0.14 * g(2) * np.array([1, 1, 1, 1, 0.6, 0.6])
    p[17:27, 1] += 0.10 * g(4)
    p[[21, 22], 0] -= 0.06 * g(4) * side[[21, 22]]
    p[[37, 38, 43, 44], 1] -= 0.05 * g(5)
    p[[40, 41, 46, 47], 1] -= 0.05 * g(6) + 0.04 * g(7)
    p[[37, 38, 43, 44], 1] += 0.03 * g(7)
    p[[31, 35], 1] -= 0.05 * g(9)
    p[49:54, 1] -= 0.10 * g(10)
    p[[61, 62, 63], 1] -= 0.06 * g(10)
    corners = [48, 54, 60, 64]
    p[corners, 0] += 0.08 * g(12) * side[corners] + 0.06 * g(20) * side[corners] - 0.05 * g(14) * side[corners]
    p[corners, 1] += -0.14 * g(12) + 0.14 * g(15) - 0.02 * g(14)
    p[[55, 56, 57, 58, 59, 65, 66, 67], 1] -= 0.07 * g(17)
    p[5:12, 1] -= 0.05 * g(17)
    p[49:54, 1] += 0.03 * g(23)
    p[55:60, 1] -= 0.03 * g(23)
    p[[61, 62, 63], 1] += 0.02 * g(24)
    p[[65, 66, 67], 1] -= 0.02 * g(24)
    p[[49, 50, 51, 52, 53], 1] += 0.02 * g(24)
    opening = 0.10 * g(25) + 0.22 * g(26)
    p[[65, 66, 67], 1] += opening
    p[55:60, 1] += opening
    p[5:12, 1] += 0.25 * g(26)
    return p


def render(points: np.ndarray, u: dict[int, float], tone: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw the face whose landmarks (pixels) are ``points``; AU textures from ``u``."""
    img = np.full((size, size, 3), 110, np.float32)
    skin = np.array([tone * 0.75, tone * 0.85, tone], np.float32)
    pts = points.astype(np.int32)
    jaw = pts[0:17]
    top = np.array([[pts[26][0], pts[24][1] - size // 6], [pts[17][0], pts[19][1] - size // 6]])
    cv2.fillPoly(img, [np.concatenate([jaw, top])], skin.tolist(), lineType=cv2.LINE_AA)
    dark = (skin * 0.45).tolist()
    g = lambda au: u.get(au, 0.0) / 5.0  # noqa: E731
    if g(4) > 0:  # glabella furrows
        for dx in (-0.03, 0.03):
            x = int((pts[21][0] + pts[22][0]) / 2 + dx * size)
            cv2.line(img, (x, pts[21][1] + 1), (x, pts[21][1] - int(0.08 * size)), (skin * (1 - 0.5 * g(4))).tolist(), 1)
    if g(1) + g(2) > 0:  # forehead lines
        for k in range(3):
            y = int(min(pts[19][1], pts[24][1]) - (0.05 + 0.035 * k) * size)
            cv2.line(img, (pts[19][0], y), (pts[24][0], y), (skin * (1 - 0.35 * max(g(1), g(2)))).tolist(), 1)
    cv2.polylines(img, [pts[17:22], pts[22:27]], False, dark, 2, lineType=cv2.LINE_AA)
    for eye in (pts[36:42], pts[42:48]):
        cv2.fillPoly(img, [eye], (235, 235, 235), lineType=cv2.LINE_AA)
        c = eye.mean(0).astype(int)
        cv2.circle(img, tuple(int(v) for v in c), max(1, size // 40), (40, 30, 20), -1)
        cv2.polylines(img, [eye], True, dark, 1, lineType=cv2.LINE_AA)
        if g(6) > 0:  # cheek raiser: crease and bulge below the eye
            y = int(eye[:, 1].max() + 0.05 * size)
            cv2.ellipse(img, (int(c[0]), y), (int(0.07 * size), int(0.02 * size)), 0, 0, 180,
                        (skin * (1 - 0.45 * g(6))).tolist(), 1)
    cv2.polylines(img, [pts[27:31], pts[31:36]], False, (skin * 0.7).tolist(), 1, lineType=cv2.LINE_AA)
    if g(9) > 0:
        cv2.line(img, tuple(pts[28]), tuple(pts[29]), (skin * (1 - 0.5 * g(9))).tolist(), 2)
    lips = (np.array([90, 90, 170], np.float32) * (1 - 0.4 * max(g(23), g(24)))).tolist()
    cv2.fillPoly(img, [pts[48:60]], lips, lineType=cv2.LINE_AA)
    if g(25) + g(26) > 0.05:
        cv2.fillPoly(img, [pts[60:68]], (30, 20, 20), lineType=cv2.LINE_AA)
    else:
        cv2.polylines(img, [pts[60:68]], True, (60, 40, 60), 1, lineType=cv2.LINE_AA)
    if g(14) > 0:
        for k in (48, 54):
            off = int(np.sign(pts[k][0] - pts[51][0]) * 0.04 * size)
            cv2.circle(img, (pts[k][0] + off, pts[k][1]), max(1, size // 50), (skin * (1 - 0.5 * g(14))).tolist(), -1)
    if g(17) > 0:  # chin boss texture
        cx, cy = int(pts[8][0]), int((pts[57][1] + pts[8][1]) / 2)
        for _ in range(6):
            dx, dy = rng.integers(-size // 20, size // 20 + 1, 2)
            cv2.circle(img, (cx + int(dx), cy + int(dy)), 1, (skin * (1 - 0.4 * g(17))).tolist(), -1)
    if g(15) > 0:
        for k in (48, 54):
            cv2.line(img, tuple(pts[k]), (pts[k][0], pts[k][1] + int(0.05 * size)), (skin * (1 - 0.4 * g(15))).tolist(), 1)
    img += rng.normal(0, 4, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def sample_intensities(rng: np.random.Generator, n: int) -> list[dict[int, float]]:
    """A sequence of ``n`` frames: episodes of 4–10 frames with a rise–hold–fall envelope."""
    names = list(EPISODES)
    probs = np.array([EPISODES[k][0] for k in names])
    out: list[dict[int, float]] = []
    while len(out) < n:
        name = names[rng.choice(len(names), p=probs / probs.sum())]
        length = int(rng.integers(4, 11))
        spec = EPISODES[name][1]
        if spec is None:
            spec = {int(rng.choice(ISOLATED)): (1.0, (1.5, 4.5))}
        peaks = {au: rng.uniform(*rng_range) for au, (p, rng_range) in spec.items() if rng.random() < p}
        envelope = np.minimum(1.0, np.minimum(np.arange(1, length + 1), np.arange(length, 0, -1)) / 2.0)
        for e in envelope:
            out.append({au: float(peak * e) for au, peak in peaks.items()})
    return out[:n]


def write_mat_v73(path: Path, preds: list[np.ndarray]) -> None:
    """``fit(i).pred`` (49×2, MATLAB 1-based) as MATLAB v7.3 writes a struct array."""
    with h5py.File(path, "w") as f:
        refs_group = f.create_group("#refs#")
        fit = f.create_group("fit")
        refs = [refs_group.create_dataset(f"e{i}", data=np.asarray(p, np.float64).T).ref for i, p in enumerate(preds)]
        fit.create_dataset("pred", data=np.array(refs, dtype=h5py.ref_dtype).reshape(-1, 1))


def write_standin(out: Path, frames: int = 24, seed: int = 0, size: int = 112, tasks=("T1", "T2")) -> Path:
    from data_modules.bp4d import PARTS

    rng = np.random.default_rng(seed)
    release = out / "BP4D"
    template = np.array(TEMPLATE_68, np.float64)
    header = ",".join(str(i) for i in range(100))
    rows = []
    for subject in sorted(s for part in PARTS.values() for s in part):
        shape = template + rng.normal(0, 0.015, template.shape)
        shape[:, 0] *= rng.uniform(0.92, 1.08)
        tone = float(rng.uniform(150, 225))
        for task in tasks:
            seq = release / "Sequences(2D+3D)" / subject / task
            seq.mkdir(parents=True, exist_ok=True)
            intensities = sample_intensities(rng, frames)
            codes = np.zeros((frames, 99), np.int64)
            preds = []
            for k in range(frames + 1):  # image 0 exists (and is tracked) but is not AU-coded
                u = intensities[k - 1] if k else {}
                scale = size * 0.33 * rng.uniform(0.95, 1.05)
                roll = rng.normal(0, 0.05)
                rot = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])
                centre = np.array([size / 2, size * 0.38]) + rng.normal(0, 1.5, 2)
                pixels = deform(shape, u) @ rot.T * scale + centre
                cv2.imwrite(str(seq / f"{k:04d}.jpg"), render(pixels, u, tone, size, rng))
                preds.append(pixels[IBUG68_TO_49] + 1.0)
                if k:
                    for au, value in u.items():
                        if au in ALL_AUS and au <= 99:
                            codes[k - 1, au - 1] = int(value >= 1.0)
                    rows.append({"dataset": "bp4d", "subject": subject, "sequence": task, "frame": k,
                                 **{f"au{a:02d}": round(u.get(a, 0.0), 4) for a in ALL_AUS}})
            occ = release / "AUCoding" / "AU_OCC"
            occ.mkdir(parents=True, exist_ok=True)
            lines = [header] + [",".join(map(str, [k + 1, *c])) for k, c in enumerate(codes)]
            (occ / f"{subject}_{task}.csv").write_text("\n".join(lines) + "\n")
            feat = release / "2DFeatures"
            feat.mkdir(parents=True, exist_ok=True)
            write_mat_v73(feat / f"{subject}_{task}.mat", preds)
    (out / "groundtruth").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "groundtruth" / "bp4d.csv.gz", index=False)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames", type=int, default=24, help="AU-coded frames per subject and task")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_standin(args.out, args.frames, args.seed)
    print(f"wrote {args.out} (41 subjects × 2 tasks × {args.frames} frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
