"""Generator v3 world properties (docs/synthetic.md "Generator v3"): the talking-face corpus against
its spec, face size at the native resolution, and test folds large enough to decide."""
import numpy as np
import pandas as pd
import pytest

from affectlab.synth.face import AU_INDEX
from affectlab.synth.labels import (CLASSES, TALK_APEX_S, TALK_BLINKS_PER_MIN, TALK_EPISODE_EVERY_S, TALK_OFFSET_S,
                                    TALK_ONSET_S, TALK_SYLLABLES_PER_S, talking_pose, talking_state)
from affectlab.synth.writers import (ALIGNED_EYE_DISTANCE, CPU_CROP, FACE_SCALE, PROFILES, _clip_plan,
                                     chance_uar_standard_error, dfew_folds, ferv_plan, ferv_split, rng_for)

FPS = 25


def _runs(active: np.ndarray) -> list[int]:
    """Lengths (frames) of the runs of True, excluding runs touching either end."""
    edges = np.flatnonzero(np.diff(np.r_[0, active.astype(int), 0]))
    return [int(b - a) for a, b in zip(edges[::2], edges[1::2]) if a > 0 and b < len(active)]


@pytest.fixture(scope="module")
def talking():
    n = 60 * FPS
    return [talking_state(rng_for(0, "talk-test", k), n, FPS) for k in range(24)]


def test_talking_episodes_match_the_spec(talking):
    minutes = sum(len(U) for U, _, _ in talking) / FPS / 60
    episodes = [e for _, _, eps in talking for e in eps]
    mean_episode_s = np.mean(TALK_ONSET_S) + np.mean(TALK_APEX_S) + np.mean(TALK_OFFSET_S)
    expected_per_min = 60 / (TALK_EPISODE_EVERY_S + mean_episode_s)
    assert 0.75 * expected_per_min < len(episodes) / minutes < 1.25 * expected_per_min
    for _, _, onset, apex, offset in episodes:
        assert TALK_ONSET_S[0] * FPS - 1 <= onset <= TALK_ONSET_S[1] * FPS
        assert TALK_APEX_S[0] * FPS - 1 <= apex <= TALK_APEX_S[1] * FPS
        assert TALK_OFFSET_S[0] * FPS - 1 <= offset <= TALK_OFFSET_S[1] * FPS
    # re-derived from the ground truth: a brow raise (AU1 is driven by episodes only) lasts about
    # onset + apex + offset at level ≥ 1
    durations = np.array([d for U, _, _ in talking for d in _runs(U[:, AU_INDEX[1]] >= 0.5)]) / FPS
    assert len(durations) >= 10
    assert 0.4 < np.median(durations) < 4.0 and np.quantile(durations, 0.9) < 5.5


def test_speech_blinks_and_head_motion(talking):
    U = np.concatenate([u for u, _, _ in talking])
    speaking = U[:, AU_INDEX[25]] >= 0.5
    assert 0.25 < speaking.mean() < 0.8                           # utterances with pauses
    jaw = U[:, AU_INDEX[26]]
    peaks = np.flatnonzero((jaw[1:-1] > jaw[:-2]) & (jaw[1:-1] >= jaw[2:]) & (jaw[1:-1] > 0.3))
    syllables_per_s = len(peaks) / ((jaw > 0).sum() / FPS)    # per second of open-jaw speech
    assert 0.75 * TALK_SYLLABLES_PER_S < syllables_per_s < 1.5 * TALK_SYLLABLES_PER_S
    blinks = sum(len(_runs(b > 0.5)) for _, b, _ in talking) / (len(U) / FPS / 60)
    assert 0.6 * TALK_BLINKS_PER_MIN < blinks < 1.4 * TALK_BLINKS_PER_MIN
    poses = [talking_pose(rng_for(0, "pose-test", k), 60 * FPS, FPS, 40.0, (112, 112)) for k in range(24)]
    steps = np.concatenate([np.abs(np.diff(p[:, 0])) for p in poses])
    assert np.quantile(steps, 0.99) < 3.0                          # smooth at 25 fps
    turns = [np.abs(p[:, 0] - np.median(p[:, 0])).max() > 12 for p in poses]
    assert np.mean(turns) > 0.5                                    # occasional larger turns


def test_corpus_shape_per_profile(synth_root):
    quick, full = PROFILES["quick"], PROFILES["full"]
    for p, min_frames, min_seconds in ((quick, 50_000, 5), (full, 300_000, 20)):
        assert p.video_ids >= 200 and p.video_tracks >= 2 and p.video_frames >= min_seconds * FPS
        assert p.video_ids * p.video_tracks * p.video_frames >= min_frames
    tiny = PROFILES["tiny"]
    gt = pd.read_csv(synth_root / "groundtruth" / "videos.csv.gz")
    assert gt.subject.nunique() == tiny.video_ids
    tracks = gt.groupby(["subject", "sequence"]).frame.agg(["count", "min", "max"])
    assert len(tracks) == tiny.video_ids * tiny.video_tracks
    assert (tracks["count"] == tiny.video_frames).all() and (tracks["max"] - tracks["min"] + 1 == tracks["count"]).all()
    for path in gt.path.iloc[:: tiny.video_frames]:
        assert (synth_root / "videos" / path).exists()


def test_faces_are_rendered_at_native_size(synth_root):
    """The region a 64-px aligned crop covers (IOD / 0.32) spans ≥ 96 native px (1.5× the crop)."""
    need = 1.5 * CPU_CROP * ALIGNED_EYE_DISTANCE          # px per IOD
    for name in ("bp4d", "disfa", "dfew", "ferv39k", "videos"):
        gt = pd.read_csv(synth_root / "groundtruth" / f"{name}.csv.gz", usecols=["scale"])
        assert gt.scale.min() >= need, (name, gt.scale.min())
    for prof in PROFILES.values():   # nominal scale × the smallest pose scale factor (0.8)
        widths = {"bp4d": prof.bp4d_size[0], "disfa": prof.disfa_size[0], "clip": prof.clip_size,
                  "videos": prof.video_size}
        for key, w in widths.items():
            assert 0.8 * FACE_SCALE[key] * w >= need, (prof.name, key)


def test_quick_test_folds_decide_between_chance_and_a_model():
    """Chance-level UAR has a standard error ≤ 0.03 on every quick DFEW fold and the FERV39k test set."""
    quick = PROFILES["quick"]
    _, labels, _ = _clip_plan(quick, 0, "dfew")
    folds = dfew_folds(labels, 0)
    for k in range(5):
        counts = np.bincount(labels[folds == k], minlength=7)
        assert chance_uar_standard_error(counts) <= 0.03, (k, counts)
    _, jobs = ferv_plan(quick, 0)
    _, test = ferv_split(jobs, 0)
    counts = np.bincount([CLASSES.index(line.split()[-1]) for line in test], minlength=7)
    assert chance_uar_standard_error(counts) <= 0.03, counts
    # the arithmetic itself: 140 clips with 2 Disgust gave about 0.045 (the v2 quick fold)
    assert chance_uar_standard_error([29, 23, 32, 26, 18, 2, 11]) == pytest.approx(0.0445, abs=5e-4)
