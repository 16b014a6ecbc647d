"""Video frame extraction into the cache: resumable after a kill, one writer when two processes start."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import releases
from data_modules import frames as F


def _frames(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jpg"))


def _brightness(path: Path) -> float:
    return float(cv2.imread(str(path)).mean())


def test_extraction_resumes_after_a_kill(tmp_path, monkeypatch):
    video = tmp_path / "v.avi"
    releases.write_video(video, 12)
    out = tmp_path / "frames" / "v"
    real_write, written = F._write_frame, []

    def dying_write(path, frame):
        if len(written) == 5:
            raise KeyboardInterrupt  # the process is killed after 5 frames
        written.append(path.name)
        real_write(path, frame)

    monkeypatch.setattr(F, "_write_frame", dying_write)
    with pytest.raises(KeyboardInterrupt):
        F.extract_frames(video, out, "x")
    assert len(_frames(out)) == 5 and not (out / ".complete").exists()
    written.clear()
    monkeypatch.setattr(F, "_write_frame", lambda p, f: (written.append(p.name), real_write(p, f)))
    assert F.extract_frames(video, out, "x") == 12
    assert written == [f"{k:05d}.jpg" for k in range(5, 12)]  # only the missing frames were written
    # frame k is video frame k (grey level 10 + 7k written by releases.grey)
    levels = [_brightness(p) for p in _frames(out)]
    np.testing.assert_allclose(levels, [10 + 7 * k for k in range(12)], atol=3)
    assert not list(out.glob("*.part"))
    written.clear()
    assert F.extract_frames(video, out, "x") == 12 and written == []  # done: nothing decoded again


def test_extraction_redone_when_the_video_changes(tmp_path):
    video = tmp_path / "v.avi"
    releases.write_video(video, 6)
    out = tmp_path / "frames" / "v"
    assert F.extract_frames(video, out, "x") == 6
    releases.write_video(video, 9)
    assert F.extract_frames(video, out, "x") == 9 and len(_frames(out)) == 9


# a child that loads only data_modules/frames.py (no torch), extracts and prints how many frames it wrote
CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("frames", sys.argv[1])
F = importlib.util.module_from_spec(spec); spec.loader.exec_module(F)
real, wrote = F._write_frame, []
F._write_frame = lambda p, f: (wrote.append(p), real(p, f))
print(F.extract_frames(F.Path(sys.argv[2]), F.Path(sys.argv[3]), "x"), len(wrote))
"""


def test_a_marker_of_an_older_version_means_extract_again(tmp_path):
    """Older affectlab wrote a bare frame count to `.complete`; it is not trusted and does not crash."""
    video = tmp_path / "v.avi"
    releases.write_video(video, 6)
    out = tmp_path / "frames" / "v"
    out.mkdir(parents=True)
    (out / ".complete").write_text("200")
    assert F.extract_frames(video, out, "x") == 6 and len(_frames(out)) == 6


def test_two_processes_extracting_at_once_agree(tmp_path):
    video = tmp_path / "v.avi"
    releases.write_video(video, 40, size=(160, 120))
    out = tmp_path / "frames" / "v"
    args = [sys.executable, "-c", CHILD, F.__file__, str(video), str(out)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = sorted(tuple(map(int, p.communicate(timeout=120)[0].split())) for p in procs)
    assert all(p.returncode == 0 for p in procs)
    assert results == [(40, 0), (40, 40)]  # one wrote every frame, the other waited and wrote none
    files = _frames(out)
    assert [p.name for p in files] == [f"{k:05d}.jpg" for k in range(40)]
    assert all(cv2.imread(str(p)) is not None for p in files)
    assert not list(out.glob("*.part"))
