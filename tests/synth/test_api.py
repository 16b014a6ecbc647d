"""ensure_synthetic cache location/markers and the `affectlab synth` command module."""
import argparse

import pytest

from affectlab.commands import synth as cmd
from affectlab.synth import GENERATOR_VERSION, ensure_synthetic, generate


def test_ensure_synthetic_caches_under_env_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AFFECTLAB_SYNTH_DIR", str(tmp_path))
    killed = tmp_path / f"v{GENERATOR_VERSION}" / ".tmp-tiny-seed3-dfew-99999"   # left by a killed generation
    (killed / "DFEW").mkdir(parents=True)
    root = ensure_synthetic("tiny", 3, datasets=["videos"])
    assert not killed.exists()
    assert root == tmp_path / f"v{GENERATOR_VERSION}" / "tiny-seed3"
    assert (root / ".complete-videos").exists() and (root / "groundtruth" / "videos.csv.gz").exists()
    stamp = (root / "groundtruth" / "videos.csv.gz").stat().st_mtime_ns
    assert ensure_synthetic("tiny", 3, datasets=["videos"]) == root          # cached: nothing rewritten
    assert (root / "groundtruth" / "videos.csv.gz").stat().st_mtime_ns == stamp
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".tmp-")]


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="profile"):
        generate(tmp_path, ["videos"], profile="huge")
    with pytest.raises(ValueError, match="bp5d"):
        generate(tmp_path, ["bp5d"], profile="tiny")


def test_cli_module_generates_and_previews(tmp_path):
    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    assert cmd.NAME == "synth" and cmd.HELP
    assert cmd.run(p.parse_args(["--out", str(tmp_path / "d"), "--datasets", "videos", "--profile", "tiny"])) == 0
    assert (tmp_path / "d" / ".complete-videos").exists()
    # a copy of the release folder alone still says it is synthetic (issue #18 item 3)
    assert (tmp_path / "d" / "videos" / ".affectlab-synthetic").read_text().split() == [GENERATOR_VERSION, "tiny-seed0"]
    assert cmd.run(p.parse_args(["preview", "--out", str(tmp_path / "s.png")])) == 0
    assert (tmp_path / "s.png").stat().st_size > 10_000


def test_committed_preview_is_what_make_preview_writes(tmp_path):
    """`make preview` must leave docs/img/synth_preview.png unchanged: the committed sheet is the current
    generator's, pixel for pixel on any x86-64 CPU since v3.1 (synth/portable.py), and writing it twice
    gives the same bytes."""
    import hashlib
    from pathlib import Path

    import cv2
    import numpy as np

    from affectlab.synth.preview import write_preview

    committed = Path(__file__).resolve().parents[2] / "docs" / "img" / "synth_preview.png"
    first, second = write_preview(tmp_path / "a.png"), write_preview(tmp_path / "b.png")
    # digests, not bytes: with CI=true pytest diffs two megabyte byte strings in full, for hours
    assert hashlib.sha256(first.read_bytes()).hexdigest() == hashlib.sha256(second.read_bytes()).hexdigest()
    ours, theirs = (cv2.imread(str(p)).astype(np.int16) for p in (first, committed))
    assert ours.shape == theirs.shape, "regenerate it with `make preview` after a generator change"
    off = np.abs(ours - theirs)
    assert not off.any(), (f"{int((off > 0).any(-1).sum())} pixels differ by up to {int(off.max())}: "
                           "regenerate it with `make preview` after a generator change")
