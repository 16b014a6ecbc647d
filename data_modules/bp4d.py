"""BP4D-Spontaneous (and its FERA2015 packaging): AU occurrence, AU intensity, unlabeled frames.

Reads the release unchanged (``docs/datasets.md``; spec ``datasets.md`` §1): ``AUCoding/AU_OCC``
CSVs with the 100-field header ``0,1,…,99``, ``AUCoding/AU_INT/AUNN/<S>_<T>_AUNN.csv``, images
``Sequences(2D+3D)/<S>/<T>/NNNN.jpg`` (3 or 4 digits) and 49-point landmarks from ``2DFeatures``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from affectlab.schema import ConfigError
from data_modules.base import DATAMODULES, DataConfig
from data_modules.face import FaceDataModule, assign_parts, check_fold, fallback_landmarks, skipped_frame
from data_modules.frames import DataFormatError, check_codes, first_existing, index_frames, parse_int_rows, require_dir
from data_modules.transforms import EYES_49, REFLECT_49

BP4D_AUS = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]
BP4D_INTENSITY_AUS = [6, 10, 12, 14, 17]
PARTS = {
    1: "F001 F002 F008 F009 F010 F016 F018 F023 M001 M004 M007 M008 M012 M014".split(),
    2: "F003 F005 F011 F013 F020 F022 M002 M005 M010 M011 M013 M016 M017 M018".split(),
    3: "F004 F006 F007 F012 F014 F015 F017 F019 F021 M003 M006 M009 M015".split(),
}
#: ME-GraphAU naming: fold k tests this part and trains on the other two
FOLD_TEST_PART = {1: 3, 2: 2, 3: 1}
#: AU-coded frames per part (every AU_OCC row, as ME-GraphAU lists them; datasets.md §1.3)
PART_FRAMES = {1: 50631, 2: 50182, 3: 46034}
FERA2015_DEVEL_FRAMES = 71261
FERA2015_TRAIN = ("F001 F003 F005 F007 F009 F011 F013 F015 F017 F019 F021 F023 M001 M003 M005 M007 M009 M011 "
                  "M013 M015 M017").split()
FERA2015_DEVEL = ("F002 F004 F006 F008 F010 F012 F014 F016 F018 F020 F022 M002 M004 M006 M008 M010 M012 M014 "
                  "M016 M018").split()

LAYOUT = """  <root>/Sequences(2D+3D)/<Subject>/<Task>/NNNN.jpg      (or BP4D-training/ in the FERA2015 copy)
  <root>/AUCoding/AU_OCC/<Subject>_<Task>.csv             (header 0,1,...,99; codes 0/1/9)
  <root>/AUCoding/AU_INT/AU06|AU10|AU12|AU14|AU17/<Subject>_<Task>_AUNN.csv   (frame,code; 0-5, 9)
  <root>/2DFeatures/<Subject>_<Task>.mat                  (optional: fit(i).pred 49x2 landmarks)"""

IMAGE_DIRS = ("Sequences(2D+3D)", "BP4D-training")
OCC_DIRS = ("AUCoding/AU_OCC", "AUCoding")
INT_DIRS = ("AUCoding/AU_INT", "AU Intensity Codes3.0", "AU-Intensity-Codes3.0")


def read_2d_features(path: Path, one_based: bool = True) -> list[Optional[np.ndarray]]:
    """The 49×2 landmarks of every element of ``fit`` in a ``2DFeatures`` MAT file (v7.3 via h5py,
    older via scipy), in file order; which frame an element belongs to is decided by
    :func:`fit_indexing`. Empty ``pred`` → None. MATLAB pixel coordinates are 1-based; they are
    shifted to 0-based when ``one_based``.
    """
    shift = 1.0 if one_based else 0.0
    try:
        import h5py

        with h5py.File(path, "r") as f:
            if not isinstance(f.get("fit"), h5py.Group) or "pred" not in f["fit"]:
                raise DataFormatError(f"{path}: MATLAB v7.3 file without the variable 'fit' (struct array with "
                                      f"field 'pred'); it has {sorted(f.keys())}")
            refs = f["fit"]["pred"][()].reshape(-1)
            out = []
            for ref in refs:
                arr = np.asarray(f[ref][()], dtype=np.float64)
                if arr.size != 98 or f[ref].attrs.get("MATLAB_empty", 0):
                    out.append(None)
                else:  # HDF5 stores MATLAB arrays transposed: (2, 49)
                    out.append((arr.T if arr.shape == (2, 49) else arr).astype(np.float32) - shift)
            return out
    except OSError:
        pass  # not an HDF5 file: MATLAB v5/v7
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as err:
        raise DataFormatError(f"{path}: not a readable MAT file ({err})") from None
    if "fit" not in mat:
        raise DataFormatError(f"{path}: expected a variable 'fit' (struct array with field 'pred')")
    out = []
    for el in np.atleast_1d(mat["fit"]):
        pred = np.asarray(getattr(el, "pred", []), dtype=np.float64)
        out.append(pred.reshape(49, 2).astype(np.float32) - shift if pred.size == 98 else None)
    return out


FIT_INDEXINGS = ("auto", "image", "coded")


def fit_indexing(path: Path, n_fit: int, image_indices: list[int], coded_images: list[int],
                 setting: str = "auto") -> Optional[str]:
    """Which frame element i of ``fit`` describes, decided from the lengths (the spec says only "one
    element per frame").

    ``image``: element i ↔ image ``i`` of the sequence folder counted from 0, so ``fit`` reaches
    at least the last image (``len(fit)`` ≥ last image index + 1; trailing untracked images may be
    absent from the folder); ``coded``: element r ↔ row r of the AU_OCC file (``len(fit)`` = number of
    AU-coded frames; ``coded_images`` are their image indices). Both fit only when every image is
    AU-coded: when the two readings then map elements to the same images (coded images 0..n−1) the
    answer is ``image``, otherwise None and the caller decides from the release's other sequences.
    Fails naming the file when neither fits or when a forced ``setting`` does not.
    """
    n_coded = len(coded_images)
    needed = max(image_indices) + 1 if image_indices else 0
    fits = {"image": n_fit >= needed, "coded": n_fit == n_coded}
    expects = {"image": f"at least {needed} (one per image 0..{needed - 1} of the sequence folder)",
               "coded": f"{n_coded} (one per AU-coded frame, the rows of the AU_OCC file)"}
    if setting != "auto":
        if not fits[setting]:
            raise DataFormatError(f"{path}: 'fit' has {n_fit} elements; landmark_indexing={setting} expects "
                                  f"{expects[setting]}")
        return setting
    if fits["image"] and fits["coded"]:
        return "image" if list(coded_images) == list(range(n_coded)) else None
    if fits["image"] or fits["coded"]:
        return "image" if fits["image"] else "coded"
    raise DataFormatError(
        f"{path}: 'fit' has {n_fit} elements, but neither convention fits: one element per image expects "
        f"{expects['image']}, one element per AU-coded frame expects {expects['coded']}. Check that the "
        f"MAT file belongs to this sequence, or set data.landmark_indexing=image|coded to force one.")


@dataclass
class BP4DConfig(DataConfig):
    """``data`` keys of BP4D (datasets.md §1): release root, 3-fold protocol, alignment, label handling."""

    name: str = "bp4d"
    #: AUs of the label vector (occurrence); the 12 benchmark AUs by default, any coded AU allowed
    aus: list[int] = field(default_factory=lambda: list(BP4D_AUS))
    intensity_aus: list[int] = field(default_factory=lambda: list(BP4D_INTENSITY_AUS))
    #: image index = AU frame number − frame_offset. 0 reproduces the published lists (JAA-Net,
    #: ME-GraphAU); the user guide's "AU frame N+1 ↔ image N" is frame_offset=1
    frame_offset: int = 0
    #: 3fold (subject-exclusive parts) | fera2015 (train/devel); None → 3fold for occurrence, fera2015 for intensity
    protocol: Optional[str] = None
    #: 2DFeatures landmark coordinates are MATLAB 1-based
    landmarks_one_based: bool = True
    #: which frame fit(i) describes: auto (decided per sequence from len(fit) against the image and
    #: AU-coded frame counts; see docs/datasets.md) | image (image i, counted from 0) | coded (AU_OCC row i)
    landmark_indexing: str = "auto"
    image_size: int = 112
    normalize: str = "minus_one_one"


@DATAMODULES.register("bp4d")
class BP4DDataModule(FaceDataModule):
    """BP4D AU occurrence (12 AUs, 3-fold), AU intensity (5 AUs, FERA2015 or 3-fold), frames/clips/pairs.

    Protocols follow datasets.md §1.3: fold k tests part ``{1: 3, 2: 2, 3: 1}[k]`` (ME-GraphAU naming).
    """

    Config = BP4DConfig
    release = "BP4D"
    layout = LAYOUT
    tasks = ("au_occurrence", "au_intensity", "pairs", "clips", "sequences")
    parse_keys = ("aus", "intensity_aus", "frame_offset", "landmarks_one_based", "landmark_indexing", "task")
    eyes = EYES_49
    flip_permutation = [i - 1 for i in REFLECT_49]

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.intensity = cfg.task in ("au_intensity", "sequences")
        aus = list(cfg.intensity_aus) if self.intensity else list(cfg.aus)
        bad = [a for a in aus if not 1 <= int(a) <= 99]
        if bad:
            raise ConfigError(f"bp4d: AU numbers must be 1…99, got {bad}")
        self.aus = [int(a) for a in aus]
        self.au_names = [f"AU{a:02d}" for a in self.aus]
        self.split_protocol = cfg.protocol or ("fera2015" if self.intensity else "3fold")
        if self.split_protocol not in ("3fold", "fera2015"):
            raise ConfigError(f"bp4d: protocol must be 3fold or fera2015, got {self.split_protocol!r}")
        if self.split_protocol == "3fold":
            check_fold("bp4d", cfg.fold, 3)
        if cfg.landmark_indexing not in FIT_INDEXINGS:
            raise ConfigError(f"data.landmark_indexing must be one of {FIT_INDEXINGS}, got {cfg.landmark_indexing!r}")
        #: recorded in results.json
        self.protocol = f"bp4d/{self.split_protocol}"

    def expected_test_items(self) -> Optional[int]:
        if self.is_synthetic():
            return None
        if self.split_protocol == "fera2015":
            return FERA2015_DEVEL_FRAMES
        return PART_FRAMES[FOLD_TEST_PART[self.cfg.fold]]

    def au_columns(self) -> list[str]:
        prefix = "int" if self.intensity else "au"
        return [f"{prefix}{a:02d}" for a in self.aus]

    # -- locating the release ------------------------------------------------------------------
    def _dirs(self) -> tuple[Path, Path, Optional[Path], Path]:
        root = self.root
        img = first_existing(root, IMAGE_DIRS)
        occ = first_existing(root, OCC_DIRS)
        if occ is not None and occ.name == "AUCoding" and (occ / "AU_OCC").is_dir():
            occ = occ / "AU_OCC"
        intd = first_existing(root, INT_DIRS)
        if img is None:
            require_dir(root / IMAGE_DIRS[0], "bp4d", root, LAYOUT)
        if occ is None:
            require_dir(root / OCC_DIRS[0], "bp4d", root, LAYOUT)
        if self.intensity and intd is None:
            require_dir(root / INT_DIRS[0], "bp4d", root, LAYOUT)
        return img, occ, intd, root / "2DFeatures"

    def _source_paths(self) -> list[Path]:
        img, occ, intd, feat = self._dirs()
        paths = sorted(occ.glob("*.csv"))
        if intd is not None:
            paths += sorted(intd.glob("AU*/*.csv"))
        if feat.is_dir():
            paths += sorted(feat.glob("*.mat"))
        paths += [p for p in img.glob("*/*") if p.is_dir()]
        return paths

    # -- parsing ---------------------------------------------------------------------------------
    def _read_occ(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        with open(path) as fh:
            header = fh.readline().strip()
        expected = ",".join(str(i) for i in range(100))
        if header != expected:
            raise DataFormatError(f"{path}:1: bad header; expected the 100 fields '0,1,2,...,99', got {header[:80]!r}")
        table = parse_int_rows(path, 100, skip_header=True)
        check_codes(path, table[:, 1:], (0, 1, 9), first_line=2, what="AU occurrence")
        return table[:, 0], table[:, 1:]

    def _read_int(self, path: Path) -> dict[int, int]:
        table = parse_int_rows(path, 2)
        check_codes(path, table[:, 1:], (0, 1, 2, 3, 4, 5, 9), first_line=1, what="AU intensity")
        frames = table[:, 0].tolist()
        if len(set(frames)) < len(frames):
            seen: dict[int, int] = {}
            for line, f in enumerate(frames, start=1):
                if f in seen:
                    raise DataFormatError(f"{path}:{line}: frame {f} is coded again (first on line {seen[f]}); "
                                          f"expected one 'frame,code' row per frame")
                seen[f] = line
        return dict(zip(frames, table[:, 1].tolist()))

    def _intensity_columns(self, int_dir: Path, seq: str, frame_nos: np.ndarray, found: set[int],
                           skipped: list[dict]) -> dict[str, np.ndarray]:
        """The sequence's intensity codes per AU at its AU_OCC frames; frames without a row are 9 and what
        does not match (no file, rows missing, rows outside AU_OCC's frames) goes on the skipped record."""
        subject, task = seq.split("/")
        columns = {}
        coded = set(int(f) for f in frame_nos)
        for au in self.aus:
            p = int_dir / f"AU{au:02d}" / f"{subject}_{task}_AU{au:02d}.csv"
            if not p.is_file():
                skipped.append({"item": seq, "reason": f"no AU{au:02d} intensity file (all 9)", "file": str(p)})
                columns[f"int{au:02d}"] = np.full(len(frame_nos), 9)
                continue
            found.add(au)
            table = self._read_int(p)
            missing = len(coded - table.keys())
            if missing:
                skipped.append({"item": seq, "reason": f"{missing} AU_OCC frame(s) without an AU{au:02d} intensity "
                                                       f"row (coded 9)", "file": str(p)})
            extra = sorted(table.keys() - coded)
            if extra:
                skipped.append({"item": seq, "reason": f"{len(extra)} AU{au:02d} intensity row(s) for frames outside "
                                                       f"AU_OCC's (frames {extra[0]}…{extra[-1]}) not used",
                                "file": str(p)})
            columns[f"int{au:02d}"] = np.array([table.get(int(f), 9) for f in frame_nos])
        return columns

    def _parse(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        img_dir, occ_dir, int_dir, feat_dir = self._dirs()
        cfg, skipped, frames = self.cfg, [], []
        fits: dict[str, list] = {}  # sequence → landmarks of every fit element
        indexing: dict[str, Optional[str]] = {}  # sequence → image | coded | None (both fit)
        occ_files = sorted(occ_dir.glob("*_*.csv"))
        if not occ_files:
            raise DataFormatError(f"bp4d: no <Subject>_<Task>.csv files in {occ_dir}\nExpected layout:\n{LAYOUT}")
        found: set[int] = set()   # AUs with at least one intensity file
        for occ_path in occ_files:
            subject, task = occ_path.stem.split("_", 1)
            seq = f"{subject}/{task}"
            frame_nos, codes = self._read_occ(occ_path)
            if self.intensity:
                label_cols = self._intensity_columns(int_dir, seq, frame_nos, found, skipped)
            else:
                label_cols = {f"au{au:02d}": codes[:, au - 1] for au in self.aus}
            images = index_frames(img_dir / subject / task)
            mat = feat_dir / f"{subject}_{task}.mat"
            if mat.is_file():
                fits[seq] = read_2d_features(mat, cfg.landmarks_one_based)
                indexing[seq] = fit_indexing(mat, len(fits[seq]), sorted(images),
                                             [int(f) - cfg.frame_offset for f in frame_nos], cfg.landmark_indexing)
            for r, f in enumerate(frame_nos):
                image_index = int(f) - cfg.frame_offset
                path = images.get(image_index)
                if path is None:
                    skipped.append({"item": f"{seq}/{f}", "reason": f"image {image_index} missing",
                                    "file": str(img_dir / subject / task)})
                    continue
                row = {"path": str(path), "subject": subject, "sequence": seq, "frame": int(f),
                       "image_index": image_index, "occ_row": r, "group": subject}
                row.update({k: int(v[r]) for k, v in label_cols.items()})
                frames.append(row)
        if self.intensity and set(self.aus) - found:   # a misread layout, not an unlabelled release
            au = min(set(self.aus) - found)
            raise DataFormatError(f"bp4d: no AU{au:02d} intensity file for any of the {len(occ_files)} sequences; "
                                  f"expected {int_dir / f'AU{au:02d}'}/<Subject>_<Task>_AU{au:02d}.csv\n"
                                  f"Expected layout:\n{LAYOUT}")
        df = pd.DataFrame(frames)
        if fits:
            indexing = resolve_fit_indexing(indexing)
            df["landmark_indexing"] = df["sequence"].map(indexing).fillna("none")
            element = np.where(df["landmark_indexing"] == "coded", df["occ_row"], df["image_index"])
            df["landmarks"] = [fits[q][e] if q in fits and 0 <= e < len(fits[q]) else None
                               for q, e in zip(df["sequence"], element)]
            df, extra = fallback_landmarks(df)
            skipped += extra
        skipped += assign_parts(df, PARTS)
        return df, skipped_frame(skipped)

    def _protocol(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self.split_protocol == "fera2015":
            return df[df["subject"].isin(FERA2015_TRAIN)], df[df["subject"].isin(FERA2015_DEVEL)]
        test_part = FOLD_TEST_PART[self.cfg.fold]
        known = df["part"] > 0
        return df[known & (df["part"] != test_part)], df[df["part"] == test_part]


def resolve_fit_indexing(indexing: dict[str, Optional[str]]) -> dict[str, str]:
    """Sequences where both conventions fit take the one the release's other sequences use.

    The convention is a property of how the release was written, so a sequence whose lengths
    cannot tell (e.g. every image AU-coded) follows the decided ones; when none decides it (or
    they disagree) the choice would be a guess, and the loader refuses.
    """
    undecided = sorted(q for q, k in indexing.items() if k is None)
    if not undecided:
        return dict(indexing)
    kinds = {k for k in indexing.values() if k is not None}
    if len(kinds) != 1:
        found = "no sequence decides it" if not kinds else "the decided sequences disagree"
        raise DataFormatError(
            f"bp4d: cannot tell which frame 2DFeatures fit(i) describes for {', '.join(undecided[:5])}: "
            f"len(fit) equals both the image count and the AU-coded frame count, and {found}. "
            f"Set data.landmark_indexing=image (fit(i) = image i from 0) or =coded (fit(i) = AU_OCC row i).")
    kind = kinds.pop()
    return {q: k or kind for q, k in indexing.items()}
