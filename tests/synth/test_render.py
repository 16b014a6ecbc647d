"""Per-AU visibility and region locality (synthetic.md §5.7, §5.12.1) on a frontal 112-px face."""
import cv2
import numpy as np
import pytest

from affectlab.synth.face import AU_INDEX, AUS, N_AU, Pose, sample_identity
from affectlab.synth.labels import apply_rules
from affectlab.synth.render import FRONTAL, Lighting, render_face, shading
from affectlab.synth.writers import rng_for

#: frontal white, a warm key light from the upper right, a cool key light low from the left
LIGHTINGS = {"frontal": FRONTAL, "side_warm": Lighting((0.9, -0.5, 0.6), (1.15, 1.0, 0.8), 0.25),
             "low_cool": Lighting((-1.0, 0.3, 0.5), (0.8, 0.95, 1.2), 0.3, (0.9, 0.95, 1.1))}

# AU -> landmark indices (iBUG-68) spanning its own region; the region is their box plus a margin.
REGIONS = {1: range(17, 27), 2: range(17, 27), 4: range(17, 27), 5: range(36, 48), 6: list(range(36, 48)) + [2, 14],
           7: range(36, 48), 9: list(range(21, 36)), 10: range(27, 68), 12: range(31, 68), 14: range(48, 68),
           15: range(48, 68), 17: list(range(48, 68)) + [7, 8, 9], 20: range(48, 68), 23: range(48, 68),
           24: range(48, 68), 25: range(48, 68), 26: list(range(3, 14)) + list(range(48, 68))}
MARGIN = {1: 24, 2: 24, 4: 12, 6: 8, 9: 8, 26: 6}


def _render(ident, u, lighting=FRONTAL):
    img, lm = render_face(ident, u, Pose(scale=35), (112, 112), noise=0, lighting=lighting)
    return img.astype(np.float32).mean(2), lm


@pytest.mark.parametrize("light", sorted(LIGHTINGS))
@pytest.mark.parametrize("au", AUS)
def test_au_level2_changes_its_own_region(au, light):
    ratios, gains = [], []
    for i in range(3):
        ident = sample_identity(rng_for(0, "region", i))
        ident.glasses, ident.beard = False, False
        base, lm = _render(ident, np.zeros(N_AU), LIGHTINGS[light])
        diffs = []
        for lv in (1, 2):
            u = np.zeros(N_AU)
            u[AU_INDEX[au]] = lv
            img, _ = _render(ident, apply_rules(u[None])[0], LIGHTINGS[light])
            diffs.append(np.abs(img - base))
        pts = lm[list(REGIONS[au])]
        m = MARGIN.get(au, 6)
        x0, y0 = np.floor(pts.min(0) - m).astype(int)
        x1, y1 = np.ceil(pts.max(0) + m).astype(int)
        mask = np.zeros((112, 112), bool)
        mask[max(y0, 0):y1, max(x0, 0):x1] = True
        d1, d2 = diffs
        inside, outside = d2[mask].mean(), d2[~mask].mean()
        ratios.append(inside / max(outside, 1e-3))
        gains.append(d2[mask].sum() / max(d1[mask].sum(), 1e-3))
        assert d2[mask].sum() > 0.0
    assert min(ratios) > 3.0, (au, ratios)          # clearly more change inside than outside
    assert np.median(gains) > 1.5, (au, gains)      # level 2 clearly above the level-1 trace


def test_lighting_changes_pixels_everywhere_but_not_the_face():
    """Same identity, AU state and pose under two lightings: (almost) every face pixel changes, the
    landmarks do not; the shading follows the light (the lit side of the face is the brighter one)."""
    ident = sample_identity(rng_for(0, "light", 0))
    u = np.zeros(N_AU)
    u[AU_INDEX[12]] = 3.0
    a, lm_a = _render(ident, u, LIGHTINGS["frontal"])
    b, lm_b = _render(ident, u, LIGHTINGS["side_warm"])
    assert np.array_equal(lm_a, lm_b)
    x0, y0 = np.floor(lm_a[:27].min(0)).astype(int)
    x1, y1 = np.ceil(lm_a[:27].max(0)).astype(int)
    face = np.abs(b - a)[y0:y1, x0:x1]
    assert (face >= 2).mean() > 0.9
    right = Lighting((1.0, 0.0, 0.4), (1.0, 1.0, 1.0), 0.2)
    left = Lighting((-1.0, 0.0, 0.4), (1.0, 1.0, 1.0), 0.2)
    cx = int(lm_a[27:31, 0].mean())
    for light, brighter in ((right, "right"), (left, "left")):
        img, _ = _render(ident, np.zeros(N_AU), light)
        lo, hi = img[y0:y1, x0:cx].mean(), img[y0:y1, cx:x1].mean()
        assert (hi > lo + 10) if brighter == "right" else (lo > hi + 10)


def test_wrinkle_polarity_follows_the_light():
    """A furrow is relief: under light from above and from below its shading pattern flips, which no
    fixed linear template of pixels can follow (the reason the pixel readout fails on v3)."""
    ident = sample_identity(rng_for(0, "polarity", 0))
    ident.static_lines, ident.hair_style = 0.0, 1          # no ageing lines, no fringe over the forehead
    u = np.zeros(N_AU)
    u[AU_INDEX[1]] = 4.0
    effects = []
    for light in (Lighting((0.0, -1.2, 0.6), ambient=0.2), Lighting((0.0, 1.2, 0.6), ambient=0.2)):
        base, lm = _render(ident, np.zeros(N_AU), light)
        img, _ = _render(ident, u, light)
        effects.append((img - base)[:int(lm[17:27, 1].min()) - 8])       # the forehead above the brows
    up, down = (e.ravel() for e in effects)
    active = (np.abs(up) > 3) | (np.abs(down) > 3)
    assert active.sum() > 20
    assert np.corrcoef(up[active], down[active])[0, 1] < 0.5

def test_render_is_deterministic_and_landmarks_follow_pose():
    ident = sample_identity(rng_for(0, "det", 0))
    a, lm_a = render_face(ident, np.zeros(N_AU), Pose(scale=35), (112, 112), rng=np.random.default_rng(3))
    b, _ = render_face(ident, np.zeros(N_AU), Pose(scale=35), (112, 112), rng=np.random.default_rng(3))
    assert np.array_equal(a, b)
    _, lm_t = render_face(ident, np.zeros(N_AU), Pose(scale=35, tx=5, ty=-3), (112, 112), noise=0)
    assert np.allclose(lm_t - lm_a, [5, -3])
    _, lm_y = render_face(ident, np.zeros(N_AU), Pose(scale=35, yaw=30), (112, 112), noise=0)
    iod = lambda lm: np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0))  # noqa: E731
    assert iod(lm_y) < 0.95 * iod(lm_a)                     # yaw foreshortens the eyes


@pytest.mark.parametrize("kind", ["hand", "microphone"])
def test_occluder_covers_the_lower_face_only(kind):
    from affectlab.synth.render import Occluder

    ident = sample_identity(rng_for(0, "occluder", kind))
    ident.glasses, ident.beard = False, False
    base, lm = _render(ident, np.zeros(N_AU))
    none, _ = render_face(ident, np.zeros(N_AU), Pose(scale=35), (112, 112), noise=0,
                          occluder=Occluder(kind, 1, 0.0, (40, 40, 40)))
    assert np.array_equal(none.astype(np.float32).mean(2), base)     # reach 0: nothing drawn
    img, lm_occ = render_face(ident, np.zeros(N_AU), Pose(scale=35), (112, 112), noise=0,
                              occluder=Occluder(kind, 1, 1.0, (40, 40, 40)))
    assert np.array_equal(lm_occ, lm)                                 # landmarks are the face's
    diff = np.abs(img.astype(np.float32).mean(2) - base)
    lower = lm[list(range(48, 68)) + [6, 7, 8, 9, 10]]
    (x0, y0), (x1, y1) = np.floor(lower.min(0) - 4).astype(int), np.ceil(lower.max(0) + 4).astype(int)
    eyes = lm[36:48]
    (ex0, ey0), (ex1, ey1) = np.floor(eyes.min(0) - 3).astype(int), np.ceil(eyes.max(0) + 3).astype(int)
    assert (diff[y0:y1, x0:x1] > 20).mean() > 0.04                    # a visible part of the lower face
    assert diff[ey0:ey1, ex0:ex1].max() == 0                          # eyes untouched


def test_shading_is_the_same_wherever_numpy_places_its_arrays():
    """OpenCV's magnitude rounds some lanes by where its output starts; kept arrays of other sizes put the
    next frame-sized array at other 16-byte offsets (2 distinct shadings before the output was aligned),
    which made the same seed write other bytes in another process."""
    height = np.zeros((128, 128), np.float32)
    cv2.circle(height, (64, 64), 30, 80.0, -1, cv2.LINE_AA)
    height = cv2.GaussianBlur(height, (0, 0), 1.5)
    light = Lighting((0.5, -0.3, 1.0), (1.0, 0.95, 1.05), 0.35)
    results, keep = set(), []
    for k in range(48):
        keep.append(np.empty(16384 + 4 * (k % 16) + 1, np.float32))
        results.add(shading(height.copy(), light).tobytes())
    assert len(results) == 1
