"""Writers of miniature releases in the official on-disk formats (datasets.md), with known contents.

Independent of the loaders: each writer returns the ground truth it wrote, so tests compare what the
datamodules read against it. Frames encode their index in their brightness (``10 + 7·k`` grey), so
sampled frame order can be read back from the pixels.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import h5py
import numpy as np
from scipy.io import savemat

from data_modules.bp4d import PARTS as BP4D_PARTS
from data_modules.disfa import DISFA_INTENSITY_AUS, PARTS as DISFA_PARTS

BP4D_CODED = [1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 24, 27, 28, 29, 30, 31, 32,
              33, 34, 35, 36, 37, 38, 39]
DFER = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]


def grey(k: int, h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), (10 + 7 * k) % 250, np.uint8)


def face_landmarks_49(left_eye: tuple, right_eye: tuple) -> np.ndarray:
    """49 points with eyes 20–25 / 26–31 (1-based) on small circles around the given centres."""
    rng = np.random.default_rng(0)
    pts = np.zeros((49, 2))
    mid = (np.array(left_eye) + np.array(right_eye)) / 2
    pts[:] = mid + rng.normal(0, 5, (49, 2)) + [0, 25]
    ang = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    ring = np.stack([np.cos(ang), np.sin(ang)], 1) * 3
    pts[19:25] = np.array(left_eye) + ring
    pts[25:31] = np.array(right_eye) + ring
    return pts


def face_image(h: int, w: int, left_eye: tuple, right_eye: tuple, value: int) -> np.ndarray:
    img = np.full((h, w, 3), value, np.uint8)
    radius = max(3, w // 20)
    for c in (left_eye, right_eye):
        cv2.circle(img, (int(round(c[0] * 16)), int(round(c[1] * 16))), radius * 16, (255, 255, 255), -1,
                   lineType=cv2.LINE_AA, shift=4)
    return img


def write_mat_v73(path: Path, preds: list) -> None:
    """A MATLAB v7.3 struct array ``fit`` with field ``pred`` per element (as h5py sees MATLAB write it)."""
    with h5py.File(path, "w") as f:
        refs_group = f.create_group("#refs#")
        fit = f.create_group("fit")
        refs = []
        for i, p in enumerate(preds):
            if p is None:
                d = refs_group.create_dataset(f"e{i}", data=np.zeros(2, np.uint64))
                d.attrs["MATLAB_empty"] = np.uint8(1)
            else:
                d = refs_group.create_dataset(f"e{i}", data=np.asarray(p, np.float64).T)  # stored (2,49)
            refs.append(d.ref)
        fit.create_dataset("pred", data=np.array(refs, dtype=h5py.ref_dtype).reshape(-1, 1))


def write_bp4d(root: Path, subjects=None, tasks=("T1", "T2"), n_frames: int = 4, seed: int = 0,
               mat: str = "v73", size=(48, 64), fit_per: str = "image", starts=None) -> dict:
    """BP4D layout; returns {"occ": {(S,T): (frames, codes[n,99])}, "int": {...}, "eyes": {(S,T,image): ...}}.

    ``fit_per``: ``image`` writes one 2DFeatures element per image from 0000 (the generator's reading
    of the spec), ``coded`` one per AU-coded frame (the other plausible reading). ``starts`` cycles
    through given first AU frames instead of random ones.
    """
    rng = np.random.default_rng(seed)
    subjects = subjects or sorted(s for p in BP4D_PARTS.values() for s in p)
    w, h = size
    truth = {"occ": {}, "int": {}, "eyes": {}}
    header = ",".join(str(i) for i in range(100))
    for si, s in enumerate(subjects):
        for ti, t in enumerate(tasks):
            start = int(rng.integers(1, 50)) if starts is None else starts[(si * len(tasks) + ti) % len(starts)]
            frames = np.arange(start, start + n_frames)
            codes = np.full((n_frames, 99), 9, np.int64)
            for au in BP4D_CODED:
                codes[:, au - 1] = rng.integers(0, 2, n_frames)
            if si == 0 and ti == 0:
                codes[1, 0] = 9  # one unknown code in a benchmark column, must be masked
            occ = root / "AUCoding" / "AU_OCC"
            occ.mkdir(parents=True, exist_ok=True)
            lines = [header] + [",".join(map(str, [f, *c])) for f, c in zip(frames, codes)]
            (occ / f"{s}_{t}.csv").write_text("\n".join(lines) + "\n")
            ints = {}
            for au in (6, 10, 12, 14, 17):
                vals = rng.integers(0, 6, n_frames)
                vals[rng.random(n_frames) < 0.2] = 9
                d = root / "AUCoding" / "AU_INT" / f"AU{au:02d}"
                d.mkdir(parents=True, exist_ok=True)
                (d / f"{s}_{t}_AU{au:02d}.csv").write_text("".join(f"{f},{v}\n" for f, v in zip(frames, vals)))
                ints[au] = vals
            truth["occ"][(s, t)] = (frames, codes)
            truth["int"][(s, t)] = (frames, ints)
            seq = root / "Sequences(2D+3D)" / s / t
            seq.mkdir(parents=True, exist_ok=True)
            digits = 3 if (si + ti) % 2 else 4  # both name widths occur in copies of the release
            n_img = start + n_frames + 1
            preds = []
            for k in range(n_img):
                if k != start + 1:  # the untracked frame keeps its predecessor's pose (it borrows those landmarks)
                    le = (0.35 * w + rng.normal(0, 1), 0.4 * h + rng.normal(0, 1))
                    re_ = (0.70 * w + rng.normal(0, 1), 0.45 * h + rng.normal(0, 1))
                if k >= start - 1:
                    cv2.imwrite(str(seq / f"{k:0{digits}d}.jpg"), face_image(h, w, le, re_, (10 + 7 * k) % 200))
                preds.append(None if k == start + 1 else face_landmarks_49(le, re_) + 1.0)  # 1-based MATLAB coords
                truth["eyes"][(s, t, k)] = (le, re_)
            if fit_per == "coded":  # element r ↔ AU frame r (image frames[r] with frame_offset 0)
                preds = [preds[int(f)] for f in frames]
            feat = root / "2DFeatures"
            feat.mkdir(parents=True, exist_ok=True)
            if mat == "v73":
                write_mat_v73(feat / f"{s}_{t}.mat", preds)
            else:
                fit = np.empty((len(preds),), dtype=[("pred", object)])
                for i, p in enumerate(preds):
                    fit[i]["pred"] = np.zeros((0, 0)) if p is None else p
                savemat(str(feat / f"{s}_{t}.mat"), {"fit": fit})
    return truth


def write_dfew(root: Path, n_clips: int = 30, short: tuple = (3, 7), split_spelling: str = "-",
               nest: bool = False, seed: int = 0) -> dict:
    """DFEW layout with 5 folds; clip i has ``lengths[i]`` frames named ``<id>_<k>.jpg`` (k 1-based)."""
    rng = np.random.default_rng(seed)
    ids = sorted(rng.choice(np.arange(1, 400), n_clips, replace=False).tolist())
    labels = rng.integers(1, 8, n_clips)
    lengths = rng.integers(18, 30, n_clips)
    for i in short:
        lengths[i] = 5 + i % 4  # a few clips shorter than 16 frames
    base = root / "Clip" / "clip_224x224"
    if nest:
        base = base / "clip_224x224"
    for cid, n in zip(ids, lengths):
        d = base / f"{cid:05d}"
        d.mkdir(parents=True, exist_ok=True)
        for k in range(1, n + 1):
            name = f"{cid:05d}_{k:05d}.jpg" if cid % 2 else f"{k}.jpg"  # padded and unpadded names
            cv2.imwrite(str(d / name), grey(k - 1, 32, 32))
    fold_of = np.arange(n_clips) % 5 + 1
    rng.shuffle(fold_of)
    for role in ("train", "test"):
        d = root / "EmoLabel_DataSplit" / f"{role}(single{split_spelling}labeled)"
        d.mkdir(parents=True, exist_ok=True)
        for k in range(1, 6):
            sel = (fold_of == k) if role == "test" else (fold_of != k)
            rows = [f"{cid},{lab}" for cid, lab, s in zip(ids, labels, sel) if s]
            (d / f"set_{k}.csv").write_text("video_name,label\n" + "\n".join(rows) + "\n")
    return {"ids": ids, "labels": labels - 1, "lengths": lengths, "fold_of": fold_of}


def write_ferv39k(root: Path, scenes=("Action", "Crime"), per_class: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    lines = {"train": [], "test": []}
    truth = {}
    for scene in scenes:
        for cls in DFER:
            for i in range(per_class):
                rel = f"{scene}/{cls}/{i:04d}"
                d = root / "2_ClipsforFaceCrop" / rel
                d.mkdir(parents=True, exist_ok=True)
                n = int(rng.integers(8, 20))
                for k in range(n):
                    cv2.imwrite(str(d / f"{k:02d}.jpg"), grey(k, 24, 24))
                role = "test" if i == 0 else "train"
                lines[role].append(f"{rel} {cls}")
                truth[rel] = (DFER.index(cls), role, n)
    d = root / "4_setups" / "All_scenes"
    d.mkdir(parents=True, exist_ok=True)
    for role, ls in lines.items():
        order = rng.permutation(len(ls))
        (d / f"{role}_All.csv").write_text("\n".join(ls[j] for j in order) + "\n")
    return truth


def write_video(path: Path, n: int, size=(40, 32), eyes=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, size)
    for k in range(n):
        img = grey(k, size[1], size[0]) if eyes is None else face_image(size[1], size[0], *eyes[k], 60)
        wr.write(img)
    wr.release()


def landmarks_66(left_eye: tuple, right_eye: tuple) -> np.ndarray:
    """66 iBUG-style points; eyes are points 37–42 and 43–48 (1-based) around the given centres."""
    pts = face_landmarks_49(left_eye, right_eye)[:1].repeat(66, 0) + np.arange(66)[:, None] * 0.1
    ang = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    ring = np.stack([np.cos(ang), np.sin(ang)], 1) * 3
    pts[36:42] = np.array(left_eye) + ring
    pts[42:48] = np.array(right_eye) + ring
    return pts


def write_disfa_landmarks(root: Path, subject: str, n_frames: int, size=(96, 72), seed: int = 1) -> list:
    """Re-write one subject's video with eye discs and its per-frame ``pts`` MAT files (1-based coords)."""
    rng = np.random.default_rng(seed)
    w, h = size
    eyes = [((0.3 * w + rng.normal(0, 2), 0.4 * h + rng.normal(0, 2)),
             (0.65 * w + rng.normal(0, 2), 0.5 * h + rng.normal(0, 2))) for _ in range(n_frames)]
    write_video(root / "Videos_LeftCamera" / f"LeftVideoSN{subject[2:]}_comp.avi", n_frames, size, eyes)
    d = root / "Landmark_Points" / subject / "tmp_frame_lm"
    d.mkdir(parents=True, exist_ok=True)
    for k, (le, re_) in enumerate(eyes):
        savemat(str(d / f"{subject}_{k:04d}_lm.mat"), {"pts": landmarks_66(le, re_) + 1.0})
    return eyes


def write_disfa(root: Path, subjects=None, n_frames: int = 6, seed: int = 0, camera_dir: str = "Videos_LeftCamera",
                prefix: str = "Left") -> dict:
    """DISFA layout; SN010's label files are one line shorter than its video (as in the release)."""
    rng = np.random.default_rng(seed)
    subjects = subjects or sorted(s for p in DISFA_PARTS.values() for s in p)
    truth = {}
    for s in subjects:
        write_video(root / camera_dir / f"{prefix}VideoSN{s[2:]}_comp.avi", n_frames)
        n_lab = n_frames - 1 if s == "SN010" else n_frames
        labs = {}
        d = root / "ActionUnit_Labels" / s
        d.mkdir(parents=True, exist_ok=True)
        for au in DISFA_INTENSITY_AUS:
            v = rng.integers(0, 6, n_lab)
            (d / f"{s}_au{au}.txt").write_text("".join(f"{f},{x}\n" for f, x in zip(range(1, n_lab + 1), v)))
            labs[au] = v
        truth[s] = labs
    return truth


def make(name: str, root: Path, **keys):
    from data_modules import create_datamodule

    keys.setdefault("num_workers", 0)
    keys.setdefault("batch_size", 4)
    return create_datamodule(name, root=str(root), **keys)
