"""Writers of the official on-disk layouts (datasets.md §1.7, §2.8, §3.8, §4.7) from the shared state.

Above ~350 lines: one job per release (BP4D, DISFA, DFEW, FERV39k, videos; 40–60 lines each) next to
the capture settings, lighting and landmark tracking they share.
"""
from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from .face import AUS, L49, L66, Pose, rotation, sample_identity
from .labels import (BP4D_AUS, BP4D_INT_AUS, CLASSES, DFEW_SHARES, DISFA_AUS, FERV_SHARES, bp4d_state,
                     bp4d_subject_weights, class_counts, disfa_state, expression_state, levels, occlusion_track,
                     pose_track, talking_pose, talking_state, _smooth_noise)
from .render import Lighting, Occluder, cluttered_background, render_face

BP4D_SUBJECTS = [f"F{i:03d}" for i in range(1, 24)] + [f"M{i:03d}" for i in range(1, 19)]
BP4D_TASKS = [f"T{i}" for i in range(1, 9)]
DISFA_SUBJECTS = ["SN%03d" % i for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 18, 21, 23, 24,
                                         25, 26, 27, 28, 29, 30, 31, 32)]
FERV_SCENES = ["Action", "Argue", "Business", "Conflict", "Contest", "Crime", "Crisis", "DailyLife",
               "ElegantArt", "Experiment", "History", "Interview", "Liveshow", "Medicine", "OfficialEvent",
               "ScholarReport", "School", "Social", "Speech", "Talkshow", "Terror", "War"]
#: one FERV39k clip to render: (scene, class index, clip number within scene × class, length in frames)
FervJob = tuple[str, int, int, int]
LOWRES_SCENES = {"Crime", "War", "Terror", "Crisis", "History"}


@dataclass(frozen=True)
class Profile:
    """Sizes of one synthetic profile (``tiny``, ``quick``, ``full``): frames, clips, identities, image sizes."""

    name: str
    bp4d_frames: int
    bp4d_size: tuple[int, int]
    disfa_frames: int
    disfa_size: tuple[int, int]
    dfew_clips: int
    dfew_len: tuple[int, int]
    ferv_clips: int
    ferv_len: tuple[int, int]
    ferv_scenes: int
    clip_size: int
    video_ids: int
    video_frames: int        # per track, at 25 fps
    min_per_class: int
    #: write only these subjects (empty = all); the realres profile keeps one per protocol part
    bp4d_subjects: tuple[str, ...] = ()
    disfa_subjects: tuple[str, ...] = ()
    video_tracks: int = 2
    video_size: int = 112
    bp4d_max_start: int = 2400


#: frontal face scale (px per inter-ocular distance) as a share of the frame width, per dataset; with
#: the frame sizes below every profile renders the region a 64-px aligned crop covers (IOD / 0.32) at
#: ≥ 96 native px (1.5× the crop) even at the smallest pose scale (synthetic.md "v3 face size")
FACE_SCALE = {"bp4d": 0.3, "disfa": 0.25, "clip": 0.36, "videos": 0.36}
#: the aligned crop's eye distance as a share of its side (data_modules.transforms) and the CPU crop side
ALIGNED_EYE_DISTANCE, CPU_CROP = 0.32, 64

PROFILES = {
    "tiny": Profile("tiny", 3, (132, 176), 12, (160, 120), 140, (3, 8), 140, (3, 6), 4, 112, 3, 12, 5,
                    bp4d_max_start=40),
    "quick": Profile("quick", 30, (144, 192), 300, (192, 144), 1850, (8, 16), 1000, (6, 12), 8, 128, 200, 125, 3,
                     bp4d_max_start=600),
    # the releases' real frame sizes (BP4D 1040×1392 JPEG, DISFA 1024×768 20 fps AVI, DFEW/FERV39k 224×224
    # face crops) for a few subjects/clips, to measure and test loading at real size (docs/synthetic.md)
    "realres": Profile("realres", 10, (1040, 1392), 60, (1024, 768), 40, (16, 40), 40, (8, 40), 2, 224, 1, 8, 2,
                       bp4d_subjects=("F001", "F003", "F004"), disfa_subjects=("SN001", "SN006", "SN003")),
    "full": Profile("full", 450, (192, 256), 4845, (224, 168), 11697, (40, 120), 38935, (15, 40), 22, 160,
                    1000, 500, 0, video_tracks=2),
}


def rng_for(seed: int, *key) -> np.random.Generator:
    parts = [zlib.crc32(str(k).encode()) for k in key]
    return np.random.default_rng(np.random.SeedSequence([seed, *parts]))


def _jpg(path: Path, img: np.ndarray, quality: int = 92):
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {path}")
    path.write_bytes(buf.tobytes())


_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by affectlab.synth (synthetic stand-in)"


def _savemat(path: Path, data: dict):
    """scipy.io.savemat with the timestamped text header replaced, so files are byte-reproducible."""
    bio = io.BytesIO()
    scipy.io.savemat(bio, data, format="5", do_compression=False, oned_as="row")
    raw = bytearray(bio.getvalue())
    raw[:116] = _MAT_HEADER.ljust(116, b" ")
    path.write_bytes(bytes(raw))


#: columns of the ground-truth table (docs/CONTRACTS.md "Synthetic ground truth")
GT_COLUMNS = (("dataset", "subject", "sequence", "frame", "path") + tuple(f"au{a:02d}" for a in AUS)
              + ("yaw", "pitch", "roll", "scale", "tx", "ty", "identity", "expression", "band", "occlusion")
              + tuple(f"lm_x{j}" for j in range(68)) + tuple(f"lm_y{j}" for j in range(68)))


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\r\n'):
        raise ValueError(f"ground-truth text {value!r} would need CSV quoting")
    return value


def _gt_rows(dataset, subject, sequence, frames, paths, U, poses, identity, expression="", band="", lms=None,
             occlusion=None) -> list[str]:
    """Ground-truth table rows in ``GT_COLUMNS`` order, as CSV text (one string, no header).

    Formatted as pandas' ``to_csv`` formats the same table (numbers by their shortest repr, the
    values pre-rounded), without building a DataFrame: a fifth of a short clip's job went to pandas.
    ``occlusion``: per-frame reach of an occluder over the lower face (0 = none)."""
    n = len(frames)
    U = np.round(np.asarray(U, dtype=np.float64), 4)
    P = np.round(np.asarray(poses, dtype=np.float64), 4)
    occ = np.zeros(n) if occlusion is None else np.asarray(occlusion, dtype=np.float64)
    lm = np.round(np.asarray(lms, dtype=np.float64), 3)
    motion = np.concatenate([U, P], axis=1).astype(str).tolist()
    points = np.concatenate([occ[:, None], lm[:, :, 0], lm[:, :, 1]], axis=1).astype(str).tolist()
    head = ",".join(_csv_field(v) for v in (dataset, subject, sequence))
    tail = ",".join(_csv_field(v) for v in (identity, expression, band))
    frames = np.asarray(frames, dtype=np.int64).tolist()
    return ["".join(f"{head},{f},{_csv_field(path)},{','.join(m)},{tail},{','.join(q)}\n"
                    for f, path, m, q in zip(frames, paths, motion, points))]


def _occluders(occ_rng: np.random.Generator, n: int) -> tuple[list[Occluder | None], np.ndarray]:
    """Per-frame occluders of a wild track (see labels.occlusion_track) and their reach."""
    track = occlusion_track(occ_rng, n, wild=True)
    if track is None:
        return [None] * n, np.zeros(n)
    kind, side, reach, colour = track
    return [Occluder(kind, side, float(r), colour) if r > 0 else None for r in reach], reach


#: per-dataset capture (synthetic.md "v3 nuisance"): sensor noise sd (grey levels), blur sigma (px),
#: JPEG quality (0: the AVI writer's own), background clutter shapes, light tilt (0 = frontal), light
#: colour spread and exposure. Lab recordings are cleaner and more evenly lit than the wild ones.
CAPTURE = {
    "bp4d": dict(noise=(1.0, 2.5), blur=(0.0, 0.6), jpeg=(90, 96), shapes=(0, 2), tilt=(0.0, 0.7), tint=0.05,
                 exposure=(0.85, 1.15)),
    "disfa": dict(noise=(1.5, 3.0), blur=(0.0, 0.8), jpeg=(0, 0), shapes=(0, 2), tilt=(0.0, 0.7), tint=0.05,
                  exposure=(0.85, 1.15)),
    "dfew": dict(noise=(2.0, 7.0), blur=(0.0, 1.4), jpeg=(50, 92), shapes=(3, 12), tilt=(0.2, 1.5), tint=0.12,
                 exposure=(0.7, 1.3)),
    "ferv39k": dict(noise=(2.0, 8.0), blur=(0.0, 1.4), jpeg=(70, 95), shapes=(3, 12), tilt=(0.2, 1.5), tint=0.12,
                    exposure=(0.7, 1.3)),
    "videos": dict(noise=(2.0, 6.0), blur=(0.0, 1.2), jpeg=(70, 92), shapes=(3, 12), tilt=(0.2, 1.5), tint=0.12,
                   exposure=(0.7, 1.3)),
}


def lighting_track(rng: np.random.Generator, n: int, dataset: str) -> list[Lighting]:
    """Per-frame lighting of one track: a coloured key light whose direction drifts slowly, plus ambient."""
    c = CAPTURE[dataset]
    az0, tilt0 = rng.uniform(0, 2 * np.pi), rng.uniform(*c["tilt"])
    az = az0 + _smooth_noise(rng, n, max(2, n // 2), 0.3)
    tilt = np.clip(tilt0 + _smooth_noise(rng, n, max(2, n // 2), 0.1), 0, 2)
    exposure = rng.uniform(*c["exposure"])
    key = tuple(float(v) for v in exposure * np.clip(1 + rng.normal(0, c["tint"], 3), 0.6, 1.4))
    ambient = float(rng.uniform(0.3, 0.6) if dataset in ("bp4d", "disfa") else rng.uniform(0.2, 0.55))
    amb_colour = tuple(float(v) for v in exposure * np.clip(1 + rng.normal(0, c["tint"] / 2, 3), 0.7, 1.3))
    # light from above is likelier than from below (ceilings, windows, the sun)
    return [Lighting((float(t * np.cos(a)), float(t * np.sin(a) - 0.25 * t), 1.0), key, ambient, amb_colour)
            for a, t in zip(az, tilt)]


def _render_track(ident, U, blink, poses, size, rng, dataset, downup=1, occluders=None):
    """Frames [(image, landmarks)] of one track under the dataset's capture, and their JPEG quality."""
    c = CAPTURE[dataset]
    lights = lighting_track(rng, len(U), dataset)
    noise, blur = rng.uniform(*c["noise"]), rng.uniform(*c["blur"])
    shapes = int(rng.integers(c["shapes"][0], c["shapes"][1] + 1))
    background = cluttered_background(rng, ident, size[0], size[1], shapes)
    quality = int(rng.integers(c["jpeg"][0], c["jpeg"][1] + 1)) if c["jpeg"][1] else 0
    out = [render_face(ident, U[i], Pose(*poses[i]), size, blink=float(blink[i]), rng=rng, noise=noise,
                       lighting=lights[i], downup=downup, occluder=occluders[i] if occluders else None,
                       background=background, blur=blur) for i in range(len(U))]
    return out, quality


def tracked_landmarks(rng: np.random.Generator, lms: list[np.ndarray], poses: np.ndarray) -> list[np.ndarray]:
    """What a face tracker releases: the true landmarks plus a slowly drifting offset (sd 0.035 IOD) and
    per-point jitter (sd 0.015 IOD). The ground-truth table keeps the true landmarks."""
    n = len(lms)
    drift = np.stack([_smooth_noise(rng, n, max(2, n // 3), 0.035) for _ in range(2)], 1)
    return [lm + (drift[i] + rng.normal(0, 0.015, lm.shape)) * poses[i, 3] for i, lm in enumerate(lms)]


# ------------------------------------------------------------------------------------------ BP4D
def bp4d_job(root: Path, prof: Profile, seed: int, subject: str) -> list[str]:
    rel = Path("BP4D")
    ident = sample_identity(rng_for(seed, "bp4d-id", subject))
    rows = []
    w, h = prof.bp4d_size
    for task in BP4D_TASKS:
        rng = rng_for(seed, "bp4d", subject, task)
        U, blink = bp4d_state(rng, task, prof.bp4d_frames, bp4d_subject_weights(rng, task))
        n = len(U)
        # the coded segment starts at image 1 or later in the recording; 2DFeatures describe every image
        # from 0000, so small profiles start early to keep those files small
        start = 1 if rng.random() < 0.36 else int(rng.integers(2, prof.bp4d_max_start))
        frames = np.arange(start, start + n)
        poses = pose_track(rng, n, False, FACE_SCALE["bp4d"] * w, (w, h))
        seq_dir = root / rel / "Sequences(2D+3D)" / subject / task
        seq_dir.mkdir(parents=True, exist_ok=True)
        rendered, quality = _render_track(ident, U, blink, poses, (w, h), rng, "bp4d")
        paths, lms = [], []
        for f, (img, lm) in zip(frames, rendered):
            name = f"{f:04d}.jpg"
            _jpg(seq_dir / name, img, quality)
            paths.append(f"Sequences(2D+3D)/{subject}/{task}/{name}")
            lms.append(lm)
        L = levels(U)
        occ = np.full((n, 99), 9, dtype=np.int64)
        for k, au in enumerate(AUS):
            if au <= 39 and au not in (3, 8, 21, 25, 26):
                occ[:, au - 1] = (L[:, k] >= 1).astype(int)
        coded = [a for a in range(1, 40) if a not in (3, 8, 21, 25, 26)]
        for a in coded:
            if a not in AUS:
                occ[:, a - 1] = 0
        occ_dir = root / rel / "AUCoding" / "AU_OCC"
        occ_dir.mkdir(parents=True, exist_ok=True)
        lines = [",".join(str(i) for i in range(100))]
        lines += [f"{f}," + ",".join(map(str, occ[i])) for i, f in enumerate(frames)]
        (occ_dir / f"{subject}_{task}.csv").write_text("\n".join(lines) + "\n")
        missing = rng.random(n) < 0.03
        for au in BP4D_INT_AUS:
            d = root / rel / "AUCoding" / "AU_INT" / f"AU{au:02d}"
            d.mkdir(parents=True, exist_ok=True)
            codes = np.where(missing, 9, L[:, AUS.index(au)])
            (d / f"{subject}_{task}_AU{au:02d}.csv").write_text(
                "".join(f"{f},{c}\n" for f, c in zip(frames, codes)))
        # As in the release, fit(i) describes image i of the whole recording (from 0000), of which
        # only the AU-coded range is written here; the others stay untracked (empty pred).
        fit = np.empty((int(frames[-1]) + 1, 1), dtype=[("pred", object), ("pose", object)])
        untracked_pose = {"rot": np.eye(3), "angle": np.zeros((1, 3))}
        for j in range(len(fit)):
            fit[j, 0]["pred"] = np.zeros((0, 0))
            fit[j, 0]["pose"] = untracked_pose
        empty = rng.random(n) < 0.04
        released = tracked_landmarks(rng, lms, poses)
        for i, f in enumerate(frames):
            if not empty[i]:
                fit[f, 0]["pred"] = released[i][L49] + 1.0
            fit[f, 0]["pose"] = {"rot": rotation(*poses[i][:3]), "angle": np.asarray(poses[i][[1, 0, 2]])[None]}
        fdir = root / rel / "2DFeatures"
        fdir.mkdir(parents=True, exist_ok=True)
        _savemat(fdir / f"{subject}_{task}.mat", {"fit": fit})
        rows += _gt_rows("bp4d", subject, task, frames, paths, U, poses, f"bp4d-{subject}", lms=lms)
    return rows


# ----------------------------------------------------------------------------------------- DISFA
def disfa_job(root: Path, prof: Profile, seed: int, subject: str) -> list[str]:
    rel = root / "DISFA"
    rng = rng_for(seed, "disfa", subject)
    ident = sample_identity(rng_for(seed, "disfa-id", subject))
    n = prof.disfa_frames - (1 if subject == "SN010" else 0)
    U, blink = disfa_state(rng, n)
    w, h = prof.disfa_size
    poses = pose_track(rng, n, False, FACE_SCALE["disfa"] * w, (w, h))
    left, _ = _render_track(ident, U, blink, poses, (w, h), rng, "disfa")
    rposes = poses.copy()
    rposes[:, 0] += 20.0
    right, _ = _render_track(ident, U, blink, rposes, (w, h), rng, "disfa")
    for folder, name, frames in (("Videos_LeftCamera", f"LeftVideo{subject}_comp.avi", left),
                                 ("Video_RightCamera", f"RightVideo{subject}_comp.avi", right)):
        d = rel / folder
        d.mkdir(parents=True, exist_ok=True)
        vw = cv2.VideoWriter(str(d / name), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (w, h))
        if not vw.isOpened():
            raise RuntimeError(f"cannot open an MJPG VideoWriter for {d / name}")
        for img, _ in frames:
            vw.write(img)
        vw.release()
    L = levels(U)
    ld = rel / "ActionUnit_Labels" / subject
    ld.mkdir(parents=True, exist_ok=True)
    for au in DISFA_AUS:
        (ld / f"{subject}_au{au}.txt").write_text("".join(f"{t + 1},{L[t, AUS.index(au)]}\n" for t in range(n)))
    md = rel / "Landmark_Points" / subject / "tmp_frame_lm"
    md.mkdir(parents=True, exist_ok=True)
    for t, lm in enumerate(tracked_landmarks(rng, [lm for _, lm in left], poses)):
        _savemat(md / f"{subject}_{t:04d}_lm.mat", {"pts": lm[L66]})
    paths = [f"Videos_LeftCamera/LeftVideo{subject}_comp.avi#{t}" for t in range(n)]
    return _gt_rows("disfa", subject, "left", np.arange(1, n + 1), paths, U, poses, f"disfa-{subject}",
                    lms=[lm for _, lm in left])


# ------------------------------------------------------------------------------- class clip sets
def _clip_plan(prof: Profile, seed: int, dataset: str):
    rng = rng_for(seed, dataset, "plan")
    n = prof.dfew_clips if dataset == "dfew" else prof.ferv_clips
    shares = DFEW_SHARES if dataset == "dfew" else FERV_SHARES
    counts = class_counts(n, shares, prof.min_per_class)
    labels = np.repeat(np.arange(7), counts)
    rng.shuffle(labels)
    lo, hi = prof.dfew_len if dataset == "dfew" else prof.ferv_len
    lengths = rng.integers(lo, hi + 1, n)
    if dataset == "dfew":   # a few clips longer than 16 frames, a few shorter
        lengths[rng.choice(n, max(2, n // 20), replace=False)] = 17 if prof.name == "tiny" else hi + 8
    return rng, labels, lengths


def dfew_job(root: Path, prof: Profile, seed: int, clip_id: int, label: int, length: int) -> list[str]:
    rng = rng_for(seed, "dfew", clip_id)
    ident = sample_identity(rng_for(seed, "dfew-id", clip_id), wild=True)
    cls = CLASSES[label]
    U, blink, band = expression_state(rng, cls, length, length * 4)
    s = prof.clip_size
    poses = pose_track(rng, length, True, FACE_SCALE["clip"] * s, (s, s))
    occluders, occlusion = _occluders(rng_for(seed, "dfew-occluder", clip_id), length)
    frames, q = _render_track(ident, U, blink, poses, (s, s), rng, "dfew", occluders=occluders)
    cid = f"{clip_id:05d}"
    d = root / "DFEW" / "Clip" / "clip_224x224" / cid
    d16 = root / "DFEW" / "Clip" / "clip_224x224_16f" / cid
    d.mkdir(parents=True, exist_ok=True)
    d16.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, (img, _) in enumerate(frames):
        _jpg(d / f"{cid}_{t + 1:05d}.jpg", img, q)
        paths.append(f"Clip/clip_224x224/{cid}/{cid}_{t + 1:05d}.jpg")
    lms = [lm for _, lm in frames]
    rows = _gt_rows("dfew", cid, cid, np.arange(1, length + 1), paths, U, poses, f"dfew-{cid}", cls, band, lms,
                    occlusion)
    ix = np.linspace(0, length - 1, 16).round().astype(int)
    p16 = []
    for j, t in enumerate(ix):
        (d16 / f"{j + 1}.jpg").write_bytes((d / f"{cid}_{t + 1:05d}.jpg").read_bytes())
        p16.append(f"Clip/clip_224x224_16f/{cid}/{j + 1}.jpg")
    rows += _gt_rows("dfew", cid, cid + "_16f", np.arange(1, 17), p16, U[ix], poses[ix], f"dfew-{cid}", cls,
                     band, [lms[t] for t in ix], occlusion[ix])
    return rows


def dfew_folds(labels: np.ndarray, seed: int) -> np.ndarray:
    """Test fold (0–4) of every clip: five disjoint folds stratified by class (datasets.md §3.3)."""
    rng = rng_for(seed, "dfew", "folds")
    fold = np.zeros(len(labels), dtype=int)
    offset = 0
    for c in range(7):
        members = rng.permutation(np.flatnonzero(labels == c))
        fold[members] = (np.arange(len(members)) + offset) % 5
        offset += len(members)
    return fold


def chance_uar_standard_error(class_counts_of_test: np.ndarray, classes: int = 7) -> float:
    """Standard error of the UAR of a uniform random guess on a test set with these class counts:
    recall_c ~ Binomial(n_c, 1/K)/n_c, so SE = (1/K)·sqrt(Σ_c (1/K)(1 − 1/K)/n_c)."""
    p = 1.0 / classes
    return float(np.sqrt(np.sum(p * (1 - p) / np.asarray(class_counts_of_test, float))) / classes)


def write_dfew_splits(root: Path, ids: np.ndarray, labels: np.ndarray, seed: int) -> None:
    """Five disjoint test folds stratified by class; train = complement (datasets.md §3.3)."""
    fold = dfew_folds(labels, seed)
    for split in ("train", "test"):
        d = root / "DFEW" / "EmoLabel_DataSplit" / f"{split}(single-labeled)"
        d.mkdir(parents=True, exist_ok=True)
        for k in range(5):
            sel = (fold == k) if split == "test" else (fold != k)
            lines = ["video_name,label"] + [f"{i},{l + 1}" for i, l in zip(ids[sel], labels[sel])]
            (d / f"set_{k + 1}.csv").write_text("\n".join(lines) + "\n")


def ferv_job(root: Path, prof: Profile, seed: int, scene: str, label: int, clip_no: int,
             length: int) -> list[str]:
    key = f"{scene}/{CLASSES[label]}/{clip_no:04d}"
    rng = rng_for(seed, "ferv39k", key)
    ident = sample_identity(rng_for(seed, "ferv39k-id", key), wild=True)
    cls = CLASSES[label]
    U, blink, band = expression_state(rng, cls, length, length * 3)
    s = prof.clip_size
    poses = pose_track(rng, length, True, FACE_SCALE["clip"] * s, (s, s))
    low = scene in LOWRES_SCENES
    occluders, occlusion = _occluders(rng_for(seed, "ferv39k-occluder", key), length)
    frames, q = _render_track(ident, U, blink, poses, (s, s), rng, "ferv39k",
                              downup=int(rng.integers(2, 4)) if low else 1, occluders=occluders)
    d = root / "FERV39k" / "2_ClipsforFaceCrop" / key
    d.mkdir(parents=True, exist_ok=True)
    if low:   # the low-resolution scenes are also compressed harder
        q = int(rng.integers(40, 70))
    paths = []
    for t, (img, _) in enumerate(frames):
        _jpg(d / f"{t + 1:02d}.jpg", img, q)
        paths.append(f"2_ClipsforFaceCrop/{key}/{t + 1:02d}.jpg")
    return _gt_rows("ferv39k", scene, key, np.arange(1, length + 1), paths, U, poses, f"ferv39k-{key}", cls,
                    band, [lm for _, lm in frames], occlusion)


def ferv_plan(prof: Profile, seed: int) -> tuple[np.random.Generator, list[FervJob]]:
    rng, labels, lengths = _clip_plan(prof, seed, "ferv39k")
    scenes = FERV_SCENES[:: max(1, len(FERV_SCENES) // prof.ferv_scenes)][: prof.ferv_scenes]
    scene_of = np.array([scenes[i % len(scenes)] for i in range(len(labels))])
    rng.shuffle(scene_of)
    counter: dict = {}
    jobs = []
    for sc, lab, ln in zip(scene_of, labels, lengths):
        k = (sc, int(lab))
        counter[k] = counter.get(k, -1) + 1
        jobs.append((str(sc), int(lab), counter[k], int(ln)))
    return rng, jobs


def ferv_split(jobs: list[FervJob], seed: int) -> tuple[list[str], list[str]]:
    """Train and test lines (``scene/Class/NNNN Class``): 20 % of every scene × class group to test."""
    rng = rng_for(seed, "ferv39k", "split")
    groups: dict = {}
    for j in jobs:
        groups.setdefault((j[0], j[1]), []).append(j)
    train, test = [], []
    for key in sorted(groups):
        g = groups[key]
        perm = rng.permutation(len(g))
        n_test = int(round(len(g) * 0.2))
        for r, i in enumerate(perm):
            line = f"{g[i][0]}/{CLASSES[g[i][1]]}/{g[i][2]:04d} {CLASSES[g[i][1]]}"
            (test if r < n_test else train).append(line)
    return train, test


def write_ferv_splits(root: Path, jobs: list[FervJob], seed: int) -> None:
    train, test = ferv_split(jobs, seed)
    rng = rng_for(seed, "ferv39k", "split-order")
    d = root / "FERV39k" / "4_setups" / "All_scenes"
    d.mkdir(parents=True, exist_ok=True)
    for name, lines in (("train_All.csv", train), ("test_All.csv", test)):
        order = rng.permutation(len(lines))
        (d / name).write_text("".join(lines[i] + "\n" for i in order))


# ---------------------------------------------------------------------------------------- videos
def video_job(root: Path, prof: Profile, seed: int, ident_no: int) -> list[str]:
    """One identity of the talking-face corpus: ``video_tracks`` tracks of ``video_frames`` frames at
    25 fps (VoxCeleb layout ``idNNNNN/<video id>/00001/NNNNN.jpg``), see labels.talking_state."""
    ident = sample_identity(rng_for(seed, "videos-id", ident_no), wild=True)
    pid = f"id{ident_no + 10001:05d}"
    rows = []
    s = prof.video_size
    for v in range(prof.video_tracks):
        rng = rng_for(seed, "videos", ident_no, v)
        vid = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"), 11))
        n = prof.video_frames
        U, blink, _ = talking_state(rng, n, fps=25)
        poses = talking_pose(rng, n, 25, FACE_SCALE["videos"] * s, (s, s))
        occluders, occlusion = _occluders(rng_for(seed, "videos-occluder", ident_no, v), n)
        frames, q = _render_track(ident, U, blink, poses, (s, s), rng, "videos", occluders=occluders)
        d = root / "videos" / pid / vid / "00001"
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for t, (img, _) in enumerate(frames):
            _jpg(d / f"{t + 1:05d}.jpg", img, q)
            paths.append(f"{pid}/{vid}/00001/{t + 1:05d}.jpg")
        rows += _gt_rows("videos", pid, f"{vid}/00001", np.arange(1, n + 1), paths, U, poses, f"videos-{pid}",
                         lms=[lm for _, lm in frames], occlusion=occlusion)
    return rows
