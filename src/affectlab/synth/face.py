"""Parametric 2.5D cartoon face with the 17 FACS AUs (synthetic.md §5.2–§5.7).

Coordinates are in IOD units (distance between the eye centres), origin between the eyes, +x image
right, +y down, +z toward the camera. The AU deformation is applied in this frame, then the rigid
head pose (§5.4), so AU motion and head motion are separable by construction.

Above ~350 lines: the 68-point geometry, the per-AU deformation tables and identity sampling share
the landmark indices defined here; split apart, each would import the others' tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .portable import dot, symmetric_eig_2x2

AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26)
AU_INDEX = {au: k for k, au in enumerate(AUS)}
N_AU = len(AUS)

# Response curves of §5.3: geometry w(u) and texture opacity t(u).
_LEVELS = np.arange(6, dtype=np.float64)
_W = np.array([0.0, 0.15, 0.35, 0.58, 0.80, 1.0])
_T = np.array([0.0, 0.12, 0.45, 0.70, 0.88, 1.0])


def geom_weight(u: np.ndarray | float) -> np.ndarray:
    return np.interp(u, _LEVELS, _W)


def texture_weight(u: np.ndarray | float) -> np.ndarray:
    return np.interp(u, _LEVELS, _T)


# ---------------------------------------------------------------------------------------------
# Control points: iBUG-68 in order, then extras. Left side (image-left, x < 0) + midline; the
# right side is mirrored.
# ---------------------------------------------------------------------------------------------
_JAW_LEFT = np.array([(-1.05, 0.05, -0.80), (-1.04, 0.27, -0.70), (-1.02, 0.50, -0.60),
                      (-0.97, 0.78, -0.45), (-0.89, 1.05, -0.30), (-0.77, 1.30, -0.15),
                      (-0.60, 1.52, -0.05), (-0.34, 1.72, 0.05)])
_LEFT = {
    "brow_tail": (-0.86, -0.30, -0.15), "brow_lat": (-0.70, -0.40, -0.02),
    "brow_peak": (-0.52, -0.43, 0.05), "brow_mid": (-0.35, -0.40, 0.08),
    "brow_head": (-0.20, -0.34, 0.08),
    "ala": (-0.20, 0.74, 0.20), "ala_in": (-0.10, 0.77, 0.30),
    "eye_out": (-0.74, 0.00, -0.08), "eye_ul": (-0.60, -0.07, 0.0), "eye_um": (-0.40, -0.075, 0.0),
    "eye_in": (-0.27, 0.01, -0.02), "eye_lm": (-0.40, 0.06, 0.0), "eye_ll": (-0.60, 0.055, 0.0),
    "m_corner": (-0.40, 1.08, 0.12), "m_u26": (-0.26, 1.00, 0.18), "m_u10": (-0.10, 0.96, 0.22),
    "m_l27": (-0.27, 1.16, 0.16), "m_l12": (-0.12, 1.20, 0.20),
    "i_corner": (-0.36, 1.08, 0.12), "i_u14": (-0.14, 1.065, 0.18), "i_l14": (-0.14, 1.065, 0.18),
    "iris": (-0.50, 0.015, 0.02), "cheek": (-0.58, 0.38, 0.12),
    "nlf_top": (-0.26, 0.66, 0.18), "nlf_mid": (-0.38, 0.88, 0.14), "nlf_bot": (-0.47, 1.12, 0.10),
    "crease_lat": (-0.60, -0.12, 0.0), "crease_med": (-0.40, -0.125, 0.0),
}
_MID = {
    "nose0": (0, -0.02, 0.10), "nose1": (0, 0.20, 0.25), "nose2": (0, 0.40, 0.40), "tip": (0, 0.62, 0.55),
    "subnasale": (0, 0.79, 0.35), "m_uc": (0, 0.975, 0.24), "m_lc": (0, 1.21, 0.22),
    "i_uc": (0, 1.07, 0.20), "i_lc": (0, 1.07, 0.20), "menton": (0, 1.82, 0.10),
    "glabella": (0, -0.32, 0.10), "forehead": (0, -0.75, 0.05), "mentolabial": (0, 1.33, 0.12),
    "chin": (0, 1.50, 0.22),
}

# iBUG-68 order as (name, side) with side L/R/M; jaw handled separately.
_IBUG = (
    [("brow_tail", "L"), ("brow_lat", "L"), ("brow_peak", "L"), ("brow_mid", "L"), ("brow_head", "L"),
     ("brow_head", "R"), ("brow_mid", "R"), ("brow_peak", "R"), ("brow_lat", "R"), ("brow_tail", "R"),
     ("nose0", "M"), ("nose1", "M"), ("nose2", "M"), ("tip", "M"),
     ("ala", "L"), ("ala_in", "L"), ("subnasale", "M"), ("ala_in", "R"), ("ala", "R"),
     ("eye_out", "L"), ("eye_ul", "L"), ("eye_um", "L"), ("eye_in", "L"), ("eye_lm", "L"), ("eye_ll", "L"),
     ("eye_in", "R"), ("eye_um", "R"), ("eye_ul", "R"), ("eye_out", "R"), ("eye_ll", "R"), ("eye_lm", "R"),
     ("m_corner", "L"), ("m_u26", "L"), ("m_u10", "L"), ("m_uc", "M"), ("m_u10", "R"), ("m_u26", "R"),
     ("m_corner", "R"), ("m_l27", "R"), ("m_l12", "R"), ("m_lc", "M"), ("m_l12", "L"), ("m_l27", "L"),
     ("i_corner", "L"), ("i_u14", "L"), ("i_uc", "M"), ("i_u14", "R"),
     ("i_corner", "R"), ("i_l14", "R"), ("i_lc", "M"), ("i_l14", "L")]
)
_EXTRA = [("iris", "L"), ("iris", "R"), ("cheek", "L"), ("cheek", "R"),
          ("nlf_top", "L"), ("nlf_mid", "L"), ("nlf_bot", "L"), ("nlf_top", "R"), ("nlf_mid", "R"),
          ("nlf_bot", "R"), ("glabella", "M"), ("forehead", "M"), ("mentolabial", "M"), ("chin", "M"),
          ("crease_lat", "L"), ("crease_med", "L"), ("crease_lat", "R"), ("crease_med", "R")]


def _build_points():
    pts, names = [], []
    for i, p in enumerate(_JAW_LEFT):
        pts.append(p)
        names.append((f"jaw{i}", "L"))
    pts.append(_MID["menton"])
    names.append(("menton", "M"))
    for i in range(7, -1, -1):
        x, y, z = _JAW_LEFT[i]
        pts.append((-x, y, z))
        names.append((f"jaw{i}", "R"))
    for name, side in _IBUG + _EXTRA:
        if side == "M":
            pts.append(_MID[name])
        else:
            x, y, z = _LEFT[name]
            pts.append((x if side == "L" else -x, y, z))
        names.append((name, side))
    return np.asarray(pts, dtype=np.float64), names


BASE_POINTS, POINT_NAMES = _build_points()
N_POINTS = len(BASE_POINTS)
IDX: dict[tuple[str, str], int] = {nm: i for i, nm in enumerate(POINT_NAMES)}
assert N_POINTS == 86 and IDX[("menton", "M")] == 8 and IDX[("m_corner", "L")] == 48


def idx(name: str, side: str = "L") -> int:
    return IDX[(name, "M")] if (name, "M") in IDX else IDX[(name, side)]


def both(name: str) -> list[int]:
    if (name, "M") in IDX:
        return [IDX[(name, "M")]]
    return [IDX[(name, "L")], IDX[(name, "R")]]


# Index sets used by the renderer and exporters.
L68 = np.arange(68)
L49 = np.array([i for i in range(17, 68) if i not in (60, 64)])   # IntraFace/BP4D 49 points
L66 = np.array([i for i in range(68) if i not in (60, 64)])       # DISFA 66 points
BROW = {"L": list(range(17, 22)), "R": list(range(26, 21, -1))}   # tail -> head
EYE = {"L": [36, 37, 38, 39, 40, 41], "R": [45, 44, 43, 42, 47, 46]}  # out, ul, um, in, lm, ll
MOUTH_OUT = list(range(48, 60))
MOUTH_IN = list(range(60, 68))
UPPER_OUT = [48, 49, 50, 51, 52, 53, 54]
LOWER_OUT = [54, 55, 56, 57, 58, 59, 48]
UPPER_IN = [60, 61, 62, 63, 64]
LOWER_IN = [64, 65, 66, 67, 60]
JAW = list(range(17))

# ---------------------------------------------------------------------------------------------
# AU displacement table D5 (synthetic.md §5.3): (name, dx lateral, dy, dz) at intensity 5.
# ---------------------------------------------------------------------------------------------
_AU_TABLE: dict[int, list[tuple]] = {
    1: [("brow_head", -0.01, -0.16, 0), ("brow_mid", 0, -0.13, 0), ("brow_peak", 0, -0.07, 0),
        ("brow_lat", 0, -0.03, 0), ("crease_med", 0, -0.03, 0)],
    2: [("brow_tail", 0.02, -0.15, 0), ("brow_lat", 0, -0.16, 0), ("brow_peak", 0, -0.10, 0),
        ("brow_mid", 0, -0.04, 0), ("brow_head", 0, -0.01, 0), ("crease_lat", 0, -0.04, 0)],
    4: [("brow_head", -0.08, 0.10, 0), ("brow_mid", -0.05, 0.09, 0), ("brow_peak", -0.03, 0.07, 0),
        ("brow_lat", 0, 0.05, 0), ("brow_tail", 0, 0.03, 0), ("eye_ul", 0, 0.02, 0),
        ("eye_um", 0, 0.02, 0), ("crease_lat", 0, 0.03, 0), ("crease_med", 0, 0.03, 0)],
    5: [("eye_ul", 0, -0.09, 0), ("eye_um", 0, -0.08, 0), ("eye_ll", 0, 0.01, 0),
        ("eye_lm", 0, 0.01, 0), ("crease_lat", 0, -0.05, 0), ("crease_med", 0, -0.05, 0)],
    6: [("cheek", 0.01, -0.10, 0), ("eye_ll", 0, -0.05, 0), ("eye_lm", 0, -0.03, 0),
        ("eye_out", 0, 0.01, 0), ("brow_tail", 0, 0.02, 0), ("nlf_top", 0, -0.03, 0)],
    7: [("eye_lm", 0, -0.06, 0), ("eye_ll", 0, -0.05, 0), ("eye_ul", 0, 0.015, 0),
        ("eye_um", 0, 0.015, 0)],
    9: [("ala", 0.02, -0.07, 0), ("ala_in", 0.01, -0.06, 0), ("tip", 0, -0.02, 0),
        ("subnasale", 0, -0.03, 0), ("m_uc", 0, -0.05, 0), ("m_u10", 0, -0.04, 0),
        ("i_uc", 0, -0.04, 0), ("i_u14", 0, -0.03, 0), ("brow_head", -0.03, 0.06, 0),
        ("brow_mid", -0.02, 0.04, 0), ("eye_ll", 0, -0.02, 0), ("eye_lm", 0, -0.02, 0),
        ("cheek", 0, -0.04, 0), ("nlf_top", 0, -0.05, 0)],
    10: [("m_uc", 0, -0.10, 0), ("m_u10", 0, -0.09, 0), ("m_u26", 0, -0.06, 0),
         ("m_corner", 0.01, -0.02, 0), ("i_uc", 0, -0.09, 0), ("i_u14", 0, -0.08, 0),
         ("ala", 0.02, -0.03, 0), ("ala_in", 0, -0.03, 0), ("cheek", 0, -0.03, 0),
         ("nlf_top", 0, -0.04, 0), ("nlf_mid", 0.02, -0.03, 0)],
    12: [("m_corner", 0.10, -0.11, 0), ("i_corner", 0.09, -0.10, 0), ("m_u26", 0.04, -0.05, 0),
         ("m_l27", 0.04, -0.04, 0), ("i_u14", 0.03, -0.04, 0), ("i_l14", 0.03, -0.03, 0),
         ("m_lc", 0, 0.005, 0), ("cheek", 0, -0.05, 0), ("nlf_bot", 0.06, -0.05, 0),
         ("nlf_mid", 0.03, -0.03, 0), ("eye_ll", 0, -0.015, 0), ("eye_lm", 0, -0.015, 0)],
    14: [("m_corner", 0.03, -0.02, -0.05), ("i_corner", 0.03, -0.02, -0.05)],
    15: [("m_corner", 0.02, 0.10, 0), ("i_corner", 0.02, 0.10, 0), ("m_l27", 0.02, 0.05, 0),
         ("i_l14", 0.01, 0.04, 0), ("m_u26", 0, 0.03, 0), ("nlf_bot", 0, 0.03, 0)],
    17: [("chin", 0, -0.08, 0.03), ("mentolabial", 0, -0.06, 0), ("m_lc", 0, -0.07, 0.02),
         ("m_l12", 0, -0.06, 0.02), ("m_l27", 0, -0.04, 0), ("i_lc", 0, -0.06, 0),
         ("i_l14", 0, -0.05, 0), ("m_uc", 0, -0.02, 0), ("m_u10", 0, -0.02, 0),
         ("m_corner", 0, 0.01, 0)],
    20: [("m_corner", 0.10, 0.02, 0), ("i_corner", 0.10, 0.02, 0), ("m_u26", 0.06, 0, 0),
         ("m_l27", 0.06, 0, 0), ("i_u14", 0.04, 0, 0), ("i_l14", 0.04, 0, 0), ("nlf_bot", 0.05, 0, 0)],
    23: [("m_corner", -0.02, 0, 0), ("i_corner", -0.02, 0, 0)],
    24: [("m_u26", 0, 0.025, 0), ("m_u10", 0, 0.025, 0), ("m_uc", 0, 0.025, 0),
         ("m_l27", 0, -0.03, 0), ("m_l12", 0, -0.03, 0), ("m_lc", 0, -0.03, 0),
         ("m_corner", 0, 0.01, 0), ("i_corner", 0, 0.01, 0)],
    25: [],
    26: [("menton", 0, 0.24, 0), ("jaw7", 0, 0.216, 0), ("jaw6", 0, 0.168, 0), ("jaw5", 0, 0.108, 0),
         ("jaw4", 0, 0.06, 0), ("jaw3", 0, 0.024, 0), ("chin", 0, 0.23, 0), ("mentolabial", 0, 0.22, 0),
         ("m_l27", 0, 0.20, 0), ("m_l12", 0, 0.20, 0), ("m_lc", 0, 0.20, 0), ("i_l14", 0, 0.20, 0),
         ("i_lc", 0, 0.20, 0), ("m_corner", -0.03, 0.07, 0), ("i_corner", -0.03, 0.07, 0)],
}
# Red-lip thinning per AU at intensity 5 (factors multiply).
_LIP_THIN = {20: 0.30, 23: 0.35, 24: 0.45, 14: 0.20}


def _build_d5() -> np.ndarray:
    d5 = np.zeros((N_AU, N_POINTS, 3))
    for au, rows in _AU_TABLE.items():
        for name, dx, dy, dz in rows:
            for i in both(name):
                sign = np.sign(BASE_POINTS[i, 0]) if BASE_POINTS[i, 0] != 0 else 0.0
                d5[AU_INDEX[au], i] = (dx * sign, dy, dz)
    return d5


D5 = _build_d5()
_LOWER_LIP_IDX = np.array([55, 56, 57, 58, 59, 65, 66, 67])
_UPPER_INNER_IDX = np.array([61, 62, 63])


def deform(base: np.ndarray, u: np.ndarray, gain: np.ndarray, blink: float = 0.0) -> np.ndarray:
    """AU-deformed 3D control points (§5.3): additive displacements, lip gap, thinning, clamps."""
    w = geom_weight(np.clip(u, 0.0, 5.0)) * gain
    pts = base + dot(w, D5)
    # AU25 lip gap: 0.02*u below 1, then 0.02 + 0.025 (u - 1).
    u25 = float(u[AU_INDEX[25]])
    gap = 0.02 * u25 if u25 < 1 else 0.02 + 0.025 * (u25 - 1)
    pts[_LOWER_LIP_IDX, 1] += gap * gain[AU_INDEX[25]]
    pts[_UPPER_INNER_IDX, 1] -= 0.01 * min(u25, 1.0)
    # Red-lip thinning: scale outer-lip distance to the inner contour.
    thin = 1.0
    for au, f in _LIP_THIN.items():
        thin *= 1.0 - f * geom_weight(float(u[AU_INDEX[au]]))
    for outer, inner in (([49, 50, 51, 52, 53], [61, 61, 62, 63, 63]),
                         ([55, 56, 57, 58, 59], [65, 65, 66, 67, 67])):
        pts[outer, 1] = pts[inner, 1] + (pts[outer, 1] - pts[inner, 1]) * thin
    # Eyes: blink lowers the upper lid; the upper lid never goes below the lower lid.
    for side in "LR":
        e = EYE[side]
        for up, lo in ((e[1], e[5]), (e[2], e[4])):
            if blink > 0:
                pts[up, 1] += blink * (pts[lo, 1] - pts[up, 1] - 0.005)
            pts[up, 1] = min(pts[up, 1], pts[lo, 1] - 0.003)
    # Lips: the lower inner lip never rises above the upper inner lip.
    for lo, up in ((65, 63), (66, 62), (67, 61)):
        pts[lo, 1] = max(pts[lo, 1], pts[up, 1])
    return pts


# ---------------------------------------------------------------------------------------------
# Identity (§5.5)
# ---------------------------------------------------------------------------------------------
_HAIR_COLOURS = np.array([(20, 20, 25), (30, 45, 70), (40, 70, 110), (60, 120, 170), (40, 60, 140),
                          (150, 150, 155)], dtype=np.float64)  # BGR: black, dark/brown, blond, red, grey
_IRIS_COLOURS = np.array([(30, 50, 80), (40, 80, 110), (140, 110, 60), (80, 120, 70), (120, 120, 110)],
                         dtype=np.float64)


@dataclass
class Identity:
    """One subject: neutral face shape, colours, accessories and AU expressivity (§5.5)."""

    base: np.ndarray
    gain: np.ndarray
    skin: np.ndarray
    lip: np.ndarray
    hair: np.ndarray
    iris: np.ndarray
    brow_colour: np.ndarray
    clothing: np.ndarray
    bg: tuple
    hair_style: int
    brow_thick: float
    static_lines: float
    glasses: bool
    beard: bool
    freckles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    stipple: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    #: skin-albedo multiplier (blotches, pores, moles) on a square of face coordinates starting at
    #: ``texture_origin`` (x, y, IOD) with side ``texture_span``; None renders flat skin
    texture: np.ndarray | None = None
    texture_origin: tuple[float, float] = (-1.6, -1.5)
    texture_span: float = 3.4
    blush: float = 0.0
    #: upper-lid make-up: B, G, R and opacity
    eyeshadow: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    #: how much of the static ageing lines sit at the frown (glabella, lips) rather than elsewhere
    frowner: float = 0.0
    cache: dict = field(default_factory=dict, repr=False)


def _lab_to_bgr(L: float, a: float, b: float) -> np.ndarray:
    lab = np.array([[[L * 255 / 100, a + 128, b + 128]]], dtype=np.uint8)
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)[0, 0].astype(np.float64)


def skin_texture(rng: np.random.Generator, n: int = 128, age: float = 0.0) -> np.ndarray:
    """Identity-fixed skin albedo multiplier: blotches (±5 %, more with age), pores (±2 %), moles, fading to
    1 off the face."""
    blotch = cv2.GaussianBlur(rng.standard_normal((n, n)).astype(np.float32), (0, 0), n / 14)
    blotch *= 0.05 * (1 + age) / max(float(blotch.std()), 1e-6)
    pores = cv2.GaussianBlur(rng.standard_normal((n, n)).astype(np.float32), (0, 0), 0.7)
    pores *= 0.02 / max(float(pores.std()), 1e-6)
    tex = 1.0 + blotch + pores
    for _ in range(int(rng.integers(0, 5))):
        cv2.circle(tex, (int(rng.uniform(0.2, 0.8) * n), int(rng.uniform(0.3, 0.85) * n)),
                   max(1, int(rng.uniform(0.006, 0.015) * n)), float(rng.uniform(0.45, 0.75)), -1, cv2.LINE_AA)
    yy, xx = (np.mgrid[0:n, 0:n].astype(np.float32) + 0.5) / n
    fade = np.clip(1.6 - 2.2 * np.hypot((xx - 0.47) / 0.62, (yy - 0.5) / 0.75), 0, 1)
    return (1.0 + (tex - 1.0) * fade).astype(np.float32)


def sample_identity(rng: np.random.Generator, wild: bool = False) -> Identity:
    """One subject (v3): shape, skin tone over the whole Fitzpatrick range, brows that may be lighter
    than the skin, ageing lines, skin texture, make-up, beard and glasses."""
    p = BASE_POINTS.copy()
    x, y = p[:, 0], p[:, 1]
    lower = y > 0.3
    p[:, 0] *= rng.normal(1, 0.06)
    p[lower, 1] = 0.3 + (y[lower] - 0.3) * np.clip(rng.normal(1, 0.07), 0.82, 1.18)
    jaw_ratio = rng.uniform(0.82, 1.0)
    for i in JAW:
        p[i, 0] *= 1 - (1 - jaw_ratio) * np.clip((p[i, 1] - 0.5) / 1.3, 0, 1)
    # Eyes: width and opening around each eye centre.
    ew, eh = rng.uniform(0.9, 1.08), rng.uniform(0.8, 1.2)
    for side in "LR":
        e = EYE[side] + [idx("crease_lat", side), idx("crease_med", side)]
        cx = -0.5 if side == "L" else 0.5
        p[e, 0] = cx + (p[e, 0] - cx) * ew
        p[e, 1] = p[e, 1] * eh
    p[17:27, 1] += rng.normal(0, 0.035)                         # brow height
    arch = rng.normal(0, 0.025)                                 # arched vs flat brows
    p[[19, 24], 1] -= arch
    p[[18, 20, 23, 25], 1] -= 0.5 * arch
    p[[27, 28, 29, 30], 1] += np.array([0, 0.3, 0.6, 1.0]) * rng.uniform(-0.06, 0.1)
    p[[31, 35], 0] *= rng.uniform(0.82, 1.18)                   # alar width
    mouth = list(range(48, 68)) + both("nlf_bot")
    p[mouth, 0] *= rng.uniform(0.82, 1.15)
    p[mouth, 1] += rng.uniform(-0.06, 0.06)
    p[both("menton") + both("chin") + [7, 9], 1] += rng.uniform(-0.06, 0.08)
    p[:, :2] += rng.normal(0, 0.008, size=(N_POINTS, 2))
    p[66, 1], p[65, 1], p[67, 1] = p[62, 1], p[63, 1], p[61, 1]   # lips closed at rest

    L = rng.uniform(25, 88)
    skin = _lab_to_bgr(L, rng.uniform(6, 22), rng.uniform(10, 30) + 0.05 * (L - 60))
    lip = _lab_to_bgr(max(L - rng.uniform(10, 20), 20), rng.uniform(25, 40), rng.uniform(12, 25))
    hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] * rng.uniform(0.8, 1.2)
    n_fr = int(rng.integers(10, 30)) if rng.random() < 0.2 else 0
    freckles = np.c_[rng.uniform(-0.8, 0.8, n_fr), rng.uniform(0.1, 0.9, n_fr), np.full(n_fr, 0.1)]
    n_st = 14
    stipple = np.c_[rng.uniform(-0.13, 0.13, n_st), rng.uniform(-0.07, 0.07, n_st), np.zeros(n_st)]
    bg_a = rng.uniform(30, 220, 3)
    bg_b = np.clip(bg_a + rng.normal(0, 40, 3), 0, 255)
    age = float(rng.beta(1.3, 2.2))
    # brows from the hair colour, sometimes bleached/fair: lighter than dark skin
    brow = hair * rng.uniform(0.7, 1.0) if rng.random() < 0.8 else skin * rng.uniform(0.75, 1.3)
    makeup = rng.random() < (0.3 if wild else 0.15)
    if makeup:
        lip = lip * rng.uniform(0.5, 1.0) + np.array([20.0, 10.0, 60.0]) * rng.uniform(0, 1)
    shadow = (*rng.uniform(20, 160, 3), float(rng.uniform(0.2, 0.5))) if makeup and rng.random() < 0.6 else (0, 0, 0, 0)
    return Identity(
        base=p, gain=np.clip(rng.lognormal(0, 0.12, N_AU), 0.8, 1.3), skin=skin, lip=lip,
        hair=np.clip(hair, 0, 255), iris=_IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))],
        brow_colour=np.clip(brow, 0, 255), clothing=rng.uniform(20, 230, 3),
        bg=(tuple(bg_a), tuple(bg_b), float(rng.uniform(0, np.pi))), hair_style=int(rng.integers(0, 3)),
        brow_thick=rng.uniform(0.04, 0.09), static_lines=age,
        glasses=bool(rng.random() < (0.12 if wild else 0.05)), beard=bool(rng.random() < (0.15 if wild else 0.08)),
        freckles=freckles, stipple=stipple, texture=skin_texture(rng, age=age),
        blush=float(rng.uniform(0.1, 0.3)) if makeup and rng.random() < 0.5 else 0.0,
        eyeshadow=tuple(float(v) for v in shadow), frowner=float(rng.uniform(0, 1)))


# ---------------------------------------------------------------------------------------------
# Pose and projection (§5.4)
# ---------------------------------------------------------------------------------------------
PIVOT = np.array([0.0, 0.35, -1.1])
HEAD_CENTRE = np.array([0.0, 0.12, -0.95])
HEAD_AXES = np.array([1.08, 1.45, 1.10])
FOCAL = 10.0
ANCHOR_Y = 0.45          # face point that sits at the image centre (plus translation)


@dataclass
class Pose:
    """Rigid head pose: angles in degrees, scale in output px per IOD, tx/ty output px offsets."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    scale: float = 35.0
    tx: float = 0.0
    ty: float = 0.0


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return dot(dot(rz, rx), ry)


class Camera:
    """Projects face-frame points to pixels of a canvas of size (w, h) with supersampling ss."""

    def __init__(self, pose: Pose, w: int, h: int, ss: int = 1):
        self.R = rotation(pose.yaw, pose.pitch, pose.roll)
        self.s = pose.scale * ss
        self.cx = (w / 2 + pose.tx) * ss
        self.cy = (h / 2 + pose.ty) * ss
        self._Rt = self.R.T.copy()
        self._off = PIVOT - dot(PIVOT, self._Rt) - np.array([0.0, ANCHOR_Y, 0.0])
        self._sf = self.s * FOCAL
        self._c = np.array([self.cx, self.cy])

    def project(self, pts: np.ndarray) -> np.ndarray:
        # q = R (p - pivot) + pivot, with the vertical anchor folded into the offset.
        q = dot(pts, self._Rt) + self._off
        k = self._sf / (FOCAL - q[:, 2])
        return q[:, :2] * k[:, None] + self._c

    def head_ellipse(self, centre=HEAD_CENTRE, axes=HEAD_AXES):
        c = self.project(centre[None])[0]
        m = dot(dot(self.R, np.diag(np.square(axes))), self.R.T)
        vals, ang = symmetric_eig_2x2(m[:2, :2])
        return c, np.sqrt(vals[::-1]) * self.s, ang
