"""Contact sheet (synthetic.md §5.12 gallery): each AU at levels 0-5 on one identity, the 7 classes at
low/high intensity, a yaw/pitch sweep and 12 identities."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .face import AU_INDEX, AUS, N_AU, Pose, sample_identity
from .labels import CLASSES, RECIPES, apply_rules
from .portable import baseline_opencv
from .render import Lighting, render_face
from .writers import FACE_SCALE, rng_for

TILE = 80
#: a lab key light slightly from the upper right, so the relief (furrows, bulges) shows as it does in the data
LIGHT = Lighting((0.35, -0.45, 1.0), (1.02, 1.0, 0.97), 0.4)


def _tile(ident, u, pose=None, label=""):
    pose = pose or Pose(scale=FACE_SCALE["clip"] * TILE)
    img, _ = render_face(ident, u, pose, (TILE, TILE), noise=0, lighting=LIGHT)
    if label:
        cv2.putText(img, label, (2, 9), cv2.FONT_HERSHEY_PLAIN, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def contact_sheet(seed: int = 0) -> np.ndarray:
    ident = sample_identity(rng_for(seed, "preview", 0))
    rows = []
    for half in (AUS[:9], AUS[9:]):
        block = []
        for au in half:
            row = []
            for lv in range(6):
                u = np.zeros(N_AU)
                u[AU_INDEX[au]] = lv
                row.append(_tile(ident, apply_rules(u[None])[0], label=f"AU{au} {lv}" if lv == 0 else str(lv)))
            block.append(np.hstack(row))
        while len(block) < 9:
            block.append(np.zeros_like(block[0]))
        rows.append(np.vstack(block))
    sheet = [np.hstack(rows)]
    for band, p in (("low", 1.5), ("high", 4.5)):
        row = []
        for cls in CLASSES:
            u = np.zeros(N_AU)
            for au in RECIPES[cls][0][0][1]:
                u[AU_INDEX[au]] = p
            row.append(_tile(ident, apply_rules(u[None])[0], label=f"{cls[:4]} {band}"))
        row += [np.zeros_like(row[0])] * (12 - len(row))
        sheet.append(np.hstack(row))
    sheet.append(np.hstack([_tile(ident, np.zeros(N_AU), Pose(yaw=y, pitch=pt, scale=FACE_SCALE["clip"] * TILE))
                            for y, pt in [(-40, 0), (-30, 0), (-20, 0), (-10, 0), (0, 0), (10, 0), (20, 0),
                                          (30, 0), (40, 0), (0, -20), (0, 20), (15, 15)]]))
    sheet.append(np.hstack([_tile(sample_identity(rng_for(seed, "preview", i), wild=True), np.zeros(N_AU))
                            for i in range(1, 13)]))
    return np.vstack(sheet)


def write_preview(path: Path | str, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with baseline_opencv():
        sheet = contact_sheet(seed)
    if not cv2.imwrite(str(path), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise RuntimeError(f"could not write {path}")
    return path
