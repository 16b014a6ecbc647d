"""Renderer: draws one frame from (identity, AU intensities, pose, lighting) with OpenCV (synthetic.md §5.6).

Every AU texture cue is drawn every frame with a colour blended between skin and its dark/bright
target by the cue opacity t(u), so at opacity 0 the stroke is invisible and no structural change
reveals the label. Generator v3 also draws the face's relief into a height map (head dome, nose,
brow ridge, cheeks, lips, chin; wrinkles and furrows as grooves) and shades the albedo with a
coloured directional light plus ambient (Lambertian), so a furrow reads as a bright/dark pair whose
polarity follows the light, as on real faces. Skin texture (blotches, pores, moles) is an
identity-fixed albedo map that moves with the head.

Drawing is batched: every primitive is recorded in face coordinates, all points are projected in one
call, then drawn in order with anti-aliased, 4-bit sub-pixel OpenCV primitives at the output size.

Above ~350 lines: the display list, the canvas, shading and ``render_face`` stay together so the order
in which a frame is drawn (and so what occludes what) reads in one place.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .cues import CUES, CueTable
from .face import (AUS, BROW, EYE, JAW, LOWER_IN, LOWER_OUT, UPPER_IN, UPPER_OUT, Camera, Identity, Pose, both,
                   deform, idx, texture_weight)

_SHIFT = 4
_AA = cv2.LINE_AA


def _mix(a, b, t: float):
    t = min(max(float(t), 0.0), 1.0)
    return (a[0] * (1 - t) + b[0] * t, a[1] * (1 - t) + b[1] * t, a[2] * (1 - t) + b[2] * t)


@dataclass(frozen=True)
class Lighting:
    """A coloured directional key light plus ambient light (Lambertian shading of the 2.5D face).

    ``direction`` points from the face toward the light (image x right, y down, z toward the
    camera); ``colour`` and ``ambient_colour`` are BGR gains; ``ambient`` is the share of ambient
    light. A flat, camera-facing surface under the default frontal white light keeps its albedo.
    """

    direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.4
    ambient_colour: tuple[float, float, float] = (1.0, 1.0, 1.0)


FRONTAL = Lighting()


class _DisplayList:
    """Primitives in face coordinates, projected once and drawn in recording order."""

    def __init__(self, cam: Camera) -> None:
        self.cam, self.points, self.ops, self.n = cam, [], [], 0

    def _add(self, pts3) -> tuple[int, int]:
        pts3 = np.asarray(pts3, dtype=np.float64).reshape(-1, 3)
        self.points.append(pts3)
        a = self.n
        self.n += len(pts3)
        return a, self.n

    def poly(self, pts3, value) -> None:
        self.ops.append(("poly", *self._add(pts3), value, 0))

    def line(self, pts3, value, thick_iod: float = 0.02) -> None:
        self.ops.append(("line", *self._add(pts3), value, max(1, int(round(thick_iod * self.cam.s)))))

    def _axes(self, ax_iod) -> tuple[int, int]:
        return max(1, int(ax_iod[0] * self.cam.s * 16)), max(1, int(ax_iod[1] * self.cam.s * 16))

    def ellipse(self, c3, ax_iod, value, angle: float = 0.0) -> None:
        self.ops.append(("ellipse", *self._add(c3), value, (self._axes(ax_iod), angle)))

    def ellipses(self, centres3, ax_iod, value) -> None:
        """One filled ellipse of the same axes and value at each of the centres (freckles, stipple)."""
        a, b = self._add(centres3)
        ax = self._axes(ax_iod)
        self.ops.extend(("ellipse", i, i + 1, value, (ax, 0.0)) for i in range(a, b))

    def rim(self, c3, radius_iod: float, thick_iod: float, value) -> None:
        """A spectacle rim: an ellipse outline (width 1, height 0.75) around c3."""
        r = int(radius_iod * self.cam.s * 16)
        self.ops.append(("rim", *self._add(c3), value, ((r, int(r * 0.75)), max(1, int(thick_iod * self.cam.s)))))

    def polylines(self, pts3: np.ndarray, bounds: np.ndarray, keep: np.ndarray, values: list,
                  thick_px: np.ndarray) -> None:
        """Many open polylines sharing one point array: polyline k is pts3[bounds[k]:bounds[k+1]]."""
        a, _ = self._add(pts3)
        for k in np.flatnonzero(keep):
            self.ops.append(("line", a + int(bounds[k]), a + int(bounds[k + 1]), values[k], int(thick_px[k])))

    def raw_ellipse(self, centre, axes, angle, value) -> None:
        """An ellipse already in pixels (the projected head)."""
        self.ops.append(("raw", 0, 0, value, (centre, axes, angle)))

    def draw(self, img: np.ndarray, aa: bool = True) -> None:
        if not self.ops:
            return
        px = (self.cam.project(np.concatenate(self.points)) * (1 << _SHIFT) + 0.5).astype(np.int32)
        centre = px.tolist()   # Python ints: indexing the array per ellipse cost more than drawing it
        lt = _AA if aa else cv2.LINE_8
        for kind, a, b, value, extra in self.ops:
            if kind == "ellipse":
                (ax, angle) = extra
                cv2.ellipse(img, centre[a], ax, angle, 0, 360, value, -1, lt, _SHIFT)
            elif kind == "line":
                cv2.polylines(img, [px[a:b]], False, value, extra, lt, _SHIFT)
            elif kind == "poly":
                cv2.fillPoly(img, [px[a:b]], value, lt, _SHIFT)
            elif kind == "rim":
                axes, th = extra
                cv2.ellipse(img, centre[a], axes, 0, 0, 360, value, th, lt, _SHIFT)
            else:
                c, axes, angle = extra
                cv2.ellipse(img, (int(c[0] * 16), int(c[1] * 16)), (int(axes[0] * 16), int(axes[1] * 16)), angle,
                            0, 360, value, -1, lt, _SHIFT)


class _Canvas:
    """Colour display list plus a relief (height, IOD units) display list."""

    def __init__(self, cam: Camera, skin) -> None:
        self.cam, self.skin = cam, tuple(float(x) for x in skin)
        self.dark = tuple(x * 0.35 for x in self.skin)
        self.bright = tuple(min(x * 1.25 + 25, 255.0) for x in self.skin)
        # relief: fine grooves (lightly blurred) and broad bumps (blurred to smooth hills)
        self.colour, self.relief, self.hills = _DisplayList(cam), _DisplayList(cam), _DisplayList(cam)

    def poly(self, pts3, colour):
        self.colour.poly(pts3, colour)

    def line(self, pts3, colour, thick_iod=0.02):
        self.colour.line(pts3, colour, thick_iod)

    def ellipse(self, c3, ax_iod, colour, angle=0.0):
        self.colour.ellipse(c3, ax_iod, colour, angle)

    def cues(self, table: CueTable, pts: np.ndarray, texture_weights: np.ndarray, age: float, frowner: float) -> None:
        """Every cue of ``table`` at its opacity: tinted strokes, and grooves for the dark ones."""
        alpha = table.opacity(texture_weights, age, frowner)
        on = alpha > 1e-4
        if not on.any():
            return
        verts = table.vertices(pts)
        skin = np.asarray(self.skin)
        target = np.where(table.bright[:, None], np.asarray(self.bright), np.asarray(self.dark))
        colours = skin + (target - skin) * np.clip(0.4 * alpha, 0.0, 1.0)[:, None]
        s = self.cam.s
        self.colour.polylines(verts, table.bounds, on, [tuple(c) for c in colours.tolist()],
                              np.maximum(1, np.round(table.thick * s)))
        depth = (-table.groove * np.minimum(alpha, 1.5)).tolist()
        self.relief.polylines(verts, table.bounds, on & ~table.bright & (table.groove > 0), depth,
                              np.maximum(1, np.round(1.5 * table.thick * s)))

    def bump(self, c3, ax_iod, height, angle=0.0):
        self.hills.ellipse(c3, ax_iod, float(height), angle)


#: brow thickness along tail → head, as a (5, 3) offset direction (+y)
_BROW_PROFILE = np.array([[0, 0.5, 0], [0, 0.8, 0], [0, 1.0, 0], [0, 1.0, 0], [0, 0.9, 0]])


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


def plain_background(ident: Identity, w: int, h: int) -> np.ndarray:
    """Per-identity two-colour gradient (the background when a track brings none)."""
    key = ("bg", w, h)
    if key not in ident.cache:
        bg_a, bg_b, bg_ang = ident.bg
        gx = np.linspace(-1, 1, w, dtype=np.float32)[None, :] * np.cos(bg_ang)
        gy = np.linspace(-1, 1, h, dtype=np.float32)[:, None] * np.sin(bg_ang)
        g = ((gx + gy) * 0.5 + 0.5)[..., None]
        ident.cache[key] = (np.asarray(bg_a, np.float32) * (1 - g) + np.asarray(bg_b, np.float32) * g
                            ).astype(np.uint8)
    return ident.cache[key]


def cluttered_background(rng: np.random.Generator, ident: Identity, w: int, h: int, shapes: int) -> np.ndarray:
    """The identity's gradient with ``shapes`` random rectangles, discs and bars (a room behind the face)."""
    img = plain_background(ident, w, h).copy()
    for _ in range(shapes):
        colour = tuple(float(c) for c in rng.uniform(10, 245, 3))
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.05, 0.4) * max(w, h)
        kind = rng.integers(3)
        if kind == 0:
            cv2.rectangle(img, (int(x), int(y)), (int(x + r * rng.uniform(0.3, 1.5)), int(y + r)), colour, -1)
        elif kind == 1:
            cv2.circle(img, (int(x), int(y)), int(r / 2), colour, -1, _AA)
        else:
            cv2.line(img, (int(x), 0), (int(x + rng.uniform(-0.3, 0.3) * w), h), colour,
                     max(1, int(r / 8)), _AA)
    return cv2.GaussianBlur(img, (0, 0), 0.8)


def _dome(head: tuple, depth: float, w: int, h: int) -> np.ndarray:
    """Height (px) of the head ellipsoid over the image: depth·sqrt(1 − r²) inside the head outline
    ``head`` = (centre, axes, angle in degrees) in pixels."""
    c, ax, ang = head
    t = np.radians(ang)
    xs = np.arange(w, dtype=np.float32) - np.float32(c[0])
    ys = np.arange(h, dtype=np.float32)[:, None] - np.float32(c[1])
    u = (xs * np.float32(np.cos(t)) + ys * np.float32(np.sin(t))) / np.float32(ax[0])
    v = (-xs * np.float32(np.sin(t)) + ys * np.float32(np.cos(t))) / np.float32(ax[1])
    r2 = np.minimum(u * u + v * v, 1.0)
    return np.sqrt(1.0 - r2) * np.float32(depth)


def _aligned_empty(shape: tuple[int, ...]) -> np.ndarray:
    """An empty float32 array starting on a 64-byte boundary. OpenCV 4.11's ``magnitude`` rounds some
    lanes differently by where its output starts (measured: 8 distinct results over the 16 float
    offsets of a 64-byte line), so on numpy's 16-byte-aligned arrays the same frame rendered to other
    bytes in another process; on a fixed alignment it is reproducible."""
    n = int(np.prod(shape))
    buf = np.empty(n + 16, np.float32)
    start = (-buf.ctypes.data % 64) // 4
    return buf[start:start + n].reshape(shape)


def shading(height_px: np.ndarray, light: Lighting) -> np.ndarray:
    """Per-pixel BGR light gain of a height field (px) under ``light`` (Lambertian + ambient)."""
    gx = cv2.Sobel(height_px, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(height_px, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    direction = np.asarray(light.direction, dtype=np.float64)
    lx, ly, lz = (float(v) for v in direction / np.sqrt(np.sum(direction * direction)))
    norm = _aligned_empty(gx.shape)
    cv2.magnitude(gx, gy, norm)
    cv2.multiply(norm, norm, dst=norm)
    norm += 1.0
    np.sqrt(norm, out=norm)
    ndotl = cv2.addWeighted(gx, -lx, gy, -ly, lz)
    np.divide(ndotl, norm, out=ndotl)
    np.maximum(ndotl, 0.0, out=ndotl)
    key = np.asarray(light.colour, np.float32) * np.float32(1.0 - light.ambient)
    amb = np.asarray(light.ambient_colour, np.float32) * np.float32(light.ambient)
    # rows of w·3 values times the BGR gains tiled along them: broadcasting (h, w, 1) against (3,) ran numpy's
    # inner loop over 3 values at a time (12× slower, same products)
    h, w = ndotl.shape
    gain = cv2.cvtColor(ndotl, cv2.COLOR_GRAY2BGR).reshape(h, w * 3)
    gain *= np.tile(key, w)
    gain += np.tile(amb, w)
    return gain.reshape(h, w, 3)


def _texture_warp(ident: Identity, cam: Camera, w: int, h: int) -> np.ndarray | None:
    """The identity's skin-albedo map (face coordinates) warped to the image (1 = unchanged)."""
    tex = ident.texture
    if tex is None:
        return None
    n = tex.shape[0]
    lo, span = ident.texture_origin, ident.texture_span
    src = np.float32([[0, 0], [n, 0], [0, n]])
    face = np.array([[lo[0], lo[1], 0.15], [lo[0] + span, lo[1], 0.15], [lo[0], lo[1] + span, 0.15]])
    dst = cam.project(face).astype(np.float32)
    m = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(tex, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)


def render_face(ident: Identity, u: np.ndarray, pose: Pose, size: tuple[int, int], blink: float = 0.0,
                rng: np.random.Generator | None = None, noise: float = 2.0, lighting: Lighting = FRONTAL,
                downup: int = 1, occluder: Occluder | None = None, background: np.ndarray | None = None,
                blur: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Render one BGR uint8 frame of size (w, h) and return it with the 68 landmarks (output px)."""
    w, h = size
    cam = Camera(pose, w, h, 1)
    img = (plain_background(ident, w, h) if background is None else background).copy()

    pts = deform(ident.base, np.asarray(u, dtype=float), ident.gain, blink)
    cv = _Canvas(cam, ident.skin)
    twa = texture_weight(np.clip(np.asarray(u, dtype=float), 0.0, 5.0))
    tw = dict(zip(AUS, twa.tolist()))
    skin = tuple(float(x) for x in ident.skin)
    age = ident.static_lines

    # Neck and shoulders, hair back, ears, skin.
    cv.poly(np.array([[-0.55, 1.4, -0.9], [0.55, 1.4, -0.9], [0.6, 2.6, -0.9], [-0.6, 2.6, -0.9]]),
            _mix(skin, (0, 0, 0), 0.15))
    cv.poly(np.array([[-2.2, 2.3, -1.0], [2.2, 2.3, -1.0], [2.6, 4.0, -1.0], [-2.6, 4.0, -1.0]]),
            tuple(ident.clothing))
    if ident.hair_style > 0:
        cv.colour.raw_ellipse(*cam.head_ellipse(axes=np.array([1.16, 1.55, 1.15])), tuple(ident.hair))
    for s in (-1, 1):
        cv.ellipse(_p(1.1 * s, 0.35, -0.95), (0.12, 0.22), _mix(skin, (0, 0, 0), 0.1))
    head = cam.head_ellipse()
    cv.colour.raw_ellipse(*head, skin)
    jaw = pts[JAW].copy()
    cv.poly(np.vstack([jaw, _p(1.0, -0.3, -0.5)[None], _p(-1.0, -0.3, -0.5)[None]]), skin)
    if ident.beard:
        cv.poly(np.vstack([pts[JAW[3:14]], pts[[54, 57, 48]] + [0, 0.06, 0]]), _mix(skin, tuple(ident.hair), 0.55))

    # Relief that is not an AU: nose, brow ridge, eye sockets, cheekbones, lips, chin.
    cv.hills.line(pts[[27, 28, 29, 30]], 0.30, 0.16)
    cv.hills.line(pts[[29, 30]], 0.42, 0.12)
    for side in "LR":
        sx = 1 if side == "R" else -1
        cv.bump(pts[idx("brow_peak", side)] + [0, -0.05, 0], (0.3, 0.09), 0.06)
        cv.bump(pts[idx("iris", side)] + [0, 0.0, 0], (0.25, 0.13), -0.05)
        # cheek raiser (AU6) and lip-corner puller (AU12) bulge the cheek
        cv.bump(pts[idx("cheek", side)] + [0.04 * sx, 0, 0], (0.2, 0.15), 0.05 + 0.1 * tw[6] + 0.08 * tw[12])
    cv.bump(pts[[51, 57]].mean(0), (0.3, 0.13), 0.05)
    cv.bump(pts[idx("chin")], (0.25, 0.18), 0.07 + 0.1 * tw[17])

    # Shading cues: cheeks (AU6, AU12), cheekbone hollow (AU26), chin sides (AU15).
    for side in "LR":
        ck = pts[idx("cheek", side)]
        sx = 1 if side == "R" else -1
        if ident.blush > 0:
            cv.ellipse(ck, (0.2, 0.13), _mix(skin, (90, 80, 230), ident.blush))
        if tw[6] + tw[12] > 0:
            cv.ellipse(ck, (0.17, 0.12), _mix(skin, cv.bright, 0.25 * tw[6] + 0.15 * tw[12]))
        if tw[26] > 0:
            cv.ellipse(ck + [0.18 * sx, 0.32, 0], (0.12, 0.2), _mix(skin, cv.dark, 0.2 * tw[26]))
            cv.bump(ck + [0.18 * sx, 0.32, 0], (0.12, 0.2), -0.04 * tw[26])
        if tw[15] > 0:
            cv.ellipse(pts[48 if side == "L" else 54] + [0.05 * sx, 0.2, 0], (0.07, 0.1),
                       _mix(skin, cv.dark, 0.25 * tw[15]))
    if len(ident.freckles):
        cv.colour.ellipses(ident.freckles, (0.012, 0.012), _mix(skin, cv.dark, 0.4))

    # Wrinkle, fold and furrow cues (AU) and the static lines of age at the same places (cues.py).
    cv.cues(CUES, pts, twa, age, ident.frowner)
    chin = pts[idx("chin")]
    if tw[17] > 0 and len(ident.stipple):
        dots = chin + ident.stipple
        cv.colour.ellipses(dots, (0.016, 0.016), _mix(skin, cv.dark, 0.45 * tw[17]))
        cv.relief.ellipses(dots, (0.02, 0.02), -0.015 * tw[17])

    if ident.hair_style > 0:   # hair cap over the forehead lines (fringe style 2 reaches lower on the forehead)
        top = -1.05 if ident.hair_style == 1 else -0.8
        xs = np.linspace(-1.08, 1.08, 9)
        cap = np.stack([xs, top - 0.25 * (1 - xs ** 2) * (ident.hair_style == 1) + 0.15 * xs ** 2, np.zeros(9)], 1)
        crown = np.stack([xs[::-1], -1.75 + 0.4 * xs[::-1] ** 2, np.full(9, -0.6)], 1)
        cv.poly(np.vstack([cap, crown]), tuple(ident.hair))
    # Eyes: sclera, iris, then skin lids covering what is outside the aperture.
    for side in "LR":
        e = pts[EYE[side]]
        cv.poly(e, (235, 238, 240))
        ir = pts[idx("iris", side)]
        cv.ellipse(ir, (0.092, 0.092), tuple(ident.iris))
        cv.ellipse(ir, (0.04, 0.04), (15, 15, 15))
        up = e[[0, 1, 2, 3]]
        cv.poly(np.vstack([up, up[::-1] + [0, -0.16, 0]]), _mix(skin, ident.eyeshadow[:3], ident.eyeshadow[3]))
        lo = e[[0, 5, 4, 3]]
        cv.poly(np.vstack([lo, lo[::-1] + [0, 0.14, 0]]), skin)
        cv.line(up, (25, 25, 30), 0.025 + 0.02 * blink)
        crease = np.vstack([e[0] + [0, -0.04, 0], pts[idx("crease_lat", side)], pts[idx("crease_med", side)],
                            e[3] + [0, -0.04, 0]])
        cv.line(crease, _mix(skin, cv.dark, 0.35 * (1 - tw[5])), 0.015)
        b = pts[BROW[side]]
        thick = ident.brow_thick * _BROW_PROFILE
        cv.poly(np.vstack([b - 0.6 * thick, (b + 0.4 * thick)[::-1]]), tuple(ident.brow_colour))
    # Nose.
    cv.line(pts[[31, 32, 33, 34, 35]] + [0, -0.01, 0], _mix(skin, cv.dark, 0.45), 0.02)
    for i in (31, 35):
        cv.line(np.array([pts[i] + [0, -0.09, 0], pts[i]]), _mix(skin, cv.dark, 0.3), 0.02)
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
            ir = pts[idx("iris", side)] + [0, 0, 0.25]
            cv.colour.rim(ir, 0.24, 0.03, (30, 30, 30))
        cv.line(np.array([[-0.26, -0.02, 0.35], [0.26, -0.02, 0.35]]), (30, 30, 30), 0.03)
    if occluder is not None and occluder.reach > 0:
        _draw_occluder(cv, pts[48:68].mean(0), occluder)

    cv.colour.draw(img)
    fine, broad = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    cv.relief.draw(fine, aa=False)
    cv.hills.draw(broad, aa=False)
    # in-place float32 arithmetic throughout (same operations and order, fewer full-frame temporaries)
    height = cv2.GaussianBlur(fine, (0, 0), max(0.6, 0.025 * cam.s))
    height += cv2.GaussianBlur(broad, (0, 0), max(1.0, 0.09 * cam.s))
    height *= np.float32(cam.s)
    height += _dome(head, 0.9 * cam.s, w, h)
    f = img.astype(np.float32)
    tex = _texture_warp(ident, cam, w, h)
    if tex is not None:
        f *= cv2.cvtColor(tex, cv2.COLOR_GRAY2BGR)
    f *= shading(height, lighting)
    if blur > 0.3:
        f = cv2.GaussianBlur(f, (0, 0), blur)
    if downup > 1:
        small = cv2.resize(f, (max(8, w // downup), max(8, h // downup)), interpolation=cv2.INTER_AREA)
        f = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng is not None and noise > 0:
        grain = rng.standard_normal((h, w), dtype=np.float32)   # one draw per pixel, shared by B, G, R
        grain *= np.float32(noise)
        f += cv2.cvtColor(grain, cv2.COLOR_GRAY2BGR)
    f += np.float32(0.5)
    out = np.clip(f, 0, 255, out=f).astype(np.uint8)
    lm = cam.project(pts[:68])
    return out, lm


__all__ = ["render_face", "Pose", "both", "Lighting", "FRONTAL", "shading", "cluttered_background"]
