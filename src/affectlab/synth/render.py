"""Renderer: draws one frame from (identity, AU intensities, pose) with OpenCV (synthetic.md §5.6).

Every AU texture cue is drawn every frame with a colour blended between skin and its dark/bright
target by the cue opacity t(u), so at opacity 0 the stroke is invisible and no structural change
reveals the label. Drawing happens on a 2x supersampled canvas with anti-aliased, 4-bit sub-pixel
primitives, then is downscaled with area interpolation.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .face import (AU_INDEX, BROW, EYE, JAW, LOWER_IN, LOWER_OUT, UPPER_IN, UPPER_OUT, Camera,
                   Identity, Pose, both, deform, idx, texture_weight)

SS = 2
_SHIFT = 4
_AA = cv2.LINE_AA


def _ip(pts: np.ndarray) -> np.ndarray:
    return (pts * (1 << _SHIFT) + 0.5).astype(np.int32)


def _mix(a, b, t: float):
    t = min(max(float(t), 0.0), 1.0)
    return (a[0] * (1 - t) + b[0] * t, a[1] * (1 - t) + b[1] * t, a[2] * (1 - t) + b[2] * t)


class _Canvas:
    def __init__(self, img, cam: Camera, skin):
        self.img, self.cam, self.skin = img, cam, tuple(float(x) for x in skin)
        self.dark = tuple(x * 0.35 for x in self.skin)
        self.bright = tuple(min(x * 1.25 + 25, 255.0) for x in self.skin)

    def poly(self, pts3, colour):
        cv2.fillPoly(self.img, [_ip(self.cam.project(pts3))], colour, _AA, _SHIFT)

    def line(self, pts3, colour, thick_iod=0.02):
        t = max(1, int(round(thick_iod * self.cam.s)))
        cv2.polylines(self.img, [_ip(self.cam.project(pts3))], False, colour, t, _AA, _SHIFT)

    def cue(self, pts3, alpha, thick_iod=0.022, bright=False):
        if alpha <= 1e-4:   # a skin-coloured stroke on skin: skipping it leaves the pixels unchanged
            return
        self.line(pts3, _mix(self.skin, self.bright if bright else self.dark, alpha), thick_iod)

    def ellipse(self, c3, ax_iod, colour, angle=0.0):
        c = self.cam.project(np.asarray(c3, dtype=float)[None])[0]
        ax = (max(1, int(ax_iod[0] * self.cam.s * 16)), max(1, int(ax_iod[1] * self.cam.s * 16)))
        cv2.ellipse(self.img, (int(c[0] * 16), int(c[1] * 16)), ax, angle, 0, 360, colour, -1, _AA, _SHIFT)


def _background(ident: Identity, W: int, H: int) -> np.ndarray:
    """Per-identity gradient background, cached on the identity object itself."""
    key = ("bg", W, H)
    if key not in ident.cache:
        bg_a, bg_b, bg_ang = ident.bg
        gx = np.linspace(-1, 1, W, dtype=np.float32)[None, :] * np.cos(bg_ang)
        gy = np.linspace(-1, 1, H, dtype=np.float32)[:, None] * np.sin(bg_ang)
        g = ((gx + gy) * 0.5 + 0.5)[..., None]
        ident.cache[key] = (np.asarray(bg_a, np.float32) * (1 - g) + np.asarray(bg_b, np.float32) * g
                            ).astype(np.uint8)
    return ident.cache[key]


def _arc(a, b, bow, n=6):
    """Polyline from a to b bowed by `bow` IOD in -y (upward)."""
    t = np.linspace(0, 1, n)[:, None]
    p = a[None] * (1 - t) + b[None] * t
    p[:, 1] -= bow * np.sin(np.pi * t[:, 0])
    return p


def _p(x, y, z=0.1):
    return np.array([x, y, z], dtype=float)


@dataclass(frozen=True)
class Occluder:
    """A hand entering the lower face or a hand-held microphone (synthetic.md §5.6 step 8).

    ``reach`` 0 keeps it outside the face, 1 puts it over the mouth; ``side`` −1/+1 is the side it
    comes from; ``colour`` is BGR (the hand's skin or the microphone's body).
    """

    kind: str
    side: int
    reach: float
    colour: tuple[float, float, float]


def _draw_occluder(cv: _Canvas, mouth: np.ndarray, occ: Occluder) -> None:
    """Drawn last, in front of the face (z = 0.75 IOD), moving with the head."""
    s, r = occ.side, float(np.clip(occ.reach, 0.0, 1.0))
    if occ.kind == "hand":
        palm = np.array([s * (1.9 - 1.6 * r), mouth[1] + 1.05 - 0.8 * r, 0.75])
        cv.ellipse(palm, (0.36, 0.44), occ.colour, angle=-25.0 * s)
        for k, dx in enumerate((-0.21, -0.07, 0.07, 0.21)):
            base = palm + [dx - 0.1 * s, -0.3, 0.0]
            tip = base + [-0.22 * s, -0.38 - 0.06 * (k in (1, 2)), 0.0]
            cv.line(np.stack([base, tip]), occ.colour, 0.11)
        cv.line(np.stack([palm + [0.3 * s, -0.05, 0], palm + [0.05 * s, -0.45, 0]]),
                _mix(occ.colour, (0, 0, 0), 0.25), 0.012)  # a crease so the hand is not a flat blob
    elif occ.kind == "microphone":
        head = np.array([s * (0.85 - 0.6 * r), mouth[1] + 0.45 - 0.3 * r, 0.75])
        cv.line(np.stack([head + [0, 0.1, 0], head + [0.3 * s, 1.6, 0]]), occ.colour, 0.12)
        cv.ellipse(head, (0.2, 0.24), _mix(occ.colour, (90, 90, 90), 0.5))
    else:
        raise ValueError(f"unknown occluder kind {occ.kind!r}; expected 'hand' or 'microphone'")


def render_face(ident: Identity, u: np.ndarray, pose: Pose, size: tuple[int, int], blink: float = 0.0,
                rng: np.random.Generator | None = None, noise: float = 2.0, light=(0.0, 0.0),
                downup: int = 1, occluder: Occluder | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render one BGR uint8 frame of size (w, h) and return it with the 68 landmarks (output px)."""
    w, h = size
    cam = Camera(pose, w, h, SS)
    W, H = w * SS, h * SS
    img = _background(ident, W, H).copy()

    pts = deform(ident.base, np.asarray(u, dtype=float), ident.gain, blink)
    cv = _Canvas(img, cam, ident.skin)
    tw = {au: float(texture_weight(u[k])) for au, k in AU_INDEX.items()}
    skin = tuple(float(x) for x in ident.skin)

    # Neck and shoulders, hair back, ears, skin.
    cv.poly(np.array([[-0.55, 1.4, -0.9], [0.55, 1.4, -0.9], [0.6, 2.6, -0.9], [-0.6, 2.6, -0.9]]),
            _mix(skin, (0, 0, 0), 0.15))
    cv.poly(np.array([[-2.2, 2.3, -1.0], [2.2, 2.3, -1.0], [2.6, 4.0, -1.0], [-2.6, 4.0, -1.0]]),
            tuple(ident.clothing))
    c, ax, ang = cam.head_ellipse(axes=np.array([1.16, 1.55, 1.15]))
    if ident.hair_style > 0:
        cv2.ellipse(img, (int(c[0] * 16), int(c[1] * 16)), (int(ax[0] * 16), int(ax[1] * 16)), ang,
                    0, 360, tuple(ident.hair), -1, _AA, _SHIFT)
    for s in (-1, 1):
        cv.ellipse(_p(1.1 * s, 0.35, -0.95), (0.12, 0.22), _mix(skin, (0, 0, 0), 0.1))
    c, ax, ang = cam.head_ellipse()
    cv2.ellipse(img, (int(c[0] * 16), int(c[1] * 16)), (int(ax[0] * 16), int(ax[1] * 16)), ang,
                0, 360, skin, -1, _AA, _SHIFT)
    jaw = pts[JAW].copy()
    cv.poly(np.vstack([jaw, _p(1.0, -0.3, -0.5)[None], _p(-1.0, -0.3, -0.5)[None]]), skin)
    # Hair cap (fringe style 2 reaches lower on the forehead).
    if ident.hair_style > 0:
        top = -1.05 if ident.hair_style == 1 else -0.8
        xs = np.linspace(-1.08, 1.08, 9)
        cap = np.c_[xs, top - 0.25 * (1 - xs ** 2) * (ident.hair_style == 1) + 0.15 * xs ** 2, np.full(9, 0.0)]
        crown = np.c_[xs[::-1], -1.75 + 0.4 * xs[::-1] ** 2, np.full(9, -0.6)]
        cv.poly(np.vstack([cap, crown]), tuple(ident.hair))
    if ident.beard:
        cv.poly(np.vstack([pts[JAW[3:14]], pts[[54, 57, 48]] + [0, 0.06, 0]]), _mix(skin, tuple(ident.hair), 0.55))

    # Shading cues: cheeks (AU6, AU12), cheekbone hollow (AU26), chin sides (AU15), AO under the nose.
    for side in "LR":
        ck = pts[idx("cheek", side)]
        sx = 1 if side == "R" else -1
        if tw[6] + tw[12] > 0:
            cv.ellipse(ck, (0.17, 0.12), _mix(skin, cv.bright, 0.35 * tw[6] + 0.2 * tw[12]))
        if tw[26] > 0:
            cv.ellipse(ck + [0.18 * sx, 0.32, 0], (0.12, 0.2), _mix(skin, cv.dark, 0.25 * tw[26]))
        if tw[15] > 0:
            cv.ellipse(pts[48 if side == "L" else 54] + [0.05 * sx, 0.2, 0], (0.07, 0.1),
                       _mix(skin, cv.dark, 0.3 * tw[15]))
    for f in ident.freckles:
        cv.ellipse(f, (0.012, 0.012), _mix(skin, cv.dark, 0.4))

    # Wrinkle cues.
    bh = {s: pts[idx("brow_head", s)] for s in "LR"}
    by = min(bh["L"][1], bh["R"][1])
    for k, off in enumerate((0.25, 0.37, 0.49)):
        a = 0.5 * tw[1] + (ident.static_lines * 0.4 if k < 2 else 0)
        cv.cue(_arc(_p(-0.36, by - off), _p(0.36, by - off), 0.05), a)
    for side in "LR":
        sx = 1 if side == "R" else -1
        tail = pts[idx("brow_tail", side)]
        peak = pts[idx("brow_peak", side)]
        for off in (0.18, 0.30):
            cv.cue(np.array([tail + [0, -off, 0], peak + [0, -off - 0.02, 0], peak + [-0.2 * sx, -off, 0]]),
                   0.45 * tw[2])
        hd = bh[side]
        cv.cue(np.array([hd + [0.10 * sx, -0.06, 0], hd + [0.12 * sx, 0.14, 0]]), 0.6 * tw[4])
        eo = pts[idx("eye_out", side)]
        for ang in (-25, 0, 25):
            d = np.array([np.cos(np.radians(ang)) * sx, np.sin(np.radians(ang)), 0])
            cv.cue(np.array([eo + 0.05 * d, eo + 0.17 * d]), 0.55 * tw[6] + 0.3 * ident.static_lines)
        ll, lm = pts[idx("eye_ll", side)], pts[idx("eye_lm", side)]
        cv.cue(np.array([eo, ll + [0, 0.09, 0], lm + [0, 0.08, 0], pts[idx("eye_in", side)]]) + [0, 0.02, 0],
               0.45 * tw[6])
        cv.cue(np.array([eo, ll, lm, pts[idx("eye_in", side)]]) + [0, 0.018, 0], 0.5 * tw[7], bright=True,
               thick_iod=0.03)
        nt, nm, nb = (pts[idx(n, side)] for n in ("nlf_top", "nlf_mid", "nlf_bot"))
        cv.cue(np.array([nt, nm]), 0.55 * tw[10] + 0.45 * tw[9] + 0.5 * tw[12] + ident.static_lines)
        cv.cue(np.array([nm, nb]), 0.5 * tw[12] + 0.6 * ident.static_lines)
        cv.cue(np.array([nt + [0.02 * sx, -0.04, 0], nt + [0.06 * sx, 0.02, 0]]), 0.55 * tw[10])
        mc = pts[48 if side == "L" else 54]
        cv.cue(np.array([mc + [0.06 * sx, -0.04, 0], mc + [0.08 * sx, 0.0, 0], mc + [0.06 * sx, 0.04, 0]]),
               0.6 * tw[14])
        cv.cue(np.array([mc + [0.02 * sx, 0.06, 0], mc + [0.06 * sx, 0.12, 0]]), 0.45 * tw[15])
        for dy in (-0.02, 0.03):
            cv.cue(np.array([mc + [0.06 * sx, dy, 0], mc + [0.13 * sx, dy + 0.01, 0]]), 0.4 * tw[20])
    cv.cue(np.array([_p(-0.08, -0.15), _p(0.08, -0.15)]), 0.25 * tw[4] + 0.35 * tw[9])
    for k in range(4):
        y0 = 0.0 + 0.06 * k
        cv.cue(np.array([_p(-0.12, y0 + 0.03, 0.2), _p(0, y0, 0.25), _p(0.12, y0 + 0.03, 0.2)]), 0.6 * tw[9])
    chin = pts[idx("chin")]
    if tw[17] > 0:
        for s in ident.stipple:
            cv.ellipse(chin + s, (0.016, 0.016), _mix(skin, cv.dark, 0.55 * tw[17]))
    ml = pts[idx("mentolabial")]
    cv.cue(np.array([ml + [-0.16, 0.02, 0], ml, ml + [0.16, 0.02, 0]]), 0.55 * tw[17], thick_iod=0.03)
    for xv in (-0.18, -0.09, 0.0, 0.09, 0.18):
        top = pts[51][1] - 0.07
        cv.cue(np.array([_p(xv, top, 0.2), _p(xv, top + 0.05, 0.2)]), 0.35 * tw[23])
    cv.cue(pts[UPPER_OUT] + [0, -0.035, 0], 0.4 * tw[24], bright=True, thick_iod=0.035)
    cv.cue(pts[LOWER_OUT] + [0, 0.035, 0], 0.4 * tw[24], bright=True, thick_iod=0.035)

    # Eyes: sclera, iris, then skin lids covering what is outside the aperture.
    for side in "LR":
        e = pts[EYE[side]]
        cv.poly(e, (235, 238, 240))
        ir = pts[idx("iris", side)]
        cv.ellipse(ir, (0.092, 0.092), tuple(ident.iris))
        cv.ellipse(ir, (0.04, 0.04), (15, 15, 15))
        up = e[[0, 1, 2, 3]]
        cv.poly(np.vstack([up, up[::-1] + [0, -0.16, 0]]), skin)
        lo = e[[0, 5, 4, 3]]
        cv.poly(np.vstack([lo, lo[::-1] + [0, 0.14, 0]]), skin)
        cv.line(up, (25, 25, 30), 0.025 + 0.02 * blink)
        crease = np.vstack([e[0] + [0, -0.04, 0], pts[idx("crease_lat", side)], pts[idx("crease_med", side)],
                            e[3] + [0, -0.04, 0]])
        cv.line(crease, _mix(skin, cv.dark, 0.35 * (1 - tw[5])), 0.015)
        b = pts[BROW[side]]
        thick = ident.brow_thick * np.array([0.5, 0.8, 1.0, 1.0, 0.9])[:, None]
        cv.poly(np.vstack([b + np.c_[np.zeros(5), -thick[:, 0] * 0.6, np.zeros(5)],
                           (b + np.c_[np.zeros(5), thick[:, 0] * 0.4, np.zeros(5)])[::-1]]),
                tuple(ident.brow_colour))
    # Nose.
    cv.line(pts[[31, 32, 33, 34, 35]] + [0, -0.01, 0], _mix(skin, cv.dark, 0.45), 0.02)
    for i in (31, 35):
        cv.line(np.array([pts[i] + [0, -0.09, 0], pts[i]]), _mix(skin, cv.dark, 0.3), 0.02)
    cv.line(pts[[27, 28, 29]], _mix(skin, cv.bright, 0.3), 0.03)
    # Mouth: cavity, teeth, lips.
    cav = pts[UPPER_IN + LOWER_IN[1:-1]]
    cv.poly(cav, (35, 30, 45))
    gap = float(np.max(pts[[65, 66, 67], 1] - pts[[63, 62, 61], 1]))
    if gap > 0.03:
        th = min(gap - 0.02, 0.05)
        up = pts[UPPER_IN]
        cv.poly(np.vstack([up, up[::-1] + [0, th, 0]]), (215, 225, 228))
        if gap > 0.12:
            lo = pts[LOWER_IN]
            cv.poly(np.vstack([lo, lo[::-1] + [0, -0.04, 0]]), (200, 210, 215))
    lipc = _mix(tuple(ident.lip), tuple(ident.lip * 0.8), 0.05 * tw[23])
    cv.poly(np.vstack([pts[UPPER_OUT], pts[UPPER_IN][::-1]]), lipc)
    cv.poly(np.vstack([pts[LOWER_OUT], pts[LOWER_IN][::-1]]), _mix(lipc, (255, 255, 255), 0.08))
    cv.line(pts[UPPER_IN], _mix(lipc, (10, 10, 10), 0.4 + 0.4 * tw[24]), 0.015)
    if ident.glasses:
        for side in "LR":
            ir = pts[idx("iris", side)]
            c = cam.project(ir[None] + [0, 0, 0.25])[0]
            r = int(0.24 * cam.s * 16)
            cv2.ellipse(img, (int(c[0] * 16), int(c[1] * 16)), (r, int(r * 0.75)), 0, 0, 360,
                        (30, 30, 30), max(1, int(0.03 * cam.s)), _AA, _SHIFT)
        cv.line(np.array([[-0.26, -0.02, 0.35], [0.26, -0.02, 0.35]]), (30, 30, 30), 0.03)
    if occluder is not None and occluder.reach > 0:
        _draw_occluder(cv, pts[48:68].mean(0), occluder)

    out = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    if downup > 1:
        small = cv2.resize(out, (max(8, w // downup), max(8, h // downup)), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if light != (0.0, 0.0) or (rng is not None and noise > 0):
        f = out.astype(np.float32)
        if light != (0.0, 0.0):
            lx = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None] * light[0]
            ly = np.linspace(-1, 1, h, dtype=np.float32)[:, None, None] * light[1]
            f *= 1.0 + lx + ly
        if rng is not None and noise > 0:
            f += rng.standard_normal((h, w, 1), dtype=np.float32) * noise
        out = np.clip(f, 0, 255).astype(np.uint8)
    lm = cam.project(pts[:68]) / SS
    return out, lm


__all__ = ["render_face", "Pose", "both"]
