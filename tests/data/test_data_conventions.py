"""Conventions a real release could hold either way: decided from the data, never a lost test frame.

Miniature releases are written by ``releases.py`` (independent of the loaders) in both readings of
BP4D's ``2DFeatures`` ("one element per frame": per image from 0000, or per AU-coded frame).
"""
from __future__ import annotations

import argparse

import numpy as np
import pytest

import releases
from data_modules.bp4d import FOLD_TEST_PART, PARTS, fit_indexing, resolve_fit_indexing
from data_modules.frames import DataFormatError
from releases import make

# the example: sequences starting at AU frame 1, 37 or 250; one untracked frame each
STARTS = (1, 37, 250)


def _test_frames(truth: dict, fold: int) -> int:
    part = PARTS[FOLD_TEST_PART[fold]]
    return sum(len(frames) for (s, _), (frames, _) in truth["occ"].items() if s in part)


@pytest.fixture(scope="module", params=["image", "coded"])
def release(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"bp4d-{request.param}") / "BP4D"
    truth = releases.write_bp4d(root, tasks=("T1",), n_frames=3, fit_per=request.param, starts=STARTS,
                                size=(32, 40))
    return request.param, root, truth


def test_both_2dfeatures_conventions_keep_every_test_frame_with_its_own_landmarks(release):
    fit_per, root, truth = release
    dm = make("bp4d", root, fold=1)
    test = dm.manifest("test")
    assert len(test) == _test_frames(truth, 1)  # no frame of the fold lost
    assert set(test["landmark_indexing"]) == {fit_per}
    tracked = test[test["landmark_source"] == "tracked"]
    # one untracked frame (the second coded one) per sequence; every other frame has its own points
    assert (test["landmark_source"] == "sequence_median").sum() == test["sequence"].nunique()
    for _, row in tracked.iterrows():
        s, t = row["sequence"].split("/")
        left, right = truth["eyes"][(s, t, row["image_index"])]
        np.testing.assert_allclose(row["landmarks"][19:25].mean(0), left, atol=1e-4)
        np.testing.assert_allclose(row["landmarks"][25:31].mean(0), right, atol=1e-4)
    record = dm.test_set_record()
    assert record["landmark_indexing"] == {fit_per: test["sequence"].nunique()}
    assert record["landmark_fallback"] == {"sequence_median": test["sequence"].nunique()}


def test_sequence_where_neither_convention_fits_fails_naming_the_file(tmp_path):
    root = tmp_path / "BP4D"
    releases.write_bp4d(root, subjects=["F001", "F002"], tasks=("T1",), n_frames=3, fit_per="coded", starts=(40,))
    bad = root / "2DFeatures" / "F002_T1.mat"
    releases.write_mat_v73(bad, [None, None])  # 2 elements: 3 coded frames, images up to 0043
    with pytest.raises(DataFormatError) as err:
        make("bp4d", root).full_manifest()
    msg = str(err.value)
    assert str(bad) in msg and "'fit' has 2 elements" in msg
    assert "at least 44" in msg and "3 (one per AU-coded frame" in msg
    # through the CLI: the message, exit code 2, no traceback
    from affectlab.commands import data

    code = data.run(argparse.Namespace(action="summary", overrides=["DATA=bp4d", f"root={root}"], check_images=False, max_skipped=5))
    assert code == 2


def test_convention_decision_rules(tmp_path):
    mat = tmp_path / "F001_T1.mat"
    # images 0..9, AU frames 4..6: 10 elements = per image, 3 = per coded frame, 5 = neither
    assert fit_indexing(mat, 10, list(range(10)), [4, 5, 6]) == "image"
    assert fit_indexing(mat, 3, list(range(10)), [4, 5, 6]) == "coded"
    with pytest.raises(DataFormatError, match="neither convention fits"):
        fit_indexing(mat, 5, list(range(10)), [4, 5, 6])
    with pytest.raises(DataFormatError, match="landmark_indexing=coded expects 3"):
        fit_indexing(mat, 10, list(range(10)), [4, 5, 6], setting="coded")
    # every image coded from 0: both readings give the same mapping
    assert fit_indexing(mat, 3, [0, 1, 2], [0, 1, 2]) == "image"
    # both fit, mappings differ (images 0..2 present, coded rows at images 2, 1, 0): the release decides
    assert fit_indexing(mat, 3, [0, 1, 2], [2, 1, 0]) is None
    assert resolve_fit_indexing({"a": None, "b": "coded"}) == {"a": "coded", "b": "coded"}
    with pytest.raises(DataFormatError, match="no sequence decides it"):
        resolve_fit_indexing({"a": None})
    with pytest.raises(DataFormatError, match="disagree"):
        resolve_fit_indexing({"a": None, "b": "coded", "c": "image"})


def test_untracked_sequences_kept_in_test_skipped_in_training_and_counted(tmp_path):
    root = tmp_path / "BP4D"
    truth = releases.write_bp4d(root, tasks=("T1",), n_frames=3, size=(32, 40))
    test_subject, train_subject = PARTS[3][0], PARTS[1][0]  # fold 1 tests part 3
    for s in (test_subject, train_subject):
        releases.write_mat_v73(root / "2DFeatures" / f"{s}_T1.mat", [None] * 60)
    dm = make("bp4d", root, fold=1, image_size=32, val_fraction=0.0)
    test, train = dm.manifest("test"), dm.manifest("train")
    assert len(test) == _test_frames(truth, 1)
    untracked = test[test["subject"] == test_subject]
    assert len(untracked) == 3 and set(untracked["landmark_source"]) == {"release_median"}
    assert train_subject not in set(train["subject"])
    assert dm.train_skipped_untracked == 3
    record = dm.test_set_record()
    assert record["landmark_fallback"] == {"release_median": 3, "sequence_median": len(test) // 3 - 1}
    # the fallback frames load and batch with the others
    batch = next(iter(dm.test_dataloader()))
    assert batch["image"].shape[1:] == (3, 32, 32) and batch["landmarks"].shape[1:] == (49, 2)
    summary = dm.summary()
    assert any("3 train frames" == r["item"] for r in summary["skipped"])
    assert summary["test_set"]["landmark_fallback"]["release_median"] == 3


def test_test_fold_differing_from_the_protocol_count_is_loud(mini, capsys):
    from affectlab.commands import data
    from affectlab.engine.summary import format_summary

    root, truth = mini
    dm = make("bp4d", root / "BP4D", fold=1)
    record = dm.test_set_record()
    assert record["expected_items"] == 46034 and record["items"] == len(dm.manifest("test"))
    assert record["matches_protocol"] is False
    text = format_summary({"method": "m", "dataset": "bp4d", "protocol": "bp4d/3fold", "fold": 1,
                           "metrics": {"f1_mean": 0.5}, "test_set": record})
    assert "WARNING" in text and "46034" in text and "NOT comparable" in text
    assert data.run(argparse.Namespace(action="summary", overrides=["DATA=bp4d", f"root={root / 'BP4D'}", "fold=1"],
                                       check_images=False, max_skipped=5)) == 0
    out = capsys.readouterr().out
    assert "WARNING" in out and "protocol expects 46034" in out
    # the synthetic stand-in has no published count: nothing to compare, no warning
    from data_modules import create_datamodule

    dm = create_datamodule("bp4d", synthetic_profile="tiny")
    assert dm.expected_test_items() is None
    # … also when its release folder is given as root
    assert create_datamodule("bp4d", root=str(dm.root)).test_set_record()["matches_protocol"] is None


@pytest.mark.parametrize("name,keys,expected", [
    ("bp4d", {"fold": 2}, 50182), ("bp4d", {"fold": 3}, 50631), ("bp4d", {"task": "au_intensity"}, 71261),
    ("disfa", {"fold": 3}, 43604), ("disfa", {"fold": 1}, 43605), ("dfew", {"fold": 5}, 2336),
    ("ferv39k", {}, 7847),
])
def test_expected_counts_are_the_published_ones(tmp_path, name, keys, expected):
    from data_modules import create_datamodule

    assert create_datamodule(name, root=str(tmp_path), **keys).expected_test_items() == expected


def test_results_record_carries_the_test_set(mini, tmp_path):
    from types import SimpleNamespace

    from affectlab.config import compose
    from affectlab.engine.record import build_record

    root, _ = mini
    dm = make("bp4d", root / "BP4D", fold=1)
    cfg = compose(["METHOD=baseline", "DATA=toyau", f"run_root={tmp_path}", "logger.wandb.enabled=false"])
    run = SimpleNamespace(read_info=dict, config_hash="x", path=tmp_path)
    record = build_record(cfg, run, SimpleNamespace(datamodule=dm, name="s", url=None), {}, "val", 1.0)
    assert record["test_set"] == dm.test_set_record()
    assert record["test_set"]["matches_protocol"] is False and record["test_set"]["expected_items"] == 46034


def _renumber(folder, shift: int) -> None:
    files = sorted(folder.iterdir(), reverse=shift > 0)
    for p in files:
        k = int(p.stem.split("_")[1])
        p.rename(p.with_name(f"{p.stem.split('_')[0]}_{k + shift:04d}_lm.mat"))


@pytest.mark.parametrize("base", [0, 1])
def test_disfa_landmark_file_numbering_is_read_from_the_files(tmp_path, base):
    root = tmp_path / "DISFA"
    releases.write_disfa(root, subjects=["SN001", "SN003"], n_frames=5)
    eyes = releases.write_disfa_landmarks(root, "SN001", 5)
    _renumber(root / "Landmark_Points" / "SN001" / "tmp_frame_lm", base)
    df = make("disfa", root).full_manifest()
    sn1 = df[df["subject"] == "SN001"].sort_values("frame")
    assert (sn1["landmark_source"] == "tracked").all()
    for (_, row), (left, _) in zip(sn1.iterrows(), eyes):  # label line t ↔ video frame t−1 ↔ eyes[t−1]
        np.testing.assert_allclose(row["landmarks"][36:42].mean(0), left, atol=1e-4)


def test_disfa_conventions_that_do_not_fit_fail_naming_the_file(tmp_path):
    root = tmp_path / "DISFA"
    releases.write_disfa(root, subjects=["SN001"], n_frames=5)
    releases.write_disfa_landmarks(root, "SN001", 5)
    lm_dir = root / "Landmark_Points" / "SN001" / "tmp_frame_lm"
    (lm_dir / "SN001_0000_lm.mat").unlink()
    (lm_dir / "SN001_0004_lm.mat").unlink()  # numbers 1..3 of 5 frames: 0- or 1-based cannot be told
    with pytest.raises(DataFormatError, match="numbered 1..3 for 5 labelled frames") as err:
        make("disfa", root).full_manifest()
    assert str(lm_dir) in str(err.value)
    assert len(make("disfa", root, landmark_index_base=1).full_manifest()) == 5
    # a label file with a gap, and labels beyond the video's end
    bad = root / "ActionUnit_Labels" / "SN001" / "SN001_au2.txt"
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join(lines[:2] + lines[3:]) + "\n")
    with pytest.raises(DataFormatError, match=r"SN001_au2.txt:3: frame 4; frame 3 is missing: expected frames numbered 1, 2, 3"):
        make("disfa", root, landmark_index_base=1).full_manifest()
    for au_file in (root / "ActionUnit_Labels" / "SN001").iterdir():
        au_file.write_text("".join(f"{f},0\n" for f in range(1, 8)))
    with pytest.raises(DataFormatError, match="5 frames decoded, but .*labels 7"):
        make("disfa", root, landmark_index_base=1).full_manifest()


def test_disfa_l0_landmark_names_and_a_missing_file(tmp_path):
    """datasets.md §2.1: some subjects name their files l0NNNN_lm.mat, and SN031 lacks one of them; the
    frame is kept, cropped by the subject's median landmarks, and the skipped record says so."""
    root = tmp_path / "DISFA"
    releases.write_disfa(root, subjects=["SN001"], n_frames=5)
    eyes = releases.write_disfa_landmarks(root, "SN001", 5)
    folder = root / "Landmark_Points" / "SN001" / "tmp_frame_lm"
    for p in sorted(folder.iterdir()):
        p.rename(p.with_name(f"l0{p.stem.split('_')[1]}_lm.mat"))
    (folder / "l00002_lm.mat").unlink()
    dm = make("disfa", root)
    df = dm.full_manifest().sort_values("frame")
    assert df["landmark_source"].tolist() == ["tracked", "tracked", "sequence_median", "tracked", "tracked"]
    for (_, row), (left, _) in zip(df.iterrows(), eyes):
        if row["landmark_source"] == "tracked":
            np.testing.assert_allclose(row["landmarks"][36:42].mean(0), left, atol=1e-4)
    assert dm.skipped().set_index("item").loc["SN001", "reason"] == \
        "1 untracked frames cropped by the sequence's median landmarks"
