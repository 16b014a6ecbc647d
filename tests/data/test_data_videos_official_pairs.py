"""Official TCAE pairs protocol on ``videos``: one item per identity (random video → random track),
two distinct frames among every k-th, and a 75/15/10 identity split (data.pair_unit=identity,
pair_frames=any, test_fraction)."""
from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest
import torch

import releases
from releases import make

N_IDS = 20


@pytest.fixture(scope="module")
def vox_root(tmp_path_factory):
    """<identity>/<video>/<track>/*.jpg: id00 has video v1 (tracks t1, t2) and v2 (t3); every other
    identity one video with one 10-frame track."""
    root = tmp_path_factory.mktemp("vox3") / "videos"
    tracks = {"id00/v1/t1": 10, "id00/v1/t2": 10, "id00/v2/t3": 10}
    tracks.update({f"id{i:02d}/v1/t1": 10 for i in range(1, N_IDS)})
    for track, n in tracks.items():
        (root / track).mkdir(parents=True)
        for k in range(n):
            cv2.imwrite(str(root / track / f"{k + 1:05d}.jpg"), releases.grey(k, 8, 8))
    return root


def pairs(root, **keys):
    keys = {"task": "pairs", "normalize": "zero_one", "image_size": 8, "hflip": False, **keys}
    return make("videos", root, **keys)


def test_identity_unit_draws_a_random_video_then_a_random_track(vox_root):
    dm = pairs(vox_root, pair_unit="identity", val_fraction=0.0)
    ds = dm.dataset("train")
    assert len(ds) == N_IDS  # one pair per identity per epoch, not one per track (22 tracks)
    assert [ds[i]["meta"]["subject"] for i in range(N_IDS)] == [f"id{i:02d}" for i in range(N_IDS)]
    torch.manual_seed(0)
    counts = Counter(ds[0]["meta"]["clip"] for _ in range(600))
    assert set(counts) == {"id00/v1/t1", "id00/v1/t2", "id00/v2/t3"}
    # video first (½ each), then track: t3 is drawn ½ of the time, not ⅓ as with a uniform track
    assert counts["id00/v2/t3"] / 600 == pytest.approx(0.5, abs=0.06)
    assert counts["id00/v1/t1"] / 600 == pytest.approx(0.25, abs=0.05)


def test_any_two_distinct_frames_among_every_kth(vox_root):
    ds = pairs(vox_root, pair_frames="any", pair_frame_stride=3, val_fraction=0.0).dataset("train")
    torch.manual_seed(1)
    drawn = [tuple(ds[i % len(ds)]["meta"]["frames"].tolist()) for i in range(200)]
    assert all(s != t and s % 3 == 0 and t % 3 == 0 and max(s, t) <= 9 for s, t in drawn)
    assert {frozenset(p) for p in drawn} == {frozenset(p) for p in [(0, 3), (0, 6), (0, 9), (3, 6), (3, 9), (6, 9)]}
    with pytest.raises(ValueError, match="pair_frame_stride"):
        pairs(vox_root, pair_frame_stride=3)  # a stride with gap pairs would be ignored
    with pytest.raises(ValueError, match="pair_unit"):
        pairs(vox_root, pair_unit="video")


def test_official_split_is_75_15_10_by_identity_and_the_default_split_is_unchanged(vox_root):
    dm = pairs(vox_root, val_fraction=0.15, test_fraction=0.10)
    ids = {s: set(dm.manifest(s)["subject"]) for s in ("train", "val", "test")}
    assert [len(ids[s]) for s in ("train", "val", "test")] == [15, 3, 2]
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    # the default (val 5 %, no test): one identity, the one numpy's default_rng(split_seed) picks
    default = pairs(vox_root)
    groups = sorted(f"id{i:02d}" for i in range(N_IDS))
    expected = set(np.random.default_rng(0).choice(np.array(groups), size=1, replace=False).tolist())
    assert set(default.manifest("val")["subject"]) == expected and len(default.manifest("test")) == 0
