"""DISFA (frame extraction, SN010, ≥2 rule), unlabeled videos (pairs, clips), sequences, DDP sampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import releases
from data_modules.disfa import DISFA_AUS, DISFA_INTENSITY_AUS, PARTS
from data_modules.face import EvalDistributedSampler
from data_modules.sampling import sparse_label_mask
from releases import make


def grey_index(img: torch.Tensor) -> int:
    return int(round((img.mean().item() * 255 - 10) / 7))


@pytest.mark.parametrize("fold,test_part", [(1, 3), (3, 1)])
def test_disfa_folds_counts_and_sn010(mini, fold, test_part):
    root, truth = mini
    dm = make("disfa", root / "DISFA", fold=fold)
    splits = {s: dm.manifest(s) for s in ("train", "val", "test")}
    n_lines = {s: len(v[1]) for s, v in truth["disfa"].items()}
    assert len(splits["test"]) == sum(n_lines[s] for s in PARTS[test_part])
    assert sum(map(len, splits.values())) == sum(n_lines.values())
    subs = {k: set(v["subject"]) for k, v in splits.items()}
    assert not subs["train"] & subs["test"] and not subs["val"] & subs["test"] and not subs["val"] & subs["train"]
    full = dm.full_manifest()
    assert (full.subject == "SN010").sum() == n_lines["SN010"] == n_lines["SN001"] - 1
    sk = dm.skipped()
    assert ((sk["item"] == "SN010") & sk["reason"].str.contains("1 video frames after the last label")).sum() == 1


def test_disfa_occurrence_threshold_and_frame_mapping(mini):
    root, truth = mini
    dm = make("disfa", root / "DISFA", fold=1, normalize="zero_one", select_on_test=True, image_size=16, hflip=False)
    ds = dm.dataset("test")
    assert dm.au_names == [f"AU{a:02d}" for a in DISFA_AUS]
    for i in range(0, len(ds), 3):
        item = ds[i]
        s, f = item["meta"]["subject"], item["meta"]["frame"]
        expected = np.array([truth["disfa"][s][a][f - 1] >= 2 for a in DISFA_AUS], np.float32)
        assert torch.equal(item["au"], torch.from_numpy(expected)) and bool(item["au_mask"].all())
        assert grey_index(item["image"]) == f - 1  # label line f ↔ decoded frame f−1
    dmi = make("disfa", root / "DISFA", task="au_intensity")
    item = dmi.dataset("test")[0]
    s, f = item["meta"]["subject"], item["meta"]["frame"]
    assert item["intensity"].tolist() == [float(truth["disfa"][s][a][f - 1]) for a in DISFA_INTENSITY_AUS]


def test_disfa_frames_extracted_once_and_right_camera_spelling(tmp_path):
    releases.write_disfa(tmp_path / "DISFA", subjects=["SN001", "SN003"], n_frames=4,
                         camera_dir="Video_RightCamera", prefix="Right")
    dm = make("disfa", tmp_path / "DISFA", camera="right")
    paths = dm.full_manifest()["path"].tolist()
    first = tmp_path / "DISFA" / ".affectlab_cache" / "frames" / "Video_RightCamera" / "SN001" / "00000.jpg"
    assert str(first) in paths
    mtime = first.stat().st_mtime_ns
    (tmp_path / "DISFA" / "ActionUnit_Labels" / "SN001" / "SN001_au1.txt").touch()  # invalidates the manifest
    make("disfa", tmp_path / "DISFA", camera="right").full_manifest()
    assert first.stat().st_mtime_ns == mtime  # frames reused, not re-extracted
    with pytest.raises(Exception, match="Videos_LeftCamera"):
        make("disfa", tmp_path / "DISFA", camera="left").full_manifest()


def test_disfa_subject_outside_the_published_parts_is_recorded(tmp_path):
    releases.write_disfa(tmp_path / "DISFA", subjects=["SN001", "SN099"], n_frames=3)
    dm = make("disfa", tmp_path / "DISFA")
    assert "SN099" not in set(dm.manifest("train")["subject"]) | set(dm.manifest("test")["subject"])
    assert dm.skipped().set_index("item").loc["SN099", "reason"] == \
        "subject in no published part (kept out of every fold)"


def test_disfa_out_of_range_intensity_names_file_and_line(tmp_path):
    releases.write_disfa(tmp_path / "DISFA", subjects=["SN001"], n_frames=4)
    p = tmp_path / "DISFA" / "ActionUnit_Labels" / "SN001" / "SN001_au12.txt"
    lines = p.read_text().splitlines()
    lines[2] = "3,7"
    p.write_text("\n".join(lines) + "\n")
    from data_modules.frames import DataFormatError

    with pytest.raises(DataFormatError, match=r"SN001_au12\.txt:3: AU intensity code 7 out of range"):
        make("disfa", tmp_path / "DISFA").full_manifest()


@pytest.fixture(scope="module")
def videos_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("vox") / "videos"
    for ident in ("id001", "id002", "id003"):
        for clip in ("a", "b"):
            d = root / ident / clip
            d.mkdir(parents=True)
            for k in range(30):
                import cv2

                cv2.imwrite(str(d / f"{k + 1:05d}.jpg"), releases.grey(k, 20, 20))
    releases.write_video(root / "id004" / "v1.avi", 25, size=(20, 20))
    (root / "id005" / "tiny").mkdir(parents=True)
    import cv2

    cv2.imwrite(str(root / "id005" / "tiny" / "1.jpg"), releases.grey(0, 20, 20))
    return root


def test_videos_pairs_gap_and_identity_split(videos_root):
    dm = make("videos", videos_root, task="pairs", pair_gap_min=3, pair_gap_max=6, normalize="zero_one",
              image_size=20, hflip=False, val_fraction=0.25)
    full = dm.full_manifest()
    assert len(full) == 7 and "id004/v1.avi" in set(full["clip"])
    assert any("min_frames" in r for r in dm.skipped()["reason"])  # the 1-frame track is listed
    tr, va = dm.manifest("train"), dm.manifest("val")
    assert not set(tr.subject) & set(va.subject) and len(set(va.subject)) == 1
    ds = dm.dataset("train")
    for i in range(len(ds)):
        for _ in range(5):
            item = ds[i]
            s, t = item["meta"]["frames"].tolist()
            assert 3 <= abs(t - s) <= 6 and item["meta"]["gap"] == abs(t - s)
            if item["meta"]["clip"] != "id004/v1.avi":  # lossless-enough JPEG frames carry their index
                assert grey_index(item["source"]) == s and grey_index(item["target"]) == t


def test_videos_clips_shape(videos_root):
    dm = make("videos", videos_root, task="clips", clip_segments=4, clip_frames_per_segment=2, image_size=20)
    item = dm.dataset("train")[0]
    assert item["video"].shape == (8, 3, 20, 20) and "label" not in item


def test_items_per_track_repeats_training_clips_only(videos_root):
    one = make("videos", videos_root, task="clips", clip_segments=1, clip_frames_per_segment=4, image_size=20,
               hflip=False, val_fraction=0.25)
    three = make("videos", videos_root, task="clips", clip_segments=1, clip_frames_per_segment=4, image_size=20,
                 hflip=False, val_fraction=0.25, items_per_track=3)
    tr1, tr3 = one.dataset("train"), three.dataset("train")
    assert len(tr3) == 3 * len(tr1) and len(three.dataset("val")) == len(one.dataset("val"))
    clips = [tr3[i]["meta"]["clip"] for i in range(len(tr3))]
    assert all(clips.count(c) == 3 for c in set(clips)) and set(clips) == set(one.manifest("train")["clip"])
    # the repeated items draw their own windows: 30-frame tracks, 4 frames, 27 possible starts
    starts = {int(tr3[i]["meta"]["frames"][0]) for i in range(len(tr3)) for _ in range(4)}
    assert len(starts) > 3
    with pytest.raises(ValueError, match="items_per_track"):
        make("videos", videos_root, task="clips", items_per_track=0)


def test_disfa_training_sequences_as_unlabelled_clips(mini):
    """A labelled frame dataset serves as unlabelled video: task clips on its training split (one
    track per sequence, consecutive frames, landmark-aligned), never the test subjects."""
    root, truth = mini
    dm = make("disfa", root / "DISFA", task="clips", clip_segments=1, clip_frames_per_segment=3, fold=1,
              image_size=16, items_per_track=2)
    train = dm.dataset("train")
    seqs = [train[i]["meta"]["clip"] for i in range(len(train))]
    assert len(seqs) == 2 * dm.manifest("train")["sequence"].nunique()
    assert not set(seqs) & set(PARTS[3])  # fold 1 tests part 3
    item = train[0]
    f = item["meta"]["frames"]
    assert item["video"].shape == (3, 3, 16, 16) and torch.equal(f, f[0] + torch.arange(3))


def test_sequences_sparse_mask_train_full_mask_test(mini):
    root, truth = mini
    dm = make("disfa", root / "DISFA", task="sequences", sequence_length=4, label_fraction=0.25, fold=1,
              select_on_test=True, image_size=16)
    tr, te = dm.dataset("train"), dm.dataset("test")
    item = tr[0]
    assert item["video"].shape == (4, 3, 16, 16) and item["intensity"].shape == (4, 12)
    # per sequence of n frames, max(1, round(0.25·n)) labelled frames in training, all frames in test
    for ds, sparse in ((tr, True), (te, False)):
        by_seq: dict[str, set] = {}
        for i in range(len(ds)):
            it = ds[i]
            rows = it["intensity_mask"].any(1) & it["frame_mask"]
            by_seq.setdefault(it["meta"]["sequence"], set()).update(it["meta"]["frames"][rows].tolist())
        for seq, kept in by_seq.items():
            n = len(truth["disfa"][seq][1])
            assert len(kept) == (max(1, round(0.25 * n)) if sparse else n)
    again = make("disfa", root / "DISFA", task="sequences", sequence_length=4, label_fraction=0.25, fold=1,
                 select_on_test=True, image_size=16).dataset("train")
    assert torch.equal(again[0]["intensity_mask"], tr[0]["intensity_mask"])  # seeded: same mask every run


def test_labelled_windows_only_keeps_every_labelled_frame(mini):
    root, _ = mini
    keys = dict(task="sequences", sequence_length=3, label_fraction=0.05, fold=1, image_size=16)
    every = make("disfa", root / "DISFA", **keys).dataset("train")
    some = make("disfa", root / "DISFA", labelled_windows_only=True, **keys).dataset("train")

    def labelled(ds):
        return {(w["sequence"], int(f)) for w in ds.windows for f, m in zip(w["frames"], w["mask"].any(1)) if m}

    assert all(w["mask"].any() for w in some.windows) and len(some) < len(every)
    assert labelled(some) == labelled(every) and len(labelled(every)) > 0
    assert len(make("disfa", root / "DISFA", labelled_windows_only=True, **keys).dataset("test")) == \
        len(make("disfa", root / "DISFA", **keys).dataset("test"))


def test_sparse_label_mask_fraction():
    m = sparse_label_mask(1000, 0.02, np.random.default_rng(1))
    assert m.sum() == 20 and not np.array_equal(m, sparse_label_mask(1000, 0.02, np.random.default_rng(2)))


def test_eval_sampler_counts_each_item_once():
    data = list(range(65))
    shards = [list(EvalDistributedSampler(data, 2, r)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == data and len(shards[0]) + len(shards[1]) == 65
    shards3 = [list(EvalDistributedSampler(data, 3, r)) for r in range(3)]
    assert sorted(sum(shards3, [])) == data


def test_train_loader_drops_last_and_eval_keeps_all(mini):
    root, _ = mini
    dm = make("dfew", root / "DFEW", batch_size=4, image_size=16, clip_segments=2)
    dm.setup("fit")
    n = len(dm.manifest("train"))
    assert sum(len(b["label"]) for b in dm.train_dataloader()) == (n // 4) * 4
    dm.setup("test")
    assert sum(len(b["label"]) for b in dm.test_dataloader()) == len(dm.manifest("test"))


def test_disfa_landmarks_align_the_eyes(tmp_path):
    releases.write_disfa(tmp_path / "DISFA", subjects=["SN001", "SN002"], n_frames=5)
    releases.write_disfa_landmarks(tmp_path / "DISFA", "SN001", 5)
    size = 64
    dm = make("disfa", tmp_path / "DISFA", fold=3, select_on_test=True, image_size=size, normalize="zero_one",
              hflip=False)
    # SN002 has no landmarks: its test frames are kept with the release-median crop and counted
    test = dm.manifest("test")
    assert set(test["subject"]) == {"SN001", "SN002"}
    assert "release's median landmarks" in dm.skipped().set_index("item").loc["SN002", "reason"]
    assert dm.test_set_record()["landmark_fallback"] == {"release_median": int((test["subject"] == "SN002").sum())}
    ds = dm.dataset("test")
    for i in range(len(ds)):
        item = ds[i]
        if item["meta"]["subject"] != "SN001":
            continue
        img = item["image"].mean(0).numpy()
        ys, xs = np.nonzero(img > 0.8)
        for sel, ex in ((xs < size / 2, 0.34 * size), (xs >= size / 2, 0.66 * size)):
            assert abs(xs[sel].mean() - ex) < 1.5 and abs(ys[sel].mean() - 0.4 * size) < 1.5
        lm = item["landmarks"].numpy()
        assert lm.shape == (66, 2)
        np.testing.assert_allclose(lm[36:42].mean(0), (0.34 * size, 0.4 * size), atol=0.6)


@pytest.mark.parametrize("independent", [True, False])
def test_pair_jitter_independent_or_shared(tmp_path, independent):
    import cv2

    d = tmp_path / "videos" / "id001" / "t"
    d.mkdir(parents=True)
    for k in range(8):
        img = np.zeros((16, 16, 3), np.uint8)
        img[:, 8:] = 200  # bright right half: a flip moves it to the left
        cv2.imwrite(str(d / f"{k}.png"), img)
    (tmp_path / "videos" / "id002").mkdir()
    import shutil

    shutil.copytree(d, tmp_path / "videos" / "id002" / "t")
    dm = make("videos", tmp_path / "videos", task="pairs", image_size=16, normalize="zero_one", hflip=True,
              pair_independent_jitter=independent, val_fraction=0.5)
    ds = dm.dataset("train")
    differ = 0
    for _ in range(40):
        it = ds[0]
        side = [bool(x[0, :, 8:].mean() > x[0, :, :8].mean()) for x in (it["source"], it["target"])]
        differ += side[0] != side[1]
    assert (differ > 0) if independent else (differ == 0)


def test_workers_draw_independent_augmentations(tmp_path):
    import cv2
    from torch.utils.data import DataLoader

    for ident in ("id001", "id002"):
        d = tmp_path / "videos" / ident / "t"
        d.mkdir(parents=True)
        for k in range(4):
            img = np.zeros((16, 16, 3), np.uint8)
            img[:, 8:] = 200
            cv2.imwrite(str(d / f"{k}.png"), img)
    dm = make("videos", tmp_path / "videos", task="clips", clip_segments=1, clip_frames_per_segment=1,
              image_size=16, normalize="zero_one", val_fraction=0.0)
    ds = dm.dataset("train")
    many = torch.utils.data.Subset(ds, [0] * 24)
    flips = [bool(b["video"][0, 0, 0, :, :8].mean() > b["video"][0, 0, 0, :, 8:].mean())
             for b in DataLoader(many, batch_size=1, num_workers=2)]
    # DataLoader alternates workers: identical RNG copies would give identical flip sequences
    assert flips[0::2] != flips[1::2]


def test_items_per_track_repeats_pairs_of_every_track(videos_root):
    one = make("videos", videos_root, task="pairs", normalize="zero_one", image_size=20, hflip=False,
               val_fraction=0.25)
    three = make("videos", videos_root, task="pairs", normalize="zero_one", image_size=20, hflip=False,
                 val_fraction=0.25, items_per_track=3)
    n = len(one.dataset("train"))
    ds = three.dataset("train")
    assert len(ds) == 3 * n
    clips = [ds[i]["meta"]["clip"] for i in range(len(ds))]
    assert clips == [one.dataset("train")[i % n]["meta"]["clip"] for i in range(3 * n)]
    # evaluation items stay seeded per item index: the repeats of a track are different draws
    va = make("videos", videos_root, task="pairs", normalize="zero_one", image_size=20, hflip=False,
              val_fraction=0.25, items_per_track=8, pair_gap_min=1, pair_gap_max=20).dataset("val")
    frames = {tuple(va[i]["meta"]["frames"].tolist()) for i in range(len(va))}
    assert len(frames) > 1 and all(va[i]["meta"]["frames"].tolist() == va[i]["meta"]["frames"].tolist()
                                   for i in range(len(va)))
    with pytest.raises(ValueError, match="items_per_track"):
        make("videos", videos_root, task="pairs", items_per_track=0)



def test_disfa_gap_in_a_label_file_is_a_format_error_naming_file_and_line(tmp_path):
    """Issue #18 item 2: a missing line inside SN001_au1.txt used to drop frame 5 for all 12 AUs."""
    from data_modules.frames import DataFormatError

    releases.write_disfa(tmp_path / "DISFA", subjects=["SN001", "SN003"], n_frames=6)
    p = tmp_path / "DISFA" / "ActionUnit_Labels" / "SN001" / "SN001_au1.txt"
    p.write_text("\n".join(line for line in p.read_text().splitlines() if not line.startswith("5,")) + "\n")
    with pytest.raises(DataFormatError, match=r"SN001_au1\.txt:5: frame 6; frame 5 is missing: expected frames numbered 1, 2, 3"):
        make("disfa", tmp_path / "DISFA", fold=3).full_manifest()
