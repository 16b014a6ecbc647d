"""Ground-truth state sampler: AU episodes, expression clips, blinks and pose (synthetic.md §3, §5.8).

One continuous intensity matrix U (T, 17) per sequence drives every label. Sequences are simulated
at the native frame rate over their real length, then `n` frames are taken evenly (small profiles
therefore have a coarser time step, but the same frame-level statistics).
"""
from __future__ import annotations

import numpy as np

from .face import AU_INDEX, AUS, N_AU

BP4D_AUS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
BP4D_INT_AUS = (6, 10, 12, 14, 17)
DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
DISFA_DET_AUS = (1, 2, 4, 6, 9, 12, 25, 26)
CLASSES = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")   # DFEW order
DFEW_SHARES = np.array([20.9, 16.2, 22.8, 18.6, 12.6, 1.2, 7.7]) / 100
FERV_SHARES = np.array([18.8, 17.8, 25.1, 19.0, 8.0, 5.9, 5.4]) / 100

# §3.3 BP4D latent types: weight, P(on) for BP4D_AUS, median duration (s), unlabelled extras.
BP4D_TYPES = {
    "smile_duchenne": ([.09, .11, .04, .95, .84, .90, .96, .53, .11, .11, .08, .01], 2.8, {25: .5}),
    "low_activity": ([.14, .05, .34, .02, .18, .06, .05, .09, .01, .13, .03, .01], 1.0, {}),
    "smile_social": ([.16, .08, .07, .05, .36, .79, .66, .45, .14, .23, .09, .00], 2.8, {}),
    "smile_controlled": ([.08, .08, .16, .84, .85, .78, .82, .71, .57, .92, .47, .46], 2.0, {}),
    "lip_press": ([.07, .06, .21, .03, .25, .19, .16, .64, .18, .75, .39, .67], 0.8, {}),
    "grimace": ([.43, .06, 1.0, .76, .99, .90, .33, .67, .22, .45, .19, .15], 1.6, {9: .3, 20: .1}),
    "laugh_browraise": ([1.0, 1.0, .14, .82, .78, .97, .93, .62, .19, .31, .21, .10], 2.8, {25: .5, 26: .2}),
    "brow_raise": ([.92, 1.0, .12, .04, .21, .32, .38, .35, .09, .36, .09, .13], 1.0, {5: .3}),
}
BP4D_TASK_WEIGHTS = {
    "T1": [.47, .07, .17, .15, .08, .00, .04, .03], "T2": [.00, .71, .02, .01, .19, .04, .00, .03],
    "T3": [.15, .54, .06, .06, .08, .04, .02, .06], "T4": [.50, .02, .12, .18, .03, .00, .13, .02],
    "T5": [.32, .04, .18, .18, .06, .02, .14, .05], "T6": [.14, .21, .13, .13, .19, .15, .01, .04],
    "T7": [.33, .08, .28, .12, .08, .00, .02, .08], "T8": [.08, .14, .17, .21, .07, .28, .03, .02],
}
BP4D_LEVELS = np.array([.15, .30, .30, .18, .07])
# §3.3 DISFA types (P(on at >= 2) for DISFA_DET_AUS) plus the rare 5/15/17/20 types.
DISFA_TYPES = {
    "neutral": (.63, [.00, .00, .00, .01, .01, .02, .12, .04], 5.0, {}),
    "frown": (.14, [.04, .05, .76, .00, .09, .00, .13, .01], 1.2, {}),
    "smile": (.11, [.02, .02, .01, .53, .01, .89, .88, .10], 3.5, {}),
    "mouth_open": (.06, [.12, .01, .19, .00, .00, .17, 1.0, .66], 3.4, {}),
    "brow_raise": (.03, [.86, .94, .25, .00, .03, .03, .12, .10], 1.1, {}),
    "disgust": (.03, [.11, .00, .88, .54, .84, .07, .80, .29], 1.6, {}),
    "surprise": (.01, [1, 1, 0, 0, 0, 0, 1, 1], 1.5, {5: 1.0}),
    "sad": (.01, [1, 0, 1, 0, 0, 0, 0, 0], 1.5, {15: 1.0, 17: 1.0}),
    "fear": (.01, [1, 1, 1, 0, 0, 0, 1, 0], 1.5, {5: 1.0, 20: 1.0}),
}
DISFA_LEVELS = np.array([.42, .33, .18, .07])   # L2..L5 given >= 2

# §2 recipes: (variant probability, core AUs) and optional co-AUs.
RECIPES = {
    "Happy": ([(.45, (6, 12)), (.25, (6, 12, 25, 26)), (.20, (12,)), (.10, (12,))],
              {7: .6, 10: .4, 14: .3, 25: .3}),
    "Sad": ([(.40, (1, 4, 15)), (.25, (1, 4, 15, 17)), (.15, (1, 4)), (.10, (6, 15)), (.10, (4, 15, 17))],
            {17: .3, 25: .15, 7: .2, 24: .1}),
    "Surprise": ([(.45, (1, 2, 5, 25, 26)), (.15, (1, 2, 5, 25)), (.20, (1, 2, 25, 26)), (.15, (1, 2, 5)),
                  (.05, (5, 25, 26))], {4: .05}),
    "Fear": ([(.40, (1, 2, 4, 5, 20, 25)), (.20, (1, 2, 4, 5, 25)), (.15, (1, 2, 4, 5)),
              (.10, (1, 2, 5, 20, 25)), (.10, (5, 20, 25)), (.05, (1, 2, 4, 5, 7, 20, 26))],
             {26: .3, 7: .3, 14: .1}),
    "Angry": ([(.25, (4, 5, 7, 23)), (.20, (4, 5, 7, 24)), (.15, (4, 7, 17, 24)),
               (.20, (4, 5, 7, 10, 23, 25, 26)), (.10, (4, 7, 23)), (.10, (4, 5, 7, 17, 23))],
              {9: .1, 10: .2, 15: .1}),
    "Disgust": ([(.15, (9,)), (.20, (9, 15, 25)), (.15, (9, 17)), (.15, (10,)), (.15, (10, 17)),
                 (.10, (10, 25, 26)), (.10, (4, 7, 9, 10))], {4: .3, 24: .25, 7: .3, 6: .2}),
    "Neutral": ([(1.0, ())], {}),
}
BANDS = (("low", .30, (0.8, 2.0)), ("medium", .45, (2.0, 3.5)), ("high", .25, (3.5, 5.0)))


def _smooth_noise(rng, T, period, sd):
    knots = np.arange(0, T + period, period)
    return np.interp(np.arange(T), knots, rng.normal(0, sd, len(knots)))


def _envelope(T, start, length, onset, offset):
    t = np.arange(T, dtype=float)
    up = np.clip((t - start) / max(onset, 1), 0, 1)
    down = np.clip((start + length - t) / max(offset, 1), 0, 1)
    e = np.minimum(up, down)
    return e * e * (3 - 2 * e)


def apply_rules(U: np.ndarray) -> np.ndarray:
    """Label rules of §5.3: 24 excludes 25; 26 >= 2 and 10 >= 3 imply 25 >= 1; levels within 0..5."""
    U = np.clip(U, 0, 5)
    a24, a25, a26, a10 = (AU_INDEX[a] for a in (24, 25, 26, 10))
    need = (U[:, a26] >= 2) | (U[:, a10] >= 3)
    U[need, a25] = np.maximum(U[need, a25], 1.0)
    U[U[:, a24] >= 0.5, a25] = 0.0
    return U


def levels(U: np.ndarray) -> np.ndarray:
    """Integer FACS level per §5.9: 0 if u < 0.5 else min(5, floor(u + 0.5))."""
    return np.where(U < 0.5, 0, np.minimum(5, np.floor(U + 0.5))).astype(np.int64)


def _episodes(rng, T, fps, types, weights, au_sets, peak_fn, gap_s=0.08):
    """Semi-Markov episode process; `types` holds (P(on) vector, median duration s, extras)."""
    U = np.zeros((T, N_AU))
    names = list(types)
    w = np.asarray(weights, float) / np.asarray([types[n][1] for n in names])
    w = w / w.sum()
    t = -int(rng.uniform(0, 3) * fps)
    while t < T:
        t += int(rng.exponential(gap_s * fps))
        name = names[rng.choice(len(names), p=w)]
        pon, med, extra = types[name]
        length = int(max(0.4, med * 1.3 * rng.lognormal(0, 0.6)) * fps)
        p = peak_fn(rng)
        on = dict(zip(au_sets, rng.random(len(au_sets)) < np.asarray(pon)))
        on.update({a: rng.random() < q for a, q in extra.items()})
        for au, active in on.items():
            if not active:
                continue
            pk = float(np.clip(p * (1 + rng.normal(0, 0.15)), 0.6, 5))
            lag = int(rng.integers(-2, 4))
            on_r, off_r = rng.uniform(0.25, 0.6) * fps, rng.uniform(0.3, 1.0) * fps
            # Ramps straddle the episode bounds so the AU is present for about `length` frames.
            env = _envelope(T, t + lag - on_r / 2, length + (on_r + off_r) / 2, on_r, off_r)
            fluct = 1 + _smooth_noise(rng, T, max(2, int(0.5 * fps)), 0.06)
            k = AU_INDEX[au]
            U[:, k] = np.maximum(U[:, k], pk * env * fluct)
        t += length
    return U


def bp4d_state(rng: np.random.Generator, task: str, n: int, subject_weights: np.ndarray, fps: int = 25,
               seconds: float = 18.0) -> tuple[np.ndarray, np.ndarray]:
    T = int(seconds * fps)
    U = _episodes(rng, T, fps, BP4D_TYPES, subject_weights, BP4D_AUS,
                  lambda r: 1 + r.choice(5, p=BP4D_LEVELS) + r.uniform(-0.3, 0.3))
    if task in ("T1", "T7"):
        speech = np.abs(np.sin(np.arange(T) * 2 * np.pi * 4.5 / fps / 2)) * 1.6
        burst = _envelope(T, int(rng.uniform(0, T / 2)), int(T / 3), 5, 5)
        U[:, AU_INDEX[25]] = np.maximum(U[:, AU_INDEX[25]], speech * burst)
    return _take(rng, apply_rules(U), n, fps)


def bp4d_subject_weights(rng: np.random.Generator, task: str) -> np.ndarray:
    w = np.asarray(BP4D_TASK_WEIGHTS[task]) + 1e-3
    return rng.dirichlet(w / w.sum() * 20)


def disfa_state(rng: np.random.Generator, n: int, fps: int = 20,
                seconds: float = 242.0) -> tuple[np.ndarray, np.ndarray]:
    T = int(seconds * fps)
    names = list(DISFA_TYPES)
    w = rng.dirichlet(np.array([DISFA_TYPES[k][0] for k in names]) * 30)
    types = {k: (v[1], v[2], v[3]) for k, v in DISFA_TYPES.items()}
    U = _episodes(rng, T, fps, types, w, DISFA_DET_AUS,
                  lambda r: 2 + r.choice(4, p=DISFA_LEVELS) + r.uniform(-0.3, 0.3), gap_s=0.5)
    # Level-1 traces (about 40 % of non-zero DISFA frames are level A).
    for au in DISFA_AUS:
        k = AU_INDEX[au]
        trace = _envelope(T, 0, T, 1, 1) * np.clip(_smooth_noise(rng, T, 2 * fps, 0.9), 0, 1.3)
        U[:, k] = np.maximum(U[:, k], trace)
    return _take(rng, apply_rules(U), n, fps)


def _take(rng, U, n, fps):
    T = len(U)
    ix = np.linspace(0, T - 1, n).round().astype(int)
    blink = np.zeros(T)
    t = int(rng.exponential(fps * 4))
    while t < T:
        blink[max(0, t - 2):t + 4] = [0.5, 1.0, 1.0, 0.6, 0.3, 0.1][: len(blink[max(0, t - 2):t + 4])]
        t += int(rng.exponential(fps * 4)) + 6
    blink[U[:, AU_INDEX[5]] >= 3] = 0
    return U[ix], blink[ix]


#: The talking-face corpus (`videos`, synthetic.md "v3 talking faces"): speech in utterances of
#: 1–4 s separated by 0.3–2 s pauses at about 4 syllables/s, spontaneous AU episodes about every 5 s
#: (type: AUs, share), each with onset 0.2–0.8 s, apex 0.3–3 s, offset 0.3–1.5 s, and blinks.
TALK_EPISODES = {
    "smile": ((6, 12), 0.25), "social_smile": ((12,), 0.15), "brow_raise": ((1, 2), 0.2),
    "frown": ((4, 7), 0.12), "lip_press": ((23, 24), 0.1), "sad_mouth": ((15, 17), 0.08),
    "dimpler": ((14,), 0.05), "nose_wrinkle": ((9, 10), 0.05),
}
TALK_EPISODE_EVERY_S = 5.0
TALK_ONSET_S, TALK_APEX_S, TALK_OFFSET_S = (0.2, 0.8), (0.3, 3.0), (0.3, 1.5)
TALK_SYLLABLES_PER_S = 4.0
TALK_BLINKS_PER_MIN = 17.0


def talking_state(rng: np.random.Generator, n: int,
                  fps: int = 25) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int, int, int, int]]]:
    """A talking person (`videos`): speech mouth motion, spontaneous AU episodes and blinks.

    Returns U (n, 17), blink (n,) and the episode list [(type, start frame, onset, apex, offset)]
    (frames), which the ground truth does not store but the corpus test re-derives from U.
    """
    U = np.zeros((n, N_AU))
    # Speech: utterances of syllables; each syllable opens the jaw and parts the lips.
    t = int(rng.uniform(0, 1.0) * fps)
    while t < n:
        length = int(rng.uniform(1.0, 4.0) * fps)
        k = t
        while k < min(n, t + length):
            dur = max(3, int(fps / TALK_SYLLABLES_PER_S * rng.uniform(0.6, 1.4)))
            amp = rng.uniform(0.6, 2.6)
            env = np.sin(np.pi * np.clip((np.arange(n) - k) / dur, 0, 1)) ** 2
            U[:, AU_INDEX[26]] = np.maximum(U[:, AU_INDEX[26]], amp * env)
            U[:, AU_INDEX[25]] = np.maximum(U[:, AU_INDEX[25]], min(amp + 0.6, 3.0) * env)
            if rng.random() < 0.12:   # lip shapes of some phonemes
                au = (10, 17, 24, 23)[int(rng.integers(4))]
                U[:, AU_INDEX[au]] = np.maximum(U[:, AU_INDEX[au]], rng.uniform(0.6, 1.6) * env)
            k += dur
        t += length + int(rng.uniform(0.3, 2.0) * fps)
    # Spontaneous episodes.
    names = list(TALK_EPISODES)
    share = np.array([TALK_EPISODES[k][1] for k in names])
    episodes = []
    t = int(rng.exponential(TALK_EPISODE_EVERY_S * fps / 2))
    while t < n:
        name = names[rng.choice(len(names), p=share / share.sum())]
        on, apex, off = (int(rng.uniform(*r) * fps) for r in (TALK_ONSET_S, TALK_APEX_S, TALK_OFFSET_S))
        peak = 1 + rng.choice(4, p=[.25, .35, .28, .12]) + rng.uniform(-0.3, 0.3)
        env = _envelope(n, t, on + apex + off, on, off)   # onset → apex plateau → offset
        for au in TALK_EPISODES[name][0]:
            k = AU_INDEX[au]
            U[:, k] = np.maximum(U[:, k], peak * (1 + rng.normal(0, 0.1)) * env)
        episodes.append((name, t, on, apex, off))
        t += on + apex + off + int(rng.exponential(TALK_EPISODE_EVERY_S * fps))
    U = apply_rules(U)
    blink = np.zeros(n)
    t = int(rng.exponential(fps * 60 / TALK_BLINKS_PER_MIN))
    while t < n:
        dur = int(rng.uniform(0.1, 0.3) * fps)
        e = np.sin(np.pi * np.clip((np.arange(n) - t) / max(dur, 2), 0, 1))
        blink = np.maximum(blink, e)
        t += dur + int(rng.exponential(fps * 60 / TALK_BLINKS_PER_MIN))
    blink[U[:, AU_INDEX[5]] >= 3] = 0
    return U, blink, episodes


def talking_pose(rng: np.random.Generator, n: int, fps: int, scale: float, size: tuple[int, int]) -> np.ndarray:
    """Head motion of a talking person: slow drift, nods, and a larger turn about every 10 s."""
    sec = max(2, int(1.5 * fps))
    yaw = rng.normal(0, 8) + _smooth_noise(rng, n, sec, 5)
    pitch = rng.normal(0, 5) + _smooth_noise(rng, n, sec, 3) + _smooth_noise(rng, n, max(2, fps // 3), 1.2)
    roll = rng.normal(0, 3) + _smooth_noise(rng, n, sec, 2.5)
    t = int(rng.exponential(10 * fps))
    while t < n:
        target, dur, hold = rng.uniform(15, 35) * rng.choice([-1, 1]), int(rng.uniform(0.6, 1.2) * fps), \
            int(rng.uniform(0.5, 3) * fps)
        yaw += rng.uniform(0.6, 1.0) * target * _envelope(n, t, 2 * dur + hold, dur, dur)
        t += 2 * dur + hold + int(rng.exponential(10 * fps))
    s = scale * (1 + np.clip(rng.normal(0, 0.04) + _smooth_noise(rng, n, sec * 2, 0.02), -0.1, 0.1))
    tx = (rng.normal(0, 0.02) + _smooth_noise(rng, n, sec, 0.015)) * size[0]
    ty = (rng.normal(0, 0.02) + _smooth_noise(rng, n, sec, 0.015)) * size[1]
    return np.c_[np.clip(yaw, -45, 45), np.clip(pitch, -30, 30), np.clip(roll, -25, 25), s, tx, ty]


def class_counts(n: int, shares: np.ndarray, min_per_class: int = 0) -> np.ndarray:
    """Largest-remainder allocation of n clips to classes, with an optional per-class floor."""
    raw = shares / shares.sum() * (n - min_per_class * len(shares))
    c = np.floor(raw).astype(int)
    c[np.argsort(-(raw - c))[: n - min_per_class * len(shares) - c.sum()]] += 1
    return c + min_per_class


def expression_state(rng: np.random.Generator, cls: str, n: int, length: int,
                     fps: int = 25) -> tuple[np.ndarray, np.ndarray, str]:
    """Class clip (§2, §5.8): recipe variant, peak band, phase pattern. Returns U, blink, band."""
    T = max(length, n)
    variants, extra = RECIPES[cls]
    v = variants[rng.choice(len(variants), p=[p for p, _ in variants])][1]
    bi = rng.choice(3, p=[b[1] for b in BANDS])
    band, _, (lo, hi) = BANDS[bi]
    p = rng.uniform(lo, hi)
    U = np.zeros((T, N_AU))
    phase = rng.choice(3, p=[.4, .3, .3])
    if phase == 0:
        start, dur = rng.uniform(0, 0.4) * T, 10 * T
    elif phase == 1:
        start, dur = -T, 10 * T
    else:
        start, dur = rng.uniform(0, 0.2) * T, rng.uniform(0.5, 0.8) * T
    aus = list(v) + [a for a, q in extra.items() if rng.random() < q and a not in v]
    for au in aus:
        pk = p * (1 + rng.normal(0, 0.15)) * (1.0 if au in v else 0.6)
        if cls == "Happy" and au == 6:
            pk *= 0.9
        env = _envelope(T, start + rng.integers(-2, 3), dur, rng.uniform(0.15, 0.35) * T, rng.uniform(0.1, 0.3) * T)
        U[:, AU_INDEX[au]] = np.clip(pk, 0, 5) * env * (1 + _smooth_noise(rng, T, 6, 0.05))
    if cls == "Neutral":
        if rng.random() < 0.3:
            U[:, AU_INDEX[25]] = np.abs(np.sin(np.arange(T) * 0.9)) * rng.uniform(0.5, 1.2)
        if rng.random() < 0.05:
            U[:, AU_INDEX[1]] = U[:, AU_INDEX[2]] = rng.uniform(0.3, 1.2)
        if rng.random() < 0.05:
            U[:, AU_INDEX[4]] = rng.uniform(0.3, 1.2)
        band = ""
    U, blink = _take(rng, apply_rules(U), n, fps)
    return U, blink, band


def pose_track(rng: np.random.Generator, n: int, wild: bool, scale: float, size: tuple[int, int]) -> np.ndarray:
    """Smooth pose drift (OU-like) per frame: yaw, pitch, roll (deg), scale (px/IOD), tx, ty (px)."""
    sd = (15, 10, 8, .12, .06) if wild else (9, 7, 4, .05, .04)
    clip = (45, 30, 25)
    base = rng.normal(0, 1, 5) * np.asarray(sd)
    drift = np.stack([_smooth_noise(rng, n, max(2, n // 3), s * 0.4) for s in sd], 1)
    v = base + drift
    v[:, :3] = np.clip(v[:, :3], -np.asarray(clip), clip)
    w = size[0]
    return np.c_[v[:, :3], scale * (1 + np.clip(v[:, 3], -.2, .2)), v[:, 4] * w, v[:, 4] * 0 + base[4] * w * 0.7]


HAND_RATE = 0.05        # wild clips with a hand passing over the lower face (synthetic.md §5.6 step 8)
MICROPHONE_RATE = 0.03  # wild clips with a hand-held microphone in front of the chin


def occlusion_track(rng: np.random.Generator, n: int,
                    wild: bool) -> tuple[str, int, np.ndarray, tuple[float, float, float]] | None:
    """Occasional occluder of one track: (kind, side, per-frame reach 0–1, BGR colour), or None.

    A hand enters, covers the lower face for a few frames and leaves (a smooth bump of reach over a
    window of about a third of the track); a microphone stays for the whole track. Lab recordings
    (BP4D, DISFA) have none. Drawn from its own generator so the rest of a track does not change.
    """
    if not wild or n < 1:
        return None
    draw = rng.random()
    side = int(rng.choice([-1, 1]))
    if draw < HAND_RATE:
        width = int(rng.integers(min(n, 3), max(min(n, 3), n // 3) + 1))
        start = int(rng.integers(0, n - width + 1))
        t = (np.arange(n) - start + 0.5) / width
        reach = np.where((t > 0) & (t < 1), np.sin(np.pi * np.clip(t, 0, 1)) ** 0.5, 0.0)
        skin = rng.uniform([60, 90, 130], [170, 190, 235])
        return "hand", side, np.round(reach, 3), tuple(float(c) for c in skin)
    if draw < HAND_RATE + MICROPHONE_RATE:
        reach = np.full(n, round(float(rng.uniform(0.5, 1.0)), 3))
        return "microphone", side, reach, tuple(float(c) for c in rng.uniform(15, 60, 3))
    return None


__all__ = ["AUS", "CLASSES", "apply_rules", "levels", "bp4d_state", "disfa_state", "expression_state",
           "occlusion_track", "talking_state", "talking_pose"]
