"""Frame-index arithmetic for clips (U segments × V consecutive frames), pairs and sparse label masks."""
from __future__ import annotations

import numpy as np

SHORT_CLIP_RULES = ("stretch", "loop", "last", "drop")
#: how the two frames of a pair are drawn: a gap in [min, max] (ours) or any two distinct frames (official TCAE)
PAIR_FRAME_RULES = ("gap", "any")
#: what one pairs item is drawn from: a track (ours) or an identity (official TCAE epoch)
PAIR_UNITS = ("track", "identity")
#: ``balanced``: segments cover the whole clip (ours); ``ial_official``: the official IAL loader's rule
CLIP_SAMPLING_RULES = ("balanced", "ial_official")


def clip_indices(n: int, segments: int, per_segment: int, train: bool, rng: np.random.Generator,
                 short_clip: str = "stretch", rule: str = "balanced") -> np.ndarray:
    """Indices of U×V frames from a clip of ``n`` frames (TSN-style segment sampling).

    ``balanced``: segment u covers frames ``[round(u·n/U), round((u+1)·n/U))``; it contributes V
    consecutive frames starting at a uniformly random offset (training) or centred in the segment
    (evaluation). ``ial_official``: the rule of the official IAL loader, see ``ial_official_starts``.
    Clips with fewer than U×V frames follow ``short_clip`` under both rules:

    - ``stretch``: ``floor(i·n/(U·V))`` for i = 0…U·V−1 — every frame used, in order, repeated evenly;
    - ``loop``: ``i mod n``; ``last``: frames 0…n−1 then the last frame repeated.
    (``drop`` removes such clips when the manifest is built, so it never reaches here.)
    """
    if n <= 0:
        raise ValueError("clip has no frames")
    total = segments * per_segment
    if n < total:
        i = np.arange(total)
        if short_clip == "loop":
            return i % n
        if short_clip == "last":
            return np.minimum(i, n - 1)
        return (i * n) // total  # stretch (also used if a dropped clip slipped through)
    if rule == "ial_official":
        starts = ial_official_starts(n, segments, per_segment, train, rng)
        return (starts[:, None] + np.arange(per_segment)[None, :]).reshape(-1)
    if rule != "balanced":
        raise ValueError(f"clip sampling rule must be one of {CLIP_SAMPLING_RULES}, got {rule!r}")
    bounds = np.round(np.arange(segments + 1) * n / segments).astype(np.int64)
    lengths = bounds[1:] - bounds[:-1]
    slack = lengths - per_segment  # ≥ 0 because n ≥ U·V
    if train:
        offsets = np.array([rng.integers(0, s + 1) for s in slack])
    else:
        offsets = slack // 2
    starts = bounds[:-1] + offsets
    return (starts[:, None] + np.arange(per_segment)[None, :]).reshape(-1)


def ial_official_starts(n: int, segments: int, per_segment: int, train: bool,
                        rng: np.random.Generator) -> np.ndarray:
    """First frame of each segment under the official IAL loader's rule (``dataset_DFEW.py``, n ≥ U·V).

    Training: segment length ``L = (n − V + 1) // U`` and start ``u·L + randint(L)``, so the last
    ``(n − V + 1) mod U`` frames are never drawn (as in the official code). Evaluation: with
    ``tick = (n − V + 1) / U`` the start is ``int(tick/2 + tick·u)``. The official code applies that
    test formula only when ``n > U + V − 1`` and otherwise samples frame 0 U times (a 16-frame DFEW
    test clip becomes one frame repeated); here the formula is applied to every clip, which gives
    frames 0…15 for a 16-frame clip.
    """
    usable = n - per_segment + 1
    if train:
        length = usable // segments
        return np.arange(segments) * length + rng.integers(0, length, size=segments)
    tick = usable / float(segments)
    return np.array([int(tick / 2.0 + tick * u) for u in range(segments)], dtype=np.int64)


def pair_indices(n: int, gap_min: int, gap_max: int, rng: np.random.Generator) -> tuple[int, int]:
    """Source and target positions in a track of ``n`` frames with ``gap_min ≤ |t−s| ≤ gap_max``.

    The gap is clamped to the track (a track of one frame gives the same frame twice); the order of the
    two frames is random.
    """
    if n <= 1:
        return 0, 0
    hi = min(gap_max, n - 1)
    lo = min(max(gap_min, 0), hi)
    gap = int(rng.integers(lo, hi + 1))
    s = int(rng.integers(0, n - gap))
    return (s, s + gap) if rng.random() < 0.5 else (s + gap, s)


def distinct_pair(n: int, stride: int, rng: np.random.Generator) -> tuple[int, int]:
    """Two distinct positions drawn uniformly, without replacement and in random order, among frames
    ``0, stride, 2·stride, … < n`` (official TCAE: any two frames of a track extracted at 1 fps, i.e.
    ``stride`` = the native frame rate for a full-rate track). With fewer than two such frames the one
    frame is returned twice (the official sampler then draws with replacement)."""
    candidates = np.arange(0, max(n, 1), max(stride, 1))
    if len(candidates) < 2:
        return 0, 0
    s, t = rng.choice(candidates, size=2, replace=False)
    return int(s), int(t)


def sparse_label_mask(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask keeping ``max(1, round(fraction·n))`` frames chosen uniformly without replacement."""
    keep = min(n, max(1, int(round(fraction * n))))
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=keep, replace=False)] = True
    return mask
