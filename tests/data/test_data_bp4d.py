"""BP4D: protocol counts, label values and masks, landmarks/alignment, caching and error messages."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import releases
from data_modules.bp4d import FERA2015_DEVEL, PARTS, read_2d_features
from data_modules.frames import DataFormatError
from releases import make


@pytest.mark.parametrize("fold,test_part", [(1, 3), (2, 2), (3, 1)])
def test_fold_counts_and_subject_disjointness(mini, fold, test_part):
    root, truth = mini
    dm = make("bp4d", root / "BP4D", fold=fold)
    expected_test = sum(len(fr) for (s, _), (fr, _) in truth["bp4d"]["occ"].items() if s in PARTS[test_part])
    splits = {s: dm.manifest(s) for s in ("train", "val", "test")}
    assert len(splits["test"]) == expected_test
    assert sum(len(v) for v in splits.values()) == sum(len(fr) for fr, _ in truth["bp4d"]["occ"].values())
    subs = {k: set(v["subject"]) for k, v in splits.items()}
    assert subs["test"] == set(PARTS[test_part])
    assert not subs["train"] & subs["val"] and not subs["train"] & subs["test"] and not subs["val"] & subs["test"]
    assert len(subs["val"]) == round(0.15 * 27)


def test_labels_masks_and_image_names(mini):
    root, truth = mini
    dm = make("bp4d", root / "BP4D", fold=3, select_on_test=True, align=False)
    df = dm.manifest("test")  # part 1 holds F001, whose T1 frame 2 has AU1 coded 9
    ds = dm.dataset("test")
    aus = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]
    for i in range(0, len(df), 7):
        item = ds[i]
        s, t, f = item["meta"]["subject"], *item["meta"]["sequence"].split("/")[1:], item["meta"]["frame"]
        frames, codes = truth["bp4d"]["occ"][(s, t)]
        c = codes[list(frames).index(f), [a - 1 for a in aus]]
        assert torch.equal(item["au_mask"], torch.from_numpy(c != 9))
        assert torch.equal(item["au"], torch.from_numpy(np.where(c == 9, 0, c).astype(np.float32)))
    frames, codes = truth["bp4d"]["occ"][("F001", "T1")]
    row = df[(df.sequence == "F001/T1") & (df.frame == frames[1])].index[0]
    assert ds[row]["au_mask"][0].item() is False
    # 3- and 4-digit image names both resolve: no frame skipped for a missing image
    assert not dm.skipped()["reason"].str.contains("missing").any()
    assert all(int(p.rsplit("/", 1)[1][:-4]) == f for p, f in zip(df["path"], df["frame"]))


def test_frame_offset_switch_follows_the_user_guide(mini):
    root, _ = mini
    dm = make("bp4d", root / "BP4D", frame_offset=1)
    df = dm.manifest("test")
    assert (df["image_index"] == df["frame"] - 1).all()
    assert all(int(p.rsplit("/", 1)[1][:-4]) == f - 1 for p, f in zip(df["path"], df["frame"]))


def test_intensity_fera2015_masks_code_9(mini):
    root, truth = mini
    dm = make("bp4d", root / "BP4D", task="au_intensity")
    test = dm.manifest("test")
    assert set(test["subject"]) == set(FERA2015_DEVEL) and dm.protocol == "bp4d/fera2015"
    assert dm.au_names == ["AU06", "AU10", "AU12", "AU14", "AU17"]
    ds = dm.dataset("test")
    n_masked = 0
    for i in range(0, len(test), 5):
        item = ds[i]
        s, t = item["meta"]["sequence"].split("/")
        frames, ints = truth["bp4d"]["int"][(s, t)]
        k = list(frames).index(item["meta"]["frame"])
        v = np.array([ints[a][k] for a in (6, 10, 12, 14, 17)])
        assert torch.equal(item["intensity_mask"], torch.from_numpy(v != 9))
        assert torch.equal(item["intensity"], torch.from_numpy(np.where(v == 9, 0, v).astype(np.float32)))
        n_masked += int((v == 9).sum())
    assert n_masked > 0


def test_landmarks_v73_and_v5_mat_agree(tmp_path):
    releases.write_bp4d(tmp_path / "a", subjects=["F001"], tasks=("T1",), mat="v73")
    releases.write_bp4d(tmp_path / "b", subjects=["F001"], tasks=("T1",), mat="v5")
    a = read_2d_features(tmp_path / "a" / "2DFeatures" / "F001_T1.mat")
    b = read_2d_features(tmp_path / "b" / "2DFeatures" / "F001_T1.mat")
    assert len(a) == len(b) and [x is None for x in a] == [x is None for x in b]
    assert any(x is None for x in a)
    for x, y in zip(a, b):
        if x is not None:
            np.testing.assert_allclose(x, y, atol=1e-5)


def test_alignment_places_the_eyes(mini):
    root, truth = mini
    size = 64
    dm = make("bp4d", root / "BP4D", image_size=size, normalize="zero_one", hflip=False,
              align_eye_y=0.4, align_eye_distance=0.32)
    ds = dm.dataset("test")
    for i in (0, 5, 11):
        item = ds[i]
        img = item["image"].mean(0).numpy()
        ys, xs = np.nonzero(img > 0.9)  # the two white eye discs
        left, right = xs < size / 2, xs >= size / 2
        expected = [(0.34 * size, 0.4 * size), (0.66 * size, 0.4 * size)]
        for sel, (ex, ey) in zip((left, right), expected):
            assert abs(xs[sel].mean() - ex) < 1.5 and abs(ys[sel].mean() - ey) < 1.5
        lm = item["landmarks"].numpy()
        np.testing.assert_allclose(lm[19:25].mean(0), expected[0], atol=0.6)
        np.testing.assert_allclose(lm[25:31].mean(0), expected[1], atol=0.6)


def test_alignment_of_large_frames_decodes_reduced(tmp_path):
    releases.write_bp4d(tmp_path / "BP4D", subjects=["F001"], tasks=("T1",), size=(480, 640))
    size = 64
    dm = make("bp4d", tmp_path / "BP4D", fold=3, select_on_test=True, image_size=size, normalize="zero_one",
              hflip=False)
    ds = dm.dataset("test")
    assert ds.transform.alignment_reduction(dm.manifest("test")["landmarks"][0]) == 8
    for i in range(len(ds)):
        item = ds[i]
        img = item["image"].mean(0).numpy()
        w = np.clip((img - 0.7) / 0.3, 0, 1)  # weight of the white eye discs
        ys, xs = np.mgrid[0:size, 0:size]
        for sel, ex in ((xs < size / 2, 0.34 * size), (xs >= size / 2, 0.66 * size)):
            cx = (xs * w * sel).sum() / (w * sel).sum()
            cy = (ys * w * sel).sum() / (w * sel).sum()
            assert abs(cx - ex) < 1.0 and abs(cy - 0.4 * size) < 1.0


def test_flip_mirrors_and_reorders_landmarks(mini):
    root, _ = mini
    dm = make("bp4d", root / "BP4D", image_size=64, normalize="zero_one", hflip=True)
    ds = dm.dataset("train")
    seen = set()
    for _ in range(30):
        lm = ds[0]["landmarks"].numpy()
        # after the permutation, points 20–25 are always the image-left eye
        assert lm[19:25, 0].mean() < lm[25:31, 0].mean()
        seen.add(round(float(lm[:, 0].mean()), 2))
    assert len(seen) == 2  # flipped and unflipped both occurred


def test_manifest_cache_reused_and_invalidated(tmp_path, monkeypatch):
    releases.write_bp4d(tmp_path / "BP4D", subjects=["F001", "F003"], tasks=("T1",))
    dm = make("bp4d", tmp_path / "BP4D")
    n = len(dm.full_manifest())
    from data_modules.bp4d import BP4DDataModule

    def boom(self):
        raise AssertionError("re-parsed although nothing changed")

    monkeypatch.setattr(BP4DDataModule, "_parse", boom)
    assert len(make("bp4d", tmp_path / "BP4D").full_manifest()) == n
    monkeypatch.undo()
    csv = tmp_path / "BP4D" / "AUCoding" / "AU_OCC" / "F001_T1.csv"
    csv.write_text("\n".join(csv.read_text().splitlines()[:-1]) + "\n")  # drop one frame
    assert len(make("bp4d", tmp_path / "BP4D").full_manifest()) == n - 1


def test_missing_root_names_path_and_layout(tmp_path):
    with pytest.raises(DataFormatError) as err:
        make("bp4d", tmp_path / "nowhere").manifest("train")
    assert str(tmp_path / "nowhere") in str(err.value) and "AUCoding/AU_OCC" in str(err.value)
    (tmp_path / "BP4D" / "AUCoding" / "AU_OCC").mkdir(parents=True)
    with pytest.raises(DataFormatError, match=r"missing folder .*Sequences\(2D\+3D\)"):
        make("bp4d", tmp_path / "BP4D").manifest("train")


def test_bad_header_and_bad_code_name_file_and_line(tmp_path):
    releases.write_bp4d(tmp_path / "BP4D", subjects=["F001"], tasks=("T1",))
    csv = tmp_path / "BP4D" / "AUCoding" / "AU_OCC" / "F001_T1.csv"
    good = csv.read_text()
    csv.write_text(good.replace("0,1,2,3", "frame,1,2,3", 1))
    with pytest.raises(DataFormatError, match=r"F001_T1\.csv:1: bad header"):
        make("bp4d", tmp_path / "BP4D").manifest("train")
    lines = good.splitlines()
    fields = lines[3].split(",")
    fields[1] = "7"
    lines[3] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"F001_T1\.csv:4: AU occurrence code 7 out of range"):
        make("bp4d", tmp_path / "BP4D").manifest("train")


def test_corrupt_images_are_counted_and_fail_above_fraction(tmp_path):
    releases.write_bp4d(tmp_path / "BP4D", subjects=["F001", "F003"], tasks=("T1", "T2"))
    jpgs = sorted((tmp_path / "BP4D" / "Sequences(2D+3D)" / "F001" / "T1").glob("*.jpg"))
    jpgs[-2].write_bytes(b"not a jpeg")
    dm = make("bp4d", tmp_path / "BP4D", fold=1, select_on_test=True, max_bad_fraction=0.5, align=False)
    dm2 = make("bp4d", tmp_path / "BP4D", fold=1, select_on_test=True, max_bad_fraction=0.0, align=False)
    ds, ds2 = dm.dataset("train"), dm2.dataset("train")
    bad_row = int(dm.manifest("train")["path"].tolist().index(str(jpgs[-2])))
    item = ds[bad_row]  # replaced by the next decodable frame, and counted
    assert ds.bad.bad == [str(jpgs[-2])] and item["image"].shape[0] == 3
    from data_modules.frames import TooManyBadImages

    with pytest.raises(TooManyBadImages, match="max_bad_fraction=0.0"):
        ds2[bad_row]


def test_pos_weight_matches_label_rates(mini):
    root, truth = mini
    dm = make("bp4d", root / "BP4D", fold=1)
    train_subjects = set(dm.manifest("train")["subject"])
    codes = np.concatenate([c for (s, _), (_, c) in truth["bp4d"]["occ"].items() if s in train_subjects])
    sel = codes[:, [a - 1 for a in (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)]]
    expected = ((sel == 1).sum(0) / (sel != 9).sum(0)).astype(np.float32)
    np.testing.assert_allclose(dm.train_pos_rate().numpy(), expected, rtol=1e-6)


def test_unknown_config_key_lists_valid_keys(mini):
    from affectlab.config import ConfigError

    with pytest.raises(ConfigError, match="frame_offset"):
        make("bp4d", mini[0] / "BP4D", frame_ofset=1)


def test_fera2015_packaging_is_read(tmp_path):
    """FERA2015 copy: images under BP4D-training/, occurrence CSVs directly in AUCoding/, intensity
    under 'AU Intensity Codes3.0/AUNN/'."""
    root = tmp_path / "BP4D"
    truth = releases.write_bp4d(root, subjects=["F001", "F002"], tasks=("T1",))
    (root / "Sequences(2D+3D)").rename(root / "BP4D-training")
    for f in (root / "AUCoding" / "AU_OCC").iterdir():
        f.rename(root / "AUCoding" / f.name)
    (root / "AUCoding" / "AU_OCC").rmdir()
    (root / "AUCoding" / "AU_INT").rename(root / "AU Intensity Codes3.0")
    dm = make("bp4d", root, task="au_intensity")
    assert len(dm.manifest("train")) + len(dm.manifest("val")) == len(truth["int"][("F001", "T1")][0])
    assert len(dm.manifest("test")) == len(truth["int"][("F002", "T1")][0])


def test_unreadable_test_item_fails_naming_the_file_or_is_excluded_and_listed(tmp_path):
    """Issue #18 item 1: an undecodable test frame was silently swapped for the next test item."""
    from torch.utils.data import DataLoader

    from data_modules.frames import UnreadableItem

    releases.write_bp4d(tmp_path / "BP4D", subjects=["F001", "F003", "F004"], tasks=("T1", "T2"))
    keys = dict(fold=1, align=False, max_bad_fraction=0.5)
    test_paths = make("bp4d", tmp_path / "BP4D", **keys).manifest("test")["path"].tolist()
    bad = test_paths[2]
    Path(bad).write_bytes(np.random.default_rng(0).bytes(512))

    dm = make("bp4d", tmp_path / "BP4D", **keys)
    with pytest.raises(UnreadableItem, match=re.escape(bad)):
        dm.dataset("test")[2]
    with pytest.raises(UnreadableItem) as err:  # raised in a worker: the message stays the plain one
        list(DataLoader(dm.dataset("test"), batch_size=4, num_workers=1))
    assert str(err.value).startswith(f"bp4d: test image {bad} cannot be decoded") and "Traceback" not in str(err.value)

    ex = make("bp4d", tmp_path / "BP4D", unreadable_test_items="exclude", **keys)
    assert ex.exclude_unreadable_test_items() == [bad]
    kept = [ex.dataset("test")[i]["meta"]["index"] for i in range(len(ex.dataset("test")))]
    assert kept == [i for i in range(len(test_paths)) if i != 2]  # exactly the others, none substituted

    train_bad = dm.manifest("train")["path"].iloc[0]  # training skips (next item), logs the file
    Path(train_bad).write_bytes(b"not a jpeg")
    dm.log_unreadable_to(tmp_path / "log")
    assert dm.dataset("train")[0]["meta"]["index"] == 1
    assert (tmp_path / "log" / "train.txt").read_text().split() == [train_bad]


def test_intensity_rows_that_do_not_match_au_occ_are_refused_or_recorded(tmp_path):
    """A duplicated frame is a corrupt file; rows missing for AU_OCC frames (coded 9) and rows outside
    AU_OCC's frames are listed in the skipped record; no file of an AU anywhere is a misread layout."""
    root = tmp_path / "BP4D"
    truth = releases.write_bp4d(root, subjects=["F001", "F002"], tasks=("T1",), n_frames=5)
    au12 = root / "AUCoding" / "AU_INT" / "AU12" / "F001_T1_AU12.csv"
    good = au12.read_text()
    lines = good.splitlines()
    frames, _ = truth["int"][("F001", "T1")]
    au12.write_text("\n".join(lines[1:] + [f"{frames[-1] + 1},3", f"{frames[-1] + 2},4"]) + "\n")
    dm = make("bp4d", root, task="au_intensity")
    sk = dm.skipped()
    reasons = sk.loc[sk["file"] == str(au12), "reason"].tolist()
    assert "1 AU_OCC frame(s) without an AU12 intensity row (coded 9)" in reasons
    assert f"2 AU12 intensity row(s) for frames outside AU_OCC's (frames {frames[-1] + 1}…{frames[-1] + 2}) not used" \
        in reasons
    rows = dm.manifest("train")
    rows = pd.concat([rows, dm.manifest("val")])
    first = rows[(rows["sequence"] == "F001/T1") & (rows["frame"] == int(frames[0]))]
    assert first["int12"].tolist() == [9]

    au12.write_text(good + lines[1] + "\n")
    with pytest.raises(DataFormatError, match=rf"F001_T1_AU12\.csv:{len(lines) + 1}: frame {frames[1]} is coded again "
                                              r"\(first on line 2\)"):
        make("bp4d", root, task="au_intensity").manifest("train")

    au12.write_text(good)
    shutil.rmtree(root / "AUCoding" / "AU_INT" / "AU14")
    with pytest.raises(DataFormatError, match=r"no AU14 intensity file for any of the 2 sequences; expected .*AU_INT/AU14/"
                                              r"<Subject>_<Task>_AU14\.csv"):
        make("bp4d", root, task="au_intensity").manifest("train")


def test_v73_features_without_fit_name_the_file(tmp_path):
    import h5py

    path = tmp_path / "F001_T1.mat"
    with h5py.File(path, "w") as f:
        f.create_dataset("landmarks", data=np.zeros((2, 49)))
    with pytest.raises(DataFormatError, match=r"F001_T1\.mat: MATLAB v7\.3 file without the variable 'fit'.*'landmarks'"):
        read_2d_features(path)
