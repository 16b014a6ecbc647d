"""Official on-disk layouts of the tiny synthetic copy (datasets.md §1.7, §2.8, §3.8, §4.7)."""
import csv
import gzip
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import scipy.io

from affectlab.synth import GENERATOR_VERSION, generate
from affectlab.synth.face import AUS
from affectlab.synth.writers import BP4D_SUBJECTS, DISFA_SUBJECTS

CODED = [a for a in range(1, 40) if a not in (3, 8, 21, 25, 26)]


def test_bp4d_layout(synth_root):
    r = synth_root / "BP4D"
    occ_files = sorted((r / "AUCoding" / "AU_OCC").glob("*.csv"))
    assert len(occ_files) == 41 * 8
    assert {p.stem.split("_")[0] for p in occ_files} == set(BP4D_SUBJECTS)
    df = pd.read_csv(occ_files[0], header=0, index_col=0)
    header = occ_files[0].read_text().splitlines()[0]
    assert header == ",".join(str(i) for i in range(100))
    subj, task = occ_files[0].stem.split("_")
    frames = df.index.to_numpy()
    assert np.array_equal(frames, np.arange(frames[0], frames[0] + len(frames)))
    imgs = sorted((r / "Sequences(2D+3D)" / subj / task).glob("*.jpg"))
    assert [p.name for p in imgs] == [f"{f:04d}.jpg" for f in frames]
    img = cv2.imread(str(imgs[0]))
    assert img.shape[0] > img.shape[1]                          # portrait
    for p in occ_files[:40]:
        v = pd.read_csv(p, header=0, index_col=0)
        assert set(np.unique(v[[str(a) for a in CODED]].to_numpy())) <= {0, 1}
        others = [str(a) for a in range(1, 100) if a not in CODED]
        assert (v[others].to_numpy() == 9).all()
    for au in (6, 10, 12, 14, 17):
        a = np.loadtxt(r / "AUCoding" / "AU_INT" / f"AU{au:02d}" / f"{subj}_{task}_AU{au:02d}.csv", delimiter=",",
                       dtype=int, ndmin=2)
        assert np.array_equal(a[:, 0], frames) and set(a[:, 1]) <= {0, 1, 2, 3, 4, 5, 9}
        occ = df[str(au)].to_numpy()
        known = a[:, 1] != 9
        assert np.array_equal(occ[known], (a[known, 1] >= 1).astype(int))
    n_empty = 0
    for p in sorted((r / "2DFeatures").glob("*.mat"))[:80]:
        fit = scipy.io.loadmat(p)["fit"]
        for el in fit[:, 0]:
            pred = el["pred"]
            n_empty += pred.size == 0
            assert pred.size == 0 or pred.shape == (49, 2)
            assert el["pose"]["rot"][0, 0].shape == (3, 3)
    assert n_empty > 0
    assert len(list((r / "2DFeatures").glob("*.mat"))) == 328


def test_disfa_layout_and_videos(synth_root):
    r = synth_root / "DISFA"
    for s in DISFA_SUBJECTS:
        labels = [np.loadtxt(r / "ActionUnit_Labels" / s / f"{s}_au{a}.txt", delimiter=",", dtype=int)
                  for a in (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)]
        n = len(labels[0])
        assert all(np.array_equal(x[:, 0], np.arange(1, n + 1)) for x in labels)
        assert all(x[:, 1].min() >= 0 and x[:, 1].max() <= 5 for x in labels)
        for path in (r / "Videos_LeftCamera" / f"LeftVideo{s}_comp.avi", r / "Video_RightCamera" / f"RightVideo{s}_comp.avi"):
            cap = cv2.VideoCapture(str(path))
            count = 0
            while cap.read()[0]:
                count += 1
            assert count == n, path
            assert round(cap.get(cv2.CAP_PROP_FPS)) == 20
            w, h = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
            assert w / h == 4 / 3
        lm = sorted((r / "Landmark_Points" / s / "tmp_frame_lm").glob("*.mat"))
        assert len(lm) == n and lm[0].name == f"{s}_0000_lm.mat"
        assert scipy.io.loadmat(lm[0])["pts"].shape == (66, 2)
        if s == "SN010":
            n10 = n
        elif s == "SN001":
            n1 = n
    assert n10 == n1 - 1


def test_dfew_splits_and_clips(synth_root):
    r = synth_root / "DFEW"
    tests, trains = [], []
    for k in range(1, 6):
        te = pd.read_csv(r / "EmoLabel_DataSplit" / "test(single-labeled)" / f"set_{k}.csv")
        tr = pd.read_csv(r / "EmoLabel_DataSplit" / "train(single-labeled)" / f"set_{k}.csv")
        assert list(te.columns) == ["video_name", "label"]
        assert set(te.label) == set(range(1, 8))                # stratified: every class in every fold
        tests.append(set(te.video_name))
        trains.append(set(tr.video_name))
    allc = set().union(*tests)
    assert sum(len(t) for t in tests) == len(allc)               # disjoint
    assert all(trains[k] == allc - tests[k] for k in range(5))
    lengths = [len(list((r / "Clip" / "clip_224x224" / f"{i:05d}").glob("*.jpg"))) for i in sorted(allc)]
    assert min(lengths) < 16 and max(lengths) >= 16
    for i in sorted(allc)[:10]:
        assert sorted(p.name for p in (r / "Clip" / "clip_224x224_16f" / f"{i:05d}").glob("*.jpg")) == \
            sorted(f"{j}.jpg" for j in range(1, 17))
        first = next(iter(sorted((r / "Clip" / "clip_224x224" / f"{i:05d}").glob("*.jpg"))))
        assert first.name == f"{i:05d}_00001.jpg"
        img = cv2.imread(str(first))
        assert img.shape[0] == img.shape[1]


def test_ferv39k_split_files(synth_root):
    r = synth_root / "FERV39k"
    rows = []
    for name in ("train_All.csv", "test_All.csv"):
        for line in (r / "4_setups" / "All_scenes" / name).read_text().splitlines():
            path, cls = line.split(" ")
            assert path.split("/")[1] == cls and len(path.split("/")[2]) == 4
            assert len(list((r / "2_ClipsforFaceCrop" / path).glob("*.jpg"))) >= 1
            rows.append((name, path, cls))
    assert {c for _, _, c in rows} == {"Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"}
    assert len({p.split("/")[0] for _, p, _ in rows}) >= 3
    n_test = sum(n == "test_All.csv" for n, _, _ in rows)
    assert 0.12 < n_test / len(rows) < 0.3


def test_groundtruth_tables_match_written_frames(synth_root):
    cols = (["dataset", "subject", "sequence", "frame", "path"] + [f"au{a:02d}" for a in AUS]
            + ["yaw", "pitch", "roll", "scale", "tx", "ty", "identity", "expression", "band", "occlusion"]
            + [f"lm_x{i}" for i in range(68)] + [f"lm_y{i}" for i in range(68)])
    for name, rel in (("bp4d", "BP4D"), ("dfew", "DFEW"), ("ferv39k", "FERV39k"), ("videos", "videos"),
                      ("disfa", "DISFA")):
        assert (synth_root / f".complete-{name}").read_text().strip() == GENERATOR_VERSION
        gt = pd.read_csv(synth_root / "groundtruth" / f"{name}.csv.gz", keep_default_na=False)
        assert list(gt.columns) == cols
        if name != "disfa":
            n_files = sum(1 for _ in (synth_root / rel).rglob("*.jpg"))
            assert len(gt) == n_files and (synth_root / rel / gt.path.iloc[-1]).exists()
        assert gt[[f"au{a:02d}" for a in AUS]].to_numpy().max() <= 5
        occluded = gt.occlusion > 0
        assert occluded.any() if name in ("dfew", "ferv39k") else not occluded.any(), name  # wild only
    occ = pd.read_csv(synth_root / "BP4D" / "AUCoding" / "AU_OCC" / "F001_T1.csv", index_col=0)
    gt = pd.read_csv(synth_root / "groundtruth" / "bp4d.csv.gz")
    g = gt[(gt.subject == "F001") & (gt.sequence == "T1")].set_index("frame")
    assert np.array_equal((g.au12 >= 0.5).astype(int).to_numpy(), occ["12"].to_numpy())
    dfew = pd.read_csv(synth_root / "groundtruth" / "dfew.csv.gz", keep_default_na=False)
    assert set(dfew.band) - {""} <= {"low", "medium", "high"}


def _tree_hash(root: Path, rels):
    """Hash of the generator's files; caches the datamodules write beside the data
    (``.affectlab_cache``: extracted DISFA frames, manifests) are not the generator's output."""
    h = hashlib.sha256()
    for rel in rels:
        top = root / rel
        files = [top] if top.is_file() else sorted(top.rglob("*"))
        for p in files:
            if p.is_file() and not any(part.startswith(".affectlab") for part in p.relative_to(root).parts):
                h.update(str(p.relative_to(root)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_gives_byte_identical_files(synth_root, tmp_path):
    generate(tmp_path, ["disfa", "videos"], profile="tiny", seed=0)
    rels = ["DISFA", "videos", "groundtruth/disfa.csv.gz", "groundtruth/videos.csv.gz"]
    assert _tree_hash(tmp_path, rels) == _tree_hash(synth_root, rels)
    other = tmp_path / "seed1"
    generate(other, ["videos"], profile="tiny", seed=1)
    assert _tree_hash(other, ["videos"]) != _tree_hash(synth_root, ["videos"])


#: OpenBLAS, OpenCV, NumPy and libjpeg-turbo each pick kernels by the CPU; these hold them to SSE-era ones
_OLDER_CPU_ENV = {
    "OPENBLAS_CORETYPE": "Sandybridge",
    "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX2,FP16,AVX",
    "JSIMD_FORCESSE2": "1",
}
_NUMPY_DISPATCH = ("AVX512F", "AVX512CD", "AVX512_SKX", "AVX512_CLX", "AVX512_CNL", "AVX512_ICL", "AVX512_SPR",
                   "AVX2", "FMA3", "F16C", "AVX")


def test_copies_are_byte_identical_on_older_instruction_sets(synth_root, tmp_path):
    """The generator writes the same bytes whatever kernels the CPU gets (synth/portable.py): before v3.1,
    OpenBLAS's and OpenCV's CPU dispatch changed every landmark file and some pixels between machines."""
    import os
    import subprocess
    import sys

    from numpy.core._multiarray_umath import __cpu_features__

    env = dict(os.environ, **_OLDER_CPU_ENV)
    env["NPY_DISABLE_CPU_FEATURES"] = " ".join(f for f in _NUMPY_DISPATCH if __cpu_features__.get(f))
    code = "import sys; from affectlab.synth import generate; generate(sys.argv[1], ['bp4d', 'dfew'], 'tiny', 0)"
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, check=True, capture_output=True)
    rels = ["BP4D", "DFEW", "groundtruth/bp4d.csv.gz", "groundtruth/dfew.csv.gz"]
    assert _tree_hash(tmp_path, rels) == _tree_hash(synth_root, rels)
