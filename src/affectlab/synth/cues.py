"""Wrinkle, fold and furrow cues as one table (synthetic.md §5.7; generator v3 relief).

Each cue is a polyline whose vertices are control points of the deformed face plus fixed offsets
(IOD units), and whose opacity is a linear function of the AU texture weights t(u) and the
identity's ageing lines: ``alpha = Σ_au c_au·t(u_au) + c_age·age + c_frown·age·frowner``. A cue is
drawn as a tinted stroke (dark, or bright for bulges) and, unless bright, as a groove in the relief,
so that under a directional light it reads as a bright/dark pair. Keeping the cues in a table lets a
frame evaluate all opacities and vertices with two array operations instead of a Python loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .face import AUS, LOWER_OUT, N_POINTS, UPPER_OUT, idx
from .portable import dot

#: virtual anchors appended after the control points: the origin, the top of the higher brow head
#: (x = 0, z = 0.1) and the top of the upper lip (x = 0, z = 0.2)
ORIGIN, BROW_TOP, LIP_TOP = N_POINTS, N_POINTS + 1, N_POINTS + 2
FEATURES = [f"au{a}" for a in AUS] + ["age", "frown"]


@dataclass(frozen=True)
class Cue:
    """One polyline cue: vertices (anchor index, offset), opacity weights, stroke width, kind."""

    vertices: tuple
    weights: dict
    thick_iod: float = 0.022
    bright: bool = False
    groove: float = 0.08


def _v(anchor, dx=0.0, dy=0.0, dz=0.0):
    return anchor, (dx, dy, dz)


def _side_cues(side: str) -> list[Cue]:
    sx = 1.0 if side == "R" else -1.0
    tail, peak, head = (idx(n, side) for n in ("brow_tail", "brow_peak", "brow_head"))
    eo, ll, lm, ei = (idx(n, side) for n in ("eye_out", "eye_ll", "eye_lm", "eye_in"))
    nt, nm, nb = (idx(n, side) for n in ("nlf_top", "nlf_mid", "nlf_bot"))
    mc = 48 if side == "L" else 54
    cues = [Cue((_v(tail, 0, -off), _v(peak, 0, -off - 0.02), _v(peak, -0.2 * sx, -off)), {"au2": 0.45, "age": 0.25})
            for off in (0.18, 0.30)]
    cues.append(Cue((_v(head, 0.10 * sx, -0.06), _v(head, 0.12 * sx, 0.14)), {"au4": 0.6, "frown": 0.3}))
    for ang in np.radians((-25, 0, 25)):
        d = np.array([np.cos(ang) * sx, np.sin(ang), 0.0])
        cues.append(Cue((_v(eo, *(0.05 * d)), _v(eo, *(0.17 * d))), {"au6": 0.55, "age": 0.4}))
    cues += [
        Cue((_v(eo, 0, 0.02), _v(ll, 0, 0.11), _v(lm, 0, 0.10), _v(ei, 0, 0.02)), {"au6": 0.45, "age": 0.3}),
        Cue((_v(eo, 0, 0.018), _v(ll, 0, 0.018), _v(lm, 0, 0.018), _v(ei, 0, 0.018)), {"au7": 0.5},
            thick_iod=0.03, bright=True),
        Cue((_v(nt), _v(nm)), {"au10": 0.55, "au9": 0.45, "au12": 0.5, "age": 0.8}, groove=0.1),
        Cue((_v(nm), _v(nb)), {"au12": 0.5, "age": 0.7}, groove=0.1),
        Cue((_v(nt, 0.02 * sx, -0.04), _v(nt, 0.06 * sx, 0.02)), {"au10": 0.55}),
        Cue((_v(mc, 0.06 * sx, -0.04), _v(mc, 0.08 * sx, 0.0), _v(mc, 0.06 * sx, 0.04)), {"au14": 0.6}),
        Cue((_v(mc, 0.02 * sx, 0.06), _v(mc, 0.06 * sx, 0.12)), {"au15": 0.45, "age": 0.3}),
    ]
    cues += [Cue((_v(mc, 0.06 * sx, dy), _v(mc, 0.13 * sx, dy + 0.01)), {"au20": 0.4}) for dy in (-0.02, 0.03)]
    return cues


def _all_cues() -> list[Cue]:
    t = np.linspace(0, 1, 6)
    cues = [Cue(tuple(_v(BROW_TOP, -0.36 + 0.72 * ti, -off - 0.05 * np.sin(np.pi * ti)) for ti in t),
                {"au1": 0.5, **({"age": 0.5} if k < 2 else {})}) for k, off in enumerate((0.25, 0.37, 0.49))]
    cues += _side_cues("L") + _side_cues("R")
    cues.append(Cue((_v(ORIGIN, -0.08, -0.15, 0.1), _v(ORIGIN, 0.08, -0.15, 0.1)), {"au4": 0.25, "au9": 0.35}))
    cues += [Cue((_v(ORIGIN, -0.12, y0 + 0.03, 0.2), _v(ORIGIN, 0, y0, 0.25), _v(ORIGIN, 0.12, y0 + 0.03, 0.2)),
                 {"au9": 0.6}) for y0 in 0.06 * np.arange(4)]
    ml = idx("mentolabial")
    cues.append(Cue((_v(ml, -0.16, 0.02), _v(ml), _v(ml, 0.16, 0.02)), {"au17": 0.55}, thick_iod=0.03))
    cues += [Cue((_v(LIP_TOP, xv, -0.07), _v(LIP_TOP, xv, -0.02)), {"au23": 0.35, "frown": 0.2})
             for xv in (-0.18, -0.09, 0.0, 0.09, 0.18)]
    cues += [Cue(tuple(_v(i, 0, dy) for i in ring), {"au24": 0.4}, thick_iod=0.035, bright=True)
             for ring, dy in ((UPPER_OUT, -0.035), (LOWER_OUT, 0.035))]
    return cues


class CueTable:
    """All cues as arrays: vertex anchors/offsets, opacity matrix (cues × features), widths, kinds."""

    def __init__(self, cues: list[Cue]) -> None:
        self.anchor = np.array([a for c in cues for a, _ in c.vertices])
        self.offset = np.array([o for c in cues for _, o in c.vertices], dtype=np.float64)
        self.bounds = np.cumsum([0] + [len(c.vertices) for c in cues])
        self.weights = np.array([[c.weights.get(f, 0.0) for f in FEATURES] for c in cues])
        self.thick = np.array([c.thick_iod for c in cues])
        self.bright = np.array([c.bright for c in cues])
        self.groove = np.array([c.groove for c in cues])
        unknown = {k for c in cues for k in c.weights} - set(FEATURES)
        if unknown:
            raise ValueError(f"cue weights name unknown features {sorted(unknown)}; expected {FEATURES}")

    def vertices(self, pts: np.ndarray) -> np.ndarray:
        """(V, 3) vertices of every cue for the deformed control points ``pts``."""
        brow_top = min(pts[idx("brow_head", "L"), 1], pts[idx("brow_head", "R"), 1])
        ext = np.vstack([pts, [[0.0, 0.0, 0.0], [0.0, brow_top, 0.1], [0.0, pts[51, 1], 0.2]]])
        return ext[self.anchor] + self.offset

    def opacity(self, texture_weights: np.ndarray, age: float, frowner: float) -> np.ndarray:
        return dot(self.weights, np.concatenate([texture_weights, [age, age * frowner]]))


CUES = CueTable(_all_cues())
