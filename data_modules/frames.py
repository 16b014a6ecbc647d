"""Reading frames and label files: cv2 decoding, numeric frame order, bad-input errors.

Every parse error names the file and (1-based) line; every undecodable image is counted, and the
dataset fails once the count exceeds ``max_bad_fraction`` of its items.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
from pathlib import Path
from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm")

cv2.setNumThreads(1)  # one decode thread per DataLoader worker; the workers give the parallelism


class DataFormatError(ValueError):
    """A label/split file or folder that does not match the documented release layout."""


class TooManyBadImages(RuntimeError):
    """More images failed to decode than ``max_bad_fraction`` allows."""


class UnreadableItem(DataFormatError):
    """An image of a test item cannot be decoded; ``path`` names it."""

    def __init__(self, message: str, path: str = "") -> None:
        # a DataLoader worker re-raises it in the main process as UnreadableItem("Caught ... Original
        # Traceback ... UnreadableItem: <message>"): keep only the original message
        marker = f"{type(self).__name__}: "
        if "Original Traceback" in message and marker in message:
            message = message.rsplit(marker, 1)[-1].strip()
        super().__init__(message)
        self.path = path


def missing_root_error(root: Path, dataset: str, layout: str) -> DataFormatError:
    return DataFormatError(
        f"{dataset}: expected the release at {root}, but it does not exist or lacks a required folder.\n"
        f"Expected layout:\n{layout}\nSet data.root (DATA_ROOT=...) to the folder holding it, or leave it "
        f"unset to use the synthetic stand-in."
    )


def require_dir(path: Path, dataset: str, root: Path, layout: str) -> Path:
    if not path.is_dir():
        err = missing_root_error(root, dataset, layout)
        raise DataFormatError(f"{dataset}: missing folder {path}\n{err}")
    return path


def first_existing(base: Path, names: Sequence[str]) -> Optional[Path]:
    """The first of ``base/name`` that is a directory (release folders have several spellings)."""
    for name in names:
        if (base / name).is_dir():
            return base / name
    return None


def trailing_int(name: str) -> Optional[int]:
    """The last integer in a file stem: ``00001_00012.jpg`` → 12, ``7.jpg`` → 7."""
    found = re.findall(r"\d+", Path(name).stem)
    return int(found[-1]) if found else None


def list_frames(folder: Path) -> list[Path]:
    """Image files of a frame folder sorted numerically by the last integer in the stem.

    Lexicographic order breaks for unpadded names (``10.jpg`` < ``2.jpg``), so it is never used.
    """
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    keyed = [(trailing_int(p.name), p.name, p) for p in files]
    keyed.sort(key=lambda t: (t[0] if t[0] is not None else -1, t[1]))
    return [p for _, _, p in keyed]


def alphabetical_order_differs(files: Sequence[Path]) -> bool:
    """True when sorting the file names as strings (``glob`` + ``sort()``) gives another order than ``files``."""
    names = [p.name for p in files]
    return names != sorted(names)


def index_frames(folder: Path) -> dict[int, Path]:
    """Map frame number → image path for a folder of ``NNN.jpg``/``NNNN.jpg`` names (any padding)."""
    out: dict[int, Path] = {}
    if folder.is_dir():
        for p in folder.iterdir():
            if p.suffix.lower() in IMAGE_SUFFIXES and p.stem.isdigit():
                out[int(p.stem)] = p
    return out


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


def read_rgb(path: str | Path, reduce: int = 1) -> Optional[np.ndarray]:
    """Decode an image to RGB uint8 (H,W,3) with OpenCV; None when it cannot be decoded.

    ``reduce`` 2, 4 or 8 lets libjpeg decode directly at 1/2, 1/4 or 1/8 size (DCT scaling), much faster
    than decoding at full size and resizing when the output is that much smaller anyway.
    """
    img = cv2.imread(str(path), _REDUCED[reduce])
    if img is None:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def parse_int_rows(path: Path, n_fields: int, delimiter: str = ",", skip_header: bool = False) -> np.ndarray:
    """Read a comma-separated integer table, failing with ``file:line`` on any malformed row."""
    rows: list[list[int]] = []
    with open(path, newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            if skip_header and lineno == 1:
                continue
            line = line.strip()
            if not line:
                continue
            parts = [p.strip() for p in line.split(delimiter)]
            if len(parts) != n_fields:
                raise DataFormatError(
                    f"{path}:{lineno}: expected {n_fields} {delimiter!r}-separated fields, got {len(parts)}"
                )
            try:
                rows.append([int(float(p)) if "." in p else int(p) for p in parts])
            except ValueError:
                raise DataFormatError(f"{path}:{lineno}: expected integers, got {line!r}") from None
    return np.asarray(rows, dtype=np.int64).reshape(-1, n_fields)


def check_codes(path: Path, values: np.ndarray, allowed: Iterable[int], first_line: int, what: str) -> None:
    """Fail naming file and line when ``values`` (rows × cols) holds a code outside ``allowed``."""
    allowed = np.asarray(sorted(set(allowed)))
    bad = ~np.isin(values, allowed)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise DataFormatError(
            f"{path}:{first_line + row}: {what} code {int(values[row, col])} out of range "
            f"(allowed {', '.join(map(str, allowed))})"
        )


class BadImageCounter:
    """Counts undecodable images of one dataset (per process) and fails above a fraction.

    ``strict`` (test splits): the first undecodable image raises ``UnreadableItem`` instead, since
    test metrics must be computed on exactly the protocol's items. ``log_path``: each undecodable
    image is also appended there (one path a line, from every DataLoader worker), so the run record
    can count what training skipped.
    """

    def __init__(self, dataset: str, total: int, max_fraction: float) -> None:
        self.dataset, self.total, self.max_fraction = dataset, max(total, 1), max_fraction
        self.bad: list[str] = []
        self.strict = False
        self.log_path: Optional[Path] = None

    def record(self, path: str | Path) -> None:
        if self.strict:
            raise UnreadableItem(
                f"{self.dataset}: test image {path} cannot be decoded. Test metrics are computed on exactly the "
                "protocol's items, so the test pass stops: restore the file, or set "
                "data.unreadable_test_items=exclude to leave such items out (they are then counted in "
                "results.json and the end-of-run summary)",
                path=str(path))
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a") as log:  # one short line per write: appends do not interleave
                log.write(f"{path}\n")
        self.bad.append(str(path))
        if len(self.bad) > self.max_fraction * self.total:
            shown = "\n  ".join(self.bad[:10])
            raise TooManyBadImages(
                f"{self.dataset}: {len(self.bad)} undecodable images out of {self.total} items exceed "
                f"max_bad_fraction={self.max_fraction}. First ones:\n  {shown}"
            )


def _video_stamp(video: Path) -> dict:
    st = os.stat(video)
    return {"video": str(video), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_frame(path: Path, frame: np.ndarray) -> None:
    """One JPEG, written under a temporary name and renamed: a kill never leaves a truncated frame."""
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {path}")
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, path)


def extract_frames(video: Path, out_dir: Path, desc: str) -> int:
    """Decode every frame of ``video`` to ``out_dir/NNNNN.jpg`` (0-based) once; returns the frame count.

    - progress bar per video; ``out_dir/.complete`` (JSON: count, video size and mtime) marks a finished
      extraction and is rewritten from scratch when the video changes;
    - resumable: frames are renamed into place one by one, so after a kill the next call keeps the
      frames already written, skips that many frames of the video (grab without JPEG encoding) and goes on;
    - one process at a time: an exclusive ``flock`` on ``<out_dir>.lock`` serialises concurrent callers
      (DDP ranks); the later one finds the marker and returns at once.
    """
    stamp = _video_stamp(video)
    marker = out_dir / ".complete"

    def finished() -> Optional[int]:
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict):   # a marker of an older affectlab (a bare frame count): extract again
            return None
        same = all(info.get(k) == v for k, v in stamp.items() if k != "video")
        return int(info["count"]) if same else None

    done = finished()
    if done is not None:
        return done
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(out_dir.with_name(out_dir.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            done = finished()  # another process may have finished while this one waited
            if done is not None:
                return done
            return _extract_locked(video, out_dir, desc, stamp, marker)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _extract_locked(video: Path, out_dir: Path, desc: str, stamp: dict, marker: Path) -> int:
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    started = out_dir / ".source"
    if started.is_file() and json.loads(started.read_text() or "{}") != stamp:
        for p in out_dir.iterdir():  # frames of an older copy of the video
            p.unlink()
    started.write_text(json.dumps(stamp))
    have = 0
    while (out_dir / f"{have:05d}.jpg").is_file():
        have += 1
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise DataFormatError(f"{video}: cannot open the video (OpenCV could not decode it)")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    n = 0
    with tqdm(total=total, initial=have, desc=desc, unit="frame", leave=False) as bar:
        while n < have and cap.grab():  # resume: skip what an interrupted run already wrote
            n += 1
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            _write_frame(out_dir / f"{n:05d}.jpg", frame)
            n += 1
            bar.update(1)
    cap.release()
    if n < have:
        raise DataFormatError(f"{video}: decodes to {n} frames, but {out_dir} holds {have} from an earlier "
                              f"extraction; delete that folder")
    tmp = marker.with_name(".complete.part")
    tmp.write_text(json.dumps({"count": n, **stamp}))
    os.replace(tmp, marker)
    return n
