"""DFEW and FERV39k: folds, label mapping, numeric frame order, short clips, U×V sampling, errors."""
from __future__ import annotations

import numpy as np
import pytest

import releases
from data_modules.frames import DataFormatError
from data_modules.sampling import clip_indices
from releases import make


def frame_index(video) -> np.ndarray:
    """Recover each sampled frame's index from its grey level (writer: 10 + 7·k, zero_one, no resize)."""
    level = video.mean(dim=(1, 2, 3)).numpy() * 255
    return np.round((level - 10) / 7).astype(int)


@pytest.mark.parametrize("fold", [1, 2, 3, 4, 5])
def test_dfew_fold_counts_labels_and_disjointness(mini, fold):
    root, truth = mini
    t = truth["dfew"]
    dm = make("dfew", root / "DFEW", fold=fold)
    test, train, val = dm.manifest("test"), dm.manifest("train"), dm.manifest("val")
    assert len(test) == int((t["fold_of"] == fold).sum())
    assert len(train) + len(val) == int((t["fold_of"] != fold).sum())
    assert not set(test["clip"]) & set(train["clip"]) and not set(val["clip"]) & set(train["clip"])
    assert not set(test["clip"]) & set(val["clip"])
    label_of = {f"{i:05d}": lab for i, lab in zip(t["ids"], t["labels"])}  # CSV 1–7 → 0–6
    for df in (train, val, test):
        assert all(label_of[c] == lab for c, lab in zip(df["clip"], df.label))
    assert dm.class_names == ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]


def test_dfew_test_folds_partition_all_clips(mini):
    root, truth = mini
    seen = [set(make("dfew", root / "DFEW", fold=k).manifest("test")["clip"]) for k in range(1, 6)]
    assert sum(map(len, seen)) == len(set().union(*seen)) == len(truth["dfew"]["ids"])


def test_dfew_frames_sorted_numerically_and_short_clips_stretched(mini):
    root, truth = mini
    t = truth["dfew"]
    dm = make("dfew", root / "DFEW", fold=1, normalize="zero_one", image_size=32, hflip=False, select_on_test=True)
    full = dm.full_manifest()
    for clip, frames, n in zip(full["clip"], full.frames, full.n_frames):
        assert [releases_trailing(p) for p in frames] == list(range(1, n + 1))
    short = [f"{t['ids'][i]:05d}" for i in (3, 7)]
    assert full.set_index("clip").loc[short, "short"].all()
    ds = dm.dataset("test")
    for i in range(len(ds)):
        item = ds[i]
        n = int(full.set_index("clip").loc[item["meta"]["clip"], "n_frames"])
        expected = clip_indices(n, 16, 1, False, np.random.default_rng(0), "stretch")
        assert item["video"].shape == (16, 3, 32, 32)
        assert (frame_index(item["video"]) == expected).all()
        assert (item["meta"]["frames"].numpy() == expected).all()
    summary = dm.summary()
    assert any("padded by rule 'stretch'" in s["reason"] for s in summary["skipped"])


def releases_trailing(path: str) -> int:
    from data_modules.frames import trailing_int

    return trailing_int(path)


def test_dfew_drop_short_reports_count(mini):
    root, truth = mini
    dm = make("dfew", root / "DFEW", fold=1, drop_short=True)
    full = dm.full_manifest()
    assert len(full) == len(truth["dfew"]["ids"]) - 2
    dropped = dm.skipped()
    assert dropped["reason"].str.startswith("short clip dropped").sum() == 2


def test_dfew_underscore_spelling_and_nested_folder(tmp_path):
    t = releases.write_dfew(tmp_path / "DFEW", n_clips=10, short=(), split_spelling="_", nest=True)
    dm = make("dfew", tmp_path / "DFEW", fold=2)
    assert len(dm.manifest("test")) == int((t["fold_of"] == 2).sum())


def test_dfew_errors_name_file_and_line(tmp_path):
    releases.write_dfew(tmp_path / "DFEW", n_clips=10, short=())
    csv = tmp_path / "DFEW" / "EmoLabel_DataSplit" / "test(single-labeled)" / "set_1.csv"
    lines = csv.read_text().splitlines()
    lines[2] = lines[2].split(",")[0] + ",8"
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"set_1\.csv:3: label 8 out of range 1-7"):
        make("dfew", tmp_path / "DFEW", fold=1).manifest("test")
    csv.write_text("clip,label\n1,1\n")
    with pytest.raises(DataFormatError, match=r"set_1\.csv:1: bad header"):
        make("dfew", tmp_path / "DFEW", fold=1).manifest("test")
    with pytest.raises(DataFormatError, match="clip_224x224_16f"):
        make("dfew", tmp_path / "DFEW", frames_dir="clip_224x224_16f").manifest("test")


def test_ferv39k_class_mapping_scene_and_split(mini):
    root, truth = mini
    dm = make("ferv39k", root / "FERV39k")
    tr, va, te = (dm.manifest(s) for s in ("train", "val", "test"))
    assert len(te) == sum(1 for v in truth["ferv39k"].values() if v[1] == "test")
    assert len(tr) + len(va) == sum(1 for v in truth["ferv39k"].values() if v[1] == "train")
    for df in (tr, va, te):
        for clip, label, scene in zip(df["clip"], df.label, df.scene):
            assert label == truth["ferv39k"][clip][0] and scene == clip.split("/")[0]
    # DFEW order, whatever the alphabetical order: Angry → 3, Disgust → 5
    assert set(te[te.class_name == "Angry"].label) == {3} and set(te[te.class_name == "Disgust"].label) == {5}
    assert dm.scenes() == ["Action", "Crime"]
    item = make("ferv39k", root / "FERV39k", image_size=24).dataset("test")[0]
    assert item["video"].shape[0] == 16 and item["meta"]["scene"] in ("Action", "Crime")


def test_ferv39k_archive_folder_level_is_found(tmp_path):
    """datasets.md §4.1: archives may extract as 2_ClipsforFaceCrop-002/2_ClipsforFaceCrop/…"""
    root = tmp_path / "FERV39k"
    truth = releases.write_ferv39k(root, scenes=("War",), per_class=2)
    (root / "2_ClipsforFaceCrop-002").mkdir()
    (root / "2_ClipsforFaceCrop").rename(root / "2_ClipsforFaceCrop-002" / "2_ClipsforFaceCrop")
    dm = make("ferv39k", root)
    assert len(dm.manifest("test")) == sum(1 for v in truth.values() if v[1] == "test")
    (root / "2_ClipsforFaceCrop-003" / "2_ClipsforFaceCrop").mkdir(parents=True)   # two candidates: no guess
    with pytest.raises(DataFormatError, match=r"2 extracted archive folders hold 2_ClipsforFaceCrop "
                                              r"\(2_ClipsforFaceCrop-002, 2_ClipsforFaceCrop-003\)"):
        make("ferv39k", root).manifest("test")


def test_ferv39k_unknown_class_names_file_and_line(tmp_path):
    releases.write_ferv39k(tmp_path / "FERV39k", scenes=("War",), per_class=2)
    f = tmp_path / "FERV39k" / "4_setups" / "All_scenes" / "train_All.csv"
    lines = f.read_text().splitlines()
    lines[1] = lines[1].rsplit(" ", 1)[0] + " Contempt"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"train_All\.csv:2: unknown class 'Contempt'"):
        make("ferv39k", tmp_path / "FERV39k").manifest("train")


def test_clip_index_arithmetic_by_hand():
    rng = np.random.default_rng(0)
    # n=32, U=8, V=2: segments of 4 frames [0,4),[4,8),…; centred start = 4u + 1
    assert clip_indices(32, 8, 2, False, rng).tolist() == [1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22, 25, 26, 29, 30]
    # n=20, U=4, V=1: bounds 0,5,10,15,20 → centre offsets 2
    assert clip_indices(20, 4, 1, False, rng).tolist() == [2, 7, 12, 17]
    # n=10 < 16: stretch floor(i·10/16), loop i mod 10, last min(i, 9)
    assert clip_indices(10, 16, 1, False, rng).tolist() == [(i * 10) // 16 for i in range(16)]
    assert clip_indices(10, 16, 1, True, rng, "loop").tolist() == [i % 10 for i in range(16)]
    assert clip_indices(10, 4, 4, True, rng, "last").tolist() == [min(i, 9) for i in range(16)]
    for _ in range(200):  # training: V consecutive frames inside each segment
        n = int(rng.integers(16, 90))
        idx = clip_indices(n, 8, 2, True, rng).reshape(8, 2)
        bounds = np.round(np.arange(9) * n / 8).astype(int)
        assert (idx[:, 1] == idx[:, 0] + 1).all()
        assert (idx[:, 0] >= bounds[:-1]).all() and (idx[:, 1] < bounds[1:]).all()


def test_clip_transform_identical_across_frames(mini):
    root, _ = mini
    steps = [{"name": "RandomResizedCrop", "size": [24, 24], "scale": [0.3, 0.6]},
             {"name": "Rotate", "limit": [20, 30], "p": 1.0, "border_mode": 0, "fill": 255}]
    dm = make("dfew", root / "DFEW", train_transforms=steps, image_size=24, normalize="zero_one")
    for i in range(3):
        v = dm.dataset("train")[i]["video"].numpy()[:, 0] * 255
        # uniform grey frames: the share of white border blended into each pixel depends only on the
        # geometric parameters, so it must be the same map for every frame of the clip
        interior = np.median(v.reshape(len(v), -1), axis=1)[:, None, None]
        share = (v - interior) / (255 - interior)
        assert share.max() > 0.5  # the rotation did leave a border
        np.testing.assert_allclose(share, np.broadcast_to(share[:1], share.shape), atol=0.05)


def test_clip_cache_matches_direct_decoding(mini, tmp_path):
    root, _ = mini
    keys = dict(fold=1, normalize="zero_one", image_size=32, hflip=False, cache_dir=str(tmp_path / "cache"))
    direct = make("dfew", root / "DFEW", **keys).dataset("test")
    cached = make("dfew", root / "DFEW", clip_cache=True, **keys).dataset("test")
    for i in range(len(direct)):
        a, b = direct[i]["video"], cached[i]["video"]
        assert a.shape == b.shape and (a - b).abs().max() < 1e-6
    files = list((tmp_path / "cache" / "clips" / "32").glob("*.npy"))
    assert len(files) == len(direct)
    again = make("dfew", root / "DFEW", clip_cache=True, **keys).dataset("test")
    assert (again[0]["video"] - direct[0]["video"]).abs().max() < 1e-6  # served from the .npy


def test_dfew_16f_frames_dir(tmp_path):
    import cv2

    t = releases.write_dfew(tmp_path / "DFEW", n_clips=10, short=())
    for cid in t["ids"]:
        d = tmp_path / "DFEW" / "Clip" / "clip_224x224_16f" / f"{cid:05d}"
        d.mkdir(parents=True)
        for k in range(1, 17):
            cv2.imwrite(str(d / f"{k}.jpg"), releases.grey(k - 1, 16, 16))
    dm = make("dfew", tmp_path / "DFEW", frames_dir="clip_224x224_16f", normalize="zero_one", image_size=16,
              select_on_test=True)
    assert (dm.full_manifest()["n_frames"] == 16).all()
    item = dm.dataset("test")[0]
    assert frame_index(item["video"]).tolist() == list(range(16))  # 1.jpg … 16.jpg in numeric order


def test_ial_official_sampling_by_hand():
    """Indices worked out by hand from the official rule (dataset_DFEW.py: _get_train/_get_test_indices)."""
    rng = np.random.default_rng(0)
    # n=37, U=16: tick = 37/16 = 2.3125, start_u = int(1.15625 + 2.3125·u)
    assert clip_indices(37, 16, 1, False, rng, rule="ial_official").tolist() == [
        1, 3, 5, 8, 10, 12, 15, 17, 19, 21, 24, 26, 28, 31, 33, 35]
    # n=16: tick = 1 → frames 0…15 (the official code has frame 0 sixteen times here: its bug, not kept)
    assert clip_indices(16, 16, 1, False, rng, rule="ial_official").tolist() == list(range(16))
    # U×V = 8×2, n=20: tick = 19/8 = 2.375, start_u = int(1.1875 + 2.375·u) = 1,3,5,8,10,13,15,17
    assert clip_indices(20, 8, 2, False, rng, rule="ial_official").tolist() == [
        1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18]
    # training, n=37: segment length 37 // 16 = 2, so segment u draws 2u or 2u+1 and frames 32…36 never
    draws = np.stack([clip_indices(37, 16, 1, True, rng, rule="ial_official") for _ in range(400)])
    for u in range(16):
        assert set(draws[:, u].tolist()) == {2 * u, 2 * u + 1}
    # training, 8×2, n=20: length (20 − 2 + 1) // 8 = 2, pairs (s, s+1) with s ∈ {2u, 2u+1}
    pairs = np.stack([clip_indices(20, 8, 2, True, rng, rule="ial_official").reshape(8, 2) for _ in range(400)])
    assert (pairs[..., 1] == pairs[..., 0] + 1).all()
    for u in range(8):
        assert set(pairs[:, u, 0].tolist()) == {2 * u, 2 * u + 1}
    with pytest.raises(ValueError, match="clip sampling rule must be one of"):
        clip_indices(37, 16, 1, False, rng, rule="official")


def test_dfew_clip_sampling_key_reaches_the_loader(mini):
    root, _ = mini
    dm = make("dfew", root / "DFEW", fold=1, normalize="zero_one", image_size=32, hflip=False,
              select_on_test=True, clip_sampling="ial_official", drop_short=True)
    ds = dm.dataset("test")
    for i in range(len(ds)):
        item = ds[i]
        n = len(ds.items.iloc[i]["frames"])
        tick = n / 16.0
        expected = [int(tick / 2.0 + tick * u) for u in range(16)]
        assert frame_index(item["video"]).tolist() == expected == item["meta"]["frames"].tolist()
    with pytest.raises(ValueError, match="clip_sampling must be one of"):
        make("dfew", root / "DFEW", clip_sampling="tsn")


def test_dfew_warns_once_when_alphabetical_frame_order_differs(mini, tmp_path):
    root, truth = mini
    t = truth["dfew"]
    # the writer names frames '<id>_<k:05d>.jpg' for odd ids and unpadded '<k>.jpg' for even ids;
    # unpadded names sort differently as strings only from 10 frames on ('10.jpg' < '2.jpg')
    expected = sorted(f"{cid:05d}" for cid, n in zip(t["ids"], t["lengths"]) if cid % 2 == 0 and n >= 10)
    assert 0 < len(expected) < len(t["ids"])
    keys = dict(fold=1, cache_dir=str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match=r"dfew: (\d+) clip folders' frame names sort differently") as seen:
        dm = make("dfew", root / "DFEW", **keys)
        dm.full_manifest()
    assert len([w for w in seen if "sort differently" in str(w.message)]) == 1
    message = str(next(w.message for w in seen if "sort differently" in str(w.message)))
    assert f"dfew: {len(expected)} clip folders'" in message and f"first: {root / 'DFEW'}" in message
    note = dm.skipped().set_index("item").loc[f"{len(expected)} clips"]
    assert any(note["file"].endswith(e) for e in expected) and "numeric order is used" in note["reason"]
    full = dm.full_manifest()  # the numeric order is kept
    for frames in full.frames:
        assert [releases_trailing(p) for p in frames] == list(range(1, len(frames) + 1))


def test_dfew_repeated_row_names_both_places(tmp_path):
    """A clip listed twice in one split file is reported with the file:line of each listing."""
    releases.write_dfew(tmp_path / "DFEW", n_clips=10, short=())
    csv = tmp_path / "DFEW" / "EmoLabel_DataSplit" / "train(single-labeled)" / "set_1.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([*lines, lines[1]]) + "\n")  # header is line 1; repeat line 2 as the last line
    clip = int(lines[1].split(",")[0])
    with pytest.raises(DataFormatError, match=rf"clip {clip:05d} at \S*set_1\.csv:2 and \S*set_1\.csv:{len(lines) + 1}"):
        make("dfew", tmp_path / "DFEW", fold=1).manifest("train")
