"""``affectlab data prepare``: same items as on the fly, resumable, invalidated by source or settings."""
from __future__ import annotations

import argparse
import os

import numpy as np
import pytest
import torch

import releases
from data_modules import prepared as P
from releases import make

KEYS = dict(fold=1, image_size=32, val_fraction=0.0)


@pytest.fixture()
def release(tmp_path):
    root = tmp_path / "BP4D"
    releases.write_bp4d(root, subjects=["F001", "F003", "F004"], tasks=("T1", "T2"), n_frames=4, size=(96, 128))
    return root


def _items(dm, split, n=None):
    ds = dm.dataset(split)
    out = []
    for i in range(n or len(ds)):
        torch.manual_seed(i)  # training jitter is drawn from torch's RNG
        out.append(ds[i])
    return out


def test_prepared_crops_give_the_same_items_without_decoding(release, monkeypatch):
    plain = make("bp4d", release, use_prepared=False, **KEYS)
    assert make("bp4d", release, **KEYS).prepared() is None
    P.prepare(make("bp4d", release, **KEYS), progress=False)
    dm = make("bp4d", release, **KEYS)
    assert dm.prepared() is not None
    expected = {s: _items(plain, s) for s in ("train", "test")}
    import data_modules.datasets as D

    monkeypatch.setattr(D, "read_rgb", lambda *a, **k: pytest.fail("prepared items must not decode frames"))
    for split in ("train", "test"):
        for a, b in zip(_items(dm, split), expected[split]):
            assert torch.equal(a["image"], b["image"]) and a["meta"] == b["meta"]
            torch.testing.assert_close(a["landmarks"], b["landmarks"], atol=1e-4, rtol=0)


def test_prepare_resumes_after_a_kill(release, monkeypatch, tmp_path):
    dm = make("bp4d", release, **KEYS)
    n = len(dm.full_manifest())
    real, calls = P._Base._read_for_alignment, []

    def dying(self, paths, lms):
        if len(calls) == 10:
            raise KeyboardInterrupt
        calls.append(paths[0])
        return real(self, paths, lms)

    monkeypatch.setattr(P._Base, "_read_for_alignment", dying)
    with pytest.raises(KeyboardInterrupt):
        P.prepare(dm, progress=False, chunk=4)
    folder = P.prepared_dir(dm)
    assert not (folder / "complete.json").exists() and dm.prepared() is None
    calls.clear()
    monkeypatch.setattr(P._Base, "_read_for_alignment", lambda self, p, l: (calls.append(p[0]), real(self, p, l))[1])
    P.prepare(dm, progress=False, chunk=4)
    assert len(calls) == n - 8  # two chunks of 4 were complete when it died
    resumed = np.load(folder / "frames.npy")
    other = make("bp4d", release, cache_dir=str(tmp_path / "clean"), **KEYS)
    P.prepare(other, progress=False)
    np.testing.assert_array_equal(resumed, np.load(P.prepared_dir(other) / "frames.npy"))


def test_prepared_crops_invalidated_by_settings_and_sources(release):
    P.prepare(make("bp4d", release, **KEYS), progress=False)
    assert make("bp4d", release, **KEYS).prepared() is not None
    assert make("bp4d", release, **{**KEYS, "align_eye_y": 0.45}).prepared() is None
    assert make("bp4d", release, **{**KEYS, "image_size": 48}).prepared() is None
    mat = release / "2DFeatures" / "F003_T1.mat"
    st = os.stat(mat)
    os.utime(mat, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert make("bp4d", release, **KEYS).prepared() is None


def test_cli_prepare(release, capsys):
    from affectlab.commands import data

    args = ["DATA=bp4d", f"root={release}", "image_size=32"]
    assert data.run(argparse.Namespace(action="prepare", overrides=args, check_images=False, max_skipped=5)) == 0
    assert "prepared 24 frames of bp4d at 32px" in capsys.readouterr().out
    assert make("bp4d", release, image_size=32).prepared() is not None
